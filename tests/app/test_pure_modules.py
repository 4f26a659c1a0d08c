"""The app's pure-Python modules stay free of Qt, so they are tested without a widget."""

import subprocess
import sys

PURE = ("runstate", "states", "past_logs", "names", "graph_layout", "explain", "settings", "tomledit", "guide",
        "audit", "compute", "planner")


def test_pure_modules_import_without_qt():
    code = ("import sys\n"
            + "".join(f"import gristmill.app.{m}\n" for m in PURE)
            + "print(sorted(m for m in sys.modules if m.startswith('PySide6')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
