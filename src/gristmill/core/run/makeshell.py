"""The recipe shell Gristmill gives GNU make, and the socket it talks to.

make reads a makefile of Gristmill's first (``MAKEFILES``): ``override SHELL = HELPER``
and ``export GRISTMILL_TARGET = $@``, so it runs ``HELPER <.SHELLFLAGS> LINE`` once per
recipe line with the target in the environment (the variable is expanded per recipe). The helper is ``makeshell.c``,
compiled on first use with ``cc -O2`` into the user cache folder (keyed by the
source's hash, put in place by an atomic rename); where no compiler exists, the
pure-Python script below does the same (``python3 -SE``).

The protocol, one connection per recipe line (SOCK_STREAM):

* the helper sends a frame: a little-endian u32 length, then NUL-terminated words
  ``kind pid ppid cwd target makelevel nargs args... nenv env...``; kind ``J`` (an
  ordinary line) carries the helper's fds 0, 1 and 2 (SCM_RIGHTS) with the length;
* ``J``: Gristmill runs the line as a job and answers an int32 status (>= 0 an exit
  code, < 0 minus a signal); a connection that closes first is a cancel;
* ``R`` (a recursive line: make left its jobserver open for it, or it names
  ``$(MAKE)``): the helper runs the shell itself and sends the int32 status at the end.
"""

from __future__ import annotations

import hashlib
import os
import queue
import select
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from .. import paths

SOURCE = Path(__file__).with_name("makeshell.c")

# The same protocol in Python, for a machine without a C compiler.
FALLBACK = r'''
import os, signal, socket, struct, sys
def shell(args):
    sh = os.environ.get("GRISTMILL_MAKE_SHELL") or "/bin/sh"
    try:
        os.execv(sh, [sh, *args])
    except OSError as exc:
        sys.stderr.write(f"gristmill make-shell: cannot run {sh}: {exc.strerror}\n")
        os._exit(127)
def exit_as(status):
    if status < 0:
        signal.signal(-status, signal.SIG_DFL)
        os.kill(os.getpid(), -status)
        os._exit(128 - status)
    os._exit(status & 255)
def level_of(pid):
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            for item in f.read().split(b"\0"):
                if item.startswith(b"MAKELEVEL="):
                    return int(item[10:] or 0)
    except (OSError, ValueError):
        return -1
    return 0
args = sys.argv[1:]
target = os.environ.get("GRISTMILL_TARGET")
if target is None:
    shell(args)
path = os.environ.get("GRISTMILL_MAKE_SOCKET")
if not path:
    shell(args)
ml = os.environ.get("MAKELEVEL")
parent = level_of(os.getppid())
if ml is None or (parent >= 0 and int(ml or 0) != parent + 1):
    shell(args)
recursive = False
auth = os.environ.get("MAKEFLAGS", "").partition("--jobserver-auth=")[2].split(" ")[0]
try:
    r = int(auth.split(",")[0])
    os.fstat(r)
    recursive = True
except (ValueError, OSError):
    pass
import re
make = os.path.basename(os.environ.get("GRISTMILL_MAKE_PATH") or "")
if make and args and re.search(r"(?:^|[\s;&|(`'\"/])" + re.escape(make) + r"(?:$|[\s;&|)`'\"])",
                               args[-1]):
    recursive = True
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect(path)
except OSError as exc:
    sys.stderr.write(f"gristmill make-shell: cannot reach Gristmill at {path}: {exc.strerror}\n")
    os._exit(127)
env = [f"{k}={v}" for k, v in os.environ.items()]
words = ["R" if recursive else "J", str(os.getpid()), str(os.getppid()), os.getcwd(), target,
         str(int(ml or 0)), str(len(args)), *args, str(len(env)), *env]
body = b"".join(os.fsencode(w) + b"\0" for w in words)
head = struct.pack("<I", len(body))
if recursive:
    s.sendall(head + body)
    pid = os.fork()
    if pid == 0:
        s.close()
        shell(args)
    st = os.waitpid(pid, 0)[1]
    status = -os.WTERMSIG(st) if os.WIFSIGNALED(st) else os.WEXITSTATUS(st)
    s.sendall(struct.pack("<i", status))
    exit_as(status)
socket.send_fds(s, [head], [0, 1, 2])
s.sendall(body)
got = []
def on_signal(sig, frame):
    got.append(sig)
    s.close()
    exit_as(-sig)
for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(sig, on_signal)
data = b""
while len(data) < 4:
    chunk = s.recv(4 - len(data))
    if not chunk:
        exit_as(-signal.SIGTERM)
    data += chunk
exit_as(struct.unpack("<i", data)[0])
'''


def _source_key() -> str:
    return hashlib.blake2b(SOURCE.read_bytes(), digest_size=8).hexdigest()


def helper(compiler: str | None = None) -> tuple[str, str]:
    """(the helper's path, "compiled" or "python"): built once per source version."""
    key = _source_key()
    folder = paths.cache_dir()
    built = folder / f"make-shell-{key}"
    if built.exists():
        return str(built), "compiled"
    cc = compiler or os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if cc:
        tmp = folder / f".make-shell-{key}.{os.getpid()}"
        try:
            done = subprocess.run([cc, "-O2", "-o", str(tmp), str(SOURCE)],
                                  capture_output=True, timeout=120)
            if done.returncode == 0:
                os.replace(tmp, built)
                return str(built), "compiled"
        except (OSError, subprocess.SubprocessError):
            pass
        finally:
            tmp.unlink(missing_ok=True)
    script = folder / f"make-shell-{key}.py"
    if not script.exists():
        tmp = folder / f".make-shell-{key}.{os.getpid()}.py"
        python = shutil.which("python3") or sys.executable
        tmp.write_text(f"#!{python} -SE\n{FALLBACK}")
        tmp.chmod(0o755)
        os.replace(tmp, script)
    return str(script), "python"


@dataclass(slots=True)
class Request:
    """One recipe line make asked the helper to run."""
    conn: socket.socket
    kind: str                  # "J" ordinary, "R" recursive
    pid: int                   # the helper's
    make_pid: int              # the make process that runs the target (its parent)
    cwd: str
    target: str
    level: int                 # MAKELEVEL of the line (make's own + 1)
    args: tuple[str, ...]      # .SHELLFLAGS words and the line
    env: dict[str, str]
    fds: tuple[int, ...] = ()  # its stdin, stdout, stderr (J)
    answered: bool = False
    status: int | None = None  # R: the line's status, once the helper sent it
    gone: bool = False         # the connection closed before the answer
    job: int = -1              # the executor's job id while it runs
    arrival: int = 0

    @property
    def line(self) -> str:
        return self.args[-1] if self.args else ""

    def answer(self, status: int) -> None:
        """The line's status to the helper (which exits the same way)."""
        if self.answered:
            return
        self.answered = True
        try:
            self.conn.sendall(struct.pack("<i", status))
        except OSError:
            pass
        self.close_fds()

    def close_fds(self) -> None:
        for fd in self.fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self.fds = ()


def _recv_exact(conn: socket.socket, n: int) -> bytes:
    out = bytearray()
    while len(out) < n:
        chunk = conn.recv(n - len(out))
        if not chunk:
            raise EOFError
        out += chunk
    return bytes(out)


def parse(body: bytes) -> tuple[str, int, int, str, str, int, tuple[str, ...], dict[str, str]]:
    """A request frame's words: (kind, pid, ppid, cwd, target, level, args, env)."""
    words = [os.fsdecode(w) for w in body.split(b"\0")[:-1]]
    kind, pid, ppid, cwd, target, level, nargs = words[:7]
    n = int(nargs)
    args = tuple(words[7:7 + n])
    nenv = int(words[7 + n])
    env = {}
    for item in words[8 + n:8 + n + nenv]:
        k, _, v = item.partition("=")
        env[k] = v
    return kind, int(pid), int(ppid), cwd, target, int(level), args, env


class Server:
    """The socket the helpers connect to. A thread accepts and reads requests, hands
    each to ``requests`` and calls ``wake``; a closed connection of a request not yet
    answered is handed over again with ``gone`` set; a recursive line's status
    likewise, with ``status`` set."""

    def __init__(self, wake) -> None:
        self.folder = tempfile.mkdtemp(prefix="gristmill-make-")
        self.path = os.path.join(self.folder, "s")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(256)
        self.requests: queue.SimpleQueue = queue.SimpleQueue()
        self._wake = wake
        self._stop_r, self._stop_w = os.pipe()
        self._count = 0
        self._thread = threading.Thread(target=self._serve, name="gristmill-make-shell",
                                        daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        poll = select.poll()
        poll.register(self.sock.fileno(), select.POLLIN)
        poll.register(self._stop_r, select.POLLIN)
        open_: dict[int, Request] = {}
        while True:
            for fd, _ in poll.poll():
                if fd == self._stop_r:
                    return
                if fd == self.sock.fileno():
                    try:
                        conn, _ = self.sock.accept()
                    except OSError:
                        continue
                    req = self._read(conn)
                    if req is None:
                        conn.close()
                        continue
                    open_[conn.fileno()] = req
                    poll.register(conn.fileno(), select.POLLIN | select.POLLHUP)
                    self.requests.put(req)
                    self._wake()
                    continue
                req = open_.get(fd)
                if req is None:
                    continue
                data = b""
                try:
                    data = req.conn.recv(4)
                    while data and len(data) < 4:
                        more = req.conn.recv(4 - len(data))
                        if not more:
                            break
                        data += more
                except OSError:
                    data = b""
                if req.kind == "R" and len(data) == 4:
                    req.status = struct.unpack("<i", data)[0]
                else:
                    req.gone = True
                poll.unregister(fd)
                del open_[fd]
                self.requests.put(req)
                self._wake()
                req.conn.close()

    def _read(self, conn: socket.socket) -> Request | None:
        try:
            head, fds, _, _ = socket.recv_fds(conn, 4, 3)
            if len(head) < 4:
                head += _recv_exact(conn, 4 - len(head))
            (size,) = struct.unpack("<I", head)
            kind, pid, ppid, cwd, target, level, args, env = parse(_recv_exact(conn, size))
        except (OSError, EOFError, ValueError, struct.error):
            return None
        for fd in fds:
            os.set_inheritable(fd, False)
        self._count += 1
        return Request(conn, kind, pid, ppid, cwd, target, level, args, env, tuple(fds),
                       arrival=self._count)

    def close(self) -> None:
        try:
            os.write(self._stop_w, b"x")
        except OSError:
            pass
        self._thread.join(2)
        self.sock.close()
        for fd in (self._stop_r, self._stop_w):
            os.close(fd)
        shutil.rmtree(self.folder, ignore_errors=True)
