"""Driving the real `baysync` in tmux: start a session at a given size, send keys, read the screen.
Every captured screen is kept (``Tmux.screens``) so tests can search them all, e.g. for tokens."""

from __future__ import annotations

import shlex
import subprocess
import time
import uuid


class Tmux:
    def __init__(self, command: str, env: dict[str, str], width: int = 80, height: int = 24, key_pause: float = 0.15):
        self.session = f"bs-{uuid.uuid4().hex[:8]}"
        self.key_pause = key_pause
        self.screens: list[str] = []
        cmd = "env " + " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()
                                if k.startswith(("BAYSYNC_", "PATH", "HOME", "TERM", "PYTHON")))
        subprocess.run(["tmux", "new-session", "-d", "-s", self.session, "-x", str(width), "-y", str(height),
                        f"{cmd} {command}; sleep 30"], check=True)

    def capture(self) -> str:
        out = subprocess.run(["tmux", "capture-pane", "-p", "-t", self.session], capture_output=True, text=True).stdout
        self.screens.append(out)
        return out

    def send(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.session, *keys], check=True)
        time.sleep(self.key_pause)  # keep an Escape from merging with the next key (alt+key)

    def wait(self, *needles: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            out = self.capture()
            if all(n in out for n in needles):
                return out
            if time.monotonic() > deadline:
                raise AssertionError(f"{needles} not on screen:\n{out}")
            time.sleep(0.1)

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.session], capture_output=True)
