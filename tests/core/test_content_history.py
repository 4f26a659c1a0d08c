"""History for content checks and retry_mem: a schema-2 file made before the tables and
the column existed gains them when opened; pruning keeps the hashes a last success needs."""

from __future__ import annotations

import sqlite3
import time

from gristmill.core.events import (EventBus, FilesHashed, Outcome, RunFinished, RunStarted,
                                   RunStatus, TaskFinished, TaskStarted)
from gristmill.core.record.history import History


def _run(history, run_id, task, t, files=(), ok=True):
    for ev in (RunStarted(run_id, t, "w", "/w/gristmill.toml", (), (task,)),
               TaskStarted(run_id, t, task, 1, 0),
               TaskFinished(run_id, t + 1, task, 1,
                            Outcome.SUCCEEDED if ok else Outcome.FAILED, 0 if ok else 1, 1.0),
               *([FilesHashed(run_id, t + 1, files, task, 1)] if files else []),
               RunFinished(run_id, t + 2, RunStatus.SUCCEEDED, 2.0, {})):
        history.on_event(ev)
    history.flush()


def test_an_older_schema_2_file_gains_the_tables_and_the_column(tmp_path):
    path = tmp_path / "h.sqlite3"
    History(path).close()
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE file_hashes")
    conn.execute("DROP TABLE attempt_files")
    conn.execute("ALTER TABLE attempts DROP COLUMN mem")
    conn.commit()
    conn.close()
    h = History(path)
    try:
        _run(h, "r1", "a", time.time(), (("in.txt", 3, 123, "b2:abc"),))
        assert h.success_hashes("/w/gristmill.toml", "a") == {"in.txt": "b2:abc"}
        assert h.file_hash("/w/gristmill.toml", "in.txt") == (3, 123, "b2:abc")
        assert "mem" in {r[1] for r in sqlite3.connect(path).execute(
            "PRAGMA table_info(attempts)")}
        assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == 2
    finally:
        h.close()


def test_pruning_keeps_the_hashes_of_a_last_success(tmp_path):
    h = History(tmp_path / "h.sqlite3")
    try:
        t = time.time() - 100 * 86400
        _run(h, "old", "a", t, (("in.txt", 3, 1, "b2:one"),))
        _run(h, "older-b", "b", t + 1, (("b.txt", 3, 1, "b2:b1"),))
        _run(h, "new-b", "b", t + 10, (("b.txt", 3, 2, "b2:b2"),))
        h.prune(keep_days=30)
        assert h.success_hashes("/w/gristmill.toml", "a") == {"in.txt": "b2:one"}
        assert h.success_hashes("/w/gristmill.toml", "b") == {"b.txt": "b2:b2"}
        left = {r[0] for r in sqlite3.connect(tmp_path / "h.sqlite3").execute(
            "SELECT run_id FROM attempt_files")}
        assert left == {"old", "new-b"}
    finally:
        h.close()
