"""The ``gristmill`` command: headless subcommands, or the app with none.

Exit status: 0 success; 2 a usage or workflow error, or, for a Makefile, a failed
build (as make's); 1 a failed task of a gristmill.toml or .json workflow, and
``run -q``'s "something would run" (as make -q's). A cancelled run exits 128 plus
the signal (130 for Ctrl-C). Errors are one line each, ``path:line:col: message``.
"""

from __future__ import annotations

import argparse
import errno
import gc
import json
import os
import re
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from . import __version__
from .core.errors import GristmillError, UsageError, WorkflowError
from .core.sizes import format_duration, format_size
from .core.load.cache import StampPrefetch, load_cached, write_deferred
from .core.workflow import Workflow

# The engine, events and graph modules are imported where they are used, after the
# workflow is loaded: a run's helper process stats its files meanwhile (wfcache).
if TYPE_CHECKING:
    from .core.run.engine import Engine, RunOptions

SUBCOMMANDS = ("run", "plan", "graph", "history", "doctor", "watch")
_ASSIGN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*=")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # exit 2 with one line, as argparse does, never a traceback
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


# What a make user should know about the letters `run` shares with make.
MAKE_LETTERS = """\
For a Makefile, GNU make itself decides and runs every recipe; Gristmill packs
each recipe by its target's declared resources, records it and guards it. Every
make option is passed to make as typed: -C, -f, -j, -k, -B, -n, -q, -t, -s, -i,
-e, -r, -R, -W, -o, -O, -I, -L, -l, -w, -p, --trace, --eval, --debug, NAME=VALUE.
-n, -q, -t and -p run make alone (nothing of Gristmill's runs).
short options that differ from make's:
  -n  for gristmill.toml and .json: prints the plan, in run order, with the
      reason each task would run
  -v  prints each recipe as it starts (make -v prints make's version;
      here that is gristmill --version)
make options refused for a gristmill.toml or .json workflow: -i, -o, -e, -r, -R,
-I, -L, -O, -w, -p, -l, --trace, --eval, --debug.
"""

# make's options that `run` passes to make for a Makefile; a gristmill.toml or .json
# workflow refuses each with what to do instead (option, its long form, its argument:
# None, "yes" or "optional", what to do instead).
_MAKE_ONLY = (
    ("-i", "--ignore-errors", None, "put '-' before the commands whose failures may be "
     "ignored, or use -k to go on with the rest after a failure"),
    ("-o", "--old-file", "yes", "Gristmill cannot hold a file back as old; touch what "
     "depends on it with -t, or run the targets that do not need it"),
    ("-e", "--environment-overrides", None, "set the variable on the command line "
     "(NAME=VALUE), which overrides the workflow"),
    ("-r", "--no-builtin-rules", None, "a make option, for Makefiles only"),
    ("-R", "--no-builtin-variables", None, "a make option, for Makefiles only"),
    ("-I", "--include-dir", "yes", "a make option, for Makefiles only"),
    ("-L", "--check-symlink-times", None, "Gristmill compares the times of the files "
     "links point to, as make does without -L"),
    ("-O", "--output-sync", "optional", "Gristmill keeps each task's output together already"),
    ("-w", "--print-directory", None, "each task's output is shown under its name already"),
    (None, "--no-print-directory", None, "a make option, for Makefiles only"),
    ("-p", "--print-data-base", None, "`gristmill graph` exports the task graph"),
    ("-l", "--load-average", "optional", "a make option, for Makefiles only"),
    ("-S", "--no-keep-going", None, "leave out -k"),
    ("-b", None, None, "a make option, for Makefiles only"),
    ("-m", None, None, "a make option, for Makefiles only"),
    ("-d", None, None, "`gristmill plan` says why each task runs"),
    (None, "--debug", "optional", "`gristmill plan` says why each task runs"),
    (None, "--trace", None, "`gristmill plan` says why each task runs; -v prints each "
     "command as it starts"),
    ("-E", "--eval", "yes", "write the line into the workflow, or pass NAME=VALUE"),
    (None, "--no-silent", None, "a make option, for Makefiles only"),
    (None, "--warn-undefined-variables", None, "a make option, for Makefiles only"),
)


_TYPED: list[str] = []      # the words of the command line, for the order of make's options


def _make_dest(short: str | None, long: str | None) -> str:
    return "make_" + (long or short or "").strip("-").replace("-", "_")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-C", "--directory", metavar="DIR", default=None,
                   help="open the workflow in DIR (default: the current folder)")
    p.add_argument("-f", "--file", metavar="FILE", default=None,
                   help="the workflow file (gristmill.toml, gristmill.json or a Makefile)")


def _packing(p: argparse.ArgumentParser) -> None:
    """-j and -k, which run and watch share."""
    p.add_argument("-j", "--jobs", type=int, default=None, metavar="N",
                   help="at most N tasks at once (default: pack by declared resources)")
    p.add_argument("-k", "--keep-going", action="store_true",
                   help="after a failure, go on with everything that does not depend on it")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The command line's parser; ``only``: with just that subcommand's parser (the one
    typed), as building all six is a few per cent of a no-op's time."""
    p = _Parser(prog="gristmill", description="Run multi-step workflows incrementally and in "
                "parallel. With no subcommand, opens the desktop app (on PATH: a folder or a "
                "workflow file).",
                usage="gristmill [PATH]\n       gristmill [-h] [--version] "
                      "{run,watch,plan,graph,history,doctor} ...")
    p.add_argument("--version", action="version", version=f"gristmill {__version__}")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)
    adders = {"run": _add_run, "watch": _add_watch, "plan": _add_plan, "graph": _add_graph,
              "history": _add_history, "doctor": _add_doctor}
    for name, add in adders.items():
        if only is None or only == name:
            add(sub)
    return p


def _add_run(sub) -> None:
    r = sub.add_parser("run", help="run targets (default: the workflow's default)",
                       epilog=MAKE_LETTERS, formatter_class=argparse.RawDescriptionHelpFormatter)
    _common(r)
    r.add_argument("targets", nargs="*", metavar="TARGET",
                   help="tasks, fan-out names or output files; NAME=VALUE sets a variable")
    _packing(r)
    r.add_argument("--force", action="store_true", help="run the named targets even if up to date")
    r.add_argument("-B", "--force-all", action="store_true",
                   help="run every task the targets need, up to date or not")
    r.add_argument("-n", "--dry-run", action="store_true", help="say what would run; run nothing")
    r.add_argument("-v", "--verbose", action="store_true", help="print each command as it starts")
    r.add_argument("-q", "--question", action="store_true",
                   help="as make -q: run nothing, exit 1 if anything would run, else 0")
    r.add_argument("--quiet", action="store_true", help="print only failures and the summary")
    r.add_argument("-s", "--silent", action="store_true",
                   help="as make -s: commands are not echoed into the output")
    r.add_argument("-t", "--touch", action="store_true",
                   help="as make -t: touch the outputs that are out of date instead of "
                        "running their commands")
    r.add_argument("-W", "--what-if", "--new-file", "--assume-new", action="append",
                   default=[], metavar="FILE",
                   help="as make -W: run as if FILE had just changed")
    for short, long, takes, _ in _MAKE_ONLY:
        flags = [f for f in (short, long) if f]
        extra: dict = ({"action": "append_const", "const": True} if takes is None else
                       {"action": "append"} if takes == "yes" else
                       {"action": "append", "nargs": "?", "const": True})
        r.add_argument(*flags, dest=_make_dest(short, long), help=argparse.SUPPRESS, **extra)
    r.add_argument("--audit", action="store_true",
                   help="trace each task's file accesses (strace) and report what it reads "
                        "or writes undeclared, and declared inputs it never reads")
    r.add_argument("--wait", action="store_true",
                   help="when another run of this workflow is under way, wait for it to end "
                        "(without --wait: say who runs it, and exit 2)")
    r.add_argument("--keep-runs", type=_count, default=None, metavar="N",
                   help="after the run, keep the newest N runs' history and logs, 0 for all "
                        "(default: the app's preference, 200)")
    r.add_argument("--keep-days", type=_count, default=None, metavar="N",
                   help="after the run, forget runs older than N days, 0 for never "
                        "(default: the app's preference, 30)")
    r.add_argument("--dask", metavar="ADDRESS", default=None,
                   help="run the tasks on a Dask cluster: a scheduler address (tcp://host:8786), "
                        "or 'local' to start one sized to this machine (needs gristmill[dask])")
    r.add_argument("--cluster", metavar="KIND", default=None,
                   help="start a Dask cluster for this run, sized to its plan, and close it "
                        "when the run ends: local, slurm, pbs, sge, lsf (dask-jobqueue) or "
                        "kubernetes (dask-kubernetes); settings from [cluster] and "
                        "cluster.toml (needs gristmill[cluster])")


def _add_watch(sub) -> None:
    w = sub.add_parser("watch", help="run targets, then again whenever a change on disk makes "
                       "something stale (Ctrl-C stops)")
    _common(w)
    w.add_argument("targets", nargs="*", metavar="TARGET",
                   help="tasks, fan-out names or output files; NAME=VALUE sets a variable")
    _packing(w)
    w.add_argument("-v", "--verbose", action="store_true", help="print each command as it starts")
    w.add_argument("--quiet", action="store_true", help="print only failures and the summary")
    w.add_argument("--debounce", type=int, default=150, metavar="MS",
                   help="wait for this many milliseconds without a change before running "
                        "(default: 150)")


def _add_plan(sub) -> None:
    pl = sub.add_parser("plan", help="what would run, in order, and why")
    _common(pl)
    pl.add_argument("targets", nargs="*", metavar="TARGET")
    pl.add_argument("-a", "--all", action="store_true", help="list the tasks that are up to date too")
    pl.add_argument("--force", action="store_true")
    pl.add_argument("-B", "--force-all", action="store_true",
                    help="as if every task the targets need were out of date")
    pl.add_argument("--json", action="store_true", help="machine-readable output")
    pl.add_argument("--warnings", action="store_true",
                    help="print every warning of the workflow (a Makefile's are said once "
                         "otherwise)")
    pl.add_argument("--on", action="append", default=[], metavar="CAPACITY",
                    help="predict how long the stale tasks take on CAPACITY: cpu=8,mem=32GB,"
                         "gpu=1 (keys left out are this machine's), a sweep such as cpu=1..32, "
                         "or dask:ADDRESS for a live cluster's shape; may be repeated")


def _add_graph(sub) -> None:
    g = sub.add_parser("graph", help="export the task graph")
    _common(g)
    g.add_argument("targets", nargs="*", metavar="TARGET")
    g.add_argument("--format", choices=("dot", "json"), default="dot")


def _add_history(sub) -> None:
    h = sub.add_parser("history", help="recent runs")
    _common(h)
    h.add_argument("-n", "--limit", type=int, default=20)
    h.add_argument("--all", action="store_true", help="runs of every workflow")


def _add_doctor(sub) -> None:
    sub.add_parser("doctor", help="what this machine offers: cgroups, bubblewrap, "
                   "podman/docker, strace, GPUs, Dask, and how to install what is missing")


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number, 0 or more, got {text!r}")
    return value


def _prune(args, history) -> None:
    """Old runs' history, attempt logs and run logs go, by the app's retention (or the
    options'), as the app prunes at its start."""
    from dataclasses import replace
    from .core.record.retention import configured
    rule = configured()
    if args.keep_runs is not None:
        rule = replace(rule, keep_runs=args.keep_runs)
    if args.keep_days is not None:
        rule = replace(rule, keep_days=args.keep_days)
    try:
        # Not when the run's own rows are not written yet (a locked file): the next run
        # prunes instead, and this one does not wait for the lock.
        if history.problem is None and history.flush(timeout=2):
            rule.prune(history)
    except Exception as exc:        # pruning is housekeeping: never the run's outcome
        print(f"gristmill: could not prune old runs: {exc}", file=sys.stderr)


def _split(words: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    targets, variables = [], {}
    for w in words:
        if _ASSIGN.match(w):
            k, v = w.split("=", 1)
            variables[k] = v
        else:
            targets.append(w)
    return targets, variables


def _target(args) -> Path:
    """The folder or file -C and -f name (the current folder by default)."""
    base = Path(args.directory) if args.directory else Path.cwd()
    if args.directory and not base.is_dir():
        raise UsageError(f"{args.directory}: no such folder")
    target = base / args.file if args.file else base
    if args.file and not target.exists():
        raise UsageError(f"{target}: no such file")
    if args.file and target.is_dir():
        raise WorkflowError("-f names a folder, not a workflow file (-C DIR opens the "
                            "workflow in a folder)", path=str(target))
    return target


def _load(args, variables: dict[str, str] | None = None,
          prefetch: list[StampPrefetch] | None = None, goals: Sequence[str] = (),
          recipes: bool = True) -> Workflow:
    target = _target(args)
    # The goals go to a Makefile's reader: one that only a built-in rule can make
    # (`make hello` beside hello.c) is read as make would build it.
    wf = load_cached(target, variables or None, defer=True, prefetch=prefetch, goals=goals,
                     recipes=recipes)
    # The workflow lives until the process ends: keep the cyclic collector from walking
    # its objects again at every collection of the run that follows.
    gc.freeze()
    # What make prints while it reads a Makefile ($(info ...)), make's way: on stdout,
    # first (on stderr when stdout carries JSON).
    # (Not for a Makefile's run: make reads it again and prints them itself.)
    if not (wf.kind == "make" and getattr(args, "command", "") == "run"):
        for line in wf.messages:
            print(line, file=sys.stderr if getattr(args, "json", False) else sys.stdout)
    for w in _to_say(wf, getattr(args, "warnings", False)):
        print(f"gristmill: {w}", file=sys.stderr)
    return wf


def _to_say(wf: Workflow, every: bool) -> list:
    """The warnings to print: a Makefile's are said once each (until the words change),
    not on every run; ``plan --warnings`` (``every``) and the app say them all."""
    if wf.kind != "make" or every or not wf.warnings:
        return list(wf.warnings)
    from .core.paths import cache_dir
    from .core.workflow import blake2b

    def key(text: str) -> str:
        return blake2b(text.encode("utf-8", "surrogateescape"), digest_size=8).hexdigest()
    try:
        said_file = cache_dir() / f"said-{key(str(wf.path))}"
        said = set(said_file.read_text().split()) if said_file.exists() else set()
        keys = {key(str(w)): w for w in wf.warnings}
        new = [w for k, w in keys.items() if k not in said]
        if new:
            said_file.write_text("\n".join(sorted(said | set(keys))) + "\n")
        return new
    except (OSError, UnicodeError):
        return list(wf.warnings)


def _history():
    """The history, or None where its file cannot be used at all (damaged, locked by
    another process, read-only): the command goes on without it, and says so once, in
    one line with how to mend it. A fault later on (a full disk) is said the same way."""
    from .core.record.history import History, HistoryError

    def tell(line: str) -> None:
        print(f"gristmill: {line}", file=sys.stderr, flush=True)
    try:
        return History(on_problem=tell)
    except HistoryError as exc:
        tell(str(exc))
        return None


def _settle_in(root: Path, workflow_path: Path, locked: bool = False):
    """Like make -C: run from the workflow's folder. Every path Gristmill holds is absolute
    (a relative GRISTMILL_HOME is made so first), and tasks that run in this folder can
    then be started with posix_spawn. Returns the history, its interrupted runs marked;
    ``locked`` (this process holds the workflow's run lock): the task trees a killed
    Gristmill left are stopped first."""
    home = os.environ.get("GRISTMILL_HOME")
    if home:
        os.environ["GRISTMILL_HOME"] = os.path.abspath(os.path.expanduser(home))
    os.chdir(root)
    history = _history()
    if history is not None:
        if locked:
            _stop_leftovers(history, workflow_path)
        history.mark_interrupted(str(workflow_path))
    return history


def _stamps(prefetch: list[StampPrefetch]):
    """The prefetched mtimes, for the engine's first scan (None: it stats them itself)."""
    return (lambda: prefetch[0].result()) if prefetch else None


def cmd_run(args) -> int:
    targets, variables = _split(args.targets)
    prefetch: list[StampPrefetch] = []
    # The default target's files are stat'ed by a child while the workflow is read back.
    # A Makefile's run reads its graph alone: make expands each recipe when it runs it
    # (a $(shell ...) in a recipe runs once, at its time); the recipes as make would
    # expand them at reading time are read only for the opt-in "command changed".
    wf = _load(args, variables, prefetch if not targets else None, targets,
               recipes=bool(os.environ.get("GRISTMILL_MAKE_COMMAND_CHANGES")))
    if wf.kind != "make":
        _refuse_make_options(args)
    elif args.dry_run or args.question or args.touch or getattr(args, "make_print_data_base"):
        return _make_alone(args, wf, targets, variables)
    from .core.run.engine import RunOptions
    lock = None
    if not args.dry_run and not args.question:
        # One run of a workflow at a time (the lock is taken from the workflow's folder).
        home = os.environ.get("GRISTMILL_HOME")
        if home:
            os.environ["GRISTMILL_HOME"] = os.path.abspath(os.path.expanduser(home))
        lock, waited = _take_run_lock(wf.path, args.wait)
        if waited:      # the files were stat'ed before the other run changed them
            for p in prefetch:
                p.cancel()
            prefetch = []
    history = _settle_in(wf.root, wf.path, lock is not None)
    if wf.kind == "make":
        return _run_make(args, wf, targets, variables, history, lock)
    forced = tuple(wf.resolve_targets(targets)) if args.force else ()
    if args.what_if:
        forced += _what_if(wf, args.what_if)
    jobs, make_order = args.jobs, False
    if wf.kind == "make" and jobs is None:
        # make's default is one job at a time, in its own order; -j (or MAKEFLAGS) asks
        # for parallelism, and then packing and critical-path order apply.
        parallel, jobs = _makeflags_jobs(os.environ.get("MAKEFLAGS", ""))
        make_order = not parallel
    options = RunOptions(jobs=jobs, keep_going=args.keep_going, force=forced,
                         force_all=args.force_all, dry_run=args.dry_run, make_order=make_order,
                         silent=args.silent, audit=args.audit)
    dask = None
    if args.dask and getattr(args, "cluster", None):
        raise UsageError("--dask and --cluster: give one (a running scheduler, or a cluster "
                         "started for the run)")
    if args.dask:
        from .core.run.dask_cluster import connect   # the optional extra, only when asked for
        dask = connect(args.dask)
    try:
        return _run(args, wf, targets, history, options, dask, _stamps(prefetch))
    finally:
        for p in prefetch:
            p.cancel()
        if dask is not None:
            dask.close()
        if lock is not None:
            lock.release()


def _make_alone(args, wf: Workflow, targets: list[str], variables: dict[str, str]) -> int:
    """make -n, -q, -t, -p: make runs alone, with the user's arguments; its output and
    its exit status are the answer (nothing of Gristmill's runs)."""
    import subprocess
    from .core.run.makerun import make_argv, own_makefile, _make_program
    argv = make_argv(_make_program(), _make_args(args), variables, targets, own_makefile(wf))
    sys.stdout.flush()
    try:
        return subprocess.run(argv, cwd=wf.root).returncode
    except KeyboardInterrupt:
        return 130


def _run_make(args, wf: Workflow, targets: list[str], variables: dict[str, str], history,
              lock) -> int:
    """A Makefile's run: GNU make decides and runs the recipes, through Gristmill's
    recipe shell (core/run/makerun.py); the exit status is make's."""
    from .console import MakeReporter
    from .core.events import EventBus
    from .core.run.engine import RunOptions
    from .core.run.makerun import MakeEngine
    # make is the judge of its goals (a suffix rule or .DEFAULT may make one the data
    # base does not name); for one Gristmill cannot find, its suggestion comes first.
    # A goal written as an absolute path goes to make as the target it names.
    goals = []
    for t in targets:
        try:
            name = wf.resolve_targets([t])[0]
        except GristmillError as exc:
            _say(f"gristmill: {exc}; make decides")
            name = t
        goals.append(name if os.path.isabs(t) else t)
    targets = goals
    make_args = _make_args(args)
    # No -j: make's own serial run (a Makefile that is not parallel-safe, `clean all`,
    # stays right). -jN: N at once. A bare -j in MAKEFLAGS: as many as Gristmill packs.
    # Inside make -jN (its jobserver in MAKEFLAGS), make joins that jobserver itself.
    jobs, parallel = args.jobs, args.jobs is not None
    makeflags = os.environ.get("MAKEFLAGS", "")
    if jobs is None and "--jobserver-auth" not in makeflags:
        parallel, jobs = _makeflags_jobs(makeflags)
        jobs = jobs if parallel else None
    options = RunOptions(jobs=jobs, keep_going=args.keep_going, silent=args.silent,
                         audit=args.audit)
    bus = EventBus()
    engine = MakeEngine(wf, bus=bus, history=history, options=options, make_args=make_args,
                        variables=variables, force=targets if args.force else (),
                        parallel=parallel and "--jobserver-auth" not in makeflags)
    bus.subscribe(MakeReporter(verbose=args.verbose, quiet=args.quiet))
    interrupted: list[int] = []

    def on_signal(signum, frame):
        interrupted.append(signum)
        if len(interrupted) == 1:
            engine.cancel()
        else:
            engine.abort()
    handlers = {sig: signal.signal(sig, on_signal)
                for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        result = _run_on_thread(engine, targets)
    finally:
        for sig, old in handlers.items():
            signal.signal(sig, old)
        if history is not None:
            _prune(args, history)
            history.close()
        if lock is not None:
            lock.release()
    if interrupted:
        return 128 + interrupted[0]       # 130 Ctrl-C, 129 a closed terminal, 143 SIGTERM
    return result.exit_code


def _say(line: str) -> None:
    """A line on stderr; a closed terminal (EIO) or pipe swallows it, never a traceback."""
    try:
        print(line, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


def _take_run_lock(workflow_path: Path, wait: bool):
    """(the workflow's run lock, whether it waited for it), or ``RunLocked`` (exit 2)
    saying who holds it."""
    import shlex
    from .core.record.runlock import RunLock
    lock = RunLock(workflow_path, "gristmill " + shlex.join(sys.argv[1:]))

    waited = []

    def waiting(holder) -> None:
        waited.append(holder)
        _say(f"gristmill: another run of {workflow_path} is under way ({holder.words()}); "
             "waiting for it to end...")
    lock.acquire(wait=wait, on_wait=waiting)      # Ctrl-C while it waits: exit 130
    return lock, bool(waited)


def _stop_leftovers(history, workflow_path: Path) -> None:
    """Task trees a killed Gristmill left running: stopped before anything is decided."""
    from .core.run.leftovers import leftover_words, stop_leftovers
    found = history.leftovers(str(workflow_path))
    if not found:
        return
    stuck = stop_leftovers(found)
    for group in found:
        if group in stuck:
            _say(f"gristmill: {leftover_words(group)} is still running and could not be "
                 "stopped; its outputs are not trusted")
        else:
            _say(f"gristmill: stopped {leftover_words(group)}, left running when Gristmill "
                 "was killed")


def _refuse_make_options(args) -> None:
    """A make option given for a gristmill.toml or .json workflow is an error that says
    what to do instead."""
    for short, long, _, instead in _MAKE_ONLY:
        if getattr(args, _make_dest(short, long), None):
            name = f"{short} ({long})" if short and long else short or long
            raise UsageError(f"make's {name} is not supported by gristmill run for a "
                             f"gristmill.toml or .json workflow: {instead}")


def _make_args(args) -> list[str]:
    """The make options of ``gristmill run``, for make (core/run/makerun.py), in the
    order they were typed (`--no-silent -s` is silent, `-s --no-silent` is not)."""
    groups: list[tuple[tuple[str, ...], list[str]]] = []    # (how it may be typed, words)
    # --quiet is make's -s too (make's -s, --silent, --quiet)
    for flags, on in ((("-k", "--keep-going"), args.keep_going),
                      (("-s", "--silent", "--quiet"), args.silent or args.quiet),
                      (("-B", "--force-all"), args.force_all), (("-n", "--dry-run"), args.dry_run),
                      (("-q", "--question"), args.question), (("-t", "--touch"), args.touch)):
        if on:
            groups.append((flags, [flags[0]]))
    for f in args.what_if:
        groups.append((("-W", "--what-if", "--new-file", "--assume-new"), ["-W", f]))
    if args.jobs is not None and args.jobs != 1:     # -j1 is make's default: unsaid
        groups.append((("-j", "--jobs"), [f"-j{args.jobs}"]))
    for short, long, takes, _ in _MAKE_ONLY:
        for value in getattr(args, _make_dest(short, long), None) or ():
            flags = tuple(f for f in (short, long) if f)
            if value is True:
                groups.append((flags, [short or long]))
            elif long:
                groups.append((flags, [f"{long}={value}"]))
            else:
                groups.append((flags, [short, value]))
    typed = list(_TYPED)
    used: set[int] = set()

    def position(flags: tuple[str, ...]) -> int:
        for i, word in enumerate(typed):
            if i not in used and any(word == f or word.startswith(f + "=") or
                                     (len(f) == 2 and word.startswith(f) and
                                      not word.startswith("--")) for f in flags):
                used.add(i)
                return i
        return len(typed)
    placed = sorted(((position(flags), n, words) for n, (flags, words) in enumerate(groups)))
    return [w for _, _, words in placed for w in words]


def _what_if(wf: Workflow, files: list[str]) -> tuple[str, ...]:
    """make -W FILE: the tasks that read FILE run as if it were new (FILE is relative
    to the workflow's folder, as make -C DIR -W FILE reads it)."""
    root = str(wf.root)
    found: list[str] = []
    for f in files:
        p = os.path.normpath(os.path.join(root, f))
        rel = os.path.relpath(p, root) if p.startswith(root + os.sep) else p
        readers = [n for n, t in wf.tasks.items() if rel in t.inputs]
        if not readers:
            raise UsageError(f"-W {f}: no task reads {rel}")
        found += readers
    return tuple(found)


def _make_dry_run(engine: Engine, wf: Workflow, targets: list[str], letter: str) -> int:
    """make -n (``letter`` "n": print the commands that would run) and make -t ("t":
    touch the outputs that are out of date), in the order make takes, goal by goal.
    As make does, a recipe that runs a sub-make is run, with the letter in its
    MAKEFLAGS, so that the sub-make prints (or touches) its own."""
    import subprocess
    from .core.decide.scheduler import make_order
    from .core.run.jobserver import with_make_letter
    turns = [[t] for t in targets] if wf.kind == "make" and len(targets) > 1 else [targets]
    status = 0
    for goals in turns:
        names, decisions, _ = engine.decide(goals)
        stale = [n for n, d in decisions.items() if d.stale]
        if wf.kind == "make":
            order = make_order(engine.graph, tuple(names), stale)
            stale.sort(key=lambda n: -order.get(n, 0.0))
        for name in stale:
            task = wf.tasks[name]
            env = dict(task.env)
            if "MAKEFLAGS" in env:           # a sub-make: make runs it, with -n or -t
                env["MAKEFLAGS"] = with_make_letter(env["MAKEFLAGS"], letter)
                full = {**os.environ, **env}
                for cmd in task.commands:
                    print(cmd, flush=True)
                    if subprocess.run([*task.shell, cmd], cwd=task.cwd, env=full).returncode:
                        return 2
            elif letter == "n":
                for cmd in task.commands:
                    print(cmd)
            elif not task.phony and task.commands:
                for out in task.outputs:
                    print(f"touch {out}")
                    try:
                        p = Path(wf.root, out)
                        p.parent.mkdir(parents=True, exist_ok=True)
                        p.touch()
                    except OSError as exc:
                        print(f"gristmill: cannot touch {out}: {exc.strerror}", file=sys.stderr)
                        status = 2
    return status


_MAKEFLAGS_JOBS = re.compile(r"(?:^|\s)(?:-j|--jobs(?:=|\s|$))\s*(\d*)")


def _makeflags_jobs(makeflags: str) -> tuple[bool, int | None]:
    """(parallel?, jobs) from a MAKEFLAGS value: ``-j4`` is (True, 4), a bare ``-j`` is
    (True, None: no limit but the machine), none is make's serial default (False, 1)."""
    words = makeflags.split()
    if words and not words[0].startswith("-") and "=" not in words[0]:
        makeflags = "-" + makeflags          # make's own form: single letters run together
    m = _MAKEFLAGS_JOBS.search(makeflags)
    if m is None:
        return False, 1
    return True, (int(m.group(1)) if m.group(1) else None)


def _cluster_engine(args, wf: Workflow, targets: list[str], history, options, bus, stamps):
    """`run --cluster KIND`: the run's plan sizes a cluster; the engine's executor starts
    it as the run starts and closes it as the run ends (``clusters.session_engine``, as
    the app's). A task no worker can hold is an error here, before anything runs."""
    from .core.load.userconfig import cluster_settings
    from .core.run.clusters import import_backend, session_engine
    import_backend(args.cluster)    # here, on the main thread: a missing package is exit 2
    return session_engine(wf, args.cluster, targets, cluster_settings(wf), bus=bus,
                          history=history, options=options, stamps=stamps)


def _run(args, wf: Workflow, targets: list[str], history, options: RunOptions,
         dask=None, stamps=None) -> int:
    from .console import ConsoleReporter
    from .core.run.engine import Engine
    from .core.events import EventBus
    bus = EventBus()
    if getattr(args, "cluster", None) and not (args.dry_run or args.touch or args.question):
        engine = _cluster_engine(args, wf, targets, history, options, bus, stamps)
    elif dask is None:
        engine = Engine(wf, bus=bus, history=history, options=options, stamps=stamps)
    else:
        from dataclasses import replace
        from .core.run.dask import DaskExecutor
        from .core.run.dask_cluster import cluster_capacity
        capacity = cluster_capacity(dask.client, wf.pools, args.jobs)
        engine = Engine(wf, bus=bus, history=history, options=replace(options, capacity=capacity),
                        executor_factory=lambda: DaskExecutor(dask.client))
    if args.dry_run and wf.kind == "make":
        return _make_dry_run(engine, wf, targets, "n")
    if args.touch:
        return _make_dry_run(engine, wf, targets, "t")
    if args.dry_run:
        return _print_plan(engine, targets, show_all=False)
    if args.question:        # make -q: nothing runs, nothing is printed, the status says
        _, decisions, _ = engine.decide(targets)       # a stale `all:` with no recipe runs
        tasks = wf.tasks                                 # nothing, and is no answer of its own
        return 1 if any(d.stale and tasks[n].commands for n, d in decisions.items()) else 0
    reporter = ConsoleReporter(durations=lambda: history.durations(str(wf.path))
                               if history is not None else {},
                               verbose=args.verbose, quiet=args.quiet)
    bus.subscribe(reporter)
    interrupted: list[int] = []
    terminals = [fd for fd in (1, 2) if _isatty(fd)]

    def on_signal(signum, frame):
        interrupted.append(signum)
        if signum == signal.SIGHUP:
            # The terminal is gone: what would be printed there goes nowhere, and no
            # write fails (EIO) while the run is cancelled and recorded.
            _detach(terminals)
        if signum != signal.SIGINT:
            # A closed terminal (SIGHUP) or a stop request (SIGTERM), as Ctrl-C: every
            # task tree stopped, partial outputs removed, the run recorded cancelled.
            # Again: every task killed at once. Never a quit that leaves tasks running.
            if len(interrupted) == 1:
                _say(f"\ngristmill: {signal.Signals(signum).name}: cancelling the run...")
                engine.cancel()
            else:
                engine.abort()
            return
        if len(interrupted) == 1:
            _say("\ngristmill: cancelling the run (Ctrl-C again to kill every task at once)...")
            engine.cancel()
        elif len(interrupted) == 2:
            _say("gristmill: killing every running task now (Ctrl-C again to quit without "
                 "waiting)...")
            engine.abort()
        else:
            raise SystemExit(130)    # the engine thread is a daemon; its tasks are killed

    old = signal.signal(signal.SIGINT, on_signal)
    old_term = signal.signal(signal.SIGTERM, on_signal)
    old_hup = signal.signal(signal.SIGHUP, on_signal) if hasattr(signal, "SIGHUP") else None
    # make builds its goals one after another, each decided when its turn comes:
    # `clean all` cleans, then builds what clean removed.
    turns = [[t] for t in targets] if wf.kind == "make" and len(targets) > 1 else [targets]
    if len(turns) > 1:
        wf.resolve_targets(targets)          # an unknown goal is an error before any runs
    failed_turns: list[list[str]] = []
    try:
        for goals in turns:
            result = _run_on_thread(engine, goals)
            if result.exit_code:
                failed_turns.append(goals)
            if interrupted or (result.exit_code and not args.keep_going):
                break
    finally:
        signal.signal(signal.SIGINT, old)
        signal.signal(signal.SIGTERM, old_term)
        if old_hup is not None:
            signal.signal(signal.SIGHUP, old_hup)
        if history is not None:
            _prune(args, history)
            history.close()
    if interrupted:
        return 128 + interrupted[0]       # 130 Ctrl-C, 129 a closed terminal, 143 SIGTERM
    if failed_turns or result.exit_code:
        # make's status for a failed build is 2 (scripts and CI test it): a Makefile's run
        # says the same; a gristmill.toml run keeps 1, apart from the 2 of a usage error.
        return 2 if wf.kind == "make" else 1
    return 0


def _isatty(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False


def _detach(fds: list[int]) -> None:
    """Point the terminal's descriptors at /dev/null (the terminal hung up)."""
    if not fds:
        return
    try:
        null = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        return
    for fd in fds:
        try:
            os.dup2(null, fd)
        except OSError:
            pass
    os.close(null)


def _run_on_thread(engine, targets: list[str]):
    """``engine.run(targets)`` on a thread of its own; this one waits, and takes signals.

    A new thread starts with no history of CPU use; the main thread has just read and
    planned the workflow. Linux places a vfork child by how busy its parent has been:
    behind a busy parent, each command goes to the other CPU and waits there behind the
    one running, while the parent, stopped in posix_spawn until the child execs, leaves
    its own CPU idle. From a fresh thread posix_spawn took 0.3 ms instead of 0.95 ms
    (2,000 trivial tasks at -j 2 on 2 CPUs; the CLI ~7% faster, the engine alone in-process
    870–900 tasks/s against 780–800). Benchmarks: tests/benchmarks/PROPOSALS.md, item 17.
    """
    import threading
    box: dict = {}

    def work() -> None:
        try:
            box["result"] = engine.run(targets)
        except BaseException as exc:    # raised again below, in the main thread
            box["error"] = exc

    t = threading.Thread(target=work, name="gristmill-run", daemon=True)
    t.start()
    while t.is_alive():
        # A timed join: Python runs signal handlers in the main thread only, and a signal
        # the kernel hands to the engine thread would otherwise wait for the run to end.
        t.join(0.1)
    if "error" in box:
        raise box["error"]
    return box["result"]


def _gpu_request(r) -> dict:
    """A task's GPU request for plan --json: nothing when it asks for none."""
    if not r.wants_gpu:
        return {}
    return {"gpu": r.gpu, "gpu_mem": r.gpu_mem}


def _print_plan(engine: Engine, targets: list[str], show_all: bool, as_json: bool = False,
                left: Sequence = ()) -> int:
    names, decisions, _ = engine.decide(targets)
    if as_json:
        tasks = engine.workflow.tasks
        plan: dict = {"targets": list(names), "tasks": [
            {"name": n, "stale": d.stale, "reasons": [
                {"kind": r.kind.value, "message": r.message} for r in d.reasons],
             **_gpu_request(tasks[n].resources)}
            for n, d in decisions.items() if d.stale or show_all]}
        # The devices tasks would be handed (each "visible_as" its word in the task's
        # CUDA_VISIBLE_DEVICES), when the machine has any.
        if engine.capacity().devices:
            plan["gpus"] = [g.as_json() for g in engine.capacity().devices]
        if left:      # task trees a killed Gristmill left running
            plan["still_running"] = [{"task": g.task, "run": g.run_id, "attempt": g.attempt,
                                      "process_group": g.pgid} for g in left]
        print(json.dumps(plan, indent=2))
        return 0
    # Written at once: 200,000 print calls cost a quarter second. One string per task
    # (its line and its reasons' lines), the step number counted as they go.
    # In runs of 20,000 tasks: all of a million tasks' lines at once, then joined, were
    # a third of the plan's peak memory (issue 18).
    lines: list[str] = []
    append = lines.append
    write = sys.stdout.write
    step = 0
    for n, d in decisions.items():
        if len(lines) >= 20000:
            lines.append("")
            write("\n".join(lines))
            lines.clear()
        if d.stale:
            step += 1
            num = step if step > 999 else f"{step:>4}"     # the padding costs, and is a no-op
            reasons = d.reasons
            if len(reasons) == 1:
                append(f"{num}. {n}\n        because {reasons[0].message}")
            elif len(reasons) == 2:
                append(f"{num}. {n}\n        because {reasons[0].message}"
                       f"\n        because {reasons[1].message}")
            else:
                append(f"{num}. {n}" + "".join([f"\n        because {r.message}"
                                                for r in reasons]))
        elif show_all:
            append(f"   ·  {n} is up to date: {d.reasons[0].message if d.reasons else ''}")
    up = len(decisions) - step
    if step:
        append(f"{step} to run, {up} up to date.")
    else:
        append(f"Nothing to run: {up} task{'s' if up != 1 else ''} up to date.")
    append("")                 # the last line's end
    write("\n".join(lines))
    return 0


def cmd_plan(args) -> int:
    # A plan keeps everything it makes (the workflow, a decision per task, the lines)
    # until it is printed: the cyclic collector would only walk those objects again at
    # each collection (on 100,000 tasks, a tenth of a second after the load and as much
    # after the scan). It stays off for the command.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _plan(args)
    finally:
        if enabled:
            gc.enable()


def _plan(args) -> int:
    targets, variables = _split(args.targets)
    prefetch: list[StampPrefetch] = []
    wf = _load(args, variables, prefetch if not targets else None, targets)
    from .core.run.engine import Engine, RunOptions
    from .core.paths import history_db
    try:
        # A plan only reads history (what each task's definition was at its last
        # success): with no history yet there is nothing to read, and no need to make
        # the database, start its writer and stop it again.
        history = _history() if history_db().exists() else None
        forced = tuple(wf.resolve_targets(targets)) if args.force else ()
        engine = Engine(wf, history=history, options=RunOptions(
            force=forced, force_all=args.force_all), stamps=_stamps(prefetch))
        try:
            left = history.leftovers(str(wf.path)) if history is not None else []
            if left:
                from .core.run.leftovers import leftover_words
                for group in left:
                    _say(f"gristmill: {leftover_words(group)} is still running, left when "
                         "Gristmill was killed: its outputs are not trusted (`gristmill run` "
                         "stops it)")
            if args.on:
                return _print_predictions(engine, wf, targets, history, args.on, args.json)
            return _print_plan(engine, targets, args.all, args.json, left)
        finally:
            if history is not None:
                history.close()
    finally:
        for p in prefetch:
            p.cancel()


def _capacities(specs: list[str], here, pools) -> list[tuple[str, object]]:
    from .core.decide.simulate import parse_on
    out = []
    for spec in specs:
        if spec.startswith("dask:"):
            from .core.run.dask_cluster import cluster_capacity, connect
            dask = connect(spec[len("dask:"):])
            try:
                out.append((spec, cluster_capacity(dask.client, pools, None)))
            finally:
                dask.close()
        else:
            out += parse_on(spec, here)
    return out


def _print_predictions(engine: Engine, wf: Workflow, targets: list[str], history,
                       specs: list[str], as_json: bool) -> int:
    """`plan --on`: the engine's scheduler over simulated time, per capacity."""
    from .core.decide.simulate import estimate_durations, explain, simulate, with_learned_mem
    names, decisions, _ = engine.decide(targets)
    if history is not None and any(t.retry_mem for t in wf.tasks.values()):
        # a retry_mem task is packed at the size its last success needed
        wf = with_learned_mem(wf, history.attempt_mems(str(wf.path)), engine.capacity().mem)
    stale = [n for n, d in decisions.items() if d.stale]
    known = history.recent_durations(str(wf.path)) if history is not None else {}
    durations = estimate_durations(wf, stale, known)
    here = engine.capacity()
    capacities = [("this machine", here)] + _capacities(specs, here, wf.pools)
    predictions = explain([simulate(wf, engine.graph, stale, durations.seconds, cap, label)
                           for label, cap in capacities], wf, engine.graph, stale,
                          durations.seconds)
    if as_json:
        print(json.dumps({"tasks": len(stale), "durations": {
            "history": len(durations.from_history), "siblings": len(durations.from_siblings),
            "guessed": sorted(durations.guessed)},
            "predictions": [p.as_json() for p in predictions]}, indent=2))
        return 0
    print(f"{len(stale)} task{'s' if len(stale) != 1 else ''} to run; durations: "
          f"{durations.describe()}.")
    if not stale:
        return 0
    width = max(len(p.label) for p in predictions)
    print(f"  {'on':<{width}}  {'makespan':>10}  {'cpu':>5}  {'mem':>5}  {'gpu':>5}")
    for p in predictions:
        u = p.utilisation
        cells = [f"{u[k]:>5.0%}" if u[k] else f"{'–':>5}" for k in ("cpu", "mem", "gpu")]
        print(f"  {p.label:<{width}}  {format_duration(p.makespan):>10}  {'  '.join(cells)}")
    first = predictions[0]
    print(f"critical path: {' → '.join(first.critical_path)} "
          f"({format_duration(first.critical_length)})")
    for p in predictions:
        print(f"{p.label}: {p.bottleneck}")
    if durations.guessed:
        print("(a task never run is guessed at 1 s: run it once, and the next prediction "
              "uses what it took)")
    return 0
def cmd_watch(args) -> int:
    """``gristmill watch``: a run now, then one whenever a change makes something stale.

    Ctrl-C cancels what runs (as for ``run``: a second one kills at once) and ends."""
    targets, variables = _split(args.targets)
    from .core.load.locate import workflow_file
    from .core.run.engine import RunOptions
    from .core.watch.loop import Watch
    from .console import ConsoleReporter
    from .core.events import EventBus
    if args.debounce < 0:
        raise UsageError("--debounce: a number of milliseconds, 0 or more")
    file = workflow_file(_target(args).absolute())     # none at all: nothing to watch
    # A watch is runs of the workflow, one after another: it holds the run lock while it
    # watches (another run of the workflow meanwhile says so, and exits 2).
    lock, _ = _take_run_lock(file, False)
    history = _settle_in(file.parent, file, True)
    jobs, make_order = args.jobs, False
    if file.name not in ("gristmill.toml", "gristmill.json") and jobs is None:
        parallel, jobs = _makeflags_jobs(os.environ.get("MAKEFLAGS", ""))
        make_order = not parallel
    options = RunOptions(jobs=jobs, keep_going=args.keep_going, make_order=make_order)
    bus = EventBus()
    reporter = ConsoleReporter(durations=lambda: history.durations(str(file))
                               if history is not None else {},
                               verbose=args.verbose, quiet=args.quiet)
    bus.subscribe(reporter)

    def say(line: str) -> None:
        print(f"gristmill watch: {line}", flush=True)

    def tell(exc: GristmillError) -> None:      # path:line:col: what is wrong, once
        print(f"gristmill: {exc}" if isinstance(exc, UsageError) else str(exc),
              file=sys.stderr, flush=True)

    watch = Watch(file, targets, variables, options, bus, history,
                  debounce=args.debounce / 1000, say=say, tell=tell)
    interrupted = []

    def on_sigint(signum, frame):
        interrupted.append(True)
        if len(interrupted) == 1:
            print("\ngristmill: stopping the watch, cancelling what runs (Ctrl-C again to "
                  "kill every task at once)...", file=sys.stderr)
            watch.stop()
        elif len(interrupted) == 2:
            watch.stop(abort=True)
        else:
            raise SystemExit(130)

    old = signal.signal(signal.SIGINT, on_sigint)
    old_term = signal.signal(signal.SIGTERM, on_sigint)
    import threading
    box: dict = {}

    def work() -> None:
        try:
            box["code"] = watch.run()
        except BaseException as exc:         # raised again below, in the main thread
            box["error"] = exc

    thread = threading.Thread(target=work, name="gristmill-watch-loop", daemon=True)
    try:
        thread.start()
        while thread.is_alive():
            # timed: signal handlers run in the main thread only (Linux hands a Ctrl-C to
            # it, which ends the wait at once); 1 s keeps an idle watch from waking often
            thread.join(1.0)
    finally:
        signal.signal(signal.SIGINT, old)
        signal.signal(signal.SIGTERM, old_term)
        if history is not None:
            history.close()
        lock.release()
    if "error" in box:
        raise box["error"]
    return 130 if interrupted else box["code"]


def _dot_quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def cmd_graph(args) -> int:
    targets, variables = _split(args.targets)
    wf = _load(args, variables, goals=targets)
    from .core.decide.graph import TaskGraph
    graph = TaskGraph.of(wf)
    names = graph.closure(wf.resolve_targets(targets)) if targets else set(wf.tasks)
    order = [n for n in graph.order if n in names]
    if args.format == "json":
        print(json.dumps({
            "workflow": wf.name, "path": str(wf.path),
            "tasks": [{"name": n, "group": t.group or n, "item": t.item,
                       "commands": list(t.commands), "inputs": list(t.inputs),
                       "outputs": list(t.outputs), "after": list(t.after), "phony": t.phony,
                       "resources": {"cpu": t.resources.cpu, "mem": t.resources.mem,
                                     "gpu": t.resources.gpu, "gpu_mem": t.resources.gpu_mem,
                                     "pools": dict(t.resources.pools)},
                       "deps": list(graph.deps(n))}
                      for n in order for t in (wf.tasks[n],)],
            "edges": [[a, b] for a, b in graph.edges() if a in names and b in names],
        }, indent=2))
        return 0
    out = [f"digraph {_dot_quote(wf.name)} {{", "  rankdir=LR;",
           '  node [shape=box, style="rounded,filled", fillcolor="#eef2f7", fontname="sans"];']
    for n in order:
        t = wf.tasks[n]
        extra = ', fillcolor="#fff4d6"' if t.phony else ""
        out.append(f"  {_dot_quote(n)} [label={_dot_quote(n)}{extra}];")
    for a, b in graph.edges():
        if a in names and b in names:
            style = "" if b not in wf.tasks or a not in wf.tasks[b].after else " [style=dashed]"
            out.append(f"  {_dot_quote(a)} -> {_dot_quote(b)}{style};")
    out.append("}")
    print("\n".join(out))
    return 0


def cmd_history(args) -> int:
    history = _history()
    if history is None:
        return 2
    try:
        wf_path = None
        if not args.all:
            try:
                wf_path = str(_load(args).path)
            except GristmillError:
                wf_path = None
            history.mark_interrupted(wf_path)
        runs = history.runs(wf_path, limit=args.limit)
        if not runs:
            print("No runs recorded yet." if wf_path is None else f"No runs of {wf_path} yet.")
            return 0
        # Every workflow's runs: a column says whose each one is (its folder).
        where = {r.id: _workflow_column(r.workflow_path) for r in runs} if args.all else {}
        rows = []
        for r in runs:
            started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.started))
            dur = format_duration(r.duration) if r.duration is not None else ""
            counts = r.counts_text
            targets = " ".join(r.targets[:4]) if r.targets else "(default)"
            if len(r.targets) > 4:
                targets += f" (+{len(r.targets) - 4} more)"
            if r.started_by:            # watch: at its start, or for the files that changed
                from .core.watch.loop import describe
                targets += (f"  [{r.started_by}: {describe(list(r.changed))} changed]"
                            if r.changed else f"  [{r.started_by}]")
            rows.append((r.id, where.get(r.id, ""), started, dur, r.status.value, counts, targets))
        head = ("run", "workflow", "started", "duration", "status", "tasks", "targets")
        # Each column as wide as its widest cell, so every row lines up under its heading.
        widths = [max(len(row[i]) for row in rows + [head]) for i in range(len(head))]
        right = {3}                      # durations line up on their last digit
        for row in [head] + rows:
            cells = [(c.rjust(widths[i]) if i in right else c.ljust(widths[i]))
                     for i, c in enumerate(row) if args.all or i != 1]
            print("  ".join(cells[:-1]) + "  " + row[-1])
        return 0
    finally:
        history.close()


WORKFLOW_COLUMN = 40


def _workflow_column(path: str) -> str:
    """The folder of a run's workflow, "~" for the home folder, its file named when it is
    not the folder's usual one; a long one keeps its end (the part that tells runs apart)."""
    p = Path(path)
    shown = str(p.parent) if p.name in ("gristmill.toml", "gristmill.json") else str(p)
    home = str(Path.home())
    if shown == home or shown.startswith(home + os.sep):
        shown = "~" + shown[len(home):]
    if len(shown) > WORKFLOW_COLUMN:
        shown = "…" + shown[-(WORKFLOW_COLUMN - 1):]
    return shown


# What the app needs on Linux beside Python's packages (the README lists the same).
LINUX_APP_LIBRARIES = ("libxcb-cursor0", "libxkbcommon-x11-0", "libxcb-icccm4", "libxcb-keysyms1",
                       "libxcb-shape0", "libegl1", "libfontconfig1", "libdbus-1-3")


def display_problem(environ=os.environ, platform: str = sys.platform,
                    find_library=None) -> str | None:
    """Why the desktop app cannot start here, in one line, or None. On Linux Qt aborts
    (exit 134) with no display, or with xcb but without libxcb-cursor; this says so first."""
    if not platform.startswith("linux"):
        return None
    qpa = environ.get("QT_QPA_PLATFORM", "")
    if qpa and not qpa.startswith("xcb"):
        return None                      # offscreen, wayland, vnc…: Qt is told what to use
    if not environ.get("DISPLAY") and not (environ.get("WAYLAND_DISPLAY") and not qpa):
        return ("gristmill: no display to open the app on (DISPLAY is not set); "
                "use `gristmill run` here, or start it where there is a display")
    if find_library is None:
        import ctypes.util
        find_library = ctypes.util.find_library
    if not environ.get("WAYLAND_DISPLAY") and find_library("xcb-cursor") is None:
        return ("gristmill: the app cannot open a window: libxcb-cursor is missing; install "
                + " ".join(LINUX_APP_LIBRARIES) + " (or use `gristmill run`)")
    return None


def open_app(path: str | None) -> int:
    problem = display_problem()
    if problem is not None:
        print(problem, file=sys.stderr)
        return 2
    from .app.main import run_app
    return run_app(path)


def _names_out() -> None:
    """A file name that is not UTF-8 comes in with lone surrogates (``os.fsdecode``); it is
    printed as the bytes it was (as ``ls`` does to a pipe), not as a UnicodeEncodeError."""
    for stream in (sys.stdout, sys.stderr):
        if getattr(stream, "errors", None) == "strict" and hasattr(stream, "reconfigure"):
            try:
                stream.reconfigure(errors="surrogateescape")
            except (ValueError, OSError):
                pass
def cmd_doctor(args) -> int:
    from .core.run.doctor import report
    print(report())
    return 0


def _flush_stdout() -> int:
    """What is left of stdout, written now: a full disk or a closed file is one line and
    exit status 2 (as make's "write error: stdout"), not a traceback at exit."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        return 0
    except OSError as exc:
        _say(f"gristmill: write error: stdout: {exc.strerror or exc}")
        _quiet_stdout()
        return 2
    return 0


def _quiet_stdout() -> None:
    try:
        sys.stdout = open(os.devnull, "w")      # nothing more to lose at exit
    except OSError:
        pass


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    _names_out()
    if not argv or (argv[0] not in SUBCOMMANDS and not argv[0].startswith("-")):
        if len(argv) > 1:
            print("gristmill: usage: gristmill [PATH] | gristmill run|plan|graph|history|watch|doctor ...",
                  file=sys.stderr)
            return 2
        return open_app(argv[0] if argv else None)
    args = build_parser(argv[0] if argv[0] in SUBCOMMANDS else None).parse_args(argv)
    _TYPED[:] = argv
    if args.command is None:
        build_parser().print_help()
        return 2
    handler = {"run": cmd_run, "plan": cmd_plan, "graph": cmd_graph, "history": cmd_history,
               "doctor": cmd_doctor, "watch": cmd_watch}
    try:
        code = handler[args.command](args)
        return _flush_stdout() or code
    except GristmillError as exc:
        print(f"gristmill: {exc}" if isinstance(exc, UsageError) else str(exc), file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except OSError as exc:
        # Output that could not be written (stdout on a full device: history and logs
        # handle their own faults): one line, as make's "write error", not a traceback.
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO):
            _say(f"gristmill: write error: {exc.strerror or exc}")
            _quiet_stdout()
            return 2
        raise
    except KeyboardInterrupt:      # Ctrl-C before a run's own handling (a load, --wait)
        _say("")
        return 130
    finally:
        write_deferred()       # the loaded workflow, for the next run: after everything else


if __name__ == "__main__":
    sys.exit(main())
