"""Let GNU make run the Makefile with a recording shell in place of ``$(SHELL)``.

Make expands every recipe line itself (variables, functions, automatic
variables, target-specific values, ``.ONESHELL``) and hands each command to
``$(SHELL) $(.SHELLFLAGS) COMMAND``. During a recording pass that shell is a
tiny script which writes down the target, its argv and its environment, and
runs nothing. With ``-B`` make "builds" every goal and its prerequisites, in
its own order, so each target's commands are exactly the ones make would run.

The script is installed by a makefile read *after* the user's
(``-f Makefile -f post.mk``), so everything the Makefile does while it is read
(``$(shell ...)``, ``!=``) uses the real shell, as in a normal run. A
``$(shell ...)`` expanded later (in a recipe) reaches the script with no
target set, and the script hands it to the real shell.

Whether make echoed a command (no ``@``, no ``.SILENT``, no ``-s``) shows on
its stdout: the script prints a marker after each command, and a command was
echoed when make's output just before the marker ends with it.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from .database import Database, extract_database, parse_database
from .gnumake import GnuMake, MakeRun, run_make

_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

_SCRIPT = """#!/bin/sh
# Gristmill's recording shell: GNU make runs it instead of $(SHELL) while
# Gristmill reads a Makefile. It runs no recipe.
if [ -z "${{GRISTMILL_TARGET-}}" ]; then
  real=/bin/sh
  read -r real < {real} 2>/dev/null
  exec $real "$@"
fi
{{
  printf 'GMREC\\0%s\\0%s\\0' "$GRISTMILL_TARGET" "$#"
  printf '%s\\0' "$@"
  # The environment costs a process: once, unless targets may each have their own.
  if [ -e {env_each} ] || [ ! -e {env_once} ]; then env -0; : > {env_once}; fi
  printf '\\0'
}} >> {records}
printf '\\036{nonce}\\036\\n'
exit 0
"""

_POST_MK = """\
$(file >{real},$(SHELL))
override SHELL := {script}
export GRISTMILL_TARGET = $@
.PRECIOUS: %
.NOTPARALLEL:
{post}: ;
"""


@dataclass(frozen=True, slots=True)
class Record:
    """One command make handed to the shell."""

    target: str
    argv: tuple[str, ...]          # (shell, *flags, command) as make built it
    env: dict[str, str] = field(hash=False, compare=False)
    echoed: bool = True            # make printed it before running it (no "@")

    @property
    def command(self) -> str:
        return self.argv[-1]

    @property
    def flags(self) -> tuple[str, ...]:
        return self.argv[1:-1]


@dataclass(slots=True)
class Recording:
    """One recording pass: make's run, its data base and the commands."""

    run: MakeRun
    db: Database
    records: list[Record]
    real_shell: str
    before_db: str                 # make's stdout before the data base (echoes, $(info))

    def by_target(self) -> dict[str, list[Record]]:
        out: dict[str, list[Record]] = {}
        for r in self.records:
            out.setdefault(r.target, []).append(r)
        return out


class Recorder:
    """A recording shell and its post-makefile in a private temp dir."""

    def __init__(self, tmp: Path):
        self.dir = tmp
        self.script = tmp / "sh"
        self.post = tmp / "post.mk"
        self.real = tmp / "real-shell"
        self.records = tmp / "records"
        self.nonce = "gristmill-" + os.urandom(8).hex()
        q = shlex.quote
        self.env_each = tmp / "env-each"
        self.env_once = tmp / "env-once"
        self.script.write_text(_SCRIPT.format(real=q(str(self.real)), records=q(str(self.records)),
                                              nonce=self.nonce, env_each=q(str(self.env_each)),
                                              env_once=q(str(self.env_once))))
        self.script.chmod(0o755)
        self.shell_scopes([], [])

    def env_per_target(self, yes: bool) -> None:
        """Record each command's environment, or only the first (when no target can differ)."""
        if yes:
            self.env_each.touch()
        else:
            self.env_each.unlink(missing_ok=True)

    def shell_scopes(self, targets: list[str], patterns: list[str]) -> None:
        """Also take over SHELL where the Makefile sets it per target or per pattern.

        Make looks a variable up in the target's own set first, so a global
        override does not reach ``foo: SHELL = /bin/bash``: without these lines
        make would run such recipes for real while Gristmill reads.
        """
        script = _mk_escape(str(self.script))
        lines = [_POST_MK.format(real=_mk_escape(str(self.real)), script=script,
                                 post=_mk_escape(str(self.post)))]
        for scope in [*(_mk_target(t) for t in targets), *(_mk_target(p, pattern=True) for p in patterns)]:
            lines.append(f"{scope}: override SHELL := {script}\n")
        self.post.write_text("".join(lines))

    @property
    def marker(self) -> str:
        return f"\x1e{self.nonce}\x1e\n"

    def record(self, make: GnuMake, folder: Path, makefile: str, variables: list[str],
               goals: list[str], env: dict[str, str], extra: list[str] = ()) -> Recording:
        self.records.unlink(missing_ok=True)
        self.env_once.unlink(missing_ok=True)
        self.real.unlink(missing_ok=True)
        args = ["-f", makefile, "-f", str(self.post), "-p", "-B", "-k", *extra, *variables, "--", *goals]
        run = run_make(make, folder, args, env)
        before, db_text = extract_database(run.stdout)
        db = parse_database(db_text)
        records = self._read_records(before)
        real = self.real.read_text().strip() if self.real.exists() else "/bin/sh"
        return Recording(run, db, records, real or "/bin/sh", before)

    def _read_records(self, stdout: str) -> list[Record]:
        if not self.records.exists():
            return []
        raw = self.records.read_bytes().split(b"\0")
        chunks = stdout.split(self.marker)
        out: list[Record] = []
        last_env: dict[str, str] = {}
        i = 0
        k = 0
        while i < len(raw) and raw[i] == b"GMREC":
            target = _dec(raw[i + 1])
            argc = int(raw[i + 2])
            argv = [str(self.script)] + [_dec(a) for a in raw[i + 3:i + 3 + argc]]
            j = i + 3 + argc
            env: dict[str, str] = {}
            while j < len(raw) and raw[j] != b"":
                key, _, value = _dec(raw[j]).partition("=")
                env[key] = value
                j += 1
            if env:
                last_env = env
            else:
                env = last_env      # the same as the first command's
            i = j + 1
            echoed = k < len(chunks) and chunks[k].endswith(argv[-1] + "\n")
            out.append(Record(target, tuple(argv), env, echoed))
            k += 1
        return out


_DEBUG_RE = re.compile(
    r"^ *(?:Must remake target '.*'\.|Successfully remade target file '.*'\.|"
    r"Failed to remake target file '.*'\.|File '.*' does not exist\.|Target '.*' not remade.*|"
    r"Prerequisite '.*' is newer than target '.*'\.|Updating (?:makefiles|goal targets)\.\.\.\.|"
    r"Reading makefiles\.\.\.)$")
_MUST_RE = re.compile(r"^ *Must remake target '(.*)'\.$")


def printed_while_reading(before: str) -> list[str]:
    """What make printed while it read the makefiles (``$(info ...)``, ``$(warning`` goes to stderr).

    ``before`` is a pass run with ``--debug=m``: the text between the last
    "Reading makefiles..." and "Updating makefiles....".
    """
    start = before.rfind("Reading makefiles...\n")
    if start < 0:
        return []
    start += len("Reading makefiles...\n")
    end = before.find("Updating makefiles....\n", start)
    text = before[start:end if end >= 0 else len(before)].rstrip("\n")
    return text.split("\n") if text else []


def printed_by_recipes(before: str, marker: str, records: list[Record]) -> dict[str, list[str]]:
    """Per target, what make printed as it expanded the recipe (``$(info ...)`` in a recipe).

    Make expands all of a recipe's lines before it runs the first; with
    ``--debug=m`` the expansion's output lies between "Must remake target 'T'."
    and the first command handed to the shell (our marker, after make's echo of
    that command), or the next line of make's own when no command runs.
    """
    goals_at = max(before.find("Updating goal targets....\n"), 0)
    k = before[:goals_at].count(marker)     # the makefiles' remakes came first
    out: dict[str, list[str]] = {}
    target: str | None = None
    lines: list[str] = []
    bare = marker.rstrip("\n")

    def close(rec: Record | None) -> None:
        nonlocal target, lines
        if target is not None:
            text = "".join(lines)
            if rec is not None and rec.target == target and rec.echoed \
                    and text.endswith(rec.command + "\n"):
                text = text[:-len(rec.command) - 1]
            if text:
                out.setdefault(target, []).extend(text.rstrip("\n").split("\n"))
        target, lines = None, []

    # Split at newlines only: str.splitlines() also splits at our marker's \x1e.
    for line in re.findall(r"[^\n]*\n|[^\n]+$", before[goals_at:]):
        if line.rstrip("\n") == bare or line.endswith(marker):
            close(records[k] if k < len(records) else None)
            k += 1
            continue
        m = _MUST_RE.match(line.rstrip("\n"))
        if m:
            close(None)
            target = m.group(1)
            continue
        if _DEBUG_RE.match(line.rstrip("\n")):
            close(None)
            continue
        if target is not None:
            lines.append(line)
    close(None)
    return out


def split_by_rule(before: str, marker: str, records: list[Record],
                  rules: dict[str, int]) -> dict[str, list[list[Record]]]:
    """The commands of each double-colon rule of the targets in ``rules`` (target ->
    how many ``::`` rules it has), in rule order.

    Make treats each ``::`` rule as a target of its own: with ``--debug=m`` it says
    "Must remake target 'T'." once per rule, in order, before that rule's commands.
    A target whose count does not match (a rule make did not consider) is left out:
    its commands stay together.
    """
    if not rules:
        return {}
    goals_at = max(before.find("Updating goal targets....\n"), 0)
    k = k0 = before[:goals_at].count(marker)
    seen: dict[str, int] = {}
    rule_of: list[int] = []
    bare = marker.rstrip("\n")
    for line in re.findall(r"[^\n]*\n|[^\n]+$", before[goals_at:]):
        if line.rstrip("\n") == bare or line.endswith(marker):
            if k < len(records):
                rule_of.append(seen.get(records[k].target, 0) - 1)
            k += 1
            continue
        m = _MUST_RE.match(line.rstrip("\n"))
        if m and m.group(1) in rules:
            seen[m.group(1)] = seen.get(m.group(1), 0) + 1
    out: dict[str, list[list[Record]]] = {}
    skip = {t for t, n in rules.items() if seen.get(t, 0) != n}
    for rec, rule in zip(records[k0:], rule_of):
        if rec.target in rules and rec.target not in skip and rule >= 0:
            out.setdefault(rec.target, [[] for _ in range(rules[rec.target])])[rule].append(rec)
    for t in rules:
        if t not in skip and t not in out and seen.get(t):
            out[t] = [[] for _ in range(rules[t])]
    return out


def _mk_target(name: str, pattern: bool = False) -> str:
    """A file name (or pattern) written so make reads it back as that one name.

    Raises ValueError for a name no makefile line can spell safely.
    """
    if any(c in name for c in "\\=;\n\t") or (not pattern and "%" in name) or not name:
        raise ValueError(name)
    return name.replace("$", "$$").replace(" ", "\\ ").replace(":", "\\:").replace("#", "\\#")


def _dec(b: bytes) -> str:
    return b.decode("utf-8", "surrogateescape")


def _mk_escape(path: str) -> str:
    """A path safe to write in a makefile (temp dirs have no odd characters, but be sure)."""
    return path.replace("$", "$$").replace(" ", "\\ ").replace("#", "\\#")


def clean_env(recorded: dict[str, str], base: dict[str, str], user_vars: list[str],
              commands: tuple[str, ...] = (), sub_make: bool = True,
              ) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    """What make put in a recipe's environment beyond ours, minus the recording machinery.

    Returns (variables to set, variables make removed: ``unexport``). Make also
    exports the command line's variables (and MAKEFLAGS) to every recipe; they
    only matter to a sub-make or to a command that reads them, so other tasks
    leave them out, and ``gristmill run install DESTDIR=...`` does not change
    the definition of every task.
    """
    cmdline = {v.split("=", 1)[0] for v in user_vars}
    text = "\n".join(commands)
    out: dict[str, str] = {}
    for key, value in recorded.items():
        if key in ("GRISTMILL_TARGET", "_", "PWD", "OLDPWD", "MAKEFLAGS", "MFLAGS", "MAKEOVERRIDES"):
            continue
        if key in cmdline and not sub_make and not _reads_var(text, key):
            continue
        if base.get(key) != value:
            out[key] = value
    unset = tuple(sorted(k for k in base if k not in recorded and _NAME_RE.fullmatch(k)
                         and k not in ("LC_MESSAGES", "PWD", "OLDPWD", "_")))
    if sub_make:
        makeflags, mflags = makeflags_for(recorded.get("MAKEFLAGS", ""), user_vars)
        out["MAKEFLAGS"] = makeflags
        out["MFLAGS"] = mflags
        if user_vars:
            out["MAKEOVERRIDES"] = "${-*-command-variables-*-}"
    return tuple(sorted(out.items())), unset


def _reads_var(text: str, name: str) -> bool:
    return re.search(r"\$\{?" + re.escape(name) + r"(?![A-Za-z0-9_])", text) is not None


def makeflags_for(recorded: str, user_vars: list[str]) -> tuple[str, str]:
    """MAKEFLAGS/MFLAGS as make passes them in a normal run: the recording's, minus -B and -k.

    The flags part holds the Makefile's own additions (``MAKEFLAGS += -r``);
    our ``-B -k -p`` are removed; the variables part is the user's.
    """
    flags, _, _ = recorded.partition(" -- ")
    if recorded.startswith("-- "):
        flags = ""
    words = flags.split()
    if words and not words[0].startswith("-"):
        letters = "".join(c for c in words[0] if c not in "Bkp")
        words = ([letters] if letters else []) + words[1:]
    words = [w for w in words if w not in ("-B", "-k", "-p") and not w.startswith("--debug")]
    flag_text = " ".join(words)
    letters_first = words and not words[0].startswith("-")
    mflags = (("-" + flag_text) if letters_first else flag_text).strip()
    if user_vars:
        escaped = " ".join(_escape_override(v) for v in reversed(user_vars))
        makeflags = f"{flag_text} -- {escaped}"
    else:
        makeflags = flag_text
    return makeflags, mflags


def _escape_override(assignment: str) -> str:
    return assignment.replace("\\", "\\\\").replace(" ", "\\ ").replace("\t", "\\\t")
