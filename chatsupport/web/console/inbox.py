"""The agent inbox (PRD §4.3, §5.3.3): the live conversation list, one conversation in full with its actions,
the notification list, and the one console event stream.

Pages work without JavaScript (GET filter form, POST action forms with the CSRF field); with it, htmx swaps
fragments and ``static/inbox.js`` listens to ``/console/events`` to keep the list, the open conversation and the
bell live. Every action is a domain call (the state machine decides what is legal); buttons a role cannot use
are hidden here and refused there anyway. Scope before CSRF: an action on another workspace's conversation is
"not found" whatever the token says.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone
from typing import Any, AsyncIterator, Callable, Mapping
from urllib.parse import quote, urlencode

from litestar import Request, Response, get, post
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler
from litestar.response import ServerSentEvent, ServerSentEventMessage

from chatsupport import live
from chatsupport.domain import agent_conversations as actions
from chatsupport.domain import canned_responses, chatbots, copilot, notes, notifications, team
from chatsupport.domain import conversation_search, saved_filters
from chatsupport.domain import conversation_views as views
from chatsupport.domain import conversations as states
from chatsupport.domain.conversation_filters import from_query, parse_filters
from chatsupport.domain.conversations import STATUSES
from chatsupport.domain.permissions import allowed
from chatsupport.errors import AppError
from chatsupport.net.mail import mail_configured
from chatsupport.tasks.mail import send_email
from chatsupport.web.api.conversations import conversation_found
from chatsupport.web.auth import actor_of, csrf_token, services_of
from chatsupport.web.console.common import checked_form, error_context, is_htmx, redirect, render, words
from chatsupport.web.permissions import console_requires, console_requires_found
from chatsupport.web.widget.feed import Feed

PAGE = {"include_in_schema": False}
ITEM = "/inbox/{conversation_id:str}"
LIST_LIMIT = 25
FILTER_PARAMS = ("status", "chatbot_id", "assigned_agent", "tags", "date_field", "start", "end", "rating_min",
                 "rating_max", "customer_email", "has_notes", "q", "sort")
# The search words and the order shape the view; every other parameter is a filter (what a saved filter keeps).
VIEW_PARAMS = ("q", "sort")
SORTS = (("-updated_at", "Newest update first"), ("updated_at", "Oldest update first"),
         ("-created_at", "Newest created first"), ("created_at", "Oldest created first"))
TABS = (("", "All"), ("escalated", "Escalated"), ("agent_handling", "With an agent"), ("active", "Active"),
        ("waiting", "Waiting"), ("resolved", "Resolved"), ("abandoned", "Abandoned"), ("archived", "Archived"))
# Errors a person can act on, shown next to the form; anything else is the error page.
INLINE_ERRORS = ("already_taken", "illegal_transition", "validation_error", "forbidden", "conflict",
                 "conversation_closed", "rate_limited", "not_ready")
HEARTBEAT_SECONDS = 15.0
MAX_STREAM_SECONDS = 55
RETRY_MS = 1000


def console_acts(permission: str) -> dict[str, Any]:
    """``console_requires(permission)``, then 404 for an unknown conversation, then the form."""
    return console_requires_found(permission, conversation_found)


def ago(stamp: str | None, now: datetime | None = None) -> str:
    """"just now", "5 min ago", "3 h ago", "2 d ago", then the date: what a list row needs at a glance."""
    if not stamp:
        return ""
    then = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    seconds = ((now or datetime.now(timezone.utc)) - then).total_seconds()
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h ago"
    if seconds < 7 * 86400:
        return f"{int(seconds // 86400)} d ago"
    return then.strftime("%d %b %Y")


def safe_link(url: Any) -> str | None:
    """Only http(s) links are clickable; anything else (``javascript:``) is shown as text."""
    text = str(url or "")
    return text if text.lower().startswith(("http://", "https://")) else None


# --- the list -------------------------------------------------------------------------------------------------
def filter_params(source: Mapping[str, Any]) -> dict[str, str]:
    """The list parameters of a query string or a posted form, empty ones left out."""
    return {name: value[:200] for name in FILTER_PARAMS if (value := str(source.get(name) or "").strip())}


def filters_only(params: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in params.items() if k not in VIEW_PARAMS}


def _listing(request: Request[Any, Any, Any], params: dict[str, str], cursor: str | None,
             page: int) -> dict[str, Any]:
    """Rows, the link to the next rows and per-status counts: the filtered list, or search results when ``q`` is
    set (paged by number, as search is). A filter the domain refuses becomes a message above the list."""
    services, actor = services_of(request), actor_of(request)
    filters, sort = filters_only(params), params.get("sort", SORTS[0][0])
    try:
        if params.get("q"):
            result = conversation_search.search(services, actor, params["q"], from_query(filters),
                                                sort_field=sort.lstrip("-"),
                                                order="desc" if sort.startswith("-") else "asc", page=page,
                                                limit=LIST_LIMIT)
            more = page * LIST_LIMIT < result["pagination"]["total"]
            counts, next_query = result["aggregations"]["by_status"], f"page={page + 1}" if more else None
        else:
            result = views.list_conversations(services, actor, filters=from_query(filters), sort=sort,
                                              cursor=cursor, limit=LIST_LIMIT)
            counts = result["counts"]
            next_query = "cursor=" + quote(result["next_cursor"]) if result["next_cursor"] else None
    except AppError as exc:
        if exc.code != "validation_error":
            raise
        return {"items": [], "next_query": None, "counts": {}, "list_error": words(exc)}
    everything = sum(n for status, n in counts.items() if status != "archived")
    return {"items": result["data"], "next_query": next_query, "counts": {**counts, "all": everything},
            "list_error": None}


def _people(request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
    return [u for u in team.list_users(services_of(request), actor_of(request)) if u["status"] == "active"]


def _list_context(request: Request[Any, Any, Any], params: dict[str, str] | None = None, cursor: str | None = None,
                  page: int = 1, *, use_default: bool = False, **extra: Any) -> dict[str, Any]:
    """The list with its filter form and saved filters; ``params`` None reads them from the query string."""
    services, actor = services_of(request), actor_of(request)
    mine = saved_filters.list_mine(services, actor)["data"]
    if params is None:
        params = _requested_params(request, mine, use_default)
    people = _people(request)
    bots = chatbots.search(services, actor, "current", 1, 100)["data"]
    return {"params": params, "tabs": TABS, "statuses": STATUSES, "sorts": SORTS, "bots": bots, "people": people,
            "staff": [p for p in people if allowed(p["role"], "conversation.respond")],
            "known_tags": [t["tag"] for t in actions.tag_suggestions(services, actor, "", 50)["data"]], "ago": ago,
            "more_url": _more_url(params), "saved": mine, "current_filter": _current_filter(mine, params),
            "save": {}, **_listing(request, params, cursor, page), **extra}


def _requested_params(request: Request[Any, Any, Any], mine: list[dict[str, Any]],
                      use_default: bool) -> dict[str, str]:
    """The query's parameters; ``filter_id`` (one of ``mine``) supplies the filters instead, keeping the query's
    words and order. A bare ``/inbox`` (no query string at all) opens with the user's default filter."""
    params = filter_params(request.query_params)
    filter_id = str(request.query_params.get("filter_id") or "")
    if not filter_id and use_default and not request.url.query:
        filter_id = next((f["id"] for f in mine if f["is_default"]), "")
    if not filter_id:
        return params
    saved = next((f for f in mine if f["id"] == filter_id), None)
    if saved is None:
        raise AppError("not_found", "Saved filter not found.")
    return {**parse_filters(saved["filters"]).as_query(), **{k: v for k, v in params.items() if k in VIEW_PARAMS}}


def _current_filter(mine: list[dict[str, Any]], params: dict[str, str]) -> str | None:
    """The saved filter the list shows right now, if any (the same conditions, however they were spelled)."""
    try:
        shown = from_query(filters_only(params))
    except AppError:
        return None
    return next((f["id"] for f in mine if parse_filters(f["filters"]) == shown), None)


def inbox_url(params: dict[str, str]) -> str:
    """The inbox showing ``params``; with none, ``status=`` says "everything" so the default filter stays off."""
    return "/inbox?" + urlencode(params or {"status": ""})


def _more_url(params: dict[str, str]) -> str:
    return "/inbox/list?" + urlencode(params)


# --- one conversation -------------------------------------------------------------------------------------------
QUIET_EVENTS = ("created", "note_added")  # the note itself is in the timeline


def timeline_of(conversation: dict[str, Any], internal_notes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages, internal notes and events in one line, oldest first (ties keep that order)."""
    items = [{"kind": "message", "at": m["timestamp"], **m} for m in conversation["messages"]]
    items += [{"kind": "note", "at": n["created_at"], **n} for n in internal_notes]
    items += [{"kind": "event", "at": e["timestamp"], **e} for e in conversation["events"]
              if e["type"] not in QUIET_EVENTS]
    return sorted(items, key=lambda item: item["at"])


def _abilities(role: str, status: str) -> dict[str, bool]:
    respond = allowed(role, "conversation.respond")
    return {"respond": respond, "assign": allowed(role, "conversation.assign"),
            "export": allowed(role, "export.transcript"),
            "takeover": respond and states.can(status, "agent_join"),
            "reply": respond and status in ("active", "waiting", "escalated", "agent_handling"),
            "return_to_ai": respond and states.can(status, "return_to_ai"),
            "resolve": respond and states.can(status, "resolve"),
            "reopen": respond and states.can(status, "reopen"), "note": respond, "tags": respond}


def _previous(request: Request[Any, Any, Any], conversation: dict[str, Any]) -> list[dict[str, Any]]:
    """The same customer's other conversations, found by e-mail (an anonymous visitor has no history to show)."""
    email = (conversation["customer"] or {}).get("email")
    if not email:
        return []
    found = views.list_conversations(services_of(request), actor_of(request),
                                     filters=from_query({"customer_email": email, "status": ",".join(STATUSES)}),
                                     limit=6)
    return [item for item in found["data"] if item["id"] != conversation["id"]][:5]


def _view_context(request: Request[Any, Any, Any], conversation_id: str, **extra: Any) -> dict[str, Any]:
    """Reading the conversation marks it read for this user (the unread highlight in their list)."""
    services, actor = services_of(request), actor_of(request)
    conversation = views.get_conversation(services, actor, conversation_id)
    actions.mark_read(services, actor, conversation_id)
    can = _abilities(actor.role, conversation["status"])
    canned = canned_responses.list_responses(services, actor, "", 100)["data"] if can["reply"] else []
    return {"conversation": conversation, "timeline": timeline_of(conversation, conversation["internal_notes"]),
            "can": can, "http_link": safe_link, "people": _people(request), "canned": canned,
            "previous": _previous(request, conversation), "ago": ago, "csrf": csrf_token(request),
            "reply_draft": "", **extra}


async def _show(request: Request[Any, Any, Any], conversation_id: str, *, status: int = 200,
                **extra: Any) -> Response[Any]:
    """htmx gets the conversation pane; a browser without JavaScript gets the whole inbox around it."""
    view = await asyncio.to_thread(_view_context, request, conversation_id, **extra)
    if is_htmx(request):
        return render(request, "inbox/_view.html", view, status=status)
    listing = await asyncio.to_thread(_list_context, request)
    return render(request, "inbox/page.html", {**listing, **view, "open_id": conversation_id}, status=status)


async def _explain(request: Request[Any, Any, Any], exc: AppError) -> str:
    """409 already_taken names the colleague, so the agent knows whom to ask."""
    if exc.code == "already_taken" and isinstance(exc.details, dict):
        holder_id = exc.details.get("assigned_agent_id")
        try:
            holder = await asyncio.to_thread(team.get_user, services_of(request), actor_of(request), holder_id)
        except AppError:
            return exc.message
        return f"{holder['display_name'] or holder['email']} is handling this conversation."
    return words(exc)


async def _act(request: Request[Any, Any, Any], conversation_id: str, action: Callable[[], Any],
               **on_error: Any) -> Response[Any]:
    """Run one domain action; redirect (plain form) or re-render the pane (htmx); errors shown inline."""
    try:
        await asyncio.to_thread(action)
    except AppError as exc:
        if exc.code not in INLINE_ERRORS:
            raise
        return await _show(request, conversation_id, status=200 if is_htmx(request) else exc.status,
                           error=await _explain(request, exc), **on_error)
    if not is_htmx(request):
        return redirect(f"/inbox/{conversation_id}")
    return await _show(request, conversation_id)


# --- pages and fragments ------------------------------------------------------------------------------------
@get("/inbox", **PAGE, **console_requires("conversation.view"))
async def inbox_page(request: Request[Any, Any, Any]) -> Response[Any]:
    """With no query string, the user's default saved filter applies; ``?filter_id=`` applies a saved one."""
    listing = await asyncio.to_thread(_list_context, request, use_default=True)
    return render(request, "inbox/page.html", {**listing, "conversation": None, "csrf": csrf_token(request)})


@get("/inbox/list", **PAGE, **console_requires("conversation.view"))
async def list_fragment(request: Request[Any, Any, Any], cursor: str | None = None, page: int = 1) -> Response[Any]:
    """The filtered list (htmx swaps it in place); with ``cursor`` or ``page``, the next rows and a new
    "Load more"; with ``filter_id``, the filter form too (filled with the saved filter) and the list."""
    listing = await asyncio.to_thread(_list_context, request, None, cursor, max(page, 1))
    if not is_htmx(request):
        return render(request, "inbox/page.html", {**listing, "conversation": None, "csrf": csrf_token(request)})
    if request.query_params.get("filter_id"):
        return render(request, "inbox/_browse.html", listing)
    return render(request, "inbox/_rows.html" if cursor or page > 1 else "inbox/_list.html", listing)


@get("/inbox/rows/{conversation_id:str}", **PAGE, **console_acts("conversation.view"))
async def row_fragment(request: Request[Any, Any, Any], conversation_id: str) -> Response[Any]:
    """One list row under the query's filters, for ``inbox.js`` to patch a row loaded further down the list;
    204 when the conversation no longer passes them (the row goes)."""
    filters = from_query(filters_only(filter_params(request.query_params)))
    item = await asyncio.to_thread(views.list_item_if, services_of(request), actor_of(request), conversation_id,
                                   filters)
    if item is None:
        return Response(content=None, status_code=204)
    return render(request, "inbox/_row.html", {"item": item, "ago": ago})


# --- saved filters --------------------------------------------------------------------------------------------
async def saved_filter_found(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Another user's (or workspace's) saved filter is "not found", before the form is read."""
    await asyncio.to_thread(saved_filters.get, services_of(connection), connection.state.actor,
                            connection.path_params["filter_id"])


async def _list_response(request: Request[Any, Any, Any], params: dict[str, str], status: int = 200,
                         **extra: Any) -> Response[Any]:
    listing = await asyncio.to_thread(_list_context, request, params, **extra)
    if is_htmx(request):
        return render(request, "inbox/_list.html", listing)
    return render(request, "inbox/page.html", {**listing, "conversation": None, "csrf": csrf_token(request)},
                  status=status)


@post("/inbox/filters", status_code=200, **PAGE, **console_requires("conversation.view"))
async def save_filter(request: Request[Any, Any, Any]) -> Response[Any]:
    """Saves the filters the list shows (posted as hidden fields) under a name; a duplicate name or a bad
    filter is shown next to the form, which keeps what was typed."""
    form = await checked_form(request)
    params = filter_params(form)
    name, is_default = str(form.get("name") or ""), form.get("is_default") == "true"
    services, actor = services_of(request), actor_of(request)
    try:
        stored = from_query(filters_only(params)).as_dict()
        await asyncio.to_thread(saved_filters.create, services, actor, name, stored, is_default)
    except AppError as exc:
        if exc.code not in ("already_exists", "validation_error"):
            raise
        return await _list_response(request, params, status=exc.status, save={
            "name": name, "is_default": is_default, **error_context(exc)})
    return redirect(inbox_url(params)) if not is_htmx(request) else await _list_response(request, params)


def owns_filter() -> dict[str, Any]:
    """Anyone who may view conversations keeps saved filters; scope (their own) is checked before the form."""
    spec = console_requires("conversation.view")
    return {**spec, "guards": [*spec["guards"], saved_filter_found]}


@post("/inbox/filters/{filter_id:str}/delete", status_code=200, **PAGE, **owns_filter())
async def delete_filter(request: Request[Any, Any, Any], filter_id: str) -> Response[Any]:
    """The list keeps showing what it showed (its parameters come back as hidden fields)."""
    form = await checked_form(request)
    await asyncio.to_thread(saved_filters.delete, services_of(request), actor_of(request), filter_id)
    params = filter_params(form)
    return redirect(inbox_url(params)) if not is_htmx(request) else await _list_response(request, params)


@get(ITEM, **PAGE, **console_acts("conversation.view"))
async def conversation_page(request: Request[Any, Any, Any], conversation_id: str) -> Response[Any]:
    return await _show(request, conversation_id)


# --- actions ------------------------------------------------------------------------------------------------
@post(ITEM + "/takeover", status_code=200, **PAGE, **console_acts("conversation.respond"))
async def takeover(request: Request[Any, Any, Any], conversation_id: str) -> Response[Any]:
    await checked_form(request)
    services, actor = services_of(request), actor_of(request)
    response = await _act(request, conversation_id, lambda: actions.takeover(services, actor, conversation_id))
    live.cancel_answer(conversation_id)  # on the event loop, where answers run
    return response


@post(ITEM + "/reply", status_code=200, **PAGE, **console_acts("conversation.respond"))
async def reply(request: Request[Any, Any, Any], conversation_id: str) -> Response[Any]:
    form = await checked_form(request)
    services, actor = services_of(request), actor_of(request)
    content = str(form.get("content") or "")
    response = await _act(request, conversation_id, lambda: actions.reply(services, actor, conversation_id, content),
                          reply_draft=content)
    live.cancel_answer(conversation_id)
    return response


@post(ITEM + "/return-to-ai", status_code=200, **PAGE, **console_acts("conversation.respond"))
async def return_to_ai(request: Request[Any, Any, Any], conversation_id: str) -> Response[Any]:
    await checked_form(request)
    services, actor = services_of(request), actor_of(request)
    return await _act(request, conversation_id, lambda: actions.return_to_ai(services, actor, conversation_id))


def split_tags(raw: Any) -> list[str]:
    return [tag.strip() for tag in str(raw or "").split(",") if tag.strip()]


@post(ITEM + "/resolve", status_code=200, **PAGE, **console_acts("conversation.respond"))
async def resolve(request: Request[Any, Any, Any], conversation_id: str) -> Response[Any]:
    form = await checked_form(request)
    services, actor = services_of(request), actor_of(request)
    note, tags = str(form.get("resolution_note") or ""), split_tags(form.get("tags"))
    return await _act(request, conversation_id,
                      lambda: actions.resolve(services, actor, conversation_id, note, tags), resolve_open=True)


@post(ITEM + "/reopen", status_code=200, **PAGE, **console_acts("conversation.respond"))
async def reopen(request: Request[Any, Any, Any], conversation_id: str) -> Response[Any]:
    await checked_form(request)
    services, actor = services_of(request), actor_of(request)
    return await _act(request, conversation_id, lambda: actions.reopen(services, actor, conversation_id))


@post(ITEM + "/assign", status_code=200, **PAGE, **console_acts("conversation.respond"))
async def assign(request: Request[Any, Any, Any], conversation_id: str) -> Response[Any]:
    """Agents may assign to themselves; naming someone else is refused by the domain unless owner or admin."""
    form = await checked_form(request)
    services, actor = services_of(request), actor_of(request)
    agent_id = str(form.get("agent_id") or actor.user_id)
    return await _act(request, conversation_id, lambda: actions.assign(services, actor, conversation_id, agent_id))


@post(ITEM + "/tags", status_code=200, **PAGE, **console_acts("conversation.respond"))
async def set_tags(request: Request[Any, Any, Any], conversation_id: str) -> Response[Any]:
    form = await checked_form(request)
    services, actor = services_of(request), actor_of(request)
    tags = split_tags(form.get("tags"))
    return await _act(request, conversation_id, lambda: actions.set_tags(services, actor, conversation_id, tags))


@post(ITEM + "/notes", status_code=200, **PAGE, **console_acts("conversation.respond"))
async def add_note(request: Request[Any, Any, Any], conversation_id: str) -> Response[Any]:
    """Mentioned colleagues are notified in the console, and by e-mail (a job) when SMTP is set."""
    form = await checked_form(request)
    services, actor = services_of(request), actor_of(request)
    content = str(form.get("content") or "")

    def write() -> None:
        mail = mail_configured(services.db, services.settings)
        added = notes.add(services, actor, conversation_id, content, mail=mail)
        for to, subject, body in added.emails:
            send_email(to, subject, body)

    return await _act(request, conversation_id, write, note_draft=content)


@post(ITEM + "/suggest-reply", status_code=200, **PAGE, **console_acts("conversation.respond"))
async def suggest_reply(request: Request[Any, Any, Any], conversation_id: str) -> Response[Any]:
    """The copilot's draft goes into the reply box for the agent to edit; nothing is sent or stored."""
    await checked_form(request)
    try:
        draft = await copilot.suggest_reply(request.app.state.answer_engine, actor_of(request), conversation_id)
    except AppError as exc:
        if exc.code not in INLINE_ERRORS:
            raise
        return await _show(request, conversation_id, error=words(exc))
    if not draft["draft"]:
        return await _show(request, conversation_id, error="The knowledge base has nothing that answers this yet.")
    return await _show(request, conversation_id, reply_draft=draft["draft"],
                       notice="Draft ready: edit it, then send.")


@post(ITEM + "/typing", status_code=204, **PAGE, **console_acts("conversation.respond"))
async def agent_typing(request: Request[Any, Any, Any], conversation_id: str) -> None:
    """The reply box reports typing (``typing=1``) and its end (``typing=0``); the customer's widget shows it."""
    form = await checked_form(request)
    try:
        await asyncio.to_thread(actions.typing, services_of(request), actor_of(request), conversation_id,
                                form.get("typing") == "1")
    except AppError as exc:
        if exc.code not in ("already_taken", "conversation_closed"):
            raise


# --- notifications --------------------------------------------------------------------------------------------
@get("/inbox/notifications", **PAGE, **console_requires("conversation.view"))
async def notification_list(request: Request[Any, Any, Any], cursor: str | None = None) -> Response[Any]:
    return await _notifications(request, cursor)


async def _notifications(request: Request[Any, Any, Any], cursor: str | None) -> Response[Any]:
    found = await asyncio.to_thread(notifications.listing, services_of(request), actor_of(request),
                                    unread_only=False, cursor=cursor, limit=30)
    context = {"notifications": found["data"], "unread_count": found["unread_count"],
               "next_cursor": found["next_cursor"], "ago": ago, "csrf": csrf_token(request)}
    return render(request, "inbox/_notifications.html" if is_htmx(request) else "inbox/notifications.html", context)


@get("/inbox/notifications/count", **PAGE, **console_requires("conversation.view"))
async def notification_count(request: Request[Any, Any, Any]) -> Response[Any]:
    """The bell's number, loaded once per page (inbox.js keeps it live from then on)."""
    found = await asyncio.to_thread(notifications.listing, services_of(request), actor_of(request),
                                    unread_only=True, cursor=None, limit=1)
    return render(request, "inbox/_bell_count.html", {"unread_count": found["unread_count"]})


@post("/inbox/notifications/read", status_code=200, **PAGE, **console_requires("conversation.view"))
async def read_notifications(request: Request[Any, Any, Any]) -> Response[Any]:
    await checked_form(request)
    await asyncio.to_thread(notifications.mark_read, services_of(request), actor_of(request), None)
    if not is_htmx(request):
        return redirect("/inbox/notifications")
    return await _notifications(request, None)


# --- the console event stream ---------------------------------------------------------------------------------
@get("/console/events", **PAGE, **console_requires("conversation.view"))
async def console_events(request: Request[Any, Any, Any], wait: int = 25) -> ServerSentEvent:
    """The workspace's conversation events and this user's notifications, as server-sent events (``event:`` the
    protocol name, ``data:`` its JSON). The stream ends after ``wait`` seconds (at most 55) and EventSource
    reconnects by itself: a planned end survives proxies, and a server shutting down waits for no stream."""
    actor = actor_of(request)
    channels = [live.workspace_channel(actor.workspace_id), live.user_channel(actor.user_id)]
    return ServerSentEvent(_stream(request.app.state.hub, channels, min(max(wait, 1), MAX_STREAM_SECONDS)),
                           headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


async def _stream(hub: live.Hub, channels: list[str], wait: int) -> AsyncIterator[ServerSentEventMessage]:
    feed = Feed(hub)
    try:
        for channel in channels:
            await feed.add(channel)
        yield ServerSentEventMessage(data=None, comment="ChatSupport console events", retry=RETRY_MS)
        deadline = asyncio.get_running_loop().time() + wait
        while (left := deadline - asyncio.get_running_loop().time()) > 0:
            try:
                raw = await asyncio.wait_for(feed.queue.get(), min(left, HEARTBEAT_SECONDS))
            except asyncio.TimeoutError:
                yield ServerSentEventMessage(data=None, comment="heartbeat")
                continue
            message = json.loads(raw)
            yield ServerSentEventMessage(data=json.dumps(message.get("data") or {}, separators=(",", ":")),
                                         event=message.get("event"))
    finally:
        await feed.close()


ROUTES = [inbox_page, list_fragment, row_fragment, save_filter, delete_filter, notification_list, notification_count,
          read_notifications, conversation_page, takeover, reply, return_to_ai, resolve, reopen, assign, set_tags,
          add_note, suggest_reply, agent_typing, console_events]
