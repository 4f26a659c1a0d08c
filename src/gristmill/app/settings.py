"""The app's settings: preferences, recent workflows, trusted folders, window layout.

A JSON file under ``paths.config_dir()`` (never next to the executable). Pure
Python; the window reads and writes it through this class only.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from gristmill.core import paths
from gristmill.core.record import retention

RECENT_LIMIT = 10
FILE_NAME = retention.SETTINGS_FILE


@dataclass(frozen=True)
class Preferences:
    jobs: int = 0               # default parallelism; 0 lets the scheduler decide
    cpu: float = 0              # capacity overrides; 0 / "" means detect
    mem: str = ""
    gpu: int = -1               # -1 means detect
    keep_days: int = retention.KEEP_DAYS    # history retention (the CLI reads it too)
    keep_runs: int = retention.KEEP_RUNS
    run_on: str = "here"        # where runs go: "here", "dask" (a scheduler), "cluster"
    dask_address: str = ""      # the scheduler for "dask", e.g. tcp://host:8786
    cluster_kind: str = "local"  # the cluster started for each run for "cluster"
    theme: str = "system"       # "system" (follow it), "light" or "dark"

    @classmethod
    def from_dict(cls, data: object) -> "Preferences":
        if not isinstance(data, dict):
            return cls()
        known = {f.name: f.type for f in fields(cls)}
        clean = {}
        defaults = cls()
        for key, value in data.items():
            if key in known and type(value) is type(getattr(defaults, key)):
                clean[key] = value
            elif key in known and isinstance(value, int) and isinstance(getattr(defaults, key), float):
                clean[key] = float(value)
        return replace(defaults, **clean)


def _norm(path: str | Path) -> str:
    return str(Path(path).expanduser().resolve())


class Settings:
    """Load once, change through methods, each change saved at once (atomically)."""

    def __init__(self, path: Path | None = None):
        self.path = path or paths.config_dir() / FILE_NAME
        self._data: dict = {}
        self.load()

    def load(self) -> None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}
        self._data = data if isinstance(data, dict) else {}

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._data, indent=2, sort_keys=True), encoding="utf-8")
        os.replace(tmp, self.path)

    # -- preferences ----------------------------------------------------------

    @property
    def preferences(self) -> Preferences:
        return Preferences.from_dict(self._data.get("preferences"))

    def set_preferences(self, prefs: Preferences) -> None:
        self._data["preferences"] = asdict(prefs)
        self.save()

    # -- recent workflows -----------------------------------------------------

    @property
    def recent(self) -> list[str]:
        value = self._data.get("recent", [])
        return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []

    def add_recent(self, path: str | Path) -> None:
        p = _norm(path)
        self._data["recent"] = ([p] + [r for r in self.recent if r != p])[:RECENT_LIMIT]
        self.save()

    def remove_recent(self, path: str | Path) -> None:
        p = _norm(path)
        self._data["recent"] = [r for r in self.recent if r != p]
        self.save()

    def clear_recent(self) -> None:
        self._data["recent"] = []
        self.save()

    # -- trusted folders ------------------------------------------------------

    @property
    def trusted(self) -> list[str]:
        value = self._data.get("trusted", [])
        return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []

    def is_trusted(self, folder: str | Path) -> bool:
        return _norm(folder) in self.trusted

    def trust(self, folder: str | Path) -> None:
        p = _norm(folder)
        if p not in self.trusted:
            self._data["trusted"] = self.trusted + [p]
            self.save()

    def untrust(self, folder: str | Path) -> None:
        p = _norm(folder)
        self._data["trusted"] = [t for t in self.trusted if t != p]
        self.save()

    # -- window layout (opaque strings from Qt) -------------------------------

    def window_state(self, key: str) -> str:
        value = self._data.get("window", {}).get(key, "")
        return value if isinstance(value, str) else ""

    def set_window_state(self, **values: str) -> None:
        window = self._data.get("window")
        if not isinstance(window, dict):
            window = {}
        window.update(values)
        self._data["window"] = window
        self.save()
