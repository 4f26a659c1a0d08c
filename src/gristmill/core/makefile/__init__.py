"""Reading a GNU Makefile as a workflow.

GNU make itself reads the Makefile: its printed data base and a recording
pass (make runs every recipe through a shell that only writes the command
down) give each target's prerequisites and exact commands. See ``reader``.
"""

from __future__ import annotations

from .reader import load_makefile

__all__ = ["load_makefile"]
