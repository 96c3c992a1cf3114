"""The agent conversation API (PRD §5.3.3) and presence, through the real app: list filters and keyset pages,
the full view, takeover / reply / return to AI / resolve with their 404s, 409s and permission refusals, and the
frames a subscriber of the workspace and conversation channels receives."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import anyio
import pytest
from litestar.testing import TestClient

from accounts_support import audit_rows, error_code
from chatsupport import live
from chatsupport.domain import conversations as states
from chatsupport.domain import presence
from chatsupport.store import conversations as store
from chatsupport.store import presence as presence_store
from conversation_support import Listener, Team, client, team  # noqa: F401 - shared fixtures


# --- list ---------------------------------------------------------------------------------------------------
def test_list_has_the_prd_shape(team: Team) -> None:
    conv = team.conversation(status="escalated")
    body = team.client.get("/api/v1/conversations", headers=team.viewer_h).json()
    assert body["pagination"] == {"page": 1, "limit": 20, "total": 1, "total_pages": 1, "total_capped": False}
    assert body["next_cursor"] is None
    item = body["data"][0]
    assert item["id"] == conv and item["chatbot_id"] == team.bot and item["status"] == "escalated"
    assert item["customer"]["name"] == "John Doe" and item["customer"]["email"] == "john@example.com"
    assert item["customer"]["metadata"] == {"company": "Acme Inc"} and item["customer"]["avatar_url"] is None
    assert item["assigned_agent"] is None and item["message_count"] == 1 and item["tags"] == []
    assert item["last_message"]["content"] == "I need help resetting my password"
    assert item["last_message"]["sender_type"] == "customer" and item["last_message"]["timestamp"]
    assert item["satisfaction_rating"] is None
    assert item["context"]["page_url"] == "https://shop.example/pricing"
    assert item["context"]["device"] == "desktop" and item["context"]["browser"] == "Chrome 118"
    assert item["created_at"] <= item["updated_at"]


def test_list_filters_by_status_and_chatbot(team: Team) -> None:
    other_bot = team.client.post("/api/v1/chatbots", json={"name": "Second"}, headers=team.owner_h).json()["id"]
    ids = {status: team.conversation(status=status) for status in
           ("active", "waiting", "escalated", "resolved", "abandoned", "archived")}
    on_other = team.conversation(bot=other_bot)

    def listed(**params: str) -> set[str]:
        response = team.client.get("/api/v1/conversations", params=params, headers=team.agent_h)
        assert response.status_code == 200, response.text
        return {c["id"] for c in response.json()["data"]}

    assert listed() == {*ids.values(), on_other} - {ids["archived"]}   # archived only when asked for
    assert listed(status="escalated") == {ids["escalated"]}
    assert listed(status="waiting,escalated") == {ids["waiting"], ids["escalated"]}
    assert listed(status="archived") == {ids["archived"]}
    assert listed(chatbot_id=other_bot) == {on_other}
    assert listed(chatbot_id=other_bot, status="waiting") == set()
    bad = team.client.get("/api/v1/conversations", params={"status": "open"}, headers=team.agent_h)
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "status"


def test_keyset_pages_walk_every_conversation_once_newest_first(team: Team) -> None:
    made = [team.conversation(text=f"question {i}") for i in range(7)]
    seen, cursor, pages = [], None, []
    while True:
        params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        body = team.client.get("/api/v1/conversations", params=params, headers=team.agent_h).json()
        pages.append(body["pagination"]["page"])
        assert body["pagination"]["total"] == 7 and body["pagination"]["total_pages"] == 3
        seen += [c["id"] for c in body["data"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == [1, 2, 3]
    # newest first (the id breaks ties within a millisecond), each once
    expected = [r["id"] for r in team.db.query("SELECT id FROM conversations ORDER BY updated_at DESC, id DESC")]
    assert seen == expected and sorted(seen) == sorted(made)
    # the page parameter reads the same rows by offset
    page2 = team.client.get("/api/v1/conversations", params={"limit": 3, "page": 2}, headers=team.agent_h).json()
    assert [c["id"] for c in page2["data"]] == seen[3:6]
    # a conversation that changes moves to the front of -updated_at but not of -created_at
    team.db.write(lambda conn: states.transition(conn, team.ws, made[0], "ai_replied"))
    first = team.client.get("/api/v1/conversations", params={"limit": 1}, headers=team.agent_h).json()
    assert first["data"][0]["id"] == made[0]
    by_created = team.client.get("/api/v1/conversations", params={"limit": 1, "sort": "-created_at"},
                                 headers=team.agent_h).json()
    assert by_created["data"][0]["id"] == team.db.query_one(
        "SELECT id FROM conversations ORDER BY created_at DESC, id DESC LIMIT 1")["id"]
    # a cursor is bound to its sort and must be ours
    wrong = team.client.get("/api/v1/conversations", params={"cursor": first["next_cursor"], "sort": "-created_at"},
                            headers=team.agent_h)
    assert wrong.status_code == 422 and wrong.json()["error"]["details"][0]["field"] == "cursor"
    junk = team.client.get("/api/v1/conversations", params={"cursor": "not-a-cursor"}, headers=team.agent_h)
    assert junk.status_code == 422


def test_total_is_capped(team: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    from chatsupport.domain import conversation_views

    monkeypatch.setattr(conversation_views, "TOTAL_CAP", 3)
    for i in range(5):
        team.conversation(text=f"q{i}")
    body = team.client.get("/api/v1/conversations", params={"limit": 2}, headers=team.agent_h).json()
    assert body["pagination"] == {"page": 1, "limit": 2, "total": 3, "total_pages": 2, "total_capped": True}
    deep = team.client.get("/api/v1/conversations", params={"page": 99999}, headers=team.agent_h)
    assert deep.status_code == 422 and deep.json()["error"]["details"][0]["field"] == "page"


# --- one conversation ---------------------------------------------------------------------------------------
def test_get_has_messages_notes_events_rating_and_counters(team: Team) -> None:
    conv = team.conversation(status="escalated")

    def more(conn: Any) -> None:
        store.add_message(conn, conv, "bot", "Try Settings > Security.", sender_name="Acme Bot",
                          ai_metadata={"confidence": 0.92, "processing_time_ms": 1847,
                                       "sources": [{"title": "Password Reset Guide", "url": "https://d.example/r"}]})
        conn.execute("INSERT INTO internal_notes(id, conversation_id, content, author_id) VALUES ('n1', ?, ?, ?)",
                     (conv, "Customer had trouble with 2FA.", team.agent["id"]))
        conn.execute("UPDATE conversations SET satisfaction_rating = 5, satisfaction_comment = 'Great',"
                     " satisfaction_rated_at = '2025-10-05T14:36:00.000Z' WHERE id = ?", (conv,))

    team.db.write(more)
    body = team.client.get(f"/api/v1/conversations/{conv}", headers=team.viewer_h).json()
    assert body["id"] == conv and body["status"] == "escalated" and body["assigned_agent"] is None
    customer_msg, bot_msg = body["messages"]
    assert customer_msg["sender"] == {"type": "customer", "id": body["customer"]["id"], "name": "John Doe"}
    assert customer_msg["metadata"] == {}
    assert bot_msg["sender"] == {"type": "bot", "id": team.bot, "name": "Acme Bot"}
    assert bot_msg["metadata"]["confidence_score"] == 0.92 and bot_msg["metadata"]["processing_time_ms"] == 1847
    assert bot_msg["metadata"]["sources"] == [{"title": "Password Reset Guide", "url": "https://d.example/r"}]
    assert body["internal_notes"] == [{"id": "n1", "conversation_id": conv,
                                       "content": "Customer had trouble with 2FA.",
                                       "content_html": "<p>Customer had trouble with 2FA.</p>\n",
                                       "author": {"id": team.agent["id"], "name": "Sarah Johnson"},
                                       "mentioned_users": [],
                                       "created_at": body["internal_notes"][0]["created_at"]}]
    types = [e["type"] for e in body["events"]]
    assert types == ["created", "status_changed"]
    assert body["events"][1]["to"] == "escalated" and body["events"][1]["reason"] == "user_request"
    assert body["satisfaction_rating"] == {"score": 5, "comment": "Great", "rated_at": "2025-10-05T14:36:00.000Z"}
    assert body["metadata"]["ai_messages"] == 1 and body["metadata"]["customer_messages"] == 1
    assert body["metadata"]["agent_messages"] == 0 and body["metadata"]["total_response_time_seconds"] >= 0
    assert body["resolved_at"] is None and body["tags"] == []


def test_other_workspace_and_unknown_ids_are_404(client: TestClient, team: Team) -> None:
    conv = team.conversation()
    rival = Team(client, "Rival")
    for method, path, body in (("GET", "", None), ("POST", "/takeover", {}), ("POST", "/messages", {"content": "x"}),
                               ("POST", "/return-to-ai", None), ("POST", "/resolve", {})):
        for target in (conv, "no-such-id"):
            headers = rival.owner_h if target == conv else team.owner_h
            response = client.request(method, f"/api/v1/conversations/{target}{path}", headers=headers,
                                      **({"json": body} if body is not None else {}))
            assert response.status_code == 404 and error_code(response) == "not_found", (path, response.text)
    assert conv not in {c["id"] for c in client.get("/api/v1/conversations", headers=rival.owner_h).json()["data"]}
    assert team.status(conv)["status"] == "active"


def test_unknown_id_is_404_before_the_body_is_validated(team: Team) -> None:
    for path, junk in (("/takeover", {"message": ""}), ("/messages", {"content": "x" * 5000}),
                       ("/resolve", {"tags": "not-a-list"}), ("/messages", None)):
        kwargs = {"content": b"{not json"} if junk is None else {"json": junk}
        response = team.client.post(f"/api/v1/conversations/missing{path}", headers=team.agent_h, **kwargs)
        assert response.status_code == 404, (path, response.text)
    conv = team.conversation()
    response = team.client.post(f"/api/v1/conversations/{conv}/messages", headers=team.agent_h,
                                json={"content": "x" * 4001})
    assert response.status_code == 422


# --- actions --------------------------------------------------------------------------------------------------
def test_takeover_assigns_the_caller_and_is_idempotent_for_them(team: Team) -> None:
    conv = team.conversation(status="escalated")
    response = team.client.post(f"/api/v1/conversations/{conv}/takeover", headers=team.agent_h, json={})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["conversation_id"] == conv and body["status"] == "agent_handling"
    assert body["assigned_agent"] == {"id": team.agent["id"], "name": "Sarah Johnson"} and body["takeover_at"]
    again = team.client.post(f"/api/v1/conversations/{conv}/takeover", headers=team.agent_h,
                             json={"message": "Hello again"})
    assert again.status_code == 200 and again.json() == body
    row = team.status(conv)
    assert row["status"] == "agent_handling" and row["assigned_agent_id"] == team.agent["id"]
    assert row["agent_message_count"] == 0                     # the repeat sent nothing
    assert len(audit_rows(team.client, "conversation.taken_over")) == 1
    listed = team.client.get("/api/v1/conversations", headers=team.agent_h).json()["data"][0]
    assert listed["assigned_agent"] == {"id": team.agent["id"], "name": "Sarah Johnson",
                                        "email": team.agent["email"]}


def test_takeover_by_another_agent_is_already_taken(team: Team) -> None:
    conv = team.conversation()
    assert team.client.post(f"/api/v1/conversations/{conv}/takeover", headers=team.agent_h, json={}).status_code == 200
    for path, body in (("/takeover", {}), ("/messages", {"content": "Let me help"})):
        response = team.client.post(f"/api/v1/conversations/{conv}{path}", headers=team.other_h, json=body)
        assert response.status_code == 409 and error_code(response) == "already_taken"
    assert team.status(conv)["assigned_agent_id"] == team.agent["id"]


def test_takeover_for_another_agent_is_for_managers(team: Team) -> None:
    conv = team.conversation(status="escalated")
    refused = team.client.post(f"/api/v1/conversations/{conv}/takeover", headers=team.other_h,
                               json={"agent_id": team.agent["id"]})
    assert refused.status_code == 403
    viewer_target = team.client.post(f"/api/v1/conversations/{conv}/takeover", headers=team.owner_h,
                                     json={"agent_id": team.viewer["id"]})
    assert viewer_target.status_code == 422
    done = team.client.post(f"/api/v1/conversations/{conv}/takeover", headers=team.owner_h,
                            json={"agent_id": team.agent["id"]})
    assert done.status_code == 200 and done.json()["assigned_agent"]["id"] == team.agent["id"]


def test_takeover_with_a_message_sends_it_as_the_agent(team: Team) -> None:
    conv = team.conversation(status="waiting")
    response = team.client.post(f"/api/v1/conversations/{conv}/takeover", headers=team.agent_h,
                                json={"message": "Hi! I'm Sarah from support."})
    assert response.status_code == 200
    messages = team.client.get(f"/api/v1/conversations/{conv}", headers=team.agent_h).json()["messages"]
    assert messages[-1]["content"] == "Hi! I'm Sarah from support."
    assert messages[-1]["sender"] == {"type": "agent", "id": team.agent["id"], "name": "Sarah Johnson"}


def test_agent_reply_takes_over_a_free_conversation_then_replies(team: Team) -> None:
    conv = team.conversation(status="escalated")
    response = team.client.post(f"/api/v1/conversations/{conv}/messages", headers=team.agent_h,
                                json={"content": "Happy to help with that."})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "agent_handling" and body["message"]["content"] == "Happy to help with that."
    assert body["message"]["sender"] == {"type": "agent", "id": team.agent["id"], "name": "Sarah Johnson"}
    second = team.client.post(f"/api/v1/conversations/{conv}/messages", headers=team.agent_h,
                              json={"content": "Anything else?"})
    assert second.status_code == 201
    row = team.status(conv)
    assert row["assigned_agent_id"] == team.agent["id"] and row["agent_message_count"] == 2
    events = [e["type"] for e in team.client.get(f"/api/v1/conversations/{conv}", headers=team.agent_h).json()[
        "events"]]
    assert events.count("agent_joined") == 1
    blank = team.client.post(f"/api/v1/conversations/{conv}/messages", headers=team.agent_h, json={"content": "  "})
    assert blank.status_code == 422


def test_return_to_ai_clears_the_agent(team: Team) -> None:
    conv = team.conversation(status="escalated")
    team.client.post(f"/api/v1/conversations/{conv}/takeover", headers=team.agent_h, json={})
    response = team.client.post(f"/api/v1/conversations/{conv}/return-to-ai", headers=team.agent_h)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["conversation_id"] == conv and body["status"] == "active" and body["assigned_agent"] is None
    assert body["returned_at"]
    row = team.status(conv)
    assert row["status"] == "active" and row["assigned_agent_id"] is None
    # now anyone may take it
    assert team.client.post(f"/api/v1/conversations/{conv}/takeover", headers=team.other_h, json={}).status_code == 200


def test_resolve_stores_note_tags_and_resolver(team: Team) -> None:
    conv = team.conversation(status="escalated")
    team.db.write(lambda conn: conn.execute("UPDATE conversations SET tags = '[\"billing\"]' WHERE id = ?", (conv,)))
    team.client.post(f"/api/v1/conversations/{conv}/takeover", headers=team.agent_h, json={})
    response = team.client.post(f"/api/v1/conversations/{conv}/resolve", headers=team.agent_h,
                                json={"resolution_note": "Password reset successful.",
                                      "tags": ["password-reset", "Billing"]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body == {"conversation_id": conv, "status": "resolved", "resolved_by": team.agent["id"],
                    "resolved_at": body["resolved_at"]} and body["resolved_at"]
    full = team.client.get(f"/api/v1/conversations/{conv}", headers=team.agent_h).json()
    assert full["tags"] == ["billing", "password-reset"]
    assert full["resolution_note"] == "Password reset successful." and full["resolved_by"] == team.agent["id"]
    assert full["resolved_at"] == body["resolved_at"]
    assert any(e["type"] == "resolved" and e["resolved_by"] == team.agent["id"] for e in full["events"])
    assert len(audit_rows(team.client, "conversation.resolved")) == 1
    # resolving without a body works too
    other = team.conversation()
    assert team.client.post(f"/api/v1/conversations/{other}/resolve", headers=team.agent_h).status_code == 200


@pytest.mark.parametrize(("status", "path", "body"), [
    ("resolved", "/takeover", {}), ("abandoned", "/takeover", {}), ("archived", "/takeover", {}),
    ("resolved", "/messages", {"content": "hello?"}), ("active", "/return-to-ai", None),
    ("escalated", "/return-to-ai", None), ("resolved", "/resolve", {}), ("archived", "/resolve", {}),
    ("abandoned", "/return-to-ai", None),
])
def test_illegal_transitions_are_409_and_change_nothing(team: Team, status: str, path: str, body: Any) -> None:
    conv = team.conversation(status=status)
    before = team.status(conv)
    response = team.client.post(f"/api/v1/conversations/{conv}{path}", headers=team.agent_h,
                                **({"json": body} if body is not None else {}))
    assert response.status_code == 409 and error_code(response) == "illegal_transition", response.text
    assert team.status(conv) == before


def test_viewers_read_but_cannot_act(team: Team) -> None:
    conv = team.conversation(status="escalated")
    assert team.client.get("/api/v1/conversations", headers=team.viewer_h).status_code == 200
    assert team.client.get(f"/api/v1/conversations/{conv}", headers=team.viewer_h).status_code == 200
    for path, body in (("/takeover", {}), ("/messages", {"content": "hi"}), ("/return-to-ai", None),
                       ("/resolve", {})):
        response = team.client.post(f"/api/v1/conversations/{conv}{path}", headers=team.viewer_h,
                                    **({"json": body} if body is not None else {}))
        assert response.status_code == 403, path
        # the role check comes before the 404
        assert team.client.post(f"/api/v1/conversations/missing{path}", headers=team.viewer_h).status_code == 403
    assert team.client.get("/api/v1/conversations").status_code == 401
    assert team.status(conv)["status"] == "escalated"


# --- events ---------------------------------------------------------------------------------------------------
def test_takeover_and_resolve_reach_conversation_and_workspace_subscribers(team: Team) -> None:
    conv = team.conversation(status="escalated")
    inbox = Listener(team.client, [live.workspace_channel(team.ws)])
    widget = Listener(team.client, [live.conversation_channel(conv)])
    try:
        team.client.post(f"/api/v1/conversations/{conv}/takeover", headers=team.agent_h,
                         json={"message": "Hi, Sarah here."})
        frames = widget.take(3)
        assert [f["event"] for f in frames] == ["conversation:status_changed", "agent:joined", "message:receive"]
        assert frames[0]["data"] == {"conversation_id": conv, "old_status": "escalated",
                                     "new_status": "agent_handling", "changed_by": team.agent["id"]}
        assert frames[1]["data"] == {"conversation_id": conv, "agent": {"id": team.agent["id"], "name": "Sarah Johnson",
                                                                        "avatar_url": None, "title": "Support"}}
        message = frames[2]["data"]
        assert message["content"] == "Hi, Sarah here." and message["sender"]["type"] == "agent"
        assert message["sender"]["name"] == "Sarah Johnson" and message["conversation_id"] == conv
        assert [f["event"] for f in inbox.take(3)] == [f["event"] for f in frames]

        team.client.post(f"/api/v1/conversations/{conv}/resolve", headers=team.agent_h, json={})
        resolved = widget.take(2)
        assert resolved[0]["event"] == "conversation:status_changed"
        assert resolved[0]["data"]["new_status"] == "resolved"
        assert resolved[1] == {"event": "conversation:resolved", "data": {
            "conversation_id": conv, "survey": {"question": "How would you rate your experience?", "type": "rating",
                                                "scale": 5}}}
        assert [f["event"] for f in inbox.take(2)] == ["conversation:status_changed", "conversation:resolved"]
        # a refused action publishes nothing
        team.client.post(f"/api/v1/conversations/{conv}/return-to-ai", headers=team.agent_h)
        assert widget.pending() == 0
    finally:
        widget.close()
        inbox.close()


def test_takeover_cancels_an_ai_answer_still_streaming(team: Team) -> None:
    conv = team.conversation(status="active")

    async def start_answer() -> Any:
        import asyncio

        task = asyncio.get_running_loop().create_task(asyncio.sleep(30))
        live.answering(conv, task)
        return task

    task = team.client.blocking_portal.call(start_answer)
    assert team.client.post(f"/api/v1/conversations/{conv}/takeover", headers=team.agent_h, json={}).status_code == 200

    async def cancelled() -> bool:
        await anyio.sleep(0.01)
        return task.cancelled()

    assert team.client.blocking_portal.call(cancelled)


# --- presence -------------------------------------------------------------------------------------------------
def test_presence_heartbeats_make_people_online_away_and_offline(team: Team) -> None:
    response = team.client.post("/api/v1/presence", headers=team.agent_h, json={"status": "online"})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "online" and response.json()["offline_after_seconds"] == 120
    assert team.client.post("/api/v1/presence", headers=team.other_h, json={"status": "away"}).status_code == 200
    listed = team.client.get("/api/v1/presence", headers=team.viewer_h).json()
    status = {p["user_id"]: p["status"] for p in listed["data"]}
    assert status[team.agent["id"]] == "online" and status[team.other["id"]] == "away"
    assert status[team.owner["id"]] == "offline" and listed["agents_online"] == 1
    # two minutes later without a heartbeat, both are offline
    services = team.client.app.state.services
    actor = type("A", (), {"workspace_id": team.ws})()
    later = datetime.now(timezone.utc) + timedelta(seconds=presence_store.OFFLINE_AFTER_SECONDS + 5)
    team_later = presence.team(services, actor, now=later)  # type: ignore[arg-type]
    assert {p["status"] for p in team_later["data"]} == {"offline"} and team_later["agents_online"] == 0
    assert team.client.post("/api/v1/presence", json={"status": "online"}).status_code == 401


def test_bad_presence_status_is_refused(team: Team) -> None:
    response = team.client.post("/api/v1/presence", headers=team.agent_h, json={"status": "busy"})
    assert response.status_code == 422 and error_code(response) == "validation_error"


def test_agents_online_counts_only_staff_whose_console_says_online(team: Team) -> None:
    now = datetime.now(timezone.utc)
    since = presence_store.online_cutoff(now)

    def online() -> int:
        return store.agents_online(team.db.reader(), team.ws, since)

    # signing in (last_active_at) is not presence
    team.db.write(lambda conn: conn.execute("UPDATE users SET last_active_at = ?", (presence_store.stamp(now),)))
    assert online() == 0
    for user, status in ((team.agent, "online"), (team.other, "away"), (team.viewer, "online")):
        team.db.write(lambda conn: presence_store.heartbeat(conn, team.ws, user["id"], status, now))
    assert online() == 1                                         # the viewer cannot take a conversation
    team.db.write(lambda conn: presence_store.heartbeat(conn, team.ws, team.other["id"], "online", now))
    assert online() == 2
    stale = now - timedelta(seconds=presence_store.OFFLINE_AFTER_SECONDS + 1)
    team.db.write(lambda conn: presence_store.heartbeat(conn, team.ws, team.other["id"], "online", stale))
    assert online() == 1
