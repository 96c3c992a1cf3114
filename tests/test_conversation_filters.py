"""The inbox list's filters (``Filters`` → ``filter_where``), sorts and keyset pages with filters, per-user unread,
counts per status, saved filters and ``filter_id``, and the migration that indexes rows that already exist."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from accounts_support import error_code
from chatsupport.domain.conversation_filters import Filters, from_query
from chatsupport.store import conversation_search as search_store
from chatsupport.store import conversations as store
from chatsupport.store.db import connect
from chatsupport.store.migrations import MIGRATIONS, migrate
from conversation_support import Team, client, team  # noqa: F401 - shared fixtures


def _set(team: Team, conversation_id: str, sql: str, *params: Any) -> None:
    team.db.write(lambda conn: conn.execute(f"UPDATE conversations SET {sql} WHERE id = ?", (*params, conversation_id)))


def _note(team: Team, conversation_id: str, text: str, note_id: str = "n1") -> None:
    team.db.write(lambda conn: conn.execute(
        "INSERT INTO internal_notes(id, conversation_id, content, author_id) VALUES (?, ?, ?, ?)",
        (note_id, conversation_id, text, team.agent["id"])))


def listed(team: Team, headers: dict[str, str] | None = None, **params: Any) -> list[str]:
    response = team.client.get("/api/v1/conversations", params=params, headers=headers or team.agent_h)
    assert response.status_code == 200, response.text
    return [c["id"] for c in response.json()["data"]]


def test_every_filter(team: Team) -> None:
    billing = team.conversation(status="escalated", customer="Ann", text="refund please")
    urgent = team.conversation(status="resolved", customer="Bob", text="site down")
    plain = team.conversation(customer=None, text="hello")
    _set(team, billing, "tags = ?, assigned_agent_id = ?, satisfaction_rating = 2", '["Billing", "urgent"]',
         team.agent["id"])
    _set(team, urgent, "tags = ?, satisfaction_rating = 5, created_at = '2025-01-10T08:00:00.000Z'", '["urgent"]')
    team.db.write(lambda conn: conn.execute(
        "UPDATE customers SET email = 'Bob@Example.com' WHERE id = (SELECT customer_id FROM conversations"
        " WHERE id = ?)", (urgent,)))
    _note(team, billing, "Called the bank")

    assert set(listed(team)) == {billing, urgent, plain}
    assert set(listed(team, tags="urgent")) == {billing, urgent}
    assert listed(team, tags="URGENT,billing") == [billing]               # every tag, any case
    assert listed(team, tags="billing,nothing") == []
    assert listed(team, assigned_agent=team.agent["id"]) == [billing]
    assert listed(team, assigned_agent="me") == [billing]
    assert listed(team, assigned_agent="me", headers=team.other_h) == []
    assert set(listed(team, assigned_agent="unassigned")) == {urgent, plain}
    assert listed(team, rating_min=4) == [urgent]
    assert listed(team, rating_max=3) == [billing]
    assert listed(team, rating_min=2, rating_max=2) == [billing]
    assert listed(team, customer_email="bob@example.COM") == [urgent]      # exact, any case
    assert listed(team, customer_email="bob@example") == []
    assert listed(team, has_notes="true") == [billing]
    assert set(listed(team, has_notes="false")) == {urgent, plain}
    assert listed(team, start="2025-01-10", end="2025-01-10") == [urgent]  # a bare end date is the whole day
    assert listed(team, end="2025-01-09") == []
    assert set(listed(team, date_field="created_at", start="2025-01-11")) == {billing, plain}
    assert listed(team, date_field="resolved_at", start="2000-01-01") == [urgent]
    assert listed(team, status="resolved", tags="urgent", start="2025-01-01", end="2025-12-31") == [urgent]
    assert listed(team, chatbot_id="other-bot") == []
    for params, field in (({"rating_min": "6"}, "satisfaction_rating.min"), ({"start": "yesterday"},
                          "date_range.start"), ({"has_notes": "maybe"}, "has_internal_notes"),
                          ({"rating_min": "4", "rating_max": "2"}, "satisfaction_rating")):
        bad = team.client.get("/api/v1/conversations", params=params, headers=team.agent_h)
        assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == field, bad.text


def test_tag_index_follows_the_tags_column(team: Team) -> None:
    conv = team.conversation()
    _set(team, conv, "tags = ?", '["VIP", " vip ", "Refund"]')
    rows = team.db.query("SELECT tag FROM conversation_tags WHERE conversation_id = ? ORDER BY tag", (conv,))
    assert [r["tag"] for r in rows] == ["refund", "vip"]
    _set(team, conv, "tags = '[]'")
    assert team.db.query("SELECT * FROM conversation_tags WHERE conversation_id = ?", (conv,)) == []


@pytest.mark.parametrize("sort", ["-updated_at", "-created_at", "updated_at", "created_at"])
def test_keyset_pages_with_filters_in_every_sort(team: Team, sort: str) -> None:
    tagged = []
    for i in range(7):
        conv = team.conversation(text=f"q{i}")
        if i % 3 != 1:
            _set(team, conv, "tags = '[\"vip\"]'")
            tagged.append(conv)
    team.conversation(status="escalated")
    seen, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 2, "tags": "vip", "status": "active", "sort": sort}
        body = team.client.get("/api/v1/conversations", params={**params, **({"cursor": cursor} if cursor else {})},
                               headers=team.agent_h).json()
        assert body["pagination"]["total"] == len(tagged)
        seen += [c["id"] for c in body["data"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    column = sort.lstrip("-")
    direction = "DESC" if sort.startswith("-") else "ASC"
    expected = [r["id"] for r in team.db.query(
        f"SELECT id FROM conversations WHERE id IN (SELECT value FROM json_each(?))"
        f" ORDER BY {column} {direction}, id {direction}", (__import__("json").dumps(tagged),))]
    assert seen == expected


def test_counts_per_status_ignore_the_status_filter_and_are_capped(team: Team,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from chatsupport.domain import conversation_views

    for status in ("active", "active", "escalated", "resolved", "archived"):
        team.conversation(status=status)
    body = team.client.get("/api/v1/conversations", params={"status": "escalated"}, headers=team.agent_h).json()
    assert body["counts"] == {"active": 2, "waiting": 0, "escalated": 1, "agent_handling": 0, "resolved": 1,
                              "abandoned": 0, "archived": 1}
    assert body["counts_capped"] is False and body["pagination"]["total"] == 1
    monkeypatch.setattr(conversation_views, "TOTAL_CAP", 1)
    capped = team.client.get("/api/v1/conversations", headers=team.agent_h).json()
    assert capped["counts"]["active"] == 1 and capped["counts_capped"] is True
    assert capped["pagination"]["total_capped"] is True


def test_unread_is_per_user(team: Team) -> None:
    conv = team.conversation()
    quiet = team.conversation(customer=None)
    team.db.write(lambda conn: conn.execute("DELETE FROM messages WHERE conversation_id = ?", (quiet,)))

    def unread(headers: dict[str, str]) -> dict[str, bool]:
        data = team.client.get("/api/v1/conversations", headers=headers).json()["data"]
        return {c["id"]: c["unread"] for c in data}

    assert unread(team.agent_h) == {conv: True, quiet: False}
    team.db.write(lambda conn: conn.execute(
        "INSERT INTO conversation_reads(user_id, conversation_id, read_at) VALUES (?, ?, '9999')",
        (team.agent["id"], conv)))
    assert unread(team.agent_h)[conv] is False and unread(team.other_h)[conv] is True
    team.db.write(lambda conn: conn.execute("UPDATE conversation_reads SET read_at = '2000' WHERE user_id = ?",
                                            (team.agent["id"],)))
    assert unread(team.agent_h)[conv] is True


def test_list_queries_use_indexes(team: Team) -> None:
    conn = team.db.reader()
    cases = [Filters(), from_query({"status": "escalated"}), from_query({"status": "active,waiting"}),
             from_query({"chatbot_id": team.bot})]
    for filters in cases:
        for sort in store.LIST_SORTS:
            where, params = search_store.filter_where(team.ws, filters, team.agent["id"])
            plan = " ".join(r["detail"] for r in conn.execute(
                f"EXPLAIN QUERY PLAN SELECT {store.LIST_COLUMNS} FROM conversations c LEFT JOIN customers cu"
                " ON cu.id = c.customer_id LEFT JOIN users u ON u.id = c.assigned_agent_id"
                f" WHERE {where} AND (c.{sort}, c.id) < (?, ?) ORDER BY c.{sort} DESC, c.id DESC LIMIT 21",
                (*params, "z", "z")))
            assert "USING INDEX idx_conversations_ws" in plan and "TEMP B-TREE" not in plan, plan
    where, params = search_store.filter_where(team.ws, from_query({"tags": "vip"}), None)
    plan = " ".join(r["detail"] for r in conn.execute(
        f"EXPLAIN QUERY PLAN SELECT c.id FROM conversations c WHERE {where}", params))
    assert "idx_conversation_tags_tag" in plan or "conversation_tags" in plan


# --- saved filters ----------------------------------------------------------------------------------------------
def test_saved_filter_crud_and_filter_id(team: Team) -> None:
    vip = team.conversation(status="escalated")
    _set(team, vip, "tags = '[\"vip\"]'")
    team.conversation(status="escalated")
    made = team.client.post("/api/v1/conversation-filters", headers=team.agent_h, json={
        "name": "Urgent VIPs", "filters": {"tags": ["VIP"], "status": ["escalated", "active"]}, "is_default": True})
    assert made.status_code == 201, made.text
    saved = made.json()
    assert saved["name"] == "Urgent VIPs" and saved["is_default"] is True
    assert saved["filters"] == {"status": ["active", "escalated"], "tags": ["vip"]}
    assert listed(team, filter_id=saved["id"]) == [vip]
    assert listed(team, filter_id=saved["id"], status="active") == []   # a request parameter wins
    # one default per user
    second = team.client.post("/api/v1/conversation-filters", headers=team.agent_h,
                              json={"name": "Mine", "filters": {"assigned_agent": "me"}, "is_default": True}).json()
    mine = team.client.get("/api/v1/conversation-filters", headers=team.agent_h).json()["data"]
    assert [(f["name"], f["is_default"]) for f in mine] == [("Mine", True), ("Urgent VIPs", False)]
    # duplicate names (any case) are refused
    dup = team.client.post("/api/v1/conversation-filters", headers=team.agent_h, json={"name": "urgent vips"})
    assert dup.status_code == 409 and error_code(dup) == "already_exists"
    bad = team.client.post("/api/v1/conversation-filters", headers=team.agent_h,
                           json={"name": "x", "filters": {"date_range": {"start": "soon"}}})
    assert bad.status_code == 422
    # another user's filter does not exist for them
    assert team.client.get("/api/v1/conversation-filters", headers=team.other_h).json()["data"] == []
    for method, path in (("GET", f"/api/v1/conversations?filter_id={saved['id']}"),
                         ("DELETE", f"/api/v1/conversation-filters/{saved['id']}"),
                         ("GET", "/api/v1/conversations?filter_id=nope")):
        response = team.client.request(method, path, headers=team.other_h)
        assert response.status_code == 404 and error_code(response) == "not_found", (path, response.text)
    # viewers keep filters too; delete
    assert team.client.post("/api/v1/conversation-filters", headers=team.viewer_h,
                            json={"name": "Urgent VIPs"}).status_code == 201
    assert team.client.delete(f"/api/v1/conversation-filters/{second['id']}", headers=team.agent_h).status_code == 204
    assert [f["name"] for f in team.client.get("/api/v1/conversation-filters", headers=team.agent_h).json()["data"]] \
        == ["Urgent VIPs"]


# --- migration 10 on a database that already has conversations -------------------------------------------------
def test_migration_indexes_existing_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = connect(path)
    conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                 " applied_at TEXT NOT NULL DEFAULT '')")
    for migration in MIGRATIONS[:9]:
        conn.execute(migration.sql)
        conn.execute("INSERT INTO schema_migrations(version, name) VALUES (?, ?)", (migration.version, migration.name))
    conn.execute("INSERT INTO workspaces(id, name, slug) VALUES ('w', 'W', 'w')")
    conn.execute("INSERT INTO users(id, workspace_id, email, password_hash, role) VALUES ('u', 'w', 'u@x', 'x',"
                 " 'agent')")
    conn.execute("INSERT INTO chatbots(id, workspace_id, name, public_key, identity_secret)"
                 " VALUES ('b', 'w', 'B', 'pk', 's')")
    conn.execute("INSERT INTO customers(id, workspace_id, name, email) VALUES ('cu', 'w', 'Zoë Keller',"
                 " 'zoe@shop.example')")
    conn.execute("INSERT INTO conversations(id, workspace_id, chatbot_id, customer_id, tags) VALUES"
                 " ('c', 'w', 'b', 'cu', '[\"Billing\"]')")
    conn.execute("INSERT INTO messages(id, conversation_id, sender_type, content) VALUES"
                 " ('m', 'c', 'customer', 'My invoices are wrong')")
    conn.execute("INSERT INTO messages(id, conversation_id, sender_type, content, deleted_at) VALUES"
                 " ('gone', 'c', 'customer', 'secret invoice', 'x')")
    conn.execute("INSERT INTO internal_notes(id, conversation_id, content, author_id) VALUES"
                 " ('n', 'c', 'Escalated to accounting', 'u')")
    conn.close()
    assert 10 in [m.version for m in migrate(path)]
    conn = connect(path)

    def found(table: str, query: str) -> list[str]:
        return [r["ref_id"] for r in conn.execute(
            f"SELECT r.ref_id FROM {table} f JOIN search_refs r ON r.id = f.rowid WHERE {table} MATCH ?", (query,))]

    assert found("conversation_text", "invoice") == ["m"]          # porter: invoices → invoice; deleted not indexed
    assert found("conversation_text", "accounting") == ["n"]
    assert found("customer_text", "zoe") == ["cu"]                  # diacritics removed
    assert [r["tag"] for r in conn.execute("SELECT tag FROM conversation_tags")] == ["billing"]
    conn.close()
