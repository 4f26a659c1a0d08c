"""Reading a GNU Makefile as a workflow (work in progress: see issue 5)."""

from __future__ import annotations

from pathlib import Path

from ..errors import WorkflowError
from ..workflow import Workflow


def load_makefile(path: str | Path, variables: dict[str, str] | None = None) -> Workflow:
    raise WorkflowError("Makefile support is not available yet", path=str(path))
