"""A task's processes are held by the kernel (a cgroup) or, without one, found through
/proc with Gristmill as their subreaper: real processes, real cgroups (as root).

Each test runs in every way this machine can hold a task: ``cgroup`` (what detection
picks: v1 here, as root), ``v2`` (a v2 cgroup forced, which here has no controllers:
the tree is held, memory sampled) and ``off`` (no cgroup: the subreaper). A way the
machine lacks is skipped with the reason.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from gristmill.core.decide.capacity import Capacity
from gristmill.core.events import EventBus, Outcome, RunNotice, RunStatus
from gristmill.core.run import cgroups
from gristmill.core.run.engine import Engine, RunOptions

from wf import Recorder, task, workflow

MB = 1000**2
GB = 1000**3
MODES = ("cgroup", "v2", "off")


@pytest.fixture(params=MODES)
def mode(request, monkeypatch):
    """Runs the test with one way of holding tasks; skipped where the machine lacks it."""
    m = request.param
    monkeypatch.setenv(cgroups.ENV, {"cgroup": "auto", "v2": "v2", "off": "off"}[m])
    offer = cgroups.offer(refresh=True)
    try:
        if m == "cgroup" and not (offer.version and offer.memory):
            pytest.skip(f"no cgroup with the memory controller can be had here: "
                        f"{offer.why_not or offer.enforced()}")
        if m == "v2" and offer.version != 2:
            pytest.skip(f"no writable cgroup v2 here: {offer.why_not}")
        yield m
    finally:
        monkeypatch.undo()
        cgroups.offer(refresh=True)


def _engine(wf, **opts):
    rec = Recorder()
    bus = EventBus()
    bus.subscribe(rec)
    cap = opts.pop("capacity", Capacity(cpu=4, mem=8 * GB, gpu=0))
    return Engine(wf, bus=bus, options=RunOptions(capacity=cap, structured_log=False,
                                                  **opts)), rec


def _procs_with(marker: str) -> list[int]:
    """Every live process whose command line holds ``marker`` (zombies are dead)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{entry}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in cmdline and state != b"Z" and int(entry) != os.getpid():
            found.append(int(entry))
    return found


def _wait_for(*files: Path, within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not all(f.exists() and f.read_text().strip() for f in files):
        assert time.monotonic() < deadline, f"never written: {files}"
        time.sleep(0.02)


def _leftover_cgroups() -> list[str]:
    """Folders of this process's executors left in the cgroup hierarchies."""
    o = cgroups.offer()
    homes = [o.home] if o.version == 2 else list(o.v1_dirs.values())
    mine = f"gristmill-{os.getpid()}-"
    return [n for h in homes if os.path.isdir(h) for n in os.listdir(h) if n.startswith(mine)]


def _marker() -> str:
    """A sleep length no other process on the machine uses: ``sleep 3xxx.yyy``."""
    return f"{3000 + os.getpid() % 1000}.{int(time.time() * 1000) % 1000:03d}"


# -- memory -------------------------------------------------------------------------------

def test_a_task_over_its_declared_mem_is_killed_and_told_in_words_with_its_peak(
        tmp_path, mode):
    alloc = "python3 -c 'b = b\"x\" * (400 * 1000 * 1000); import time; time.sleep(20)'"
    wf = workflow(tmp_path, task("hog", alloc, phony=True, mem=150 * MB),
                  task("fine", "echo fine", phony=True, mem=150 * MB))
    engine, rec = _engine(wf, keep_going=True)
    result = engine.run([])
    assert result.status is RunStatus.FAILED
    (hog,) = rec.finished("hog")
    assert hog.outcome is Outcome.FAILED
    assert hog.message.startswith("killed for using more than its declared mem (150.0 MB); "
                                  "peak "), hog.message
    assert hog.peak_mem and hog.peak_mem > 100 * MB
    assert "signal" not in hog.message
    (fine,) = rec.finished("fine")
    assert fine.outcome is Outcome.SUCCEEDED
    assert not _leftover_cgroups()


def test_timeout_python_under_a_mem_limit_is_killed_though_it_is_in_its_own_group(
        tmp_path, mode):
    # GNU timeout puts itself and python in a process group of their own.
    marker = _marker()
    alloc = (f"timeout 60 python3 -c 'b = b\"x\" * (500 * 1000 * 1000); import time; "
             f"time.sleep({marker})'")
    wf = workflow(tmp_path, task("hog", alloc, phony=True, mem=100 * MB))
    engine, rec = _engine(wf)
    result = engine.run([])
    assert result.status is RunStatus.FAILED
    (hog,) = rec.finished("hog")
    assert hog.message.startswith("killed for using more than its declared mem (100.0 MB)")
    assert not _procs_with(f"time.sleep({marker})")


# -- escaping processes -------------------------------------------------------------------

def _stopped_run(engine, marker: str, *started: Path, abort: bool = False):
    """Run on a thread until ``started`` are written, then cancel (or abort) it: the
    result, once no process of it, ``sleep MARKER``, is left."""
    result = {}
    th = threading.Thread(target=lambda: result.setdefault("r", engine.run([])))
    th.start()
    _wait_for(*started)
    assert len(_procs_with(f"sleep {marker}")) >= 2
    engine.abort() if abort else engine.cancel()
    th.join(20)
    assert not th.is_alive()
    assert not _procs_with(f"sleep {marker}")
    return result["r"]


def test_a_double_forking_setsid_daemon_is_killed_on_cancel(tmp_path, mode):
    marker = _marker()
    # The subshell forks the daemon and exits: the daemon's parent is gone, and it sits in
    # a session of its own; its own child too.
    script = (f"(setsid sh -c 'echo $$ > daemon.pid; sleep {marker} & echo $! > child.pid; "
              f"wait' &); sleep {marker}")
    wf = workflow(tmp_path, task("daemon", script, phony=True))
    engine, rec = _engine(wf)
    result = _stopped_run(engine, marker, tmp_path / "daemon.pid", tmp_path / "child.pid")
    assert result.status is RunStatus.CANCELLED
    pids = [int((tmp_path / n).read_text()) for n in ("daemon.pid", "child.pid")]
    assert not [p for p in pids if os.path.exists(f"/proc/{p}/cmdline")
                and open(f"/proc/{p}/cmdline", "rb").read()]
    assert not _leftover_cgroups()


def test_gnu_timeout_inside_a_command_is_killed_on_the_task_timeout(tmp_path, mode):
    marker = _marker()
    wf = workflow(tmp_path, task("slow", f"timeout 100 sleep {marker}; echo after > out",
                                 outputs=["out"], timeout=0.5))
    engine, rec = _engine(wf)
    result = engine.run([])
    assert result.status is RunStatus.FAILED
    (slow,) = rec.finished("slow")
    assert slow.outcome is Outcome.TIMED_OUT
    # The attempt ended only once its tree was gone: nothing is left to write "out".
    assert not _procs_with(f"sleep {marker}")
    assert not (tmp_path / "out").exists()


def test_a_failed_attempt_ends_only_when_its_background_processes_are_gone(tmp_path, mode):
    marker = _marker()
    wf = workflow(tmp_path, task("bad", f"sh -c 'sleep {marker}; echo late > out' & "
                                        f"echo $! > bg.pid; exit 3", outputs=["out"]))
    engine, rec = _engine(wf)
    result = engine.run([])
    assert result.status is RunStatus.FAILED
    (bad,) = rec.finished("bad")
    assert bad.exit_code == 3
    assert not _procs_with(f"sleep {marker}")


def test_ctrl_c_abort_kills_an_escaped_tree_at_once(tmp_path, mode):
    marker = _marker()
    script = (f"(setsid sh -c 'trap \"\" TERM; echo $$ > d.pid; exec sleep {marker}' &); "
              f"trap '' TERM; sleep {marker}")
    wf = workflow(tmp_path, task("stubborn", script, phony=True))
    engine, rec = _engine(wf)
    result = _stopped_run(engine, marker, tmp_path / "d.pid", abort=True)
    assert result.status is RunStatus.CANCELLED


# -- what the user is told ----------------------------------------------------------------

def test_without_cgroups_the_user_is_told_once_what_is_not_enforced(tmp_path, monkeypatch):
    monkeypatch.setenv(cgroups.ENV, "off")
    cgroups.offer(refresh=True)
    monkeypatch.setattr(cgroups, "_told", set())
    try:
        notices = []
        for i in range(2):
            wf = workflow(tmp_path, task(f"t{i}", "true", phony=True))
            engine, rec = _engine(wf)
            engine.run([])
            notices += [e.message for e in rec.of(RunNotice)]
    finally:
        monkeypatch.undo()
        cgroups.offer(refresh=True)
    assert len(notices) == 1
    assert "no cgroup for tasks (GRISTMILL_CGROUPS=off)" in notices[0]
    assert "declared mem is enforced by sampling" in notices[0]
    assert "declared cpu is not enforced" in notices[0]


def test_a_background_process_of_a_success_lives_on_outside_the_tasks_cgroup(
        tmp_path, mode):
    wf = workflow(tmp_path, task("bg", "sleep 60 & echo $! > bg.pid", outputs=["bg.pid"]))
    engine, rec = _engine(wf)
    result = engine.run([])
    pid = int((tmp_path / "bg.pid").read_text())
    try:
        assert result.status is RunStatus.SUCCEEDED
        os.kill(pid, 0)
        assert not _leftover_cgroups()
    finally:
        os.kill(pid, 9)


def test_a_task_whose_process_the_kernel_killed_fails_though_its_command_went_on(
        tmp_path, mode):
    if mode != "cgroup":
        pytest.skip("only a kernel limit kills one process of a task and lets it go on")
    alloc = "python3 -c 'b = b\"x\" * (400 * 1000 * 1000)'; echo went on > out"
    wf = workflow(tmp_path, task("hog", alloc, outputs=["out"], mem=100 * MB))
    engine, rec = _engine(wf)
    result = engine.run([])
    assert result.status is RunStatus.FAILED
    (hog,) = rec.finished("hog")
    assert hog.outcome is Outcome.FAILED
    assert hog.message.startswith("killed for using more than its declared mem (100.0 MB)")
    assert not (tmp_path / "out").exists()     # its output went with the failed attempt


def test_without_cgroups_the_orphans_of_tasks_leave_no_zombies(tmp_path, monkeypatch):
    # Gristmill is their subreaper: what it adopts, it reaps, also what died unseen.
    monkeypatch.setenv(cgroups.ENV, "off")
    cgroups.offer(refresh=True)
    try:
        script = "(sleep 0.2 &); (setsid sh -c 'sleep 0.1' &); echo started"
        wf = workflow(tmp_path, *[task(f"t{i}", script, phony=True) for i in range(4)])
        engine, rec = _engine(wf)
        assert engine.run([]).status is RunStatus.SUCCEEDED
        time.sleep(0.5)                    # every orphan is dead by now, a zombie of ours
        engine, rec = _engine(workflow(tmp_path, task("next", "true", phony=True)))
        assert engine.run([]).status is RunStatus.SUCCEEDED
    finally:
        monkeypatch.undo()
        cgroups.offer(refresh=True)
    me = os.getpid()
    children = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == me and fields[0] == b"Z":
            children.append(int(entry))
    assert children == []


def test_with_cpu_quotas_on_a_task_gets_the_cpu_time_it_declares(tmp_path, mode, monkeypatch):
    monkeypatch.setenv(cgroups.CPU_ENV, "1")
    o = cgroups.offer()
    if mode == "off" or not o.cpu:
        pytest.skip(f"no cgroup with the cpu controller in this mode ({mode})")
    # The task reads its own quota where the kernel keeps it.
    if o.version == 2:
        m = next(m for m in cgroups.mounts() if m.kind == "cgroup2")
        where = f"{m.point}$(sed -n 's/^0:://p' /proc/self/cgroup)/cpu.max"
    else:
        m = next(m for m in cgroups.mounts() if m.kind == "cgroup" and "cpu" in m.controllers)
        where = (f"{m.point}$(awk -F: '$2 ~ /(^|,)cpu(,|$)/ {{print $3}}' /proc/self/cgroup)"
                 "/cpu.cfs_quota_us")
    wf = workflow(tmp_path, task("half", f"cat {where} > quota", outputs=["quota"], cpu=0.5),
                  task("free", f"cat {where} > free", outputs=["free"], cpu=0))
    engine, rec = _engine(wf)
    assert engine.run([]).status is RunStatus.SUCCEEDED
    assert (tmp_path / "quota").read_text().split()[0] == "50000"
    assert (tmp_path / "free").read_text().split()[0] in ("-1", "max")


def test_a_task_that_makes_cgroups_of_its_own_cannot_escape_a_cancel(tmp_path, mode):
    # A cgroup below the task's (a Gristmill run, or anything that makes cgroups, inside a
    # task): its processes are the task's too.
    o = cgroups.offer()
    if mode == "off" or not o.version:
        pytest.skip("only a task in a cgroup can make cgroups below it")
    marker = _marker()
    if o.version == 2:
        m = next(m for m in cgroups.mounts() if m.kind == "cgroup2")
        own = f"{m.point}$(sed -n 's/^0:://p' /proc/self/cgroup)"
    else:
        m = next(m for m in cgroups.mounts() if m.kind == "cgroup" and "memory" in m.controllers)
        own = f"{m.point}$(awk -F: '$2 == \"memory\" {{print $3}}' /proc/self/cgroup)"
    script = (f"d={own}/inner; mkdir $d; sh -c 'echo $$ > '$d'/cgroup.procs; "
              f"echo $$ > inner.pid; exec sleep {marker}' & sleep {marker}")
    wf = workflow(tmp_path, task("nested", script, phony=True))
    engine, rec = _engine(wf)
    result = _stopped_run(engine, marker, tmp_path / "inner.pid")
    assert result.status is RunStatus.CANCELLED
    assert not _leftover_cgroups()
