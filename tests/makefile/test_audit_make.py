"""The dependency audit on Makefiles: the missing header prerequisite, found by tracing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from make_harness import EXAMPLE_C, needs_cc, needs_make

pytestmark = [needs_make, needs_cc,
              pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")]

MAKEFILE = """\
# A program whose object forgets the header its source includes.
CFLAGS = -O0

prog: main.o util.o
\tcc -o prog main.o util.o

main.o: main.c
\tcc $(CFLAGS) -c -o main.o main.c

util.o: util.c defs.h
\tcc $(CFLAGS) -c -o util.o util.c
"""


def gristmill(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    return subprocess.run([sys.executable, "-m", "gristmill", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def forgetful(tmp_path: Path) -> Path:
    root = tmp_path / "prog"
    root.mkdir()
    (root / "Makefile").write_text(MAKEFILE)
    (root / "defs.h").write_text("#define ANSWER 42\n")
    (root / "main.c").write_text('#include "defs.h"\nint util(void);\n'
                                 'int main(void) { return util() == ANSWER ? 0 : 1; }\n')
    (root / "util.c").write_text('#include "defs.h"\nint util(void) { return ANSWER; }\n')
    return root


def test_audit_names_the_missing_header_the_rule_and_the_line_to_add(tmp_path):
    root = forgetful(tmp_path)
    p = gristmill("run", "--audit", cwd=root)
    assert p.returncode == 0, p.stdout + p.stderr
    out = p.stdout
    block = out[out.index("audit: main.o"):]
    assert f"(declared at {root / 'Makefile'}:7)" in block.splitlines()[0]
    assert "read defs.h, which it does not declare" in block
    assert "add the line: main.o: defs.h" in block
    assert "audit: util.o" not in out and "audit: prog" not in out   # those declare theirs
    # The finding is true: touch the header and make (and so Gristmill) rebuild only util.o.
    (root / "defs.h").write_text("#define ANSWER 43\n")
    again = gristmill("run", cwd=root)
    assert "-c -o util.o util.c" in again.stdout and "main.c" not in again.stdout


def test_the_hint_audits_one_rule_without_the_flag(tmp_path):
    root = forgetful(tmp_path)
    text = MAKEFILE.replace("main.o: main.c", "# gristmill: audit=true\nmain.o: main.c")
    (root / "Makefile").write_text(text)
    p = gristmill("run", cwd=root)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "add the line: main.o: defs.h" in p.stdout
    (root / "Makefile").write_text(text.replace("audit=true", "audit=maybe"))
    bad = gristmill("run", cwd=root)
    assert bad.returncode == 2
    assert f"{root / 'Makefile'}:7:14: bad gristmill hint 'audit=maybe'" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_the_bundled_c_example_audits_clean(tmp_path):
    """A compile, an archive (ar's temporary renamed into place), a link and mkdir -p,
    all traced: a complete Makefile has nothing to report."""
    root = Path(shutil.copytree(EXAMPLE_C, tmp_path / "make-c"))
    p = gristmill("run", "--audit", "-j2", cwd=root)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "every file each read and wrote is declared" in p.stdout, p.stdout
    assert "finding" not in p.stdout
    assert subprocess.run([root / "bin" / "shapes"], capture_output=True).returncode == 0
