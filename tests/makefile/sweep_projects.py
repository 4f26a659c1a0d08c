#!/usr/bin/env python3
"""Real projects' Makefiles built by GNU make and by Gristmill, compared as a user sees them.

    python tests/makefile/sweep_projects.py [PROJECT ...] [--big] [--jobs N]
        [--gristmill-src PATH] [--out FILE] [--label NAME] [--work DIR] [--keep]

For each project (a hand-written Makefile; the list is ``PROJECTS``) a pristine tree is
extracted (``git archive`` of the mirror under ``/work/.mirror``, or the vendored copy under
``tests/makefile/projects/`` when the mirror is not there), prepared (zlib's
``./configure``), and copied twice: one copy is built by ``make``, the other by
``python -m gristmill run`` with ``PYTHONPATH=<--gristmill-src>``. The two copies lie in
folders whose paths have the same length (``…/mk/tree`` and ``…/gm/tree``), so paths
compiled into debug information take the same room in both. Compared, step by step:

- **-n fresh**: ``make -n`` against ``gristmill run -n`` on the fresh tree (the lines printed,
  in order, the copy's own path replaced by ``<tree>``; make's ``Entering directory`` lines
  left out).
- **load**: ``make -pn`` against ``gristmill plan`` (best of 3 each; whole processes), and
  whether either changed the tree.
- **full build**: ``make -jN`` against ``gristmill run -jN``: exit status, and the trees
  after (paths, kinds, modes, symlink targets; text files by content with the copy's path
  replaced; ELF files by their section names and sizes; ``ar`` archives by their members'
  names and sizes; other binary files by size).
- **no-op**: a second build: which files it changed, and its time (best of 3) beside make's.
- **touch**: one source's mtime set to now; ``-n`` compared again, then a rebuild: the sets of
  files each rebuild changed, and the trees after.
- **install**: ``install DESTDIR=<copy>/dest`` (plus the project's own variables): the
  installed trees compared, and the build trees after.
- **clean**: the trees after ``clean``.
- **fail / fail -k**: two more fresh copies with a syntax error appended to one ``.c``; a build
  with ``-j1`` (serial, so "which targets were made" is make's order and nothing else), then
  one with ``-k -jN`` on the same copy: exit status, and the files made (for ``-k``: by both
  builds together, i.e. since the fresh tree).

The table (markdown) goes to ``--out``, and every difference is listed beneath it with
the paths and lines that differ; the full result is kept as JSON beside it
(``FILE.json``) so that two runs (``--label before`` / ``--label after``) can be shown side
by side with ``--merge A.json B.json``.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
MIRRORS = Path(os.environ.get("GRISTMILL_SWEEP_MIRRORS", "/work/.mirror"))
VENDORED = HERE / "projects"
BROKEN = "\nint gristmill_sweep_broken = ;\n"       # a syntax error in C


@dataclass(frozen=True)
class Project:
    name: str
    mirror: str                          # the folder under MIRRORS
    touch: str                           # a source file whose mtime the touch step sets
    broken: str                          # the .c that gets a syntax error
    ref: str = "HEAD"
    prepare: tuple[str, ...] = ()        # shell commands run in the pristine tree
    goals: tuple[str, ...] = ()          # the full build's goals (none: the default)
    install: tuple[str, ...] | None = None     # extra arguments of `install` (None: no install)
    clean: str | None = "clean"
    big: bool = False                    # only with --big
    serial: bool = False                 # its Makefile is not -j safe: every build is -j1
    variables: tuple[str, ...] = ()      # NAME=VALUE given to every command, both sides
    fail_steps: bool = True              # False: no failing builds (git: two more full builds each)
    timeout: float = 900.0               # one command


PROJECTS = {p.name: p for p in (
    Project("sds", "antirez+sds", "sds.h", "sds.c"),
    Project("kilo", "antirez+kilo", "kilo.c", "kilo.c"),
    Project("linenoise", "antirez+linenoise", "linenoise.h", "example.c"),
    Project("parson", "kgabis+parson", "parson.h", "parson.c"),
    # cJSON: libcjson_utils.so links cJSON.o without naming it as a prerequisite
    Project("cJSON", "DaveGamble+cJSON", "cJSON.h", "cJSON_Utils.c", install=(), serial=True),
    Project("lua", "lua+lua", "lgc.h", "lstring.c"),
    Project("chibicc", "rui314+chibicc", "tokenize.c", "hashmap.c"),
    # mujs: HEAD only says it moved to Codeberg. utfdata.h is committed, but made from Unicode
    # tables its Makefile downloads: with no network they stand in as empty, old files.
    Project("mujs", "ccxvii+mujs", "jsi.h", "jsmath.c", ref="HEAD~1", install=(),
            prepare=("touch -d @0 UnicodeData.txt SpecialCasing.txt",)),
    Project("hiredis", "redis+hiredis", "sds.h", "async.c", install=("PREFIX=/usr",)),
    Project("zlib", "madler+zlib", "zutil.h", "crc32.c", prepare=("./configure",), install=()),
    Project("lz4", "lz4+lz4", "lib/lz4.h", "lib/lz4hc.c", install=()),
    # git: the touch is one builtin (strbuf.h would rebuild everything once more)
    Project("git", "git+git", "builtin/annotate.c", "wrapper.c", install=(), big=True, timeout=3600.0,
            variables=("NO_CURL=1",), fail_steps=False),     # no libcurl headers here
)}
SMALL = [n for n, p in PROJECTS.items() if not p.big]


# -- trees ------------------------------------------------------------------------------------

@dataclass
class Entry:
    kind: str            # file, dir, link
    mode: int
    mtime: int
    size: int = 0
    what: str = ""       # what is compared: text's digest, ELF sections, link target, …
    how: str = ""        # text, elf, ar, binary, link, dir


def _elf_sections(data: bytes) -> str | None:
    """Section names and sizes of an ELF file, or None when it cannot be read."""
    try:
        cls, order = data[4], data[5]
        end = "<" if order == 1 else ">"
        if cls == 2:
            shoff, = struct.unpack_from(end + "Q", data, 0x28)
            shentsize, shnum, shstrndx = struct.unpack_from(end + "HHH", data, 0x3A)
            fmt, name_at, size_at = end + "IIQQQQ", 0, 5
        else:
            shoff, = struct.unpack_from(end + "I", data, 0x20)
            shentsize, shnum, shstrndx = struct.unpack_from(end + "HHH", data, 0x2E)
            fmt, name_at, size_at = end + "IIIIII", 0, 5
        heads = [struct.unpack_from(fmt, data, shoff + i * shentsize) for i in range(shnum)]
        strtab = heads[shstrndx]
        s_off, s_size = strtab[4], strtab[5]
        names = data[s_off:s_off + s_size]
        out = []
        for h in heads[1:]:
            n = h[name_at]
            name = names[n:names.index(b"\0", n)].decode()
            out.append(f"{name}={h[size_at]}")
        return " ".join(out)
    except (IndexError, struct.error, ValueError, UnicodeDecodeError):
        return None


def _ar_members(data: bytes) -> str | None:
    out, pos = [], 8
    try:
        while pos + 60 <= len(data):
            head = data[pos:pos + 60]
            name, size = head[:16].decode().strip(), int(head[48:58].decode().strip())
            out.append(f"{name}={size}")
            pos += 60 + size + (size & 1)
        return " ".join(out)
    except (ValueError, UnicodeDecodeError):
        return None


def describe(path: Path, root: str) -> tuple[str, str]:
    data = path.read_bytes()
    if data.startswith(b"\x7fELF"):
        sections = _elf_sections(data)
        if sections is not None:
            return "elf", sections
    if data.startswith(b"!<arch>\n"):
        members = _ar_members(data)
        if members is not None:
            return "ar", members
    if b"\0" in data[:8192]:
        return "binary", str(len(data))
    try:
        text = data.decode()
    except UnicodeDecodeError:
        return "binary", str(len(data))
    # either copy's folder (make's or Gristmill's: …/mk/tree, …/gm/tree) reads as <tree>
    return "text", re.sub(re.escape(str(Path(root).parent.parent)) + r"/(?:mk|gm)/tree", "<tree>", text)


def snapshot(root: Path, deep: bool = True) -> dict[str, Entry]:
    """Every path under ``root``: kind, mode, mtime, and (``deep``) what is compared."""
    out: dict[str, Entry] = {}
    base = str(root)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = Path(dirpath, name)
            rel = str(full.relative_to(root))
            st = full.lstat()
            mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = Entry("link", mode, st.st_mtime_ns, 0, os.readlink(full), "link")
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = Entry("dir", mode, st.st_mtime_ns, 0, "", "dir")
            else:
                how, what = describe(full, base) if deep else ("", "")
                out[rel] = Entry("file", mode, st.st_mtime_ns, st.st_size, what, how)
        dirnames[:] = [d for d in dirnames if not Path(dirpath, d).is_symlink()]
    return out


def tree_diff(a: dict[str, Entry], b: dict[str, Entry]) -> list[str]:
    """What differs between make's tree ``a`` and Gristmill's ``b``, one line a path."""
    out = []
    for rel in sorted(set(a) | set(b)):
        x, y = a.get(rel), b.get(rel)
        if y is None:
            out.append(f"{rel}: only in make's tree ({x.kind})")
        elif x is None:
            out.append(f"{rel}: only in Gristmill's tree ({y.kind})")
        elif x.kind != y.kind:
            out.append(f"{rel}: a {x.kind} under make, a {y.kind} under Gristmill")
        elif x.mode != y.mode:
            out.append(f"{rel}: mode {x.mode:o} under make, {y.mode:o} under Gristmill")
        elif x.how != y.how or x.what != y.what:
            if x.how == "text" and y.how == "text":
                diff = list(difflib.unified_diff(x.what.splitlines(), y.what.splitlines(),
                                                 "make", "gristmill", n=0, lineterm=""))[2:8]
                out.append(f"{rel}: contents differ: " + " | ".join(diff))
            else:
                a_, b_ = x.what.split(), y.what.split()
                first = next((i for i, (p, q) in enumerate(zip(a_, b_)) if p != q), min(len(a_), len(b_)))
                out.append(f"{rel}: {x.how} differs from item {first + 1}: make "
                           f"{' '.join(a_[first:first + 4])!r}, Gristmill {' '.join(b_[first:first + 4])!r}")
    return out


def changed(before: dict[str, Entry], after: dict[str, Entry]) -> list[str]:
    """Paths a step made, remade (mtime or size), or removed: ``+p``, ``~p``, ``-p``."""
    out = []
    for rel in sorted(set(before) | set(after)):
        x, y = before.get(rel), after.get(rel)
        if x is None:
            out.append("+" + rel)
        elif y is None:
            out.append("-" + rel)
        elif x.kind != "dir" and (x.mtime != y.mtime or x.size != y.size or x.kind != y.kind):
            out.append("~" + rel)
    return out


# -- running -----------------------------------------------------------------------------------

@dataclass
class Ran:
    rc: int
    seconds: float
    out: str
    err: str


class Sides:
    """The commands of the two sides, with the environment each runs in."""

    def __init__(self, work: Path, gm_src: Path, jobs: int, timeout: float,
                 variables: tuple[str, ...] = ()):
        self.jobs, self.timeout, self.variables = jobs, timeout, list(variables)
        base = {k: v for k, v in os.environ.items()
                if k not in ("MAKEFLAGS", "MFLAGS", "GNUMAKEFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
        base.update(LC_ALL="C", TZ="UTC")
        self.make_env = dict(base)
        self.gm_env = dict(base, PYTHONPATH=str(gm_src.resolve()), GRISTMILL_HOME=str(work / "gm-home"),
                           GRISTMILL_NO_CACHE="1")
        self.gm = [sys.executable, "-m", "gristmill"]

    def run(self, side: str, args: list[str], cwd: Path, verb: str = "run") -> Ran:
        args = [*args, *self.variables]
        if side == "make":
            argv, env = ["make", *args], self.make_env
        else:
            argv, env = [*self.gm, verb, *args], self.gm_env
        t = time.perf_counter()
        try:
            p = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, timeout=self.timeout,
                               stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            return Ran(-1, time.perf_counter() - t, (exc.stdout or b"").decode(errors="replace"),
                       f"timed out after {self.timeout:.0f} s")
        return Ran(p.returncode, time.perf_counter() - t, p.stdout.decode(errors="replace"),
                   p.stderr.decode(errors="replace"))

    def best(self, side: str, args: list[str], cwd: Path, reps: int = 3, verb: str = "run") -> float:
        return min(self.run(side, args, cwd, verb).seconds for _ in range(reps))


_MAKE_NOISE = re.compile(r"^make(\[\d+\])?: (Entering|Leaving) directory |^make(\[\d+\])?: Nothing to be done")


def dry_lines(text: str, root: Path) -> list[str]:
    return [line.replace(str(root), "<tree>") for line in text.splitlines()
            if line.strip() and not _MAKE_NOISE.match(line)]


# -- one project -------------------------------------------------------------------------------

@dataclass
class Check:
    """One comparison: equal or not, what a cell says, and the differences in full."""

    ok: bool
    cell: str
    diffs: list[str] = field(default_factory=list)
    parts: dict[str, bool] = field(default_factory=dict)    # exit, tree, set, lines: equal or not


@dataclass
class Result:
    project: str
    label: str
    source: str
    checks: dict[str, Check] = field(default_factory=dict)
    error: str = ""


COLUMNS = ("full build", "no-op", "touch", "-n", "install", "clean", "fail", "fail -k", "load")


def pristine(project: Project, work: Path, vendored: bool = False) -> tuple[Path, str]:
    """The project's tree, prepared: from its mirror, or (``vendored``, or no mirror) from
    the copy under ``tests/makefile/projects/``."""
    dest = work / "pristine"
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    git = MIRRORS / project.mirror / "repo"
    if (git / ".git").is_dir():
        git = git / ".git"
    if git.is_dir() and not vendored:
        archive = subprocess.run(["git", f"--git-dir={git}", "archive", project.ref],
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
        source = f"{project.mirror} {project.ref}"
    elif (VENDORED / project.name).is_dir():
        shutil.rmtree(dest)
        shutil.copytree(VENDORED / project.name, dest, symlinks=True)
        source = f"vendored tests/makefile/projects/{project.name}"
    else:
        raise FileNotFoundError(f"{project.name}: neither {git} nor {VENDORED / project.name} exists")
    for cmd in project.prepare:
        subprocess.run(cmd, shell=True, cwd=dest, check=True, capture_output=True, timeout=project.timeout)
    return dest, source


def two_copies(src: Path, where: Path) -> tuple[Path, Path]:
    """``where/mk/tree`` and ``where/gm/tree``: paths of the same length."""
    out = []
    for side in ("mk", "gm"):
        dest = where / side / "tree"
        if dest.parent.exists():
            shutil.rmtree(dest.parent)
        dest.parent.mkdir(parents=True)
        shutil.copytree(src, dest, symlinks=True)
        out.append(dest)
    return out[0], out[1]


def _cell_rc(ran: Ran) -> str:
    return "timeout" if ran.rc == -1 else f"exit {ran.rc}"


def _short(lines: list[str], n: int = 1) -> str:
    return "; ".join(lines[:n]) + (f" (+{len(lines) - n} more)" if len(lines) > n else "")


def _last(ran: Ran, n: int = 2) -> str:
    lines = [x for x in (ran.err + "\n" + ran.out).splitlines() if x.strip()]
    return " / ".join(x.strip()[:160] for x in lines[-n:])


def rc_diff(what: str, rm: Ran, rg: Ran) -> str:
    return (f"{what}: make {_cell_rc(rm)} ({_last(rm)!r}), "
            f"Gristmill {_cell_rc(rg)} ({_last(rg)!r})")


def compare_runs(what: str, rm: Ran, rg: Ran, tm: dict, tg: dict) -> Check:
    diffs = tree_diff(tm, tg)
    parts = {"exit": rm.rc == rg.rc, "tree": not diffs}
    if rm.rc != rg.rc:
        diffs.insert(0, rc_diff(what, rm, rg))
    files = sum(1 for e in tm.values() if e.kind != "dir")
    if not diffs:
        return Check(True, f"= ({files} paths)", parts=parts)
    return Check(False, "≠ " + _short(diffs), diffs, parts)


def compare_sets(what: str, sm: list[str], sg: list[str], rm: Ran, rg: Ran) -> Check:
    diffs = []
    if rm.rc != rg.rc:
        diffs.append(rc_diff(what, rm, rg))
    only_m, only_g = sorted(set(sm) - set(sg)), sorted(set(sg) - set(sm))
    if only_m:
        diffs.append(f"{what}: changed by make only: {' '.join(only_m[:30])}")
    if only_g:
        diffs.append(f"{what}: changed by Gristmill only: {' '.join(only_g[:30])}")
    return Check(not diffs, ("= " if not diffs else "≠ ") + f"{len(sm)} vs {len(sg)} changed", diffs,
                 {"exit": rm.rc == rg.rc, "set": not (only_m or only_g)})


def compare_dry(what: str, rm: Ran, rg: Ran, km: Path, kg: Path) -> Check:
    lm, lg = dry_lines(rm.out, km), dry_lines(rg.out, kg)
    diffs = []
    if rm.rc != rg.rc:
        diffs.append(rc_diff(what, rm, rg))
    if lm != lg:
        if sorted(lm) == sorted(lg):
            diffs.append(f"{what}: the same {len(lm)} lines in another order")
        else:
            d = list(difflib.unified_diff(lm, lg, "make -n", "gristmill run -n", n=0, lineterm=""))
            diffs.append(f"{what}: " + " | ".join(x[:200] for x in d[2:10]))
    return Check(not diffs, ("= " if not diffs else "≠ ") + f"{len(lm)} vs {len(lg)} lines", diffs,
                 {"exit": rm.rc == rg.rc, "lines": lm == lg})


def also(check: Check, what: str, km: Path, kg: Path) -> Check:
    """``check``, failed as well when the two build trees now differ."""
    after = [f"{what}: {d}" for d in tree_diff(snapshot(km), snapshot(kg))]
    check.parts["tree"] = not after
    if not after:
        return check
    if check.ok:
        check.cell = "≠ " + _short(after)
    return Check(False, check.cell, check.diffs + after, check.parts)


def sweep_project(project: Project, work: Path, gm_src: Path, jobs: int, label: str = "",
                  log=print, vendored: bool = False) -> Result:
    """Every step for one project; a step that cannot run (a missing file, a tool that fails to
    start) ends the sweep of the project with ``error`` set, keeping the steps done."""
    res = Result(project.name, label, "")
    try:
        _sweep(project, work, gm_src, jobs, res, log, vendored)
    except (OSError, subprocess.SubprocessError) as exc:
        res.error = f"sweep stopped: {type(exc).__name__}: {exc}"
    return res


def _sweep(project: Project, work: Path, gm_src: Path, jobs: int, res: Result, log,
           vendored: bool) -> Result:
    work.mkdir(parents=True, exist_ok=True)
    jobs = 1 if project.serial else jobs
    sides = Sides(work, gm_src, jobs, project.timeout, project.variables)
    src, res.source = pristine(project, work, vendored)
    j = [f"-j{jobs}"]
    goals = list(project.goals)
    km, kg = two_copies(src, work / "build")

    def both(args: list[str], verb: str = "run") -> tuple[Ran, Ran]:
        return sides.run("make", args, km), sides.run("gm", args, kg, verb)

    # -n on the fresh tree, and the load (make -pn against gristmill plan)
    log(f"{project.name}: -n, load")
    before = snapshot(km, deep=False), snapshot(kg, deep=False)
    dry_fresh = compare_dry("-n fresh", *both(["-n", *goals]), km, kg)
    pm = sides.best("make", ["-pn", *goals], km)
    pg = sides.best("gm", goals, kg, verb="plan")
    mod_m, mod_g = changed(before[0], snapshot(km, deep=False)), changed(before[1], snapshot(kg, deep=False))
    load_diffs = []
    if mod_m != mod_g:
        load_diffs.append(f"load: -n/-pn under make changed {mod_m or 'nothing'}; -n/plan under "
                          f"Gristmill changed {mod_g or 'nothing'}")
    res.checks["load"] = Check(not load_diffs, f"plan {pg:.2f} s vs make -pn {pm:.3f} s "
                               f"({pg / max(pm, 1e-3):.0f}×)", load_diffs)

    log(f"{project.name}: full build")
    rm, rg = both([*j, *goals])
    full = compare_runs("full build", rm, rg, snapshot(km), snapshot(kg))
    full.cell += f"; {rg.seconds:.1f} s vs make {rm.seconds:.1f} s"
    res.checks["full build"] = full
    if rm.rc != 0:
        res.error = f"make's own full build failed ({rm.rc}): {rm.err[-500:]}"
        return res

    log(f"{project.name}: no-op")
    s1 = snapshot(km, deep=False), snapshot(kg, deep=False)
    rm, rg = both([*j, *goals])
    cm, cg = changed(s1[0], snapshot(km, deep=False)), changed(s1[1], snapshot(kg, deep=False))
    noop = compare_sets("no-op", cm, cg, rm, rg)
    tm, tg = sides.best("make", [*j, *goals], km), sides.best("gm", [*j, *goals], kg)
    ran = "nothing" if not cg else f"{len(cg)} changed"
    noop.cell = ("= " if noop.ok else "≠ ") + f"{ran}; {tg:.2f} s vs make {tm:.3f} s"
    res.checks["no-op"] = noop

    log(f"{project.name}: touch {project.touch}")
    s2 = snapshot(km, deep=False), snapshot(kg, deep=False)
    now = time.time()
    for k in (km, kg):
        os.utime(k / project.touch, (now, now))
    dry_touch = compare_dry("-n after touch", *both(["-n", *goals]), km, kg)
    rm, rg = both([*j, *goals])
    cm, cg = changed(s2[0], snapshot(km, deep=False)), changed(s2[1], snapshot(kg, deep=False))
    touch = compare_sets("touch", [c for c in cm if c[1:] != project.touch],
                         [c for c in cg if c[1:] != project.touch], rm, rg)
    res.checks["touch"] = also(touch, "touch: trees after", km, kg)
    dry = Check(dry_fresh.ok and dry_touch.ok, f"fresh {dry_fresh.cell}; after touch {dry_touch.cell}",
                dry_fresh.diffs + dry_touch.diffs,
                {k: dry_fresh.parts[k] and dry_touch.parts[k] for k in dry_fresh.parts})
    res.checks["-n"] = dry

    if project.install is not None:
        log(f"{project.name}: install")
        dm, dg = km.parent / "dest", kg.parent / "dest"
        rm = sides.run("make", ["install", f"DESTDIR={dm}", *project.install], km)
        rg = sides.run("gm", ["install", f"DESTDIR={dg}", *project.install], kg)
        inst = compare_runs("install", rm, rg, snapshot(dm) if dm.exists() else {},
                            snapshot(dg) if dg.exists() else {})
        res.checks["install"] = also(inst, "install: build trees after", km, kg)
    else:
        res.checks["install"] = Check(True, "(no install)")

    if project.clean:
        log(f"{project.name}: clean")
        rm, rg = both([project.clean])
        res.checks["clean"] = compare_runs("clean", rm, rg, snapshot(km), snapshot(kg))
    else:
        res.checks["clean"] = Check(True, "(no clean)")

    if project.fail_steps is False:
        for col in ("fail", "fail -k"):
            res.checks[col] = Check(True, "(not run: two more full builds)")
        return res
    log(f"{project.name}: failing build")
    fm, fg = two_copies(src, work / "fail")
    for k in (fm, fg):
        with open(k / project.broken, "a") as fh:
            fh.write(BROKEN)
    f0 = snapshot(fm, deep=False), snapshot(fg, deep=False)
    rm, rg = sides.run("make", ["-j1", *goals], fm), sides.run("gm", ["-j1", *goals], fg)
    f1 = snapshot(fm, deep=False), snapshot(fg, deep=False)
    fail = compare_sets("fail", changed(f0[0], f1[0]), changed(f0[1], f1[1]), rm, rg)
    fail.cell = ("= " if fail.ok else "≠ ") + f"exit {rm.rc} vs {rg.rc}; " + fail.cell.split(" ", 1)[1]
    res.checks["fail"] = fail
    rm, rg = sides.run("make", ["-k", *j, *goals], fm), sides.run("gm", ["-k", *j, *goals], fg)
    failk = compare_sets("fail -k", changed(f0[0], snapshot(fm, deep=False)),   # since the fresh tree
                         changed(f0[1], snapshot(fg, deep=False)), rm, rg)
    failk.cell = ("= " if failk.ok else "≠ ") + f"exit {rm.rc} vs {rg.rc}; " + failk.cell.split(" ", 1)[1]
    res.checks["fail -k"] = failk
    return res


# -- the table -----------------------------------------------------------------------------------

def _esc(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def table(results: list[Result]) -> str:
    labels = sorted({r.label for r in results}, key=[r.label for r in results].index)
    head = ["project"] + (["run"] if len(labels) > 1 else []) + list(COLUMNS)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        row = [r.project] + ([r.label] if len(labels) > 1 else [])
        for col in COLUMNS:
            c = r.checks.get(col)
            row.append(_esc(c.cell) if c else ("(not reached)" if r.error else ""))
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    for r in results:
        diffs = [d for col in COLUMNS if col in r.checks for d in r.checks[col].diffs]
        if r.error or diffs:
            lines.append(f"- **{r.project}**{' (' + r.label + ')' if r.label else ''} ({r.source}):")
            if r.error:
                lines.append(f"  - {_esc(r.error)[:600]}")
            lines += [f"  - {_esc(d)[:600]}" for d in diffs[:40]]
            if len(diffs) > 40:
                lines.append(f"  - … {len(diffs) - 40} more")
    return "\n".join(lines) + "\n"


CONFORMANCE = HERE / "CONFORMANCE.md"
SECTION = """## Real projects

Measured by `tests/makefile/sweep_projects.py` (see its docstring; `test_sweep_small.py` runs it in
CI on the vendored cJSON and sds): each project built by GNU make and by `gristmill run` in two
fresh copies, with `--jobs {jobs}` (cJSON's Makefile is not `-j` safe: it is built serially), and
compared as a user sees them:

- **full build**: exit status and the trees after — paths, kinds, modes, symlink targets; text
  files by content (the copy's own path replaced); ELF files (objects, libraries, programs) by
  their section names and sizes; `ar` archives by their members' names and sizes; other binary
  files by size. The times are one build each (Gristmill's first, make's), on a shared machine.
- **no-op**: a second build: the files it changed (make's and Gristmill's sets), its time (best of
  3) beside make's.
- **touch**: one source's mtime set to now, then a rebuild: the sets of files each rebuild changed,
  and the trees after.
- **-n**: the lines `make -n` and `gristmill run -n` print (on the fresh tree, and after the touch),
  in order; make's `Entering directory` lines left out.
- **install**: `install DESTDIR=<copy>/dest` (hiredis also `PREFIX=/usr`): the installed trees, and
  the build trees after.
- **clean**: the trees after `clean`.
- **fail / fail -k**: a syntax error appended to one `.c` of two fresh copies; a build with `-j1`,
  then one with `-k`: exit status and the files made (for `-k`, by both builds together).
- **load**: `gristmill plan` against `make -pn` (whole processes, best of 3), and whether `-n`,
  `-pn` or `plan` changed the tree.

A cell starts with `=` when make and Gristmill agree on everything it compares, `≠` when not; the
differences are listed under each table, and each is reduced to a minimal Makefile in
"Real projects: the differences" below.

{tables}<!-- /real-projects -->

"""


def write_conformance(tables: str, jobs: int) -> None:
    """Put the "Real projects" section into CONFORMANCE.md (before the root causes)."""
    old = CONFORMANCE.read_text()
    section = SECTION.format(jobs=jobs, tables=tables)
    m = re.search(r"## Real projects\n.*?<!-- /real-projects -->\n\n", old, re.S)
    if m:
        text = old[:m.start()] + section + old[m.end():]
    else:
        at = old.index("## Differences by root cause")
        text = old[:at] + section + old[at:]
    CONFORMANCE.write_text(text)


def load_results(path: Path) -> list[Result]:
    out = []
    for r in json.loads(path.read_text()):
        checks = {k: Check(**v) for k, v in r.pop("checks").items()}
        out.append(Result(**r, checks=checks))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("projects", nargs="*", help=f"default: {' '.join(SMALL)}; git with --big")
    ap.add_argument("--big", action="store_true", help="add git (16k tasks; about an hour on 2 cores)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--gristmill-src", type=Path, default=REPO / "src")
    ap.add_argument("--out", type=Path, help="the markdown table (and FILE.json beside it)")
    ap.add_argument("--label", default="")
    ap.add_argument("--work", type=Path, help="scratch folder (default: a new temporary one)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder")
    ap.add_argument("--merge", type=Path, nargs="+", help="print one table of these JSON results")
    ap.add_argument("--conformance", type=Path, help="with --merge: this markdown (the tables and "
                    "the differences' reductions) becomes CONFORMANCE.md's Real projects section")
    args = ap.parse_args(argv)
    if args.merge:
        results = [r for p in args.merge for r in load_results(p)]
        results.sort(key=lambda r: list(PROJECTS).index(r.project) if r.project in PROJECTS else 99)
        text = table(results)
        if args.out:
            args.out.write_text(text)
        if args.conformance:
            write_conformance(args.conformance.read_text(), args.jobs)
        print(text)
        return 0
    names = args.projects or SMALL + (["git"] if args.big else [])
    unknown = [n for n in names if n not in PROJECTS]
    if unknown:
        print(f"sweep_projects: unknown project {', '.join(unknown)}; known: {' '.join(PROJECTS)}",
              file=sys.stderr)
        return 2
    work = args.work or Path(tempfile.mkdtemp(prefix="gm-sweep-"))
    results = []
    try:
        for name in names:
            r = sweep_project(PROJECTS[name], work / name, args.gristmill_src, args.jobs, args.label,
                              log=lambda m: print(m, file=sys.stderr, flush=True))
            results.append(r)
            if args.out:
                args.out.write_text(table(results))
                args.out.with_suffix(".json").write_text(json.dumps([asdict(x) for x in results], indent=1))
            if not args.keep:
                shutil.rmtree(work / name, ignore_errors=True)
    finally:
        if not args.keep and args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
