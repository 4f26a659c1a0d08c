"""The dependency audit with the real strace on real tasks: what a task reads and writes
against what it declares (``run --audit``, ``audit = true``)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from gristmill.core.errors import UsageError, WorkflowError
from gristmill.core.events import EventBus, TaskAudited, TaskFinished
from gristmill.core.findings import (MISSING_EDGE, UNDECLARED_READ, UNDECLARED_WRITE,
                                     UNREAD_INPUT)
from gristmill.core.load.loader import load_workflow
from gristmill.core.record.history import SCHEMA_VERSION, History
from gristmill.core.run.engine import Engine, RunOptions
from gristmill.core.run.trace import parse_trace, trace_argv

needs_strace = pytest.mark.skipif(shutil.which("strace") is None,
                                  reason="strace is not installed (apt install strace)")


def folder_with(tmp_path: Path, toml: str, files: dict[str, str]) -> Path:
    root = tmp_path / "wf"
    root.mkdir()
    (root / "gristmill.toml").write_text(toml)
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def audit(root: Path, history=None, audit_all=True, jobs=None, targets=()):
    """Run the workflow audited; (result, {task: findings}, events)."""
    bus = EventBus()
    events = []
    bus.subscribe(events.append)
    wf = load_workflow(root)
    result = Engine(wf, bus=bus, history=history,
                    options=RunOptions(audit=audit_all, structured_log=False, jobs=jobs)).run(
        list(targets))
    found = {e.task: e.findings for e in events if isinstance(e, TaskAudited)}
    return result, found, events


def kinds(findings) -> list[tuple[str, str]]:
    return sorted((f.kind, f.path) for f in findings)


@needs_strace
def test_an_undeclared_read_is_found_with_the_edit_to_make(tmp_path):
    root = folder_with(tmp_path, '# the report\n[tasks.t]\ncmd = "cat a.txt b.txt > out.txt"\n'
                       'inputs = ["a.txt"]\noutputs = ["out.txt"]\n',
                       {"a.txt": "a\n", "b.txt": "b\n"})
    result, found, events = audit(root)
    assert result.exit_code == 0
    assert kinds(found["t"]) == [(UNDECLARED_READ, "b.txt")]
    f = found["t"][0]
    assert f.fix == '[tasks.t] inputs += "b.txt"'
    assert f.where.endswith("gristmill.toml:2")
    assert "b.txt" in f.message and "does not declare" in f.message
    # Published after the attempt's finish, so history and the views have both.
    order = [type(e) for e in events if isinstance(e, (TaskFinished, TaskAudited))]
    assert order == [TaskFinished, TaskAudited]


@needs_strace
def test_an_undeclared_write_is_found(tmp_path):
    root = folder_with(tmp_path, '[tasks.t]\ncmd = "echo x > out.txt; echo y > sub/side.txt"\n'
                       'outputs = ["out.txt"]\n', {"sub/keep": ""})
    _, found, _ = audit(root)
    assert kinds(found["t"]) == [(UNDECLARED_WRITE, "sub/side.txt")]
    assert found["t"][0].fix == '[tasks.t] outputs += "sub/side.txt"'


@needs_strace
def test_a_declared_input_never_read_is_found_but_not_after_a_failure(tmp_path):
    root = folder_with(tmp_path, '[tasks.t]\ncmd = "cat a.txt > out.txt"\n'
                       'inputs = ["a.txt", "never.txt"]\noutputs = ["out.txt"]\n'
                       '[tasks.bad]\ncmd = "exit 3"\ninputs = ["never.txt"]\nphony = true\n',
                       {"a.txt": "a\n", "never.txt": "n\n"})
    result, found, _ = audit(root, targets=["t", "bad"])
    assert result.exit_code == 1
    assert kinds(found["t"]) == [(UNREAD_INPUT, "never.txt")]
    assert found["t"][0].fix == '[tasks.t] inputs -= "never.txt"'
    assert found["bad"] == ()        # it stopped early: what it did not read says nothing


@needs_strace
def test_a_file_another_task_makes_read_without_an_edge_is_a_missing_edge(tmp_path):
    # gen runs first (late waits for it), then use and late in declaration order.
    root = folder_with(tmp_path, '[tasks.gen]\ncmd = "echo g > gen.txt"\noutputs = ["gen.txt"]\n'
                       '[tasks.use]\ncmd = "cat gen.txt > use.txt"\noutputs = ["use.txt"]\n'
                       '[tasks.ordered]\ncmd = "cat gen.txt > o.txt"\nafter = ["gen"]\n'
                       'outputs = ["o.txt"]\n', {})
    result, found, _ = audit(root, jobs=1, targets=["gen", "use", "ordered"])
    assert result.exit_code == 0
    assert found["gen"] == ()
    [edge] = found["use"]
    assert (edge.kind, edge.path, edge.producer) == (MISSING_EDGE, "gen.txt", "gen")
    assert "gen" in edge.message and "either order" in edge.message
    # Ordered after gen, but a change to gen.txt would not rerun it.
    [late] = found["ordered"]
    assert (late.kind, late.path, late.producer) == (UNDECLARED_READ, "gen.txt", "gen")


@needs_strace
def test_a_file_written_undeclared_and_read_by_another_task_is_a_missing_edge(tmp_path):
    root = folder_with(tmp_path, '[tasks.gen]\ncmd = "echo g > gen.txt; echo s > side.txt"\n'
                       'outputs = ["gen.txt"]\n[tasks.use]\ncmd = "cat side.txt > use.txt"\n'
                       'after = ["gen"]\noutputs = ["use.txt"]\n[tasks.racer]\n'
                       'cmd = "cat side.txt > racer.txt"\noutputs = ["racer.txt"]\n'
                       '[tasks.clobber]\ncmd = "echo c > gen.txt"\n'
                       'after = ["use"]\nphony = true\n', {})
    # One at a time, gen first (the longest chain), racer last (none after it).
    result, found, _ = audit(root, jobs=1, targets=["gen", "use", "racer", "clobber"])
    assert result.exit_code == 0
    assert kinds(found["gen"]) == [(UNDECLARED_WRITE, "side.txt")]
    [late] = found["use"]           # after gen: ordered, but not rerun when it changes
    assert (late.kind, late.path, late.producer) == (UNDECLARED_READ, "side.txt", "gen")
    [edge] = found["racer"]         # nothing orders it after gen: it ran after it by chance
    assert (edge.kind, edge.path, edge.producer) == (MISSING_EDGE, "side.txt", "gen")
    [clobber] = found["clobber"]
    assert (clobber.kind, clobber.path, clobber.producer) == (UNDECLARED_WRITE, "gen.txt", "gen")
    assert "an output of task gen" in clobber.message


@needs_strace
def test_a_phony_task_without_outputs_may_write_but_its_readers_are_told(tmp_path):
    root = folder_with(tmp_path, '[tasks.install]\ncmd = "mkdir -p stage && cp a.txt stage/a.txt"\n'
                       'inputs = ["a.txt"]\nphony = true\n[tasks.check]\n'
                       'cmd = "cat stage/a.txt"\nphony = true\nafter = ["install"]\n',
                       {"a.txt": "a"})
    _, found, _ = audit(root, targets=["install", "check"])
    assert found["install"] == ()
    [read] = found["check"]
    assert (read.kind, read.path, read.producer) == (UNDECLARED_READ, "stage/a.txt", "install")


@needs_strace
def test_the_run_log_has_each_audit(tmp_path):
    import json
    root = folder_with(tmp_path, '[tasks.t]\ncmd = "cat a.txt > out.txt"\noutputs = ["out.txt"]\n',
                       {"a.txt": "a"})
    logs = tmp_path / "runs"
    result = Engine(load_workflow(root), options=RunOptions(audit=True, log_dir=logs)).run([])
    lines = [json.loads(line) for line in (logs / f"{result.run_id}.jsonl").read_text().splitlines()]
    [audited] = [r for r in lines if r["event"] == "task_audited"]
    assert audited["task"] == "t" and audited["traced"] is True
    assert [(f["kind"], f["path"]) for f in audited["findings"]] == [(UNDECLARED_READ, "a.txt")]
    assert not list(logs.rglob("*.strace*"))       # the traces are read, then removed


@needs_strace
def test_an_audit_without_a_log_folder_still_traces_and_the_task_succeeds(tmp_path):
    root = folder_with(tmp_path, '[tasks.t]\ncmd = "cat a.txt > out.txt"\noutputs = ["out.txt"]\n',
                       {"a.txt": "a"})
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the run logs' folder would be")
    bus = EventBus()
    events = []
    bus.subscribe(events.append)
    result = Engine(load_workflow(root), bus=bus, options=RunOptions(
        audit=True, log_dir=blocked, structured_log=False)).run([])
    assert result.exit_code == 0
    [audited] = [e for e in events if isinstance(e, TaskAudited)]
    assert kinds(audited.findings) == [(UNDECLARED_READ, "a.txt")]
    import tempfile
    assert not [n for n in os.listdir(tempfile.gettempdir())
                if n.startswith(f"gristmill-{result.run_id}")]      # the trace is removed


@needs_strace
def test_temporaries_listings_its_log_and_its_own_outputs_are_not_findings(tmp_path):
    cmd = ("ls > /dev/null; ls . sub > /dev/null; echo t > tmp.$$; mv tmp.$$ out.txt; "
           "echo s > scratch; cat scratch out.txt > /dev/null; rm scratch; cat in.txt; "
           "mkdir -p made/deeper; rmdir made/deeper made; echo to-the-log; "
           "echo x > /tmp/gristmill-audit-outside.$$; rm /tmp/gristmill-audit-outside.$$")
    root = folder_with(tmp_path, f'[tasks.t]\ncmd = "{cmd}"\ninputs = ["in.txt"]\n'
                       'outputs = ["out.txt"]\n', {"in.txt": "i\n", "sub/x": ""})
    result, found, _ = audit(root)
    assert result.exit_code == 0
    assert found["t"] == ()


@needs_strace
def test_an_audited_command_that_is_not_found_fails_as_it_does_unaudited(tmp_path):
    root = folder_with(tmp_path, '[tasks.t]\ncmd = "no-such-program-here x"\nphony = true\n', {})
    result, found, events = audit(root, targets=["t"])
    [finished] = [e for e in events if isinstance(e, TaskFinished)]
    assert (finished.exit_code, result.exit_code) == (127, 1)
    assert "command not found" in finished.message
    assert found["t"] == ()


@needs_strace
def test_hostile_file_names_are_read_back_exactly(tmp_path):
    names = ["sp ace.txt", "q\"uo'te.txt", "-lead.txt", "nl\nname.txt", "$(echo pwned).txt",
             "back\\slash.txt", "ünï.txt"]
    root = tmp_path / "wf"
    root.mkdir()
    for n in names:
        (root / n).write_text(n)
    script = root / "reader.py"
    script.write_text("import os\n" + "".join(f"open({n!r}).read()\n" for n in names)
                      + "open('out.txt', 'w').write('ok')\n")
    (root / "gristmill.toml").write_text(
        f'[tasks.t]\ncmd = "{sys.executable} reader.py"\ninputs = ["reader.py"]\n'
        'outputs = ["out.txt"]\n')
    _, found, _ = audit(root)
    assert sorted(f.path for f in found["t"]) == sorted(names)
    assert {f.kind for f in found["t"]} == {UNDECLARED_READ}
    assert not (root / "pwned.txt").exists()


@needs_strace
def test_chdir_in_children_and_calls_without_at_are_resolved_in_each_process(tmp_path):
    cmd = ("cd sub && cat data.txt > ../out.txt && (cd deep && mv a.tmp b.txt) && "
           "sh -c 'cd .. && cat top.txt > /dev/null'")
    root = folder_with(tmp_path, f'[tasks.t]\ncmd = "{cmd}"\noutputs = ["out.txt"]\n',
                       {"sub/data.txt": "d", "sub/deep/a.tmp": "a", "top.txt": "t"})
    _, found, _ = audit(root)
    assert kinds(found["t"]) == [(UNDECLARED_READ, "sub/data.txt"), (UNDECLARED_READ, "top.txt"),
                                 (UNDECLARED_WRITE, "sub/deep/b.txt")]


def test_the_parser_follows_clone_fs_and_fchdir(tmp_path):
    """A thread (CLONE_FS) shares its process's folder; fchdir moves to a descriptor's."""
    hexed = lambda s: "".join(f"\\x{b:02x}" for b in os.fsencode(s))   # noqa: E731
    trace = "\n".join([
        f'10 clone3({{flags=CLONE_VM|CLONE_FS|CLONE_THREAD, exit_signal=0}}, 88) = 11',
        f'10 fork() = 12',
        f'11 chdir("{hexed("sub")}") = 0',
        f'12 mkdir("{hexed("x")}", 0777) = 0',
        f'10 rename("{hexed("a")}", "{hexed("b")}" <unfinished ...>',
        f'12 fchdir(3<{hexed("/w/other dir")}>) = 0',
        f'12 unlink("{hexed("gone")}") = 0',
        f'10 <... rename resumed>) = 0',
    ])
    got = [(a.op, a.path) for a in parse_trace(trace, "/w")]
    assert got == [("mkdir", "/w/x"), ("move-away", "/w/sub/a"), ("write", "/w/sub/b"),
                   ("remove", "/w/other dir/gone")]


@needs_strace
def test_hostile_names_reach_strace_as_single_arguments(tmp_path):
    """A command word that looks like an option or holds a newline is not strace's."""
    out = tmp_path / "trace"
    odd = tmp_path / "-o x\ny"
    argv = trace_argv(shutil.which("strace"), ["/bin/sh", "-c", 'echo hi > "$0"', str(odd)],
                      str(out))
    assert subprocess.run(argv, capture_output=True).returncode == 0
    assert odd.read_text() == "hi\n"
    assert ("write", str(odd)) in [(a.op, a.path) for a in parse_trace(out.read_text(), "/")]


@needs_strace
def test_the_console_prints_a_block_per_task_after_the_summary(tmp_path):
    root = folder_with(tmp_path, '[tasks.t]\ncmd = "cat a.txt b.txt > out.txt"\n'
                       'inputs = ["a.txt"]\noutputs = ["out.txt"]\n'
                       '[tasks.fine]\ncmd = "cat a.txt > f.txt"\ninputs = ["a.txt"]\n'
                       'outputs = ["f.txt"]\n', {"a.txt": "a\n", "b.txt": "b\n"})
    p = subprocess.run([sys.executable, "-m", "gristmill", "run", "--audit", "-C", str(root)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    tail = p.stdout[p.stdout.index("gristmill: run finished"):].splitlines()[1:]
    assert tail == [
        f"audit: t: 1 finding (declared at {root / 'gristmill.toml'}:1)",
        "  - read b.txt, which it does not declare: a change to it does not rerun this task",
        '    edit: [tasks.t] inputs += "b.txt"']
    again = subprocess.run([sys.executable, "-m", "gristmill", "run", "--audit", "-C", str(root)],
                           capture_output=True, text=True, timeout=120)
    assert "nothing to do" in again.stdout and "audit:" not in again.stdout


@needs_strace
def test_the_console_shows_ten_findings_of_a_task_and_counts_the_rest(tmp_path):
    root = folder_with(tmp_path, '[tasks.t]\ncmd = "cat d/*.txt > out.txt"\noutputs = ["out.txt"]\n',
                       {f"d/{i:02}.txt": str(i) for i in range(13)})
    p = subprocess.run([sys.executable, "-m", "gristmill", "run", "--audit", "-C", str(root)],
                       capture_output=True, text=True, timeout=120)
    assert f"audit: t: 13 findings (declared at {root / 'gristmill.toml'}:1)" in p.stdout
    assert p.stdout.count("  - read d/") == 10
    assert "  … 3 more (all of them: the run log, history, the app's Audit Findings)" in p.stdout


@needs_strace
def test_the_bundled_pipeline_audits_clean(tmp_path):
    """Python scripts, fan-out, a fan-in, byte-code written beside the scripts: a
    workflow that declares what it reads has nothing to report."""
    example = Path(__file__).resolve().parents[2] / "resources" / "examples" / "pipeline"
    root = Path(shutil.copytree(example, tmp_path / "pipeline",
                                ignore=shutil.ignore_patterns("build")))
    result, found, _ = audit(root)
    assert result.exit_code == 0
    assert len(found) == 9 and all(f == () for f in found.values()), found


@needs_strace
def test_a_json_workflow_is_told_the_edit_of_its_task(tmp_path):
    root = tmp_path / "wf"
    root.mkdir()
    (root / "gristmill.json").write_text('{"tasks": {"t": {"cmd": "cat b.txt > out.txt", '
                                         '"inputs": ["a.txt"], "outputs": ["out.txt"]}}}')
    (root / "a.txt").write_text("a")
    (root / "b.txt").write_text("b")
    _, found, _ = audit(root)
    assert sorted(f.fix for f in found["t"]) == [
        'add "b.txt" to "inputs" of task "t"', 'remove "a.txt" from "inputs" of task "t"']


@needs_strace
def test_findings_are_kept_in_history_with_the_attempt(tmp_path):
    root = folder_with(tmp_path, '[tasks.t]\ncmd = "cat a.txt b.txt > out.txt"\n'
                       'inputs = ["a.txt"]\noutputs = ["out.txt"]\n'
                       '[tasks.clean_one]\ncmd = "cat a.txt > o2.txt"\ninputs = ["a.txt"]\n'
                       'outputs = ["o2.txt"]\n',
                       {"a.txt": "a\n", "b.txt": "b\n"})
    history = History(tmp_path / "h.db")
    try:
        result, _, _ = audit(root, history=history)
        records = {r.task: r for r in history.audits(result.run_id)}
        assert set(records) == {"t", "clean_one"}
        assert records["clean_one"].traced and records["clean_one"].findings == ()
        [f] = records["t"].findings
        assert (f.kind, f.path, f.task, f.fix) == (UNDECLARED_READ, "b.txt", "t",
                                                   '[tasks.t] inputs += "b.txt"')
        assert [r.attempt for r in history.audits(result.run_id, task="t")] == [1]
        assert {a.task for a in history.attempts(result.run_id)} == {"t", "clean_one"}
        assert [(r.task, len(r.findings)) for r in history.last_audits(root / "gristmill.toml")] \
            == [("clean_one", 0), ("t", 1)]
        assert history.task_audit(root / "gristmill.toml", "t").findings == records["t"].findings
        assert history.prune(keep_runs=0) == [result.run_id]     # pruned with its run
        assert history.audits(result.run_id) == []
    finally:
        history.close()


@needs_strace
def test_a_history_of_schema_1_gains_the_audits_table_and_keeps_its_runs(tmp_path):
    db = tmp_path / "old.db"
    History(db).close()
    conn = sqlite3.connect(db)
    conn.execute("DROP TABLE audits")
    conn.execute("INSERT INTO runs (id, workflow_path, started, status) VALUES "
                 "('old-run', '/x/gristmill.toml', 1.0, 'succeeded')")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    history = History(db)
    try:
        assert [r.id for r in history.runs(limit=None)] == ["old-run"]
        assert history.audits("old-run") == []
    finally:
        history.close()
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
    conn.close()


@needs_strace
def test_audit_true_on_one_task_audits_that_task_alone(tmp_path):
    root = folder_with(tmp_path, '[tasks.a]\ncmd = "cat x.txt > a.txt"\noutputs = ["a.txt"]\n'
                       'audit = true\n[tasks.b]\ncmd = "cat x.txt > b.txt"\noutputs = ["b.txt"]\n',
                       {"x.txt": "x"})
    assert load_workflow(root).tasks["a"].audit is True
    _, found, _ = audit(root, audit_all=False)
    assert set(found) == {"a"} and kinds(found["a"]) == [(UNDECLARED_READ, "x.txt")]


def test_audit_must_be_a_boolean(tmp_path):
    root = folder_with(tmp_path, '[tasks.a]\ncmd = "true"\naudit = "yes"\n', {})
    with pytest.raises(WorkflowError) as e:
        load_workflow(root)
    assert str(e.value).startswith(f"{root / 'gristmill.toml'}:3:9:")
    assert "boolean" in str(e.value)


def test_without_strace_the_run_is_refused_before_anything_runs(tmp_path, monkeypatch):
    root = folder_with(tmp_path, '[tasks.t]\ncmd = "echo x > out.txt"\noutputs = ["out.txt"]\n', {})
    env = dict(os.environ, PATH=str(tmp_path / "no-tools-here"))
    p = subprocess.run([sys.executable, "-m", "gristmill", "run", "--audit", "-C", str(root)],
                       capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 2, p.stdout + p.stderr
    assert "strace" in p.stderr and "apt install strace" in p.stderr
    assert "Traceback" not in p.stderr
    assert not (root / "out.txt").exists()
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools-here"))
    events = []
    bus = EventBus()
    bus.subscribe(events.append)
    with pytest.raises(UsageError):        # the engine refuses too, before RunStarted
        Engine(load_workflow(root), bus=bus, options=RunOptions(audit=True)).run([])
    assert events == [] and not (root / "out.txt").exists()
