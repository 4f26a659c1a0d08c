"""Short display names for fan-out instances: ``thumb[images/a.png]`` -> ``thumb[a.png]``.

And, for narrow places (board cards), an elision that keeps what tells a
fan-out's instances apart: the part of the item its siblings do not share.
Pure Python; the caller says what fits.
"""

from __future__ import annotations

import os
import posixpath
from typing import Callable, Iterable, Mapping, Sequence

ELLIPSIS = "…"


def shown(text: str) -> str:
    """``text`` as Qt can show it. A file name that is not UTF-8 comes with lone
    surrogates (``os.fsdecode``), where Qt cuts the text short; its odd bytes are shown
    as ``\\xNN`` instead."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def split_name(name: str) -> tuple[str, str] | None:
    """``thumb[images/a.png]`` -> (``thumb``, ``images/a.png``); None when not a fan-out instance."""
    if name.endswith("]") and "[" in name:
        group, item = name[:-1].split("[", 1)
        return group, item
    return None


def short_item(item: str) -> str:
    return posixpath.basename(item.rstrip("/")) or item


def short_name(name: str) -> str:
    parts = split_name(name)
    if parts is None:
        return shown(name)
    group, item = parts
    return shown(f"{group}[{short_item(item)}]")


def common_affixes(items: Iterable[str]) -> tuple[int, int]:
    """Lengths of the prefix and the suffix every item shares (they never overlap)."""
    items = list(items)
    if len(items) < 2:
        return 0, 0
    prefix = len(os.path.commonprefix(items))
    suffix = len(os.path.commonprefix([i[::-1] for i in items]))
    shortest = min(len(i) for i in items)
    prefix = min(prefix, shortest)
    suffix = min(suffix, shortest - prefix)
    return prefix, suffix


def group_affixes(groups: Mapping[str, Sequence[str]], short: bool) -> dict[str, tuple[int, int]]:
    """Per fan-out group (declared name -> instance names): its items' shared prefix and suffix lengths.

    ``short``: of the items' base names, as ``short_name`` shows them.
    """
    out: dict[str, tuple[int, int]] = {}
    for group, names in groups.items():
        # Sliced, not parsed one by one: a fan-out of 90,000 instances is drawn at once.
        head, opening = len(group) + 1, group + "["
        items = []
        for n in names:
            if n.startswith(opening) and n.endswith("]"):
                items.append(n[head:-1])
            elif (parts := split_name(n)) is not None:
                items.append(parts[1])
        if short:
            items = [i.rstrip("/").rpartition("/")[2] or i for i in items]
        if len(items) > 1:
            out[group] = common_affixes(items)
    return out


def fit_name(name: str, measure: Callable[[str], int], width: int,
             affixes: tuple[int, int] = (0, 0), group_share: float = 0.35) -> str:
    """``name`` as it fits in ``width`` (``measure`` gives a text's width), ``…`` where cut.

    A fan-out instance's item is what tells it from its siblings: it keeps at
    least the part its siblings do not share (``affixes``, see ``group_affixes``);
    the group name gives way (down to ``group_share`` of the room) only when
    that part would not fit beside it.
    """
    def fits(room: float) -> Callable[[str], bool]:
        return lambda text: measure(text) <= room

    if measure(name) <= width:
        return name
    parts = split_name(name)
    if parts is None:
        return _elide_middle(name, fits(width))
    group, item = parts
    rest = width - measure(f"{group}[]")
    base = short_item(item)
    folder_cut = ELLIPSIS + "/" + base if base != item else ""
    if folder_cut and _distinct_in_base(item, base, affixes):
        # The item's own name is what tells it apart: keep it whole, elide its folder.
        if measure(folder_cut) <= rest:
            return f"{group}[{folder_cut}]"
        room = width * group_share
        if measure(group) > room:
            short_group = _elide_right(group, fits(room))
            if measure(folder_cut) <= width - measure(f"{short_group}[]"):
                return f"{short_group}[{folder_cut}]"
    if measure(distinct_part(item, *affixes)) > rest:      # the group gives way, to a share of the room
        room = width * group_share
        if measure(group) > room:
            group = _elide_right(group, fits(room))
        rest = width - measure(f"{group}[]")
    return f"{group}[{elide_item(item, *affixes, fits(rest))}]"


def _distinct_in_base(item: str, base: str, affixes: tuple[int, int]) -> bool:
    """Whether what the siblings do not share lies within the item's base name (they are
    files of one folder), or nothing is known of the siblings."""
    prefix, _suffix = affixes
    return prefix >= len(item) - len(base) or affixes == (0, 0)


def elide_item(item: str, prefix: int, suffix: int, fits: Callable[[str], bool]) -> str:
    """The item, or as much of it as fits around its distinct middle, ``…`` where cut.

    ``sample-04-long-name.txt`` among ``sample-NN-long-name.txt`` -> ``…04-long…``:
    the distinct middle, then as much of the shared end, then of the shared
    start, as fits; a plain middle elision when even the distinct part does not.
    """
    if fits(item):
        return item
    lo, hi = prefix, len(item) - suffix
    if lo >= hi:                       # no distinct part: keep both ends
        return _elide_middle(item, fits)

    def text(a: int, b: int) -> str:
        return (ELLIPSIS if a > 0 else "") + item[a:b] + (ELLIPSIS if b < len(item) else "")

    if not fits(text(lo, hi)):
        return _elide_middle(item, fits)
    while hi < len(item) and fits(text(lo, hi + 1)):      # the shared end first (often an extension)
        hi += 1
    while lo > 0 and fits(text(lo - 1, hi)):              # then the shared start, backwards
        lo -= 1
    # A path is cut at a folder, never inside one: `…/harbour.csv`, not `…w/harbour.csv`.
    slash = item.find("/", lo, prefix)
    if 0 < lo < prefix and item[lo] != "/" and slash >= 0:
        lo = slash
    return text(lo, hi)


def distinct_part(item: str, prefix: int, suffix: int) -> str:
    """What ``elide_item`` keeps at the least: the distinct middle, with ``…`` for what is cut."""
    lo, hi = prefix, len(item) - suffix
    if lo >= hi:
        return item
    return (ELLIPSIS if lo > 0 else "") + item[lo:hi] + (ELLIPSIS if hi < len(item) else "")


def _elide_right(text: str, fits: Callable[[str], bool]) -> str:
    for keep in range(len(text) - 1, 0, -1):
        if fits(text[:keep] + ELLIPSIS):
            return text[:keep] + ELLIPSIS
    return ELLIPSIS


def _elide_middle(text: str, fits: Callable[[str], bool]) -> str:
    for keep in range(len(text) - 1, 0, -1):
        head = (keep + 1) // 2
        candidate = text[:head] + ELLIPSIS + text[len(text) - (keep - head):]
        if fits(candidate):
            return candidate
    return ELLIPSIS
