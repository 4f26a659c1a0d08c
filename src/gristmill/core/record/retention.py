"""How long runs are kept: one rule for the app and the CLI.

A run's history rows, its attempts' logs and its run log are deleted together
(``HistoryReader.prune``) once it is older than ``keep_days`` or beyond the newest
``keep_runs`` runs; 0 means no limit. The values are the app's preferences ("Keep runs
for", "Keep at most"), read from the settings file the app writes, so that a run from
the CLI prunes as the app does; ``gristmill run --keep-runs N --keep-days N`` overrides
them for one run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from .. import paths

KEEP_DAYS = 30
KEEP_RUNS = 200
SETTINGS_FILE = "app-settings.json"       # the app's settings (``app/settings.py``)


class _Prunable(Protocol):
    def prune(self, keep_days: float | None = None,
              keep_runs: int | None = None) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class Retention:
    keep_days: int = KEEP_DAYS     # 0: no age limit
    keep_runs: int = KEEP_RUNS     # 0: no count limit

    def prune(self, history: _Prunable) -> list[str]:
        """Delete what this rule does not keep; the ids of the runs deleted."""
        return history.prune(keep_days=self.keep_days or None,
                             keep_runs=self.keep_runs or None)


def settings_path() -> Path:
    return paths.config_dir() / SETTINGS_FILE


def configured(path: Path | None = None) -> Retention:
    """The retention set in the app's preferences; the defaults where none (or a bad
    value) is set."""
    try:
        prefs = json.loads((path or settings_path()).read_text(encoding="utf-8"))["preferences"]
    except (OSError, ValueError, KeyError, TypeError):
        return Retention()
    if not isinstance(prefs, dict):
        return Retention()
    values = {}
    for key in ("keep_days", "keep_runs"):
        value = prefs.get(key)
        if type(value) is int and value >= 0:
            values[key] = value
    return Retention(**values)
