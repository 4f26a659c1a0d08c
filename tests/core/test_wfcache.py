"""The workflow cache: a second load of an unchanged workflow skips the loader, and
anything the load looked at that changes (a file, a globbed folder, an existence,
the variables, the code) makes it load again. Real files in tmp_path."""

import marshal
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from gristmill.core.load import loader

from gristmill.core.load import cache as wfcache
from gristmill.core.errors import WorkflowError
from gristmill.core.decide.graph import TaskGraph
from gristmill.core.load.cache import load_cached


def write(folder: Path, name: str, text: str = "") -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


FANOUT = """
[tasks.thumb]
foreach = "images/*.png"
cmd = "convert {input} {output}"
inputs = ["{item}"]
outputs = ["thumbs/{name}"]

[tasks.report]
cmd = "ls thumbs > {output}"
inputs = ["thumbs/*.png", "notes.txt"]
outputs = ["report.txt"]
"""


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "p"
    write(root, "gristmill.toml", FANOUT)
    for n in ("a", "b"):
        write(root, f"images/{n}.png", n)
    write(root, "notes.txt", "n")
    return root


@pytest.fixture
def loads(monkeypatch):
    """Counts the real loads behind load_cached."""
    calls = []
    real = loader.load_workflow

    def counting(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)
    monkeypatch.setattr(loader, "load_workflow", counting)
    return calls


def cached(root: Path, cache: Path, **kw):
    return load_cached(root / "gristmill.toml", folder=cache, **kw)


def age(path: Path, seconds: float = 60) -> None:
    """Move a file's or folder's mtime into the past (out of the racy window)."""
    t = time.time() - seconds
    os.utime(path, (t, t))


def test_a_second_load_comes_from_the_cache_and_is_the_same_workflow(project, tmp_path, loads):
    first = cached(project, tmp_path / "c")
    second = cached(project, tmp_path / "c")
    assert len(loads) == 1
    assert second is not first
    assert dict(second.tasks) == dict(first.tasks)
    assert (second.name, second.path, second.root, second.default, second.files) == \
        (first.name, first.path, first.root, first.default, first.files)
    assert TaskGraph.of(second).order == TaskGraph.of(first).order
    assert TaskGraph.of(second).deps("report") == ("thumb[images/a.png]", "thumb[images/b.png]")
    # The definition hashes travel with the tasks, and are the ones a fresh load computes.
    fresh = loader.load_workflow(project / "gristmill.toml")
    assert [t._definition_hash for t in second.tasks.values()] == \
        [t.definition_hash for t in fresh.tasks.values()]


def test_an_edited_workflow_file_is_loaded_again_even_at_the_same_size_and_time(project, tmp_path, loads):
    path = project / "gristmill.toml"
    cached(project, tmp_path / "c")
    st = path.stat()
    path.write_text(path.read_text().replace("convert", "convart"))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    wf = cached(project, tmp_path / "c")
    assert len(loads) == 2
    assert wf.tasks["thumb[images/a.png]"].commands[0].startswith("convart ")


def test_a_new_file_in_a_globbed_folder_is_a_new_task(project, tmp_path, loads):
    age(project / "images")
    cached(project, tmp_path / "c")
    write(project, "images/c.png", "c")
    wf = cached(project, tmp_path / "c")
    assert "thumb[images/c.png]" in wf.tasks
    assert len(loads) == 2


def test_a_folder_changed_within_the_clock_tick_is_listed_again(project, tmp_path, loads):
    cached(project, tmp_path / "c")          # images/ was written just now: racy
    mtime = (project / "images").stat().st_mtime_ns
    write(project, "images/c.png", "c")
    os.utime(project / "images", ns=(mtime, mtime))   # as if in the same tick
    wf = cached(project, tmp_path / "c")
    assert "thumb[images/c.png]" in wf.tasks


def test_a_racy_folder_is_marked_settled_once_its_tick_is_past(project, tmp_path, loads, monkeypatch):
    cache = tmp_path / "c"
    cached(project, cache)
    [entry] = cache.glob("*.wfc")

    def racy_flags():
        blob = entry.read_bytes()
        header = marshal.loads(blob[16:16 + int.from_bytes(blob[8:16], "little")])
        return {Path(p).name: racy for p, _, _, racy in header["listings"]}
    assert racy_flags()["images"] is True
    monkeypatch.setattr(wfcache, "RACY_NS", 0)
    cached(project, cache)
    assert racy_flags()["images"] is False
    assert len(loads) == 1


def test_a_removed_input_is_reported_as_a_fresh_load_would(project, tmp_path, loads):
    cached(project, tmp_path / "c")
    (project / "notes.txt").unlink()
    with pytest.raises(WorkflowError, match="input 'notes.txt' of task 'report' neither exists"):
        cached(project, tmp_path / "c")


def test_an_edited_include_is_loaded_again(tmp_path, loads):
    root = tmp_path / "p"
    write(root, "gristmill.toml", '[workflow]\ninclude = ["more.toml"]\n[tasks.a]\ncmd = "true"\n')
    write(root, "more.toml", '[tasks.b]\ncmd = "echo one"\n')
    assert cached(root, tmp_path / "c").tasks["b"].commands == ("echo one",)
    write(root, "more.toml", '[tasks.b]\ncmd = "echo two"\n')
    assert cached(root, tmp_path / "c").tasks["b"].commands == ("echo two",)
    assert len(loads) == 2


def test_variables_have_entries_of_their_own(tmp_path, loads):
    root = tmp_path / "p"
    write(root, "gristmill.toml", '[vars]\nn = "1"\n[tasks.a]\ncmd = "echo {vars.n}"\n')
    assert cached(root, tmp_path / "c").tasks["a"].commands == ("echo 1",)
    assert cached(root, tmp_path / "c", variables={"n": "2"}).tasks["a"].commands == ("echo 2",)
    assert cached(root, tmp_path / "c", variables={"n": "2"}).tasks["a"].commands == ("echo 2",)
    assert cached(root, tmp_path / "c").tasks["a"].commands == ("echo 1",)
    assert len(loads) == 2


def test_new_loader_code_is_a_miss(project, tmp_path, loads, monkeypatch):
    cached(project, tmp_path / "c")
    real = wfcache.code_fingerprint
    monkeypatch.setattr(wfcache, "code_fingerprint", lambda: real() + ("edited",))
    cached(project, tmp_path / "c")
    assert len(loads) == 2


@pytest.mark.parametrize("damage", [lambda b: b[:len(b) // 2], lambda b: b"junk", lambda b: b""])
def test_a_damaged_entry_is_ignored_and_replaced(project, tmp_path, loads, damage):
    cache = tmp_path / "c"
    cached(project, cache)
    [entry] = cache.glob("*.wfc")
    entry.write_bytes(damage(entry.read_bytes()))
    assert "thumb[images/a.png]" in cached(project, cache).tasks
    assert "thumb[images/a.png]" in cached(project, cache).tasks
    assert len(loads) == 2


def test_errors_are_never_cached(tmp_path, loads):
    root = tmp_path / "p"
    write(root, "gristmill.toml", '[tasks.a]\ncmd = 3\n')
    for _ in range(2):
        with pytest.raises(WorkflowError, match="gristmill.toml:2:7"):
            cached(root, tmp_path / "c")
    assert not list((tmp_path / "c").glob("*.wfc"))
    write(root, "gristmill.toml", '[tasks.a]\ncmd = "true"\n')
    assert cached(root, tmp_path / "c").tasks["a"].commands == ("true",)


def test_makefiles_are_never_cached(tmp_path):
    root = tmp_path / "p"
    write(root, "Makefile", "out.txt:\n\techo hi > $@\n")
    wf = load_cached(root / "Makefile", folder=tmp_path / "c")
    assert wf.kind == "make"
    assert not (tmp_path / "c").exists() or not list((tmp_path / "c").glob("*.wfc"))


def test_old_entries_are_pruned(tmp_path, monkeypatch):
    monkeypatch.setattr(wfcache, "KEEP", 3)
    cache = tmp_path / "c"
    for i in range(5):
        root = tmp_path / f"p{i}"
        write(root, "gristmill.toml", f'[tasks.a]\ncmd = "echo {i}"\n')
        cached(root, cache)
    assert len(list(cache.glob("*.wfc"))) == 3


def test_the_cli_writes_the_entry_after_it_is_done_and_uses_it_next_time(tmp_path):
    """gristmill run stores a fresh load from a forked child as it exits: the caller
    gets the output once and is not kept waiting; the next run uses the entry, and an
    edit between runs is seen."""
    root = tmp_path / "p"
    write(root, "gristmill.toml", '[tasks.a]\ncmd = "echo one > a.txt"\noutputs = ["a.txt"]\n')
    home = tmp_path / "home"
    env = dict(os.environ, GRISTMILL_HOME=str(home))

    def run():
        return subprocess.run([sys.executable, "-m", "gristmill", "run", "-C", str(root)],
                              env=env, capture_output=True, text=True, timeout=60)
    first = run()
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("✓ a") + first.stderr.count("✓ a") <= 1
    deadline = time.time() + 30
    while not list((home / "cache").glob("*.wfc")) and time.time() < deadline:
        time.sleep(0.05)
    [entry] = (home / "cache").glob("*.wfc")
    assert oct(entry.parent.stat().st_mode & 0o777) == "0o700"
    second = run()
    assert second.returncode == 0 and "nothing to do" in second.stdout + second.stderr
    write(root, "gristmill.toml", '[tasks.a]\ncmd = "echo two > a.txt"\noutputs = ["a.txt"]\n')
    third = run()
    assert third.returncode == 0, third.stderr
    assert (root / "a.txt").read_text() == "two\n"


def test_an_entry_another_process_is_writing_is_left_to_it(project, tmp_path):
    """The CLI's deferred writer skips an entry whose writer lock is held (the previous
    command's child, still writing at nice 19): no second child is forked for it."""
    import fcntl
    cache = tmp_path / "c"
    entry = wfcache.cache_file(project / "gristmill.toml", str(project / "gristmill.toml"),
                               None, cache)
    cache.mkdir(mode=0o700)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR | "
         "os.O_CREAT); fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); sys.stdin.read()",
         str(entry) + ".lock"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        cached(project, cache, defer=True)
        wfcache.write_deferred()          # would fork a writer; the lock is held: none
        assert wfcache._deferred == [] and not entry.exists()
        cached(project, cache)            # a store in this process: also left to the holder
        assert not entry.exists()
    finally:
        holder.stdin.close()
        holder.wait()
    fd = os.open(str(entry) + ".lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)      # free again once its holder is gone
    os.close(fd)
    cached(project, cache)
    assert entry.exists()


def test_a_cached_workflow_keeps_its_cluster_settings(tmp_path, loads):
    """[cluster] came back empty from the cache: a second `run --cluster` of an unchanged
    workflow asked the batch system for the defaults, not the workflow's queue."""
    root = tmp_path / "p"
    write(root, "gristmill.toml", '[cluster]\nqueue = "gpu"\nmax_workers = 3\n\n'
          '[tasks.a]\ncmd = "true"\noutputs = ["a.txt"]\n')
    first = cached(root, tmp_path / "c")
    second = cached(root, tmp_path / "c")
    assert len(loads) == 1                    # the second came from the cache
    assert (second.cluster.queue, second.cluster.max_workers) == ("gpu", 3)
    assert second.cluster == first.cluster


def test_replace_forgets_the_definition_hash(project, tmp_path):
    from dataclasses import replace
    task = cached(project, tmp_path / "c").tasks["report"]
    before = task.definition_hash
    assert replace(task, commands=("other",)).definition_hash != before


# -- stamps read ahead by a helper process -----------------------------------------------

def test_a_valid_entry_starts_a_helper_that_reads_every_default_files_mtime(project, tmp_path):
    (project / "thumbs").mkdir()
    (project / "thumbs/a.png").write_text("a")
    cached(project, tmp_path / "c")
    started = []
    cached(project, tmp_path / "c", prefetch=started)
    [prefetch] = started
    stamps = prefetch.result()
    assert stamps == {
        "thumbs/a.png": (project / "thumbs/a.png").stat().st_mtime_ns,
        "images/a.png": (project / "images/a.png").stat().st_mtime_ns,
        "thumbs/b.png": None,
        "images/b.png": (project / "images/b.png").stat().st_mtime_ns,
        "report.txt": None,
        "notes.txt": (project / "notes.txt").stat().st_mtime_ns,
    }
    assert prefetch.result() is None          # given once


def test_a_workflow_with_more_paths_than_a_helper_reads_is_stated_by_the_scan(
        project, tmp_path, monkeypatch):
    """Past PREFETCH_MAX paths (a million tasks: 1.5 million) no helper is started: its
    copy of every path cost more memory than its stats saved; the plan is the same."""
    from gristmill.core.decide.staleness import StalenessScan
    (project / "thumbs").mkdir()
    (project / "thumbs/a.png").write_text("a")
    monkeypatch.setattr(wfcache, "PREFETCH_MAX", 5)          # this workflow has 6 paths
    cached(project, tmp_path / "c")
    started = []
    wf = cached(project, tmp_path / "c", prefetch=started)
    assert started == []
    cold = loader.load_workflow(project)
    words = [(n, [r.message for r in d.reasons]) for n, d in StalenessScan(wf).scan().items()]
    assert words == [(n, [r.message for r in d.reasons])
                     for n, d in StalenessScan(cold).scan().items()]
    assert words[0] == ("thumb[images/a.png]", [words[0][1][0]]) and \
        words[0][1][0].startswith("every input is older than output thumbs/a.png")


def test_a_fresh_load_starts_no_helper(project, tmp_path):
    started = []
    cached(project, tmp_path / "c", prefetch=started)
    assert started == []


def test_a_helper_that_finds_the_entry_replaced_gives_nothing(project, tmp_path):
    cache = tmp_path / "c"
    cached(project, cache)
    [entry] = cache.glob("*.wfc")
    identity = (entry.stat().st_ino + 1, entry.stat().st_size)
    assert wfcache.StampPrefetch(entry, identity, ("notes.txt",)).result() is None
    identity = (entry.stat().st_ino, entry.stat().st_size)
    paths = tuple(dict.fromkeys(p for t in cached(project, cache).tasks.values()
                                for p in t.outputs + t.inputs))
    assert wfcache.StampPrefetch(entry, identity, paths[:1]).result() is None  # not its list


def test_the_cli_sees_a_touched_input_and_a_removed_output_after_a_cached_no_op(tmp_path):
    root = tmp_path / "p"
    write(root, "gristmill.toml", FANOUT.replace("convert {input} {output}", "cp {input} {output}")
          .replace('cmd = "ls thumbs > {output}"', 'cmd = "ls thumbs > {output}; cat notes.txt >> {output}"'))
    for n in ("a", "b"):
        write(root, f"images/{n}.png", n)
    write(root, "notes.txt", "first")
    for p in (root / "images", root):
        age(p)
    home = tmp_path / "home"
    env = dict(os.environ, GRISTMILL_HOME=str(home))

    def run():
        done = subprocess.run([sys.executable, "-m", "gristmill", "run", "-C", str(root)],
                              env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout + done.stderr
    run()
    deadline = time.time() + 30
    while not list((home / "cache").glob("*.wfc")) and time.time() < deadline:
        time.sleep(0.05)
    assert "nothing to do" in run()
    later = time.time() + 10
    os.utime(root / "notes.txt", (later, later))
    (root / "notes.txt").write_text("second")
    os.utime(root / "notes.txt", (later, later))
    out = run()
    assert "report" in out and "thumb[" not in out
    assert (root / "report.txt").read_text().endswith("second")
    (root / "thumbs/b.png").unlink()
    out = run()
    assert "thumb[images/b.png]" in out and "thumb[images/a.png]" not in out
    assert (root / "thumbs/b.png").read_text() == "b"


def test_task_from_fields_is_the_task_init_makes(project):
    from dataclasses import fields as dc_fields
    from gristmill.core.workflow import Task, task_from_fields
    for task in loader.load_workflow(project / "gristmill.toml").tasks.values():
        values = {f.name: getattr(task, f.name) for f in dc_fields(Task) if f.init}
        assert Task(**values) == task
        assert repr(Task(**values)) == repr(task_from_fields(tuple(values.values())))
