"""How a route declares who may call it. Every handler sets ``opt["permission"]``; a test enumerates the routes
and fails on any that does not. ``PUBLIC`` routes need no login (health checks, docs, the widget); the others
name a permission from ``chatsupport.domain.permissions.MATRIX`` (or ``authenticated``) and carry the guard
that enforces it."""

from __future__ import annotations

from typing import Any

from chatsupport.domain.permissions import AUTHENTICATED, MATRIX
from chatsupport.web.auth import api_guard, console_guard

PUBLIC = "public"


def public() -> dict[str, Any]:
    return {"opt": {"permission": PUBLIC}}


def _known(permission: str) -> str:
    if permission != AUTHENTICATED and permission not in MATRIX:
        raise KeyError(f"unknown permission {permission!r}")
    return permission


def requires(permission: str) -> dict[str, Any]:
    """API route: a Bearer token (or console session plus X-CSRF-Token) whose role has ``permission``."""
    return {"guards": [api_guard], "opt": {"permission": _known(permission)}}


def console_requires(permission: str = AUTHENTICATED) -> dict[str, Any]:
    """Console page: a session cookie (else a redirect to /login) whose role has ``permission``."""
    return {"guards": [console_guard], "opt": {"permission": _known(permission)}}
