"""Team API (issue 9 part 1): members with per-role checks, invitations end to end (plain link, mailed through a
local SMTP server, expired, used, revoked, replaced), deactivation cutting live sessions, and an agent's max
concurrent conversations."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from litestar.testing import TestClient

from accounts_support import PASSWORD, account_settings, add_user, audit_rows, bearer, error_code, login, \
    open_client
from chatsupport.domain import auth
from chatsupport.domain.audit import Origin
from chatsupport.store import mfa
from conversation_support import Team, client, team  # noqa: F401
from test_mail import Inbox, smtp  # noqa: F401

NEW_PASSWORD = "Joined#2026"


def _invite(client: TestClient, headers: dict[str, str], email: str, role: str = "agent",
            name: str | None = None) -> dict[str, Any]:
    response = client.post("/api/v1/team/invitations", json={"email": email, "role": role, "name": name},
                           headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def _token(invitation: dict[str, Any]) -> str:
    return invitation["accept_url"].rsplit("/invite/", 1)[1]


def _accept(client: TestClient, token: str, password: str = NEW_PASSWORD, name: str | None = None) -> Any:
    client.cookies.clear()
    return client.post(f"/api/v1/team/invitations/{token}/accept", json={"password": password, "name": name})


# --- members and roles ----------------------------------------------------------------------------------------
def test_every_role_sees_the_team_but_only_managers_change_it(team: Team) -> None:
    client = team.client
    admin = add_user(client, "Acme", "admin@acme.example", "admin", name="Ada Admin")
    admin_h = bearer(login(client, admin["email"]))
    for headers in (team.owner_h, admin_h, team.agent_h, team.viewer_h):
        listed = client.get("/api/v1/team/members", headers=headers)
        assert listed.status_code == 200
        assert {m["email"] for m in listed.json()["data"]} == {"owner@acme.example", "agent@acme.example",
                                                               "other@acme.example", "viewer@acme.example",
                                                               "admin@acme.example"}
    agents = client.get("/api/v1/team/members", params={"role": "agent"}, headers=team.viewer_h).json()["data"]
    assert sorted(m["display_name"] for m in agents) == ["Omar Other", "Sarah Johnson"]
    assert all(m["max_concurrent_conversations"] is None and m["active_conversations"] == 0 for m in agents)
    bad = client.get("/api/v1/team/members", params={"role": "boss"}, headers=team.owner_h)
    assert bad.status_code == 422

    member = f"/api/v1/team/members/{team.other['id']}"
    for headers in (team.agent_h, team.viewer_h):
        assert client.patch(member, json={"role": "admin"}, headers=headers).status_code == 403
        assert client.delete(member, headers=headers).status_code == 403
        assert client.get("/api/v1/team/invitations", headers=headers).status_code == 403
        refused = client.post("/api/v1/team/invitations", json={"email": "x@acme.example", "role": "agent"},
                              headers=headers)
        assert refused.status_code == 403 and error_code(refused) == "forbidden"

    promoted = client.patch(member, json={"role": "admin", "max_concurrent_conversations": 3}, headers=admin_h)
    assert promoted.status_code == 200, promoted.text
    assert promoted.json()["role"] == "admin" and promoted.json()["max_concurrent_conversations"] == 3
    # only owners make or change owners; nobody changes their own role or status
    to_owner = client.patch(member, json={"role": "owner"}, headers=admin_h)
    assert to_owner.status_code == 403 and error_code(to_owner) == "forbidden"
    on_owner = client.patch(f"/api/v1/team/members/{team.owner['id']}", json={"max_concurrent_conversations": 2},
                            headers=admin_h)
    assert on_owner.status_code == 403
    assert client.delete(f"/api/v1/team/members/{team.owner['id']}", headers=admin_h).status_code == 403
    own = client.patch(f"/api/v1/team/members/{team.owner['id']}", json={"role": "agent"}, headers=team.owner_h)
    assert own.status_code == 409 and "own role" in own.json()["error"]["message"]
    assert client.delete(f"/api/v1/team/members/{team.owner['id']}", headers=team.owner_h).status_code == 409
    # but one's own limit is fine, and null lifts it
    mine = client.patch(f"/api/v1/team/members/{admin['id']}", json={"max_concurrent_conversations": 4},
                        headers=admin_h)
    assert mine.status_code == 200 and mine.json()["max_concurrent_conversations"] == 4
    lifted = client.patch(member, json={"max_concurrent_conversations": None}, headers=team.owner_h)
    assert lifted.json()["max_concurrent_conversations"] is None and lifted.json()["role"] == "admin"
    for wrong in ({"max_concurrent_conversations": 0}, {"role": "boss"}, {"status": None}, {"nickname": "x"}):
        refused = client.patch(member, json=wrong, headers=team.owner_h)
        assert refused.status_code == 422 and error_code(refused) == "validation_error", wrong
    made_owner = client.patch(member, json={"role": "owner"}, headers=team.owner_h)
    assert made_owner.status_code == 200 and made_owner.json()["role"] == "owner"

    changes = [(r["action"], r["resource_id"]) for r in audit_rows(client, "user.role_changed")]
    assert changes == [("user.role_changed", team.other["id"])] * 2
    limits = audit_rows(client, "user.max_concurrent_changed")
    assert [r["resource_id"] for r in limits] == [team.other["id"], admin["id"], team.other["id"]]
    # the older /api/v1/users routes still answer, from the same rules
    assert client.patch(f"/api/v1/users/{team.owner['id']}", json={"role": "agent"},
                        headers=team.owner_h).status_code == 409


# --- invitations ----------------------------------------------------------------------------------------------
def test_invite_accept_once_without_a_mail_server(team: Team) -> None:
    client = team.client
    invitation = _invite(client, team.owner_h, "Nia@Acme.example", "agent", "Nia Newcomer")
    assert set(invitation) >= {"id", "email", "role", "expires_at", "accept_url"}
    assert invitation["email"] == "nia@acme.example" and invitation["role"] == "agent"
    assert invitation["emailed"] is False and invitation["status"] == "pending"
    assert invitation["accept_url"].startswith("http://127.0.0.1:8000/invite/")
    valid_days = (auth.parse_iso(invitation["expires_at"]) - auth.parse_iso(invitation["created_at"])).days
    assert valid_days == 7
    token = _token(invitation)
    stored = team.db.query_one("SELECT * FROM invitations WHERE id = ?", (invitation["id"],))
    assert token not in str(stored) and stored["token_hash"] == auth.token_hash(token)  # only the hash is kept

    pending = client.get("/api/v1/team/invitations", headers=team.owner_h).json()["data"]
    assert [(p["email"], p["status"]) for p in pending] == [("nia@acme.example", "pending")]
    assert "accept_url" not in pending[0]

    weak = _accept(client, token, password="short")
    assert weak.status_code == 422 and team.db.query_one("SELECT count(*) AS n FROM users WHERE email = ?",
                                                         ("nia@acme.example",))["n"] == 0
    joined = _accept(client, token, name="Nia N.")
    assert joined.status_code == 201, joined.text
    body = joined.json()
    assert body["user"]["email"] == "nia@acme.example" and body["user"]["role"] == "agent"
    assert body["user"]["workspace_id"] == team.ws and body["user"]["display_name"] == "Nia N."
    assert body["user"]["email_verified"] is False  # the link was handed over, not mailed
    me = client.get("/api/v1/auth/me", headers=bearer(body))
    assert me.status_code == 200 and me.json()["user"]["id"] == body["user"]["id"]
    login(client, "nia@acme.example", NEW_PASSWORD)

    used = _accept(client, token)
    assert used.status_code == 410 and error_code(used) == "invitation_used"
    assert client.get("/api/v1/team/invitations", headers=team.owner_h).json()["data"] == []
    unknown = _accept(client, "not-a-real-token")
    assert unknown.status_code == 404 and error_code(unknown) == "invitation_invalid"
    again = client.post("/api/v1/team/invitations", json={"email": "nia@acme.example", "role": "agent"},
                        headers=team.owner_h)
    assert again.status_code == 409 and error_code(again) == "already_exists"

    created = audit_rows(client, "invitation.created")
    accepted = audit_rows(client, "invitation.accepted")
    assert [r["resource_id"] for r in created] == [invitation["id"]] == [r["resource_id"] for r in accepted]
    assert created[0]["user_id"] == team.owner["id"] and accepted[0]["user_id"] == body["user"]["id"]


def test_expired_revoked_and_replaced_invitations(team: Team) -> None:
    client = team.client
    expired = _invite(client, team.owner_h, "late@acme.example")
    team.db.write(lambda conn: conn.execute("UPDATE invitations SET expires_at = '2020-01-01T00:00:00.000Z'"
                                            " WHERE id = ?", (expired["id"],)))
    late = _accept(client, _token(expired))
    assert late.status_code == 410 and error_code(late) == "invitation_expired"
    listed = client.get("/api/v1/team/invitations", headers=team.owner_h).json()["data"]
    assert [p["status"] for p in listed] == ["expired"]
    renewed = client.post(f"/api/v1/team/invitations/{expired['id']}/renew", headers=team.owner_h)
    assert renewed.status_code == 200 and renewed.json()["status"] == "pending"
    assert _token(renewed.json()) != _token(expired)
    assert _accept(client, _token(renewed.json())).status_code == 201

    first = _invite(client, team.owner_h, "twice@acme.example", "viewer")
    second = _invite(client, team.owner_h, "twice@acme.example", "agent")  # replaces the first
    assert error_code(_accept(client, _token(first))) == "invitation_invalid"
    open_ones = client.get("/api/v1/team/invitations", headers=team.owner_h).json()["data"]
    assert [(p["id"], p["role"]) for p in open_ones] == [(second["id"], "agent")]

    revoked = client.delete(f"/api/v1/team/invitations/{second['id']}", headers=team.owner_h)
    assert revoked.status_code == 204
    gone = _accept(client, _token(second))
    assert gone.status_code == 404 and error_code(gone) == "invitation_invalid"
    assert client.get("/api/v1/team/invitations", headers=team.owner_h).json()["data"] == []
    revocations = [(r["resource_id"], r["metadata"]) for r in audit_rows(client, "invitation.revoked")]
    assert revocations == [(first["id"], '{"reason": "replaced"}'), (second["id"], None)]

    # only owners invite owners, and an admin cannot take back an owner's invitation either
    admin_h = bearer(login(client, add_user(client, "Acme", "admin@acme.example", "admin")["email"]))
    refused = client.post("/api/v1/team/invitations", json={"email": "boss2@acme.example", "role": "owner"},
                          headers=admin_h)
    assert refused.status_code == 403
    boss = _invite(client, team.owner_h, "boss2@acme.example", "owner")
    assert client.delete(f"/api/v1/team/invitations/{boss['id']}", headers=admin_h).status_code == 403
    for wrong in ({"email": "not-an-email", "role": "agent"}, {"email": "a@acme.example", "role": "boss"}):
        invalid = client.post("/api/v1/team/invitations", json=wrong, headers=team.owner_h)
        assert invalid.status_code == 422 and error_code(invalid) == "validation_error", wrong
    # another workspace's invitation is not found
    other_h = bearer(login(client, add_user(client, "Globex", "owner@globex.example", "owner")["email"]))
    assert client.delete(f"/api/v1/team/invitations/{boss['id']}", headers=other_h).status_code == 404


def test_invitation_mailed_through_smtp_and_the_link_works(tmp_path: Path, smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    settings = account_settings(tmp_path / "data", SMTP_HOST="127.0.0.1", SMTP_PORT=str(port),
                                SMTP_STARTTLS="false", SMTP_FROM="Acme Support <help@acme.example>",
                                RUN_WORKER="true")
    with open_client(settings) as client:
        owner = add_user(client, "Acme", "owner@acme.example", "owner", name="Olive Owner")
        headers = bearer(login(client, owner["email"]))
        invitation = _invite(client, headers, "mia@acme.example", "viewer", "Mia")
        assert invitation["emailed"] is True
        mail = _wait_for_mail(inbox, 1)
        assert mail["to"] == "mia@acme.example" and mail["from"] == "Acme Support <help@acme.example>"
        assert mail["subject"] == "Olive Owner invited you to Acme on ChatSupport"
        assert "as a viewer" in mail["body"]
        url = re.search(r"https?://\S+", mail["body"]).group(0)  # type: ignore[union-attr]
        assert url == invitation["accept_url"]

        renewed = client.post(f"/api/v1/team/invitations/{invitation['id']}/renew", headers=headers).json()
        second = _wait_for_mail(inbox, 2)
        fresh = re.search(r"https?://\S+", second["body"]).group(0)  # type: ignore[union-attr]
        assert fresh == renewed["accept_url"] != url
        assert error_code(_accept(client, url.rsplit("/", 1)[1])) == "invitation_invalid"  # the old link died
        joined = _accept(client, fresh.rsplit("/", 1)[1])
        assert joined.status_code == 201 and joined.json()["user"]["email_verified"] is True
        assert joined.json()["user"]["role"] == "viewer" and joined.json()["user"]["display_name"] == "Mia"
        assert [r["metadata"] for r in audit_rows(client, "invitation.created")] == ['{"mailed": true}']


def _wait_for_mail(inbox: Inbox, count: int) -> dict[str, str]:
    deadline = time.monotonic() + 30
    while len(inbox.messages) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(inbox.messages) == count
    return inbox.messages[-1]


# --- deactivation ---------------------------------------------------------------------------------------------
def test_deactivation_cuts_live_sessions_at_once_and_keeps_history(team: Team) -> None:
    client = team.client
    services = client.app.state.services
    tokens = login(client, team.agent["email"])
    cookie = auth.login(services, team.agent["email"], PASSWORD, Origin(), kind="console").token
    conversation = team.conversation(status="escalated")
    said = client.post(f"/api/v1/conversations/{conversation}/messages", json={"content": "On it!"},
                       headers=bearer(tokens))
    assert said.status_code == 201
    client.cookies.clear()
    assert client.get("/profile", cookies={"cs_session": cookie}, follow_redirects=False).status_code == 200
    assert client.get("/api/v1/auth/me", headers=bearer(tokens)).status_code == 200

    gone = client.delete(f"/api/v1/team/members/{team.agent['id']}", headers=team.owner_h)
    assert gone.status_code == 200 and gone.json()["status"] == "inactive"

    # the very next request of each credential is refused
    assert client.get("/api/v1/auth/me", headers=bearer(tokens)).status_code == 401
    client.cookies.clear()
    page = client.get("/profile", cookies={"cs_session": cookie}, follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/login")
    client.cookies.clear()
    refreshed = client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 401
    refused = client.post("/api/v1/auth/login", json={"email": team.agent["email"], "password": PASSWORD})
    assert refused.status_code == 401
    live = team.db.query_one("SELECT count(*) AS n FROM refresh_tokens WHERE user_id = ? AND revoked_at IS NULL",
                             (team.agent["id"],))
    assert live["n"] == 0

    # history stays: the account, its message, its audit trail
    assert team.db.query_one("SELECT status FROM users WHERE id = ?", (team.agent["id"],))["status"] == "inactive"
    messages = team.db.query("SELECT sender_id FROM messages WHERE conversation_id = ? AND sender_type = 'agent'",
                             (conversation,))
    assert [m["sender_id"] for m in messages] == [team.agent["id"]]
    [row] = audit_rows(client, "user.deactivated")
    assert row["resource_id"] == team.agent["id"] and row["user_id"] == team.owner["id"]
    listed = client.get("/api/v1/team/members", params={"status": "inactive"}, headers=team.owner_h).json()["data"]
    assert [m["id"] for m in listed] == [team.agent["id"]]

    back = client.patch(f"/api/v1/team/members/{team.agent['id']}", json={"status": "active"}, headers=team.owner_h)
    assert back.status_code == 200 and back.json()["status"] == "active"
    login(client, team.agent["email"])


# --- max concurrent conversations -----------------------------------------------------------------------------
def test_max_concurrent_conversations_is_enforced(team: Team) -> None:
    client = team.client
    first, second, third = (team.conversation(status="escalated") for _ in range(3))
    limited = client.patch(f"/api/v1/team/members/{team.agent['id']}", json={"max_concurrent_conversations": 1},
                           headers=team.owner_h)
    assert limited.status_code == 200

    took = client.post(f"/api/v1/conversations/{first}/takeover", json={}, headers=team.agent_h)
    assert took.status_code == 200, took.text
    full = client.post(f"/api/v1/conversations/{second}/takeover", json={}, headers=team.agent_h)
    assert full.status_code == 409 and error_code(full) == "agent_at_capacity"
    assert full.json()["error"]["details"] == {"agent_id": team.agent["id"], "max_concurrent_conversations": 1,
                                               "active_conversations": 1}
    reply = client.post(f"/api/v1/conversations/{second}/messages", json={"content": "Hi"}, headers=team.agent_h)
    assert reply.status_code == 409 and error_code(reply) == "agent_at_capacity"
    assert team.status(second)["status"] == "escalated"  # nothing changed
    # a handover to a full agent is refused too; naming them for a queued conversation is not
    assert client.post(f"/api/v1/conversations/{third}/takeover", json={}, headers=team.other_h).status_code == 200
    handover = client.post(f"/api/v1/conversations/{third}/assign", json={"agent_id": team.agent["id"]},
                           headers=team.owner_h)
    assert handover.status_code == 409 and error_code(handover) == "agent_at_capacity"
    named = client.post(f"/api/v1/conversations/{second}/assign", json={"agent_id": team.agent["id"]},
                        headers=team.owner_h)
    assert named.status_code == 200
    load = {m["id"]: m for m in client.get("/api/v1/team/members", headers=team.viewer_h).json()["data"]}
    assert (load[team.agent["id"]]["active_conversations"], load[team.agent["id"]]["max_concurrent_conversations"]) \
        == (1, 1)

    # resolving frees a seat; lifting the limit frees them all
    assert client.post(f"/api/v1/conversations/{first}/resolve", json={}, headers=team.agent_h).status_code == 200
    assert client.post(f"/api/v1/conversations/{second}/takeover", json={}, headers=team.agent_h).status_code == 200
    client.patch(f"/api/v1/team/members/{team.agent['id']}", json={"max_concurrent_conversations": None},
                 headers=team.owner_h)
    again = client.post(f"/api/v1/conversations/{third}/assign", json={"agent_id": team.agent["id"]},
                        headers=team.owner_h)
    assert again.status_code == 200 and team.status(third)["assigned_agent_id"] == team.agent["id"]


def test_an_invitation_is_no_way_around_required_two_factor(team: Team) -> None:
    team.db.write(lambda conn: mfa.set_required(conn, team.ws, True))
    joined = _accept(team.client, _token(_invite(team.client, team.owner_h, "tfa@acme.example")))
    assert joined.status_code == 403 and error_code(joined) == "mfa_enrollment_required"
    assert "account was created" in joined.json()["error"]["message"]
    assert "set-cookie" not in joined.headers
    user = team.db.query_one("SELECT id, status FROM users WHERE email = 'tfa@acme.example'")
    assert user["status"] == "active"
    assert team.db.query_one("SELECT count(*) AS n FROM refresh_tokens WHERE user_id = ?", (user["id"],))["n"] == 0
