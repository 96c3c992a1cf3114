"""Request and response bodies of the conversation actions beyond the PRD's four (reopen, assign, tags, notes,
read, typing, suggest-reply), canned responses and notifications — typed so /schema/openapi.json describes them."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta, Struct

from chatsupport.web.api.conversation_schemas import AgentOut, NoteDetail, Status, Tag

Id = Annotated[str, Meta(min_length=1, max_length=100)]


class ReopenResponse(Struct):
    conversation_id: str
    status: Status
    reopened_by: str
    reopened_at: str


class AssignRequest(Struct, forbid_unknown_fields=True):
    agent_id: Id


class AssignResponse(Struct):
    conversation_id: str
    status: Status
    assigned_agent: AgentOut
    previous_agent_id: str | None


class TagsRequest(Struct, forbid_unknown_fields=True):
    tags: Annotated[list[Tag], Meta(max_length=20)]


class TagsResponse(Struct):
    conversation_id: str
    tags: list[str]


class TagCount(Struct):
    tag: str
    count: int


class TagList(Struct):
    data: list[TagCount]


class NoteRequest(Struct, forbid_unknown_fields=True):
    content: Annotated[str, Meta(min_length=1, max_length=5000, description=(
        "Markdown. Mention with @[Name](user_id), @firstname, @email-local-part or @full@email.address."))]


class NoteList(Struct):
    data: list[NoteDetail]


class ReadResponse(Struct):
    conversation_id: str
    read_at: str


class TypingRequest(Struct, forbid_unknown_fields=True):
    typing: bool


class TypingResponse(Struct):
    conversation_id: str
    typing: bool


class DraftSource(Struct):
    title: str | None
    url: str | None


class SuggestReplyResponse(Struct):
    conversation_id: str
    reply_to: str
    draft: str
    sources: list[DraftSource]
    confidence: float
    provider: str | None


# --- canned responses -----------------------------------------------------------------------------------------
Shortcut = Annotated[str, Meta(min_length=1, max_length=51, description="One word; a leading / is dropped.")]
Title = Annotated[str, Meta(min_length=1, max_length=100)]
CannedText = Annotated[str, Meta(min_length=1, max_length=4000)]


class CannedCreate(Struct, forbid_unknown_fields=True):
    shortcut: Shortcut
    title: Title
    content: CannedText


class CannedUpdate(Struct, forbid_unknown_fields=True):
    shortcut: Shortcut | None = None
    title: Title | None = None
    content: CannedText | None = None


class CannedOut(Struct):
    id: str
    shortcut: str
    title: str
    content: str
    created_by: str | None
    created_at: str
    updated_at: str


class CannedList(Struct):
    data: list[CannedOut]


# --- notifications --------------------------------------------------------------------------------------------
class NotificationOut(Struct):
    id: str
    kind: Literal["mention", "escalation", "assignment"]
    title: str
    body: str
    conversation_id: str | None
    note_id: str | None
    actor_id: str | None
    read: bool
    read_at: str | None
    created_at: str


class NotificationPage(Struct):
    data: list[NotificationOut]
    unread_count: int
    next_cursor: str | None


class ReadNotificationsRequest(Struct, forbid_unknown_fields=True):
    ids: Annotated[list[Id], Meta(max_length=500, description="Omit to mark every notification read.")] | None = None


class ReadNotificationsResponse(Struct):
    updated: int
    unread_count: int
