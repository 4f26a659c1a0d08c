"""Read GNU make's regression scripts (Perl) and pull out their cases.

GNU make's tests live in ``tests/scripts/<category>/<name>``: Perl scripts that
write a makefile and call ``run_make_test(MAKEFILE, ARGS, EXPECTED, [EXIT])`` or,
in the older style, ``open(MAKEFILE, "> $makefile"); print MAKEFILE <<'EOF' …;
run_make_with_options($makefile, ARGS, &get_logfile)``.  Files are made between
calls with ``touch``/``utouch``/``create_file``/``unlink``/``mkdir``.

This is not a Perl interpreter: it understands the forms those scripts use
(string literals of every quoting, heredocs, ``.`` concatenation, scalar
variables, ``$extraENV{…}``, ``if`` on the few driver settings) and gives up on a
case it cannot read, which the harness counts as *unparsed*.  The differential
harness does not need the expected output (it compares make with Gristmill), so
only the makefile, the arguments, the environment and the files made before
each call are read.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

CATEGORIES = ("features", "functions", "variables", "targets", "options", "misc")

# What the test driver would have set (run_make_tests.pl / test_driver.pl), as a
# Linux run of make 4.3's suite sees them.
DRIVER_VARS = {
    "CMD_rmfile": "rm -f",
    "make_name": "make",
    "mkpath": "make",
    "make_path": "make",
    "perl_name": "perl",
    "sh_name": "/bin/sh",
    "port_type": "UNIX",
    "osname": "linux",
    "cwdpath": "#PWD#",
    "workdir": "work",      # the driver runs make from tests/, with the files under work/
    "pathsep": "/",
    "dirsep": "/",
    "parallel_jobs": "1",
    "all_tests": "",
    "vos": "",
    "case_sensitive": "1",
    "scriptsuffix": ".sh",
}
MAIN_MAKEFILE = "Makefile"   # where the harness writes the makefile of run_make_test


class Unparsable(Exception):
    pass


# -- tokens -------------------------------------------------------------------
@dataclass
class Tok:
    kind: str          # str, istr (interpolating), var, word, num, op, list, hash, regex
    value: object
    pos: int = 0


_CLOSE = {"(": ")", "[": "]", "{": "}", "<": ">"}


_HEREDOC = re.compile(r"<<(?:\\([A-Za-z_]\w*)|(['\"]?)([A-Za-z_]\w*)\2)")


class Lexer:
    def __init__(self, text: str):
        self.s = text
        self.i = 0
        self.heredocs: list[tuple[str, bool, list]] = []   # (tag, interpolate, [token to fill])
        self.toks: list[Tok] = []

    def error(self, why: str):
        line = self.s.count("\n", 0, self.i) + 1
        raise Unparsable(f"line {line}: {why}")

    def _newline(self):
        """At a newline: read any pending heredoc bodies."""
        self.i += 1
        while self.heredocs:
            tag, interp, tok = self.heredocs.pop(0)
            lines = []
            while True:
                if self.i >= len(self.s):
                    self.error(f"heredoc {tag} not closed")
                j = self.s.find("\n", self.i)
                if j < 0:
                    j = len(self.s)
                line = self.s[self.i:j]
                self.i = j + 1
                if line == tag:
                    break
                lines.append(line + "\n")
            tok.value = "".join(lines)
            tok.kind = "istr" if interp else "str"

    def _delimited(self, open_ch: str) -> str:
        close = _CLOSE.get(open_ch, open_ch)
        depth = 1
        out = []
        while True:
            if self.i >= len(self.s):
                self.error("string not closed")
            c = self.s[self.i]
            if c == "\\" and self.i + 1 < len(self.s):
                out.append(self.s[self.i:self.i + 2])
                self.i += 2
                continue
            if c == close and open_ch != close:
                depth -= 1
                if depth == 0:
                    self.i += 1
                    return "".join(out)
            elif c == open_ch and open_ch != close:
                depth += 1
            elif c == close:
                self.i += 1
                return "".join(out)
            out.append(c)
            self.i += 1

    def tokens(self) -> list[Tok]:
        s = self.s
        prev_sig = None
        while self.i < len(s):
            c = s[self.i]
            start = self.i
            if c == "\n":
                self._newline()
                continue
            if c in " \t\r":
                self.i += 1
                continue
            if c == "#":
                j = s.find("\n", self.i)
                self.i = len(s) if j < 0 else j
                continue
            if c == "=" and s.startswith("=pod", self.i) or (c == "=" and (self.i == 0 or s[self.i - 1] == "\n")
                                                              and re.match(r"=[a-z]", s[self.i:self.i + 2])):
                j = s.find("\n=cut", self.i)
                self.i = len(s) if j < 0 else s.find("\n", j + 1) + 1 or len(s)
                continue
            if s.startswith("__END__", self.i) or s.startswith("__DATA__", self.i):
                break
            if c == "'":
                self.i += 1
                raw = self._delimited("'")
                tok = Tok("str", re.sub(r"\\([\\'])", r"\1", raw), start)
            elif c == '"':
                self.i += 1
                tok = Tok("istr", self._delimited('"'), start)
            elif c == "`":
                self.i += 1
                self._delimited("`")
                tok = Tok("cmd", None, start)
            elif s.startswith("<<", self.i) and _HEREDOC.match(s, self.i):
                m = _HEREDOC.match(s, self.i)      # <<EOF, <<"EOF" interpolate; <<'EOF', <<\EOF do not
                self.i = m.end()
                tok = Tok("str", None, start)
                self.heredocs.append((m.group(1) or m.group(3), not m.group(1) and m.group(2) != "'", tok))
            elif c == "$" or c == "@" or c == "%":
                m = re.match(r"[$@%](?:\{(\^?\w+)\}|(\^?\w+)|([!?@&/\\;,.<>()|'0-9]))", s[self.i:])
                if not m:
                    self.error(f"variable at {s[self.i:self.i + 10]!r}")
                self.i += m.end()
                tok = Tok("var", c + (m.group(1) or m.group(2) or m.group(3)), start)
            elif c.isdigit() or (c == "-" and s[self.i + 1:self.i + 2].isdigit()
                                 and (prev_sig is None or prev_sig.kind == "op" and prev_sig.value in "(,=")):
                m = re.match(r"-?\d+(\.\d+)?", s[self.i:])
                self.i += m.end()
                tok = Tok("num", m.group(0), start)
            elif c.isalpha() or c == "_" or (c == "&" and re.match(r"&[A-Za-z_]", s[self.i:self.i + 2])):
                m = re.match(r"&?[A-Za-z_][\w:]*", s[self.i:])
                word = m.group(0)
                self.i += m.end()
                nxt = s[self.i:self.i + 1]
                if word in ("q", "qq", "qw") and nxt and not nxt.isalnum() and nxt not in " \t\n,;=)":
                    self.i += 1
                    raw = self._delimited(nxt)
                    if word == "q":
                        tok = Tok("str", re.sub(r"\\([\\" + re.escape(_CLOSE.get(nxt, nxt)) + "])", r"\1", raw), start)
                    elif word == "qq":
                        tok = Tok("istr", raw, start)
                    else:
                        tok = Tok("list", raw.split(), start)
                elif word in ("m", "s", "tr", "y") and nxt and nxt in "/!,{|#":
                    self.i += 1
                    self._delimited(nxt)
                    if word in ("s", "tr", "y"):
                        if nxt in _CLOSE:
                            while s[self.i] in " \t":
                                self.i += 1
                            o = s[self.i]
                            self.i += 1
                            self._delimited(o)
                        else:
                            self._delimited(nxt)
                    m2 = re.match(r"[a-z]*", s[self.i:])
                    self.i += m2.end()
                    tok = Tok("regex", word, start)
                else:
                    tok = Tok("word", word, start)
            elif c == "/" and prev_sig is not None and prev_sig.kind == "op" and prev_sig.value in ("=~", "!~", "(", ","):
                self.i += 1
                self._delimited("/")
                m2 = re.match(r"[a-z]*", s[self.i:])
                self.i += m2.end()
                tok = Tok("regex", None, start)
            else:
                m = re.match(r"=>|=~|!~|==|!=|<=|>=|&&|\|\||\.=|\+=|-=|->|\.\.|[-!<>=(){}\[\],;.+*/?:|\\x]", s[self.i:])
                if not m:
                    self.error(f"unexpected {c!r}")
                self.i += m.end()
                tok = Tok("op", m.group(0), start)
            self.toks.append(tok)
            prev_sig = tok
        if self.heredocs:
            self.error("heredoc not closed")
        return self.toks


# -- the script's state ---------------------------------------------------------
@dataclass
class Case:
    category: str
    script: str
    index: int                 # 1-based among the script's calls
    line: int
    makefile: str | None       # the text make reads (None: a case with no makefile of its own)
    file: str | None           # the -f name, or None (make finds Makefile)
    args: str                  # as the shell reads them after "make "
    env: dict[str, str]
    steps: list[list]          # done before the call, in order
    exit: int | None = None    # the exit status the script expects, where it says
    form: str = "run_make_test"
    unparsed: str | None = None

    @property
    def id(self) -> str:
        return f"{self.category}/{self.script}#{self.index}"

    def as_json(self) -> dict:
        d = {"id": self.id, "category": self.category, "script": self.script, "index": self.index,
             "line": self.line, "form": self.form}
        if self.unparsed:
            d["unparsed"] = self.unparsed
            return d
        d.update({"file": self.file, "args": self.args, "env": self.env, "steps": self.steps,
                  "makefile": self.makefile})
        if self.exit is not None:
            d["exit"] = self.exit
        return d


_ESC = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "e": "\x1b", "a": "\a", "f": "\f"}


class Script:
    def __init__(self, category: str, name: str, text: str):
        self.category, self.name, self.text = category, name, text
        self.vars: dict[str, object] = dict(DRIVER_VARS)
        self.vars["makefile"] = MAIN_MAKEFILE
        self.extra_env: dict[str, str] = {}
        self.arrays: dict[str, list | None] = {}
        self.files: dict[str, str] = {}        # what the script wrote (to name the makefile's text)
        self.handles: dict[str, list] = {}      # open handle -> [name, chunks]
        self.steps: list[list] = []
        self.cases: list[Case] = []
        self.tmpfiles = 0
        self.last_makefile: str | None = None
        self.uses_default_names = bool(re.search(r"['\"/>]\s*(GNUmakefile|makefile|Makefile)['\"]", text))
        self.main = "test.mk" if self.uses_default_names else MAIN_MAKEFILE
        self.vars["makefile"] = self.main

    def line_of(self, pos: int) -> int:
        return self.text.count("\n", 0, pos) + 1

    # -- values -----------------------------------------------------------
    def interpolate(self, raw: str) -> str:
        out = []
        i = 0
        while i < len(raw):
            c = raw[i]
            if c == "\\" and i + 1 < len(raw):
                n = raw[i + 1]
                out.append(_ESC.get(n, n))
                i += 2
                continue
            if c in "$@":
                m = re.match(r"[$@](\{(\w+)\}|(\w+))(\{[^}]*\}|\[[^\]]*\])?", raw[i:])
                if m:
                    name = m.group(2) or m.group(3)
                    if m.group(4):
                        key = m.group(4)[1:-1].strip("'\"")
                        if name == "ENV" and key == "PATH":
                            out.append("#ENVPATH#")
                            i += m.end()
                            continue
                        raise Unparsable(f"interpolates ${name}{m.group(4)}")
                    if c == "@":
                        raise Unparsable(f"interpolates @{name}")
                    if name not in self.vars or self.vars[name] is None:
                        raise Unparsable(f"interpolates unknown ${name}")
                    out.append(str(self.vars[name]))
                    i += m.end()
                    continue
                nxt = raw[i + 1:i + 2]
                if c == "$" and nxt and nxt not in " \t\n\"'" and not (nxt == "\\"):
                    raise Unparsable(f"interpolates Perl's ${nxt}")
            out.append(c)
            i += 1
        return "".join(out)

    def value(self, toks: list[Tok]) -> object:
        """A list of tokens that make one expression: a string, a number, None, a list."""
        if not toks:
            raise Unparsable("empty expression")
        parts = self.split(toks, {","})
        if len(parts) > 1:
            return [self.value(p) for p in parts if p]
        pieces = self.split(toks, {"."})
        vals = [self.term(p) for p in pieces]
        if len(vals) == 1:
            return vals[0]
        return "".join("" if v is None else str(v) for v in vals)

    def term(self, toks: list[Tok]) -> object:
        if len(toks) == 3 and toks[1].value == "x" and toks[2].kind == "num":
            return str(self.term(toks[:1])) * int(toks[2].value)
        if len(toks) >= 2 and toks[0].kind == "op" and toks[0].value == "(" and toks[-1].value == ")":
            return self.value(toks[1:-1])
        if len(toks) >= 2 and toks[0].kind == "op" and toks[0].value == "[" and toks[-1].value == "]":
            v = self.value(toks[1:-1])
            return v if isinstance(v, list) else [v]
        if len(toks) >= 3 and toks[0].kind == "word" and toks[1].value == "(" and toks[-1].value == ")":
            fn = toks[0].value.lstrip("&")
            if fn == "xlate":
                v = str(self.value(toks[2:-1]))
                for a, b in (("\\r", "\r"), ("\\t", "\t"), ("\\f", "\f"), ("\\n", "\n")):
                    v = v.replace(a, b)
                return v
            if fn == "sprintf":
                v = self.flat(self.value(toks[2:-1]))
                return perl_format(v[0], v[1:])
        if len(toks) != 1:
            if toks[0].kind == "word" and toks[0].value.lstrip("&") in ("get_tmpfile",):
                return self.tmpfile()
            if toks[0].kind == "word" and toks[0].value.lstrip("&") in ("get_logfile",):
                return None
            raise Unparsable("expression " + " ".join(str(t.value) for t in toks)[:60])
        t = toks[0]
        if t.kind == "str":
            return t.value
        if t.kind == "istr":
            return self.interpolate(t.value)
        if t.kind == "num":
            return int(float(t.value)) if "." not in t.value else float(t.value)
        if t.kind == "list":
            return list(t.value)
        if t.kind == "word":
            w = t.value.lstrip("&")
            if w == "undef":
                return None
            if w == "get_tmpfile":
                return self.tmpfile()
            if w == "cwd":
                return "#PWD#"
            if w == "get_logfile":
                return None
            raise Unparsable(f"word {w}")
        if t.kind == "var" and t.value.startswith("@") and self.arrays.get(t.value[1:]) is not None:
            return list(self.arrays[t.value[1:]])
        if t.kind == "var" and t.value.startswith("$"):
            name = t.value[1:]
            if name in self.vars:
                return self.vars[name]
            raise Unparsable(f"unknown variable {t.value}")
        raise Unparsable(f"term {t.value!r}")

    def tmpfile(self) -> str:
        self.tmpfiles += 1
        return f"tmpfile{self.tmpfiles}.mk"

    @staticmethod
    def split(toks: list[Tok], seps: set[str]) -> list[list[Tok]]:
        out, cur, depth = [], [], 0
        for t in toks:
            if t.kind == "op" and t.value in "([{":
                depth += 1
            elif t.kind == "op" and t.value in ")]}":
                depth -= 1
            if depth == 0 and t.kind == "op" and (t.value in seps or (t.value == "=>" and "," in seps)):
                out.append(cur)
                cur = []
                continue
            cur.append(t)
        out.append(cur)
        return out

    @staticmethod
    def flat(v) -> list[str]:
        if v is None:
            return []
        if isinstance(v, list):
            out = []
            for x in v:
                out.extend(Script.flat(x))
            return out
        return [str(v)]

    # -- statements ---------------------------------------------------------
    def run(self) -> list[Case]:
        toks = Lexer(self.text).tokens()
        self.block(toks)
        return self.cases

    def block(self, toks: list[Tok]) -> None:
        i = 0
        while i < len(toks):
            t = toks[i]
            if t.kind == "word" and t.value in ("if", "unless", "elsif"):
                i = self.conditional(toks, i)
                continue
            if t.kind == "word" and t.value in ("for", "foreach", "while", "sub", "do", "eval") or \
                    (t.kind == "op" and t.value == "{"):
                j = self.find_block_end(toks, i)
                self.unparsed_in(toks[i:j], f"inside a Perl '{t.value}' block")
                i = j
                continue
            j = i
            depth = 0
            while j < len(toks):
                tj = toks[j]
                if tj.kind == "op" and tj.value in "([{":
                    depth += 1
                elif tj.kind == "op" and tj.value in ")]}":
                    depth -= 1
                elif depth == 0 and tj.kind == "op" and tj.value == ";":
                    break
                j += 1
            stmt = toks[i:j]
            if stmt:
                self.statement(stmt)
            i = j + 1

    @staticmethod
    def closing(toks: list[Tok], j: int, open_: str, close: str) -> int:
        """The index of the ``close`` that matches the first ``open_`` at or after ``j``."""
        depth = 0
        while j < len(toks):
            if toks[j].kind == "op" and toks[j].value == open_:
                depth += 1
            elif toks[j].kind == "op" and toks[j].value == close:
                depth -= 1
                if depth == 0:
                    return j
            j += 1
        return j

    def find_block_end(self, toks: list[Tok], i: int) -> int:
        """Index after the '}' that closes the first '{' at or after i (and a ';' after it)."""
        j = self.closing(toks, i, "{", "}") + 1
        if j < len(toks) and toks[j].kind == "op" and toks[j].value == ";":
            j += 1
        return j

    def conditional(self, toks: list[Tok], i: int) -> int:
        """if/elsif/else: run the branch whose condition is known, else count its cases unparsed."""
        chosen = False
        unknown = False
        while True:
            kw = toks[i].value
            if kw in ("if", "unless", "elsif"):
                j = i + 1                                  # the condition, in parentheses
                k = self.closing(toks, j, "(", ")")
                cond = self.condition(toks[j + 1:k])
                if kw == "unless" and cond is not None:
                    cond = not cond
                end = self.find_block_end(toks, k)
                body = toks[k + 2:end - 1] if toks[end - 1].value == "}" else toks[k + 2:end - 2]
                if cond is None or unknown:
                    unknown = True
                    self.unparsed_in(body, "inside an 'if' on a condition the extractor cannot decide")
                elif cond and not chosen:
                    chosen = True
                    self.block(body)
                i = end
            else:     # else
                end = self.find_block_end(toks, i)
                body = toks[i + 2:end - 1]
                if unknown:
                    self.unparsed_in(body, "inside an 'else' of an undecided 'if'")
                elif not chosen:
                    self.block(body)
                i = end
            if i < len(toks) and toks[i].kind == "word" and toks[i].value in ("elsif", "else"):
                continue
            return i

    def condition(self, toks: list[Tok]) -> bool | None:
        text = " ".join(str(t.value) for t in toks)
        try:
            for part_or in re.split(r"\s\|\|\s", text):
                ok = True
                for part in re.split(r"\s&&\s", part_or):
                    part = part.strip()
                    neg = part.startswith("!")
                    part = part.lstrip("! ").strip()
                    m = re.fullmatch(r"\$(\w+) (eq|ne) (\S+)", part)
                    if m:
                        v = self.vars.get(m.group(1))
                        if v is None:
                            return None
                        lit = self.term(Lexer(m.group(3) if m.group(3)[0] in "'\"" else repr(m.group(3))).tokens())
                        r = (str(v) == lit) == (m.group(2) == "eq")
                    elif re.fullmatch(r"(?:defined )?\$ERR_\w+", part):
                        r = True      # the driver's probes of the system's error messages: all found on Linux
                    elif re.fullmatch(r"\$(\w+)", part) and part[1:] in DRIVER_VARS:
                        r = bool(self.vars.get(part[1:]))
                    elif part in ("0", "1"):
                        r = part == "1"
                    else:
                        return None
                    ok = ok and (r != neg)
                if ok:
                    return True
            return False
        except Unparsable:
            return None

    def unparsed_in(self, toks: list[Tok], why: str) -> None:
        for t in toks:
            if t.kind == "word" and t.value.lstrip("&") in ("run_make_test", "run_make_with_options"):
                self.add_unparsed(t.pos, why, t.value.lstrip("&"))

    def add_unparsed(self, pos: int, why: str, form: str) -> None:
        self.cases.append(Case(self.category, self.name, len(self.cases) + 1, self.line_of(pos),
                               None, None, "", {}, [], form=form, unparsed=why))

    def args_of(self, stmt: list[Tok]) -> list[list[Tok]]:
        rest = stmt[1:]
        if rest and rest[0].kind == "op" and rest[0].value == "(" and rest[-1].value == ")":
            rest = rest[1:-1]
        return [p for p in self.split(rest, {","})]

    def statement(self, stmt: list[Tok]) -> None:
        head = stmt[0]
        name = head.value.lstrip("&") if head.kind == "word" else None
        if name in ("my", "local", "our") and len(stmt) > 1:
            stmt = stmt[1:]
            head = stmt[0]
            name = None
        try:
            if name == "run_make_test":
                self.run_make_test(stmt)
            elif name == "run_make_with_options":
                self.run_make_with_options(stmt)
            elif head.kind == "var" and len(stmt) >= 2 and stmt[1].kind == "op" and stmt[1].value in ("=", ".="):
                if head.value.startswith("$"):
                    var = head.value[1:]
                    try:
                        v = self.value(stmt[2:])
                    except Unparsable:
                        v = None
                    if stmt[1].value == ".=":
                        v = None if v is None or self.vars.get(var) is None else str(self.vars[var]) + str(v)
                    self.vars[var] = v
                elif head.value.startswith("@") and stmt[1].value == "=":
                    try:
                        self.arrays[head.value[1:]] = self.flat(self.value(stmt[2:]))
                    except Unparsable:
                        self.arrays[head.value[1:]] = None
                # hashes: not followed
            elif head.kind == "var" and len(stmt) >= 3 and stmt[1].value == "=~" and stmt[2].kind == "regex" \
                    and stmt[2].value in ("s", "tr", "y"):
                # A substitution changes the variable in a way not followed here: it is unknown from now.
                (self.vars if head.value.startswith("$") else self.arrays)[head.value[1:]] = None
            elif name == "push" and len(stmt) > 2:
                args = self.args_of(stmt)
                arr = args[0][0].value[1:] if args[0] and args[0][0].kind == "var" else None
                if arr is not None and self.arrays.get(arr) is not None:
                    try:
                        self.arrays[arr] = self.arrays[arr] + self.flat([self.value(a) for a in args[1:]])
                    except Unparsable:
                        self.arrays[arr] = None
            elif head.kind == "var" and head.value == "$extraENV" and stmt[1].value == "{":
                ktoks = stmt[2:stmt.index(next(t for t in stmt if t.value == "}"))]
                key = ktoks[0].value if len(ktoks) == 1 and ktoks[0].kind == "word" else self.value(ktoks)
                k = [t.value for t in stmt].index("=")
                self.extra_env[str(key)] = str(self.value(stmt[k + 1:]))
            elif head.kind == "var" and head.value == "@extraENV":
                k = [t.value for t in stmt].index("=")
                keys = self.flat(self.value(stmt[2:k - 1]))
                vals = self.flat(self.value(stmt[k + 1:]))
                self.extra_env.update(dict(zip(keys, vals)))
            elif name == "delete" and len(stmt) > 2 and stmt[1].value == "$extraENV":
                ktoks = stmt[3:-1]
                key = ktoks[0].value if len(ktoks) == 1 and ktoks[0].kind == "word" else self.value(ktoks)
                self.extra_env.pop(str(key), None)
            elif name == "open":
                args = self.args_of(stmt)
                handle = args[0][0].value if args[0] else None
                mode = self.flat(self.value(args[1]))[0]
                if len(args) > 2:
                    mode = mode + " " + self.flat(self.value(args[2]))[0]
                m = re.fullmatch(r"\s*(>>?)\s*(.+?)\s*", mode)
                if not m:
                    return
                fname = m.group(2)
                chunks = [self.files.get(fname, "")] if m.group(1) == ">>" else []
                self.handles[str(handle)] = [fname, chunks]
            elif name == "print" and len(stmt) > 1 and stmt[1].kind == "word" and stmt[1].value in self.handles:
                v = self.value(stmt[2:])
                self.handles[stmt[1].value][1].extend(self.flat(v))
            elif name == "printf" and len(stmt) > 1 and stmt[1].kind == "word" and stmt[1].value in self.handles:
                v = self.flat(self.value(stmt[2:]))
                self.handles[stmt[1].value][1].append(perl_format(v[0], v[1:]))
            elif name == "close":
                args = self.args_of(stmt)
                h = str(args[0][0].value) if args and args[0] else ""
                if h in self.handles:
                    fname, chunks = self.handles.pop(h)
                    self.write(fname, "".join(chunks))
            elif name == "create_file":
                args = self.args_of(stmt)
                fname = self.flat(self.value(args[0]))[0]
                text = "".join(self.flat([self.value(a) for a in args[1:]]))
                self.write(fname, text)
            elif name in ("touch", "utouch", "unlink", "rmfiles", "mkdir", "rmdir", "symlink", "rmdir_r",
                          "remove_directory_tree"):
                args = self.args_of(stmt)
                vals = self.flat([self.value(a) for a in args if a])
                if name == "touch":
                    self.steps.append(["touch", vals])
                elif name == "utouch":
                    self.steps.append(["utouch", int(vals[0]), vals[1:]])
                elif name in ("unlink", "rmfiles"):
                    self.steps.append(["unlink", vals])
                    for v in vals:
                        self.files.pop(v, None)
                elif name == "mkdir":
                    self.steps.append(["mkdir", vals[0]])
                elif name == "symlink":
                    self.steps.append(["symlink", vals[0], vals[1]])
                else:
                    self.steps.append(["rmtree", vals[0]])
            elif name in ("sleep", "select"):
                self.steps.append(["sleep"])
        except Unparsable as e:
            if name in ("run_make_test", "run_make_with_options"):
                self.add_unparsed(head.pos, str(e), name)
            # an unreadable statement that is not a call: its effect is lost
        except (IndexError, ValueError, StopIteration, TypeError) as e:
            if name in ("run_make_test", "run_make_with_options"):
                self.add_unparsed(head.pos, f"unexpected form ({type(e).__name__})", name)

    def write(self, fname: str, text: str) -> None:
        self.files[fname] = text
        self.steps.append(["write", fname, text])

    def options(self, v) -> str:
        """The options as the driver gives them: a string that the shell reads."""
        if v is None:
            return ""
        if isinstance(v, list):
            return shlex.join(str(x) for x in v)
        return str(v)

    def emit(self, pos: int, form: str, makefile: str | None, fname: str | None, args: list[str],
             code) -> None:
        case = Case(self.category, self.name, len(self.cases) + 1, self.line_of(pos), makefile, fname,
                    args, dict(self.extra_env), self.steps, form=form)
        if isinstance(code, int):
            case.exit = code // 256 if code >= 256 else code
        self.cases.append(case)
        self.steps = []
        self.extra_env = {}

    def run_make_test(self, stmt: list[Tok]) -> None:
        args = self.args_of(stmt)
        text = self.value(args[0]) if args and args[0] else None
        opts = self.options(self.value(args[1])) if len(args) > 1 and args[1] else ""
        code = self.value(args[3]) if len(args) > 3 and args[3] else None
        if text is not None:
            text = str(text)
            if text and not text.endswith("\n"):
                text += "\n"
            text = subst_make_string(text, self.main)
            self.write(self.main, text)
            self.last_makefile = text
        elif self.last_makefile is None:
            raise Unparsable("run_make_test(undef) with no makefile before it")
        fname = None if self.main == MAIN_MAKEFILE else self.main
        self.emit(stmt[0].pos, "run_make_test", self.files.get(self.main), fname,
                  " ".join(x for x in (f"-f {shlex.quote(fname)}" if fname else "", opts) if x), code)

    def run_make_with_options(self, stmt: list[Tok]) -> None:
        args = self.args_of(stmt)
        fname = self.value(args[0]) if args and args[0] else None
        opts = self.options(self.value(args[1])) if len(args) > 1 and args[1] else ""
        code = self.value(args[3]) if len(args) > 3 and args[3] else None
        if fname == MAIN_MAKEFILE:
            fname = None
        if fname:
            fname = str(fname)
            if fname not in self.files:
                raise Unparsable(f"runs {fname}, which the extractor did not see written")
        text = self.files.get(fname) if fname else next(
            (self.files[n] for n in ("GNUmakefile", "makefile", MAIN_MAKEFILE) if n in self.files), None)
        self.emit(stmt[0].pos, "run_make_with_options", text, fname or None,
                  " ".join(x for x in (f"-f {shlex.quote(fname)}" if fname else "", opts) if x), code)


def subst_make_string(text: str, makefile: str) -> str:
    """What run_make_tests.pl does to a makefile's text (#PWD# is left for the harness)."""
    return (text.replace("#MAKEFILE#", makefile).replace("#MAKEPATH#", "make")
            .replace("#MAKE#", "make").replace("#PERL#", "perl"))


def perl_format(fmt: str, args: list[str]) -> str:
    try:
        return fmt % tuple(args)
    except (TypeError, ValueError) as e:
        raise Unparsable(f"printf {fmt[:30]!r}: {e}")


# "../" and the name of the folder the test runs in (a path to itself from outside)
_UPDIR = re.compile(r"\$dir = cwd;\s*\n\s*\$dir =~ s,\.\*/\(\[\^/\]\+\)\$,\.\./\$1,;")


# options/symlinks: the folder's own name, and a link to a file through it
_DIRNAME = ("$dirnm = (File::Spec->splitdir($cwddir))[-1];", "$dirnm = '#DIRNAME#';")
_CATFILE = ("File::Spec->catfile(File::Spec->updir(), $dirnm, 'dep')", '"../$dirnm/dep"')


def extract(category: str, name: str, text: str) -> list[Case]:
    text = _UPDIR.sub("$dir = '#UPDIR#';", text).replace(*_DIRNAME).replace(*_CATFILE)
    s = Script(category, name, text)
    try:
        return s.run()
    except Unparsable as e:
        # The whole script could not be read: every call in it is unparsed.
        n = len(re.findall(r"\brun_make_(?:test|with_options)\b", text))
        return [Case(category, name, i + 1, 0, None, None, "", {}, [], unparsed=f"script: {e}")
                for i in range(n)]
