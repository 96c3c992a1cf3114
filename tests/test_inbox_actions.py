"""The inbox's conversation actions through the real app: reopen, assign (handover or named owner), tags and their
autocomplete, read markers and the agent's typing indicator — with their 404s before the body, 409s, role
refusals, audit rows and the frames each channel hears; and two agents taking over one conversation at once."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from litestar.testing import TestClient

from accounts_support import audit_rows, error_code
from chatsupport import live
from conversation_support import Listener, Team, client, team  # noqa: F401 - shared fixtures


def post(team: Team, conv: str, path: str, headers: dict[str, str], body: Any = None) -> Any:
    return team.client.post(f"/api/v1/conversations/{conv}{path}", headers=headers,
                            **({"json": body} if body is not None else {}))


def events_of(team: Team, conv: str) -> list[dict[str, Any]]:
    return team.client.get(f"/api/v1/conversations/{conv}", headers=team.owner_h).json()["events"]


# --- reopen ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("status", ["resolved", "abandoned"])
def test_reopen_brings_a_closed_conversation_back_to_the_ai(team: Team, status: str) -> None:
    conv = team.conversation(status=status)
    widget = Listener(team.client, [live.conversation_channel(conv)])
    try:
        response = post(team, conv, "/reopen", team.agent_h)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["conversation_id"] == conv and body["status"] == "active"
        assert body["reopened_by"] == team.agent["id"] and body["reopened_at"]
        [frame] = widget.take(1)
        assert frame == {"event": "conversation:status_changed", "data": {
            "conversation_id": conv, "old_status": status, "new_status": "active", "changed_by": team.agent["id"]}}
    finally:
        widget.close()
    assert team.status(conv)["status"] == "active"
    last = events_of(team, conv)[-1]
    assert last["type"] == "status_changed" and last["event"] == "reopen" and last["to"] == "active"
    [audit] = audit_rows(team.client, "conversation.reopened")
    assert audit["resource_id"] == conv and audit["user_id"] == team.agent["id"]


@pytest.mark.parametrize("status", ["active", "waiting", "escalated", "archived"])
def test_reopen_of_anything_else_is_illegal(team: Team, status: str) -> None:
    conv = team.conversation(status=status)
    before = team.status(conv)
    response = post(team, conv, "/reopen", team.agent_h)
    assert response.status_code == 409 and error_code(response) == "illegal_transition", response.text
    assert team.status(conv) == before
    assert audit_rows(team.client, "conversation.reopened") == []


def test_reopen_of_an_agent_handled_conversation_is_illegal(team: Team) -> None:
    conv = team.conversation(status="escalated")
    assert post(team, conv, "/takeover", team.agent_h, {}).status_code == 200
    response = post(team, conv, "/reopen", team.owner_h)
    assert response.status_code == 409 and error_code(response) == "illegal_transition"


# --- assign ---------------------------------------------------------------------------------------------------
def test_owner_assigns_a_free_conversation_without_changing_its_status(team: Team) -> None:
    conv = team.conversation(status="escalated")
    inbox = Listener(team.client, [live.workspace_channel(team.ws)])
    widget = Listener(team.client, [live.conversation_channel(conv)])
    mine = Listener(team.client, [live.user_channel(team.agent["id"])])
    try:
        response = post(team, conv, "/assign", team.owner_h, {"agent_id": team.agent["id"]})
        assert response.status_code == 200, response.text
        assert response.json() == {"conversation_id": conv, "status": "escalated", "previous_agent_id": None,
                                   "assigned_agent": {"id": team.agent["id"], "name": "Sarah Johnson"}}
        [assigned] = inbox.take(1)
        assert assigned == {"event": "conversation:assigned", "data": {
            "conversation_id": conv, "assigned_agent": {"id": team.agent["id"], "name": "Sarah Johnson"},
            "previous_agent_id": None, "assigned_by": team.owner["id"]}}
        [note] = mine.take(1)
        assert note["event"] == "notification:new" and note["data"]["unread_count"] == 1
        assert note["data"]["notification"]["kind"] == "assignment"
        assert note["data"]["notification"]["conversation_id"] == conv
        assert note["data"]["notification"]["title"] == "Olive Owner assigned you a conversation"
        assert widget.pending() == 0                     # the customer hears nothing of an assignment
    finally:
        for listener in (inbox, widget, mine):
            listener.close()
    row = team.status(conv)
    assert row["status"] == "escalated" and row["assigned_agent_id"] == team.agent["id"] and row["assigned_at"]
    assert events_of(team, conv)[-1]["type"] == "assigned"
    [audit] = audit_rows(team.client, "conversation.assigned")
    assert audit["resource_id"] == conv
    listed = team.client.get("/api/v1/notifications", headers=team.agent_h).json()
    assert listed["unread_count"] == 1 and listed["data"][0]["kind"] == "assignment"
    # assigning again to the same agent changes nothing and notifies nobody again
    again = post(team, conv, "/assign", team.owner_h, {"agent_id": team.agent["id"]})
    assert again.status_code == 200 and again.json()["previous_agent_id"] == team.agent["id"]
    assert len(audit_rows(team.client, "conversation.assigned")) == 1
    assert team.client.get("/api/v1/notifications", headers=team.agent_h).json()["unread_count"] == 1
    # whoever takes it over holds it: assignment names an owner, it does not lock the conversation
    assert post(team, conv, "/takeover", team.other_h, {}).status_code == 200
    assert team.status(conv)["assigned_agent_id"] == team.other["id"]


def test_assigning_an_agent_handled_conversation_hands_it_over(team: Team) -> None:
    conv = team.conversation(status="escalated")
    assert post(team, conv, "/takeover", team.agent_h, {}).status_code == 200
    widget = Listener(team.client, [live.conversation_channel(conv)])
    try:
        response = post(team, conv, "/assign", team.owner_h, {"agent_id": team.other["id"]})
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "agent_handling"
        assert response.json()["previous_agent_id"] == team.agent["id"]
        [joined] = widget.take(1)
        assert joined == {"event": "agent:joined", "data": {"conversation_id": conv, "agent": {
            "id": team.other["id"], "name": "Omar Other", "avatar_url": None, "title": "Support"}}}
    finally:
        widget.close()
    row = team.status(conv)
    assert row["status"] == "agent_handling" and row["assigned_agent_id"] == team.other["id"]
    # the new holder replies; the previous one is now refused
    assert post(team, conv, "/messages", team.other_h, {"content": "Omar here."}).status_code == 201
    refused = post(team, conv, "/messages", team.agent_h, {"content": "Me again"})
    assert refused.status_code == 409 and error_code(refused) == "already_taken"
    types = [e["type"] for e in events_of(team, conv)]
    assert types.count("agent_joined") == 2 and "assigned" in types


def test_agents_assign_only_to_themselves(team: Team) -> None:
    conv = team.conversation(status="escalated")
    refused = post(team, conv, "/assign", team.agent_h, {"agent_id": team.other["id"]})
    assert refused.status_code == 403 and error_code(refused) == "forbidden"
    mine = post(team, conv, "/assign", team.agent_h, {"agent_id": team.agent["id"]})
    assert mine.status_code == 200 and mine.json()["assigned_agent"]["id"] == team.agent["id"]
    # self-assignment notifies nobody
    assert team.client.get("/api/v1/notifications", headers=team.agent_h).json()["unread_count"] == 0
    # an agent cannot take another agent's live conversation by assigning it to themselves
    held = team.conversation(status="escalated")
    assert post(team, held, "/takeover", team.other_h, {}).status_code == 200
    stolen = post(team, held, "/assign", team.agent_h, {"agent_id": team.agent["id"]})
    assert stolen.status_code == 409 and error_code(stolen) == "already_taken"
    assert team.status(held)["assigned_agent_id"] == team.other["id"]


def test_assign_targets_must_be_active_staff_of_the_workspace(client: TestClient, team: Team) -> None:
    conv = team.conversation()
    rival = Team(client, "Rival")
    for target in (team.viewer["id"], rival.agent["id"], "nobody"):
        response = post(team, conv, "/assign", team.owner_h, {"agent_id": target})
        assert response.status_code == 422 and error_code(response) == "validation_error", target
        assert response.json()["error"]["details"][0]["field"] == "agent_id"
    team.db.write(lambda conn: conn.execute("UPDATE users SET status = 'suspended' WHERE id = ?",
                                            (team.other["id"],)))
    suspended = post(team, conv, "/assign", team.owner_h, {"agent_id": team.other["id"]})
    assert suspended.status_code == 422
    archived = team.conversation(status="archived")
    closed = post(team, archived, "/assign", team.owner_h, {"agent_id": team.agent["id"]})
    assert closed.status_code == 409 and error_code(closed) == "conversation_closed"
    assert team.status(conv)["assigned_agent_id"] is None


# --- tags -----------------------------------------------------------------------------------------------------
def test_put_tags_replaces_them_and_autocomplete_counts_them(team: Team) -> None:
    first, second, third = (team.conversation() for _ in range(3))
    inbox = Listener(team.client, [live.workspace_channel(team.ws)])
    widget = Listener(team.client, [live.conversation_channel(first)])
    try:
        response = team.client.put(f"/api/v1/conversations/{first}/tags", headers=team.agent_h,
                                   json={"tags": [" Billing ", "refund", "billing", "VIP  customer"]})
        assert response.status_code == 200, response.text
        assert response.json() == {"conversation_id": first, "tags": ["Billing", "refund", "VIP customer"]}
        assert inbox.take(1) == [{"event": "conversation:tags_updated",
                                  "data": {"conversation_id": first, "tags": ["Billing", "refund", "VIP customer"]}}]
        assert widget.pending() == 0
    finally:
        inbox.close()
        widget.close()
    replaced = team.client.put(f"/api/v1/conversations/{first}/tags", headers=team.agent_h,
                               json={"tags": ["billing", "urgent"]})
    assert replaced.json()["tags"] == ["billing", "urgent"]
    assert team.status(first)["tags"] == ["billing", "urgent"]
    for conv, tags in ((second, ["Billing"]), (third, ["bug", "billing-api"])):
        assert team.client.put(f"/api/v1/conversations/{conv}/tags", headers=team.agent_h,
                               json={"tags": tags}).status_code == 200
    last = events_of(team, first)[-1]
    assert last["type"] == "tags_changed" and last["before"] == ["Billing", "refund", "VIP customer"]
    assert len(audit_rows(team.client, "conversation.tags_updated")) == 4

    def suggest(q: str) -> list[dict[str, Any]]:
        got = team.client.get("/api/v1/conversation-tags", params={"q": q}, headers=team.viewer_h)
        assert got.status_code == 200, got.text
        return got.json()["data"]

    billing = suggest("BIL")
    assert [(s["tag"].lower(), s["count"]) for s in billing] == [("billing", 2), ("billing-api", 1)]
    assert {s["tag"].lower() for s in suggest("")} == {"billing", "urgent", "bug", "billing-api"}
    assert suggest("%") == [] and suggest("zzz") == []
    # clearing, and the limits
    assert team.client.put(f"/api/v1/conversations/{first}/tags", headers=team.agent_h,
                           json={"tags": []}).json()["tags"] == []
    too_many = team.client.put(f"/api/v1/conversations/{first}/tags", headers=team.agent_h,
                               json={"tags": [f"t{i}" for i in range(21)]})
    assert too_many.status_code == 422
    blank = team.client.put(f"/api/v1/conversations/{first}/tags", headers=team.agent_h, json={"tags": ["  "]})
    assert blank.status_code == 422 and blank.json()["error"]["details"][0]["field"] == "tags"


def test_tag_autocomplete_stays_in_the_workspace(client: TestClient, team: Team) -> None:
    conv = team.conversation()
    team.client.put(f"/api/v1/conversations/{conv}/tags", headers=team.agent_h, json={"tags": ["secret-project"]})
    rival = Team(client, "Rival")
    assert client.get("/api/v1/conversation-tags", params={"q": "secret"}, headers=rival.owner_h).json() == {
        "data": []}


# --- read markers and typing ------------------------------------------------------------------------------------
def test_read_marks_the_conversation_for_the_caller_only(team: Team) -> None:
    conv = team.conversation()
    mine = Listener(team.client, [live.user_channel(team.viewer["id"])])
    try:
        first = post(team, conv, "/read", team.viewer_h)
        assert first.status_code == 200, first.text
        assert first.json()["conversation_id"] == conv and first.json()["read_at"]
        assert mine.take(1) == [{"event": "conversation:read", "data": first.json()}]
    finally:
        mine.close()
    second = post(team, conv, "/read", team.viewer_h).json()
    assert second["read_at"] >= first.json()["read_at"]
    rows = team.db.query("SELECT user_id, read_at FROM conversation_reads WHERE conversation_id = ?", (conv,))
    assert rows == [{"user_id": team.viewer["id"], "read_at": second["read_at"]}]


def test_agent_typing_reaches_the_widget_only_from_whoever_may_reply(team: Team) -> None:
    conv = team.conversation(status="escalated")
    widget = Listener(team.client, [live.conversation_channel(conv)])
    try:
        assert post(team, conv, "/typing", team.agent_h, {"typing": True}).json() == {"conversation_id": conv,
                                                                                        "typing": True}
        assert widget.take(1) == [{"event": "typing:start", "data": {
            "conversation_id": conv, "sender": {"type": "agent", "name": "Sarah Johnson"}}}]
        assert post(team, conv, "/takeover", team.agent_h, {}).status_code == 200
        widget.take(2)                                   # status_changed, agent:joined
        assert post(team, conv, "/typing", team.agent_h, {"typing": False}).status_code == 200
        assert widget.take(1)[0]["event"] == "typing:stop"
        refused = post(team, conv, "/typing", team.other_h, {"typing": True})
        assert refused.status_code == 409 and error_code(refused) == "already_taken"
        assert post(team, conv, "/typing", team.viewer_h, {"typing": True}).status_code == 403
        assert widget.pending() == 0
    finally:
        widget.close()
    bad = post(team, conv, "/typing", team.agent_h, {"typing": "yes"})
    assert bad.status_code == 400 or bad.status_code == 422


# --- concurrency, 404s and roles --------------------------------------------------------------------------------
def test_two_agents_taking_over_at_once_exactly_one_wins(team: Team) -> None:
    for _ in range(5):
        conv = team.conversation(status="escalated")
        gate = threading.Barrier(2)
        results: dict[str, Any] = {}

        def take(name: str, headers: dict[str, str]) -> None:
            gate.wait()
            results[name] = post(team, conv, "/takeover", headers, {})

        threads = [threading.Thread(target=take, args=(n, h)) for n, h in (("agent", team.agent_h),
                                                                            ("other", team.other_h))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        codes = sorted(r.status_code for r in results.values())
        assert codes == [200, 409], {n: r.text for n, r in results.items()}
        [loser] = [r for r in results.values() if r.status_code == 409]
        [winner] = [n for n, r in results.items() if r.status_code == 200]
        assert error_code(loser) == "already_taken"
        assert team.status(conv)["assigned_agent_id"] == getattr(team, winner)["id"]
        joined = [e for e in events_of(team, conv) if e["type"] == "agent_joined"]
        assert len(joined) == 1


ACTIONS = [("POST", "/reopen", None), ("POST", "/assign", {"agent_id": 7}), ("PUT", "/tags", {"tags": "x"}),
           ("POST", "/notes", {"content": ""}), ("GET", "/notes", None), ("POST", "/read", None),
           ("POST", "/typing", {"typing": "maybe"}), ("POST", "/suggest-reply", None)]


@pytest.mark.parametrize(("method", "path", "junk"), ACTIONS)
def test_unknown_or_foreign_ids_are_404_before_the_body(client: TestClient, team: Team, method: str, path: str,
                                                        junk: Any) -> None:
    conv = team.conversation()
    rival = Team(client, "Rival")
    for target, headers in (("missing", team.owner_h), (conv, rival.owner_h)):
        for body in ({"json": junk} if junk is not None else {}, {"content": b"{not json"}):
            response = client.request(method, f"/api/v1/conversations/{target}{path}", headers=headers, **body)
            assert response.status_code == 404 and error_code(response) == "not_found", (path, response.text)


@pytest.mark.parametrize(("method", "path", "body"), [
    ("POST", "/reopen", None), ("POST", "/assign", {"agent_id": "x"}), ("PUT", "/tags", {"tags": ["a"]}),
    ("POST", "/notes", {"content": "hi"}), ("POST", "/typing", {"typing": True}), ("POST", "/suggest-reply", None)])
def test_viewers_cannot_act_and_the_role_check_comes_first(team: Team, method: str, path: str, body: Any) -> None:
    conv = team.conversation(status="resolved")
    for target in (conv, "missing"):
        response = team.client.request(method, f"/api/v1/conversations/{target}{path}", headers=team.viewer_h,
                                       **({"json": body} if body is not None else {}))
        assert response.status_code == 403 and error_code(response) == "forbidden", path
    assert team.client.request(method, f"/api/v1/conversations/{conv}{path}").status_code == 401
    assert team.status(conv)["status"] == "resolved"


def test_viewers_may_read_notes_and_mark_read(team: Team) -> None:
    conv = team.conversation()
    assert team.client.get(f"/api/v1/conversations/{conv}/notes", headers=team.viewer_h).json() == {"data": []}
    assert post(team, conv, "/read", team.viewer_h).status_code == 200
    assert team.client.get("/api/v1/conversation-tags", headers=team.viewer_h).status_code == 200
