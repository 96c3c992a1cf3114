"""The data of the real-time events (docs/widget-protocol.md), built in one place so the widget, the agent API and
the jobs send the same shapes. Pure functions of stored rows; publishing is ``chatsupport.live``'s job."""

from __future__ import annotations

from typing import Any

from chatsupport.store.db import Row

SURVEY = {"question": "How would you rate your experience?", "type": "rating", "scale": 5}


def message_receive(message: Row, *, avatar_url: str | None = None, client_id: str | None = None) -> dict[str, Any]:
    """``message:receive`` for one stored message row (``store.conversations.MESSAGE_COLUMNS``)."""
    meta = message.get("ai_metadata") or {}
    sources = [{"title": s.get("title"), "url": s.get("url"), "snippet": s.get("snippet")}
               for s in meta.get("sources", [])]
    data: dict[str, Any] = {
        "message_id": message["id"], "conversation_id": message["conversation_id"], "content": message["content"],
        "sender": {"type": message["sender_type"], "name": message.get("sender_name"),
                   "avatar_url": avatar_url if message["sender_type"] in ("bot", "agent") else None},
        "timestamp": message["created_at"], "confidence_score": meta.get("confidence"), "sources": sources,
        "attachments": message.get("attachments") or [],
    }
    if client_id or message.get("client_message_id"):
        data["client_id"] = client_id or message.get("client_message_id")
    return data


def status_changed(conversation_id: str, old: str, new: str, changed_by: str | None) -> dict[str, Any]:
    return {"conversation_id": conversation_id, "old_status": old, "new_status": new, "changed_by": changed_by}


def escalated(conversation_id: str, reason: str, message: str, estimated_wait_time: int | None,
              business_open: bool) -> dict[str, Any]:
    return {"conversation_id": conversation_id, "reason": reason, "message": message,
            "estimated_wait_time": estimated_wait_time, "business_open": business_open}


def agent_joined(conversation_id: str, agent: Row) -> dict[str, Any]:
    return {"conversation_id": conversation_id,
            "agent": {"id": agent["id"], "name": agent.get("name") or agent.get("display_name"),
                      "avatar_url": agent.get("avatar_url"), "title": agent.get("title") or "Support"}}


def resolved(conversation_id: str) -> dict[str, Any]:
    return {"conversation_id": conversation_id, "survey": dict(SURVEY)}


def typing(conversation_id: str, sender_type: str, name: str | None) -> dict[str, Any]:
    return {"conversation_id": conversation_id, "sender": {"type": sender_type, "name": name}}
