"""``POST /api/v1/conversations/search`` through the real app: full text over messages, notes and customers,
highlighting that escapes everything but <mark>, FTS syntax in user input, filters, aggregations, workspace
isolation, and deletions leaving the index."""

from __future__ import annotations

import re
from typing import Any

import pytest
from litestar.testing import TestClient

from chatsupport.domain.conversation_search import fts_query
from chatsupport.store import conversations as store
from conversation_support import Team, client, team  # noqa: F401 - shared fixtures


def search(team: Team, query: str, headers: dict[str, str] | None = None, expect: int = 200,
           **body: Any) -> dict[str, Any]:
    response = team.client.post("/api/v1/conversations/search", json={"query": query, **body},
                                headers=headers or team.agent_h)
    assert response.status_code == expect, response.text
    return response.json()


def ids(result: dict[str, Any]) -> list[str]:
    return [item["id"] for item in result["data"]]


def test_finds_a_message_a_note_and_a_customer(team: Team) -> None:
    by_message = team.conversation(customer="Ann Lee", text="My invoices show the wrong amount")
    by_note = team.conversation(customer="Bob Stone", text="hello")
    team.db.write(lambda conn: conn.execute(
        "INSERT INTO internal_notes(id, conversation_id, content, author_id) VALUES ('n1', ?, ?, ?)",
        (by_note, "Customer is a reseller, check the contract", team.agent["id"])))
    by_customer = team.conversation(customer="Zoë Quarrington", text="hi")
    team.db.write(lambda conn: conn.execute(
        "UPDATE customers SET email = 'zq@shop.example' WHERE name = 'Zoë Quarrington'"))

    found = search(team, "invoice")                             # porter: invoices → invoice
    assert ids(found) == [by_message]
    match = found["data"][0]["matches"][0]
    assert match["kind"] == "message" and match["snippet"] == "My <mark>invoices</mark> show the wrong amount"
    assert found["data"][0]["customer"]["name"] == "Ann Lee" and "unread" in found["data"][0]

    noted = search(team, "reseller")
    assert ids(noted) == [by_note] and noted["data"][0]["matches"][0]["kind"] == "note"
    assert noted["data"][0]["matches"][0]["id"] == "n1"

    for query in ("zoe", "Quarrington", "zq@shop.example", "quarr"):     # diacritics, e-mail phrase, prefix
        result = search(team, query)
        assert ids(result) == [by_customer], query
        assert result["data"][0]["matches"][0]["kind"] == "customer"
    assert "<mark>Zoë</mark>" in search(team, "zoe")["data"][0]["matches"][0]["snippet"]
    assert ids(search(team, "nothingmatchesthis")) == []


def test_highlights_escape_everything_but_mark(team: Team) -> None:
    team.conversation(text='<script>alert("pwned")</script> my password & <b>bold</b>')
    snippet = search(team, "password")["data"][0]["matches"][0]["snippet"]
    assert "<script>" not in snippet and "&lt;script&gt;" in snippet and "&lt;b&gt;" in snippet
    assert re.sub(r"</?mark>", "", snippet).count("<") == 0
    assert "<mark>password</mark>" in snippet
    tag_words = search(team, "script")["data"][0]["matches"][0]["snippet"]
    assert tag_words.startswith("&lt;<mark>script</mark>&gt;")


@pytest.mark.parametrize("query", ['"', '"password', "pass*", "password AND", "-password", "NOT", "a:b", "(((",
                                   "NEAR(password reset)", "*", "^password", "password OR", "\x01", "''",
                                   "💥 password", "password\"; DROP TABLE messages; --", "my:password"])
def test_fts_syntax_in_queries_never_fails(team: Team, query: str) -> None:
    """Operators are words like any other: found when the message has every word of the query."""
    conv = team.conversation(text="I need help resetting my password")
    result = search(team, query)
    if query in ('"password', "pass*", "-password", "^password", "💥 password", "my:password"):
        assert ids(result) == [conv]
    elif query in ("password AND", "NOT", "password OR", "*", '"'):
        assert ids(result) == []


def test_query_words_are_quoted() -> None:
    assert fts_query('password "reset') == '"password" "reset"*'
    assert fts_query("john@example.com ") == '"john example com"'
    assert fts_query("a AND b") == '"a" "AND" "b"'
    assert fts_query("- * ") is None


def test_filters_sort_and_aggregations(team: Team) -> None:
    first = team.conversation(status="escalated", text="refund for order 17")
    second = team.conversation(status="resolved", text="refund again")
    third = team.conversation(status="archived", text="old refund")
    team.conversation(text="unrelated")
    team.db.write(lambda conn: conn.execute("UPDATE conversations SET satisfaction_rating = 4, tags = '[\"vip\"]'"
                                            " WHERE id = ?", (second,)))
    team.db.write(lambda conn: conn.execute("UPDATE conversations SET satisfaction_rating = 1,"
                                            " assigned_agent_id = ? WHERE id = ?", (team.agent["id"], first)))
    every = search(team, "refund")
    assert set(ids(every)) == {first, second}                      # archived only when asked for
    assert every["pagination"] == {"page": 1, "limit": 20, "total": 2, "total_pages": 1, "total_capped": False}
    aggregations = every["aggregations"]
    assert aggregations["by_status"] == {"escalated": 1, "resolved": 1, "archived": 1}
    assert aggregations["by_agent"] == {team.agent["id"]: 1, "unassigned": 1}
    assert aggregations["avg_satisfaction"] == 2.5
    narrowed = search(team, "refund", filters={"status": ["resolved", "archived"], "tags": ["VIP"]})
    assert ids(narrowed) == [second] and narrowed["aggregations"]["by_status"] == {"resolved": 1}
    assert ids(search(team, "refund", filters={"satisfaction_rating": {"min": 3}})) == [second]
    assert ids(search(team, "refund", filters={"status": ["archived"]})) == [third]
    oldest_first = search(team, "refund", sort={"field": "created_at", "order": "asc"})
    assert ids(oldest_first) == [first, second]
    paged = search(team, "refund", limit=1, page=2, sort={"field": "created_at", "order": "desc"})
    assert ids(paged) == [first] and paged["pagination"]["total_pages"] == 2
    saved = team.client.post("/api/v1/conversation-filters", headers=team.agent_h,
                             json={"name": "Resolved", "filters": {"status": ["resolved"]}}).json()
    assert ids(search(team, "refund", filter_id=saved["id"])) == [second]
    assert search(team, "refund", filter_id="nope", expect=404)["error"]["code"] == "not_found"
    bad = search(team, "refund", filters={"colour": "red"}, expect=422)
    assert bad["error"]["code"] == "validation_error"


def test_search_is_scoped_to_the_workspace_and_open_to_viewers(client: TestClient, team: Team) -> None:
    mine = team.conversation(text="quarterly invoice question")
    rival = Team(client, "Rival")
    rival.conversation(customer="Quentin Invoice", text="another invoice question")
    assert ids(search(team, "invoice", headers=team.viewer_h)) == [mine]
    assert len(ids(search(rival, "invoice", headers=rival.owner_h))) == 1
    assert ids(search(rival, "quarterly", headers=rival.owner_h)) == []
    assert client.post("/api/v1/conversations/search", json={"query": "x"}).status_code == 401


def test_deleted_messages_and_notes_leave_the_index(team: Team) -> None:
    conv = team.conversation(text="my secret passphrase")
    message_id = store.recent_messages(team.db.reader(), conv)[0]["id"]
    team.db.write(lambda conn: conn.execute(
        "INSERT INTO internal_notes(id, conversation_id, content, author_id) VALUES ('n1', ?, 'gossip', ?)",
        (conv, team.agent["id"])))
    assert ids(search(team, "passphrase")) == [conv] and ids(search(team, "gossip")) == [conv]
    team.db.write(lambda conn: conn.execute("UPDATE messages SET deleted_at = '2025-01-01T00:00:00.000Z'"
                                            " WHERE id = ?", (message_id,)))
    team.db.write(lambda conn: conn.execute("DELETE FROM internal_notes WHERE id = 'n1'"))
    assert ids(search(team, "passphrase")) == [] and ids(search(team, "gossip")) == []
    team.db.write(lambda conn: conn.execute("UPDATE messages SET content = 'edited words', deleted_at = NULL"
                                            " WHERE id = ?", (message_id,)))
    assert ids(search(team, "edited")) == [conv] and ids(search(team, "passphrase")) == []
    team.db.write(lambda conn: conn.execute("DELETE FROM conversations WHERE id = ?", (conv,)))
    assert team.db.query("SELECT * FROM search_refs WHERE kind != 'customer'") == []
