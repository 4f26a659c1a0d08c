"""The core's packages import one way: each may use only the packages listed for it.

A workflow is loaded (``load``, ``makefile``), decided (``decide``), run (``run``) and
recorded (``record``); the modules at ``core/`` itself are the vocabulary all of them
share. The checker reads every import statement of every module (those inside
functions too) and resolves relative ones, so a lazy import cannot slip past it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import gristmill.core

# package -> the packages its modules may import (besides itself).
ALLOWED: dict[str, set[str]] = {
    "vocabulary": set(),
    "record": {"vocabulary"},
    "decide": {"vocabulary"},
    "makefile": {"vocabulary"},
    "load": {"vocabulary", "decide", "makefile"},
    "run": {"vocabulary", "decide", "record"},
    "watch": {"vocabulary", "load", "decide", "makefile", "run", "record"},
}
CORE = Path(gristmill.core.__file__).parent


def _package_of(dotted: str) -> str | None:
    """``gristmill.core.run.engine`` -> ``run``; a vocabulary module -> ``vocabulary``;
    anything outside the core -> None (the standard library, third parties)."""
    parts = dotted.split(".")
    if parts[:2] != ["gristmill", "core"]:
        return None
    if len(parts) == 2:
        return "vocabulary"
    return parts[2] if parts[2] in ALLOWED else "vocabulary"


def _module_name(root: Path, path: Path) -> tuple[str, bool]:
    rel = path.relative_to(root.parent.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def _imports(path: Path, module: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, absolute module) for each import in the file; ``from . import x`` gives
    ``package.x`` so that a sibling module is seen as what it is."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    here = module.split(".") if is_package else module.split(".")[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[:len(here) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if node.module is None or target in ("gristmill.core",):
                found += [(node.lineno, f"{target}.{a.name}") for a in node.names]
            else:
                found.append((node.lineno, target))
    return found


def violations(root: Path) -> list[str]:
    """Every import under ``root`` (a ``core`` folder) that points the wrong way."""
    bad = []
    for path in sorted(root.rglob("*.py")):
        module, is_package = _module_name(root, path)
        mine = _package_of(module)
        for line, target in _imports(path, module, is_package):
            theirs = _package_of(target)
            if theirs is None or theirs == mine:
                continue
            if theirs not in ALLOWED[mine]:
                bad.append(f"{path.relative_to(root)}:{line}: {mine} imports {target} ({theirs})")
    return bad


def test_core_packages_import_one_way():
    assert (CORE / "run" / "engine.py").exists() and (CORE / "load" / "loader.py").exists()
    assert violations(CORE) == []


def test_the_checker_sees_an_import_against_the_flow(tmp_path):
    core = tmp_path / "gristmill" / "core"
    for pkg in ("decide", "run", "record"):
        (core / pkg).mkdir(parents=True)
        (core / pkg / "__init__.py").write_text("")
    (core / "__init__.py").write_text("")
    (core / "workflow.py").write_text("from .run import engine\n")            # vocabulary -> run
    (core / "decide" / "graph.py").write_text("from ..workflow import Task\n")  # fine
    (core / "record" / "history.py").write_text(
        "def later():\n    from gristmill.core.run.engine import Engine\n")     # record -> run, lazily
    (core / "run" / "engine.py").write_text("from ..record import history\nfrom . import local\n")
    found = violations(core)
    assert found == [
        "record/history.py:2: record imports gristmill.core.run.engine (run)",
        "workflow.py:1: vocabulary imports gristmill.core.run (run)",
    ]


def test_every_core_module_belongs_to_a_known_package():
    folders = {p.name for p in CORE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert folders == set(ALLOWED) - {"vocabulary"}
