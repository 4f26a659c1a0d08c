"""``isolation = "sandbox"`` with the real bubblewrap: what a task sees, what it may write,
what reaches the workflow folder, and what it cannot do."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import uuid

import pytest

from gristmill.core.decide.capacity import Capacity
from gristmill.core.events import EventBus, Outcome, TaskFinished
from gristmill.core.load.loader import load_workflow
from gristmill.core.run.engine import Engine, RunOptions
from wf import run_file
from gristmill.core.run.sandbox import STAGE_PREFIX

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")


def run(folder, text, targets=(), **opts):
    return run_file(folder, text, targets, **opts)


def no_stage_left(folder):
    return not [n for n in os.listdir(folder) if n.startswith(STAGE_PREFIX)]


def test_a_sandboxed_task_builds_its_output_from_its_inputs(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src/in.txt").write_text("hello\n")
    result, done, out = run(tmp_path, """
        [tasks.copy]
        isolation = "sandbox"
        cwd = "src"
        cmd = ["tr a-z A-Z < in.txt > ../out/up.txt", "cat ../out/up.txt > ../out/again.txt",
               "pwd"]
        inputs = "src/in.txt"
        outputs = ["out/up.txt", "out/again.txt"]
        """)
    assert done["copy"].outcome is Outcome.SUCCEEDED, done["copy"].message
    assert (tmp_path / "out/up.txt").read_text() == "HELLO\n"
    assert (tmp_path / "out/again.txt").read_text() == "HELLO\n"     # commands share the stage
    assert out["copy"] == [str(tmp_path / "src")]
    assert no_stage_left(tmp_path)


def test_inputs_are_read_only_and_tmp_is_private(tmp_path):
    (tmp_path / "in.txt").write_text("keep\n")
    marker = f"gristmill-private-{uuid.uuid4().hex}"
    result, done, out = run(tmp_path, f"""
        [tasks.spoil]
        isolation = "sandbox"
        cmd = "echo spoiled > in.txt"
        inputs = "in.txt"
        [tasks.tmp]
        isolation = "sandbox"
        cmd = "echo x > /tmp/{marker} && cat /tmp/{marker} > t.txt"
        outputs = "t.txt"
        """)
    assert done["spoil"].outcome is Outcome.FAILED
    assert (tmp_path / "in.txt").read_text() == "keep\n"
    assert done["tmp"].outcome is Outcome.SUCCEEDED, done["tmp"].message
    assert not os.path.exists(f"/tmp/{marker}")
    assert (tmp_path / "t.txt").read_text() == "x\n"


@pytest.mark.parametrize("how", ["fails", "times out", "is killed"])
def test_a_failed_attempt_leaves_no_partial_output_and_keeps_the_old_one(tmp_path, how):
    (tmp_path / "out.txt").write_text("the good old output\n")
    end = {"fails": "exit 1", "times out": "sleep 30", "is killed": "kill -9 $$"}[how]
    result, done, out = run(tmp_path, f"""
        [tasks.half]
        isolation = "sandbox"
        cmd = "echo half > out.txt; echo new > new.txt; {end}"
        outputs = ["out.txt", "new.txt"]
        timeout = "1s"
        """, force_all=True)
    assert done["half"].outcome in (Outcome.FAILED, Outcome.TIMED_OUT)
    assert (tmp_path / "out.txt").read_text() == "the good old output\n"
    assert not (tmp_path / "new.txt").exists()
    assert no_stage_left(tmp_path)


def test_a_folder_output_replaces_the_old_folder_only_on_success(tmp_path):
    (tmp_path / "site").mkdir()
    (tmp_path / "site/old.html").write_text("old")
    result, done, out = run(tmp_path, """
        [tasks.site]
        isolation = "sandbox"
        cmd = "mkdir site && echo new > site/index.html"
        outputs = "site"
        """, force_all=True)
    assert done["site"].outcome is Outcome.SUCCEEDED, done["site"].message
    assert sorted(os.listdir(tmp_path / "site")) == ["index.html"]


def test_reading_an_undeclared_file_fails_naming_it(tmp_path):
    (tmp_path / "declared.h").write_text("ok\n")
    (tmp_path / "secret.h").write_text("hidden\n")
    result, done, out = run(tmp_path, """
        [tasks.peek]
        isolation = "sandbox"
        cmd = "cat declared.h secret.h > all.txt"
        inputs = "declared.h"
        outputs = "all.txt"
        """)
    assert done["peek"].outcome is Outcome.FAILED
    assert "secret.h: No such file or directory" in "\n".join(out["peek"])
    assert "secret.h is in the workflow folder but not declared as an input" in \
        done["peek"].message
    assert "declared.h" not in done["peek"].message
    assert not (tmp_path / "all.txt").exists()


# -- security -------------------------------------------------------------------------------

def test_a_sandboxed_task_cannot_write_outside_its_outputs(tmp_path):
    home = os.path.expanduser("~")
    tag = uuid.uuid4().hex
    root = tmp_path / "wf"
    root.mkdir()
    targets = {
        "up": (str(tmp_path / "escape"), "../escape"),
        "home": (os.path.join(home, f"gristmill-escape-{tag}"), f"$HOME/gristmill-escape-{tag}"),
        "abs": (f"/var/tmp/gristmill-escape-{tag}", f"/var/tmp/gristmill-escape-{tag}"),
        "usr": (f"/usr/gristmill-escape-{tag}", f"/usr/gristmill-escape-{tag}"),
        "sibling": (str(root / "undeclared.txt"), "undeclared.txt"),
    }
    tasks = "".join(f'[tasks.{name}]\nisolation = "sandbox"\ncmd = "echo x > {shell}; '
                    f'echo ok > {name}.ok"\noutputs = "{name}.ok"\n'
                    for name, (_, shell) in targets.items())
    result, done, out = run(root, tasks)
    try:
        for name, (host, _) in targets.items():
            assert not os.path.exists(host), f"{name}: {host} was written"
    finally:
        for host, _ in targets.values():
            if os.path.exists(host) and host.startswith(("/var/tmp/", home)):
                os.unlink(host)
    assert done["sibling"].outcome is Outcome.SUCCEEDED   # written aside, then thrown away
    assert (root / "sibling.ok").exists()


class Listener:
    """A real TCP server on 127.0.0.1: what connected, and what it said."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.heard: list[bytes] = []
        self.stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(5)
                try:
                    self.heard.append(conn.recv(100))
                except OSError:
                    self.heard.append(b"")

    def close(self):
        self.stop = True
        self.thread.join()
        self.sock.close()


def test_a_sandboxed_task_cannot_reach_a_listener_on_localhost_unless_it_asks(tmp_path):
    listener = Listener()
    try:
        talk = f"bash -c 'echo hello > /dev/tcp/127.0.0.1/{listener.port}'"
        result, done, out = run(tmp_path, f"""
            [tasks.offline]
            isolation = "sandbox"
            cmd = "{talk}"
            phony = true
            """, ["offline"])
        assert done["offline"].outcome is Outcome.FAILED
        assert listener.heard == []
        result, done, out = run(tmp_path, f"""
            [tasks.online]
            isolation = "sandbox"
            network = true
            cmd = "{talk}"
            phony = true
            """, ["online"])
        assert done["online"].outcome is Outcome.SUCCEEDED, done["online"].message
    finally:
        listener.close()
    assert listener.heard == [b"hello\n"]


def test_a_process_without_network_sees_the_machine_but_not_a_listener(tmp_path):
    (tmp_path / "undeclared.txt").write_text("seen\n")
    listener = Listener()
    try:
        result, done, out = run(tmp_path, f"""
            [tasks.offline]
            network = false
            cmd = ["cat undeclared.txt", "echo x > copy.txt",
                   "bash -c 'echo hello > /dev/tcp/127.0.0.1/{listener.port}'"]
            outputs = "copy.txt"
            """)
    finally:
        listener.close()
    assert done["offline"].outcome is Outcome.FAILED
    assert listener.heard == []
    assert out["offline"][0] == "seen"             # the whole machine, undeclared files too
    assert not (tmp_path / "copy.txt").exists()    # a failed attempt's output is removed


def test_a_sandboxed_task_sees_only_its_own_processes(tmp_path):
    result, done, out = run(tmp_path, """
        [tasks.ps]
        isolation = "sandbox"
        cmd = "ls /proc"
        phony = true
        """, ["ps"])
    pids = [w for w in out["ps"] if w.isdigit()]
    assert done["ps"].outcome is Outcome.SUCCEEDED and 1 <= len(pids) <= 3, pids


@pytest.mark.skipif(os.geteuid() != 0, reason="root's capabilities: run as root")
def test_a_sandboxed_task_run_by_root_has_no_capabilities(tmp_path):
    result, done, out = run(tmp_path, """
        [tasks.mount]
        isolation = "sandbox"
        cmd = "grep CapEff /proc/self/status; mount -t tmpfs none /tmp"
        phony = true
        [tasks.mknod]
        isolation = "sandbox"
        cmd = "mknod /tmp/disk b 8 0"
        phony = true
        """, ["mount", "mknod"])
    assert done["mount"].outcome is Outcome.FAILED and done["mknod"].outcome is Outcome.FAILED
    assert out["mount"][0].split() == ["CapEff:", "0000000000000000"]


HOSTILE = ["a b.txt", "it's \"q\".txt", "$(touch pwned).txt", "-rf x.txt", "`touch pwned2`"]


def test_hostile_file_names_reach_bwrap_as_single_arguments(tmp_path):
    root = tmp_path / "we ird $(touch pwned) -dir"
    root.mkdir()
    for i, name in enumerate(HOSTILE):
        (root / name).write_text(f"{i}\n")
    inputs = ", ".join(json.dumps(n) for n in HOSTILE)
    result, done, out = run(root, f"""
        [tasks.cat]
        isolation = "sandbox"
        inputs = [{inputs}]
        outputs = "-o $(touch pwned3).txt"
        cmd = "cat -- {{inputs}} > {{outputs}}"
        """)
    assert done["cat"].outcome is Outcome.SUCCEEDED, (done["cat"].message, out)
    assert (root / "-o $(touch pwned3).txt").read_text() == "".join(f"{i}\n" for i in range(5))
    for folder in (root, tmp_path, tmp_path.parent):
        assert not [n for n in os.listdir(folder) if n.startswith("pwned")]


def test_a_crashed_runs_stage_is_removed_when_the_next_sandboxed_run_starts(tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / f"{STAGE_PREFIX}{dead.pid}-7"
    live = tmp_path / f"{STAGE_PREFIX}{os.getpid()}-9999"
    for folder in (stale, live):
        (folder / "out").mkdir(parents=True)
        (folder / "out/half.txt").write_text("half")
    result, done, out = run(tmp_path, """
        [tasks.t]
        isolation = "sandbox"
        cmd = "echo x > t.txt"
        outputs = "t.txt"
        """)
    assert done["t"].outcome is Outcome.SUCCEEDED
    assert not stale.exists()
    assert live.exists()            # a run still going (this process) keeps its own
    shutil.rmtree(live)


@pytest.mark.skipif(shutil.which("cc") is None or shutil.which("make") is None,
                    reason="needs cc and make")
def test_a_makefile_rule_in_a_sandbox_that_reads_an_undeclared_header_fails_naming_it(tmp_path):
    (tmp_path / "util.h").write_text("#define ANSWER 42\n")
    (tmp_path / "main.c").write_text('#include "util.h"\nint main(void) { return ANSWER - 42; }\n')
    (tmp_path / "Makefile").write_text(
        "# gristmill: isolation=sandbox\n"
        "main.o: main.c\n"
        "\tcc -c main.c -o main.o\n")
    wf = load_workflow(tmp_path / "Makefile")
    events = []
    bus = EventBus()
    bus.subscribe(events.append)
    Engine(wf, bus=bus, options=RunOptions(capacity=Capacity(cpu=2, mem=10**9))).run()
    done, = [e for e in events if isinstance(e, TaskFinished)]
    assert done.outcome is Outcome.FAILED
    assert "util.h is in the workflow folder but not declared as an input" in done.message
    assert not (tmp_path / "main.o").exists()
    (tmp_path / "Makefile").write_text(
        "# gristmill: isolation=sandbox\n"
        "main.o: main.c util.h\n"
        "\tcc -c main.c -o main.o\n")
    wf = load_workflow(tmp_path / "Makefile")
    result = Engine(wf, options=RunOptions(capacity=Capacity(cpu=2, mem=10**9))).run()
    assert result.exit_code == 0 and (tmp_path / "main.o").exists()


def test_a_dask_run_refuses_a_sandboxed_task_rather_than_run_it_bare(tmp_path):
    from gristmill.core.errors import WorkflowError
    from gristmill.core.run.dask import DaskExecutor
    (tmp_path / "gristmill.toml").write_text('[tasks.t]\nisolation = "sandbox"\ncmd = "true"\n'
                                             'phony = true\n')
    wf = load_workflow(tmp_path / "gristmill.toml")
    engine = Engine(wf, options=RunOptions(capacity=Capacity(cpu=2, mem=10**9)),
                    executor_factory=lambda: DaskExecutor("tcp://127.0.0.1:1"))
    with pytest.raises(WorkflowError) as e:
        engine.run(["t"])
    assert "task 't' asks for isolation (sandbox (bubblewrap" in str(e.value)
    assert "which only a local run gives, not a Dask cluster" in str(e.value)
