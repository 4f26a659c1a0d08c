"""The scan that decides, and the words it uses."""

import os
import time

from gristmill.core.decide.graph import TaskGraph
from gristmill.core.reasons import ReasonKind
from gristmill.core.decide.staleness import StalenessScan

from wf import task, workflow


def _files(root, **mtimes):
    for name, t in mtimes.items():
        p = root / name
        p.write_text(name)
        os.utime(p, (t, t))


def _wf(root):
    return workflow(root,
                    task("mk", "x", inputs=["src"], outputs=["mid"]),
                    task("use", "x", inputs=["mid", "conf"], outputs=["out"]),
                    task("clean", "x", phony=True))


def kinds(d):
    return [r.kind for r in d.reasons]


def test_missing_output(tmp_path):
    now = time.time()
    _files(tmp_path, src=now - 100, conf=now - 100)
    d = StalenessScan(_wf(tmp_path)).scan(["use"])
    assert kinds(d["mk"]) == [ReasonKind.MISSING_OUTPUT]
    assert d["mk"].reasons[0].message == "output mid is missing"
    assert ReasonKind.DEPENDENCY_RUNS in kinds(d["use"])
    assert "reads the output of mk, which will run" in str(d["use"].reasons[-1])


def test_newer_input_names_both_files_and_times(tmp_path):
    now = time.time()
    _files(tmp_path, src=now - 10, mid=now - 100, conf=now - 200, out=now - 50)
    d = StalenessScan(_wf(tmp_path)).scan(["use"])
    msg = d["mk"].reasons[0].message
    stamp = time.strftime("%H:%M:%S", time.localtime(now - 10))
    assert msg.startswith(f"input src ({stamp}) is newer than output mid (")
    assert d["use"].stale      # because mk will run
    assert not any(r.kind is ReasonKind.INPUT_NEWER for r in d["use"].reasons)
    assert d["use"].only_dependency


def test_everything_up_to_date_says_why(tmp_path):
    now = time.time()
    _files(tmp_path, src=now - 300, mid=now - 200, conf=now - 300, out=now - 100)
    d = StalenessScan(_wf(tmp_path)).scan(["use"])
    assert not d["mk"].stale and not d["use"].stale
    assert d["use"].reasons[0].kind is ReasonKind.UP_TO_DATE
    assert "every input is older than output out" in d["use"].reasons[0].message


def test_phony_forced_and_history(tmp_path):
    now = time.time()
    _files(tmp_path, src=now - 300, mid=now - 200, conf=now - 300, out=now - 100)
    wf = _wf(tmp_path)
    d = StalenessScan(wf).scan(["use", "clean"], force=["mk"])
    assert kinds(d["clean"]) == [ReasonKind.PHONY]
    assert kinds(d["mk"]) == [ReasonKind.FORCED]
    assert kinds(d["use"]) == [ReasonKind.DEPENDENCY_RUNS]

    class Rec:
        definition_hash = "something-else"
    d = StalenessScan(wf, TaskGraph(wf), records={"use": Rec()}).scan(["use"])
    assert kinds(d["use"]) == [ReasonKind.DEFINITION_CHANGED]
    assert not d["mk"].stale   # no record: history only adds facts


def test_older_day_shows_the_date(tmp_path):
    old = time.time() - 5 * 86400
    _files(tmp_path, src=time.time(), mid=old, conf=old, out=old)
    msg = StalenessScan(_wf(tmp_path)).scan(["mk"])["mk"].reasons[0].message
    assert time.strftime("%Y-%m-%d", time.localtime(old)) in msg


def test_a_scan_decides_each_task_as_decide_does(tmp_path):
    """The scan's quick way for a missing single output gives decide's decision."""
    now = time.time()
    (tmp_path / "d").mkdir()
    _files(tmp_path, **{"src": now - 100, "conf": now - 100, "old": now - 50, "d/x": now - 100})
    wf = workflow(tmp_path,
                  task("gen", "x", inputs=["src"], outputs=["g"]),          # missing, no deps
                  task("one", "x", inputs=["g"], outputs=["o1"]),           # one dep, will run
                  task("two", "x", inputs=["g", "old", "o1"], outputs=["o2"]),  # several deps
                  task("fresh", "x", inputs=["src"], outputs=["old"]),      # up to date
                  task("reads", "x", inputs=["old"], outputs=["r"]),        # dep that won't run
                  task("aft", "x", inputs=["g"], outputs=["a"], after=["fresh"]),
                  task("many", "x", inputs=["src"], outputs=["m1", "m2"]),
                  task("ph", "x", inputs=["g"], outputs=["p"], phony=True),
                  task("none", "x"),
                  task("self", "x", inputs=["s"], outputs=["s"]),           # reads its own output
                  task("deep", "x", inputs=["d/x"], outputs=["d/y"]))
    for targets in (None, ["two"], ["reads", "aft"]):
        scan = StalenessScan(wf)
        got = scan.scan(targets)
        one_by_one = StalenessScan(wf)
        will_run: set[str] = set()
        expected = {}
        for name in got:
            d = expected[name] = one_by_one.decide(wf.tasks[name], will_run)
            if d.stale:
                will_run.add(name)
        assert list(got.items()) == list(expected.items())
    assert kinds(got["reads"]) == [ReasonKind.MISSING_OUTPUT]
