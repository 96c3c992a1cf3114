"""The inbox's actions on one conversation beyond take over / reply / return / resolve: reopen, assign, tags (and
their autocomplete), internal notes, read markers, the agent's typing indicator and the copilot's draft.

Every route on a conversation uses ``acts``: role first, then 404 for an unknown or foreign id, then the body.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import msgspec
from litestar import Request, get, post, put
from litestar.params import Parameter

from chatsupport.domain import agent_conversations as actions
from chatsupport.domain import copilot, notes
from chatsupport.net.mail import mail_configured
from chatsupport.tasks.mail import send_email
from chatsupport.web.api.collaboration_schemas import AssignRequest, AssignResponse, NoteDetail, NoteList, \
    NoteRequest, ReadResponse, ReopenResponse, SuggestReplyResponse, TagList, TagsRequest, TagsResponse, \
    TypingRequest, TypingResponse
from chatsupport.web.api.conversations import ITEM, acts
from chatsupport.web.auth import actor_of, services_of
from chatsupport.web.permissions import requires


@post(f"{ITEM}/reopen", status_code=200, **acts("conversation.respond"))
async def reopen(request: Request[Any, Any, Any], conversation_id: str) -> ReopenResponse:
    """resolved or abandoned → active (the AI answers again); any other status is 409 ``illegal_transition``."""
    result = await asyncio.to_thread(actions.reopen, services_of(request), actor_of(request), conversation_id)
    return msgspec.convert(result, ReopenResponse)


@post(f"{ITEM}/assign", status_code=200, **acts("conversation.respond"))
async def assign(request: Request[Any, Any, Any], conversation_id: str, data: AssignRequest) -> AssignResponse:
    """Agents may assign to themselves; owners and admins to any active owner, admin or agent (403 otherwise,
    422 for someone who cannot take conversations). On an agent-handled conversation this hands it over (the
    customer sees the new agent join); on any other the status stays and the assignee is notified."""
    result = await asyncio.to_thread(actions.assign, services_of(request), actor_of(request), conversation_id,
                                     data.agent_id)
    return msgspec.convert(result, AssignResponse)


@put(f"{ITEM}/tags", status_code=200, **acts("conversation.respond"))
async def set_tags(request: Request[Any, Any, Any], conversation_id: str, data: TagsRequest) -> TagsResponse:
    """Replaces the tags (``resolve`` adds to them): trimmed, duplicates ignoring case dropped, 20 at most."""
    result = await asyncio.to_thread(actions.set_tags, services_of(request), actor_of(request), conversation_id,
                                     data.tags)
    return msgspec.convert(result, TagsResponse)


@get("/api/v1/conversation-tags", **requires("conversation.view"))
async def tag_suggestions(request: Request[Any, Any, Any],
                          q: Annotated[str, Parameter(max_length=50, description="Tag prefix.")] = "",
                          limit: Annotated[int, Parameter(ge=1, le=50)] = 10) -> TagList:
    """The workspace's tags starting with ``q`` (ignoring case), most used first, with how many conversations
    carry each."""
    result = await asyncio.to_thread(actions.tag_suggestions, services_of(request), actor_of(request), q, limit)
    return msgspec.convert(result, TagList)


@post(f"{ITEM}/notes", status_code=201, **acts("conversation.respond"))
async def add_note(request: Request[Any, Any, Any], conversation_id: str, data: NoteRequest) -> NoteDetail:
    """Markdown (rendered safely into ``content_html``); @mentioned members are notified, and e-mailed when SMTP
    is configured. Never shown to the customer."""
    services = services_of(request)
    added = await asyncio.to_thread(notes.add, services, actor_of(request), conversation_id, data.content,
                                    mail=mail_configured(services.db, services.settings))
    for to, subject, body in added.emails:
        send_email(to, subject, body)
    return msgspec.convert(added.note, NoteDetail)


@get(f"{ITEM}/notes", **acts("conversation.view"))
async def list_notes(request: Request[Any, Any, Any], conversation_id: str) -> NoteList:
    """Oldest first."""
    result = await asyncio.to_thread(notes.list_notes, services_of(request), actor_of(request), conversation_id)
    return msgspec.convert(result, NoteList)


@post(f"{ITEM}/read", status_code=200, **acts("conversation.view"))
async def mark_read(request: Request[Any, Any, Any], conversation_id: str) -> ReadResponse:
    """The caller has read the conversation up to now (the inbox's unread highlight)."""
    result = await asyncio.to_thread(actions.mark_read, services_of(request), actor_of(request), conversation_id)
    return msgspec.convert(result, ReadResponse)


@post(f"{ITEM}/typing", status_code=200, **acts("conversation.respond"))
async def typing(request: Request[Any, Any, Any], conversation_id: str, data: TypingRequest) -> TypingResponse:
    """``typing:start`` / ``typing:stop`` in the customer's widget, as the caller. 409 ``already_taken`` when
    another agent holds the conversation."""
    result = await asyncio.to_thread(actions.typing, services_of(request), actor_of(request), conversation_id,
                                     data.typing)
    return msgspec.convert(result, TypingResponse)


@post(f"{ITEM}/suggest-reply", status_code=200, **acts("conversation.respond"))
async def suggest_reply(request: Request[Any, Any, Any], conversation_id: str) -> SuggestReplyResponse:
    """A draft reply to the customer's latest message from the knowledge base, through the chatbot's providers.
    Nothing is sent or stored; ``draft`` is empty when the knowledge base has no answer. 409 ``conflict`` when
    the customer has not written yet."""
    result = await copilot.suggest_reply(request.app.state.answer_engine, actor_of(request), conversation_id)
    return msgspec.convert(result, SuggestReplyResponse)


ROUTES = [reopen, assign, set_tags, tag_suggestions, add_note, list_notes, mark_read, typing, suggest_reply]
