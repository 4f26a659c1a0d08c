"""Work around a reference-count bug of PySide6 6.12 on Python 3.11.

On Python 3.11, every PySide6 6.12 call that returns ``void`` drops one
reference to ``None`` it never took (from 3.12 on, ``None`` is immortal, which
hides it). A GUI makes millions of such calls, so ``None``'s count reaches
zero and the interpreter aborts ("none_dealloc: deallocating None"). Giving
``None`` a huge reference count makes it as good as immortal, as in 3.12.
"""

from __future__ import annotations

import ctypes
import sys

_BUMP = 1 << 46


def keep_none_alive() -> bool:
    """Make ``None`` effectively immortal where the bug can bite; True when applied."""
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return False
    refcnt = ctypes.c_ssize_t.from_address(id(None))     # ob_refcnt leads every PyObject
    if refcnt.value < _BUMP // 2:
        refcnt.value += _BUMP
    return True
