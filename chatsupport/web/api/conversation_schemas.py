"""Request and response bodies of the agent conversation API (PRD §5.3.3) and presence, typed so
/schema/openapi.json describes them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import Meta, Struct

Status = Literal["active", "waiting", "escalated", "agent_handling", "resolved", "abandoned", "archived"]
MessageText = Annotated[str, Meta(min_length=1, max_length=4000)]
Tag = Annotated[str, Meta(min_length=1, max_length=50)]


class TakeoverRequest(Struct, forbid_unknown_fields=True):
    agent_id: Annotated[str, Meta(max_length=100)] | None = None
    message: MessageText | None = None


class ReplyRequest(Struct, forbid_unknown_fields=True):
    content: MessageText


class ResolveRequest(Struct, forbid_unknown_fields=True):
    resolution_note: Annotated[str, Meta(max_length=2000)] | None = None
    tags: Annotated[list[Tag], Meta(max_length=20)] | None = None


class CustomerOut(Struct):
    id: str
    name: str | None
    email: str | None
    avatar_url: str | None
    metadata: dict[str, Any]


class AgentOut(Struct, omit_defaults=True):
    id: str
    name: str | None
    email: str | None = None


class LastMessage(Struct):
    content: str
    sender_type: str
    timestamp: str


class ConversationItem(Struct):
    id: str
    chatbot_id: str
    customer: CustomerOut | None
    status: Status
    assigned_agent: AgentOut | None
    message_count: int
    last_message: LastMessage | None
    created_at: str
    updated_at: str
    tags: list[str]
    satisfaction_rating: int | None
    context: dict[str, Any]
    unread: bool        # a customer message newer than the caller last read


class ListPagination(Struct):
    page: int
    limit: int
    total: int
    total_pages: int
    total_capped: bool


class ConversationPage(Struct):
    data: list[ConversationItem]
    pagination: ListPagination
    next_cursor: str | None
    counts: dict[str, int]      # per status, for the same filters minus the status condition
    counts_capped: bool


# --- filters, saved filters and search (PRD §5.3.4) -------------------------------------------------------------
DateField = Literal["created_at", "updated_at", "resolved_at"]
Stamp = Annotated[str, Meta(max_length=40)]
Rating = Annotated[int, Meta(ge=1, le=5)]


class DateRangeIn(Struct, forbid_unknown_fields=True, omit_defaults=True):
    field: DateField = "created_at"
    start: Stamp | None = None
    end: Stamp | None = None


class RatingRange(Struct, forbid_unknown_fields=True, omit_defaults=True):
    min: Rating | None = None
    max: Rating | None = None


class FiltersIn(Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Every field optional. ``assigned_agent``: a user id, "unassigned" or "me"; ``tags``: carries them all."""
    status: Annotated[list[Status], Meta(max_length=7)] | None = None
    chatbot_id: Annotated[str, Meta(max_length=100)] | None = None
    assigned_agent: Annotated[str, Meta(max_length=100)] | None = None
    tags: Annotated[list[Tag], Meta(max_length=20)] | None = None
    date_range: DateRangeIn | None = None
    satisfaction_rating: RatingRange | None = None
    customer_email: Annotated[str, Meta(max_length=254)] | None = None
    has_internal_notes: bool | None = None


class SearchSort(Struct, forbid_unknown_fields=True):
    field: DateField = "updated_at"
    order: Literal["asc", "desc"] = "desc"


class SearchRequest(Struct, forbid_unknown_fields=True):
    query: Annotated[str, Meta(min_length=1, max_length=200)]
    filters: FiltersIn | None = None
    filter_id: Annotated[str, Meta(max_length=100)] | None = None
    sort: SearchSort | None = None
    page: Annotated[int, Meta(ge=1, le=500)] = 1
    limit: Annotated[int, Meta(ge=1, le=100)] = 20


class Match(Struct):
    kind: Literal["message", "note", "customer"]
    id: str
    snippet: str        # HTML: the text escaped, matched words in <mark>…</mark>


class SearchItem(ConversationItem):
    matches: list[Match]


class Aggregations(Struct):
    by_status: dict[str, int]
    by_agent: dict[str, int]        # agent id → conversations; "unassigned" for nobody's
    avg_satisfaction: float | None


class SearchResponse(Struct):
    data: list[SearchItem]
    pagination: ListPagination
    aggregations: Aggregations


class SavedFilterRequest(Struct, forbid_unknown_fields=True):
    name: Annotated[str, Meta(min_length=1, max_length=100)]
    filters: FiltersIn | None = None
    is_default: bool = False


class SavedFilterOut(Struct):
    id: str
    name: str
    filters: dict[str, Any]
    is_default: bool
    created_at: str
    updated_at: str


class SavedFilterList(Struct):
    data: list[SavedFilterOut]


class Sender(Struct):
    type: Literal["customer", "bot", "agent", "system"]
    id: str | None
    name: str | None


class MessageOut(Struct):
    id: str
    content: str
    sender: Sender
    timestamp: str
    metadata: dict[str, Any]
    attachments: list[dict[str, Any]]
    feedback: Literal["up", "down"] | None


class Person(Struct):
    id: str
    name: str | None


class NoteDetail(Struct):
    """An internal note: markdown as written, and as safe HTML (raw HTML off, only http/https/mailto links)."""
    id: str
    conversation_id: str
    content: str
    content_html: str
    author: Person
    mentioned_users: list[Person]
    created_at: str


class RatingOut(Struct):
    score: int
    comment: str | None
    rated_at: str | None


class ConversationMetrics(Struct):
    total_response_time_seconds: int | None
    ai_messages: int
    agent_messages: int
    customer_messages: int


class ConversationOut(Struct):
    id: str
    chatbot_id: str
    customer: CustomerOut | None
    status: Status
    assigned_agent: AgentOut | None
    messages: list[MessageOut]
    internal_notes: list[NoteDetail]
    events: list[dict[str, Any]]
    tags: list[str]
    satisfaction_rating: RatingOut | None
    metadata: ConversationMetrics
    context: dict[str, Any]
    resolution_note: str | None
    resolved_by: str | None
    created_at: str
    updated_at: str
    resolved_at: str | None


class TakeoverResponse(Struct):
    conversation_id: str
    status: Status
    assigned_agent: AgentOut
    takeover_at: str | None


class ReplyMessage(Struct):
    id: str
    content: str
    sender: Sender
    timestamp: str


class ReplyResponse(Struct):
    conversation_id: str
    status: Status
    message: ReplyMessage


class ReturnResponse(Struct):
    conversation_id: str
    status: Status
    assigned_agent: None
    returned_at: str


class ResolveResponse(Struct):
    conversation_id: str
    status: Status
    resolved_by: str
    resolved_at: str | None


class HeartbeatRequest(Struct, forbid_unknown_fields=True):
    status: Literal["online", "away"] = "online"


class HeartbeatResponse(Struct):
    user_id: str
    status: Literal["online", "away"]
    since: str
    last_heartbeat_at: str
    offline_after_seconds: int


class PresenceOut(Struct):
    user_id: str
    display_name: str
    role: str
    status: Literal["online", "away", "offline"]
    since: str | None
    last_seen_at: str | None


class PresenceList(Struct):
    data: list[PresenceOut]
    agents_online: int
    offline_after_seconds: int
