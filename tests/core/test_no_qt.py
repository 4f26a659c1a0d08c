"""The core must never import Qt: checked by importing every core module in a clean process."""

import pkgutil
import subprocess
import sys

import gristmill.core


def test_core_imports_no_qt():
    modules = [m.name for m in pkgutil.walk_packages(gristmill.core.__path__, "gristmill.core.")]
    assert "gristmill.core.run.engine" in modules
    code = ("import sys\n" + "".join(f"import {m}\n" for m in modules) +
            "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'shiboken6', 'PyQt5', 'PyQt6')]\n"
            "print(bad)\nsys.exit(1 if bad else 0)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
