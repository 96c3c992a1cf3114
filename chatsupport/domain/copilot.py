"""The agent copilot: a draft reply to the customer's latest message, from the knowledge base, through the chatbot's
own provider chain (the built-in extractive provider when none is configured). The agent edits it and sends it
as their own reply; drafting stores nothing in the conversation and changes nothing (``AnswerEngine.draft``) —
only a cloud provider's tokens count toward the workspace's daily cap, as for any answer."""

from __future__ import annotations

import asyncio
from typing import Any

from chatsupport.domain.audit import Actor
from chatsupport.errors import AppError
from chatsupport.llm.answer import AnswerEngine
from chatsupport.store import collaboration as store
from chatsupport.store import conversations as conversation_store


async def suggest_reply(engine: AnswerEngine, actor: Actor, conversation_id: str) -> dict[str, Any]:
    """``draft`` is empty (confidence 0) when nothing in the knowledge base answers the question."""

    def latest() -> Any:
        conn = engine.db.reader()
        if conversation_store.get(conn, actor.workspace_id, conversation_id) is None:
            raise AppError("not_found", "Conversation not found.")
        return store.latest_customer_message(conn, actor.workspace_id, conversation_id)

    message = await asyncio.to_thread(latest)
    if message is None:
        raise AppError("conflict", "The customer has not written anything yet: there is nothing to reply to.")
    turn = await engine.draft(actor.workspace_id, conversation_id, message["id"], message["content"])
    return {"conversation_id": conversation_id, "reply_to": message["id"], "draft": turn.answer,
            "sources": [{"title": s["title"], "url": s["url"]} for s in turn.sources],
            "confidence": turn.confidence if turn.confidence is not None else 0.0, "provider": turn.provider}
