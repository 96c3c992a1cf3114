"""One visitor's frames in, the immediate answers out: the protocol's visitor → server table in one place, shared by
the WebSocket and the HTTP fallback (docs/widget-protocol.md). Limits are checked here, before anything is stored;
every refusal is an ``error`` frame with its code, never a silent drop."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Awaitable, Callable

from chatsupport import live
from chatsupport.domain import visitor_chat, widget
from chatsupport.domain import widget_limits as limits
from chatsupport.domain.widget import Visitor
from chatsupport.errors import AppError
from chatsupport.store import widget as store
from chatsupport.store.db import Row
from chatsupport.web.widget.runtime import WidgetRuntime

log = logging.getLogger(__name__)

Frame = dict[str, Any]
Subscribe = Callable[[str], Awaitable[None]]
MAX_FRAME_CHARS = 64 * 1024
MAX_CLIENT_ID = 100
MAX_ATTACHMENTS = 5


def frame(event: str, data: dict[str, Any]) -> Frame:
    return {"event": event, "data": data}


def error_frame(error: AppError, client_id: str | None = None) -> Frame:
    data: dict[str, Any] = {"code": error.code, "message": error.message}
    if isinstance(error.details, dict) and "retry_after" in error.details:
        data["retry_after"] = error.details["retry_after"]
    elif isinstance(error.details, list):
        data["details"] = error.details
    if client_id:
        data["client_id"] = client_id
    return frame("error", data)


def limited(retry_after: int, what: str) -> AppError:
    return AppError("rate_limited", f"You're sending {what} too quickly. Please wait {retry_after} seconds.",
                    details={"retry_after": retry_after})


async def _no_subscription(channel: str) -> None:
    """The HTTP fallback listens through its event stream instead."""


class VisitorSession:
    """``visitor`` may change (``visitor:identify``); ``subscribe`` adds a channel to this connection's feed."""

    def __init__(self, runtime: WidgetRuntime, visitor: Visitor, client_ip: str,
                 subscribe: Subscribe = _no_subscription):
        self.runtime, self.visitor, self.client_ip, self.subscribe = runtime, visitor, client_ip, subscribe
        self.owned: set[str] = set()  # conversations checked to be this visitor's (typing relays skip the query)
        self.token: tuple[str, str] | None = None

    @property
    def db(self) -> Any:
        return self.runtime.services.db

    async def bot(self) -> Row:
        return self.runtime.usable_bot(await self.runtime.bot(self.visitor.chatbot_id), self.visitor)

    # --- entry points ---------------------------------------------------------------------------------------
    async def handle_text(self, text: str) -> list[Frame]:
        if len(text) > MAX_FRAME_CHARS:
            return [error_frame(AppError("bad_request", "The frame is too large."))]
        try:
            parsed = json.loads(text)
        except ValueError:
            return [error_frame(AppError("bad_request", "Frames are JSON: {\"event\": NAME, \"data\": {...}}."))]
        return await self.handle(parsed)

    async def handle(self, parsed: Any) -> list[Frame]:
        event = parsed.get("event") if isinstance(parsed, dict) else None
        data = parsed.get("data") if isinstance(parsed, dict) else None
        data = data if isinstance(data, dict) else {}
        handler = HANDLERS.get(event) if isinstance(event, str) else None
        if handler is None:
            return [error_frame(AppError("bad_request", f"Unknown event {str(event)[:50]!r}."))]
        client_id = data.get("client_id") if isinstance(data.get("client_id"), str) else None
        try:
            return await handler(self, data)
        except AppError as exc:
            return [error_frame(exc, client_id)]
        except Exception:  # noqa: BLE001 - one bad frame must not end the visitor's connection
            log.exception("widget frame %s failed", event)
            return [error_frame(AppError("internal_error"), client_id)]

    # --- the events -----------------------------------------------------------------------------------------
    async def ping(self, data: dict[str, Any]) -> list[Frame]:
        return [frame("pong", {})]

    async def start(self, data: dict[str, Any]) -> list[Frame]:
        bot = await self.bot()
        offline = data.get("offline") is True
        self._count_new_conversation()
        started = await visitor_chat.start(self.db, self.visitor, bot, data.get("fields"), data.get("metadata"),
                                           offline=offline, message=data.get("message") if offline else None)
        await self._own(started["conversation_id"])
        frames = [frame("conversation:started", started)]
        message = data.get("message")
        if not offline and isinstance(message, str) and message.strip():
            frames += await self.send({"conversation_id": started["conversation_id"], "content": message})
        return frames

    async def send(self, data: dict[str, Any]) -> list[Frame]:
        client_id = _client_id(data.get("client_id"))
        content = visitor_chat.message_text(data.get("content"))
        attachments = _attachment_ids(data.get("attachments"))
        conversation_id = data.get("conversation_id")
        if conversation_id is None and client_id:
            conversation_id = await asyncio.to_thread(self._started_by, client_id)
        frames: list[Frame] = []
        wait = self.runtime.limiter.check(self._key("messages"), limits.MESSAGES)
        if wait is not None and not await self._is_resend(conversation_id, client_id):
            raise limited(wait, "messages")
        bot = await self.bot()
        if conversation_id is None:
            self._count_new_conversation()
            started = await visitor_chat.start(self.db, self.visitor, bot, {}, data.get("metadata"))
            conversation_id = started["conversation_id"]
            await self._own(conversation_id)
            frames.append(frame("conversation:started", started))
        elif not isinstance(conversation_id, str):
            raise AppError("bad_request", "conversation_id is a string or null.")
        sent = await visitor_chat.send(self.db, self.visitor, conversation_id, content, client_id, attachments)
        await self._own(conversation_id)
        frames.append(frame("message:ack", {"client_id": client_id, "message_id": sent.message["id"],
                                            "conversation_id": conversation_id,
                                            "timestamp": sent.message["created_at"]}))
        if not sent.duplicate:
            self.runtime.limiter.hit(self._key("messages"), limits.MESSAGES)
            if sent.status not in ("escalated", "agent_handling"):
                self.runtime.answers.start(self.visitor, bot, sent)
        return frames

    async def typing(self, data: dict[str, Any], on: bool) -> list[Frame]:
        conversation_id = data.get("conversation_id")
        if conversation_id not in self.owned:
            await asyncio.to_thread(lambda: visitor_chat.own_conversation(self.db.reader(), self.visitor,
                                                                          conversation_id))
            self.owned.add(conversation_id)
        visitor_chat.typing(self.visitor, conversation_id, on)
        return []

    async def request_human(self, data: dict[str, Any]) -> list[Frame]:
        result = await visitor_chat.request_human(self.db, self.visitor, await self.bot(),
                                                  str(data.get("conversation_id")))
        live.cancel_answer(result["conversation_id"])  # a person takes it from here: the AI stops mid-answer
        return [frame("conversation:escalated", result)]

    async def csat(self, data: dict[str, Any]) -> list[Frame]:
        result = await visitor_chat.rate(self.db, self.visitor, str(data.get("conversation_id")),
                                         data.get("rating"), data.get("comment"))
        return [frame("csat:received", result)]

    async def feedback(self, data: dict[str, Any]) -> list[Frame]:
        result = await visitor_chat.feedback(self.db, self.visitor, data.get("message_id"), data.get("helpful"))
        return [frame("feedback:received", result)]

    async def identify(self, data: dict[str, Any]) -> list[Frame]:
        visitor, conversation_id = await visitor_chat.identify(self.db, self.visitor, await self.bot(), data)
        self.visitor, self.owned = visitor, set()
        token, expires_at = widget.issue_token(self.runtime.secret, visitor)
        self.token = (token, expires_at)
        if conversation_id:
            await self._own(conversation_id)
        return [frame("visitor:identified", {"user_id": visitor.user_id, "conversation_id": conversation_id,
                                             "token": token, "token_expires_at": expires_at})]

    async def metadata(self, data: dict[str, Any]) -> list[Frame]:
        await visitor_chat.set_metadata(self.db, self.visitor, data.get("metadata"))
        return []

    async def resume(self, data: dict[str, Any]) -> list[Frame]:
        """Subscribe first, then read: a message committed in between arrives twice rather than never (the frame
        drops a message id it already shows)."""
        bot = await self.bot()
        conversation_id = data.get("conversation_id")
        await asyncio.to_thread(lambda: visitor_chat.own_conversation(self.db.reader(), self.visitor,
                                                                      conversation_id))
        await self._own(conversation_id)
        messages, done = await asyncio.to_thread(lambda: visitor_chat.replay(
            self.db.reader(), self.visitor, bot, conversation_id, data.get("last_message_id")))
        return [*(frame("message:receive", m) for m in messages), frame("resume:done", done)]

    # --- helpers --------------------------------------------------------------------------------------------
    def _key(self, what: str) -> str:
        return f"{what}:{self.visitor.chatbot_id}:{self.visitor.visitor_id}"

    def _count_new_conversation(self) -> None:
        """5 new conversations an hour per visitor, ``WIDGET_IP_LIMIT`` per client IP; counted when allowed."""
        per_ip = limits.ip_windows(self.runtime.services.settings.WIDGET_IP_LIMIT)
        ip_key = f"ip-conversations:{self.client_ip}"
        wait = self.runtime.limiter.check(self._key("conversations"), limits.VISITOR_CONVERSATIONS)
        wait = wait or self.runtime.limiter.check(ip_key, per_ip)
        if wait is not None:
            raise limited(wait, "new conversations")
        self.runtime.limiter.hit(self._key("conversations"), limits.VISITOR_CONVERSATIONS)
        self.runtime.limiter.hit(ip_key, per_ip)

    async def _is_resend(self, conversation_id: Any, client_id: str | None) -> bool:
        """A resend is acked even at the limit: it stores nothing."""
        if not isinstance(conversation_id, str) or conversation_id not in self.owned or not client_id:
            return False
        return await asyncio.to_thread(lambda: store.message_by_client_id(
            self.db.reader(), conversation_id, client_id) is not None)

    def _started_by(self, client_id: str) -> str | None:
        """The conversation a re-sent first message already started (the ack was lost with the connection)."""
        conn = self.db.reader()
        customer_id = widget.customer_of(conn, self.visitor)
        if customer_id is None:
            return None
        found = store.conversation_of_client_message(conn, self.visitor.chatbot_id, customer_id, client_id)
        if found is not None:
            self.owned.add(found)
        return found

    async def _own(self, conversation_id: str) -> None:
        self.owned.add(conversation_id)
        await self.subscribe(live.conversation_channel(conversation_id))


def _client_id(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= MAX_CLIENT_ID:
        raise AppError("bad_request", f"client_id is a string of at most {MAX_CLIENT_ID} characters.")
    return value


def _attachment_ids(value: Any) -> list[str]:
    if value in (None, []):
        return []
    if not isinstance(value, list) or len(value) > MAX_ATTACHMENTS or not all(isinstance(v, str) for v in value):
        raise AppError("bad_request", f"attachments is a list of at most {MAX_ATTACHMENTS} attachment ids.")
    return value


HANDLERS: dict[str, Callable[[VisitorSession, dict[str, Any]], Awaitable[list[Frame]]]] = {
    "ping": VisitorSession.ping,
    "conversation:start": VisitorSession.start,
    "message:send": VisitorSession.send,
    "typing:start": lambda session, data: session.typing(data, True),
    "typing:stop": lambda session, data: session.typing(data, False),
    "conversation:request_human": VisitorSession.request_human,
    "csat:submit": VisitorSession.csat,
    "message:feedback": VisitorSession.feedback,
    "visitor:identify": VisitorSession.identify,
    "visitor:metadata": VisitorSession.metadata,
    "resume": VisitorSession.resume,
}
