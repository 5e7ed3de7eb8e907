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



def _imported_names(files: list[Path], wanted) -> list[str]:
    """``file:line: name`` for every imported module name (``import a.b``, ``from a import b`` as ``a`` and
    ``a.b``, and any string constant, for importlib) in ``files`` that ``wanted`` accepts."""
    found = []
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
            found += [f"{path.parent.name}/{path.name}:{node.lineno}: {n}" for n in names if wanted(n)]
    return found

def test_console_screens_and_widgets_never_import_the_ebay_modules():
    """Screens and widgets reach accounts and consent through sync_core.control only: no import of
    sync_core.ebay (or sync_core.accounts, which imports eBay's OAuth), directly or as an importlib string."""
    root = Path(console.__file__).resolve().parent
    files = sorted([*(root / "screens").rglob("*.py"), *(root / "widgets").rglob("*.py")])
    assert len(files) > 5
    assert _imported_names(files, _forbidden) == []


def test_importing_the_console_does_not_import_the_ebay_client():
    code = ("import console.app, console.screens.accounts, sys\n"
            "print('sync_core.ebay.client' in sys.modules, any(m.startswith('sync_core.ebay') for m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def _console_files() -> list[Path]:
    return sorted(Path(console.__file__).resolve().parent.rglob("*.py"))


def _private_textual(name: str) -> bool:
    parts = name.split(".")
    return parts[0] == "textual" and any(p.startswith("_") for p in parts[1:])


def test_console_imports_no_private_textual_module():
    """Public Textual APIs only (issue 14): no module under console/ imports ``textual._*`` or
    ``textual.*._*`` (``from textual import _x`` included, or as an importlib string), so a Textual
    release that moves its internals cannot break the console."""
    files = _console_files()
    assert len(files) > 10
    assert _imported_names(files, _private_textual) == []


def test_console_widgets_use_no_private_textual_member():
    """Nor a private member of a Textual class: the console's widgets, screens and app neither call
    (``self._x``, ``super()._x``) nor override (``def _x``) a ``_name`` that Textual's classes or
    their instances define (LiveTable once patched DataTable's ``_data``, ``_update_count``,
    ``_y_offsets``; LogView called ``_scroll_update``). Their own ``_names`` are fine."""
    import importlib
    import inspect
    import pkgutil

    import console.screens
    import console.widgets
    from textual.dom import DOMNode

    modules = [importlib.import_module(m.name) for pkg in (console.widgets, console.screens)
               for m in pkgutil.iter_modules(pkg.__path__, pkg.__name__ + ".")]
    modules.append(importlib.import_module("console.app"))
    checked, bad = [], []
    for module in modules:
        for cls in vars(module).values():
            if not (inspect.isclass(cls) and cls.__module__ == module.__name__ and issubclass(cls, DOMNode)):
                continue
            bases = [b for b in cls.__mro__ if b.__module__.split(".")[0] == "textual"]
            textual_names = set().union(*(vars(b) for b in bases), vars(bases[0]()))  # instance attributes too
            used = set()
            for node in ast.walk(ast.parse(inspect.getsource(cls))):
                if isinstance(node, ast.Attribute) and (
                        (isinstance(node.value, ast.Name) and node.value.id == "self")
                        or (isinstance(node.value, ast.Call) and getattr(node.value.func, "id", "") == "super")):
                    used.add(node.attr)
                elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    used.add(node.name)
            private = {n for n in used if n.startswith("_") and not n.startswith("__")}
            bad += [f"{cls.__name__}.{n}" for n in sorted(private & textual_names)]
            checked.append(cls.__name__)
    assert {"LiveTable", "LogView", "DashboardScreen"} <= set(checked)
    assert bad == []
