"""Handing memory the process has freed back to the operating system.

glibc keeps what a large embedding batch freed inside its arenas, and after the first large free it raises its
mmap threshold, so later large blocks land in the arenas too: after one long document the process would hold its
peak for good. ``malloc_trim`` returns the free pages. On a C library without it (musl, macOS) this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from typing import Any


def _libc() -> Any:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):
        return None


_malloc_trim = _libc()


def release_free_memory() -> bool:
    """Return freed heap pages to the system; True when the C library had any to give back."""
    return bool(_malloc_trim(0)) if _malloc_trim is not None else False
