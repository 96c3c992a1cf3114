"""A customer with something in every place the product keeps customer data, for the privacy and retention tests:
profile with custom fields, two conversations (messages naming them, a note, CSAT, feedback, an answer review, a
notification, attachments on disk), an unsent upload, a webhook delivery and the analytics rolled up. Plus a sweep
of every table in the database for given strings."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from chatsupport.domain import analytics
from chatsupport.domain import conversations as states
from chatsupport.store import collaboration
from chatsupport.store import conversations as store
from chatsupport.store import widget


@dataclass
class Person:
    name: str
    email: str
    phone: str
    word: str  # a word only this person ever wrote
    visitor_id: str
    customer_id: str = ""
    conversations: list[str] = field(default_factory=list)
    attachments: list[str] = field(default_factory=list)

    @property
    def needles(self) -> list[str]:
        first, last = self.name.split()
        return [self.customer_id, self.email, first, last, self.phone, self.visitor_id]


ZELDA = ("Zelda Quixote", "zelda.quixote@example.org", "+44 7700 900123", "xylophonic", "v_zelda_0001")
CARL = ("Carl Control", "carl.control@example.org", "+44 7700 900456", "marmalading", "v_carl_0001")


def seed_person(team: Any, folder: Path, values: tuple[str, ...], created_at: str | None = None,
                updated_at: str | None = None) -> Person:
    """Two resolved conversations and everything around them; ``created_at``/``updated_at`` age them."""
    person = Person(*values)
    db, ws, bot = team.db, team.ws, team.bot

    def write(conn: Any) -> None:
        person.customer_id = store.create_customer(conn, ws, visitor_id=person.visitor_id, name=person.name,
                                                   email=person.email, metadata={"plan": "gold"})
        conn.execute("UPDATE customers SET phone = ?, external_id = ?, custom_fields = ? WHERE id = ?",
                     (person.phone, f"crm-{person.word}", json.dumps({"order_ref": f"ORD-{person.word}"}),
                      person.customer_id))
        for n in range(2):
            conv = states.start(conn, ws, bot, person.customer_id, {
                "page_url": f"https://shop.example/cart?email={person.email}&n={n}",
                "referrer": "https://mail.example/?inbox=1", "user_agent": "Mozilla/5.0 Test", "device": "desktop"})
            person.conversations.append(conv)
            asked = store.add_message(conn, conv, "customer", f"Hi, I am {person.name}, my {person.word} order "
                                      f"failed. Mail me at {person.email} or call {person.phone}.",
                                      sender_id=person.customer_id, sender_name=person.name)
            answer = store.add_message(conn, conv, "bot", f"Sorry {person.name.split()[0]}, let me check.",
                                       ai_metadata={"outcome": "declined", "confidence": 0.2, "sources": [],
                                                    "reply_to": asked})
            store.set_feedback(conn, answer, "down")
            conn.execute("INSERT INTO answer_reviews(message_id, workspace_id, chatbot_id, verdict, note)"
                         " VALUES (?, ?, ?, 'incorrect', ?)", (answer, ws, bot, f"{person.name} was right"))
            conn.execute("INSERT INTO internal_notes(id, conversation_id, content, author_id) VALUES (?, ?, ?, ?)",
                         (str(uuid.uuid4()), conv, f"{person.name} ({person.email}) is a VIP, {person.word}",
                          team.agent["id"]))
            widget.set_satisfaction(conn, conv, 2, f"Slow. {person.name}")
            store.add_event(conn, conv, "csat", {"rating": 2, "comment": f"Slow. {person.name}"}, "customer",
                            person.customer_id)
            collaboration.add_notification(conn, ws, team.agent["id"], "escalation", f"{person.name} needs a person",
                                           "Asked for a human.", conversation_id=conv)
            states.transition(conn, ws, conv, "resolve")
            person.attachments.append(_attachment(conn, folder, ws, bot, person.visitor_id, conv, asked))
        person.attachments.append(_attachment(conn, folder, ws, bot, person.visitor_id, None, None))
        hook = str(uuid.uuid4())
        conn.execute("INSERT INTO webhooks(id, workspace_id, url, events, secret_enc) VALUES (?, ?, ?, '[]', x'00')",
                     (hook, ws, f"https://hooks.example/{hook}"))
        conn.execute("INSERT INTO webhook_deliveries(id, webhook_id, workspace_id, event, payload, customer_id)"
                     " VALUES (?, ?, ?, 'message.created', ?, ?)",
                     (str(uuid.uuid4()), hook, ws, json.dumps({"customer": {"email": person.email}}),
                      person.customer_id))
        if created_at or updated_at:
            conn.execute("UPDATE conversations SET created_at = coalesce(?, created_at),"
                         " updated_at = coalesce(?, updated_at) WHERE customer_id = ?",
                         (created_at, updated_at, person.customer_id))

    db.write(write)
    analytics.roll_up(db, budget_seconds=30)
    return person


def _attachment(conn: Any, folder: Path, ws: str, bot: str, visitor_id: str, conversation_id: str | None,
                message_id: str | None) -> str:
    attachment_id = widget.new_id()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / attachment_id).write_bytes(b"%PDF-1.4 invoice")
    widget.add_attachment(conn, {"id": attachment_id, "workspace_id": ws, "chatbot_id": bot, "visitor_id": visitor_id,
                                 "filename": "invoice.pdf", "content_type": "application/pdf", "size": 16,
                                 "sha256": "0" * 64})
    if conversation_id:
        conn.execute("UPDATE attachments SET conversation_id = ?, message_id = ? WHERE id = ?",
                     (conversation_id, message_id, attachment_id))
        widget.set_message_attachments(conn, message_id, [{"id": attachment_id, "filename": "invoice.pdf"}])
    return attachment_id


def sweep(db: Any, needles: list[str]) -> list[tuple[str, str, str]]:
    """(table, column, needle) for every text value anywhere in the database holding a needle (case-insensitive).
    Every table sqlite_master lists is read, virtual and shadow tables included."""
    conn = db.reader()
    hits = []
    lowered = [needle.lower() for needle in needles if needle]
    tables = [row["name"] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    for table in tables:
        for row in conn.execute(f'SELECT * FROM "{table}"'):
            for column, value in row.items():
                if isinstance(value, bytes):
                    value = value.decode("utf-8", "ignore")
                if isinstance(value, str):
                    hits += [(table, column, needle) for needle in lowered if needle in value.lower()]
    return hits


def fts_hits(db: Any, word: str) -> int:
    conn = db.reader()
    phrase = '"' + word.replace('"', '""') + '"'
    return sum(conn.execute(f"SELECT count(*) AS n FROM {table} WHERE {table} MATCH ?", (phrase,)).fetchone()["n"]
               for table in ("conversation_text", "customer_text"))


def stamp(days_ago: float) -> str:
    moment = datetime.now(timezone.utc) - timedelta(days=days_ago)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"

