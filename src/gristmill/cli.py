"""The ``gristmill`` command: headless subcommands, or the app with none.

Exit status: 0 success, 1 a task failed (or the run was cancelled), 2 a usage
or workflow error. Errors are one line, ``path:line:col: message``.
"""

from __future__ import annotations

import argparse
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

SUBCOMMANDS = ("run", "plan", "graph", "history", "watch")
_ASSIGN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*=")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # exit 2 with one line, as argparse does, never a traceback
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


# What a make user should know about the letters `run` shares with make.
MAKE_LETTERS = """\
options that mean what they mean to make: -C, -f, -j, -k, -B, -q, NAME=VALUE.
short options that differ from make's:
  -n  prints the plan, in run order, with the reason each task would run
      (make -n prints the commands)
  -v  prints each command as it starts (make -v prints make's version;
      here that is gristmill --version)
"""


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


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="gristmill", description="Run multi-step workflows incrementally and in "
                "parallel. With no subcommand, opens the desktop app.")
    p.add_argument("--version", action="version", version=f"gristmill {__version__}")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)

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
    r.add_argument("--dask", metavar="ADDRESS", default=None,
                   help="run the tasks on a Dask cluster: a scheduler address (tcp://host:8786), "
                        "or 'local' to start one sized to this machine (needs gristmill[dask])")

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

    pl = sub.add_parser("plan", help="what would run, in order, and why")
    _common(pl)
    pl.add_argument("targets", nargs="*", metavar="TARGET")
    pl.add_argument("-a", "--all", action="store_true", help="list up-to-date tasks too")
    pl.add_argument("--force", action="store_true")
    pl.add_argument("--json", action="store_true", help="machine-readable output")

    g = sub.add_parser("graph", help="export the task graph")
    _common(g)
    g.add_argument("targets", nargs="*", metavar="TARGET")
    g.add_argument("--format", choices=("dot", "json"), default="dot")

    h = sub.add_parser("history", help="recent runs")
    _common(h)
    h.add_argument("-n", "--limit", type=int, default=20)
    h.add_argument("--all", action="store_true", help="runs of every workflow")
    return p


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
          prefetch: list[StampPrefetch] | None = None, goals: Sequence[str] = ()) -> Workflow:
    target = _target(args)
    # The goals go to a Makefile's reader: one that only a built-in rule can make
    # (`make hello` beside hello.c) is read as make would build it.
    wf = load_cached(target, variables or None, defer=True, prefetch=prefetch, goals=goals)
    # The workflow lives until the process ends: keep the cyclic collector from walking
    # its objects again at every collection of the run that follows.
    gc.freeze()
    # What make prints while it reads a Makefile ($(info ...)), make's way: on stdout,
    # first (on stderr when stdout carries JSON).
    for line in wf.messages:
        print(line, file=sys.stderr if getattr(args, "json", False) else sys.stdout)
    for w in wf.warnings:
        print(f"gristmill: {w}", file=sys.stderr)
    return wf


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


def _settle_in(root: Path, workflow_path: Path):
    """Like make -C: run from the workflow's folder. Every path Gristmill holds is absolute
    (a relative GRISTMILL_HOME is made so first), and tasks that run in this folder can
    then be started with posix_spawn. Returns the history, its interrupted runs marked."""
    home = os.environ.get("GRISTMILL_HOME")
    if home:
        os.environ["GRISTMILL_HOME"] = os.path.abspath(os.path.expanduser(home))
    os.chdir(root)
    history = _history()
    if history is not None:
        history.mark_interrupted(str(workflow_path))
    return history


def _stamps(prefetch: list[StampPrefetch]):
    """The prefetched mtimes, for the engine's first scan (None: it stats them itself)."""
    return (lambda: prefetch[0].result()) if prefetch else None


def cmd_run(args) -> int:
    targets, variables = _split(args.targets)
    prefetch: list[StampPrefetch] = []
    # The default target's files are stat'ed by a child while the workflow is read back.
    wf = _load(args, variables, prefetch if not targets else None, targets)
    from .core.run.engine import RunOptions
    history = _settle_in(wf.root, wf.path)
    forced = tuple(wf.resolve_targets(targets)) if args.force else ()
    jobs, make_order = args.jobs, False
    if wf.kind == "make" and jobs is None:
        # make's default is one job at a time, in its own order; -j (or MAKEFLAGS) asks
        # for parallelism, and then packing and critical-path order apply.
        parallel, jobs = _makeflags_jobs(os.environ.get("MAKEFLAGS", ""))
        make_order = not parallel
    options = RunOptions(jobs=jobs, keep_going=args.keep_going, force=forced,
                         force_all=args.force_all, dry_run=args.dry_run, make_order=make_order)
    dask = None
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


def _run(args, wf: Workflow, targets: list[str], history, options: RunOptions,
         dask=None, stamps=None) -> int:
    from .console import ConsoleReporter
    from .core.run.engine import Engine
    from .core.events import EventBus
    bus = EventBus()
    if dask is None:
        engine = Engine(wf, bus=bus, history=history, options=options, stamps=stamps)
    else:
        from dataclasses import replace
        from .core.run.dask import DaskExecutor
        from .core.run.dask_cluster import cluster_capacity
        capacity = cluster_capacity(dask.client, wf.pools, args.jobs)
        engine = Engine(wf, bus=bus, history=history, options=replace(options, capacity=capacity),
                        executor_factory=lambda: DaskExecutor(dask.client))
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
    interrupted = []

    def on_sigint(signum, frame):
        interrupted.append(True)
        if len(interrupted) == 1:
            print("\ngristmill: cancelling the run (Ctrl-C again to kill every task at once)...",
                  file=sys.stderr)
            engine.cancel()
        elif len(interrupted) == 2:
            print("gristmill: killing every running task now (Ctrl-C again to quit without "
                  "waiting)...", file=sys.stderr)
            engine.abort()
        else:
            raise SystemExit(130)    # the engine thread is a daemon; its tasks are killed

    old = signal.signal(signal.SIGINT, on_sigint)
    old_term = signal.signal(signal.SIGTERM, on_sigint)
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
        if history is not None:
            history.close()
    return 130 if interrupted else (1 if failed_turns else result.exit_code)


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


def _print_plan(engine: Engine, targets: list[str], show_all: bool, as_json: bool = False) -> int:
    names, decisions, _ = engine.decide(targets)
    if as_json:
        print(json.dumps({"targets": list(names), "tasks": [
            {"name": n, "stale": d.stale, "reasons": [
                {"kind": r.kind.value, "message": r.message} for r in d.reasons]}
            for n, d in decisions.items() if d.stale or show_all]}, indent=2))
        return 0
    # Written at once: 200,000 print calls cost a quarter second. One string per task
    # (its line and its reasons' lines), the step number counted as they go.
    lines: list[str] = []
    append = lines.append
    step = 0
    for n, d in decisions.items():
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
    sys.stdout.write("\n".join(lines))
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
        engine = Engine(wf, history=history, options=RunOptions(force=forced),
                        stamps=_stamps(prefetch))
        try:
            return _print_plan(engine, targets, args.all, args.json)
        finally:
            if history is not None:
                history.close()
    finally:
        for p in prefetch:
            p.cancel()


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
    history = _settle_in(file.parent, file)
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
                                     "gpu": t.resources.gpu, "pools": dict(t.resources.pools)},
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
        wide = max((len(w) for w in where.values()), default=0)
        wide = max(wide, len("workflow")) if args.all else 0
        head = f"{'workflow':<{wide}}  " if args.all else ""
        print(f"{'run':<24} {head}{'started':<19} {'duration':>9}  {'status':<11} {'tasks':<28} targets")
        for r in runs:
            started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.started))
            dur = format_duration(r.duration) if r.duration is not None else ""
            counts = ", ".join(f"{v} {k}" for k, v in (r.counts or {}).items() if v)
            targets = " ".join(r.targets[:4]) if r.targets else "(default)"
            if len(r.targets) > 4:
                targets += f" (+{len(r.targets) - 4} more)"
            if r.started_by:            # watch: at its start, or for the files that changed
                from .core.watch.loop import describe
                targets += (f"  [{r.started_by}: {describe(list(r.changed))} changed]"
                            if r.changed else f"  [{r.started_by}]")
            column = f"{where[r.id]:<{wide}}  " if args.all else ""
            print(f"{r.id:<24} {column}{started:<19} {dur:>9}  {r.status.value:<11} {counts:<28} {targets}")
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


def open_app(path: str | None) -> int:
    from .app.main import run_app
    return run_app(path)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in SUBCOMMANDS and not argv[0].startswith("-")):
        if len(argv) > 1:
            print("gristmill: usage: gristmill [PATH] | gristmill run|plan|graph|history|watch ...",
                  file=sys.stderr)
            return 2
        return open_app(argv[0] if argv else None)
    args = build_parser().parse_args(argv)
    if args.command is None:
        build_parser().print_help()
        return 2
    handler = {"run": cmd_run, "plan": cmd_plan, "graph": cmd_graph, "history": cmd_history,
               "watch": cmd_watch}
    try:
        return handler[args.command](args)
    except GristmillError as exc:
        print(f"gristmill: {exc}" if isinstance(exc, UsageError) else str(exc), file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    finally:
        write_deferred()       # the loaded workflow, for the next run: after everything else


if __name__ == "__main__":
    sys.exit(main())
