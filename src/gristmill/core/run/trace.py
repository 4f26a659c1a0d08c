"""Tracing a task's file accesses with strace, for the dependency audit.

Each command of an audited task runs as ``strace -f -qq -y -xx --seccomp-bpf -e
trace=<the file calls> -o FILE -- argv``. ``-xx`` prints every string as hex escapes and
``-y`` prints each file descriptor with its path (hex too), so a name with spaces,
quotes, a leading ``-`` or a newline is read back exactly; ``AT_FDCWD`` comes with the
process's working folder. Calls that take a bare relative path (``rename``, ``mkdir``,
``unlink``, ``chdir``...) are resolved against each process's own working folder, which
this parser follows through ``chdir``, ``fchdir`` and the ``clone``/``fork`` that made
the process (``CLONE_FS`` shares it).

``--seccomp-bpf`` stops the tracee only at the calls traced, not at every system call:
``make -j2`` of the bundled C example costs 1.8x its CPU under it against 3.7x under
plain ``strace -f``, and ``gristmill run --audit`` of it about 1.1x a plain run
(``tests/benchmarks/bench_audit.py``; RESULTS.md). fanotify would cost less per access
but needs root (CAP_SYS_ADMIN) and marks a whole mount or filesystem, not a process
tree, so parallel tasks could not be told apart; an LD_PRELOAD shim misses static
binaries and direct system calls; a ptrace tracer of our own would be strace again.
"""

from __future__ import annotations

import os
import re
import shutil

from ..errors import UsageError
from ..findings import LIST, MKDIR, MOVE_AWAY, PROBE, READ, REMOVE, WRITE, Access

# Calls with a path, the working-folder calls, and those that make processes. A leading
# "?" lets strace skip a call this machine's architecture does not have.
TRACED = ("open", "openat", "openat2", "creat", "execve", "execveat", "rename", "renameat",
          "renameat2", "unlink", "unlinkat", "rmdir", "mkdir", "mkdirat", "link", "linkat",
          "symlink", "symlinkat", "truncate", "chdir", "fchdir", "utimensat", "utime",
          "utimes", "clone", "clone3", "fork", "vfork")
INSTALL = "install it with: apt install strace (Debian, Ubuntu) or dnf install strace"


def strace_program(path: str | None = None) -> str | None:
    """The strace to use, found in ``path`` (default: this process's PATH), or None."""
    return shutil.which("strace", path=path)


def need_strace(path: str | None = None) -> str:
    """The strace program, or a UsageError (exit 2) that names it and how to install it."""
    found = strace_program(path)
    if found is None:
        raise UsageError("--audit (or audit = true) traces each task with strace, which is "
                         f"not installed here (not found in PATH); {INSTALL}")
    return found


def trace_argv(strace: str, argv: list[str], out: str) -> list[str]:
    """``argv`` run under strace, its trace written to ``out``."""
    return [strace, "-f", "-qq", "-y", "-xx", "--seccomp-bpf", "-e", "signal=none",
            "-e", "trace=" + ",".join("?" + c for c in TRACED), "-o", out, "--", *argv]


# -- reading a trace back ------------------------------------------------------------------

_LINE = re.compile(r"^(\d+)\s+(.*)$")
_CALL = re.compile(r"^([a-z_0-9]+)\((.*)$", re.S)
_RESUMED = re.compile(r"^<\.\.\. ([a-z_0-9]+) resumed>(.*)$", re.S)
_RESULT = re.compile(r"\)\s+= (-?\d+|\?|0x[0-9a-f]+)(<[^>]*>)?(?: (E[A-Z0-9]+) .*)?$")
_HEX = re.compile(r"\\x([0-9a-f]{2})")
_FD_PATH = re.compile(r"^(?:-?\d+|AT_FDCWD)<(.*)>$", re.S)


def _unhex(text: str) -> str:
    """A string as strace -xx prints it (inside quotes or <>), as a file name."""
    raw = bytes(int(h, 16) for h in _HEX.findall(text))
    return os.fsdecode(raw)


def _split_args(text: str) -> list[str]:
    """The top-level arguments of a call (``text`` is what is inside its parentheses).
    With -xx no string holds a quote, comma or bracket of its own."""
    args, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            args.append(text[start:i].strip())
            start = i + 1
    tail = text[start:].strip()
    if tail:
        args.append(tail)
    return args


def _string(arg: str) -> str | None:
    if len(arg) >= 2 and arg[0] == '"' and arg.endswith('"'):
        return _unhex(arg[1:-1])
    return None


def _fd_path(arg: str) -> str | None:
    m = _FD_PATH.match(arg)
    return _unhex(m.group(1)) if m else None


class _Proc:
    __slots__ = ("cwd",)

    def __init__(self, cwd: list[str]):
        self.cwd = cwd          # a one-item list: shared between CLONE_FS processes


def _merged_calls(lines: list[str]):
    """(pid, name, args text + result) per call, an <unfinished ...> call joined with its
    resumption, in the order the calls began."""
    pending: dict[int, int] = {}     # pid -> index in out of its unfinished call
    out: list[list] = []
    for line in lines:
        m = _LINE.match(line)
        if not m:
            continue
        pid, rest = int(m.group(1)), m.group(2)
        r = _RESUMED.match(rest)
        if r:
            i = pending.pop(pid, None)
            if i is not None:
                out[i][2] += r.group(2)
                out[i][3] = True
            continue
        c = _CALL.match(rest)
        if not c:
            continue
        body = c.group(2)
        if body.endswith("<unfinished ...>"):
            pending[pid] = len(out)
            out.append([pid, c.group(1), body[:-len("<unfinished ...>")].rstrip(), False])
        else:
            out.append([pid, c.group(1), body, True])
    return out


_CLONE_CHILD = re.compile(r"\)\s+= (\d+)")


def parse_trace(text: str, cwd: str) -> list[Access]:
    """The file accesses in one strace output (``trace_argv``'s), in order; ``cwd`` is
    the folder the traced command started in."""
    calls = _merged_calls(text.splitlines())
    # Which process made which: a child's calls may be printed before its parent's
    # clone returns (vfork), so the children are known first.
    children: dict[int, tuple[int, bool]] = {}    # child pid -> (index of the clone, CLONE_FS)
    for i, (pid, name, body, done) in enumerate(calls):
        if name in ("clone", "clone3", "fork", "vfork") and done:
            m = _CLONE_CHILD.search(body)
            if m:
                flags = body[:m.start()]
                shared = "CLONE_FS" in flags or "CLONE_THREAD" in flags
                children[int(m.group(1))] = (i, shared)
    made_at: dict[int, list[int]] = {}
    for child, (i, _shared) in children.items():
        made_at.setdefault(i, []).append(child)
    procs: dict[int, _Proc] = {}
    first = _Proc([os.path.normpath(cwd)])
    out: list[Access] = []
    add = out.append

    def proc(pid: int) -> _Proc:
        p = procs.get(pid)
        if p is None:
            p = procs[pid] = _Proc(list(first.cwd))
        return p

    for i, (pid, name, body, done) in enumerate(calls):
        p = proc(pid)
        for child in made_at.get(i, ()):      # the child starts where its parent is now
            if child not in procs:
                shared = children[child][1]
                procs[child] = _Proc(p.cwd if shared else list(p.cwd))
        if not done:
            continue
        res = _RESULT.search(body)
        if res is None:
            continue
        args = _split_args(body[:res.start()])
        ok = not res.group(1).startswith("-") and res.group(1) != "?"
        errno_name = res.group(3) or ""
        try:
            _one(name, args, ok, errno_name, res.group(2), p, add)
        except (IndexError, ValueError):
            continue
    return out


def _at(args: list[str], i: int, p: _Proc) -> str | None:
    """The path of the *at call's (dirfd, path) pair at ``args[i]``, ``args[i + 1]``."""
    name = _string(args[i + 1])
    if name is None:
        return None
    if name.startswith("/"):
        return os.path.normpath(name)
    base = _fd_path(args[i])
    if base is None:
        if args[i] != "AT_FDCWD":
            return None
        base = p.cwd[0]
    elif args[i].startswith("AT_FDCWD"):
        p.cwd[0] = base                      # strace saw the process's folder: trust it
    return os.path.normpath(os.path.join(base, name)) if name else os.path.normpath(base)


def _plain(args: list[str], i: int, p: _Proc) -> str | None:
    name = _string(args[i])
    if name is None:
        return None
    return os.path.normpath(os.path.join(p.cwd[0], name))


def _open_op(flags: str) -> str:
    if "O_WRONLY" in flags or "O_RDWR" in flags or "O_CREAT" in flags or "O_TRUNC" in flags:
        return WRITE
    if "O_DIRECTORY" in flags:
        return LIST
    if "O_PATH" in flags:
        return ""
    return READ


# The calls that name one path: call -> (what it does to it, the path is *at-style
# (a folder fd and a name), the argument it is in).
_ONE_PATH: dict[str, tuple[str, bool, int]] = {
    "unlink": (REMOVE, False, 0), "rmdir": (REMOVE, False, 0), "unlinkat": (REMOVE, True, 0),
    "mkdir": (MKDIR, False, 0), "mkdirat": (MKDIR, True, 0),
    "link": (WRITE, False, 1), "symlink": (WRITE, False, 1), "linkat": (WRITE, True, 2),
    "symlinkat": (WRITE, True, 1),
    "truncate": (WRITE, False, 0), "utime": (WRITE, False, 0), "utimes": (WRITE, False, 0),
}


def _one(name: str, args: list[str], ok: bool, errno_name: str, ret_fd: str | None,
         p: _Proc, add) -> None:
    if name in ("openat", "open", "creat", "openat2"):
        if name == "open":
            path, flags = _plain(args, 0, p), args[1]
        elif name == "creat":
            path, flags = _plain(args, 0, p), "O_CREAT"
        else:
            path, flags = _at(args, 0, p), args[2]
        if path is None:
            return
        op = _open_op(flags)
        if not op:
            return
        if ok:
            add(Access(op, path))
        elif op == READ and errno_name == "ENOENT":
            add(Access(PROBE, path))
        return
    if not ok:
        return
    if name == "execve":
        path = _plain(args, 0, p)
        if path:
            add(Access(READ, path))
    elif name == "execveat":
        path = _at(args, 0, p)
        if path:
            add(Access(READ, path))
    elif name == "chdir":
        path = _plain(args, 0, p)
        if path:
            p.cwd[0] = path
    elif name == "fchdir":
        path = _fd_path(args[0])
        if path:
            p.cwd[0] = os.path.normpath(path)
    elif name in ("rename", "renameat", "renameat2"):
        if name == "rename":
            old, new = _plain(args, 0, p), _plain(args, 1, p)
        else:
            old, new = _at(args, 0, p), _at(args, 2, p)
        if old and new:
            add(Access(MOVE_AWAY, old))
            add(Access(WRITE, new))
    elif name in _ONE_PATH:
        kind, at, i = _ONE_PATH[name]
        path = (_at if at else _plain)(args, i, p)
        if path:
            add(Access(kind, path))
    elif name == "utimensat":
        if args[1] == "NULL":                # futimens(fd): the fd's own file
            path = _fd_path(args[0])
            path = os.path.normpath(path) if path else None
        else:
            path = _at(args, 0, p)
        if path:
            add(Access(WRITE, path))


def read_traces(prefix: str, remove: bool = True) -> tuple[str, ...] | None:
    """The trace files ``prefix.0``, ``prefix.1``... of one attempt's commands, read (and
    removed); None when there is none (the command never ran under strace)."""
    texts = []
    i = 0
    while True:
        path = f"{prefix}.{i}"
        try:
            with open(path, encoding="ascii", errors="replace") as f:
                texts.append(f.read())
        except OSError:
            break
        if remove:
            try:
                os.unlink(path)
            except OSError:
                pass
        i += 1
    return tuple(texts) if texts else None


def collect(prefix: str, cwd: str, remove: bool = True) -> list[Access] | None:
    """Every access of one attempt, its commands' traces in turn; None if not traced."""
    texts = read_traces(prefix, remove)
    if texts is None:
        return None
    out: list[Access] = []
    for text in texts:
        out.extend(parse_trace(text, cwd))
    return out
