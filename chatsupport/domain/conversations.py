"""THE conversation state machine (PRD §5.3.1): one transition table, one function that applies it.

Every status change goes through ``transition``, which checks the table, writes the new status and logs a
``status_changed`` event (plus the caller's own event, e.g. ``escalated``) in the same transaction, so the inbox
and the audit trail never disagree with the conversation row. Works on a writer connection; callers wrap it in
``db.write``.
"""

from __future__ import annotations

from typing import Any

import apsw

from chatsupport.errors import AppError
from chatsupport.store import conversations as store
from chatsupport.store.db import Row

STATUSES = ("active", "waiting", "escalated", "agent_handling", "resolved", "abandoned", "archived")
OPEN = ("active", "waiting", "escalated", "agent_handling")

# (event, from status) → to status: the lifecycle table, row by row. Anything absent is refused with
# 409 ``illegal_transition``.
TRANSITIONS: dict[tuple[str, str], str] = {
    ("ai_replied", "active"): "waiting",           # the AI answered; the ball is in the customer's court
    ("customer_replied", "waiting"): "active",
    ("customer_replied", "active"): "active",
    ("abandon", "waiting"): "abandoned",           # inactivity timeout (chatbot setting)
    ("escalate", "active"): "escalated",           # an escalation rule, or the visitor asks for a human
    ("escalate", "waiting"): "escalated",
    ("agent_join", "active"): "agent_handling",    # takeover, also before any trigger fires
    ("agent_join", "waiting"): "agent_handling",
    ("agent_join", "escalated"): "agent_handling",
    ("return_to_ai", "agent_handling"): "active",
    ("agent_timeout", "agent_handling"): "waiting",  # 10 minutes without an agent reply: the AI may answer again
    **{("resolve", status): "resolved" for status in ("active", "waiting", "escalated", "agent_handling")},
    ("reopen", "resolved"): "active",              # the visitor writes again, or an agent reopens
    ("reopen", "abandoned"): "active",
    ("archive", "resolved"): "archived",           # 90 days after (configurable)
    ("archive", "abandoned"): "archived",
}
# Assigning is not an event of this table: it names an agent without moving the status. On agent_handling it
# hands the conversation to another agent (still agent_handling); elsewhere the status stays and whoever takes
# over holds it (``agent_conversations.assign``).
EVENTS = tuple(sorted({event for event, _ in TRANSITIONS}))


def next_status(current: str, event: str) -> str:
    """The status ``event`` leads to from ``current``; ``illegal_transition`` when the table has no such edge."""
    target = TRANSITIONS.get((event, current))
    if target is None:
        raise AppError("illegal_transition", f"A conversation that is {current} cannot take '{event}'.",
                       details={"status": current, "event": event})
    return target


def can(current: str, event: str) -> bool:
    return (event, current) in TRANSITIONS


def transition(conn: apsw.Connection, workspace_id: str, conversation_id: str, event: str, *,
               by_type: str = "system", by_id: str | None = None, data: dict[str, Any] | None = None,
               reason: str | None = None, agent_id: str | None = None) -> str:
    """Apply ``event``; returns the new status. A self-loop (active → active) changes nothing and logs nothing."""
    conversation = _get(conn, workspace_id, conversation_id)
    current = conversation["status"]
    target = next_status(current, event)
    if target == current:
        return current
    store.set_status(conn, workspace_id, conversation_id, target, escalation_reason=reason, agent_id=agent_id)
    payload = {"from": current, "to": target, "event": event, **({"reason": reason} if reason else {}),
               **(data or {})}
    store.add_event(conn, conversation_id, "status_changed", payload, by_type, by_id)
    return target


def _get(conn: apsw.Connection, workspace_id: str, conversation_id: str) -> Row:
    conversation = store.get(conn, workspace_id, conversation_id)
    if conversation is None:
        raise AppError("not_found", "Conversation not found.")
    return conversation


def start(conn: apsw.Connection, workspace_id: str, chatbot_id: str, customer_id: str | None = None,
          context: dict[str, Any] | None = None) -> str:
    """A new active conversation, with its ``created`` event."""
    conversation_id = store.create(conn, workspace_id, chatbot_id, customer_id, context)
    store.add_event(conn, conversation_id, "created", {"chatbot_id": chatbot_id}, "customer" if customer_id
                    else "system", customer_id)
    return conversation_id


def customer_arrives(conn: apsw.Connection, workspace_id: str, conversation_id: str) -> str:
    """A customer message wakes the conversation: waiting → active, resolved/abandoned → active (reopen).
    Escalated and agent-handled conversations stay where they are (the agent answers, not the AI)."""
    current = _get(conn, workspace_id, conversation_id)["status"]
    if current == "archived":
        raise AppError("conversation_closed")
    if current in ("resolved", "abandoned"):
        return transition(conn, workspace_id, conversation_id, "reopen", by_type="customer")
    if current == "waiting":
        return transition(conn, workspace_id, conversation_id, "customer_replied", by_type="customer")
    return current
