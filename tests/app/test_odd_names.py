"""A file name that is not UTF-8 in the app: the workflow opens and runs (the run used to
never end: the engine thread died on the name), and the name is shown whole, its odd byte
as \\xNN (Qt cuts a text at a lone surrogate)."""

from __future__ import annotations

import os

from gristmill.core.events import RunStatus, TaskState

from conftest import wait_run_over

NAME = b"caf\xe9.csv"


def test_a_workflow_over_a_file_name_that_is_not_utf8_opens_and_runs(qtbot, window, tmp_path):
    with open(os.path.join(os.fsencode(tmp_path), NAME), "wb") as f:
        f.write(b"x\n")
    (tmp_path / "gristmill.toml").write_text(
        '[tasks.p]\nforeach = "*.csv"\ncmd = "cp {item} {item}.out && echo made {item}"\n'
        'outputs = ["{item}.out"]\n')
    window.settings.trust(tmp_path)
    window.open_path(str(tmp_path))
    task = f"p[{os.fsdecode(NAME)}]"
    window.actions["run_default"].trigger()
    wait_run_over(qtbot, window)
    assert window.bench.run.status is RunStatus.SUCCEEDED
    assert window.bench.run.state_of(task) is TaskState.DONE
    from PySide6.QtWidgets import QLabel
    model = window.bench.tasks
    names = [model.index(row, 0).data() for row in range(model.rowCount())]
    assert names == ["p[caf\\xe9.csv]"]
    assert QLabel(names[0]).text() == "p[caf\\xe9.csv]"          # what Qt shows: all of it
    window.selection.set([task], "test")
    # The command's own output is bytes, decoded as a terminal shows them.
    qtbot.waitUntil(lambda: "made caf\ufffd.csv" in window.log.text.toPlainText())
