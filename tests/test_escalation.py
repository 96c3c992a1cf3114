"""Escalation (PRD Story 4.2): demands and situations hand the conversation to a person, topics do not. Every
reason end to end through the real pipeline (real embedder, real SQLite), plus the message rules on phrasings of
our own."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from answer_support import ask, bot_messages, index_pages, new_bot, new_conversation, new_db
from chatsupport.llm import escalation
from chatsupport.llm.answer import AnswerEngine
from chatsupport.store import conversations as store
from chatsupport.store import presence
from chatsupport.store import users

DEMANDS = {
    "user_request": ["Can I talk to someone please?", "I'd like to speak with a real person", "call me at 5pm",
                     "escalate this to your manager", "connect me with an agent", "please have someone from your "
                     "sales team contact me"],
    "frustration_detected": ["worst service ever", "this is ridiculous, nothing works", "I'm fed up with this app",
                             "I've asked four times and nobody answers!!!"],
    "billing_dispute": ["I was charged twice for the same month, fix it", "refund me right now",
                        "I want my money back for this month", "you billed me for a plan I never ordered",
                        "I'm disputing this charge with my bank"],
    "account_deletion": ["Delete my account immediately", "I demand that you erase all my personal data",
                         "under the GDPR, remove everything you hold on me", "close my account and all my projects now"],
    "legal": ["my lawyer will contact you tomorrow", "we are taking legal action over this",
              "expect a lawsuit if this isn't fixed"],
    "security_incident": ["someone logged into my account from another country", "my account was hacked",
                          "I didn't make these purchases on my card", "our customer data has been leaked",
                          "there's suspicious activity on my profile"],
}
HOW_TO = ["how do refunds work?", "what is your refund policy", "how do I request a refund",
          "can I get a refund if I cancel early?", "how do I delete my account", "what happens to my data if I "
          "delete my account?", "how can I close my account", "how do I dispute a charge", "is there a legal "
          "notice page", "how do I keep my account from being hacked", "I leaked my API token, what now?",
          "where are my invoices", "got charged again this month, why?", "can anyone in my team see my invoices?",
          "how do I talk to the API from python"]


@pytest.mark.parametrize(("reason", "text"), [(r, t) for r, texts in DEMANDS.items() for t in texts])
def test_demands_and_situations_escalate_with_their_reason(reason: str, text: str) -> None:
    from chatsupport.llm.classify import sentiment

    decision = escalation.message_rules(text, {}, sentiment(text).sentiment)
    assert decision is not None and decision.reason == reason, (text, decision)
    assert decision.reason in escalation.REASONS


@pytest.mark.parametrize("text", HOW_TO)
def test_questions_about_a_topic_do_not_escalate(text: str) -> None:
    from chatsupport.llm.classify import sentiment

    assert escalation.message_rules(text, {}, sentiment(text).sentiment) is None


def test_settings_switch_off_the_person_and_frustration_triggers() -> None:
    off = {"explicit_request": False, "frustration_detection": False}
    assert escalation.message_rules("can I talk to someone", off) is None
    assert escalation.message_rules("worst service ever", off, "very_negative") is None
    assert escalation.message_rules("refund me now", off).reason == "billing_dispute"


@pytest.fixture
def kit(tmp_path: Path, embedder):  # noqa: ANN001, ANN201
    db = new_db(tmp_path)
    yield db, embedder
    db.close()


def engine_for(kit: Any, settings: dict[str, Any] | None = None, **options: Any) -> tuple[AnswerEngine, str, str]:
    db, embedder = kit
    ws, bot = new_bot(db, settings)
    index_pages(db, embedder, bot)
    return AnswerEngine(db, embedder, **options), ws, bot


@pytest.mark.parametrize("reason", list(DEMANDS))
def test_each_message_trigger_escalates_the_conversation_end_to_end(kit, reason: str) -> None:  # noqa: ANN001
    engine, ws, bot = engine_for(kit)
    conv = new_conversation(engine.db, ws, bot)
    turn = ask(engine, ws, conv, DEMANDS[reason][0])
    assert (turn.outcome, turn.escalated, turn.reason) == ("escalated", True, reason)
    row = store.get(engine.db.reader(), ws, conv)
    assert row["status"] == "escalated" and row["escalation_reason"] == reason
    kinds = {e["event_type"]: e["event_data"] for e in store.events(engine.db.reader(), conv)}
    assert kinds["escalated"]["reason"] == reason and kinds["status_changed"]["to"] == "escalated"
    message = bot_messages(engine.db, conv)[-1]
    assert message["ai_metadata"]["escalation_reason"] == reason and message["ai_metadata"]["escalated"] is True
    assert "team" in message["content"].lower()
    # the next customer message waits for the person instead of getting an AI answer
    assert ask(engine, ws, conv, "hello?").outcome == "queued"
    assert len(bot_messages(engine.db, conv)) == 1


def test_refund_and_deletion_how_tos_are_answered_from_the_docs(kit) -> None:  # noqa: ANN001
    # a lenient confidence threshold isolates what is tested here: the topic itself never triggers a hand-over
    engine, ws, bot = engine_for(kit, {"ai_settings": {"escalation_triggers": {"low_confidence_threshold": 0.3}}})
    for question, fact in [("how do refunds work?", "14 days"), ("how do I delete my account?", "Delete account")]:
        conv = new_conversation(engine.db, ws, bot)
        turn = ask(engine, ws, conv, question)
        assert turn.outcome == "answered" and not turn.escalated, turn
        assert fact in turn.answer


def test_confidence_under_the_threshold_escalates_after_answering(kit) -> None:  # noqa: ANN001
    settings = {"ai_settings": {"escalation_triggers": {"low_confidence_threshold": 1.0}}}
    engine, ws, bot = engine_for(kit, settings)
    conv = new_conversation(engine.db, ws, bot)
    turn = ask(engine, ws, conv, "how much does the pro plan cost")
    assert turn.escalated and turn.reason == "low_confidence" and "$9" in turn.answer
    assert store.get(engine.db.reader(), ws, conv)["status"] == "escalated"


def test_failed_answers_in_a_row_escalate(kit) -> None:  # noqa: ANN001
    settings = {"ai_settings": {"escalation_triggers": {"max_failed_responses": 2}}}
    engine, ws, bot = engine_for(kit, settings)
    conv = new_conversation(engine.db, ws, bot)
    first = ask(engine, ws, conv, "do you sell garden furniture in Norway?")
    assert first.outcome == "declined" and not first.escalated and first.sources == []
    second = ask(engine, ws, conv, "what colour is the CEO's boat")
    assert second.escalated and second.reason == "max_failed_responses"


def test_max_conversation_length_escalates(kit) -> None:  # noqa: ANN001
    engine, ws, bot = engine_for(kit, {"behavior_settings": {"response_delay": 0, "max_conversation_length": 2}})
    conv = new_conversation(engine.db, ws, bot)
    assert not ask(engine, ws, conv, "how much does the pro plan cost").escalated
    assert not ask(engine, ws, conv, "how do I turn on two-factor authentication").escalated
    turn = ask(engine, ws, conv, "where are my invoices")
    assert turn.escalated and turn.reason == "max_conversation_length"


def test_outside_business_hours_the_customer_gets_the_offline_promise(kit) -> None:  # noqa: ANN001
    closed = {day: None for day in escalation.DAYS}
    settings = {"business_hours": {"enabled": True, "timezone": "Europe/Paris", "schedule": closed,
                                   "offline_message": "We're away until Monday."}}
    engine, ws, bot = engine_for(kit, settings)
    conv = new_conversation(engine.db, ws, bot)
    turn = ask(engine, ws, conv, "can I talk to someone")
    assert turn.escalated and "We're away until Monday." in turn.answer and "as soon as we're back" in turn.answer
    # the AI still answers questions at night: hours govern people only
    assert ask(engine, ws, new_conversation(engine.db, ws, bot), "how much does the pro plan cost").outcome == \
        "answered"


def test_with_agents_online_the_customer_gets_an_estimated_wait(kit) -> None:  # noqa: ANN001
    engine, ws, bot = engine_for(kit)
    engine.db.write(lambda conn: users.create(conn, workspace_id=ws, email="agent@example.com", password_hash="x",
                                              role="agent", display_name="Agent"))
    agent = engine.db.query_one("SELECT id FROM users WHERE email = 'agent@example.com'")["id"]
    engine.db.write(lambda conn: presence.heartbeat(conn, ws, agent, "online", datetime.now(timezone.utc)))
    turn = ask(engine, ws, new_conversation(engine.db, ws, bot), "I want to speak to a human")
    assert turn.escalated and "estimated wait about" in turn.answer


def test_business_hours_are_read_in_the_bots_timezone() -> None:
    hours = {"enabled": True, "timezone": "America/New_York",
             "schedule": {d: {"start": "09:00", "end": "17:00"} for d in escalation.DAYS}}
    assert escalation.is_open(hours, datetime(2025, 1, 6, 15, 0, tzinfo=timezone.utc))      # 10:00 in New York
    assert not escalation.is_open(hours, datetime(2025, 1, 6, 23, 30, tzinfo=timezone.utc))  # 18:30 in New York
    assert escalation.is_open({"enabled": False}, datetime(2025, 1, 5, 3, 0, tzinfo=timezone.utc))
