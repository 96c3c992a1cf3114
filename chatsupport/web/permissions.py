"""How a route declares who may call it. Every handler sets ``opt["permission"]``; a test enumerates the routes
and fails on any that does not. ``PUBLIC`` routes need no login (health checks, docs, the widget); the others
name a permission from ``chatsupport.domain.permissions.MATRIX`` (or ``authenticated``) and carry the guard
that enforces it."""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from chatsupport.domain.permissions import AUTHENTICATED, MATRIX
from chatsupport.errors import AppError
from chatsupport.web.auth import api_guard, console_guard, services_of

Guard = Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Awaitable[None]]

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


def found(param: str, exists: Callable[[Any, Any, str], bool], message: str) -> Guard:
    """A guard answering 404 when ``exists(services, actor, id)`` is false for the path parameter ``param``. It
    runs after the permission guard and before Litestar decodes the body, so an unknown id (another workspace's,
    a random or a malformed one) is "not found", never a 422 about the body."""

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        if not await asyncio.to_thread(exists, services_of(connection), connection.state.actor,
                                       connection.path_params[param]):
            raise AppError("not_found", message)

    return guard


def requires_found(permission: str, guard: Guard) -> dict[str, Any]:
    """``requires(permission)`` plus a ``found`` guard, in that order (role first, then scope, then body)."""
    spec = requires(permission)
    return {**spec, "guards": [*spec["guards"], guard]}


def console_requires_found(permission: str, guard: Guard) -> dict[str, Any]:
    """``console_requires(permission)`` plus a ``found`` guard (role, then scope, then the form)."""
    spec = console_requires(permission)
    return {**spec, "guards": [*spec["guards"], guard]}
