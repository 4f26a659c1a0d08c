"""Files for the loader: glob patterns, what exists on disk, and path normalising.

Paths here are POSIX paths relative to the workflow root (``..`` allowed).
A glob is compiled once to a regular expression (``*`` and ``?`` stay inside
one folder, ``**`` crosses folders, hidden names match only a pattern that
starts with ``.``, as ``glob.glob`` does) and matched against the sorted
declared outputs from its literal prefix on, so a pattern costs the outputs
it could match, not all of them.
"""

from __future__ import annotations

import bisect
import os
import posixpath
import re
from typing import Iterable

from .locate import DIRECT, Probe

_MAGIC = re.compile(r"[*?[]")


def has_magic(path: str) -> bool:
    return _MAGIC.search(path) is not None


# -- paths --------------------------------------------------------------------------

def join_root(folder: str, path: str, root: str) -> str:
    """``path`` as written in a file whose folder is ``folder`` (root-relative, ``""`` for
    the root) -> a normalised root-relative POSIX path. ``root`` is absolute."""
    if path.startswith("/"):
        path = os.path.relpath(path, root).replace(os.sep, "/")
    elif folder:
        path = folder + "/" + path
    if ("/." in path or "//" in path or path.startswith(".") or path.endswith("/")):
        path = posixpath.normpath(path)
        if path.startswith("//"):
            path = "/" + path.lstrip("/")
    return path


def relative_to(path: str, folder: str) -> str:
    """A root-relative path as seen from root-relative ``folder`` (``""`` is the root)."""
    if not folder:
        return path
    if path.startswith(folder) and path[len(folder):len(folder) + 1] == "/":
        return path[len(folder) + 1:]
    if path == folder:
        return "."
    return posixpath.relpath(path, folder)


# -- globs --------------------------------------------------------------------------

class BadGlob(ValueError):
    pass


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A compiled regex matching the paths ``pattern`` matches; BadGlob if it cannot be."""
    segs = pattern.split("/")
    out: list[str] = []
    last = len(segs) - 1
    for k, seg in enumerate(segs):
        if seg == "**":
            if k == last:
                out.append(r"(?:(?!\.)[^/]+(?:/(?!\.)[^/]+)*)?")
            else:
                out.append(r"(?:(?!\.)[^/]+/)*")
            continue
        out.append(_segment(seg))
        if k != last:
            out.append("/")
    try:
        return re.compile("".join(out), re.DOTALL)
    except re.error as exc:
        raise BadGlob(f"bad glob pattern {pattern!r}: {exc}") from None


def _segment(seg: str) -> str:
    if not has_magic(seg):
        return re.escape(seg)
    res = [] if seg.startswith(".") else [r"(?!\.)"]
    i, n = 0, len(seg)
    while i < n:
        c = seg[i]
        i += 1
        if c == "*":
            res.append("[^/]*")
        elif c == "?":
            res.append("[^/]")
        elif c == "[":
            j = i
            if j < n and seg[j] == "!":
                j += 1
            if j < n and seg[j] == "]":
                j += 1
            while j < n and seg[j] != "]":
                j += 1
            if j >= n:
                res.append(r"\[")
                continue
            stuff = seg[i:j]
            i = j + 1
            stuff = stuff.replace("\\", r"\\").replace("[", r"\[")
            stuff = re.sub(r"([&~|])", r"\\\1", stuff)
            if stuff.startswith("!"):
                stuff = "^/" + stuff[1:]
            elif stuff.startswith("^"):
                stuff = "\\" + stuff
            res.append(f"[{stuff}]")
        else:
            res.append(re.escape(c))
    return "".join(res)


def literal_prefix(pattern: str) -> str:
    """The text every match of ``pattern`` starts with."""
    m = _MAGIC.search(pattern)
    return pattern if m is None else pattern[:m.start()]


class OutputIndex:
    """The declared outputs, sorted, for glob matching by prefix."""

    def __init__(self, outputs: Iterable[str]):
        self._sorted = sorted(outputs)

    def match(self, regex: re.Pattern[str], prefix: str) -> list[str]:
        items = self._sorted
        i = bisect.bisect_left(items, prefix)
        out = []
        full = regex.fullmatch
        n = len(items)
        while i < n:
            p = items[i]
            if not p.startswith(prefix):
                break
            if full(p):
                out.append(p)
            i += 1
        return out


# -- the disk -----------------------------------------------------------------------

class Disk:
    """What exists under ``root``; listings and answers are cached for one load."""

    _LIST_AFTER = 8   # list a folder once it has been asked about this many times

    def __init__(self, root: str, probe: Probe = DIRECT):
        self.root = root
        self.probe = probe
        self._exists: dict[str, bool] = {}
        self._asked: dict[str, int] = {}
        self._listing: dict[str, frozenset[str] | None] = {}
        self._sorted: dict[str, list[str]] = {}        # folder -> its names, sorted
        self._listed: dict[str, list[str]] = {}        # folder -> its names as listed
        self._globs: dict[str, tuple[str, ...]] = {}   # pattern -> its matches
        self._keys: dict[str, tuple[int, int] | None] = {}   # absolute folder -> (dev, inode)
        self.skipped_links: dict[str, str] = {}        # link (root-relative) -> its target

    def known(self, paths: Iterable[str]) -> None:
        """Record paths known to exist (from a glob)."""
        self._exists.update(dict.fromkeys(paths, True))

    def exists(self, path: str) -> bool:
        r = self._exists.get(path)
        if r is not None:
            return r
        folder, _, base = path.rpartition("/")
        names = self._listing.get(folder)
        if names is None and folder not in self._listing:
            asked = self._asked.get(folder, 0) + 1
            self._asked[folder] = asked
            if asked >= self._LIST_AFTER:
                names = self._list(folder)
        if names is not None and base in names:
            r = True
        else:
            try:
                r = self.probe.exists(os.path.join(self.root, path))
            except (OSError, ValueError):
                r = False
        self._exists[path] = r
        return r

    def _list(self, folder: str) -> frozenset[str] | None:
        try:
            listed = self.probe.listdir(os.path.join(self.root, folder) if folder else self.root)
        except (OSError, ValueError):
            self._listing[folder] = None
            return None
        names = self._listing[folder] = frozenset(listed)
        self._listed[folder] = listed       # sorted when a glob needs it (DiskLog's are)
        return names

    def glob(self, pattern: str) -> tuple[str, ...]:
        """Root-relative paths on disk matching a root-relative pattern, sorted.

        Like ``glob.glob(pattern, recursive=True)`` (hidden names match only a pattern
        segment that starts with ``.``), one folder listing per folder; a pattern asked
        again (two fan-outs over the same files) is answered from the first time.
        """
        found = self._globs.get(pattern)
        if found is None:
            found = self._globs[pattern] = tuple(self._glob(pattern))
        return found

    def _glob(self, pattern: str) -> list[str]:
        if "\0" in pattern or not pattern:
            return []
        segs = pattern.split("/")
        if segs[0] == "":                      # cannot happen for root-relative paths
            return []
        current = [""]                         # matched folders so far ("" is the root)
        last = len(segs) - 1
        try:
            for k, seg in enumerate(segs):
                if seg == "**":
                    nxt: list[str] = []
                    for d in current:
                        if k != last:
                            nxt.append(d)
                        nxt.extend(self._walk(d, dirs_only=k != last))
                    current = nxt
                elif not has_magic(seg):
                    nxt = []
                    for d in current:
                        p = d + "/" + seg if d else seg
                        full = os.path.join(self.root, p)
                        if self.probe.isdir(full) if k != last else self.probe.lexists(full):
                            nxt.append(p)
                    current = nxt
                else:
                    match = re.compile(_segment(seg), re.DOTALL).fullmatch
                    nxt = []
                    for d in current:
                        names = list(filter(match, self._sorted_names(d)))
                        prefix = d + "/" if d else ""
                        if k == last:
                            nxt.extend(prefix + n for n in names)
                        else:
                            base = os.path.join(self.root, d) if d else self.root
                            nxt.extend(prefix + n for n in names
                                       if self.probe.isdir(os.path.join(base, n)))
                    current = nxt
                if not current:
                    return []
        except (OSError, ValueError, re.error):
            return []
        if "**" in segs or any("/." in p or p[:1] == "." for p in current):
            out = sorted(set(posixpath.normpath(p) if ("/." in p or p.startswith(".")) else p
                             for p in current if p))
        else:
            # No "**" and nothing to normalise: no path is found twice, and the folders'
            # names were walked in order (so the sort below is one linear pass).
            out = sorted(current)
        self.known(out)
        return out

    def _sorted_names(self, folder: str) -> list[str]:
        names = self._sorted.get(folder)
        if names is None:
            if self._listing.get(folder) is None:
                self._list(folder)
            names = self._sorted[folder] = sorted(self._listed.get(folder, ()))
        return names

    def _walk(self, folder: str, dirs_only: bool) -> list[str]:
        """Everything below ``folder`` (not hidden), or only the folders.

        A link to a folder is followed unless it points to a folder the walk is already
        inside (found by device and inode): that would loop forever, or until the path is
        too long, finding every file once per turn. Such links are skipped and kept in
        ``skipped_links`` for the loader to warn about."""
        out: list[str] = []
        stack = [folder]
        while stack:
            d = stack.pop()
            base = os.path.join(self.root, d) if d else self.root
            prefix = d + "/" if d else ""
            try:
                entries = self.probe.scandir(base)
            except (OSError, ValueError):
                continue
            for e in entries:
                if e.name.startswith("."):
                    continue
                try:
                    is_dir = e.is_dir()
                    if is_dir and e.is_symlink() and self._loops(e, d):
                        continue
                except OSError:
                    is_dir = False
                if is_dir:
                    out.append(prefix + e.name)
                    stack.append(prefix + e.name)
                elif not dirs_only:
                    out.append(prefix + e.name)
        return out

    def _loops(self, entry: os.DirEntry[str], folder: str) -> bool:
        """Whether the link ``entry`` in root-relative ``folder`` points to that folder or
        to one it is inside (the root's own parents too); remembered when it does."""
        st = entry.stat()
        key = (st.st_dev, st.st_ino)
        path = os.path.abspath(os.path.join(self.root, folder) if folder else self.root)
        while True:
            if self._key(path) == key:
                link = folder + "/" + entry.name if folder else entry.name
                if link not in self.skipped_links:
                    try:
                        target = os.readlink(entry.path)
                    except OSError:
                        target = "?"
                    self.skipped_links[link] = target
                return True
            parent = os.path.dirname(path)
            if parent == path:
                return False
            path = parent

    def _key(self, path: str) -> tuple[int, int] | None:
        key = self._keys.get(path, False)
        if key is False:
            try:
                st = os.stat(path)
                key = (st.st_dev, st.st_ino)
            except OSError:
                key = None
            self._keys[path] = key
        return key   # type: ignore[return-value]
