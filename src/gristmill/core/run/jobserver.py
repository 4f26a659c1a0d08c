"""GNU make's jobserver, on both sides: Gristmill serves tokens to the sub-makes its
tasks start, and takes its own slots from a parent make's jobserver when it runs
inside ``make -jN``.

The protocol (GNU make's manual, "POSIX Jobserver Interaction"): a pipe holds one
byte, a *token*, for each job beyond the first that may run; every process that
runs jobs has one implicit slot of its own and must read a token from the pipe
before it runs a second job at once, and write the same byte back when one of
those jobs ends. make 4.2 and later find the pipe in ``MAKEFLAGS`` as
``--jobserver-auth=R,W`` (descriptors they inherited); make 4.4 may also give
``--jobserver-auth=fifo:PATH``.

Gristmill itself counts as one such process: with ``-j4`` and one task running
``$(MAKE) -C sub``, the sub-make gets the three tokens Gristmill is not using,
and everything together never runs more than four jobs. Gristmill reads its own
tokens through a descriptor of its own (non-blocking), so the descriptors the
sub-makes inherit stay blocking, as make expects.
"""

from __future__ import annotations

import os
import re
import stat

_AUTH = re.compile(r"--jobserver-(?:auth|fds)=(?:fifo:(\S+)|(\d+),(\d+))")


class Jobserver:
    """A pipe of tokens: Gristmill's own (``serve``) or a parent make's (``join``)."""

    def __init__(self, read_fd: int, write_fd: int, auth: str, owned: bool, jobs: int | None):
        self.read_fd = read_fd          # the descriptors children inherit
        self.write_fd = write_fd
        self.auth = auth                # what goes after --jobserver-auth=
        self.owned = owned
        self.jobs = jobs                # -j N of the make that owns the pipe, if known
        self._reader = _own_reader(read_fd)
        self._held: list[bytes] = []    # the tokens taken, to give back the same bytes

    # -- making one ------------------------------------------------------------
    @classmethod
    def serve(cls, jobs: int) -> "Jobserver":
        """A new jobserver for ``jobs`` jobs at once: ``jobs - 1`` tokens in a pipe."""
        r, w = os.pipe()
        os.set_inheritable(r, True)
        os.set_inheritable(w, True)
        if jobs > 1:
            os.write(w, b"+" * (jobs - 1))
        return cls(r, w, f"{r},{w}", owned=True, jobs=jobs)

    @classmethod
    def join(cls, makeflags: str) -> "Jobserver | None":
        """The parent make's jobserver named in ``makeflags``, if it is really there (a
        recipe of ``make -jN`` that runs ``gristmill run``); None otherwise."""
        m = _AUTH.search(makeflags)
        if m is None:
            return None
        jobs = _jobs_of(makeflags)
        try:
            if m.group(1):
                path = m.group(1)
                fd = os.open(path, os.O_RDWR)
                if not stat.S_ISFIFO(os.fstat(fd).st_mode):
                    os.close(fd)
                    return None
                return cls(fd, fd, f"fifo:{path}", owned=False, jobs=jobs)
            r, w = int(m.group(2)), int(m.group(3))
            if r < 0 or w < 0:
                return None     # make says "no jobserver here" with negative descriptors
            for fd in (r, w):
                if not stat.S_ISFIFO(os.fstat(fd).st_mode):
                    return None
        except (OSError, ValueError):
            return None          # the parent gave the fds to its sub-makes only: not to us
        return cls(r, w, f"{r},{w}", owned=False, jobs=jobs)

    # -- tokens ----------------------------------------------------------------
    @property
    def held(self) -> int:
        return len(self._held)

    def admit(self, running: int, wanted: int) -> int:
        """How many of ``wanted`` more jobs may start now, beside ``running`` of ours:
        the implicit slot, the tokens held, and whatever tokens can be read now."""
        free = 1 + len(self._held) - running
        if free >= wanted:
            return wanted
        try:
            got = os.read(self._reader, wanted - max(free, 0))
        except (BlockingIOError, InterruptedError):
            got = b""
        except OSError:
            got = b""
        self._held.extend(got[i:i + 1] for i in range(len(got)))
        return max(free, 0) + len(got)

    def settle(self, running: int) -> None:
        """Give back the tokens ``running`` jobs no longer need (one runs on the implicit
        slot)."""
        keep = max(0, running - 1)
        while len(self._held) > keep:
            token = self._held.pop()
            try:
                os.write(self.write_fd, token)
            except OSError:
                return

    # -- what a sub-make is told ---------------------------------------------
    def makeflags(self, makeflags: str) -> str:
        """``makeflags`` with this jobserver in it, as make 4.3 writes it for a recipe
        (`` -j4 --jobserver-auth=R,W``, before the `` -- VAR=value`` part)."""
        flags, sep, variables = makeflags.partition(" -- ")
        if makeflags.startswith("-- "):
            flags, sep, variables = "", "-- ", makeflags[3:]
        words = [w for w in flags.split()
                 if not w.startswith(("-j", "--jobs", "--jobserver-"))]
        words += [f"-j{self.jobs}" if self.jobs else "-j", f"--jobserver-auth={self.auth}"]
        text = " ".join(words)
        if words[0].startswith("-"):
            text = " " + text           # no single-letter flags: make starts with a space
        return f"{text} -- {variables}" if sep else text

    @property
    def fds(self) -> tuple[int, ...]:
        return (self.read_fd,) if self.read_fd == self.write_fd else (self.read_fd, self.write_fd)

    def close(self) -> None:
        """The end of the run: every token back (a parent's), the pipe closed (ours)."""
        self.settle(0)
        fds = {self._reader}
        if self.owned or self.auth.startswith("fifo:"):
            fds |= set(self.fds)
        for fd in fds:
            try:
                os.close(fd)
            except OSError:
                pass


def _own_reader(read_fd: int) -> int:
    """A non-blocking descriptor of the same pipe that is Gristmill's alone: setting
    O_NONBLOCK on ``read_fd`` itself would change it for every sub-make that shares it."""
    try:
        return os.open(f"/proc/self/fd/{read_fd}", os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        fd = os.dup(read_fd)
        os.set_blocking(fd, False)      # shares the flag: the best this system allows
        return fd


def with_make_letter(makeflags: str, letter: str) -> str:
    """MAKEFLAGS with a single-letter flag (``k``, ``s``, ``n``) in its first word, as
    make writes them: ``k -j4 ...``, ``ks``, or the letter alone."""
    if makeflags and makeflags[0] not in " -":
        first = makeflags.split(" ", 1)[0]
        return makeflags if letter in first else letter + makeflags
    if not makeflags or makeflags[0] == " ":
        return letter + makeflags
    return f"{letter} {makeflags}"


def _jobs_of(makeflags: str) -> int | None:
    m = re.search(r"(?:^|\s)-j(\d+)", makeflags)
    return int(m.group(1)) if m else None
