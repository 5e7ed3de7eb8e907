import ast
import subprocess
import sys
from pathlib import Path

import console


def test_sync_core_never_imports_the_ui():
    code = ("import sys, pkgutil, importlib, sync_core\n"
            "for m in pkgutil.walk_packages(sync_core.__path__, 'sync_core.'):\n"
            "    importlib.import_module(m.name)\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('textual', 'console')]\n"
            "print(','.join(bad))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


FORBIDDEN = ("sync_core.ebay", "sync_core.accounts")  # sync_core.accounts imports sync_core.ebay.oauth


def _forbidden(name: str) -> bool:
    return any(name == f or name.startswith(f + ".") for f in FORBIDDEN)


def test_console_screens_and_widgets_never_import_the_ebay_modules():
    """Screens and widgets reach accounts and consent through sync_core.control only: no import of
    sync_core.ebay (or sync_core.accounts, which imports eBay's OAuth), directly or as an importlib string."""
    root = Path(console.__file__).resolve().parent
    files = sorted([*(root / "screens").rglob("*.py"), *(root / "widgets").rglob("*.py")])
    assert len(files) > 5
    bad = []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                names = [node.value.strip()]
            else:
                continue
            bad += [f"{path.relative_to(root.parent)}:{node.lineno}: {n}" for n in names if _forbidden(n)]
    assert bad == []


def test_importing_the_console_does_not_import_the_ebay_client():
    code = ("import console.app, console.screens.accounts, sys\n"
            "print('sync_core.ebay.client' in sys.modules, any(m.startswith('sync_core.ebay') for m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
