"""Content checks (``check = "content"``): a file's bytes, hashed only when it changed.

A file's hash is kept with the size and ``mtime_ns`` it had when hashed (history's
``file_hashes``); it is computed again only when one of the two differs, so a no-op
run hashes nothing. The hash is BLAKE3 (the ``blake3`` package, the ``content`` extra)
where it is installed: measured (``tests/benchmarks/bench_content.py``, RESULTS.md) it
hashes 2x (4 KiB files) to 5x (64 MiB) faster than the standard library's BLAKE2b,
which is used where it is not. Each digest is tagged ``b3:`` or ``b2:``: a file hashed
by the other is hashed again (and compares unequal, so stale: never wrongly fresh).

Pure: the facts of history (hashes at each task's last success, known file hashes) are
passed in through ``ContentFacts``; decide never imports record.
"""

from __future__ import annotations

import os
from hashlib import blake2b
from typing import Mapping, Protocol

_BLOCK = 1 << 20


class ContentFacts(Protocol):
    """What history knows (``record.queries.HistoryReader.content_facts``)."""

    def at_success(self, task: str) -> Mapping[str, str] | None:
        """path -> hash of the files it compared by content, as they were at its last
        success; None when history has none (a fresh clone, or never succeeded so)."""

    def known_hash(self, path: str) -> tuple[int, int, str] | None:
        """(size, mtime_ns, hash) of ``path`` when last hashed."""


try:
    from blake3 import blake3 as _hasher  # type: ignore[import-not-found]
    TAG = "b3:"
except ImportError:       # the standard library's
    def _hasher():        # type: ignore[misc]
        return blake2b(digest_size=16)
    TAG = "b2:"


def hash_file(path: str) -> str:
    """``b3:`` + BLAKE3 (or ``b2:`` + BLAKE2b) of the file's bytes, in hex."""
    h = _hasher()
    with open(path, "rb") as f:
        while True:
            block = f.read(_BLOCK)
            if not block:
                break
            h.update(block)
    return TAG + h.hexdigest()[:32]


class FileHasher:
    """Hashes of files under a root, each recomputed only when its size or mtime changed
    from what ``facts`` (or this hasher) saw; ``fresh`` holds those computed here, for
    history to keep."""

    def __init__(self, root: str, facts: ContentFacts | None = None):
        self.root = root if root.endswith("/") else root + "/"
        self.facts = facts
        self._seen: dict[str, tuple[int, int, str] | None] = {}
        self.fresh: dict[str, tuple[int, int, str]] = {}

    def hash(self, rel: str) -> str | None:
        """The hash of ``rel`` now; None when it is missing or unreadable."""
        if rel in self._seen:
            got = self._seen[rel]
            return got[2] if got is not None else None
        path = rel if rel[:1] == "/" else self.root + rel
        try:
            st = os.stat(path)
        except OSError:
            self._seen[rel] = None
            return None
        size, mtime = st.st_size, st.st_mtime_ns
        known = self.facts.known_hash(rel) if self.facts is not None else None
        known = self.fresh.get(rel, known)
        if known is not None and known[0] == size and known[1] == mtime and \
                known[2].startswith(TAG):
            self._seen[rel] = known
            return known[2]
        try:
            digest = hash_file(path)
        except OSError:
            self._seen[rel] = None
            return None
        entry = (size, mtime, digest)
        self._seen[rel] = self.fresh[rel] = entry
        return digest

    def entry(self, rel: str) -> tuple[int, int, str] | None:
        """(size, mtime_ns, hash) of ``rel`` now (hashing it if it changed)."""
        self.hash(rel)
        return self._seen.get(rel)

    def forget(self, paths) -> None:
        for p in paths:
            self._seen.pop(p, None)

    def take_fresh(self) -> dict[str, tuple[int, int, str]]:
        fresh, self.fresh = self.fresh, {}
        return fresh
