"""``/api/v1/chatbots`` (PRD §5.2.1–5.2.2): create, list, read, change, archive, restore.

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
from chatsupport.domain.chatbot_schema import ChatbotCreate, ChatbotUpdate
from chatsupport.web.api.schemas import ChatbotOut, ChatbotPage
from chatsupport.web.auth import actor_of, services_of
from chatsupport.web.permissions import requires

Page = Annotated[int, Parameter(ge=1, default=1)]
Limit = Annotated[int, Parameter(ge=1, le=100, default=20)]


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


@patch("/api/v1/chatbots/{chatbot_id:str}", **requires("chatbot.update"))
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


ROUTES = [create_chatbot, list_chatbots, get_chatbot, update_chatbot, archive_chatbot, restore_chatbot]
