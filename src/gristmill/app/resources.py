"""Find the repository's ``resources/`` folder: in a source checkout, or in a PyInstaller bundle."""

from __future__ import annotations

import sys
from pathlib import Path


def resources_dir() -> Path | None:
    """The folder holding ``icons/`` and ``examples/``, or None when not shipped."""
    candidates = []
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        candidates.append(Path(bundle) / "resources")
    here = Path(__file__).resolve()
    # src/gristmill/app/resources.py -> the repository root is three folders up from gristmill/
    candidates.append(here.parents[3] / "resources")
    candidates.append(Path(sys.prefix) / "share" / "gristmill" / "resources")
    for c in candidates:
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
