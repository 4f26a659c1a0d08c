"""Where Gristmill keeps its files. ``GRISTMILL_HOME`` overrides every path."""

from __future__ import annotations

import os
from pathlib import Path

APP = "gristmill"


def _platformdirs():
    import platformdirs      # only without GRISTMILL_HOME (2 ms of every command's start)
    return platformdirs


def _home() -> Path | None:
    value = os.environ.get("GRISTMILL_HOME")
    return Path(value).expanduser() if value else None


def data_dir() -> Path:
    home = _home()
    path = home / "data" if home else Path(_platformdirs().user_data_dir(APP, appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path


def config_dir() -> Path:
    home = _home()
    path = home / "config" if home else Path(_platformdirs().user_config_dir(APP, appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path


def logs_dir() -> Path:
    home = _home()
    path = home / "logs" if home else Path(_platformdirs().user_log_dir(APP, appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path


def history_db() -> Path:
    return data_dir() / "history.sqlite3"


def cache_dir() -> Path:
    """Loaded workflows (``wfcache``); only this user may read or write them."""
    home = _home()
    path = home / "cache" if home else Path(_platformdirs().user_cache_dir(APP, appauthor=False))
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path
