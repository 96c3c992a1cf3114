"""The chat widget's limits (PRD §5.3.3), kept in memory: one process serves every widget, so a counter in a dict
is exact and costs nothing per message. A restart forgets the counts, which errs on the visitor's side.

Each limit is a sliding window of hit times per key; ``check`` answers "seconds until allowed" without counting,
``hit`` counts. Callers check every limit a frame touches first and count only when all pass, so a refused
message uses up nothing.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable

MAX_MESSAGE_LENGTH = 4000


@dataclass(frozen=True)
class Window:
    limit: int
    seconds: int


MESSAGES = (Window(10, 60), Window(100, 3600))        # per visitor
VISITOR_CONVERSATIONS = (Window(5, 3600),)           # new conversations per visitor
ATTACHMENTS = (Window(20, 3600),)                    # uploads per visitor
IP_CONVERSATION_SECONDS = 3600                        # new conversations per client IP: the count is a setting
SWEEP_EVERY = 10_000                                  # hits between sweeps of keys idle for an hour


class Limiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()  # the fallback's handlers and the socket share it; held for microseconds
        self._since_sweep = 0

    def check(self, key: str, windows: tuple[Window, ...]) -> int | None:
        """Seconds until ``key`` may act again under ``windows``, or None when it may now."""
        now = self.clock()
        with self._lock:
            hits = self._hits.get(key)
            if not hits:
                return None
            wait = 0.0
            for window in windows:
                recent = [t for t in hits if t > now - window.seconds]
                if len(recent) >= window.limit:
                    wait = max(wait, recent[-window.limit] + window.seconds - now)
            return max(1, int(wait + 0.999)) if wait > 0 else None

    def hit(self, key: str, windows: tuple[Window, ...]) -> None:
        if not windows:
            return
        now = self.clock()
        keep = max(w.limit for w in windows)
        with self._lock:
            hits = self._hits.setdefault(key, deque(maxlen=keep))
            if hits.maxlen is not None and hits.maxlen < keep:
                hits = self._hits[key] = deque(hits, maxlen=keep)
            hits.append(now)
            self._since_sweep += 1
            if self._since_sweep >= SWEEP_EVERY:
                self._sweep(now)

    def _sweep(self, now: float) -> None:
        self._since_sweep = 0
        for key in [k for k, hits in self._hits.items() if not hits or hits[-1] < now - 3600]:
            del self._hits[key]


def ip_windows(per_hour: int) -> tuple[Window, ...]:
    """``CHATSUPPORT_WIDGET_IP_LIMIT``: 0 lifts the cap (the load benchmark runs every visitor from one address)."""
    return (Window(per_hour, IP_CONVERSATION_SECONDS),) if per_hour > 0 else ()


class Connections:
    """Open widget connections per workspace, against ``CHATSUPPORT_WIDGET_MAX_CONNECTIONS``."""

    def __init__(self, cap: int):
        self.cap = cap
        self._open: dict[str, int] = {}
        self._lock = threading.Lock()

    def acquire(self, workspace_id: str) -> bool:
        with self._lock:
            if self._open.get(workspace_id, 0) >= self.cap:
                return False
            self._open[workspace_id] = self._open.get(workspace_id, 0) + 1
            return True

    def release(self, workspace_id: str) -> None:
        with self._lock:
            left = self._open.get(workspace_id, 0) - 1
            if left > 0:
                self._open[workspace_id] = left
            else:
                self._open.pop(workspace_id, None)

    def count(self, workspace_id: str) -> int:
        return self._open.get(workspace_id, 0)
