"""``isolation = "sandbox"``: a task's commands run under bubblewrap (``bwrap``).

The task sees the system read-only (``/usr``, ``/bin``, ``/lib*``, ``/etc``, ``/sbin``),
its declared inputs read-only at their real paths, a private ``/tmp``, ``/proc`` and
``/dev``, no network unless ``network = true``, and nothing else of the machine.

Its outputs are written aside: a staging folder (on the same file system, beside the
outputs) is bound at the folder that holds the workflow and every output, so that
whatever the task writes there lands in the stage. When the attempt succeeds the
declared outputs, and only they, are moved into place (a rename each); anything else it
wrote, and everything of a failed, killed or timed-out attempt, is thrown away with the
stage. The declared inputs are bound on top of the stage, so an undeclared file of the
workflow folder is simply not there: the task fails with "No such file", and
``undeclared_reads`` names the file from the task's own messages.

Every path reaches bwrap as one argument of its argv: no shell is involved.
"""

from __future__ import annotations

import os
import re
import shutil

from ..workflow import Task

STAGE_PREFIX = ".gristmill-sandbox-"
_SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
_system_args: list[str] | None = None


def system_args() -> list[str]:
    """The read-only system, as bwrap arguments (a merged-/usr link stays a link)."""
    global _system_args
    if _system_args is None:
        args: list[str] = []
        for d in _SYSTEM:
            if os.path.islink(d):
                args += ["--symlink", os.readlink(d), d]
            elif os.path.isdir(d):
                args += ["--ro-bind", d, d]
        _system_args = args
    return _system_args


class SandboxError(OSError):
    """The sandbox cannot be set up for this task (said in the task's failure)."""


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


class Sandbox:
    """One attempt of one task under bwrap: its stage, its argv, its outputs' move."""

    def __init__(self, bwrap: str, task: Task, root: str, job_id: int):
        self.bwrap = bwrap
        self.task = task
        self.root = os.path.normpath(root)
        self.job_id = job_id
        self.outputs = [os.path.normpath(os.path.join(self.root, o)) for o in task.outputs]
        parents = [os.path.dirname(o) for o in self.outputs]
        # The folder bound to the stage: the workflow's, or above it when an output is
        # outside (``../shared/x``). Never a system folder nor ``/``.
        self.base = os.path.commonpath([self.root, *parents]) if parents else self.root
        self.stage = ""
        self._args: list[str] | None = None

    # -- before ------------------------------------------------------------------------
    def _prepare(self) -> list[str]:
        base = self.base
        if base == "/" or any(_under(base, d) for d in _SYSTEM):
            raise SandboxError(f"its outputs are spread too far apart to be written aside "
                               f"(they meet only at {base})")
        # PID first: remove_stale_stages keeps the stages of processes still alive.
        self.stage = os.path.join(base, f"{STAGE_PREFIX}{os.getpid()}-{self.job_id}-"
                                        f"{os.urandom(3).hex()}")
        os.mkdir(self.stage, 0o755)
        for out in self.outputs:
            os.makedirs(self._staged(os.path.dirname(out)), exist_ok=True)
        cwd = os.path.normpath(self.task.cwd)
        if _under(cwd, base):
            os.makedirs(self._staged(cwd), exist_ok=True)
        # --cap-drop ALL: run by root, the task would keep every capability (and could
        # mount, or make a device node of a disk and read it). No user namespace of its
        # own (bwrap makes one when it runs unprivileged; as root, without capabilities,
        # it would cost ~3 ms a task for nothing), nor host name and cgroup ones.
        args = [self.bwrap, "--die-with-parent", "--cap-drop", "ALL", "--unshare-pid",
                "--unshare-ipc"]
        if not self.task.isolation.network:
            args.append("--unshare-net")
        args += system_args()
        args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",
                 "--bind", self.stage, base]
        seen: set[str] = set()
        for rel in self.task.inputs:
            path = os.path.normpath(os.path.join(self.root, rel))
            if path in seen or not os.path.lexists(path):
                continue        # a phony input, or one that is no file: nothing to show
            seen.add(path)
            args += ["--ro-bind", path, path]
        if not _under(cwd, base):
            args += ["--dir", cwd]
        args += ["--chdir", cwd, "--"]
        return args

    def _staged(self, path: str) -> str:
        rel = os.path.relpath(path, self.base)
        return self.stage if rel == "." else os.path.join(self.stage, rel)

    def argv(self, argv: list[str], index: int) -> list[str]:
        """The command's argv, wrapped: bwrap's first, then the command's own."""
        if self._args is None:
            self._args = self._prepare()
        return [*self._args, *argv]

    # -- after -------------------------------------------------------------------------
    def finish(self, ok: bool, log_path: str | None) -> str:
        """Move the outputs into place when ``ok``; throw the stage away. Returns what
        went wrong ("" when nothing did): a move that failed, or an undeclared file."""
        problem = ""
        if not self.stage:
            return problem
        try:
            if ok:
                problem = self._move_outputs()
            else:
                problem = undeclared_reads(self.task, self.root, log_path)
        finally:
            shutil.rmtree(self.stage, ignore_errors=True)
            self.stage = ""
        return problem

    def _move_outputs(self) -> str:
        for out in self.outputs:
            staged = self._staged(out)
            if not os.path.lexists(staged):
                continue
            try:
                if os.path.isdir(out) and not os.path.islink(out):
                    trash = os.path.join(self.stage, ".old-" + os.path.basename(out))
                    os.rename(out, trash)
                os.replace(staged, out)
            except OSError as exc:
                return f"cannot move its output {out} into place: {exc.strerror or exc}"
        return ""

    def kill(self) -> None:
        """Nothing to do: bwrap dies with its process group, and its sandbox with it."""

    def abandon(self) -> None:
        """The executor closes with the task still running: throw the stage away."""
        if self.stage:
            shutil.rmtree(self.stage, ignore_errors=True)
            self.stage = ""


class Offline:
    """``isolation = "process"`` with ``network = false``: the whole machine as it is, in a
    network namespace of its own (bwrap ``--dev-bind / / --unshare-net``)."""

    def __init__(self, bwrap: str, task: Task):
        self.args = [bwrap, "--die-with-parent", "--dev-bind", "/", "/", "--unshare-net",
                     "--chdir", task.cwd, "--"]

    def argv(self, argv: list[str], index: int) -> list[str]:
        return [*self.args, *argv]

    def finish(self, ok: bool, log_path: str | None) -> str:
        return ""

    def kill(self) -> None:
        """bwrap dies with its process group."""

    def abandon(self) -> None:
        """Nothing was staged."""


# Words a task's message about a missing file is made of: "cat: secret.txt: No such file
# or directory", "can't open 'x.h'", "fatal error: x.h: No such file or directory".
_MISSING = re.compile(r"no such file|can't open|cannot open|not found|does not exist", re.I)
_QUOTED = re.compile(r"['\"‘“`]([^'\"’”`\n]+)['\"’”`]")
_WORD = re.compile(r"[^\s:'\"‘’“”`,()]+")
TAIL = 65536


def log_tail(log_path: str | os.PathLike | None) -> str:
    """The last ``TAIL`` bytes of an attempt's log, as text ("" without one)."""
    if not log_path:
        return ""
    try:
        with open(log_path, "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - TAIL))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def undeclared_reads(task: Task, root: str, log_path: str | None) -> str:
    """Files of the workflow folder the task's messages say it could not find, that are
    there but are not declared: "secret.txt is not a declared input ..." or ""."""
    text = log_tail(log_path)
    if not text:
        return ""
    root = os.path.normpath(root)
    declared = {os.path.normpath(os.path.join(root, p)) for p in (*task.inputs, *task.outputs)}
    found: dict[str, None] = {}
    for line in text.splitlines():
        if not _MISSING.search(line):
            continue
        words = _QUOTED.findall(line) + _WORD.findall(line)
        for word in words:
            path = os.path.normpath(os.path.join(task.cwd, word))
            if (path not in declared and _under(path, root) and path != root
                    and os.path.lexists(path) and STAGE_PREFIX not in path):
                found[os.path.relpath(path, root)] = None
    if not found:
        return ""
    names = ", ".join(found)
    return (f"{names} {'is' if len(found) == 1 else 'are'} in the workflow folder but not "
            f"declared as {'an input' if len(found) == 1 else 'inputs'}: the sandbox shows a "
            "task only its declared inputs (add to inputs)")
