"""Short display names for fan-out instances: ``thumb[images/a.png]`` -> ``thumb[a.png]``."""

from __future__ import annotations

import posixpath


def short_name(name: str) -> str:
    if name.endswith("]") and "[" in name:
        group, item = name[:-1].split("[", 1)
        base = posixpath.basename(item.rstrip("/")) or item
        return f"{group}[{base}]"
    return name
