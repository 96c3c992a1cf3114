"""A seeded conversation history with hand-chosen times, statuses, ratings and messages, written with plain SQL
(the state machine stamps "now"; analytics needs chosen past moments). ``KNOWN`` is the history of
test_analytics, whose expected numbers are worked out by hand there."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from chatsupport.store.db import Database


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass
class Msg:
    after: float                       # seconds after the conversation started
    sender: str                        # customer | bot | agent
    content: str = "…"
    agent: str | None = None           # an agent message's sender id
    confidence: float | None = None    # a bot answer's ai_metadata confidence
    feedback: str | None = None
    intent: tuple[str, float] | None = None
    sentiment: str | None = None


@dataclass
class Conv:
    created: str                       # "2025-03-10T09:00:00" (UTC)
    status: str
    messages: list[Msg] = field(default_factory=list)
    customer: str | None = None        # a customer key: the same key is the same customer
    resolved_after: float | None = None
    rating: int | None = None
    reason: str | None = None          # escalation reason (and an ``escalate`` event)
    agent: str | None = None           # assigned agent (and an ``agent_join`` event)
    resolved_by: str | None = None


def seed(db: Database, workspace_id: str, chatbot_id: str, conversations: list[Conv]) -> list[str]:
    """Insert the conversations (and their customers, messages and handover events); returns their ids."""
    def write(conn: Any) -> list[str]:
        customers: dict[str, str] = {}
        ids = []
        for conv in conversations:
            start = datetime.fromisoformat(conv.created)
            customer_id = None
            if conv.customer:
                if conv.customer not in customers:
                    customers[conv.customer] = str(uuid.uuid4())
                    conn.execute("INSERT INTO customers(id, workspace_id, name) VALUES (?, ?, ?)",
                                 (customers[conv.customer], workspace_id, conv.customer))
                customer_id = customers[conv.customer]
            conversation_id = str(uuid.uuid4())
            resolved_at = stamp(start + timedelta(seconds=conv.resolved_after)) \
                if conv.resolved_after is not None else None
            conn.execute(
                "INSERT INTO conversations(id, workspace_id, chatbot_id, customer_id, status, assigned_agent_id,"
                " satisfaction_rating, escalation_reason, resolved_by, resolved_at, message_count, created_at,"
                " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (conversation_id, workspace_id, chatbot_id, customer_id, conv.status, conv.agent, conv.rating,
                 conv.reason, conv.resolved_by, resolved_at, len(conv.messages), stamp(start), stamp(start)))
            for message in conv.messages:
                at = stamp(start + timedelta(seconds=message.after))
                meta = json.dumps({"confidence": message.confidence}) if message.sender == "bot" else None
                conn.execute(
                    "INSERT INTO messages(id, conversation_id, sender_type, sender_id, content, ai_metadata, intent,"
                    " intent_confidence, sentiment, feedback, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (str(uuid.uuid4()), conversation_id, message.sender,
                     message.agent if message.sender == "agent" else customer_id if message.sender == "customer"
                     else None, message.content, meta, message.intent[0] if message.intent else None,
                     message.intent[1] if message.intent else None, message.sentiment, message.feedback, at))
            for event, happened in (("escalate", conv.reason), ("agent_join", conv.agent)):
                if happened:
                    conn.execute("INSERT INTO conversation_events(id, conversation_id, event_type, event_data,"
                                 " created_at) VALUES (?, ?, 'status_changed', ?, ?)",
                                 (str(uuid.uuid4()), conversation_id, json.dumps({"event": event}), stamp(start)))
            ids.append(conversation_id)
        return ids

    return db.write(write)


def known_history(agent_id: str) -> list[Conv]:
    """Ten conversations on 10–11 March 2025 (UTC), one just before and one just after."""
    return [
        Conv("2025-03-09T23:59:59", "resolved", [Msg(0, "customer", "Do you deliver?"), Msg(1, "bot", confidence=.9)],
             customer="Y", resolved_after=60),                                                            # c0
        Conv("2025-03-10T09:00:00", "resolved",
             [Msg(0, "customer", "How do I reset my password?", intent=("account", .9), sentiment="positive"),
              Msg(2, "bot", "Use the link.", confidence=.9, feedback="up")],
             customer="X", resolved_after=600, rating=5),                                                # c1
        Conv("2025-03-10T09:20:00", "resolved",
             [Msg(0, "customer", "how do i reset my password", intent=("account", .7)),
              Msg(4, "bot", confidence=.8)], customer="Y", resolved_after=300),                           # c2
        Conv("2025-03-10T14:00:00", "abandoned",
             [Msg(0, "customer", "What are your opening hours?", intent=("hours", .6)),
              Msg(6, "bot", confidence=.7)], customer="Z"),                                               # c3
        Conv("2025-03-10T15:00:00", "resolved",
             [Msg(0, "customer", "I want a refund", intent=("billing", .5), sentiment="negative"),
              Msg(2, "bot", confidence=.3), Msg(30, "customer", "hello??", sentiment="very_negative"),
              Msg(62, "agent", "Sorry, refunding now.", agent=agent_id)],
             customer="W", resolved_after=1200, rating=2, reason="low_confidence", agent=agent_id,
             resolved_by=agent_id),                                                                       # c4
        Conv("2025-03-10T23:50:00", "active",
             [Msg(0, "customer", "Do you ship to Canada?"), Msg(3, "bot", confidence=.6)], customer="V"),   # c5
        Conv("2025-03-11T00:10:00", "resolved",
             [Msg(0, "customer", "Password reset not working", intent=("account", .8)),
              Msg(2, "bot", confidence=.5, feedback="down")], customer="U", resolved_after=120, rating=3),  # c6
        Conv("2025-03-11T10:00:00", "escalated",
             [Msg(0, "customer", "talk to a human"), Msg(1, "bot", confidence=.9)], customer="T",
             reason="user_request"),                                                                      # c7
        Conv("2025-03-11T11:00:00", "resolved",
             [Msg(0, "customer", "What are your opening hours", intent=("hours", 1.0)),
              Msg(5, "bot", confidence=.95)], customer="X", resolved_after=240, rating=4),                 # c8
        Conv("2025-03-11T12:00:00", "archived",
             [Msg(0, "customer", "Do you ship to Canada"), Msg(2, "bot", confidence=.8)], customer="S",
             resolved_after=1800),                                                                        # c9
        Conv("2025-03-11T13:00:00", "abandoned", [Msg(0, "customer", "hi")]),                              # c10
        Conv("2025-03-12T00:00:00", "resolved", [Msg(0, "customer", "Are you open on Sunday?"),
                                                Msg(1, "bot", confidence=.9)], customer="R", resolved_after=60),  # c11
    ]
