"""``gristmill run --cluster``: a cluster started for the run, on the real Dask (local) and
the real single-node Slurm (the ``slurm_cluster`` fixture), sized to the plan, placed,
scaled down and closed; and what goes wrong, in words."""

from __future__ import annotations

import os
import signal
import re
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

pytest.importorskip("distributed")
psutil = pytest.importorskip("psutil")

from batch import LATER, REFUSED  # noqa: E402


def gristmill(*args, env=None, timeout=240):
    return subprocess.run([sys.executable, "-m", "gristmill", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def started(*args, env=None):
    return subprocess.Popen([sys.executable, "-m", "gristmill", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})


def ran(output: str) -> list[str]:
    return re.findall(r"^✓ (\S+) \(", output, re.M)


def marked(mark: str) -> list[int]:
    found = []
    for p in psutil.process_iter():
        try:
            if p.environ().get("GRISTMILL_TEST_MARK") == mark and p.status() != psutil.STATUS_ZOMBIE:
                found.append(p.pid)
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess, OSError):
            pass
    return found


def workflow(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "gristmill.toml").write_text(textwrap.dedent(text))
    return folder


FAN = """\
    [tasks.a]
    cmd = "sleep 1; echo a > a.txt"
    outputs = ["a.txt"]
    [tasks.b]
    cmd = "sleep 1; echo b > b.txt"
    outputs = ["b.txt"]
    [tasks.join]
    cmd = "cat a.txt b.txt > joined.txt; echo $PPID > join.ppid"
    inputs = ["a.txt", "b.txt"]
    outputs = ["joined.txt"]
    where = "local"
"""


def last_run_status(folder: Path) -> str:
    """The newest run's status, as `gristmill history` tells it."""
    p = gristmill("history", "-C", folder, "-n", "1")
    assert p.returncode == 0, p.stderr
    row = p.stdout.splitlines()[1]
    return re.search(r"\b(succeeded|failed|cancelled|interrupted)\b", row).group(1)


# -- local ---------------------------------------------------------------------------

def test_a_local_cluster_is_sized_to_the_plan_and_gone_after_the_run(tmp_path):
    wf = workflow(tmp_path / "wf", FAN)
    mark = uuid.uuid4().hex
    proc = started("run", "--cluster", "local", "-C", wf, env={"GRISTMILL_TEST_MARK": mark})
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, out + err
    assert sorted(ran(out)) == ["a", "b", "join"]
    # Two tasks at once at the peak: two workers; the join stays on this machine.
    assert "a local cluster was started for this run: 2 workers of cpu = 1" in out + err
    assert "1 task stays here" in out + err
    assert (wf / "joined.txt").read_text() == "a\nb\n"
    assert int((wf / "join.ppid").read_text()) == proc.pid     # run by Gristmill itself
    assert "Traceback" not in err
    assert marked(mark) == []                                  # no worker left behind


def test_a_task_no_single_worker_can_hold_is_an_error_before_the_run(tmp_path):
    wf = workflow(tmp_path / "wf", """\
        [cluster]
        cores = 4
        max_workers = 2
        [tasks.small]
        cmd = "echo small > small.txt"
        outputs = ["small.txt"]
        [tasks.other]
        cmd = "echo other > other.txt"
        outputs = ["other.txt"]
        [tasks.big]
        cmd = "echo big > big.txt"
        outputs = ["big.txt"]
        resources = { cpu = 6 }
    """)
    p = gristmill("run", "--cluster", "local", "-C", wf)
    assert p.returncode == 2, p.stdout + p.stderr
    assert re.search(r"gristmill\.toml:10:1: task 'big' asks for cpu = 6, but no single worker "
                     r"of the cluster can hold it \(2 workers of cpu = 4", p.stderr), p.stderr
    # Two workers of 4: 8 CPUs in all, and still no worker for a task of 6.
    assert "Traceback" not in p.stderr
    assert not (wf / "small.txt").exists()


def test_cluster_settings_are_checked_at_their_line_and_column(tmp_path):
    wf = workflow(tmp_path / "wf", """\
        [cluster]
        max_workers = 0
        walltime = "soon"
        queues = "debug"
        [tasks.t]
        cmd = "true"
        where = "there"
    """)
    p = gristmill("run", "--cluster", "local", "-C", wf)
    assert p.returncode == 2
    assert "gristmill.toml:2:15: cluster.max_workers" in p.stderr, p.stderr
    assert "gristmill.toml:3:12: cluster.walltime" in p.stderr
    assert re.search(r"gristmill\.toml:4:1: .*queues", p.stderr)
    assert "gristmill.toml:7:9: tasks.t.where: expected \"local\" or \"cluster\", not 'there'" \
        in p.stderr
    assert "Traceback" not in p.stderr


def test_the_users_cluster_toml_is_read_and_its_errors_located(tmp_path):
    wf = workflow(tmp_path / "wf", FAN)
    home = Path(os.environ["GRISTMILL_HOME"])
    (home / "config").mkdir(parents=True, exist_ok=True)
    (home / "config" / "cluster.toml").write_text('[cluster]\nmax_workers = "many"\n')
    p = gristmill("run", "--cluster", "local", "-C", wf)
    assert p.returncode == 2
    assert re.search(r"cluster\.toml:2:15: cluster\.max_workers", p.stderr), p.stderr
    (home / "config" / "cluster.toml").write_text('[cluster]\nmax_workers = 1\n')
    p = gristmill("run", "--cluster", "local", "-C", wf)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "1 worker of cpu = 1" in p.stdout + p.stderr
    assert "the plan could use 2; max_workers caps it" in p.stdout + p.stderr


def test_kubernetes_without_dask_kubernetes_says_so(tmp_path):
    try:
        import dask_kubernetes  # noqa: F401
        pytest.skip("dask-kubernetes is installed here")
    except ImportError:
        pass
    p = gristmill("run", "--cluster", "kubernetes", "-C", workflow(tmp_path / "wf", FAN))
    assert p.returncode == 2
    assert "--cluster kubernetes needs dask-kubernetes, which is not installed" in p.stderr
    assert "Traceback" not in p.stderr


def test_kubernetes_without_a_cluster_to_talk_to_says_so(tmp_path):
    pytest.importorskip("dask_kubernetes", reason="dask-kubernetes is not installed here "
                        "(pip install dask-kubernetes): its no-cluster message is not checked")
    wf = workflow(tmp_path / "wf", FAN)
    # no kubeconfig anywhere, and not inside a pod
    p = gristmill("run", "--cluster", "kubernetes", "-C", wf,
                  env={"KUBECONFIG": str(tmp_path / "no-kubeconfig"), "HOME": str(tmp_path)})
    assert p.returncode == 1, p.stdout + p.stderr
    assert "no Kubernetes cluster can be reached from here (Unable to find valid " \
           "credentials): --cluster kubernetes needs a kubeconfig" in p.stdout + p.stderr
    assert "Traceback" not in p.stderr             # nor dask-kubernetes' own, at exit
    assert not (wf / "a.txt").exists()
    assert last_run_status(wf) == "failed"         # history has the run


def test_an_unknown_kind_is_a_usage_error(tmp_path):
    p = gristmill("run", "--cluster", "moon", "-C", workflow(tmp_path / "wf", FAN))
    assert p.returncode == 2
    assert "--cluster moon: expected one of local, slurm, pbs, sge, lsf, kubernetes" in p.stderr


# -- the batch systems: Slurm and Grid Engine, real and single-node -------------------

# How a task counts the jobs still queued or running in the test's own batch system
# (Grid Engine's jobs see its client settings with -V: the submitter's environment).
COUNT_JOBS = {"slurm": "squeue -h | wc -l",
              "sge": "qstat -u \\* -s pr | tail -n +3 | wc -l"}
EXPORT = {"slurm": "", "sge": '[cluster]\ndirectives = ["-V"]\n'}

SCALES_DOWN = """\
    [tasks.w1]
    cmd = "sleep 1; echo 1 > w1.txt"
    outputs = ["w1.txt"]
    [tasks.w2]
    cmd = "sleep 1; echo 2 > w2.txt"
    outputs = ["w2.txt"]
    [tasks.tail]
    # Runs alone: it waits (at most a minute) until its own job is the only one left
    # in the test's own batch system, as the narrowed plan lets the cluster give the
    # other back.
    cmd = '''for i in $(seq 600); do n=$(COUNT); [ "$n" = 1 ] && break; sleep 0.1; done; echo "$n" > tail.txt; [ "$n" = 1 ]'''
    inputs = ["w1.txt", "w2.txt"]
    outputs = ["tail.txt"]
    where = "cluster"
"""


def test_batch_jobs_run_the_tasks_scale_down_and_are_gone_after(tmp_path, batch):
    kind, s = batch
    wf = workflow(tmp_path / "wf", SCALES_DOWN.replace("COUNT", COUNT_JOBS[kind]))
    (wf / "gristmill.toml").write_text(EXPORT[kind] + (wf / "gristmill.toml").read_text())
    proc = started("run", "--cluster", kind, "-C", wf, env=s.env)
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, out + err
    name = f"gristmill-{proc.pid}"
    assert sorted(ran(out)) == ["tail", "w1", "w2"]
    assert f"a {kind} cluster was started for this run: 2 workers" in out + err
    assert (wf / "tail.txt").read_text().split() == ["1"]     # scaled down to one
    assert len(s.accounted(name)) >= 2          # the batch system ran the workers' jobs...
    assert s.queue(name) == []                  # ...and none is left queued or running
    assert "Traceback" not in err


def test_a_refused_job_script_fails_the_run_in_words(tmp_path, batch):
    kind, s = batch
    wf = workflow(tmp_path / "wf", '[cluster]\nqueue = "nosuchpartition"\n' + textwrap.dedent(FAN))
    proc = started("run", "--cluster", kind, "-C", wf, env=s.env)
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 1, out + err
    assert f"the batch system ({kind}) refused the job script: {REFUSED[kind]}" in out + err
    assert "Traceback" not in err
    assert not (wf / "a.txt").exists()
    assert s.queue(f"gristmill-{proc.pid}") == []
    assert last_run_status(wf) == "failed"       # history has the whole run


def test_a_cluster_that_never_gets_a_worker_times_out_and_cancels_its_jobs(tmp_path, batch):
    kind, s = batch
    wf = workflow(tmp_path / "wf", f'[cluster]\ndirectives = ["{LATER[kind]}"]\n'
                                   'timeout = "2s"\n' + textwrap.dedent(FAN))
    proc = started("run", "--cluster", kind, "-C", wf, env=s.env)
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 1, out + err
    name = f"gristmill-{proc.pid}"
    assert f"the {kind} cluster got no worker in 2.0 s (its 2 queued jobs were cancelled)" \
        in out + err
    assert "Traceback" not in err
    assert len(s.accounted(name)) == 2          # they were queued...
    assert s.queue(name) == []                  # ...and are cancelled
    assert not (wf / "a.txt").exists()
    assert last_run_status(wf) == "failed"       # history has the whole run


def test_a_cancelled_run_leaves_nothing_in_the_batch_system(tmp_path, batch):
    kind, s = batch
    wf = workflow(tmp_path / "wf", """\
        [tasks.long]
        cmd = "echo partial > out.txt; touch begun; sleep 120; echo whole >> out.txt"
        outputs = ["out.txt"]
    """)
    proc = started("run", "--cluster", kind, "-C", wf, env=s.env)
    name = f"gristmill-{proc.pid}"
    while not (wf / "begun").exists():     # until the task runs in its worker's job
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    assert s.queue(name)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, out + err
    assert "Traceback" not in err
    assert not (wf / "out.txt").exists(), out + err   # the partial output removed
    assert s.queue(name) == []                 # no job left queued or running
    assert last_run_status(wf) == "cancelled"
