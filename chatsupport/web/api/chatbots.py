"""``/api/v1/chatbots`` (PRD §5.2.1–5.2.2): create, list, read, change, archive, restore, clone, and the version
history with rollback.

Ids are plain strings in the path: a malformed id is "not found" like another workspace's, never a 400 that
would tell the two apart.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import msgspec
from litestar import Request, delete, get, patch, post
from litestar.params import Parameter

from chatsupport.domain import chatbots
from chatsupport.domain.chatbot_schema import ChatbotClone, ChatbotCreate, ChatbotUpdate
from chatsupport.errors import AppError
from chatsupport.store import chatbots as chatbot_store
from chatsupport.web.api.schemas import ChatbotOut, ChatbotPage
from chatsupport.web.auth import actor_of, services_of
from chatsupport.web.permissions import found, requires, requires_found

Page = Annotated[int, Parameter(ge=1, default=1)]
Limit = Annotated[int, Parameter(ge=1, le=100, default=20)]


class VersionOut(msgspec.Struct):
    version: int
    changed_by: str | None
    changed_by_name: str | None
    created_at: str
    restored_from: int | None
    changed_fields: list[str]


class VersionList(msgspec.Struct):
    data: list[VersionOut]


class FieldChange(msgspec.Struct):
    field: str
    old: Any
    new: Any


class VersionDetail(VersionOut):
    snapshot: dict[str, Any]
    changes_to_current: list[FieldChange]


def _bot_exists(services: Any, actor: Any, chatbot_id: str) -> bool:
    return chatbot_store.get(services.db.reader(), actor.workspace_id, chatbot_id) is not None


chatbot_found = found("chatbot_id", _bot_exists, "No such chatbot.")


def acts(permission: str) -> dict[str, Any]:
    """``requires(permission)``, then 404 for an unknown chatbot, then the body."""
    return requires_found(permission, chatbot_found)


def version_number(version: str) -> int:
    """Like ids, a malformed version number is simply "not found"."""
    if not version.isdigit() or len(version) > 9:
        raise AppError("not_found", "No such version.")
    return int(version)


def _out(body: dict[str, Any]) -> ChatbotOut:
    return msgspec.convert(body, ChatbotOut)


@post("/api/v1/chatbots", status_code=201, **requires("chatbot.create"))
async def create_chatbot(request: Request[Any, Any, Any], data: ChatbotCreate) -> ChatbotOut:
    """Only ``name`` is required; everything else starts at the PRD defaults. Version 1."""
    return _out(await asyncio.to_thread(chatbots.create, services_of(request), actor_of(request), data))


@get("/api/v1/chatbots", **requires("chatbot.view"))
async def list_chatbots(request: Request[Any, Any, Any], status: str = "current", page: Page = 1,
                        limit: Limit = 20) -> ChatbotPage:
    """``status``: current (active and inactive, the default), active, inactive, archived or all."""
    result = await asyncio.to_thread(chatbots.search, services_of(request), actor_of(request), status, page, limit)
    return msgspec.convert(result, ChatbotPage)


@get("/api/v1/chatbots/{chatbot_id:str}", **requires("chatbot.view"))
async def get_chatbot(request: Request[Any, Any, Any], chatbot_id: str) -> ChatbotOut:
    return _out(await asyncio.to_thread(chatbots.get, services_of(request), actor_of(request), chatbot_id))


@patch("/api/v1/chatbots/{chatbot_id:str}", **acts("chatbot.update"))
async def update_chatbot(request: Request[Any, Any, Any], chatbot_id: str, data: ChatbotUpdate) -> ChatbotOut:
    """Nested objects merge: ``{"ai_settings": {"temperature": 0.8}}`` changes that value only. A change bumps
    ``version`` and keeps a snapshot; a request that changes nothing does not."""
    return _out(await asyncio.to_thread(chatbots.update, services_of(request), actor_of(request), chatbot_id, data))


@delete("/api/v1/chatbots/{chatbot_id:str}", status_code=204, **requires("chatbot.delete"))
async def archive_chatbot(request: Request[Any, Any, Any], chatbot_id: str) -> None:
    """Soft delete (archive); ``POST …/restore`` brings the bot back."""
    await asyncio.to_thread(chatbots.archive, services_of(request), actor_of(request), chatbot_id)


@post("/api/v1/chatbots/{chatbot_id:str}/restore", status_code=200, **requires("chatbot.delete"))
async def restore_chatbot(request: Request[Any, Any, Any], chatbot_id: str) -> ChatbotOut:
    return _out(await asyncio.to_thread(chatbots.restore, services_of(request), actor_of(request), chatbot_id))


@post("/api/v1/chatbots/{chatbot_id:str}/clone", status_code=201, **acts("chatbot.create"))
async def clone_chatbot(request: Request[Any, Any, Any], chatbot_id: str,
                        data: ChatbotClone | None = None) -> ChatbotOut:
    """A new bot with the same settings (new keys, version 1). Conversations and knowledge are not copied.
    409 ``already_exists`` when the name is taken by another bot of the workspace."""
    name = data.name if data is not None and data.name is not msgspec.UNSET else None
    return _out(await asyncio.to_thread(chatbots.clone, services_of(request), actor_of(request), chatbot_id, name))


@get("/api/v1/chatbots/{chatbot_id:str}/versions", **requires("chatbot.view"))
async def list_versions(request: Request[Any, Any, Any], chatbot_id: str) -> VersionList:
    """Newest first; ``changed_fields`` names what each version changed from the one before."""
    rows = await asyncio.to_thread(chatbots.versions, services_of(request), actor_of(request), chatbot_id)
    return msgspec.convert({"data": rows}, VersionList)


@get("/api/v1/chatbots/{chatbot_id:str}/versions/{version:str}", **requires("chatbot.view"))
async def get_version(request: Request[Any, Any, Any], chatbot_id: str, version: str) -> VersionDetail:
    """The snapshot, and ``changes_to_current``: each field that differs from the bot now (old → new)."""
    number = version_number(version)
    row = await asyncio.to_thread(chatbots.version, services_of(request), actor_of(request), chatbot_id, number)
    return msgspec.convert(row, VersionDetail)


@post("/api/v1/chatbots/{chatbot_id:str}/versions/{version:str}/rollback", status_code=200,
      **requires("chatbot.update"))
async def rollback_version(request: Request[Any, Any, Any], chatbot_id: str, version: str) -> ChatbotOut:
    """Restores that version's name, description, settings and allowed origins as a NEW version (history is
    never rewritten) and pushes the configuration to open widgets. The status is left as it is."""
    number = version_number(version)
    return _out(await asyncio.to_thread(chatbots.rollback, services_of(request), actor_of(request), chatbot_id,
                                        number))


ROUTES = [create_chatbot, list_chatbots, get_chatbot, update_chatbot, archive_chatbot, restore_chatbot, clone_chatbot,
          list_versions, get_version, rollback_version]
