"""What tasks need from the running process: the database and the settings, bound once at start-up."""

from __future__ import annotations

from dataclasses import dataclass

from chatsupport.config import Settings
from chatsupport.store.db import Database


@dataclass
class Runtime:
    db: Database
    settings: Settings


_current: Runtime | None = None


def bind(db: Database, settings: Settings) -> None:
    global _current
    _current = Runtime(db, settings)


def unbind() -> None:
    global _current
    _current = None


def current() -> Runtime:
    if _current is None:
        raise RuntimeError("no database bound: tasks run inside `chatsupport serve` or `chatsupport worker`")
    return _current
