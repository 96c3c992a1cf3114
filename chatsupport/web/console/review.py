"""The console's review queue of AI answers (PRD §4.4 Story 4.3), for the workspace (``/review``) or one chatbot
(``/chatbots/{id}/review``): tabs per reason with counts, each answer with its question, sources and confidence,
Correct / Incorrect, and "Write a better answer", which saves an FAQ the bot answers from then on.

Lists are GETs (the URL can be shared); verdicts and corrections are form posts that htmx sends and swaps back as
the answer's fragment. Without JavaScript a post lands on the answer's own page. Scope before CSRF: another
workspace's answer is "not found" whatever the token says. Viewers see everything and act on nothing.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

from litestar import Request, Response, get, post

from chatsupport.domain import answer_reviews as reviews
from chatsupport.domain import chatbots
from chatsupport.domain.permissions import allowed
from chatsupport.errors import AppError
from chatsupport.web.auth import actor_of, services_of
from chatsupport.web.console.common import checked_form, error_context, is_htmx, render
from chatsupport.web.console.knowledge import console_bot
from chatsupport.web.permissions import console_requires

PAGE = {"include_in_schema": False}
ANSWER = "/review/{message_id:str}"
TABS = {"low_confidence": "Low confidence", "thumbs_down": "Thumbs down", "escalated": "Escalated",
        "unreviewed": "Unreviewed", "all": "All"}
PERIODS = {"7d": "Last 7 days", "30d": "Last 30 days", "90d": "Last 90 days", "all": "All time"}
EMPTY = {"low_confidence": "No answers below the confidence threshold",
         "thumbs_down": "No answers marked unhelpful by a customer",
         "escalated": "No answers that handed over to a person",
         "unreviewed": "Every answer has been reviewed", "all": "The AI has not answered anything"}
PAGE_SIZE = 20


def editable(answer: str) -> str:
    """The AI answer as a starting point for a better one: without its "Source:" lines."""
    return "\n".join(line for line in answer.splitlines() if not line.startswith("Source:")).strip()


def _since(period: str) -> str | None:
    days = {"7d": 7, "30d": 30, "90d": 90}.get(period)
    if days is None:
        return None
    return (datetime.now(timezone.utc) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


async def _queue_page(request: Request[Any, Any, Any], base: str, bot: dict[str, Any] | None, chatbot_id: str,
                      reason: str, period: str, cursor: str) -> Response[Any]:
    services, actor = services_of(request), actor_of(request)
    reason = reason if reason in TABS else "low_confidence"
    period = period if period in PERIODS else "30d"
    chosen = bot["id"] if bot else chatbot_id.strip()

    def load() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        where = reviews.scope(services, actor, chosen or None, _since(period))
        bots = [] if bot else chatbots.search(services, actor, "current", 1, 100)["data"]
        return reviews.queue(services, actor, where, reason, cursor or None, PAGE_SIZE), bots

    result, bots = await asyncio.to_thread(load)
    filters = {k: v for k, v in (("chatbot_id", "" if bot else chosen), ("period", period)) if v}
    tabs = [{"reason": key, "label": label, "count": result["counts"][key],
             "href": f"{base}?{urlencode({**filters, 'reason': key})}"} for key, label in TABS.items()]
    here = f"{base}?{urlencode({**filters, 'reason': reason})}"
    older = f"{here}&{urlencode({'cursor': result['next_cursor']})}" if result["next_cursor"] else None
    context = {"bot": bot, "bots": bots, "chosen_bot": chosen, "base": base, "reason": reason, "tabs": tabs,
               "period": period, "periods": PERIODS, "answers": result["data"], "older": older, "here": here,
               "first_page": not cursor, "empty": EMPTY[reason], "can_edit": allowed(actor.role, "knowledge.upload"),
               "editable": editable}
    return render(request, "review/page.html", context)


@get("/review", **PAGE, **console_requires("knowledge.view"))
async def review_page(request: Request[Any, Any, Any], reason: str = "low_confidence", period: str = "30d",
                      chatbot_id: str = "", cursor: str = "") -> Response[Any]:
    return await _queue_page(request, "/review", None, chatbot_id, reason, period, cursor)


@get("/chatbots/{chatbot_id:str}/review", **PAGE, **console_requires("knowledge.view"))
async def bot_review_page(request: Request[Any, Any, Any], chatbot_id: str, reason: str = "low_confidence",
                          period: str = "30d", cursor: str = "") -> Response[Any]:
    bot = await console_bot(request, chatbot_id)
    return await _queue_page(request, f"/chatbots/{bot['id']}/review", bot, "", reason, period, cursor)


async def _answer(request: Request[Any, Any, Any], message_id: str) -> dict[str, Any]:
    return await asyncio.to_thread(reviews.get, services_of(request), actor_of(request), message_id)


def _respond(request: Request[Any, Any, Any], answer: dict[str, Any], **extra: Any) -> Response[Any]:
    """htmx swaps the answer's fragment; a plain post (no JavaScript) gets the answer's own page."""
    context = {"a": answer, "can_edit": allowed(actor_of(request).role, "knowledge.upload"), "editable": editable,
               **extra}
    return render(request, "review/_answer.html" if is_htmx(request) else "review/answer.html", context)


@get(ANSWER, **PAGE, **console_requires("knowledge.view"))
async def answer_page(request: Request[Any, Any, Any], message_id: str) -> Response[Any]:
    return _respond(request, await _answer(request, message_id))


@post(ANSWER + "/verdict", status_code=200, **PAGE, **console_requires("knowledge.upload"))
async def judge(request: Request[Any, Any, Any], message_id: str) -> Response[Any]:
    await _answer(request, message_id)
    form = await checked_form(request)
    try:
        answer = await asyncio.to_thread(reviews.judge, services_of(request), actor_of(request), message_id,
                                         str(form.get("verdict") or ""))
    except AppError as exc:
        if exc.code != "validation_error":
            raise
        return _respond(request, await _answer(request, message_id), **error_context(exc))
    return _respond(request, answer)


@post(ANSWER + "/faq", status_code=200, **PAGE, **console_requires("knowledge.upload"))
async def save_faq(request: Request[Any, Any, Any], message_id: str) -> Response[Any]:
    await _answer(request, message_id)
    form = await checked_form(request)
    draft = {"question": str(form.get("question") or ""), "answer": str(form.get("answer") or "")}
    services = services_of(request)
    try:
        result = await asyncio.to_thread(reviews.correct, services, actor_of(request), services.embedder, message_id,
                                         draft["question"], draft["answer"])
    except AppError as exc:
        if exc.code not in ("validation_error", "already_exists"):
            raise
        details = exc.details if isinstance(exc.details, list) else []
        existing = next((d["faq_id"] for d in details if isinstance(d, dict) and d.get("faq_id")), None)
        return _respond(request, await _answer(request, message_id), draft=draft, editor_open=True,
                        existing_faq=existing, **error_context(exc))
    return _respond(request, result["review"], saved_faq=result["faq"])


ROUTES = [review_page, bot_review_page, answer_page, judge, save_faq]
