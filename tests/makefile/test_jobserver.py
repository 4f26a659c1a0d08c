"""Gristmill is a GNU make jobserver for the sub-makes its tasks run, and a client of a
parent make's jobserver when it runs inside ``make -jN``: recursive builds keep their
parallelism and never take more slots than were given. Real make, real pipes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from make_harness import GNU_MAKE, _PARENT, needs_make

pytestmark = needs_make

# Each job writes "start NAME T" and "end NAME T" (from one clock) into a shared log.
STAMP = 'echo "start $@ $$(date +%s.%N)" >> {log}; sleep {secs}; echo "end $@ $$(date +%s.%N)" >> {log}'


def _environ():
    return {k: v for k, v in os.environ.items() if k not in _PARENT}


def _concurrency(log) -> tuple[int, set[str]]:
    """The most jobs that ran at once, and which jobs ran."""
    events = []
    names = set()
    for line in log.read_text().split("\n"):
        if line:
            kind, name, t = line.split()
            names.add(name)
            events.append((float(t), 0 if kind == "end" else 1))
    running = most = 0
    for _, start in sorted(events):
        running += 1 if start else -1
        most = max(most, running)
    return most, names


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = textwrap.dedent(text).lstrip("\n").split("\n")
    path.write_text("\n".join("\t" + l[2:] if l.startswith("> ") else l for l in lines))


def _recursive_tree(tmp_path, secs=1):
    log = tmp_path / "jobs.log"
    _write(tmp_path / "Makefile", f"""
        .PHONY: all sub
        all: sub t1 t2 t3 t4
        sub:
        > $(MAKE) -C sub
        t1 t2 t3 t4:
        > @{STAMP.format(log=log, secs=secs)}; touch $@
        """)
    _write(tmp_path / "sub" / "Makefile", f"""
        all: s1 s2 s3 s4
        s1 s2 s3 s4:
        > @{STAMP.format(log=log, secs=secs)}; echo "$$MAKEFLAGS" > $@
        """)
    return log


def gristmill(folder, *words, home):
    env = _environ()
    env["GRISTMILL_HOME"] = str(home)
    return subprocess.run([sys.executable, "-m", "gristmill", "run", "-C", str(folder), *words],
                          capture_output=True, text=True, timeout=120, env=env)


def test_a_sub_make_runs_its_jobs_in_parallel_inside_gristmills_slots(tmp_path):
    work = tmp_path / "w"
    log = _recursive_tree(work)
    p = gristmill(work, "-j4", home=tmp_path / "home")
    assert p.returncode == 0, p.stdout + p.stderr
    most, names = _concurrency(log)
    assert names == {"s1", "s2", "s3", "s4", "t1", "t2", "t3", "t4"}
    # Four slots in all, shared by Gristmill's own tasks and the sub-make's jobs...
    assert most <= 4, log.read_text()
    # ...and the sub-make used more than one of them (before: it ran serially).
    flags = (work / "sub" / "s1").read_text()
    assert "--jobserver-auth=" in flags and "-j4" in flags, flags


def test_the_sub_make_alone_gets_every_slot(tmp_path):
    work = tmp_path / "w"
    log = _recursive_tree(work)
    p = gristmill(work, "-j4", "sub", home=tmp_path / "home")
    assert p.returncode == 0, p.stdout + p.stderr
    most, names = _concurrency(log)
    assert names == {"s1", "s2", "s3", "s4"}
    assert most == 4, log.read_text()        # as under make -j4 (serially before: 1)


def test_without_j_the_sub_make_runs_serially_as_under_make(tmp_path):
    work = tmp_path / "w"
    log = _recursive_tree(work, secs=0.2)
    p = gristmill(work, home=tmp_path / "home")
    assert p.returncode == 0, p.stdout + p.stderr
    assert _concurrency(log)[0] == 1
    assert "jobserver" not in (work / "sub" / "s1").read_text()


def test_keep_going_reaches_the_sub_make(tmp_path):
    work = tmp_path / "w"
    _write(work / "Makefile", """
        .PHONY: sub
        sub:
        > $(MAKE) -C sub
        """)
    _write(work / "sub" / "Makefile", """
        all: bad good
        bad:
        > false
        good:
        > touch good
        """)
    p = gristmill(work, "-k", "-j2", home=tmp_path / "home")
    assert p.returncode != 0
    assert (work / "sub" / "good").exists(), p.stdout + p.stderr   # make -k went on


def test_inside_make_j3_gristmill_takes_its_slots_from_makes_jobserver(tmp_path):
    inner = tmp_path / "inner"
    log = tmp_path / "jobs.log"
    tasks = "\n".join(f"""
        [tasks.j{i}]
        cmd = '{STAMP.format(log=log, secs=1).replace("$$", "$").replace("$@", f"j{i}")}'
        resources = {{ cpu = 0.25 }}
        """ for i in range(6))
    _write(inner / "gristmill.toml", tasks)
    home = tmp_path / "home"
    _write(tmp_path / "Makefile", f"""
        all:
        > +GRISTMILL_HOME={home} {sys.executable} -m gristmill run -C {inner}
        """)
    p = subprocess.run([GNU_MAKE, "-j3", "-C", str(tmp_path)], capture_output=True, text=True,
                       timeout=120, env=_environ())
    assert p.returncode == 0, p.stdout + p.stderr
    most, names = _concurrency(log)
    assert len(names) == 6
    # Eight 0.25-CPU slots on two cores, but make -j3 gave three: never more than three.
    assert 2 <= most <= 3, log.read_text()
