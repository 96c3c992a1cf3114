"""The conversation state machine (PRD §5.3.1): allowed and refused transitions, each change logged as an event,
on a real SQLite file."""

from __future__ import annotations

from pathlib import Path

import pytest

from answer_support import new_bot, new_conversation, new_db
from chatsupport.domain import conversations as states
from chatsupport.errors import AppError
from chatsupport.store import conversations as store


@pytest.fixture
def db(tmp_path: Path):  # noqa: ANN201
    database = new_db(tmp_path)
    yield database
    database.close()


def status_of(db, workspace_id: str, conversation_id: str) -> str:  # noqa: ANN001
    return store.get(db.reader(), workspace_id, conversation_id)["status"]


def test_prd_lifecycle_is_walked_and_every_change_logged(db) -> None:  # noqa: ANN001
    ws, bot = new_bot(db)
    conv = new_conversation(db, ws, bot)
    walk = [("ai_replied", "waiting"), ("customer_replied", "active"), ("escalate", "escalated"),
            ("agent_join", "agent_handling"), ("return_to_ai", "active"), ("escalate", "escalated"),
            ("agent_join", "agent_handling"), ("resolve", "resolved"), ("reopen", "active"),
            ("ai_replied", "waiting"), ("abandon", "abandoned"), ("archive", "archived")]
    for event, expected in walk:
        assert db.write(lambda conn: states.transition(conn, ws, conv, event, reason="user_request"
                                                       if event == "escalate" else None)) == expected
        assert status_of(db, ws, conv) == expected
    events = store.events(db.reader(), conv)
    assert events[0]["event_type"] == "created"
    changes = [e["event_data"] for e in events if e["event_type"] == "status_changed"]
    assert [(c["event"], c["to"]) for c in changes] == walk
    assert changes[2]["reason"] == "user_request" and changes[2]["from"] == "active"
    row = store.get(db.reader(), ws, conv)
    assert row["escalation_reason"] == "user_request" and row["archived_at"] and row["resolved_at"]


@pytest.mark.parametrize(("path", "event"), [
    ([], "agent_join_missing"), ([], "resolve_unknown"), (["ai_replied"], "ai_replied"), ([], "reopen"),
    (["escalate"], "escalate"), (["escalate"], "ai_replied"), ([], "agent_timeout"), (["resolve", "archive"], "reopen"),
    (["resolve", "archive"], "archive"), (["resolve"], "escalate"), (["ai_replied", "abandon"], "agent_timeout"),
    ([], "archive"), ([], "abandon"), (["escalate"], "return_to_ai"), (["escalate"], "abandon"),
])
def test_transitions_outside_the_table_are_refused_and_change_nothing(db, path: list[str], event: str) -> None:  # noqa: ANN001
    ws, bot = new_bot(db)
    conv = new_conversation(db, ws, bot)
    for step in path:
        db.write(lambda conn: states.transition(conn, ws, conv, step))
    before = status_of(db, ws, conv)
    logged = len(store.events(db.reader(), conv))
    with pytest.raises(AppError) as caught:
        db.write(lambda conn: states.transition(conn, ws, conv, event))
    assert caught.value.code == "illegal_transition" and caught.value.status == 409
    assert status_of(db, ws, conv) == before and len(store.events(db.reader(), conv)) == logged


def test_table_is_exactly_the_issues_lifecycle_table() -> None:
    issue = {("active", "waiting"), ("waiting", "active"), ("waiting", "abandoned"),
             ("active", "escalated"), ("waiting", "escalated"),
             ("active", "agent_handling"), ("waiting", "agent_handling"), ("escalated", "agent_handling"),
             ("agent_handling", "active"), ("agent_handling", "waiting"),
             *{(s, "resolved") for s in ("active", "waiting", "escalated", "agent_handling")},
             ("resolved", "active"), ("abandoned", "active"), ("resolved", "archived"), ("abandoned", "archived")}
    edges = {(src, dst) for (_, src), dst in states.TRANSITIONS.items() if src != dst}
    assert edges == issue
    assert {dst for dst in states.TRANSITIONS.values()} | {"active"} == set(states.STATUSES)


def test_customer_message_wakes_or_reopens_but_never_takes_a_conversation_from_an_agent(db) -> None:  # noqa: ANN001
    ws, bot = new_bot(db)
    conv = new_conversation(db, ws, bot)
    db.write(lambda conn: states.transition(conn, ws, conv, "ai_replied"))
    assert db.write(lambda conn: states.customer_arrives(conn, ws, conv)) == "active"
    db.write(lambda conn: states.transition(conn, ws, conv, "escalate", reason="legal"))
    assert db.write(lambda conn: states.customer_arrives(conn, ws, conv)) == "escalated"
    db.write(lambda conn: states.transition(conn, ws, conv, "resolve"))
    assert db.write(lambda conn: states.customer_arrives(conn, ws, conv)) == "active"
    db.write(lambda conn: states.transition(conn, ws, conv, "resolve"))
    db.write(lambda conn: states.transition(conn, ws, conv, "archive"))
    with pytest.raises(AppError) as caught:
        db.write(lambda conn: states.customer_arrives(conn, ws, conv))
    assert caught.value.code == "conversation_closed"


def test_conversations_are_workspace_scoped(db) -> None:  # noqa: ANN001
    ws, bot = new_bot(db)
    other_ws, _ = new_bot(db, name="Other")
    conv = new_conversation(db, ws, bot)
    assert store.get(db.reader(), other_ws, conv) is None
    with pytest.raises(AppError) as caught:
        db.write(lambda conn: states.transition(conn, other_ws, conv, "escalate"))
    assert caught.value.code == "not_found" and status_of(db, ws, conv) == "active"


def test_messages_bump_counters_and_list_oldest_first(db) -> None:  # noqa: ANN001
    ws, bot = new_bot(db)
    conv = new_conversation(db, ws, bot)
    for sender, text in [("customer", "hi"), ("bot", "hello"), ("customer", "bye")]:
        db.write(lambda conn: store.add_message(conn, conv, sender, text, ai_metadata={"x": 1} if sender == "bot"
                                                else None))
    row = store.get(db.reader(), ws, conv)
    assert (row["message_count"], row["customer_message_count"], row["ai_message_count"]) == (3, 2, 1)
    recent = store.recent_messages(db.reader(), conv, 2)
    assert [m["content"] for m in recent] == ["hello", "bye"] and recent[0]["ai_metadata"] == {"x": 1}
