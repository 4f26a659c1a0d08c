"""The bundled C example (resources/examples/make-c): a hand-written Makefile of the usual kind."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from make_harness import (EXAMPLE_C, assert_same_files, environ, needs_cc, needs_make, run_gristmill,
                          run_make, snapshot, touch_newer)

pytestmark = [needs_make, needs_cc]


def fresh(tmp_path: Path, name: str = "make-c") -> Path:
    return Path(shutil.copytree(EXAMPLE_C, tmp_path / name))


def gristmill(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    return subprocess.run([sys.executable, "-m", "gristmill", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_builds_in_parallel_and_a_second_run_does_nothing(tmp_path):
    from gristmill.core.decide.capacity import Capacity
    from gristmill.core.run.engine import Engine, RunOptions
    from gristmill.core.events import EventBus, TaskFinished, TaskStarted
    from gristmill.core.makefile import load_makefile

    folder = fresh(tmp_path)
    running: set[str] = set()
    most = 0
    started: list[str] = []

    def watch(ev):
        nonlocal most
        if isinstance(ev, TaskStarted):
            running.add(ev.task)
            started.append(ev.task)
            most = max(most, len(running))
        elif isinstance(ev, TaskFinished):
            running.discard(ev.task)

    with environ({}):
        wf = load_makefile(folder)
        assert wf.warnings == ()
        bus = EventBus()
        bus.subscribe(watch)
        cap = Capacity(cpu=4, mem=8_000_000_000, gpu=0)
        result = Engine(wf, bus=bus, options=RunOptions(capacity=cap, structured_log=False)).run([])
        assert result.exit_code == 0
        assert most >= 2, "the objects were not compiled side by side"
        assert subprocess.run([folder / "bin" / "shapes"], capture_output=True, text=True).stdout \
            .startswith("rect     area    12.00")
        started.clear()
        again = Engine(load_makefile(folder), bus=bus, options=RunOptions(capacity=cap, structured_log=False))
        assert again.run([]).exit_code == 0
    assert [n for n in started if wf.tasks[n].commands] == []


def test_the_command_line_builds_installs_with_destdir_and_cleans(tmp_path):
    folder = fresh(tmp_path)
    first = gristmill("run", "-C", str(folder), cwd=tmp_path)
    assert first.returncode == 0, first.stderr + first.stdout
    assert (folder / "bin" / "shapes").is_file() and (folder / "build" / "libshapes.a").is_file()
    second = gristmill("run", "-C", str(folder), cwd=tmp_path)
    assert second.returncode == 0
    assert "Nothing to be done for 'all'" in second.stdout      # make decides, and says so
    stage = tmp_path / "stage"
    inst = gristmill("run", "-C", str(folder), "install", f"DESTDIR={stage}", "PREFIX=/usr", cwd=tmp_path)
    assert inst.returncode == 0, inst.stderr + inst.stdout
    assert sorted(p.relative_to(stage).as_posix() for p in stage.rglob("*") if p.is_file()) == [
        "usr/bin/shapes", "usr/include/shapes.h", "usr/lib/libshapes.a"]
    assert os.access(stage / "usr/bin/shapes", os.X_OK)
    plan = gristmill("plan", "-C", str(folder), cwd=tmp_path)
    assert "1 to run, 10 up to date" in plan.stdout          # installing rebuilt nothing
    clean = gristmill("run", "-C", str(folder), "clean", cwd=tmp_path)
    assert clean.returncode == 0
    assert not (folder / "build").exists() and not (folder / "bin").exists()


def test_same_files_and_rebuilds_as_make(tmp_path):
    mk, gm = fresh(tmp_path, "make"), fresh(tmp_path, "gristmill")
    for goals, what in ((["all"], "build"), (["all"], "nothing to do")):
        m, g = run_make(mk, goals, {}, {}), run_gristmill(gm, goals, {}, {})
        assert m.ok and g.ok and g.ran == m.ran, what
        assert_same_files(mk, gm, what)
    for touched in (["include/shapes.h"], ["src/report.h"], ["lib/polygon.c"]):
        touch_newer(mk, touched)
        touch_newer(gm, touched)
        m, g = run_make(mk, ["all"], {}, {}), run_gristmill(gm, ["all"], {}, {})
        assert m.ok and g.ok
        assert g.ran == m.ran, f"after touching {touched}: {sorted(g.ran)} != {sorted(m.ran)}"
        assert_same_files(mk, gm, f"after touching {touched}")
    variables = {"DESTDIR": "stage", "PREFIX": "/opt/shapes"}
    m, g = run_make(mk, ["install"], variables, {}), run_gristmill(gm, ["install"], variables, {})
    assert m.ok and g.ok and g.ran == m.ran == {"install"}
    assert_same_files(mk, gm, "install")
    m, g = run_make(mk, ["clean"], {}, {}), run_gristmill(gm, ["clean"], {}, {})
    assert m.ok and g.ok
    assert snapshot(mk) == snapshot(gm)


def test_it_is_a_bundled_example(tmp_path):
    """The app lists resources/examples; tests/app/test_makefile.py opens this one in the window."""
    from gristmill.app import resources
    from gristmill.core.load.loader import load_workflow

    assert resources.example("make-c") == EXAMPLE_C
    text = (EXAMPLE_C / "Makefile").read_text()
    assert text.startswith("# A C library and a program, built by an ordinary hand-written Makefile.")
    wf = load_workflow(fresh(tmp_path))              # as the app and the CLI load a folder
    assert wf.kind == "make" and wf.name == "make-c" and wf.default == ("all",)


def test_plan_and_graph_take_targets_and_variables_like_make(tmp_path):
    import json
    folder = fresh(tmp_path)
    graph = gristmill("graph", "--format", "json", "-C", str(folder), "bin/shapes", "CFLAGS=-O1", cwd=tmp_path)
    assert graph.returncode == 0, graph.stderr
    tasks = {t["name"]: t for t in json.loads(graph.stdout)["tasks"]}
    assert "clean" not in tasks and "bin/shapes" in tasks
    assert tasks["build/lib/rect.o"]["commands"] == [
        "cc -Iinclude -Isrc -O1 -c -o build/lib/rect.o lib/rect.c"]
    assert tasks["build/lib/rect.o"]["resources"]["mem"] == 200_000_000
    assert set(tasks["build/libshapes.a"]["deps"]) == {"build/lib/rect.o", "build/lib/circle.o",
                                                       "build/lib/polygon.o"}
    plan = gristmill("plan", "--json", "-C", str(folder), "build/libshapes.a", "CFLAGS=-O1", cwd=tmp_path)
    assert plan.returncode == 0, plan.stderr
    stale = {t["name"]: t["reasons"] for t in json.loads(plan.stdout)["tasks"]}
    assert set(stale) == {"build/lib", "build/src", "build/lib/rect.o", "build/lib/circle.o",
                          "build/lib/polygon.o", "build/libshapes.a"}
    assert stale["build/lib/rect.o"][0]["message"] == "output build/lib/rect.o is missing"


def test_a_broken_makefile_is_one_line_and_exit_status_2(tmp_path):
    folder = fresh(tmp_path)
    with open(folder / "Makefile", "a") as f:
        f.write("\nifeq (1,1)\n")
    out = gristmill("plan", "-C", str(folder), cwd=tmp_path)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Makefile:" in lines[0] and "missing 'endif'" in lines[0], out.stderr
    assert "Traceback" not in out.stderr
