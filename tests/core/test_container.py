"""``isolation = "container"`` with the real podman and an image built here: the image is
a rootfs of Debian's busybox-static, imported once per test session (no registry is
reachable, and none is needed)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import textwrap

import busybox_image
import pytest

from gristmill.core.decide.capacity import Capacity
from gristmill.core.errors import WorkflowError
from gristmill.core.events import Outcome
from gristmill.core.load.loader import load_workflow
from gristmill.core.run.container import LABEL, container_name
from gristmill.core.run.engine import Engine, RunOptions
from wf import run_file

PODMAN = shutil.which("podman")
pytestmark = pytest.mark.skipif(not busybox_image.available(),
                                reason="needs podman and busybox-static")


def podman(*args, check=True):
    return subprocess.run([PODMAN, *args], capture_output=True, text=True, timeout=120,
                          check=check)


@pytest.fixture(scope="session")
def image():
    """The busybox image, imported once (``busybox_image``), and podman able to run it."""
    name = busybox_image.ensure_image(PODMAN)
    p = podman("run", "--rm", name, "true", check=False)
    if p.returncode != 0:
        pytest.fail(f"podman cannot run a container here: {p.stderr.strip()} (on a CI machine, "
                    ".ci/run writes /etc/containers/containers.conf: see Isolation in "
                    "docs/WORKFLOW.md)")
    return name


def run(folder, text, targets=(), **opts):
    return run_file(folder, text, targets, **opts)


def containers_of(run_id: str) -> list[str]:
    names = podman("ps", "-a", "--format", "{{.Names}}").stdout.split()
    return [n for n in names if n.startswith(f"gristmill-{run_id}")]


def test_a_container_task_builds_its_output_as_the_user_and_leaves_nothing(tmp_path, image):
    (tmp_path / "src").mkdir()
    (tmp_path / "src/in.txt").write_text("hello\n")
    result, done, out = run(tmp_path, f"""
        [tasks.build]
        container = "{image}"
        cwd = "src"
        cmd = ["tr a-z A-Z < in.txt > ../out/up.txt",
               "pwd; echo $GREETING $GRISTMILL_TASK; id -u; ls /sys/class/net",
               "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max"]
        inputs = "src/in.txt"
        outputs = "out/up.txt"
        env = {{ GREETING = "hi there" }}
        resources = {{ mem = "300MiB" }}
        """)
    assert done["build"].outcome is Outcome.SUCCEEDED, (done["build"].message, out)
    up = tmp_path / "out/up.txt"
    assert up.read_text() == "HELLO\n"
    assert up.stat().st_uid == os.getuid() and up.stat().st_gid == os.getgid()
    assert out["build"] == [str(tmp_path / "src"), "hi there build", str(os.getuid()), "lo",
                            str(300 * 2**20)]
    assert containers_of(result.run_id) == []


def test_hostile_names_reach_podman_as_single_arguments(tmp_path, image):
    names = ["a b.txt", "it's \"q\".txt", "$(touch pwned).txt", "-rf x.txt"]
    for i, n in enumerate(names):
        (tmp_path / n).write_text(f"{i}\n")
    result, done, out = run(tmp_path, f"""
        [tasks.cat]
        container = {{ image = "{image}", options = ["--label", "x=$(touch pwned2)"] }}
        inputs = [{", ".join(json.dumps(n) for n in names)}]
        outputs = "all $(touch pwned3).txt"
        cmd = "cat -- {{inputs}} > {{outputs}}"
        """)
    assert done["cat"].outcome is Outcome.SUCCEEDED, (done["cat"].message, out)
    assert (tmp_path / "all $(touch pwned3).txt").read_text() == "0\n1\n2\n3\n"
    assert not [n for n in os.listdir(tmp_path) if n.startswith("pwned")]


def test_a_timeout_stops_the_container(tmp_path, image):
    result, done, out = run(tmp_path, f"""
        [tasks.long]
        container = "{image}"
        cmd = "echo started; sleep 300"
        timeout = "2s"
        phony = true
        """, ["long"])
    assert done["long"].outcome is Outcome.TIMED_OUT
    assert containers_of(result.run_id) == []


def test_containers_left_by_a_crashed_run_are_removed_at_the_next_start(tmp_path, image):
    dead = subprocess.Popen(["true"])
    dead.wait()                                       # a pid that is gone
    old = "gristmill-20000101-000000-dead00-task-1"
    mine = "gristmill-20000101-000000-live00-task-1"
    podman("run", "-d", "--name", old, "--label", f"{LABEL}={dead.pid}", image, "sleep", "300")
    podman("run", "-d", "--name", mine, "--label", f"{LABEL}={os.getpid()}", image, "sleep", "300")
    try:
        result, done, out = run(tmp_path, f"""
            [tasks.t]
            container = "{image}"
            cmd = "true"
            phony = true
            """, ["t"])
        names = podman("ps", "-a", "--format", "{{.Names}}").stdout.split()
        assert old not in names            # its run is gone: removed
        assert mine in names               # a live run's: kept
    finally:
        podman("rm", "-f", "-i", "-t", "0", old, mine, check=False)


def test_a_missing_image_is_an_error_before_anything_runs(tmp_path, image):
    (tmp_path / "gristmill.toml").write_text(textwrap.dedent("""
        [tasks.first]
        cmd = "touch ran.txt"
        outputs = "ran.txt"
        [tasks.boxed]
        container = "localhost/gristmill-no-such-image:0"
        cmd = "true"
        after = "first"
        """))
    wf = load_workflow(tmp_path / "gristmill.toml")
    with pytest.raises(WorkflowError) as e:
        Engine(wf, options=RunOptions(capacity=Capacity(cpu=4, mem=10**9))).run()
    assert str(e.value).startswith(f"{tmp_path / 'gristmill.toml'}:5:1: task 'boxed' runs in "
                                   "container image 'localhost/gristmill-no-such-image:0', "
                                   "which podman does not have")
    assert not (tmp_path / "ran.txt").exists()


@pytest.mark.skipif(shutil.which("docker") is None, reason="needs the docker client")
def test_an_engine_that_cannot_answer_is_an_error_naming_it(tmp_path, image):
    if subprocess.run(["docker", "info"], capture_output=True, timeout=60).returncode == 0:
        pytest.skip("docker's daemon runs here")
    (tmp_path / "gristmill.toml").write_text(
        '[tasks.d]\ncmd = "true"\ncontainer = { image = "busybox", engine = "docker" }\n')
    wf = load_workflow(tmp_path / "gristmill.toml")
    with pytest.raises(WorkflowError) as e:
        Engine(wf, options=RunOptions(capacity=Capacity(cpu=4, mem=10**9))).run()
    assert "task 'd' runs in container image 'busybox', but docker cannot tell whether it " \
           "has it: Cannot connect to the Docker daemon" in str(e.value)


def test_container_names_are_safe_and_distinct():
    a = container_name("20261204-1-ab", "thumb[images/a b.png]", 1)
    b = container_name("20261204-1-ab", "thumb[images/a_b.png]", 1)
    assert a != b and a.startswith("gristmill-20261204-1-ab-thumb_images_a_b.png_-")
    assert all(c.isalnum() or c in "_.-" for c in a)
    assert container_name("r", "t", 2, 1) == "gristmill-r-t-2-2"


def test_ctrl_c_of_a_run_stops_its_container(tmp_path, image):
    import signal
    import sys
    import time
    (tmp_path / "gristmill.toml").write_text(
        f'[tasks.long]\ncontainer = "{image}"\ncmd = "echo started > started; sleep 300"\n'
        'phony = true\n[workflow]\ndefault = ["long"]\n')
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-m", "gristmill", "run", "-C", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.time() + 60
        while not (tmp_path / "started").exists():
            assert time.time() < deadline and proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        names = podman("ps", "--format", "{{.Names}}").stdout.split()
        ours = [n for n in names if n.startswith("gristmill-") and n.endswith("-long-1")]
        assert len(ours) >= 1
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and "Traceback" not in err
    left = podman("ps", "-a", "--format", "{{.Names}}").stdout.split()
    assert not set(ours) & set(left)


def test_declared_cpu_mem_and_assigned_gpus_reach_the_engine_as_flags(tmp_path):
    from gristmill.core.run.container import Container
    from gristmill.core.workflow import Isolation, Resources, Task
    task = Task("train", ("python train.py",), cwd=str(tmp_path),
                resources=Resources(cpu=2.5, mem=3 * 2**30, gpu=2),
                isolation=Isolation("container", False, "img:1", "", ("--shm-size", "1g")))
    env = {"CUDA_VISIBLE_DEVICES": "1,3", "GRISTMILL_TASK": "train"}
    podman_argv = Container("/usr/bin/podman", task, str(tmp_path), "r1", 1, env).argv(["true"], 0)
    docker_argv = Container("/usr/bin/docker", task, str(tmp_path), "r1", 1, env).argv(["true"], 0)
    flags = " ".join(podman_argv)
    assert "--cpus 2.5 --memory 3221225472b" in flags
    assert "--device nvidia.com/gpu=1 --device nvidia.com/gpu=3" in flags
    assert "--network none" in flags and "--env GRISTMILL_TASK" in flags
    assert "CUDA_VISIBLE_DEVICES" not in flags       # inside, the devices it has are its own
    assert flags.endswith("--shm-size 1g img:1 true")
    assert '--gpus "device=1,3"' in " ".join(docker_argv)


def test_rlimits_podman_cannot_set_here_are_explained(tmp_path, image):
    hard = subprocess.run(["sh", "-c", "ulimit -Hn"], capture_output=True, text=True).stdout.strip()
    if not hard.isdigit():
        pytest.skip("no hard limit on open files here")
    result, done, out = run(tmp_path, f"""
        [tasks.t]
        container = {{ image = "{image}", options = ["--ulimit", "nofile={int(hard) + 1}:{int(hard) + 1}"] }}
        cmd = "true"
        phony = true
        """, ["t"])
    assert done["t"].outcome is Outcome.FAILED
    assert "podman cannot give the container its default rlimits on this machine" in done["t"].message


def test_a_folder_an_engine_cannot_mount_is_an_error_before_anything_runs(tmp_path, image):
    root = tmp_path / "data:2026"
    root.mkdir()
    (root / "gristmill.toml").write_text(f'[tasks.t]\ncontainer = "{image}"\ncmd = "true"\n'
                                         'phony = true\n')
    wf = load_workflow(root / "gristmill.toml")
    with pytest.raises(WorkflowError) as e:
        Engine(wf, options=RunOptions(capacity=Capacity(cpu=4, mem=10**9))).run(["t"])
    assert str(e.value) == (f"{root / 'gristmill.toml'}:1:1: task 't' runs in a container, but "
                            f"the folder {str(root)!r} holds ':' or ',', which a container "
                            "engine cannot mount")
