"""Find Gristmill's ``resources/`` folder (icons, examples): one lookup for a checkout and a bundle.

- In the PyInstaller bundle (``sys.frozen``), build.spec copies ``resources/``
  to ``<sys._MEIPASS>/resources``, and that is the only place looked at: a
  frozen app never picks up a folder that happens to lie next to it.
- In a source checkout (``pip install -e .``) it is ``<repository>/resources``.
- An installation that ships the folder as data files puts it under
  ``<sys.prefix>/share/gristmill/resources``.

The folder is read-only to the app: examples are copied before they are opened
(``workbench.copy_example``), and settings, history and logs go to
``gristmill.core.paths``.
"""

from __future__ import annotations

import sys
from pathlib import Path

FOLDER = "resources"


def is_frozen() -> bool:
    """True inside the PyInstaller bundle."""
    return bool(getattr(sys, "frozen", False)) and bool(getattr(sys, "_MEIPASS", None))


def candidates() -> list[Path]:
    """Where ``resources/`` may be, in the order they are tried."""
    if is_frozen():
        return [Path(sys._MEIPASS) / FOLDER]
    # src/gristmill/app/resources.py: the repository root is three folders above gristmill/.
    checkout = Path(__file__).resolve().parents[3] / FOLDER
    return [checkout, Path(sys.prefix) / "share" / "gristmill" / FOLDER]


def resources_dir() -> Path | None:
    """The folder holding ``icons/`` and ``examples/``, or None when not shipped."""
    for c in candidates():
        if c.is_dir():
            return c
    return None


def icon_path(name: str) -> Path | None:
    root = resources_dir()
    if root is None:
        return None
    p = root / "icons" / name
    return p if p.is_file() else None


def examples() -> list[Path]:
    """The bundled example folders, by name."""
    root = resources_dir()
    if root is None or not (root / "examples").is_dir():
        return []
    return sorted(p for p in (root / "examples").iterdir() if p.is_dir() and not p.name.startswith("."))


def example(name: str) -> Path | None:
    for p in examples():
        if p.name == name:
            return p
    return None
