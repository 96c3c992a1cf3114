"""The widget over plain HTTP, for networks that block WebSockets (docs/widget-protocol.md, "Fallback"), and the
token refresh.

``POST /widget/api/messages`` takes one visitor frame and answers with the immediate events; everything else
(the AI's streamed answer, agents' replies) arrives on ``GET /widget/api/events``, a server-sent event stream that
starts with the replay ``resume`` would send. The stream ends after ``wait`` seconds and the browser's
EventSource reconnects on its own, sending the last event id (a message id) to continue from — long-lived
requests through proxies die at unpredictable times, a planned end does not.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, AsyncIterator

from litestar import Request, get, post
from msgspec import Struct
from litestar.response import ServerSentEvent, ServerSentEventMessage

from chatsupport import live
from chatsupport.domain import visitor_chat, widget
from chatsupport.domain.widget import Visitor
from chatsupport.errors import AppError
from chatsupport.web.client import client_ip
from chatsupport.web.permissions import public
from chatsupport.web.widget.feed import Feed
from chatsupport.web.widget.runtime import WidgetRuntime, runtime_of
from chatsupport.web.widget.session import VisitorSession

KEEPALIVE_SECONDS = 15.0
MAX_WAIT_SECONDS = 55
RETRY_MS = 1000


class FrameEvents(Struct):
    events: list[dict[str, Any]]  # {"event", "data"} frames, as docs/widget-protocol.md lists them


class RefreshedToken(Struct):
    token: str
    token_expires_at: str


def bearer(request: Request[Any, Any, Any]) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


async def visitor_of(request: Request[Any, Any, Any], token: str | None = None, grace: int = 0) -> Visitor:
    """The token's visitor while their chatbot still serves their site (else 404/403 like the frame)."""
    runtime = runtime_of(request.app)
    visitor = widget.read_token(runtime.secret, token or bearer(request), grace=grace)
    runtime.usable_bot(await runtime.bot(visitor.chatbot_id), visitor)
    return visitor


@post("/widget/api/messages", status_code=200, **public())
async def post_frame(request: Request[Any, Any, Any]) -> FrameEvents:
    """One visitor frame as the body → ``{"events": [...]}``, the answers the WebSocket would send at once."""
    visitor = await visitor_of(request)
    runtime = runtime_of(request.app)
    session = VisitorSession(runtime, visitor, client_ip(request.scope, runtime.services.settings.TRUSTED_PROXIES))
    body = await request.body()
    events = await session.handle_text(body.decode("utf-8", "replace"))
    return FrameEvents(events=events)


@post("/widget/api/token", status_code=200, **public())
async def refresh_token(request: Request[Any, Any, Any]) -> RefreshedToken:
    """A fresh token for one that expired less than a day ago (a laptop waking up), same claims."""
    visitor = await visitor_of(request, grace=widget.REFRESH_GRACE_SECONDS)
    token, expires_at = widget.issue_token(runtime_of(request.app).secret, visitor)
    return RefreshedToken(token=token, token_expires_at=expires_at)


@get("/widget/api/events", **public())
async def event_stream(request: Request[Any, Any, Any], token: str, conversation_id: str | None = None,
                       last_message_id: str | None = None, wait: int = 25) -> ServerSentEvent:
    visitor = await visitor_of(request, token)
    runtime = runtime_of(request.app)
    bot = await runtime.bot(visitor.chatbot_id)
    after = last_message_id or request.headers.get("last-event-id") or None
    replay = None
    if conversation_id is not None:  # checked before the stream starts, so a stranger's id is a plain 404
        replay = await asyncio.to_thread(lambda: visitor_chat.replay(runtime.services.db.reader(), visitor, bot,
                                                                     conversation_id, after))
    if not runtime.connections.acquire(visitor.workspace_id):
        raise AppError("too_many_connections", details={"retry_after": 30})
    return ServerSentEvent(_events(runtime, visitor, conversation_id, replay, min(max(wait, 1), MAX_WAIT_SECONDS)),
                           headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


async def _events(runtime: WidgetRuntime, visitor: Visitor, conversation_id: str | None,
                  replay: tuple[list[dict[str, Any]], dict[str, Any]] | None,
                  wait: int) -> AsyncIterator[ServerSentEventMessage]:
    feed = Feed(runtime.hub)
    try:
        await feed.add(live.chatbot_channel(visitor.chatbot_id))
        if conversation_id is not None:
            await feed.add(live.conversation_channel(conversation_id))
        yield ServerSentEventMessage(data=None, comment="ChatSupport widget events", retry=RETRY_MS)
        if replay is not None:
            messages, done = replay
            for data in messages:
                yield ServerSentEventMessage(data=_json(data), event="message:receive", id=data["message_id"])
            yield ServerSentEventMessage(data=_json(done), event="resume:done")
        deadline = time.monotonic() + wait
        while (left := deadline - time.monotonic()) > 0:
            try:
                raw = await asyncio.wait_for(feed.queue.get(), min(left, KEEPALIVE_SECONDS))
            except asyncio.TimeoutError:
                yield ServerSentEventMessage(data=None, comment="keep-alive")
                continue
            yield _sse(raw)
    finally:
        runtime.connections.release(visitor.workspace_id)
        await feed.close()


def _json(data: dict[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":"))


def _sse(raw: bytes) -> ServerSentEventMessage:
    """A published frame as one SSE event; a message's id is the event id the browser resumes from."""
    message = json.loads(raw)
    data = message.get("data") or {}
    event_id = data.get("message_id") if message.get("event") == "message:receive" else None
    return ServerSentEventMessage(data=_json(data), event=message.get("event"), id=event_id)


ROUTES = [post_frame, refresh_token, event_stream]
