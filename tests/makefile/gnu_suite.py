"""GNU make's own regression suite as a yardstick: make and Gristmill, side by side.

Each case of make 4.3's suite (tests/scripts/<category>/<script>, one call of
``run_make_test``/``run_make_with_options``) is run twice, in two fresh folders:
``make ARGS`` in one, ``python -m gristmill run ARGS`` in the other, after the
same files were made in both (the script's earlier calls are replayed with GNU
make in both folders, so each case starts from the state the suite gives it).
What a build can observe is compared: the exit status (zero or not), the files
left and their contents, and the lines the recipes print.

    tests/makefile/gnu_suite.py --full             # every case; prints the table, rewrites CONFORMANCE.md
    tests/makefile/gnu_suite.py --full --record    # ... and stores what passes as the CI guard
    tests/makefile/gnu_suite.py --sample           # the CI sample (what test_gnu_suite.py runs)
    tests/makefile/gnu_suite.py --case features/echoing#3 -v
    tests/makefile/gnu_suite.py --extract [--source DIR]   # re-read make's scripts into gnu_cases.json

The cases come from ``gnu_cases.json`` (extracted ahead of time, so CI needs no
network); ``--extract`` reads them again from a make source tree (``--source``,
or make 4.3 fetched into ``~/.cache/gristmill/gnu-make`` on first use).
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SRC = ROOT / "src"
CASES = HERE / "gnu_cases.json"
CONFORMANCE = HERE / "CONFORMANCE.md"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gristmill" / "gnu-make"
MAKE_VERSION = "4.3"
TARBALL = f"https://ftp.gnu.org/gnu/make/make-{MAKE_VERSION}.tar.gz"
GIT = "https://github.com/mirror/make"
CATEGORIES = ("features", "functions", "variables", "targets", "options", "misc")
TIMEOUT = 60            # seconds one tool may take on one case (a hang is a difference)
REPLAY_TIMEOUT = 20
SAMPLE_EVERY = 2        # the CI sample: every Nth comparable case

# Whole scripts whose cases cannot be compared by a two-folder run: timing,
# loadable modules, make's own build.
SKIP_SCRIPTS = {
    "features/jobserver": "tests the jobserver's timing under -j",
    "features/parallelism": "tests -j timing (sleeps racing each other)",
    "features/output-sync": "tests -O with -j timing",
    "features/load": "needs loadable objects built against make's source",
    "features/loadapi": "needs loadable objects built against make's source",
    "functions/guile": "needs make built with Guile",
    "options/dash-l": "tests -l load limits with -j",
    "misc/fopen-fail": "make 4.3 itself crashes on it (a later make's fix is what it tests)",
}


def _gnu_make() -> str | None:
    sys.path.insert(0, str(HERE))
    from make_harness import _gnu_make as found     # the same check as the other make tests
    return found()


# -- getting the cases ---------------------------------------------------------------
def fetch_source(dest: Path = CACHE) -> Path:
    """make's source tree (with tests/), downloaded once into ``dest``."""
    tree = dest / f"make-{MAKE_VERSION}"
    if (tree / "tests" / "scripts").is_dir():
        return tree
    dest.mkdir(parents=True, exist_ok=True)
    try:
        import tarfile
        import urllib.request
        archive = dest / f"make-{MAKE_VERSION}.tar.gz"
        with urllib.request.urlopen(TARBALL, timeout=120) as r, open(archive, "wb") as f:
            shutil.copyfileobj(r, f)
        with tarfile.open(archive) as t:
            t.extractall(dest, filter="data")
    except Exception as e:     # no network to ftp.gnu.org: try the git mirror
        print(f"gnu_suite: {TARBALL}: {e}; trying {GIT}", file=sys.stderr)
        p = subprocess.run(["git", "clone", "-q", "--depth", "1", "--branch", MAKE_VERSION, GIT, str(tree)])
        if p.returncode != 0:
            raise SystemExit(f"gnu_suite: could not fetch make {MAKE_VERSION}'s source; "
                             "give a source tree with --source DIR")
    return tree


def extract_cases(source: Path) -> list[dict]:
    sys.path.insert(0, str(HERE))
    from gnu_extract import extract
    cases = []
    for cat in CATEGORIES:
        folder = source / "tests" / "scripts" / cat
        for script in sorted(p.name for p in folder.iterdir() if p.is_file()):
            text = (folder / script).read_text(encoding="utf-8", errors="surrogateescape")
            for c in extract(cat, script, text):
                d = c.as_json()
                why = skip_reason(d)
                if why:
                    d["skip"] = why
                cases.append(d)
    return cases


def skip_reason(case: dict) -> str | None:
    key = f"{case['category']}/{case['script']}"
    if key in SKIP_SCRIPTS:
        return SKIP_SCRIPTS[key]
    if case.get("unparsed"):
        return None
    args = case.get("args", "")
    if re.search(r"(^|\s)(-j\d*|--jobs(=\S*)?)(\s|$)", args) or "-j" in case.get("env", {}).get("MAKEFLAGS", ""):
        return "runs with -j (the output order depends on timing)"
    texts = [s[2] for s in case.get("steps", []) if s[0] == "write"] + [case.get("makefile") or ""]
    if any("#HELPER#" in t for t in texts):
        return "needs make's test helper (thelp.pl)"
    if any("$(shell ps" in t for t in texts):
        return "depends on make's own processes"
    if any(re.search(r"-[^\s]*j\d", t) and "MAKEFLAGS" in t for t in texts):
        return "sets -j in the makefile (the output order depends on timing)"
    return None


def load_data() -> dict:
    return json.loads(CASES.read_text())


# -- running one case ------------------------------------------------------------
@dataclass
class Result:
    id: str
    category: str
    status: str                   # pass, differ, unsupported, unparsed, unreproduced, skipped
    detail: str = ""
    exit_make: int | None = None
    exit_gm: int | None = None
    out_make: list[str] = field(default_factory=list)
    out_gm: list[str] = field(default_factory=list)


def _subst(text: str, folder: Path) -> str:
    return (text.replace("#PWD#", str(folder)).replace("#UPDIR#", "../" + folder.name)
            .replace("#DIRNAME#", folder.name))


def apply_steps(folder: Path, steps: list[list]) -> None:
    for step in steps:
        try:
            _apply(folder, step)
        except OSError:
            pass     # as the driver, which goes on when a file cannot be made (the tools then differ or not)


def _apply(folder: Path, step: list) -> None:
    if True:
        op = step[0]
        if op == "write":
            p = folder / step[1]
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(_subst(step[2], folder), encoding="utf-8", errors="surrogateescape")
        elif op in ("touch", "utouch"):
            names = step[1] if op == "touch" else step[2]
            for n in names:
                p = folder / _subst(n, folder)
                p.parent.mkdir(parents=True, exist_ok=True)
                with open(p, "a") as f:       # as the driver's touch: it appends a newline
                    f.write("\n")
                if op == "utouch":
                    st = p.stat()
                    os.utime(p, ns=(st.st_atime_ns + step[1] * 10**9, st.st_mtime_ns + step[1] * 10**9))
        elif op == "unlink":
            for n in step[1]:
                p = folder / _subst(n, folder)
                if p.is_file() or p.is_symlink():
                    p.unlink()
        elif op == "mkdir":
            (folder / _subst(step[1], folder)).mkdir(parents=True, exist_ok=True)
        elif op == "rmtree":
            shutil.rmtree(folder / _subst(step[1], folder), ignore_errors=True)
        elif op == "symlink":
            dst = folder / _subst(step[2], folder)
            if not dst.is_symlink() and not dst.exists():
                dst.symlink_to(_subst(step[1], folder))
        elif op == "sleep":
            pass     # times are moved explicitly (utouch); no waiting


def _env(case: dict, folder: Path, home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: os.environ[k] for k in ("PATH", "TZ", "TMPDIR", "USER", "LOGNAME") if k in os.environ}
    env.update({"HOME": str(home), "LC_ALL": "C", "LANG": "C"})
    for k, v in case.get("env", {}).items():
        env[k] = _subst(v.replace("#ENVPATH#", env.get("PATH", "")), folder)
    env.update(extra or {})
    return env


def _run(cmd: str, folder: Path, env: dict[str, str], timeout: float) -> tuple[int | None, str]:
    """``cmd`` through /bin/sh, as the test driver runs make (its options may redirect)."""
    try:
        p = subprocess.run(["/bin/sh", "-c", cmd], cwd=folder, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=timeout)
        return p.returncode, p.stdout.decode("utf-8", "replace")
    except subprocess.TimeoutExpired as e:
        return None, (e.stdout or b"").decode("utf-8", "replace")


def snapshot(folder: Path) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for root, dirs, files in os.walk(folder):
        rel = Path(root).relative_to(folder)
        for d in dirs:
            out[(rel / d).as_posix() + "/"] = None
        for f in files:
            p = Path(root) / f
            try:
                out[(rel / f).as_posix()] = p.read_bytes().decode("utf-8", "replace").replace(str(folder), "#PWD#")
            except OSError:
                out[(rel / f).as_posix()] = "<unreadable>"
    return out


_MAKE_OWN = re.compile(r"^(?:\S*/)?g?make(?:\[\d+\])?: ")
_GM_OWN = re.compile(r"^gristmill: ")
_DIAG = re.compile(r"^\S+?:\d+(?::\d+)?: ")     # FILE:LINE: message ($(warning), errors, make's warnings)


def normalize(lines: list[str], folder: Path) -> list[str]:
    out = []
    for line in lines:
        line = line.rstrip("\r").replace(str(folder), "#PWD#")
        if _MAKE_OWN.match(line) or _GM_OWN.match(line) or _DIAG.match(line):
            continue
        out.append(line)
    return out


_HEAD_DONE = re.compile(r"^✓ (.+) \([^()]*\)$")
_HEAD_FAIL = re.compile(r"^✗ (.+?) failed: ")
_HEAD_RETRY = re.compile(r"^↻ (.+?) attempt \d+ failed")
_HEAD_STREAM = re.compile(r"^▸ (.+)$")
_HEAD_OTHER = re.compile(r"^(?:⊘ |- \S.* skipped: )")


def gristmill_output(console: str, home: Path) -> list[str]:
    """What the recipes printed, in order, as Gristmill ran them.

    The console puts each task's output under a status line (``✓ task (4 ms)``,
    ``✗ task failed: …``) with its own words around it; each attempt's log (named by
    the ``task_started`` line of the run's structured log,
    ``$GRISTMILL_HOME/logs/runs/*.jsonl``) has each line the task printed, and a quiet
    success that printed nothing but its echoed commands has no log: those lines are
    the console's, under its status line.  The console gives the order and the lines
    that are no task's (``-n``'s commands, ``$(info)`` while reading, ``rm`` of
    intermediates); the logs give the rest.
    """
    per_task: dict[str, collections.deque] = collections.defaultdict(collections.deque)
    runs = []
    for p in (home / "logs" / "runs").glob("*.jsonl") if (home / "logs" / "runs").is_dir() else []:
        events = [json.loads(line) for line in p.read_text().split("\n") if line.strip()]
        if events:
            runs.append((events[0].get("ts", ""), events))
    for _, events in sorted(runs, key=lambda r: r[0]):
        current: dict[str, list[str]] = {}
        for ev in events:
            kind, task = ev.get("event"), ev.get("task")
            if kind == "task_started":
                try:
                    current[task] = _lines(Path(ev.get("log_path", "")).read_text(
                        errors="surrogateescape"))
                except OSError:
                    current[task] = None         # no log: what the console shows of it
                per_task[task].append(current[task])
            elif kind == "output_line" and task in current and current[task] is not None:
                current[task].append(ev.get("text", ""))
    out: list[str] = []
    streamed: set[str] = set()
    shown = _lines(console)

    def emit(task: str, at: int) -> None:
        q = per_task.get(task)
        if q:
            lines = q.popleft()
            if lines is None:            # the lines under its status line, unindented
                lines = []
                for later in shown[at + 1:]:
                    if not later.startswith("  "):
                        break
                    lines.append(later[2:])
            out.extend(lines)

    for at, line in enumerate(shown):
        m = _HEAD_STREAM.match(line)
        if m:
            streamed.add(m.group(1))
            emit(m.group(1), at)
            continue
        m = _HEAD_DONE.match(line) or _HEAD_FAIL.match(line) or _HEAD_RETRY.match(line)
        if m:
            if m.group(1) in streamed:
                streamed.discard(m.group(1))
            else:
                emit(m.group(1), at)
            continue
        if _HEAD_OTHER.match(line) or line.startswith("  "):
            continue
        out.append(line)
    return out


def _lines(text: str) -> list[str]:
    """Lines as a terminal shows them: split at newlines only (a recipe may print a \\r)."""
    lines = text.split("\n")
    return lines[:-1] if lines and lines[-1] == "" else lines


def _first_diff(a: list[str], b: list[str]) -> str:
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return f"line {i + 1}: make {x!r}, gristmill {y!r}"
    if len(a) > len(b):
        return f"line {len(b) + 1}: make {a[len(b)]!r}, gristmill prints nothing more"
    return f"line {len(a) + 1}: gristmill {b[len(a)]!r}, make prints nothing more"


def run_case(case: dict, previous: list[dict], make: str, python: str = sys.executable,
             keep: Path | None = None) -> Result:
    r = Result(case["id"], case["category"], "skipped")
    if case.get("unparsed"):
        r.status, r.detail = "unparsed", case["unparsed"]
        return r
    if case.get("skip"):
        r.detail = case["skip"]
        return r
    base = Path(tempfile.mkdtemp(prefix="gnusuite-")) if keep is None else keep
    try:
        mk, gm = base / "mk" / "w", base / "gm" / "w"
        mk_home, gm_home, gm_data = base / "mk-home", base / "gm-home", base / "gm-data"
        for d in (mk, gm, mk_home, gm_home, gm_data):
            d.mkdir(parents=True)
        # The script's earlier calls, replayed with make in both folders.
        for prev in previous:
            if prev.get("unparsed"):
                continue
            for folder, home in ((mk, mk_home), (gm, gm_home)):
                apply_steps(folder, prev["steps"])
                _run(f"{shlex.quote(make)} {_subst(prev['args'], folder)}", folder,
                     _env(prev, folder, home), REPLAY_TIMEOUT)
        for folder in (mk, gm):
            apply_steps(folder, case["steps"])
        code_mk, out_mk = _run(f"{shlex.quote(make)} {_subst(case['args'], mk)}", mk,
                               _env(case, mk, mk_home), TIMEOUT)
        expected = case.get("exit", 0)
        if code_mk is None or (code_mk == 0) != (expected == 0):
            # make itself does not do what the script expects: the state the case needs (made
            # by Perl the extractor does not follow) is not there, so there is nothing to compare.
            r.status, r.exit_make = "unreproduced", code_mk
            r.detail = f"make exits {code_mk} where the script expects {expected}"
            return r
        args_gm = _subst(case["args"], gm)
        jobs = "" if re.search(r"(^|\s)(-j|--jobs)", args_gm) else "-j1 "
        env_gm = _env(case, gm, gm_home, {"GRISTMILL_HOME": str(gm_data), "PYTHONPATH": str(SRC)})
        code_gm, out_gm = _run(f"{shlex.quote(python)} -m gristmill run {jobs}{args_gm}", gm, env_gm, TIMEOUT)
        r.exit_make, r.exit_gm = code_mk, code_gm
        if "is not supported" in out_gm and code_gm:
            m = re.search(r"make's (\S+)(?: \((--[\w-]+)\))? is not supported", out_gm)
            r.status, r.detail = "unsupported", (m.group(1) if m else "an option") + " refused"
            return r
        m = re.search(r"gristmill(?: run)?: error: (unrecognized arguments: .*|argument .*)", out_gm)
        if m and code_gm == 2:
            r.status, r.detail = "unsupported", m.group(1).strip()
            return r
        if "Traceback (most recent call last)" in out_gm:
            r.status = "differ"
            tail = [ln for ln in out_gm.splitlines() if ln.strip()][-1:]
            r.detail = "CRASH: gristmill printed a traceback: " + (tail[0] if tail else "")
            r.out_make, r.out_gm = _lines(out_mk), _lines(out_gm)
            return r
        r.out_make = normalize(_lines(out_mk), mk)
        r.out_gm = normalize(gristmill_output(out_gm, gm_data), gm)
        problems = []
        if code_gm is None or code_mk is None:
            problems.append(f"{'gristmill' if code_gm is None else 'make'} ran past {TIMEOUT} s")
        elif (code_mk == 0) != (code_gm == 0):
            problems.append(f"exit status: make {code_mk}, gristmill {code_gm}")
        files_mk, files_gm = snapshot(mk), snapshot(gm)
        if sorted(files_mk) != sorted(files_gm):
            only_mk = sorted(set(files_mk) - set(files_gm))
            only_gm = sorted(set(files_gm) - set(files_mk))
            what = []
            if only_mk:
                what.append("only make left " + ", ".join(only_mk[:4]))
            if only_gm:
                what.append("only gristmill left " + ", ".join(only_gm[:4]))
            problems.append("files: " + "; ".join(what))
        else:
            changed = [k for k in files_mk if files_mk[k] != files_gm[k]]
            if changed:
                problems.append(f"file contents differ: {', '.join(changed[:4])}")
        if r.out_make != r.out_gm:
            problems.append("output " + _first_diff(r.out_make, r.out_gm))
        if problems:
            r.status, r.detail = "differ", "; ".join(problems)
        else:
            r.status = "pass"
            if code_mk != code_gm:
                r.detail = f"exit status make {code_mk}, gristmill {code_gm}"
        if os.environ.get("GNU_SUITE_DEBUG"):
            r.detail += f"\n--- make ---\n{out_mk}\n--- gristmill ---\n{out_gm}"
        return r
    finally:
        if keep is None:
            shutil.rmtree(base, ignore_errors=True)


def _guarded(case: dict, previous: list[dict], make: str) -> Result:
    try:
        return run_case(case, previous, make)
    except Exception as e:      # the harness's own failure: counted, never hidden
        return Result(case["id"], case["category"], "differ", f"HARNESS ERROR: {type(e).__name__}: {e}")


def run_cases(cases: list[dict], selected: list[str] | None = None, workers: int = 2,
              progress: bool = False) -> list[Result]:
    make = _gnu_make()
    if make is None:
        raise SystemExit("gnu_suite: GNU make 4.x is not installed")
    by_script: dict[str, list[dict]] = collections.defaultdict(list)
    for c in cases:
        by_script[f"{c['category']}/{c['script']}"].append(c)
    todo = []
    for c in cases:
        if selected is not None and c["id"] not in selected:
            continue
        prev = by_script[f"{c['category']}/{c['script']}"]
        todo.append((c, prev[:prev.index(c)]))
    results: list[Result] = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        futs = [pool.submit(_guarded, c, prev, make) for c, prev in todo]
        for i, f in enumerate(futs):
            results.append(f.result())
            if progress and (i + 1) % 25 == 0:
                print(f"  … {i + 1}/{len(futs)}", file=sys.stderr, flush=True)
    return results


# -- the score --------------------------------------------------------------------
def table(results: list[Result]) -> list[dict]:
    rows = []
    for cat in CATEGORIES + ("all",):
        rs = [r for r in results if cat == "all" or r.category == cat]
        n = collections.Counter(r.status for r in rs)
        comparable = n["pass"] + n["differ"]
        rows.append({"category": cat, "cases": len(rs), "comparable": comparable, "passed": n["pass"],
                     "pct": (100.0 * n["pass"] / comparable) if comparable else 0.0,
                     "differ": n["differ"], "unsupported": n["unsupported"], "unparsed": n["unparsed"],
                     "unreproduced": n["unreproduced"],
                     "skipped": n["skipped"]})
    return rows


def format_table(rows: list[dict]) -> str:
    head = ("| category | cases | comparable | passed | % | differ | unsupported option | unparsed "
            "| not reproduced | skipped |")
    lines = [head, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        name = f"**{r['category']}**" if r["category"] == "all" else r["category"]
        lines.append(f"| {name} | {r['cases']} | {r['comparable']} | {r['passed']} | {r['pct']:.0f}% | "
                     f"{r['differ']} | {r['unsupported']} | {r['unparsed']} | {r['unreproduced']} | {r['skipped']} |")
    return "\n".join(lines)


def write_conformance(results: list[Result], took: float, causes: str = "") -> None:
    """CONFORMANCE.md: the table, then every difference (the root causes are kept between runs)."""
    old = CONFORMANCE.read_text() if CONFORMANCE.is_file() else ""
    m = re.search(r"<!-- causes -->\n(.*?)<!-- /causes -->", old, re.S)
    kept_causes = causes or (m.group(1) if m else "_(not written yet)_\n")
    # the real-project sweep's section (sweep_projects.py) is kept as it is
    real = re.search(r"## Real projects\n.*?<!-- /real-projects -->\n\n", old, re.S)
    rows = table(results)
    diffs = "\n".join(f"- `{r.id}` — {r.detail.splitlines()[0] if r.detail else ''}"
                      for r in results if r.status == "differ")
    unsup = collections.Counter(r.detail for r in results if r.status == "unsupported")
    unsup_lines = "\n".join(f"- {why}: {n}" for why, n in unsup.most_common())
    crashes = [r for r in results if r.status == "differ" and r.detail.startswith("CRASH")]
    left_out = collections.Counter(f"{r.status}: {r.detail.splitlines()[0] if r.detail else ''}"
                                   for r in results if r.status in ("skipped", "unparsed", "unreproduced"))
    left_lines = "\n".join(f"- {why} ({n})" for why, n in sorted(left_out.items(), key=lambda x: (-x[1], x[0])))
    exact = [r for r in results if r.status == "pass" and r.exit_make != r.exit_gm]
    exact_kinds = collections.Counter(f"make {r.exit_make}, gristmill {r.exit_gm}" for r in exact)
    text = f"""# Conformance with GNU make's own regression suite

Measured by `tests/makefile/gnu_suite.py --full` ({took:.0f} s on this machine, as loaded as it was): every case of GNU make
{MAKE_VERSION}'s regression suite (`tests/scripts/<category>/<script>`, one `run_make_test` or
`run_make_with_options` call each) run by GNU make and by `gristmill run` in two fresh folders that
hold the same files; compared: the exit status (zero or not), the files left and their contents, and
the lines the recipes print (make's own `make:` messages, Gristmill's status lines and `FILE:LINE:`
diagnostics are left out of the comparison). Gristmill runs with `-j1` unless the case gives `-j`,
as make does. See the harness's docstring for the details; `tests/makefile/test_gnu_suite.py` runs a
fixed sample of these cases in CI and fails if one that passed here stops passing.

- **comparable**: cases both tools ran (passed + differ).
- **unsupported option**: Gristmill refuses an option the case gives (`is not supported`, or an
  option `gristmill run` does not know).
- **unparsed**: calls the extractor (`gnu_extract.py`) cannot read from the Perl script.
- **not reproduced**: GNU make itself does not exit as the script expects (zero or not): the files
  the case needs are made by Perl the extractor does not follow (`symlink(File::Spec->…)`, a
  loop), so the two folders do not hold the case the suite means and nothing is compared.
- **skipped**: cases that cannot be compared by a two-folder run (`-j` timing, make's test helper,
  loadable modules, Guile).

## Score

{format_table(rows)}

For reference, the figure issue 23 cites from an earlier measurement: 481 of 586 comparable cases
(82%), with 94 more using options Gristmill lacks. The harness here is a new one (its own extractor,
its own rules for what is comparable), so the two are not strictly the same yardstick.

{real.group(0) if real else ""}## Differences by root cause

<!-- causes -->
{kept_causes}<!-- /causes -->

## Options Gristmill refuses or does not know

{unsup_lines or "- none"}

## Exit statuses

A case passes when both exit statuses are zero or both are not. Of the {rows[-1]['passed']} that pass,
{len(exact)} end with another non-zero status than make's:
{", ".join(f"{k} ({n})" for k, n in exact_kinds.most_common()) or "none"}.

## Cases not compared

{left_lines or "- none"}

## Crashes (a traceback from Gristmill)

{chr(10).join(f"- `{r.id}` — {r.detail}" for r in crashes) or "- none"}

## Every difference (the first one of each case)

{diffs or "- none"}
"""
    CONFORMANCE.write_text(text)


def sample_ids(cases: list[dict], every: int = SAMPLE_EVERY) -> list[str]:
    ok = [c["id"] for c in cases if not c.get("unparsed") and not c.get("skip")]
    return ok[::every]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--extract", action="store_true", help="read make's scripts again into gnu_cases.json")
    ap.add_argument("--source", type=Path, help="make's source tree (default: fetched into the cache)")
    ap.add_argument("--full", action="store_true", help="run every case; print the table; rewrite CONFORMANCE.md")
    ap.add_argument("--record", action="store_true", help="with --full: store what passes as the CI guard")
    ap.add_argument("--sample", action="store_true", help="run the CI sample")
    ap.add_argument("--case", action="append", default=[], help="run one case (category/script#N)")
    ap.add_argument("--script", action="append", default=[], help="run one script's cases (category/script)")
    ap.add_argument("-j", "--workers", type=int, default=2)
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args(argv)

    if a.extract:
        source = a.source or fetch_source()
        cases = extract_cases(source)
        data = load_data() if CASES.is_file() else {}
        data.update({"make_version": MAKE_VERSION, "source": "GNU make " + MAKE_VERSION +
                     " tests/scripts (git tag 4.3 of https://git.savannah.gnu.org/git/make.git,"
                     " mirrored at github.com/mirror/make)", "cases": cases})
        data["sample"] = sample_ids(cases)
        data.setdefault("expected_pass", [])
        CASES.write_text(json.dumps(data, indent=0, ensure_ascii=False) + "\n")
        n = collections.Counter("unparsed" if c.get("unparsed") else "skip" if c.get("skip") else "ok"
                                for c in cases)
        print(f"gnu_suite: {len(cases)} cases ({n['ok']} to compare, {n['skip']} skipped, "
              f"{n['unparsed']} unparsed) written to {CASES}")
        return 0

    data = load_data()
    cases = data["cases"]
    if a.case or a.script:
        selected = list(a.case) + [c["id"] for c in cases
                                   if f"{c['category']}/{c['script']}" in a.script]
    elif a.sample:
        selected = data["sample"]
    elif a.full:
        selected = None
    else:
        ap.error("say --full, --sample, --case or --script (or --extract)")
    t0 = time.monotonic()
    results = run_cases(cases, selected, workers=a.workers, progress=a.full)
    took = time.monotonic() - t0
    for r in results:
        if a.verbose or (r.status == "differ" and not a.full):
            print(f"{r.status:11} {r.id}: {r.detail}")
            if a.verbose and r.status in ("differ", "pass"):
                print("   make:      ", r.out_make, f"exit {r.exit_make}")
                print("   gristmill: ", r.out_gm, f"exit {r.exit_gm}")
    print(format_table(table(results)))
    print(f"({len(results)} cases in {took:.0f} s)")
    if a.full:
        write_conformance(results, took)
        if a.record:
            data["expected_pass"] = sorted(r.id for r in results if r.status == "pass")
            CASES.write_text(json.dumps(data, indent=0, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
