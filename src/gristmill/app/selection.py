"""The selected tasks, shared by every view: each view follows it and sets it."""

from __future__ import annotations

from typing import Iterable

from PySide6.QtCore import QObject, Signal


class Selection(QObject):
    """Task names, in the order chosen; ``origin`` names the view that changed it."""

    changed = Signal(tuple, str)   # (names, origin)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._names: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return self._names

    @property
    def current(self) -> str | None:
        return self._names[0] if self._names else None

    def set(self, names: Iterable[str], origin: str = "") -> None:
        names = tuple(dict.fromkeys(names))
        if names != self._names:
            self._names = names
            self.changed.emit(names, origin)

    def keep_only(self, known: Iterable[str]) -> None:
        """After a reload: drop names that no longer exist."""
        known = set(known)
        self.set([n for n in self._names if n in known], "reload")
