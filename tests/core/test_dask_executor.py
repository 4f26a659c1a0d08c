"""The engine on a real Dask LocalCluster (loopback, worker processes), seen through its events.

Each test gets its own cluster of two small workers (1 CPU, 1 GB declared
each) and closes it; the fixture then checks that no worker process and no
executor thread is left behind.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed")
psutil = pytest.importorskip("psutil")

from gristmill.core.decide.capacity import Capacity  # noqa: E402
from gristmill.core.run.dask import DaskExecutor  # noqa: E402
from gristmill.core.run.dask_cluster import cluster_capacity, local_cluster  # noqa: E402
from gristmill.core.run.dask_health import WorkerHealth  # noqa: E402
from gristmill.core.run.engine import Engine, RunOptions  # noqa: E402
from gristmill.console import ConsoleReporter  # noqa: E402
from gristmill.core.events import (EventBus, Outcome, OutputLine, RunNotice,  # noqa: E402
                                   RunStatus, TaskFinished, TaskStarted, TaskState,
                                   TaskStateChanged, TasksUpToDate, told_state)
from gristmill.core.run.local import Job, JobExited, LocalExecutor  # noqa: E402

from batch import ours_left  # noqa: E402
from wf import task, workflow  # noqa: E402

GB = 1000**3
MB = 1000**2


def _leftovers() -> list[str]:
    """Processes of ours still running (multiprocessing's one resource tracker, and the
    daemons of a batch system the session started, aside)."""
    return ours_left()


@pytest.fixture
def client():
    """Two worker processes, each declaring CPU=1 and MEM=1 GB."""
    cluster = local_cluster(2, cpu=2, mem=2 * GB, threads=2)
    c = distributed.Client(cluster)
    try:
        yield c
    finally:
        c.close()
        cluster.close()
        deadline = time.monotonic() + 10
        while _leftovers() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _leftovers() == []
        assert not [t for t in threading.enumerate() if t.name == "gristmill-dask-kill"]


class Recorder:
    def __init__(self):
        self.events = []

    def __call__(self, ev):
        self.events.append(ev)

    def of(self, kind):
        return [e for e in self.events if isinstance(e, kind)]

    def final(self):
        out = {}
        for e in self.events:
            if isinstance(e, TasksUpToDate):
                out.update(dict.fromkeys(e.tasks, TaskState.UP_TO_DATE))
            elif told_state(e) is not None:
                out[e.task] = told_state(e)
        return out

    def per_task(self):
        """Each task's own event sequence (what can differ between executors is the interleaving)."""
        out: dict[str, list] = {}
        for e in self.events:
            name = getattr(e, "task", None)
            if name is None:
                continue
            if isinstance(e, TaskStateChanged):
                seq = out.setdefault(name, [])
                # A READY again with why it still waits (what holds the capacity) depends
                # on timing, not on the executor: one READY is the story.
                if not (seq and seq[-1] == ("state", e.state) and e.state is TaskState.READY):
                    seq.append(("state", e.state))
            elif isinstance(e, OutputLine):
                out.setdefault(name, []).append(("line", e.text))
            elif isinstance(e, TaskFinished):
                out.setdefault(name, []).append(("finished", e.outcome, e.exit_code, e.removed_outputs))
        return out


def engine(wf, client=None, capacity=None, bus=None, **opts):
    bus = bus or EventBus()
    rec = Recorder()
    bus.subscribe(rec)
    if client is not None:
        capacity = capacity or cluster_capacity(client, wf.pools)
        factory = lambda: DaskExecutor(client)  # noqa: E731
    else:
        factory = LocalExecutor
    capacity = capacity or Capacity(cpu=2, mem=2 * GB)
    e = Engine(wf, bus=bus, options=RunOptions(capacity=capacity, **opts),
               executor_factory=factory)
    return e, rec


def run(wf, client=None, targets=(), **opts):
    e, rec = engine(wf, client, **opts)
    return e.run(list(targets)), rec


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def gone(pids, within=10.0) -> bool:
    deadline = time.monotonic() + within
    while any(alive(p) for p in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def chain_and_fan_out(root: Path):
    (root / "src.txt").write_text("abc\n")
    for n in "xyz":
        (root / f"{n}.in").write_text(n * 3 + "\n")
    return workflow(
        root,
        task("upper", "tr a-z A-Z < src.txt > out/up.txt; echo upper done",
             inputs=["src.txt"], outputs=["out/up.txt"]),
        task("count", ["wc -c < out/up.txt > n.txt", "echo counted; printf 'no newline'"],
             inputs=["out/up.txt"], outputs=["n.txt"], silent=False),   # echoed, as by make
        task("plain", "touch plain.out", outputs=["plain.out"], silent=False),   # no shell
        *[task(f"each[{n}.in]", f"cp {n}.in fan/{n}.out && echo copied {n}", group="each",
               inputs=[f"{n}.in"], outputs=[f"fan/{n}.out"], cpu=0.5, mem=100 * MB)
          for n in "xyz"],
        task("gather", "cat fan/*.out n.txt > all.txt",
             inputs=[f"fan/{n}.out" for n in "xyz"] + ["n.txt"], outputs=["all.txt"]))


# -- capacity and placement ------------------------------------------------------------

def test_capacity_sums_the_workers_declared_resources(client):
    cap = cluster_capacity(client, pools={"net": 2}, jobs=3)
    assert (cap.cpu, cap.mem, cap.gpu, dict(cap.pools), cap.jobs) == (2.0, 2 * GB, 0, {"net": 2}, 3)
    ex = DaskExecutor(client)
    try:
        r = task("t", "true", cpu=0.5, mem=300 * MB).resources
        assert ex.request(r) == {"CPU": 0.5, "MEM": 300 * MB}   # no GPU declared: not asked
    finally:
        ex.close()


def test_executors_sharing_a_client_each_get_their_own_output_and_an_address_gets_its_own_client(
        client, tmp_path):
    own = DaskExecutor(client.scheduler.address)      # connects, and closes what it opened
    shared = [DaskExecutor(client), DaskExecutor(client)]
    try:
        assert own.client is not client
        for i, ex in enumerate([own, *shared]):
            ex.start(Job(0, task("t", f"echo from {i}", root=tmp_path), 1, dict(os.environ)))
        for i, ex in enumerate([own, *shared]):
            lines, ended = [], []
            while not ended:
                for ev in ex.wait(None):
                    (ended if isinstance(ev, JobExited) else lines).append(ev)
            assert [ln for ev in lines for ln in ev.lines] == [f"from {i}"]
            assert ended[0].exit_code == 0
    finally:
        for ex in [own, *shared]:
            ex.close()
    assert own.client.status == "closed" and client.status == "running"


def test_a_cluster_declaring_no_resources_is_counted_by_threads_and_memory_limits():
    with distributed.LocalCluster(n_workers=1, threads_per_worker=3, processes=True,
                                  memory_limit=GB // 2, dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as c:
        cap = cluster_capacity(c)
        assert (cap.cpu, cap.mem, cap.gpu) == (3.0, GB // 2, 0)
        ex = DaskExecutor(c)
        try:
            assert ex.request(task("t", "true", cpu=2, mem=GB).resources) == {}
        finally:
            ex.close()


# -- running ------------------------------------------------------------------------------

def test_a_chain_and_a_fan_out_make_the_same_files_and_events_as_locally(client, tmp_path):
    local_root, dask_root = tmp_path / "local", tmp_path / "dask"
    local_root.mkdir()
    dask_root.mkdir()
    local, local_rec = run(chain_and_fan_out(local_root))
    dask_wf = chain_and_fan_out(dask_root)
    remote, dask_rec = run(dask_wf, client)
    assert local.status is remote.status is RunStatus.SUCCEEDED
    files = ["out/up.txt", "n.txt", "fan/x.out", "fan/y.out", "fan/z.out", "all.txt",
             "plain.out"]
    for f in files:
        assert (dask_root / f).read_text() == (local_root / f).read_text(), f
    assert (dask_root / "all.txt").read_text() == "xxx\nyyy\nzzz\n4\n"
    assert dask_rec.per_task() == local_rec.per_task()
    assert [e.text for e in dask_rec.of(OutputLine) if e.task == "plain"] == ["touch plain.out"]
    assert ([type(e).__name__ for e in dask_rec.events][-1]) == "RunFinished"

    again, rec = run(dask_wf, client)
    assert again.status is RunStatus.SUCCEEDED and rec.of(TaskStarted) == []
    assert set(rec.final().values()) == {TaskState.UP_TO_DATE}


def test_output_streams_while_the_task_runs_and_lands_in_the_log_file(client, tmp_path):
    # The task waits for a file that the test writes only once the first line has arrived.
    wf = workflow(tmp_path, task(
        "talk", "echo first; echo to-stderr >&2; while [ ! -e go ]; do sleep 0.02; done; "
                "echo second; printf last", phony=True))
    bus = EventBus()

    def on_event(ev):
        if isinstance(ev, OutputLine) and ev.text == "first":
            (tmp_path / "go").touch()

    bus.subscribe(on_event)
    e, rec = engine(wf, client, bus=bus)
    result = e.run([])
    assert result.status is RunStatus.SUCCEEDED
    assert [ev.text for ev in rec.of(OutputLine)] == ["first", "to-stderr", "second", "last"]
    log = Path(rec.of(TaskStarted)[0].log_path)
    assert log.read_text() == "first\nto-stderr\nsecond\nlast"
    kinds = [type(ev).__name__ for ev in rec.events]
    assert kinds.index("OutputLine") < kinds.index("TaskFinished")
    fin = rec.of(TaskFinished)[0]
    assert fin.peak_mem and fin.peak_mem > 100_000


def test_a_failing_command_fails_the_task_and_its_partial_output_is_removed(client, tmp_path):
    wf = workflow(tmp_path,
                  task("bad", ["echo partial > out.txt", "exit 3", "touch never"],
                       outputs=["out.txt"]),
                  task("after", "touch later", inputs=["out.txt"], outputs=["later"]),
                  task("lenient", ["false", "touch yes"], outputs=["yes"],
                       ignore_errors=(True, False)),
                  task("missing", "no-such-program-here", phony=True))
    result, rec = run(wf, client, keep_going=True)
    assert result.status is RunStatus.FAILED and sorted(result.failed) == ["bad", "missing"]
    fin = {f.task: f for f in rec.of(TaskFinished)}
    assert fin["bad"].outcome is Outcome.FAILED and fin["bad"].exit_code == 3
    assert fin["bad"].removed_outputs == ("out.txt",) and not (tmp_path / "out.txt").exists()
    assert not (tmp_path / "never").exists()
    assert rec.final()["after"] is TaskState.SKIPPED
    assert fin["lenient"].outcome is Outcome.SUCCEEDED and (tmp_path / "yes").exists()
    assert "gristmill: exit status 1 ignored" in [e.text for e in rec.of(OutputLine)
                                                   if e.task == "lenient"]
    assert fin["missing"].exit_code == 127
    assert [e.text for e in rec.of(OutputLine) if e.task == "missing"] == [
        "gristmill: cannot start no-such-program-here: No such file or directory"]


# -- killing ---------------------------------------------------------------------------------

TREE = ("sleep 60 & echo $! > {name}.pids; sh -c 'sleep 60' & echo $! >> {name}.pids; "
        "echo $$ >> {name}.pids; echo ready; wait")


def pids(path: Path) -> list[int]:
    return [int(p) for p in path.read_text().split()]


def test_a_timeout_kills_the_remote_process_tree(client, tmp_path):
    wf = workflow(tmp_path, task("slow", TREE.format(name="slow"), outputs=["never"],
                                 timeout=1.0))
    result, rec = run(wf, client)
    fin = rec.of(TaskFinished)[0]
    assert fin.outcome is Outcome.TIMED_OUT and result.status is RunStatus.FAILED
    tree = pids(tmp_path / "slow.pids")
    assert len(tree) == 3 and gone(tree)


def test_cancelling_a_task_and_the_run_kills_the_remote_process_trees(client, tmp_path):
    wf = workflow(tmp_path, *[task(n, TREE.format(name=n), phony=True, cpu=0.5) for n in "ab"],
                  task("c", TREE.format(name="c"), phony=True, cpu=0.5))
    bus = EventBus()
    e, rec = engine(wf, client, bus=bus, keep_going=True)
    readies = []

    def on_event(ev):
        if isinstance(ev, OutputLine) and ev.text == "ready":
            readies.append(ev.task)
            if ev.task == "a":
                e.cancel_task("a")
            if len(readies) == 3:
                e.cancel()

    bus.subscribe(on_event)
    result = e.run([])
    assert result.status is RunStatus.CANCELLED
    fin = {f.task: f.outcome for f in rec.of(TaskFinished)}
    assert fin == {"a": Outcome.CANCELLED, "b": Outcome.CANCELLED, "c": Outcome.CANCELLED}
    for n in "abc":
        tree = pids(tmp_path / f"{n}.pids")
        assert len(tree) == 3 and gone(tree), n


def test_a_job_killed_before_it_starts_never_runs(client, tmp_path):
    # Straight on the executor: three 1-CPU jobs on two 1-CPU workers; the third waits.
    ex = DaskExecutor(client)
    try:
        jobs = [Job(i, task(f"j{i}", TREE.format(name=f"j{i}"), root=tmp_path), 1,
                    dict(os.environ)) for i in range(3)]
        for j in jobs:
            ex.start(j)
        ready = set()
        while len(ready) < 2:
            for ev in ex.wait(None):
                if getattr(ev, "lines", ()) and "ready" in ev.lines:
                    ready.add(ev.job_id)
        queued = ({0, 1, 2} - ready).pop()
        ex.kill(queued)
        ends = []
        while not ends:
            ends = [ev for ev in ex.wait(None) if isinstance(ev, JobExited)]
        assert [(x.job_id, x.killed) for x in ends] == [(queued, True)]
        ex.kill_all()
        while ex.running:
            ex.wait(None)
        assert not (tmp_path / f"j{queued}.pids").exists()
        for i in ready:
            assert gone(pids(tmp_path / f"j{i}.pids"))
    finally:
        ex.close()


# -- memory -----------------------------------------------------------------------------------

def test_tasks_are_placed_by_declared_memory_per_worker(client, tmp_path):
    # 600 MB each: the cluster's 2 GB would hold three, but each worker holds one.
    body = ("touch on.$GRISTMILL_TASK; ls on.* | wc -l >> seen; sleep 0.3; "
            "rm on.$GRISTMILL_TASK; touch {out}")
    wf = workflow(tmp_path, *[task(f"m{i}", body.format(out=f"m{i}.done"), outputs=[f"m{i}.done"],
                                   cpu=0.1, mem=600 * MB) for i in range(4)])
    result, rec = run(wf, client)
    assert result.status is RunStatus.SUCCEEDED
    seen = [int(n) for n in (tmp_path / "seen").read_text().split()]
    assert len(seen) == 4 and max(seen) <= 2


def test_a_task_bigger_than_any_worker_fails_clearly_instead_of_waiting(client, tmp_path):
    # 1.5 GB fits the cluster's 2 GB in total, but no single 1 GB worker.
    wf = workflow(tmp_path, task("huge", "touch out", outputs=["out"], mem=1500 * MB))
    result, rec = run(wf, client)
    fin = rec.of(TaskFinished)[0]
    assert result.status is RunStatus.FAILED and fin.outcome is Outcome.FAILED
    assert "mem = 1.5 GB, but the largest Dask worker has 1.0 GB" in fin.message
    assert not (tmp_path / "out").exists()


def test_a_task_over_its_declared_memory_is_killed_on_the_worker(client, tmp_path):
    hog = f"{sys.executable} -c 'x = bytearray(300_000_000); import time; time.sleep(30)'"
    wf = workflow(tmp_path, task("hog", hog, phony=True, mem=50 * MB))
    result, rec = run(wf, client)
    fin = rec.of(TaskFinished)[0]
    assert fin.outcome is Outcome.FAILED and "more than its declared mem" in fin.message
    assert any("over its declared mem" in e.text for e in rec.of(OutputLine))


# -- workers ----------------------------------------------------------------------------------

def test_a_worker_that_dies_fails_the_attempt_and_the_retry_runs(client, tmp_path):
    # The first attempt kills its own worker process (the parent of its shell).
    cmd = ("if [ ! -e died ]; then touch died; kill -9 $PPID; sleep 1; exit 0; fi; "
           "echo ok > out")
    wf = workflow(tmp_path, task("fragile", cmd, outputs=["out"], retries=1))
    result, rec = run(wf, client)
    first, second = rec.of(TaskFinished)
    assert first.outcome is Outcome.FAILED and first.will_retry
    assert "worker tcp://127.0.0.1:" in first.message and "died" in first.message
    assert second.outcome is Outcome.SUCCEEDED and result.status is RunStatus.SUCCEEDED
    assert (tmp_path / "out").read_text() == "ok\n"


def test_what_a_dead_worker_left_running_is_killed_before_the_retry_starts(client, tmp_path):
    # SIGKILL of a worker leaves its command running (its own session): it used to write
    # into the output beside the retry, and the mix was reported as a success.
    cmd = ("if [ ! -e died ]; then echo $$ > orphan.pid; touch died; kill -9 $PPID; "
           "sleep 30; echo first >> out; exit 0; fi; "
           "P=$(cat orphan.pid); if [ -e /proc/$P ] && ! grep -q ') Z' /proc/$P/stat; then "
           "echo overlap > overlap; fi; echo second >> out")
    wf = workflow(tmp_path, task("fragile", cmd, outputs=["out"], retries=1))
    result, rec = run(wf, client)
    first, second = rec.of(TaskFinished)
    assert first.outcome is Outcome.FAILED and "died" in first.message and first.will_retry
    assert second.outcome is Outcome.SUCCEEDED and result.status is RunStatus.SUCCEEDED
    assert not (tmp_path / "overlap").exists()     # the retry ran alone
    assert not alive(pids(tmp_path / "orphan.pid")[0])
    assert (tmp_path / "out").read_text() == "second\n"


def test_when_dask_reruns_a_lost_job_the_attempt_ends_after_the_rerun_is_killed(tmp_path):
    # A scheduler of one's own keeps Dask's default allowed-failures (3): it starts the job
    # again elsewhere at once. That rerun writes the output, then is killed; the attempt
    # must end after it, so the engine removes what it wrote.
    cmd = ("if [ ! -e died ]; then touch died; kill -9 $PPID; sleep 1; exit 0; fi; "
           "echo partial > out; sleep 60 & echo $! > rerun.pids; echo $$ >> rerun.pids; wait")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=2, processes=True,
                                  resources={"CPU": 1, "MEM": GB}, memory_limit=GB,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as c:
        wf = workflow(tmp_path, task("fragile", cmd, outputs=["out"]))
        result, rec = run(wf, c)
        fin = rec.of(TaskFinished)
        assert len(fin) == 1 and fin[0].outcome is Outcome.FAILED and "died" in fin[0].message
        assert not (tmp_path / "out").exists()
        # Whether Dask's rerun got to start before Gristmill's kill reached it is a race;
        # either way nothing of it may survive the attempt.
        rerun = tmp_path / "rerun.pids"
        if rerun.exists():
            assert gone(pids(rerun))


def test_worker_health_strikes_clear_and_the_circuit_breaker_keeps_half_the_fleet():
    h = WorkerHealth(strikes=2, keep=0.5)
    assert h.failed("w1", "t1", False, 4) is None and h.failed_on("t1") == "w1"
    assert h.succeeded("w1", "t1", 4) is None          # the same worker: no strike
    assert h.failed("w1", "t1", False, 4) is None
    assert h.succeeded("w2", "t1", 4) is None          # strike 1 for w1
    assert h.succeeded("w1", "t9", 4) is None          # a success clears it
    for t in ("t2", "t3"):
        h.failed("w1", t, False, 4)
        verdict = h.succeeded("w2", t, 4)
    assert verdict and "worker w1 taken out of rotation after 2 strikes" in verdict
    assert h.out == {"w1"}
    # Could not start twice: w3 out too (2 of 4 stay in rotation).
    assert h.failed("w3", "a", True, 4) is None
    assert "worker w3 taken out" in h.failed("w3", "b", True, 4)
    # A third would leave 1 of 4: the breaker trips, once, and nobody else is taken out.
    h.failed("w2", "c", True, 4)
    verdict = h.failed("w2", "d", True, 4)
    assert verdict.startswith("circuit breaker:") and h.tripped and h.out == {"w1", "w3"}
    h.failed("w4", "e", True, 4)
    assert h.failed("w4", "f", True, 4) is None and h.out == {"w1", "w3"}


def test_a_bad_worker_is_taken_out_of_rotation_and_gets_no_more_attempts(client, tmp_path):
    bad = sorted(client.scheduler_info(n_workers=-1)["workers"])[0]
    cmd = (f'if [ "$GRISTMILL_WORKER" = "{bad}" ]; then '
           'touch "bad.$GRISTMILL_TASK.$GRISTMILL_ATTEMPT"; exit 1; fi; sleep 0.05')
    wf = workflow(tmp_path, *[task(f"t{i}", cmd, phony=True, retries=3) for i in range(8)])
    bus = EventBus()
    executors = []

    def factory():
        executors.append(DaskExecutor(client))
        return executors[-1]

    after = []                   # attempts started once the bad worker was out
    def on_event(ev):
        if isinstance(ev, TaskStarted) and executors and executors[0].health.out:
            after.append((ev.task, ev.attempt))

    bus.subscribe(on_event)
    rec = Recorder()
    bus.subscribe(rec)
    console = io.StringIO()
    bus.subscribe(ConsoleReporter(console, live=False, quiet=True))
    Engine(wf, bus=bus, options=RunOptions(capacity=cluster_capacity(client)),
           executor_factory=factory).run([])
    assert executors[0].health.out == {bad}
    verdicts = [e.text for e in rec.of(OutputLine) if "taken out of rotation" in e.text]
    assert verdicts == [f"gristmill: worker {bad} taken out of rotation after 2 strikes "
                        f"(last: {verdicts[0].split('(last: ')[1]}"]
    # Not only in one attempt's log: the run's own notice, which the console prints.
    assert [(n.kind, n.message) for n in rec.of(RunNotice)] == \
        [("worker-out", verdicts[0].removeprefix("gristmill: "))]
    assert verdicts[0] + "\n" in console.getvalue()
    assert after and all(not (tmp_path / f"bad.{t}.{a}").exists() for t, a in after)
    # Every retry went elsewhere, so every task got done.
    assert {f.task for f in rec.of(TaskFinished) if f.outcome is Outcome.SUCCEEDED} == \
        {f"t{i}" for i in range(8)}


def test_gpus_are_the_workers_own_and_never_shared(tmp_path):
    cluster = local_cluster(1, cpu=2, mem=GB, gpu=2, threads=4)
    try:
        with distributed.Client(cluster) as c:
            cap = cluster_capacity(c)
            assert cap.gpu == 2
            # The two GPU tasks wait for each other, so they hold their devices at once.
            both = ('touch $GRISTMILL_TASK.on; while [ ! -e g0.on ] || [ ! -e g1.on ]; '
                    'do sleep 0.02; done; echo "[$CUDA_VISIBLE_DEVICES]"')
            wf = workflow(tmp_path, *[task(f"g{i}", both, phony=True, gpu=1, cpu=0.5)
                                      for i in range(2)],
                          task("cpu", 'echo "[$CUDA_VISIBLE_DEVICES]"', phony=True, cpu=0.5))
            result, rec = run(wf, c)
            assert result.status is RunStatus.SUCCEEDED
            seen = {e.task: e.text for e in rec.of(OutputLine)}
            assert seen["cpu"] == "[]"
            assert {seen["g0"], seen["g1"]} == {"[0]", "[1]"}
    finally:
        cluster.close()


def test_local_workers_live_through_ctrl_c_and_their_commands_do_not_inherit_that(client, tmp_path):
    # A terminal's Ctrl-C reaches the whole foreground group, the workers included.
    for pid in client.run(os.getpid).values():
        os.kill(pid, signal.SIGINT)
    show = f"{sys.executable} -c 'import signal; print(signal.getsignal(signal.SIGINT).__name__)'"
    wf = workflow(tmp_path, task("show", show, phony=True))
    result, rec = run(wf, client)
    assert result.status is RunStatus.SUCCEEDED
    assert [e.text for e in rec.of(OutputLine)] == ["default_int_handler"]
    assert len(client.scheduler_info(n_workers=-1)["workers"]) == 2


# -- without the extra ----------------------------------------------------------------------

def test_without_distributed_the_core_imports_and_dask_says_how_to_install(tmp_path):
    code = (
        "import sys; sys.modules['distributed'] = None\n"
        "import gristmill.core.run.engine, gristmill.cli, gristmill.core.run.dask as d\n"
        "from gristmill.core.errors import UsageError\n"
        "try:\n    d.DaskExecutor('local')\nexcept UsageError as e:\n    print(e)\n"
        "sys.exit(gristmill.cli.main(['run', '--dask', 'local', '-C', sys.argv[1]]))\n")
    (tmp_path / "gristmill.toml").write_text('[tasks.t]\ncmd = "true"\n')
    p = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 2, p.stderr
    assert "pip install 'gristmill[dask]'" in p.stdout
    assert "pip install 'gristmill[dask]'" in p.stderr and "Traceback" not in p.stderr


def test_a_file_name_that_is_not_utf8_runs_on_dask(client, tmp_path):
    # Its task name in the Dask key, and its echoed command, broke the client's connection
    # (msgpack takes only UTF-8), and the run failed as if the scheduler had gone.
    name = os.fsdecode(b"caf\xe9.csv")
    with open(os.path.join(os.fsencode(tmp_path), b"caf\xe9.csv"), "wb") as f:
        f.write(b"x\n")
    wf = workflow(tmp_path, task(f"p[{name}]", f"cp '{name}' '{name}.out'", inputs=[name],
                                 outputs=[name + ".out"], silent=False))
    result, rec = run(wf, client)
    assert result.status is RunStatus.SUCCEEDED, rec.of(TaskFinished)
    assert [e.text for e in rec.of(OutputLine)] == [f"cp '{name}' '{name}.out'"]
    with open(os.path.join(os.fsencode(tmp_path), b"caf\xe9.csv.out"), "rb") as f:
        assert f.read() == b"x\n"
    log = rec.of(TaskStarted)[0].log_path
    with open(log, "rb") as f:
        assert f.read() == b"cp 'caf\xe9.csv' 'caf\xe9.csv.out'\n"
