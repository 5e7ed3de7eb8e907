"""Borders of the code base (issue 10 item 5): import contracts, typed settings, a clean type check.

The import contracts live in pyproject.toml ([tool.importlinter]) and are checked by ``lint-imports``;
the type check is ``mypy`` with the [tool.mypy] section of pyproject.toml (files: sync_core and console).
CI runs only pytest, so both run from here.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from sync_core.config import KEYS, STREAM_KEYS, SettingsValues, StreamSettings

ROOT = Path(__file__).resolve().parent.parent


def _tool(name: str) -> str:
    """The console script ``name`` of this interpreter's environment (the venv running pytest)."""
    here = Path(sys.executable).with_name(name)
    found = str(here) if here.exists() else shutil.which(name)
    assert found, f"{name} is not installed: pip install -e '.[test]'"
    return found


def _lint_imports(cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_tool("lint-imports"), "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)


def test_import_contracts_hold():
    """`lint-imports` keeps every contract of pyproject.toml: sync_core never imports console or textual;
    sync_core.ebay and sync_core.streams never import sync_core.sim; console never imports sync_core.ebay
    (it goes through sync_core.control / sync_core.accounts). That each contract can fail is shown by
    test_import_contracts_can_fail below."""
    r = _lint_imports(ROOT)
    assert r.returncode == 0, f"lint-imports failed (exit {r.returncode}):\n{r.stdout}\n{r.stderr}"
    assert "0 broken" in r.stdout, r.stdout


@pytest.mark.parametrize("path,bad_import,contract", [
    ("sync_core/retention.py", "import textual", "never imports the console or textual"),
    ("sync_core/status.py", "from console import queries", "never imports the console or textual"),
    ("sync_core/ebay/redact.py", "from sync_core.sim import words", "never import the simulator"),
    ("sync_core/streams/__init__.py", "import sync_core.sim.data", "never import the simulator"),
    ("console/data.py", "from sync_core.ebay import errors", "reaches eBay only through"),
])
def test_import_contracts_can_fail(tmp_path, path, bad_import, contract):
    """The same contracts, run over a copy of the packages with one forbidden import added, are broken
    (and name the module that broke them): a contract that cannot fail proves nothing."""
    for pkg in ("sync_core", "console"):
        shutil.copytree(ROOT / pkg, tmp_path / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / path
    target.write_text(target.read_text() + f"\n{bad_import}  # test_import_contracts_can_fail\n")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path)}  # the copy, not the installed packages
    r = _lint_imports(tmp_path, env)
    assert r.returncode == 1, f"expected a broken contract (exit 1), got {r.returncode}:\n{r.stdout}\n{r.stderr}"
    broken = r.stdout.split("Broken contracts", 1)[-1]
    module = path[:-3].replace("/", ".").removesuffix(".__init__")
    assert contract in broken and f"{module} -> " in broken, r.stdout


def test_settings_attributes_match_keys():
    """Every Key of KEYS has a typed attribute on SettingsValues (what type checkers see on Settings), of
    the type its parser returns for its default, and no attribute lacks its Key; likewise STREAM_KEYS and
    the fields of StreamSettings."""
    hints = typing.get_type_hints(SettingsValues)
    expected = {k.name: type(k.parse(k.default)) for k in KEYS}
    missing = [f"{n}: {t.__name__}" for n, t in expected.items() if n not in hints]
    extra = sorted(set(hints) - set(expected))
    wrong = [f"{n}: {t.__name__} (declared {hints[n]!r})" for n, t in expected.items() if n in hints and hints[n] is not t]
    assert not missing, "add to SettingsValues in sync_core/config.py: " + ", ".join(missing)
    assert not extra, "SettingsValues declares attributes without a Key in KEYS: " + ", ".join(extra)
    assert not wrong, "SettingsValues types differ from what the keys' parsers return: " + ", ".join(wrong)

    fields = {f.name: f.type for f in dataclasses.fields(StreamSettings)}
    assert fields == {k.name: type(k.default).__name__ for k in STREAM_KEYS}, \
        "StreamSettings' fields must match STREAM_KEYS (names and the types of their defaults)"


def test_mypy_is_clean_on_sync_core_and_console():
    """`mypy` (files and options from pyproject.toml [tool.mypy]) reports no error on sync_core and console."""
    r = subprocess.run([_tool("mypy")], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"mypy found errors (exit {r.returncode}):\n{r.stdout}\n{r.stderr}"


def test_settings_are_typed_for_the_type_checker(tmp_path):
    """A setting read as an attribute has its key's type, and a misspelt key is a type error (Settings'
    __getattr__ is hidden from type checkers): mypy on a probe that makes both mistakes reports both."""
    probe = tmp_path / "probe.py"
    probe.write_text("from sync_core.config import load_settings\n"
                     "s = load_settings()\n"
                     "n: str = s.workers\n"
                     "s.wokrers\n")
    r = subprocess.run([_tool("mypy"), "--no-error-summary", str(probe)], cwd=ROOT, capture_output=True,
                       text=True, timeout=600)
    out = r.stdout
    assert r.returncode == 1, out + r.stderr
    assert 'Incompatible types in assignment (expression has type "int", variable has type "str")' in out, out
    assert '"Settings" has no attribute "wokrers"' in out, out
    assert len(out.strip().splitlines()) == 2, out
