"""``/api/v1/api-keys``: keys for the REST API (owners and admins). The key itself is in the 201 response of the
create call and nowhere else, ever; the list shows its first and last characters."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, delete, get, post
from msgspec import Meta, Struct

from chatsupport.domain import api_keys
from chatsupport.web.auth import actor_of, services_of
from chatsupport.web.permissions import found, requires, requires_found

Scope = Literal["read", "write", "admin"]


class ApiKeyIn(Struct, forbid_unknown_fields=True, kw_only=True):
    name: Annotated[str, Meta(max_length=200)]
    scopes: Annotated[list[Scope], Meta(min_length=1, max_length=3)]


class ApiKeyOut(Struct, kw_only=True):
    id: str
    name: str
    scopes: list[str]
    prefix: str
    last_four: str
    created_by: str | None
    created_by_name: str | None
    created_at: str
    last_used_at: str | None


class ApiKeyCreated(ApiKeyOut, kw_only=True):
    key: str


class ApiKeyList(Struct, kw_only=True):
    data: list[ApiKeyOut]


key_found = found("key_id", api_keys.exists, "No such API key.")


@post("/api/v1/api-keys", status_code=201, **requires("api_key.manage"))
async def create_api_key(request: Request[Any, Any, Any], data: ApiKeyIn) -> ApiKeyCreated:
    """The response's ``key`` is shown this once: store it now, it cannot be read back."""
    row = await asyncio.to_thread(api_keys.create, services_of(request), actor_of(request), data.name, data.scopes)
    return msgspec.convert(row, ApiKeyCreated)


@get("/api/v1/api-keys", **requires("api_key.manage"))
async def list_api_keys(request: Request[Any, Any, Any]) -> ApiKeyList:
    rows = await asyncio.to_thread(api_keys.list_keys, services_of(request), actor_of(request))
    return ApiKeyList(data=msgspec.convert(rows, list[ApiKeyOut]))


@delete("/api/v1/api-keys/{key_id:str}", status_code=204, **requires_found("api_key.manage", key_found))
async def revoke_api_key(request: Request[Any, Any, Any], key_id: str) -> None:
    """Revoked at once: the next request made with the key is refused (401)."""
    await asyncio.to_thread(api_keys.revoke, services_of(request), actor_of(request), key_id)


ROUTES = [create_api_key, list_api_keys, revoke_api_key]
