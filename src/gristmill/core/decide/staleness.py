"""The scan that decides which tasks are stale, and says why in plain words.

Make's rules: an output is missing; an input is newer than the oldest output;
a task it reads from will run. Plus: phony, forced, and (when history exists)
"its definition changed since it last succeeded", and the trust rule: an output is
trusted only if the attempt that last wrote it succeeded (a task whose latest attempt
failed, was cancelled, timed out or never finished is stale, whatever the timestamps
say). History only adds facts: a task with up-to-date outputs and no history is up to
date, as in make.
"""

from __future__ import annotations

import gc
import os
import sys
import time
from dataclasses import FrozenInstanceError, dataclass
from typing import Iterable, Mapping, Protocol

from ..frozen import quick_new
from .content import ContentFacts, FileHasher
from .graph import TaskGraph
from ..reasons import Reason, ReasonKind
from ..workflow import Task, Workflow

_SHOW = 3   # how many paths to name in one reason before "and N more"


@dataclass(frozen=True, slots=True)
class Decision:
    stale: bool
    reasons: tuple[Reason, ...]

    @property
    def only_dependency(self) -> bool:
        """Stale only because something it reads will run (recheck after it does)."""
        return self.stale and all(r.kind is ReasonKind.DEPENDENCY_RUNS for r in self.reasons)


class TaskRecordLike(Protocol):
    definition_hash: str


class LastAttemptLike(Protocol):
    """The facts about a task's latest attempt that did not succeed (``record.queries``)."""
    run_id: str
    attempt: int
    outcome: str | None          # an ``Outcome`` value; None: it never finished (or runs)
    run_status: str              # its run's ``RunStatus`` value ('interrupted': the run died)
    message: str                 # what the attempt's end said ("exit status 1")


def untrusted_words(last: LastAttemptLike) -> str:
    """Why a task's outputs are not trusted, in words, from its latest attempt."""
    where = f"its last attempt, in run {last.run_id},"
    outcome, message = last.outcome, last.message
    if outcome is None:
        if last.run_status == "running":
            return f"{where} is still running: its outputs may be half-written"
        if last.run_status == "interrupted":
            return f"{where} never finished: the run was interrupted"
        return f"{where} never finished: no outcome was recorded"
    if outcome == "cancelled":
        return f"{where} was cancelled" + (f" ({message})" if message and message != "cancelled"
                                          else "")
    if outcome == "timed out":
        return f"{where} {message}" if message.startswith("timed out") else f"{where} timed out"
    return f"{where} failed" + (f" ({message})" if message else "")


def format_mtime(ns: int, now: float | None = None) -> str:
    """``10:31:02`` today, ``2026-11-20 10:31:02`` another day."""
    t = ns / 1e9
    now = time.time() if now is None else now
    lt, ln = time.localtime(t), time.localtime(now)
    if (lt.tm_year, lt.tm_yday) == (ln.tm_year, ln.tm_yday):
        return time.strftime("%H:%M:%S", lt)
    return time.strftime("%Y-%m-%d %H:%M:%S", lt)


class _MtimeWords:
    """``format_mtime`` for one scan: files written in the same second share the words."""

    def __init__(self) -> None:
        self._now = time.time()
        self._seen: dict[int, str] = {}

    def __call__(self, ns: int) -> str:
        second = ns // 1_000_000_000
        text = self._seen.get(second)
        if text is None:
            text = self._seen[second] = format_mtime(ns, self._now)
        return text


_UNLISTED = object()
_stat = os.stat
# Paths found missing in one folder before FileStamps reads the folder's listing, so
# that a path that is not there costs no stat (a plan of 100,000 tasks asks mostly for
# outputs that do not exist yet). A folder whose paths all exist is never listed (a
# no-op build). Only where names are case-sensitive.
_LIST_AFTER = 16 if sys.platform.startswith("linux") else 1 << 62


class FileStamps:
    """``mtime_ns`` of paths under a root, stat'ed once each; None when missing.

    Paths are stat'ed relative to an open descriptor of the root where the system
    allows it: the kernel then walks only the relative part (a no-op run of 20,000
    tasks makes 40,000 of these calls, the largest part of its time).
    """

    def __init__(self, root: os.PathLike | str, known: Mapping[str, int | None] | None = None):
        """``known``: mtimes already read (``wfcache.StampPrefetch``), taken as if stat'ed.
        A ``dict`` is taken over, not copied (its callers make one for it: a copy of a
        million tasks' paths was 80 MB)."""
        self.root = os.fspath(root)
        self._prefix = self.root if self.root.endswith("/") else self.root + os.sep
        self._cache: dict[str, int | None] = known if type(known) is dict else \
            dict(known) if known else {}
        self._listing: dict[str, object] = {}     # folder -> frozenset of names, or None
        self._misses: dict[str, int] = {}         # folder -> paths found missing so far
        self._fresh: set[str] = set()             # forgotten paths: always stat'ed
        self._never: frozenset[str] = frozenset()  # read as missing whatever is there
        self._fd: int | None = None
        if os.stat in os.supports_dir_fd:
            try:
                self._fd = os.open(self.root, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
            except OSError:
                pass

    def __del__(self) -> None:
        fd, self._fd = getattr(self, "_fd", None), None
        if fd is not None:
            os.close(fd)

    def get(self, rel: str) -> int | None:
        value = self._cache.get(rel, _UNLISTED)
        if value is not _UNLISTED:
            return value  # type: ignore[return-value]
        if self._never and rel in self._never:
            self._cache[rel] = None
            return None
        if self._listing:       # some folder was listed: its missing names cost no stat
            cut = rel.rfind("/")
            names = self._listing.get(rel[:cut] if cut > 0 else ("/" if cut == 0 else ""),
                                      _UNLISTED)
            if names is None or (names is not _UNLISTED and rel[cut + 1:] not in names
                                 and rel not in self._fresh):
                # Not kept: the listing says it again as quickly, and a first plan of a
                # million tasks asks for a million outputs that are not there (60 MB).
                return None
        try:
            if self._fd is not None:
                value = self._cache[rel] = _stat(rel, dir_fd=self._fd).st_mtime_ns
            else:
                value = self._cache[rel] = _stat(
                    rel if rel[:1] == "/" else self._prefix + rel).st_mtime_ns
            return value  # type: ignore[return-value]
        except OSError:
            pass
        self._cache[rel] = None
        cut = rel.rfind("/")
        folder = rel[:cut] if cut > 0 else ("/" if cut == 0 else "")
        if folder not in self._listing:
            missed = self._misses.get(folder, 0) + 1
            self._misses[folder] = missed
            if missed == _LIST_AFTER:
                self._list(folder)
        return None

    def _list(self, folder: str) -> None:
        path = folder if folder[:1] == "/" else self._prefix + folder if folder else self.root
        try:
            self._listing[folder] = frozenset(os.listdir(path))
        except FileNotFoundError:
            self._listing[folder] = None
        except OSError:       # not a folder, no permission...: stat each path instead
            pass

    def never_files(self, paths: Iterable[str]) -> None:
        """``paths`` are read as missing whatever is on disk: the names of phony targets,
        which make never compares as files (a phony ``sub`` beside a folder ``sub/``)."""
        self._never = frozenset(paths)
        cache = self._cache
        for p in self._never:
            cache[p] = None
    def known(self) -> dict[str, int | None]:
        """Every mtime read so far (None: missing), to seed a later scan's ``FileStamps``
        (watch: a pass after a change re-reads only what changed)."""
        return dict(self._cache)

    def forget(self, paths: Iterable[str]) -> None:
        """The files at ``paths`` may have changed: the next ``get`` looks again."""
        cache = self._cache
        fresh = self._fresh
        listing = self._listing
        for p in paths:
            cache.pop(p, None)
            fresh.add(p)
            cut = p.rfind("/")
            folder = p[:cut] if cut > 0 else ("/" if cut == 0 else "")
            if listing.get(folder, _UNLISTED) is None:
                listing[folder] = frozenset()     # the folder may exist now


_UP_TO_DATE = ReasonKind.UP_TO_DATE
_MISSING = ReasonKind.MISSING_OUTPUT
_DEPENDENCY = ReasonKind.DEPENDENCY_RUNS
# A scan makes a decision and a reason or two per task: made as frozen.quick_new makes
# them (a third of what Decision(...) and Reason(...) cost).
_decision = quick_new(Decision)
_reason = quick_new(Reason)


class _Missing(Decision):
    """``Decision(True, (Reason(MISSING_OUTPUT, "output OUT is missing"),))``, with the
    words made when asked for: a first plan of a million tasks decides this for nearly
    every task, and the decision, its tuple, its reason and their words were ~300 bytes
    a task (issue 18). Equal to, hashed, pickled and printed as the plain decision."""

    __slots__ = ("_out",)
    stale = True          # a class attribute: read before the (unset) slot of the base

    def __init__(self, out: str):
        object.__setattr__(self, "_out", out)

    @property
    def reasons(self) -> tuple[Reason, ...]:          # type: ignore[override]
        return (_reason(_MISSING, f"output {self._out} is missing"),)

    def plain(self) -> Decision:
        return _decision(True, self.reasons)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Decision):
            return self.stale == other.stale and self.reasons == other.reasons
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.stale, self.reasons))

    def __repr__(self) -> str:
        return repr(self.plain())

    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def __reduce__(self):
        return (Decision, (True, self.reasons))


class _MissingAfter(_Missing):
    """``_Missing`` and a second reason: ``it reads the output of DEP, which will run``."""

    __slots__ = ("_dep",)

    def __init__(self, out: str, dep: str):
        object.__setattr__(self, "_out", out)
        object.__setattr__(self, "_dep", dep)

    @property
    def reasons(self) -> tuple[Reason, ...]:          # type: ignore[override]
        return (_reason(_MISSING, f"output {self._out} is missing"),
                _reason(_DEPENDENCY, f"it reads the output of {self._dep}, which will run"))


_new = object.__new__
_set_out = _Missing._out.__set__        # type: ignore[attr-defined]
_set_dep = _MissingAfter._dep.__set__   # type: ignore[attr-defined]


def _missing(out: str) -> Decision:
    """``_Missing(out)``, made as quick_new makes a frozen object (the scan makes one
    for nearly every task of a first plan)."""
    d = _new(_Missing)
    _set_out(d, out)
    return d


def _missing_after(out: str, dep: str) -> Decision:
    d = _new(_MissingAfter)
    _set_out(d, out)
    _set_dep(d, dep)
    return d


_CHANGED = Decision(True, (Reason(ReasonKind.DEFINITION_CHANGED,
                                  "its command or definition changed since it last succeeded"),))


def _more(items: list[str]) -> str:
    shown = ", ".join(items[:_SHOW])
    return shown + (f" and {len(items) - _SHOW} more" if len(items) > _SHOW else "")


class StalenessScan:
    def __init__(self, workflow: Workflow, graph: TaskGraph | None = None,
                 history: object | None = None,
                 records: Mapping[str, TaskRecordLike] | None = None,
                 hashes: Mapping[str, str] | None = None,
                 stamps: Mapping[str, int | None] | None = None,
                 untrusted: Mapping[str, LastAttemptLike] | None = None,
                 content: ContentFacts | None = None):
        """``hashes`` (task -> definition hash at its last success) come from ``records``
        or ``history`` when not given; with none of the three, definitions are not compared.
        ``stamps``: mtimes already read, as ``FileStamps`` takes them. ``untrusted``
        (task -> its latest attempt, one that did not succeed) comes from ``history``
        when not given: those tasks are stale (the trust rule). ``content`` (the hashes
        history keeps, for ``check = "content"``) comes from ``history`` when not given."""
        self.workflow = workflow
        self.graph = graph or TaskGraph.of(workflow)
        if hashes is None and records is not None:
            hashes = {name: r.definition_hash for name, r in records.items()}
        if hashes is None and history is not None:
            hashes = history.definition_hashes(str(workflow.path))  # type: ignore[attr-defined]
        if untrusted is None and history is not None and hasattr(history, "untrusted"):
            untrusted = history.untrusted(str(workflow.path))  # type: ignore[attr-defined]
        if workflow.kind == "make" and not os.environ.get("GRISTMILL_MAKE_COMMAND_CHANGES"):
            # A Makefile is left to make's rules: a recipe whose text changed (one that
            # reads the disk, `$(if $(wildcard $(@D)),,mkdir ...)`, or a changed NAME=VALUE)
            # is no reason to run. GRISTMILL_MAKE_COMMAND_CHANGES=1 opts in to Gristmill's.
            hashes = None
        self.hashes = hashes
        if content is None and history is not None and hasattr(history, "content_facts"):
            content = history.content_facts(str(workflow.path))  # type: ignore[attr-defined]
        self.content = content
        self.hasher = FileHasher(str(workflow.root), content)
        # task -> why it is up to date although an input is newer (content unchanged)
        self._notes: dict[str, Reason] = {}
        # task -> the reason its outputs are not trusted
        self.untrusted: dict[str, Reason] = {
            name: Reason(ReasonKind.NOT_TRUSTED, untrusted_words(last))
            for name, last in (untrusted or {}).items()}
        self.stamps = FileStamps(workflow.root, stamps)
        # As make: a phony target is never a file, so what depends on it always runs,
        # even where a file or folder of its name exists (``sub:`` beside ``sub/``).
        # (A Makefile's phony target is named by its target; elsewhere by its outputs.)
        by_name = workflow.kind == "make"
        self._phony_of: dict[str, str] = {
            o: t.name for t in workflow.tasks.values() if t.phony
            for o in ((t.name, *t.outputs) if by_name else t.outputs)}
        if self._phony_of:
            self.stamps.never_files(self._phony_of)
        self._get = self.stamps.get
        self._deps = self.graph.dependencies_of()
        self._words = _MtimeWords()
        # A Makefile's intermediate files (make's rules): one that is missing is not
        # remade while what is made from it is newer than its own prerequisites.
        self._intermediate = workflow.intermediate
        self._needed: set[str] = set()           # missing intermediates that must be made
        self._skipped: dict[str, str] = {}       # missing intermediates let be -> producer
        self._goals: set[str] = set()

    def scan(self, targets: Iterable[str] | None = None, force: Iterable[str] = (),
             force_all: bool = False) -> dict[str, Decision]:
        """Decisions for the targets and everything they need, in dependency order."""
        graph = self.graph
        tasks = self.workflow.tasks
        wanted = tuple(targets if targets is not None else self.workflow.default)
        if len(wanted) == len(tasks) and len(set(wanted)) == len(tasks) and \
                all(n in tasks for n in wanted):
            order: Iterable[str] = graph.order        # every task: no closure to walk
        elif graph.reaches_all(wanted):
            order = graph.order      # the targets need every task: no closure to walk
        else:
            names = graph.closure(wanted)
            order = graph.order if len(names) == len(graph.order) else \
                [n for n in graph.order if n in names]
        forced = set(force)
        decide = self.decide
        self._goals = set(wanted)
        # Every decision is kept: the cyclic collector would only walk them again and
        # again (as in the loader).
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            while True:
                will_run: set[str] = set()
                out: dict[str, Decision] = {}
                self._skipped = {}
                if not forced and not force_all:
                    self._scan(order, tasks, will_run, out)
                else:
                    for name in order:
                        d = out[name] = decide(tasks[name], will_run, force_all or name in forced)
                        if d.stale:
                            will_run.add(name)
                # A missing intermediate let be, but something made from it must be
                # remade after all: make makes it first. Decide again with it needed.
                needed = {p for p, producer in self._skipped.items()
                          if any(out[d].stale for d in self.graph.dependants(producer) if d in out)}
                if not needed:
                    return out
                self._needed |= needed
        finally:
            if gc_was_enabled:
                gc.enable()

    def _scan(self, order: Iterable[str], tasks: Mapping[str, Task], will_run: set[str],
              out: dict[str, Decision]) -> None:
        """``decide`` for each task in ``order``, nothing forced. The commonest case of
        a first run, one output and missing, is decided here without the calls (the
        same decision: tested against ``decide``)."""
        decide, get, deps, add = self.decide, self._get, self._deps, will_run.add
        untrusted = self.untrusted
        for name in order:
            task = tasks[name]
            outputs = task.outputs
            if len(outputs) == 1 and not task.phony and not task.after and \
                    not (untrusted and name in untrusted):
                path = outputs[0]
                if get(path) is None and not (self._intermediate and path in self._intermediate):
                    ds = deps[name]
                    if not ds:
                        out[name] = _missing(path)
                    elif len(ds) == 1:
                        p = ds[0]
                        out[name] = _missing_after(path, p) if p in will_run else _missing(path)
                    else:
                        running = self._running(task, will_run) if will_run else None
                        out[name] = _missing(path) if running is None else _decision(
                            True, (_reason(_MISSING, f"output {path} is missing"), running))
                    add(name)
                    continue
            d = out[name] = decide(task, will_run)
            if d.stale:
                add(name)

    def decide(self, task: Task, will_run: set[str], forced: bool = False) -> Decision:
        outputs = task.outputs
        untrusted = self.untrusted
        if not forced and not task.phony and len(outputs) == 1 and \
                not (untrusted and task.name in untrusted):
            # The two common cases, without building lists: one output, missing...
            out = outputs[0]
            get = self._get
            m_out = get(out)
            if m_out is None and self._intermediate and out in self._intermediate:
                let_be = self._let_be(task, out)
                if let_be is not None:
                    return let_be
            if m_out is None:
                reason = _reason(_MISSING, f"output {out} is missing")
                if will_run:
                    running = self._running(task, will_run)
                    if running is not None:
                        return _decision(True, (reason, running))
                return _decision(True, (reason,))
            # ...or there, and every input is an older file (anything else: the long way).
            for i in task.inputs:
                m = get(i)
                if m is None or m > m_out:
                    break
            else:
                if will_run:
                    running = self._running(task, will_run)
                    if running:
                        return _decision(True, (running,))
                hashes = self.hashes
                if hashes is not None and task.commands:
                    known = hashes.get(task.name)
                    if known is not None and known != task.definition_hash:
                        return _CHANGED
                return _decision(False, (_reason(
                    _UP_TO_DATE,
                    f"every input is older than output {out} ({self._words(m_out)})"
                    if task.inputs else "its outputs exist and it has no inputs"),))
        reasons: list[Reason] = []
        if forced:
            reasons.append(Reason(ReasonKind.FORCED, "forced by the user"))
        if task.phony:
            reasons.append(Reason(ReasonKind.PHONY, "it is phony: it runs whenever asked"))
        elif not outputs:
            reasons.append(Reason(ReasonKind.NO_OUTPUTS, "it declares no outputs, so it always runs"))
        else:
            reasons.extend(self.file_reasons(task))
            if untrusted:
                distrust = untrusted.get(task.name)
                if distrust is not None:
                    reasons.append(distrust)
        if will_run:
            running = self._running(task, will_run)
            if running:
                reasons.append(running)
        if reasons:
            return Decision(True, tuple(reasons))
        return self._definition_changed(task) or Decision(False, (self._up_to_date_reason(task),))

    def _let_be(self, task: Task, out: str) -> Decision | None:
        """An intermediate file that is missing and need not be made (make's rule: it is
        made only when something made from it must be remade, or when it is a goal)."""
        if out in self._needed or task.name in self._goals:
            return None
        if self._virtual(out) is None:
            return None
        self._skipped[out] = task.name
        return Decision(False, (Reason(
            ReasonKind.UP_TO_DATE, f"intermediate file {out} is missing, but what is made from "
            "it is newer than its prerequisites: make does not remake it"),))

    def _virtual(self, path: str) -> int | None:
        """The time a missing intermediate file stands for: the newest of its producer's
        inputs (through missing intermediates in turn); None if one of them is missing."""
        producer = self.graph.producer.get(path)
        if producer is None:
            return None
        newest = None
        for i in self.workflow.tasks[producer].inputs:
            m = self._get(i)
            if m is None and i in self._intermediate and i not in self._needed:
                m = self._virtual(i)
            if m is None:
                return None
            newest = m if newest is None or m > newest else newest
        return newest

    def _definition_changed(self, task: Task) -> Decision | None:
        """From history: its command or definition changed since it last succeeded."""
        if self.hashes is not None and task.commands:
            known = self.hashes.get(task.name)
            if known is not None and known != task.definition_hash:
                return _CHANGED
        return None

    def _running(self, task: Task, will_run: set[str]) -> Reason | None:
        """DEPENDENCY_RUNS, when a task whose output it reads will run."""
        name = task.name
        if not task.after:
            # Its dependencies are the tasks whose outputs it reads, in the order of its
            # inputs, each once: the graph found them already.
            ds = self._deps[name]
            if len(ds) == 1:               # the common case, without a list
                p = ds[0]
                if p not in will_run:
                    return None
                return _reason(_DEPENDENCY, f"it reads the output of {p}, which will run")
            running = [d for d in ds if d in will_run]
        else:
            producer = self.graph.producer
            found: dict[str, None] = {}
            for i in task.inputs:
                p = producer.get(i)
                if p is not None and p in will_run and p != name:
                    found[p] = None
            running = list(found)
        if not running:
            return None
        word = "reads the output of" if len(running) == 1 else "reads outputs of"
        return _reason(_DEPENDENCY, f"it {word} {_more(running)}, which will run")

    def file_reasons(self, task: Task) -> list[Reason]:
        """Make's timestamp rules for one task (missing outputs, newer inputs)."""
        if task.phony or not task.outputs:
            return []
        get = self.stamps.get
        outputs = task.outputs
        if len(outputs) == 1:
            oldest_out = outputs[0]
            oldest = get(oldest_out)
            if oldest is None:
                return [Reason(ReasonKind.MISSING_OUTPUT, f"output {oldest_out} is missing")]
        else:
            missing = [o for o in outputs if get(o) is None]
            if missing:
                noun = "output" if len(missing) == 1 else "outputs"
                verb = "is" if len(missing) == 1 else "are"
                return [Reason(ReasonKind.MISSING_OUTPUT, f"{noun} {_more(missing)} {verb} missing")]
            oldest_out = min(outputs, key=lambda o: get(o) or 0)
            oldest = get(oldest_out)
        oldest = oldest or 0
        newer: list[str] = []
        gone: list[str] = []
        phony: list[str] = []
        for i in task.inputs:
            m = get(i)
            if m is None and i in self._skipped:
                m = self._virtual(i)        # a missing intermediate: its prerequisites' time
            if m is None:
                # As in make: a prerequisite that is not a file counts as newer.
                producer = self._phony_of.get(i)
                if producer is not None:
                    phony.append(producer)
                else:
                    gone.append(i)
            elif m > oldest:
                newer.append(i)
        fallback = ""
        if newer:
            newer, fallback = self._by_content(task, newer)
        if not newer and not gone and not phony:
            return []
        reasons = []
        if newer:
            first = newer[0]
            msg = (f"input {first} ({self._words(get(first) or 0)}) is newer than "
                   f"output {oldest_out} ({self._words(oldest)})")
            if len(newer) > 1:
                msg += f", and so {'is' if len(newer) == 2 else 'are'} {_more(newer[1:])}"
            msg += fallback
            reasons.append(Reason(ReasonKind.INPUT_NEWER, msg))
        if gone:
            verb = "does" if len(gone) == 1 else "do"
            reasons.append(Reason(ReasonKind.INPUT_NEWER, f"input {_more(gone)} {verb} not exist"))
        if phony:
            reasons.append(Reason(ReasonKind.DEPENDENCY_RUNS,
                                  f"it depends on phony {'task' if len(phony) == 1 else 'tasks'} "
                                  f"{_more(phony)}, which always {'runs' if len(phony) == 1 else 'run'}"))
        return reasons

    def recheck(self, task: Task) -> Decision:
        """After its dependencies ran: still stale by timestamps? (make and ninja's restat;
        by content where the task or its input's producer says ``check = "content"``)."""
        self.stamps.forget(task.inputs)
        self.stamps.forget(task.outputs)
        self.hasher.forget(task.inputs)
        self._notes.pop(task.name, None)
        reasons = self.file_reasons(task)
        if reasons:
            return Decision(True, tuple(reasons))
        note = self._notes.get(task.name)
        if note is not None:
            return Decision(False, (Reason(ReasonKind.UP_TO_DATE, note.message.replace(
                "was touched", "was rewritten by its task").replace(
                "were touched", "were rewritten by their tasks")),))
        return Decision(False, (Reason(ReasonKind.UP_TO_DATE,
                                       "its inputs did not change when their tasks ran"),))

    def compares_content(self, task: Task, path: str) -> bool:
        """Whether ``path``, an input of ``task``, is compared by its bytes: the task says
        ``check = "content"``, or the task that writes it does (restat by content)."""
        if task.check == "content":
            return True
        producer = self.graph.producer.get(path)
        return producer is not None and self.workflow.tasks[producer].check == "content"

    def content_inputs(self, task: Task) -> list[str]:
        """The inputs of ``task`` whose hashes history keeps at its success."""
        return [i for i in task.inputs if self.compares_content(task, i)]

    def _by_content(self, task: Task, newer: list[str]) -> tuple[list[str], str]:
        """The inputs of ``newer`` (newer than an output) whose bytes changed since the
        task last succeeded; and words to add when content could not decide."""
        compared = [i for i in newer if self.compares_content(task, i)]
        if not compared:
            return newer, ""
        known = self.content.at_success(task.name) if self.content is not None else None
        if not known:
            return newer, (" (it is checked by content, but history has no hashes from its "
                           "last success: decided by timestamps)")
        same = []
        for i in compared:
            was = known.get(i)
            if was is not None and self.hasher.hash(i) == was:
                same.append(i)
        if not same:
            return newer, ""
        unchanged = set(same)
        verb = "was touched but its content is" if len(same) == 1 else \
            "were touched but their content is"
        self._notes[task.name] = Reason(
            ReasonKind.UP_TO_DATE,
            f"input {_more(same)} {verb} unchanged since the last success")
        return [i for i in newer if i not in unchanged], ""

    def _up_to_date_reason(self, task: Task) -> Reason:
        note = self._notes.get(task.name)
        if note is not None:
            return note
        if not task.inputs:
            return Reason(ReasonKind.UP_TO_DATE, "its outputs exist and it has no inputs")
        get = self.stamps.get
        outputs = task.outputs
        oldest_out = outputs[0] if len(outputs) == 1 else min(outputs, key=lambda o: get(o) or 0)
        return Reason(ReasonKind.UP_TO_DATE,
                      f"every input is older than output {oldest_out} "
                      f"({self._words(get(oldest_out) or 0)})")
