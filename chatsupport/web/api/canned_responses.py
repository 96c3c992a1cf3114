"""``/api/v1/canned-responses``: the workspace's saved replies. Everyone who can see conversations can list them;
staff (``conversation.respond``) manage them. An unknown id answers 404 before the body is looked at."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import msgspec
from litestar import Request, delete, get, patch, post
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.params import Parameter

from chatsupport.domain import canned_responses as canned
from chatsupport.errors import AppError
from chatsupport.web.api.collaboration_schemas import CannedCreate, CannedList, CannedOut, CannedUpdate
from chatsupport.web.auth import actor_of, services_of
from chatsupport.web.permissions import requires

COLLECTION = "/api/v1/canned-responses"
ITEM = f"{COLLECTION}/{{canned_response_id:str}}"


async def canned_found(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    found = await asyncio.to_thread(canned.exists, services_of(connection), connection.state.actor,
                                    connection.path_params["canned_response_id"])
    if not found:
        raise AppError("not_found", "Canned response not found.")


def manages() -> dict[str, Any]:
    """Staff only, then the 404 check (role first, then scope, then body)."""
    spec = requires("conversation.respond")
    return {**spec, "guards": [*spec["guards"], canned_found]}


@get(COLLECTION, **requires("conversation.view"))
async def list_canned(request: Request[Any, Any, Any],
                      q: Annotated[str, Parameter(max_length=100, description=(
                          "Prefix of the shortcut or the title; a leading / is ignored."))] = "",
                      limit: Annotated[int, Parameter(ge=1, le=200)] = 100) -> CannedList:
    """By shortcut."""
    result = await asyncio.to_thread(canned.list_responses, services_of(request), actor_of(request), q, limit)
    return msgspec.convert(result, CannedList)


@post(COLLECTION, status_code=201, **requires("conversation.respond"))
async def create_canned(request: Request[Any, Any, Any], data: CannedCreate) -> CannedOut:
    """409 ``already_exists`` when the shortcut is taken in the workspace (ignoring case)."""
    result = await asyncio.to_thread(canned.create, services_of(request), actor_of(request), data.shortcut,
                                     data.title, data.content)
    return msgspec.convert(result, CannedOut)


@patch(ITEM, **manages())
async def update_canned(request: Request[Any, Any, Any], canned_response_id: str, data: CannedUpdate) -> CannedOut:
    """Only the fields given change."""
    result = await asyncio.to_thread(canned.update, services_of(request), actor_of(request), canned_response_id,
                                     shortcut=data.shortcut, title=data.title, content=data.content)
    return msgspec.convert(result, CannedOut)


@delete(ITEM, status_code=204, **manages())
async def delete_canned(request: Request[Any, Any, Any], canned_response_id: str) -> None:
    await asyncio.to_thread(canned.delete, services_of(request), actor_of(request), canned_response_id)


ROUTES = [list_canned, create_canned, update_canned, delete_canned]
