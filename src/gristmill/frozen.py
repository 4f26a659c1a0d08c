"""The entry point of the native app that build.spec freezes with PyInstaller.

One executable serves both uses, as ``gristmill`` does: with no arguments (a
double-click) or a path it opens the app; with a subcommand or an option
(``Gristmill run …``, ``Gristmill --version``) it runs headless. PyInstaller
runs this file as ``__main__``, so it imports absolutely.

Two platform details are settled here, before ``gristmill.cli.main``:

- macOS may pass ``-psn_<n>_<m>`` (a process serial number) to an app started
  from the Finder; it is dropped.
- On Windows the executable is built without a console (``console=False``), so
  that a double-click opens no console window. A headless command started from
  a terminal then attaches to that terminal's console to print there. The
  terminal does not wait for such a program; scripts that need the exit status
  use ``start /wait Gristmill.exe run …`` (or the ``gristmill`` command of a
  pip installation). Output redirected to a file or a pipe works as usual.
"""

from __future__ import annotations

import os
import sys
from typing import Sequence

from gristmill.cli import SUBCOMMANDS
from gristmill.cli import main as cli_main


def clean_argv(argv: Sequence[str]) -> list[str]:
    """The arguments without what the platform adds on its own (macOS ``-psn_…``)."""
    return [a for a in argv if not a.startswith("-psn_")]


def is_headless(argv: Sequence[str]) -> bool:
    """True when ``argv`` (without the program name) asks for a command, not the app."""
    return bool(argv) and (argv[0] in SUBCOMMANDS or argv[0].startswith("-"))


def windows_streams(headless: bool) -> None:
    """Windows, no console of our own: a headless command prints to the terminal it was
    started from, if any; otherwise missing streams go to the null device (never None,
    which would make a stray ``sys.stderr.write`` fail)."""
    if sys.platform != "win32" or None not in (sys.stdout, sys.stderr, sys.stdin):
        return
    import ctypes
    attached = headless and bool(ctypes.windll.kernel32.AttachConsole(-1))   # ATTACH_PARENT_PROCESS
    out = "CONOUT$" if attached else os.devnull
    if sys.stdout is None:
        sys.stdout = open(out, "w", encoding="utf-8", errors="replace")
    if sys.stderr is None:
        sys.stderr = open(out, "w", encoding="utf-8", errors="replace")
    if sys.stdin is None:
        sys.stdin = open("CONIN$" if attached else os.devnull, encoding="utf-8")


def main() -> int:
    argv = clean_argv(sys.argv[1:])
    windows_streams(is_headless(argv))
    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
