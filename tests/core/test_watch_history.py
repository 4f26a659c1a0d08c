"""History keeps which runs watch started and why; an older history is upgraded in place."""

from __future__ import annotations

import sqlite3

from gristmill.core import paths
from gristmill.core.events import RunFinished, RunStarted, RunStatus
from gristmill.core.record.history import SCHEMA_VERSION, History

SCHEMA_1_RUNS = """\
CREATE TABLE runs (
    id TEXT PRIMARY KEY, workflow_path TEXT NOT NULL, workflow_name TEXT NOT NULL DEFAULT '',
    targets TEXT NOT NULL DEFAULT '[]', task_count INTEGER NOT NULL DEFAULT 0,
    started REAL NOT NULL, ended REAL, status TEXT NOT NULL, counts TEXT NOT NULL DEFAULT '{}',
    pid INTEGER, hostname TEXT NOT NULL DEFAULT '', process_start TEXT,
    log_path TEXT NOT NULL DEFAULT '')
"""


def test_a_history_of_schema_1_gains_the_watch_columns_and_keeps_its_runs(tmp_path):
    db = paths.history_db()
    db.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(db)
    conn.execute(SCHEMA_1_RUNS)
    conn.execute("INSERT INTO runs (id, workflow_path, started, ended, status) "
                 "VALUES ('old', '/w/gristmill.toml', 1.0, 2.0, 'succeeded')")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    with History() as h:
        old = h.run("old")
        assert old is not None and old.started_by == "" and old.changed == ()
        h.on_event(RunStarted("new", 10.0, "w", "/w/gristmill.toml", (), ("a",),
                              started_by="watch", changed=("data/a.csv", "data/b.csv")))
        h.on_event(RunFinished("new", 11.0, RunStatus.SUCCEEDED, 1.0, {"done": 1}))
        h.flush()
        new = h.run("new")
        assert new.started_by == "watch" and new.changed == ("data/a.csv", "data/b.csv")
        assert [r.id for r in h.runs("/w/gristmill.toml")] == ["new", "old"]
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
    conn.close()
