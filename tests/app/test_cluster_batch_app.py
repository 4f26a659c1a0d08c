"""Issue 16: the app's runs on a cluster started for the run in the REAL single-node Slurm
and Grid Engine (the ``batch`` fixture of tests/conftest.py), through the app's actions: the
Run on selector, Run, the Workers view, Cancel. Jobs appear in the batch system during
the run and none is left after it; history has the whole run; a refused job script and
a cluster that never gets a worker are told in the window's banner."""

from __future__ import annotations

import html
import os
import re
import subprocess

import pytest

pytest.importorskip("distributed")
pytest.importorskip("dask_jobqueue")

from gristmill.app import compute  # noqa: E402
from gristmill.app.compute import lane_word  # noqa: E402
from gristmill.app.views.run_on import index_of  # noqa: E402
from gristmill.core.events import RunStatus, TaskState  # noqa: E402

from batch import LATER, REFUSED  # noqa: E402
from conftest import wait_run_over  # noqa: E402

# The jobs dask-jobqueue submits for this process are named after it.
JOB = f"gristmill-{os.getpid()}"

GATED = """\
[workflow]
default = ["a", "b"]
""" + "".join(f"""
[tasks.{n}]
cmd = "touch {n}.begun; while [ ! -e gate ]; do sleep 0.05; done; echo $GRISTMILL_WORKER > {n}.out"
outputs = ["{n}.out"]
""" for n in "ab")


@pytest.fixture
def system(batch, monkeypatch):
    """(kind, the session's batch system), its client settings in this process (the app
    runs here)."""
    kind, s = batch
    for key, value in s.env.items():
        monkeypatch.setenv(key, value)
    yield kind, s
    # Each test asserts that its jobs are gone; after a failed one, the next starts clean.
    for job in s.queue(JOB):
        subprocess.run(["scancel" if kind == "slurm" else "qdel", job],
                       env={**os.environ, **s.env}, capture_output=True, timeout=30)


def _on(window, kind: str) -> None:
    """The toolbar's Run on: a cluster of ``kind`` for the run."""
    index = index_of(window.run_on, compute.CLUSTER, kind)
    assert window.run_on.model().item(index).isEnabled()
    window.run_on.activated.emit(index)
    assert window.settings.preferences.run_on == compute.CLUSTER
    assert window.settings.preferences.cluster_kind == kind


def test_a_run_on_a_batch_system_from_the_app_runs_in_its_jobs_and_leaves_none(
        qtbot, make_window, tmp_path, system, history):
    kind, s = system
    (tmp_path / "gristmill.toml").write_text(GATED.replace('["a", "b"]', '["both"]') + """
[tasks.both]
cmd = "cat a.out b.out > both.out"
inputs = ["a.out", "b.out"]
outputs = ["both.out"]
where = "local"
""")
    window = make_window(tmp_path)
    _on(window, kind)
    before = set(s.accounted(JOB))
    window.actions["workers"].trigger()
    dialog = window.dialogs["workers"]
    window.actions["run_default"].trigger()
    # both tasks run, each in a worker of its own batch job, while the jobs are queued
    # or running in Slurm
    qtbot.waitUntil(lambda: all((tmp_path / f"{n}.begun").exists() for n in "ab"),
                    timeout=120_000)
    jobs = s.queue(JOB)
    assert len(jobs) == 2, jobs
    assert set(jobs) <= set(s.accounted(JOB)) - before
    qtbot.waitUntil(lambda: len(dialog.rows) == 2 and
                    sorted(t for r in dialog.rows for t in r.running) == ["a", "b"],
                    timeout=30_000)
    qtbot.waitUntil(lambda: "Started" in dialog.lifetime.text(), timeout=10_000)
    life = dialog.lifetime.text()
    assert f"A {kind} cluster of 2 workers of cpu = 1" in life, life
    listed = re.search(r"\(batch jobs? ([\d, ]+)\)", life).group(1).split(", ")
    assert set(jobs) <= set(listed), life              # its batch jobs, by id
    assert f"{kind} cluster started for the run" in dialog.where.text()
    assert window.bench.run.state_of("a") is TaskState.RUNNING
    (tmp_path / "gate").write_text("")
    wait_run_over(qtbot, window, 120_000)
    run = window.bench.run
    assert run.status is RunStatus.SUCCEEDED
    on = {n: (tmp_path / f"{n}.out").read_text().strip() for n in "ab"}
    assert len(set(on.values())) == 2                  # one task on each worker
    # the timeline: a lane per worker slot, named after the worker that ran its bar
    canvas = window.timeline.canvas
    assert sorted(b.task for b in canvas.bars) == ["a", "b", "both"]
    lane = {b.task: canvas.lane_names[b.slot] for b in canvas.bars}
    assert all(lane[n].rsplit(" · ", 1)[0] == lane_word(on[n]) for n in "ab")
    assert lane["both"] == "this machine · 1"          # where = "local" ran here
    # history has the whole run
    runs = history.runs(str(tmp_path / "gristmill.toml"))
    assert runs[0].status is RunStatus.SUCCEEDED
    attempts = history.attempts(runs[0].id)
    assert sorted(a.task for a in attempts) == ["a", "b", "both"]
    assert all(a.exit_code == 0 for a in attempts)
    # two jobs for a plan two wide: none retired at the start and submitted again
    assert len(set(s.accounted(JOB)) - before) == 2
    # the cluster went with the run: no job queued or running, the view says so
    assert s.queue(JOB) == []
    assert window.bench.compute.connection is None
    qtbot.waitUntil(lambda: "it was closed when the run ended" in dialog.lifetime.text(),
                    timeout=10_000)
    assert not window.banner.isVisible()


def test_a_cancel_from_the_app_mid_run_leaves_nothing_queued(
        qtbot, make_window, tmp_path, system, history):
    kind, s = system
    (tmp_path / "gristmill.toml").write_text("""\
[tasks.long]
cmd = "echo partial > out.txt; touch begun; sleep 120; echo whole >> out.txt"
outputs = ["out.txt"]
""")
    window = make_window(tmp_path)
    _on(window, kind)
    window.actions["run_default"].trigger()
    qtbot.waitUntil(lambda: (tmp_path / "begun").exists(), timeout=120_000)
    assert s.queue(JOB)                          # its worker's job runs in Slurm
    assert window.actions["cancel"].isEnabled()
    window.actions["cancel"].trigger()
    wait_run_over(qtbot, window, 60_000)
    run = window.bench.run
    assert run.status is RunStatus.CANCELLED
    assert run.state_of("long") is TaskState.CANCELLED
    assert not (tmp_path / "out.txt").exists()        # the partial output removed
    assert s.queue(JOB) == []                         # nothing queued or running
    runs = history.runs(str(tmp_path / "gristmill.toml"))
    assert runs[0].status is RunStatus.CANCELLED


def _held(make_window, tmp_path, system, timeout: str):
    """A window on a workflow whose jobs the batch system holds for an hour, waiting at
    most ``timeout`` for a worker; and the jobs known before its run."""
    kind, s = system
    (tmp_path / "gristmill.toml").write_text(
        f'[cluster]\ndirectives = ["{LATER[kind]}"]\ntimeout = "{timeout}"\n' + GATED)
    window = make_window(tmp_path)
    _on(window, kind)
    return window, set(s.accounted(JOB))


def test_a_cancel_while_the_cluster_waits_for_its_workers_cancels_its_jobs(
        qtbot, make_window, tmp_path, system, history):
    s = system[1]
    window, before = _held(make_window, tmp_path, system, "10m")
    window.actions["workers"].trigger()
    dialog = window.dialogs["workers"]
    window.actions["run_default"].trigger()
    qtbot.waitUntil(lambda: len(s.queue(JOB)) == 2, timeout=60_000)   # held for an hour
    qtbot.waitUntil(lambda: "waiting for its first worker" in dialog.lifetime.text(),
                    timeout=10_000)
    window.actions["cancel"].trigger()
    wait_run_over(qtbot, window, 60_000)                # not the ten minutes
    assert window.bench.run.status is RunStatus.CANCELLED
    assert s.queue(JOB) == []                           # its queued jobs cancelled
    assert len(set(s.accounted(JOB)) - before) == 2
    assert history.runs(str(tmp_path / "gristmill.toml"))[0].status is RunStatus.CANCELLED
    assert not window.banner.isVisible()                # a cancel is no fault
    assert "No cluster now" in window.bench.compute.lifetime()


def _banner(qtbot, window) -> str:
    qtbot.waitUntil(lambda: not window.bench.busy and window.banner.isVisible(), timeout=120_000)
    return html.unescape(window.banner_text.text())


def test_a_refused_job_script_is_told_in_the_banner(qtbot, make_window, tmp_path, system,
                                                    history):
    kind, s = system
    (tmp_path / "gristmill.toml").write_text('[cluster]\nqueue = "nosuchpartition"\n' + GATED)
    window = make_window(tmp_path)
    _on(window, kind)
    window.actions["run_default"].trigger()
    text = _banner(qtbot, window)
    assert "The run failed" in text
    assert f"the batch system ({kind}) refused the job script: {REFUSED[kind]}" in text, text
    assert window.bench.run.status is RunStatus.FAILED
    assert not (tmp_path / "a.begun").exists()
    assert history.runs(str(tmp_path / "gristmill.toml"))[0].status is RunStatus.FAILED


def test_a_cluster_that_never_gets_a_worker_times_out_in_the_banner_and_cancels_its_jobs(
        qtbot, make_window, tmp_path, system, history):
    kind, s = system
    window, before = _held(make_window, tmp_path, system, "2s")
    window.actions["run_default"].trigger()
    text = _banner(qtbot, window)
    assert "The run failed" in text
    assert f"the {kind} cluster got no worker in 2.0 s (its 2 queued jobs were cancelled)" \
        in text, text
    assert len(set(s.accounted(JOB)) - before) == 2    # they were queued...
    assert s.queue(JOB) == []                          # ...and are cancelled
    assert window.bench.run.status is RunStatus.FAILED
    assert history.runs(str(tmp_path / "gristmill.toml"))[0].status is RunStatus.FAILED
