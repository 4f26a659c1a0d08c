"""Run history in SQLite: what every run and attempt did, kept across runs.

``History`` is the one object the engine, the CLI and the app hold. It has two sides,
each in a module of its own:

- the recorder (``recorder.py``): a bus subscriber whose ``on_event`` only queues, and
  a background thread that writes many events per transaction;
- the reader (``queries.py``): runs, attempts, last successes and durations for the
  staleness scan, the scheduler and the views, from any thread; ``mark_interrupted``
  and ``prune``.

The schema and the records both sides use are in ``store.py``. The staleness scan
reads ``last_success`` for "the command changed since it last succeeded"; the
scheduler reads the durations.
"""

from __future__ import annotations

from pathlib import Path

from .. import paths
from .queries import HistoryReader
from .recorder import Recorder
from .store import (SCHEMA_VERSION, AttemptRecord, HistoryError, RunRecord, TaskRecord,
                    create_schema)

__all__ = ["History", "HistoryError", "RunRecord", "AttemptRecord", "TaskRecord",
           "SCHEMA_VERSION"]


class History(Recorder, HistoryReader):
    """Run history in SQLite. Subscribe ``on_event`` to the engine's bus.

    Writes happen on a background thread; ``flush()`` waits for them.
    Queries may be called from any thread.
    """

    def __init__(self, path: Path | None = None) -> None:
        path = Path(path) if path is not None else paths.history_db()
        path.parent.mkdir(parents=True, exist_ok=True)
        create_schema(path)
        HistoryReader.__init__(self, path, self.active_runs)
        Recorder.__init__(self, path)

    def close(self, timeout: float | None = None) -> None:
        """Write what is queued, stop the writer thread and close connections."""
        if self._closed:
            return
        Recorder.close(self, timeout)
        self.close_readers()
