"""Parse human sizes ("300MB", "4GiB") and durations ("30m", "1h30m", "90s")."""

from __future__ import annotations

import re

_SIZE_UNITS = {
    "b": 1,
    "k": 1000, "kb": 1000, "kib": 1024,
    "m": 1000**2, "mb": 1000**2, "mib": 1024**2,
    "g": 1000**3, "gb": 1000**3, "gib": 1024**3,
    "t": 1000**4, "tb": 1000**4, "tib": 1024**4,
}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*([a-zA-Z]*)\s*$")
UNITS_TEXT = "B, KB, MB, GB, TB (or KiB, MiB, GiB, TiB)"
UNIT_NAMES = ("B", "KB", "MB", "GB", "TB", "KiB", "MiB", "GiB", "TiB")   # what a size may end with
_DUR_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_DUR_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)")


def _no_unit(value: object) -> ValueError:
    return ValueError(f"size {value!r} has no unit: add one of {', '.join(UNIT_NAMES)} "
                      f"(e.g. \"{value}MB\" or \"{value}GB\")")


def parse_size(value: object) -> int:
    """Bytes from a string with a unit, such as ``"300MB"``, ``"4GiB"`` or ``"512B"``.

    A number without a unit (``1``, ``"1"``, ``1.5``) is refused, as ``1`` may mean a
    byte or a gigabyte to whoever wrote it; only zero needs none. Raises ValueError
    with a message fit for a user.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a size such as \"300MB\", got {value!r}")
    if isinstance(value, (int, float)):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"bad size: {value!r}")
        if value < 0:
            raise ValueError(f"a size cannot be negative: {value}")
        if value == 0:
            return 0
        raise _no_unit(value)
    if not isinstance(value, str):
        raise ValueError(f"expected a size such as \"300MB\", got {value!r}")
    m = _SIZE_RE.match(value)
    if m and not m.group(2):
        if float(m.group(1)) == 0:
            return 0
        raise _no_unit(value.strip())
    if not m or m.group(2).lower() not in _SIZE_UNITS:
        raise ValueError(f"bad size {value!r}: use a number with {UNITS_TEXT}")
    return int(float(m.group(1)) * _SIZE_UNITS[m.group(2).lower()])


def parse_duration(value: object) -> float:
    """Seconds from a number (seconds) or a string such as ``"30m"``, ``"1h30m"``, ``"90s"``."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as \"30m\", got {value!r}")
    if isinstance(value, (int, float)):
        if value < 0 or value != value or value == float("inf"):
            raise ValueError(f"bad duration: {value!r}")
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"expected a duration such as \"30m\", got {value!r}")
    text = value.strip().replace(" ", "")
    if not text:
        raise ValueError("empty duration")
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return float(text)
    pos, total = 0, 0.0
    for m in _DUR_PART.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _DUR_UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text) or pos == 0:
        raise ValueError(f"bad duration {value!r}: use e.g. \"90s\", \"30m\", \"1h30m\", \"2d\"")
    return total


def format_size(n: int | float | None) -> str:
    if n is None:
        return ""
    n = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    m, s = divmod(int(round(seconds)), 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m"


def parse_gpu(value: object) -> int | float:
    """A task's ``gpu``: 0, a share of one device (``0.25``), or whole devices (``2``).

    Whole devices come back as an ``int``. Raises ValueError with a message fit for a user.
    """
    if isinstance(value, str):
        try:
            value = float(value) if any(c in value for c in ".eE") else int(value)
        except ValueError:
            raise ValueError(f"gpu must be a whole number or a share below 1, such as 0.25, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"gpu must be a whole number or a share below 1, such as 0.25, got {value!r}")
    number = float(value)
    if number != number or number in (float("inf"), float("-inf")) or number < 0:
        raise ValueError(f"gpu must be 0 or more, got {value!r}")
    if number > 1 and not number.is_integer():
        raise ValueError(f"gpu = {value!r}: more than one GPU must be a whole number "
                         "(a share is less than 1, such as 0.25)")
    if number >= 1 or number == 0:
        if number >= 2**31:
            raise ValueError(f"gpu = {value!r} is too many")
        return int(number)
    return number


def parse_percent(value: object) -> float:
    """``"10%"`` -> 0.1 (more than 0, at most 100%). Raises ValueError for a user."""
    text = value.strip() if isinstance(value, str) else None
    if not text or not text.endswith("%"):
        raise ValueError(f"expected a percentage such as \"10%\", got {value!r}")
    try:
        number = float(text[:-1])
    except ValueError:
        raise ValueError(f"expected a percentage such as \"10%\", got {value!r}") from None
    if not 0 < number <= 100:
        raise ValueError(f"a percentage must be more than 0% and at most 100%, got {value!r}")
    return number / 100
