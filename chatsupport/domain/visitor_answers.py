"""The AI's answer to a widget message, streamed to the conversation's channel (docs/widget-protocol.md):
``typing:start``, ``message:streaming`` chunks under the reply's pre-allocated id, the stored ``message:receive``,
then ``conversation:status_changed`` / ``conversation:escalated`` when the pipeline moved the conversation.

The widget acknowledges a message as soon as it is committed, before retrieval starts (the ack must not wait for
the answer), so the message is already stored when the answer engine runs (``stored_message_id``).
Each answer runs as a task registered with ``live.answering``: an agent's takeover cancels it mid-stream.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from chatsupport import live
from chatsupport.domain import conversation_payloads as payloads
from chatsupport.domain import handover
from chatsupport.domain import visitor_chat
from chatsupport.domain.chatbot_schema import DEFAULTS
from chatsupport.domain.chatbots import merge
from chatsupport.domain.widget import Visitor
from chatsupport.llm.answer import AnswerEngine
from chatsupport.store import conversations as store
from chatsupport.store import widget as widget_store
from chatsupport.store.db import Row

log = logging.getLogger(__name__)


class Answers:
    """The answer tasks of this process, one chain per conversation: a second message waits for the first answer
    instead of racing it, and cancelling the newest (a takeover) cancels the one it waits for too. The newest
    task per conversation is the one ``live`` knows, which a takeover cancels."""

    def __init__(self, engine: AnswerEngine):
        self.engine = engine

    def start(self, visitor: Visitor, bot: Row, sent: visitor_chat.Sent) -> asyncio.Task[None]:
        conversation_id = sent.conversation_id
        previous = live.answer_in_progress(conversation_id)
        task = asyncio.create_task(self._run(visitor, bot, sent, previous))
        live.answering(conversation_id, task)
        return task

    async def _run(self, visitor: Visitor, bot: Row, sent: visitor_chat.Sent,
                   previous: asyncio.Task[None] | None) -> None:
        if previous is not None and not previous.done():
            try:
                await asyncio.wait({previous})
            except asyncio.CancelledError:
                previous.cancel()
                raise
        await stream_answer(self.engine, visitor, bot, sent)


async def stream_answer(engine: AnswerEngine, visitor: Visitor, bot: Row, sent: visitor_chat.Sent) -> None:
    conversation_id, reply_id = sent.conversation_id, str(uuid.uuid4())
    settings = merge(DEFAULTS, bot["settings"])
    typing = payloads.typing(conversation_id, "bot", bot["name"])
    show_typing = bool(settings["behavior_settings"].get("show_typing_indicator", True))
    final: dict[str, Any] | None = None
    streamed = False
    if show_typing:
        visitor_chat.publish("typing:start", typing, visitor, conversation_id)
    try:
        async for event in engine.respond(visitor.workspace_id, conversation_id, sent.message["content"],
                                          client_message_id=sent.message.get("client_message_id"),
                                          bot_message_id=reply_id, stored_message_id=sent.message["id"]):
            if event["type"] == "delta" and event["text"]:
                streamed = True
                live.publish("message:streaming", {"message_id": reply_id, "conversation_id": conversation_id,
                                                   "chunk": event["text"]}, conversation_id=conversation_id)
            elif event["type"] == "reset":
                live.publish("message:streaming", {"message_id": reply_id, "conversation_id": conversation_id,
                                                   "chunk": "", "reset": True}, conversation_id=conversation_id)
            elif event["type"] == "message":
                final = event
    except asyncio.CancelledError:
        if streamed:  # a takeover: the frame drops the half-shown answer
            live.publish("message:streaming", {"message_id": reply_id, "conversation_id": conversation_id,
                                               "chunk": "", "reset": True}, conversation_id=conversation_id)
        raise
    except Exception:  # noqa: BLE001 - the visitor is told; the message stays for the agents
        log.exception("the AI answer in conversation %s failed", conversation_id)
        visitor_chat.publish("error", {"code": "internal_error", "message": "The assistant could not answer just "
                                       "now. A member of our team will see your message."}, visitor, conversation_id)
    finally:
        if show_typing:
            visitor_chat.publish("typing:stop", typing, visitor, conversation_id)
    if final is not None and final.get("message_id"):
        await _announce(engine, visitor, bot, sent, final)


async def _announce(engine: AnswerEngine, visitor: Visitor, bot: Row, sent: visitor_chat.Sent,
                    final: dict[str, Any]) -> None:
    """The stored reply and what it did to the conversation, after the pipeline committed both."""
    conversation_id = sent.conversation_id

    def read() -> tuple[Row | None, str]:
        conn = engine.db.reader()
        reply = widget_store.message(conn, conversation_id, final["message_id"])
        status = store.get(conn, visitor.workspace_id, conversation_id)
        return reply, status["status"] if status else sent.status

    reply, status = await asyncio.to_thread(read)
    if reply is not None:
        visitor_chat.publish("message:receive", visitor_chat.receive_payload(reply, bot), visitor, conversation_id)
    if status != sent.status:
        visitor_chat.publish("conversation:status_changed",
                             payloads.status_changed(conversation_id, sent.status, status, "system"), visitor,
                             conversation_id)
    if final.get("escalated"):
        hours = merge(DEFAULTS, bot["settings"])["business_hours"]
        wait = await asyncio.to_thread(lambda: handover.wait_estimate(
            engine.db.reader(), visitor.workspace_id, hours, engine.now()))
        notice = str(final.get("content") or "").split("\n\n")[-1]
        visitor_chat.publish("conversation:escalated",
                             payloads.escalated(conversation_id, final.get("reason") or "user_request", notice,
                                                wait.seconds, wait.open_now), visitor, conversation_id)
