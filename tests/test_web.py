"""`baysync web`: the real command in a subprocess on a free loopback port. Every request without the
printed URL's token (or the cookie its first load sets) gets 403, the websocket included; headless
Chromium opens the tokened URL and shows the dashboard with the demo's accounts; the host must be
loopback unless --public."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import zlib
from collections import Counter
from pathlib import Path

import aiohttp
import pytest
import sqlalchemy as sa


DEMO = ("demo-small", "demo-medium", "demo-large")
URL_RE = re.compile(r"http://[^/\s]+:(\d+)/\?token=([A-Za-z0-9_-]+)$", re.M)
ANSI_RE = re.compile(r"\x1b(\[[0-9;?<>=]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[@-Z\\-_])")


def _seed_demo_accounts(url: str) -> None:
    eng = sa.create_engine(url)
    with eng.begin() as c:
        c.execute(sa.text("with a as (insert into accounts (name, ebay_user, status) values "
           "('demo-small', 'demo-small', 'active'), ('demo-medium', 'demo-medium', 'active'), "
           "('demo-large', 'demo-large', 'active') returning id, name) "
           "insert into sync_state (account_id, stream, status, records_total) "
           "select id, 'orders', 'idle', case name when 'demo-small' then 300 when 'demo-medium' then 3000 "
           "else 12000 end from a"))
    eng.dispose()


class Web:
    def __init__(self, env: dict, tmp: Path, *args: str) -> None:
        self.out, self.err = tmp / "web.out", tmp / "web.err"
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "console.cli", "web", "--port", "0", *args],
                                         env=env, stdout=out, stderr=err, text=True)
        deadline = time.monotonic() + 60
        while not (m := URL_RE.search(self.out.read_text())):
            assert self.proc.poll() is None, self.err.read_text()
            assert time.monotonic() < deadline, self.err.read_text()
            time.sleep(0.1)
        self.port, self.token = int(m.group(1)), m.group(2)
        self.base = f"http://127.0.0.1:{self.port}/"

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)


@pytest.fixture
def web(cli_env, db_url, tmp_path):
    _seed_demo_accounts(db_url)
    w = Web(cli_env, tmp_path)
    yield w
    assert w.stop() == 0, w.err.read_text()


async def _ws_session_text(ws, needles: tuple[str, ...], timeout: float = 45.0) -> str:
    """Textual's web-driver output of a session (ANSI stripped) once it shows every needle."""
    text = ""
    await ws.send_json(["resize", {"width": 120, "height": 30}])
    deadline = time.monotonic() + timeout
    while not all(n in ANSI_RE.sub("", text) for n in needles):
        assert time.monotonic() < deadline, ANSI_RE.sub("", text)[-2000:]
        try:
            msg = await ws.receive(timeout=1.0)
        except asyncio.TimeoutError:
            continue
        assert msg.type in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT), msg
        if msg.type == aiohttp.WSMsgType.BINARY:
            text += msg.data.decode("utf-8", "replace")
    return ANSI_RE.sub("", text)


async def _ws_text(url: str, needles: tuple[str, ...]) -> str:
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(url) as ws:
            return await _ws_session_text(ws, needles)


async def test_web_refuses_requests_without_the_token(web, cli_env):
    wrong = "x" + web.token[1:]
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:  # unsafe: an IP host
        for path in ("/", f"/?token={wrong}", "/static/js/textual.js", f"/static/js/textual.js?token={wrong}",
                     "/download/abc"):
            async with http.get(web.base.rstrip("/") + path, allow_redirects=False) as r:
                assert r.status == 403, path
        for query in ("?width=80&height=24", f"?token={wrong}&width=80&height=24"):
            with pytest.raises(aiohttp.WSServerHandshakeError) as e:
                await http.ws_connect(f"ws://127.0.0.1:{web.port}/ws{query}")
            assert e.value.status == 403
        # the URL's token: traded for a cookie, and the address bar loses it
        async with http.get(f"{web.base}?token={web.token}", allow_redirects=False) as r:
            assert r.status == 303 and r.headers["Location"] == "/"
            cookie = r.headers["Set-Cookie"].lower()
            assert "httponly" in cookie and "samesite=strict" in cookie
        async with http.get(web.base) as r:  # the session's cookie jar now carries it
            assert r.status == 200
            page = await r.text()
            assert f"ws://127.0.0.1:{web.port}/ws" in page and web.token not in page
        async with http.get(web.base + "static/js/textual.js") as r:
            assert r.status == 200
        # a page on another origin cannot drive the websocket with the cookie
        with pytest.raises(aiohttp.WSServerHandshakeError) as e:
            await http.ws_connect(f"ws://127.0.0.1:{web.port}/ws", origin="http://127.0.0.1:9")
        assert e.value.status == 403
    # the session's console is read-only (the header says so) and shows the demo accounts
    text = await _ws_text(f"ws://127.0.0.1:{web.port}/ws?token={web.token}&width=120&height=30",
                          (*DEMO, "READ-ONLY"))
    assert "baysync" in text
    # the token is in the printed URL once, and nowhere else the server wrote
    assert web.stop() == 0
    assert web.out.read_text().count(web.token) == 1
    assert web.token not in web.err.read_text()
    logs = [p for p in Path(cli_env["BAYSYNC_HOME"]).rglob("*.log") if p.is_file()]
    assert logs and not any(web.token in p.read_text(errors="replace") for p in logs)  # the console's log too


def _consoles(home: str) -> list[int]:
    """Pids of the console processes running with this BAYSYNC_HOME (a session's console and its shell)."""
    pids = []
    for d in Path("/proc").iterdir():
        try:
            if d.name.isdigit() and f"BAYSYNC_HOME={home}".encode() in (d / "environ").read_bytes().split(b"\0") \
                    and b"console" in (d / "cmdline").read_bytes().split(b"\0"):
                pids.append(int(d.name))
        except OSError:
            pass
    return pids


async def test_web_allow_actions_and_stopping_with_a_session_open(cli_env, db_url, tmp_path):
    _seed_demo_accounts(db_url)
    w = Web(cli_env, tmp_path, "--allow-actions")
    try:
        assert "actions allowed" in w.out.read_text()
        async with aiohttp.ClientSession() as http:
            async with http.ws_connect(f"ws://127.0.0.1:{w.port}/ws?token={w.token}") as ws:
                text = await _ws_session_text(ws, DEMO)
                assert "READ-ONLY" not in text
                assert _consoles(cli_env["BAYSYNC_HOME"])
                # SIGTERM with the session open: the server closes the websocket, tells the session's console
                # to quit, and exits 0
                w.proc.send_signal(signal.SIGTERM)
                while (await ws.receive(timeout=30)).type not in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                    pass
                assert await asyncio.to_thread(w.proc.wait, 30) == 0, w.err.read_text()
        deadline = time.monotonic() + 15
        while _consoles(cli_env["BAYSYNC_HOME"]):
            assert time.monotonic() < deadline, "the session's console outlived the server"
            await asyncio.sleep(0.2)
    finally:
        w.stop()


def test_web_host_must_be_loopback_unless_public(cli_env, tmp_path, capsys):
    from console.cli import _run_typer

    for args, needle in ((["--host", "0.0.0.0"], "--public"), (["--host", "192.0.2.7"], "--public"),
                         (["--port", "70000"], "--port 70000")):
        assert _run_typer(["web", *args]) == 2, args
        out, err = capsys.readouterr()
        assert out == "" and len(err.strip().splitlines()) == 1 and needle in err, (args, out, err)
    with socket.socket() as taken:  # a port in use: one line, exit 1
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        r = subprocess.run([sys.executable, "-m", "console.cli", "web", "--port", str(taken.getsockname()[1])],
                           env=cli_env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and r.stdout == "", (r.stdout, r.stderr)
    assert r.stderr.startswith("error: cannot listen on 127.0.0.1:") and len(r.stderr.splitlines()) == 1, r.stderr
    w = Web(cli_env, tmp_path, "--host", "0.0.0.0", "--public")  # 0.0.0.0 also answers on 127.0.0.1
    try:
        assert "warning: serving the console on 0.0.0.0" in w.err.read_text()
        assert f"http://{socket.gethostname()}:{w.port}/?token=" in w.out.read_text()
    finally:
        assert w.stop() == 0


# ---------------------------------------------------------------- the browser

def _chromium() -> str:
    """Debian's chromium; missing, the browser test fails in CI (CI=true: .ci/run installs it) and skips
    elsewhere."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        reason = "chromium is not installed (Debian: apt-get install chromium; .ci/run installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


# Page-side record of what the terminal was fed: textual.js writes every binary websocket message to xterm.js
# (which draws on a canvas, out of the DOM's reach).
HOOK = """(() => {
  const Native = window.WebSocket, dec = new TextDecoder();
  window.__ws = {urls: [], text: ""};
  window.WebSocket = function (url, protocols) {
    const ws = protocols === undefined ? new Native(url) : new Native(url, protocols);
    window.__ws.urls.push(String(url));
    ws.addEventListener("message", (e) => {
      if (typeof e.data !== "string") window.__ws.text += dec.decode(new Uint8Array(e.data), {stream: true});
    });
    return ws;
  };
  window.WebSocket.prototype = Native.prototype;
})();"""


class Cdp:
    def __init__(self, ws) -> None:
        self.ws, self.n = ws, 0

    async def __call__(self, method: str, **params) -> dict:
        self.n += 1
        await self.ws.send_json({"id": self.n, "method": method, "params": params})
        while True:
            msg = json.loads((await self.ws.receive(timeout=30)).data)
            if msg.get("id") == self.n:
                assert "error" not in msg, msg
                return msg["result"]

    async def js(self, expression: str):
        return (await self("Runtime.evaluate", expression=expression, returnByValue=True))["result"].get("value")


def _png_pixels(png: bytes) -> tuple[int, int, list[bytes]]:
    """(width, height, rows of RGB(A) bytes) of an 8-bit, non-interlaced RGB or RGBA PNG (Chromium's)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, w = 8, b"", 0
    while pos < len(png):
        (n,), kind = struct.unpack(">I", png[pos:pos + 4]), png[pos + 4:pos + 8]
        body = png[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and ctype in (2, 6) and interlace == 0, (depth, ctype, interlace)
            bpp = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += n + 12
    raw, stride, rows, prev = zlib.decompress(idat), w * bpp, [], bytearray(w * bpp)
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, [bytes(x for i in range(0, stride, bpp) for x in r[i:i + 3]) for r in rows]


async def test_browser_shows_the_dashboard(cli_env, db_url, tmp_path):
    chromium = _chromium()
    _seed_demo_accounts(db_url)
    web = Web(cli_env, tmp_path)
    log, proc = tmp_path / "chromium.err", None
    try:
        # other hosts fail at once: the page's stylesheet link to Google Fonts must not wait on the network
        with open(log, "w") as err:
            proc = subprocess.Popen([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                                     "--disable-dev-shm-usage", "--remote-debugging-port=0",
                                     f"--user-data-dir={tmp_path / 'chromium'}", "--window-size=1280,720",
                                     "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", "about:blank"],
                                    stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + 30
        while not (m := re.search(r"DevTools listening on ws://([^/]+)/", log.read_text())):
            assert proc.poll() is None, f"chromium exited: {log.read_text()[-2000:]}"
            assert time.monotonic() < deadline, f"chromium's DevTools did not come up: {log.read_text()[-2000:]}"
            time.sleep(0.1)
        devtools = m.group(1)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://{devtools}/json/list") as r:
                page = next(t for t in await r.json() if t["type"] == "page")
            async with http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                cdp = Cdp(ws)
                await cdp("Page.enable")
                await cdp("Page.addScriptToEvaluateOnNewDocument", source=HOOK)
                await cdp("Page.navigate", url=f"{web.base}?token={web.token}")
                deadline, state = time.monotonic() + 45, None
                probe = ("({href: location.href, first: document.body && document.body.classList.contains("
                         "'-first-byte'), urls: window.__ws ? window.__ws.urls : [], text: window.__ws ? "
                         "window.__ws.text : ''})")
                while True:
                    state = await cdp.js(probe)
                    text = ANSI_RE.sub("", state["text"] if state else "")
                    if state and state["first"] and all(n in text for n in (*DEMO, "READ-ONLY")):
                        break
                    assert time.monotonic() < deadline, ((state or {}).get("href"), text[-1500:])
                    await asyncio.sleep(0.2)
                # the URL's token was traded for the cookie: the address bar and the websocket URL lack it
                assert state["href"] == web.base and web.token not in " ".join(state["urls"])
                assert state["urls"][0].startswith(f"ws://127.0.0.1:{web.port}/ws?width=")
                # what xterm.js drew: poll screenshots until the terminal's top rows carry text, not one colour
                deadline = time.monotonic() + 20
                while True:
                    shot = base64.b64decode((await cdp("Page.captureScreenshot", format="png"))["data"])
                    clip = base64.b64decode((await cdp("Page.captureScreenshot", format="png", clip={
                        "x": 0, "y": 0, "width": 480, "height": 120, "scale": 1}))["data"])
                    _, _, rows = _png_pixels(clip)
                    pixels = Counter(r[i:i + 3] for r in rows for i in range(0, len(r), 3))
                    inked = 1 - pixels.most_common(1)[0][1] / sum(pixels.values())
                    if len(pixels) > 20 and inked > 0.02:
                        break
                    assert time.monotonic() < deadline, (len(pixels), inked)
                    await asyncio.sleep(0.3)
                (tmp_path / "web.png").write_bytes(shot)
                if out := os.environ.get("BAYSYNC_WEB_SCREENSHOT"):  # to look at it
                    Path(out).write_bytes(shot)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
        assert web.stop() == 0, web.err.read_text()
