"""``/api/v1/answer-reviews`` (PRD §4.4 Story 4.3): the review queue of AI answers, verdicts, and corrections saved
as FAQs. Everyone who sees the knowledge base reads the queue; staff (``knowledge.upload``) act on it.

An unknown message id answers 404 before the body is looked at (the ``answer_found`` guard runs after the
permission guard and before Litestar decodes the body), like the conversation actions.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, get, post
from litestar.params import Parameter
from msgspec import Meta, Struct

from chatsupport.domain import answer_reviews as reviews
from chatsupport.web.auth import actor_of, services_of
from chatsupport.web.permissions import found, requires, requires_found

Reason = Literal["low_confidence", "thumbs_down", "escalated", "unreviewed", "all"]
ITEM = "/api/v1/answer-reviews/{message_id:str}"


class SourceOut(Struct):
    source_type: str | None
    source_id: str | None
    title: str
    url: str | None
    score: float | None


class ReviewOut(Struct):
    verdict: Literal["correct", "incorrect", "corrected"]
    note: str | None
    faq_id: str | None
    reviewed_by: str | None
    reviewed_at: str


class AnswerOut(Struct):
    message_id: str
    chatbot_id: str
    chatbot_name: str
    conversation_id: str
    question: str | None
    answer: str
    confidence: float | None
    threshold: float
    below_threshold: bool
    sources: list[SourceOut]
    provider: str | None
    outcome: str | None
    escalation_reason: str | None
    feedback: Literal["up", "down"] | None
    created_at: str
    conversation_status: str
    conversation_escalated: bool
    review: ReviewOut | None


class ReasonCounts(Struct):
    low_confidence: int
    thumbs_down: int
    escalated: int
    unreviewed: int
    all: int


class AnswerPage(Struct):
    data: list[AnswerOut]
    next_cursor: str | None
    counts: ReasonCounts


class VerdictRequest(Struct, forbid_unknown_fields=True):
    verdict: Literal["correct", "incorrect"]
    note: Annotated[str, Meta(max_length=reviews.NOTE_LIMIT)] | None = None


class CorrectionRequest(Struct, forbid_unknown_fields=True):
    question: str
    answer: str


class FaqOut(Struct):
    id: str
    chatbot_id: str
    question: str
    answer: str
    category: str | None
    tags: list[str]
    priority: str
    status: str
    metadata: dict[str, Any]
    embedding_generated: bool
    usage_count: int
    created_at: str
    updated_at: str


class CorrectionOut(Struct):
    review: AnswerOut
    faq: FaqOut


answer_found = found("message_id", reviews.exists, "No such answer.")


def acts(permission: str) -> dict[str, Any]:
    """``requires(permission)``, then 404 for an unknown answer, then the body."""
    return requires_found(permission, answer_found)


@get("/api/v1/answer-reviews", **requires("knowledge.view"))
async def list_answers(
        request: Request[Any, Any, Any],
        chatbot_id: Annotated[str | None, Parameter(max_length=100)] = None,
        reason: Reason = "all",
        start: Annotated[str | None, Parameter(max_length=40, description="ISO-8601 date or date-time")] = None,
        end: Annotated[str | None, Parameter(max_length=40, description="inclusive; a bare date = whole day")] = None,
        cursor: Annotated[str | None, Parameter(max_length=500, description="next_cursor of the previous page")] = None,
        limit: Annotated[int, Parameter(ge=1, le=100)] = 20) -> AnswerPage:
    """The AI's answers newest first, each with the customer question it replied to. ``reason``:
    ``low_confidence`` (under the chatbot's hand-over threshold; declined answers count as 0),
    ``thumbs_down``, ``escalated`` (the answer handed the conversation over), ``unreviewed``, ``all``.
    ``counts`` gives each reason's total for the same chatbot and dates."""
    services, actor = services_of(request), actor_of(request)

    def run() -> dict[str, Any]:
        where = reviews.scope(services, actor, chatbot_id, start, end)
        return reviews.queue(services, actor, where, reason, cursor, limit)

    return msgspec.convert(await asyncio.to_thread(run), AnswerPage)


@post(ITEM, status_code=200, **acts("knowledge.upload"))
async def judge_answer(request: Request[Any, Any, Any], message_id: str, data: VerdictRequest) -> AnswerOut:
    """Mark an answer correct or incorrect; a later verdict replaces the earlier one."""
    result = await asyncio.to_thread(reviews.judge, services_of(request), actor_of(request), message_id,
                                     data.verdict, data.note)
    return msgspec.convert(result, AnswerOut)


@post(ITEM + "/faq", status_code=201, **acts("knowledge.upload"))
async def correct_answer(request: Request[Any, Any, Any], message_id: str, data: CorrectionRequest) -> CorrectionOut:
    """Save a better answer as an FAQ of the answer's chatbot (indexed at once, so the next customer asking gets
    it) and mark the answer ``corrected``, linked to the FAQ. A question that already has an FAQ is 409
    ``already_exists`` with that FAQ's id in ``details``."""
    services = services_of(request)
    result = await asyncio.to_thread(reviews.correct, services, actor_of(request), services.embedder, message_id,
                                     data.question, data.answer)
    return msgspec.convert(result, CorrectionOut)


ROUTES = [list_answers, judge_answer, correct_answer]
