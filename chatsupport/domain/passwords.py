"""Password rules (PRD §5.1.1) and argon2id hashing.

Hashing costs tens of milliseconds of CPU and 64 MiB by default: callers run these functions in a worker
thread (``asyncio.to_thread``), never on the event loop.
"""

from __future__ import annotations

from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from chatsupport.errors import AppError

MIN_LENGTH = 8
MAX_LENGTH = 256


def problems(password: str) -> list[str]:
    """What the password lacks, in words a person can act on; empty when it is acceptable."""
    found = []
    if len(password) < MIN_LENGTH:
        found.append(f"at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        found.append(f"at most {MAX_LENGTH} characters")
    if not any(c.isupper() for c in password):
        found.append("an uppercase letter")
    if not any(c.isdigit() for c in password):
        found.append("a number")
    if all(c.isalnum() for c in password):
        found.append("a special character")
    return found


def check(password: str, field: str = "password") -> None:
    missing = problems(password)
    if missing:
        message = "The password needs " + ", ".join(missing) + "."
        raise AppError("validation_error", message, details=[{"field": field, "message": message}])


@lru_cache(maxsize=4)
def _hasher(memory_kib: int) -> PasswordHasher:
    return PasswordHasher(memory_cost=memory_kib)


def hash_password(password: str, memory_kib: int) -> str:
    return _hasher(memory_kib).hash(password)


@lru_cache(maxsize=4)
def _dummy_hash(memory_kib: int) -> str:
    return _hasher(memory_kib).hash("not a real password")


def verify(stored: str | None, password: str, memory_kib: int) -> bool:
    """True when ``password`` matches. An unknown user still costs one hash, so timing does not tell."""
    try:
        return _hasher(memory_kib).verify(stored or _dummy_hash(memory_kib), password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str, memory_kib: int) -> bool:
    return _hasher(memory_kib).check_needs_rehash(stored)
