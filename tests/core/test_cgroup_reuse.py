"""An executor takes a job's cgroup again for its next job (issue 18): the next job
finds it as a new one, with nothing of the job before it: no process, no limit, no
memory peak, no out-of-memory kill. Real processes in real cgroups (as root); a way
of holding tasks this machine lacks is skipped with the reason.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gristmill.core.decide.capacity import Capacity
from gristmill.core.events import EventBus, Outcome, RunStatus, TaskStarted
from gristmill.core.record.store import process_start
from gristmill.core.run import cgroups
from gristmill.core.run.engine import Engine, RunOptions

from test_isolation import mode  # noqa: F401  (a fixture: each way of holding tasks)
from wf import Recorder, task, workflow

MB = 1000**2
GB = 1000**3


@pytest.fixture
def offer(mode):
    """What the kernel offers in each way of holding tasks that has a cgroup."""
    if mode == "off":
        pytest.skip("without a cgroup there is none to take again")
    return cgroups.offer()


def _where(o: cgroups.Offer) -> str:
    """Shell words for the folder of the cgroup the running shell is in."""
    if o.version == 2:
        m = next(m for m in cgroups.mounts() if m.kind == "cgroup2")
        return f"{m.point}$(sed -n 's/^0:://p' /proc/self/cgroup)"
    m = next(m for m in cgroups.mounts() if m.kind == "cgroup" and "memory" in m.controllers)
    return f"{m.point}$(awk -F: '$2 == \"memory\" {{print $3}}' /proc/self/cgroup)"


def _run(wf, jobs: int = 1):
    rec = Recorder()
    bus = EventBus()
    bus.subscribe(rec)
    engine = Engine(wf, bus=bus, options=RunOptions(
        jobs=jobs, keep_going=True, structured_log=False,
        capacity=Capacity(cpu=4, mem=8 * GB, gpu=0)))
    return engine.run([]), rec


def test_the_next_job_in_a_cgroup_has_no_limit_and_no_peak_of_the_one_before(
        tmp_path, offer):
    where = _where(offer)
    mem_file = "memory.max" if offer.version == 2 else "memory.limit_in_bytes"
    # a holds 150 MB under a 300 MB limit; b, after it in the same cgroup, declares none.
    hog = "python3 -c 'b = bytearray(150 * 1000 * 1000); b[::4096] = b\"x\" * len(b[::4096])'"
    wf = workflow(
        tmp_path,
        task("a", f'{hog}; d={where}; echo "$d" > a.cg', outputs=["a.cg"], mem=300 * MB),
        task("b", f'd={where}; echo "$d" > b.cg; cat "$d/cgroup.procs" > b.procs; '
                  f'cat "$d/{mem_file}" > b.limit 2>/dev/null || echo none > b.limit',
             outputs=["b.cg"], after=["a"]))
    result, rec = _run(wf)
    assert result.status is RunStatus.SUCCEEDED
    cg = (tmp_path / "a.cg").read_text()
    assert f"/gristmill-{os.getpid()}-" in cg and "/job-" in cg, cg   # born in a job's cgroup
    assert (tmp_path / "b.cg").read_text() == cg       # the same cgroup, taken again
    limit = (tmp_path / "b.limit").read_text().strip()
    if offer.memory:
        assert limit in ("max", "9223372036854771712"), limit   # no limit: the kernel's words
        (a,) = rec.finished("a")
        (b,) = rec.finished("b")
        assert a.peak_mem is not None and a.peak_mem >= 150 * MB
        assert b.peak_mem is None or b.peak_mem < 50 * MB, b.peak_mem
    # Only b's own processes were in it (its shell and cat).
    assert len((tmp_path / "b.procs").read_text().split()) <= 2


def test_a_process_a_job_left_running_is_not_in_the_next_jobs_cgroup(tmp_path, offer):
    where = _where(offer)
    wf = workflow(
        tmp_path,
        task("a", f'sleep 60 & echo $! > a.pid; d={where}; echo "$d" > a.cg',
             outputs=["a.pid"]),
        task("b", f'd={where}; echo "$d" > b.cg; cat "$d/cgroup.procs" > b.procs',
             outputs=["b.cg"], after=["a"]))
    result, rec = _run(wf)
    pid = int((tmp_path / "a.pid").read_text())
    try:
        assert result.status is RunStatus.SUCCEEDED
        os.kill(pid, 0)                                  # it lives on, as before
        assert str(pid) not in (tmp_path / "b.procs").read_text().split()
    finally:
        os.kill(pid, 9)


def test_after_an_out_of_memory_kill_the_next_job_in_the_cgroup_is_not_told_one(
        tmp_path, offer):
    if not offer.memory:
        pytest.skip("only a cgroup with the memory controller has the kernel's OOM kills")
    where = _where(offer)
    hog = "python3 -c 'b = bytearray(400 * 1000 * 1000); b[::4096] = b\"x\" * len(b[::4096])'"
    wf = workflow(
        tmp_path,
        task("hog", f'd={where}; echo "$d" > hog.cg; {hog}', outputs=["hog.out"],
             mem=100 * MB),
        task("small", f'd={where}; echo "$d" > small.cg', outputs=["small.cg"],
             mem=100 * MB))
    result, rec = _run(wf)
    (hog,) = rec.finished("hog")
    (small,) = rec.finished("small")
    assert hog.outcome is Outcome.FAILED
    assert hog.message.startswith("killed for using more than its declared mem")
    assert (tmp_path / "small.cg").read_text() == (tmp_path / "hog.cg").read_text()
    assert small.outcome is Outcome.SUCCEEDED, small.message


def test_the_start_token_each_task_is_recorded_with_is_its_process_as_proc_tells_it(
        tmp_path):
    # History keeps (process group, start) for each attempt: after a kill -9 of
    # Gristmill the next start finds the group by it. The executor reads the start from
    # the clock around its spawn instead of from /proc: it must be the same token.
    seen: list[tuple[str, str | None]] = []

    def check(ev):
        if isinstance(ev, TaskStarted):
            seen.append((ev.process_start, process_start(ev.pgid)))   # alive: sleep 1

    tasks = [task(f"t{i}", "sleep 1", phony=True) for i in range(12)]
    wf = workflow(tmp_path, *tasks)
    bus = EventBus()
    bus.subscribe(check)
    result = Engine(wf, bus=bus, options=RunOptions(
        jobs=12, structured_log=False, capacity=Capacity(cpu=12, mem=8 * GB))).run([])
    assert result.status is RunStatus.SUCCEEDED
    assert len(seen) == 12
    for recorded, proc in seen:
        assert proc is not None
        assert recorded == proc


_TINY_LIMITS = """
import os, sys
sys.path.insert(0, sys.argv[2])
os.chdir(sys.argv[1])         # the tasks' folder: started with posix_spawn, as by the CLI
from pathlib import Path
from wf import task, workflow
from gristmill.core.decide.capacity import Capacity
from gristmill.core.events import EventBus
from gristmill.core.run.engine import Engine, RunOptions
hog = "python3 -c 'b = bytearray(50_000_000)'"
wf = workflow(Path(sys.argv[1]), *[task(f"t{i}", hog, phony=True, mem=200_000)
                                   for i in range(30)])
result = Engine(wf, bus=EventBus(), options=RunOptions(
    jobs=2, keep_going=True, structured_log=False,
    capacity=Capacity(cpu=4, mem=8 * 10**9))).run([])
print("ran", result.counts)
"""


def test_a_run_on_the_main_thread_is_not_killed_by_a_tasks_tiny_memory_limit(
        tmp_path, offer):
    # A library user (and every test here) runs the engine on the process's first
    # thread. Spawning from it, that thread sat in the job's cgroup until the child
    # exec'ed: a child over its 200 KB limit then had the kernel's OOM killer choose
    # between it and all of Gristmill, and it chose Gristmill (killed 3 runs in 3).
    if offer.version != 1:
        pytest.skip("only cgroup v1 moves the spawning thread into the job's cgroup")
    import subprocess
    import sys
    script = tmp_path / "tiny.py"
    script.write_text(_TINY_LIMITS)
    proc = subprocess.run([sys.executable, str(script), str(tmp_path),
                           str(Path(__file__).parent)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    assert "ran {'failed': 30}" in proc.stdout
