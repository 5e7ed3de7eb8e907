import subprocess
import sys


def test_sync_core_never_imports_the_ui():
    code = ("import sys, pkgutil, importlib, sync_core\n"
            "for m in pkgutil.walk_packages(sync_core.__path__, 'sync_core.'):\n"
            "    importlib.import_module(m.name)\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('textual', 'console')]\n"
            "print(','.join(bad))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
