"""API keys over real HTTP: create (shown once), list (never the key), revoke; a key as a Bearer credential with its
scope's limits and never more than its creator's current role; other workspaces' ids are 404; nothing logs the key;
and the console page for each role (HTML parsed)."""

from __future__ import annotations

import logging
import re
from html.parser import HTMLParser
from typing import Any, Iterator

import pytest
from litestar.testing import TestClient

from accounts_support import Browser, Page, account_settings, add_user, audit_rows, bearer, error_code, login, \
    open_client
from chatsupport.domain.permissions import permissions_for

KEY_SHAPE = re.compile(r"^cs_live_[A-Za-z0-9_-]{32,}$")


def input_value(html: str, element_id: str) -> str:
    """The value of the input with this id (the new key is shown in a read-only input, outside any form)."""
    found: list[str] = []

    class Finder(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            a = dict(attrs)
            if tag == "input" and a.get("id") == element_id:
                found.append(a.get("value") or "")

    Finder().feed(html)
    assert len(found) == 1, f"no single #{element_id} input"
    return found[0]


class Workspace:
    def __init__(self, client: TestClient):
        self.client = client
        self.users = {role: add_user(client, "Keys Co", f"{role}@keys.example", role)
                      for role in ("owner", "admin", "agent", "viewer")}
        self.owner = bearer(login(client, "owner@keys.example"))
        self.admin = bearer(login(client, "admin@keys.example"))
        bot = client.post("/api/v1/chatbots", json={"name": "Keys Bot"}, headers=self.owner)
        assert bot.status_code == 201, bot.text
        self.bot = bot.json()

    def key(self, scopes: list[str], headers: dict[str, str] | None = None, name: str = "CI") -> dict[str, Any]:
        response = self.client.post("/api/v1/api-keys", json={"name": name, "scopes": scopes},
                                    headers=headers or self.owner)
        assert response.status_code == 201, response.text
        return response.json()


@pytest.fixture
def ws(tmp_path: Any) -> Iterator[Workspace]:
    with open_client(account_settings(tmp_path / "data")) as client:
        yield Workspace(client)


def test_create_list_revoke(ws: Workspace, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client = ws.client
    created = ws.key(["write", "read"], name="  CRM   sync ")
    key = created["key"]
    assert KEY_SHAPE.match(key)
    assert created["name"] == "CRM sync" and created["scopes"] == ["read", "write"]
    assert created["prefix"] == key[:12] and created["last_four"] == key[-4:]
    assert created["created_by"] == ws.users["owner"]["id"] and created["last_used_at"] is None
    listed = client.get("/api/v1/api-keys", headers=ws.owner)
    assert listed.status_code == 200 and key not in listed.text
    [row] = listed.json()["data"]
    assert row["id"] == created["id"] and "key" not in row and row["created_by_name"]
    # stored hashed: the key is in no column of the table, nor in the audit log, nor in any log line
    services = client.app.state.services
    stored = services.db.query("SELECT * FROM api_keys")
    assert all(key not in str(value) for r in stored for value in r.values())
    assert client.get("/api/v1/chatbots", headers=bearer(key)).status_code == 200
    [audit] = audit_rows(client, "api_key.created")
    assert key not in str(audit) and audit["resource_id"] == created["id"]
    assert client.delete(f"/api/v1/api-keys/{created['id']}", headers=ws.owner).status_code == 204
    assert client.get("/api/v1/api-keys", headers=ws.owner).json()["data"] == []
    revoked = client.get("/api/v1/chatbots", headers=bearer(key))
    assert revoked.status_code == 401 and error_code(revoked) == "invalid_token"
    assert client.delete(f"/api/v1/api-keys/{created['id']}", headers=ws.owner).status_code == 404
    assert len(audit_rows(client, "api_key.revoked")) == 1
    assert key not in caplog.text and key[8:] not in caplog.text


def test_validation_and_who_may_manage(ws: Workspace) -> None:
    client = ws.client
    for body in ({"name": "x", "scopes": []}, {"name": "x", "scopes": ["root"]}, {"name": "   ", "scopes": ["read"]},
                 {"name": "x"}):
        response = client.post("/api/v1/api-keys", json=body, headers=ws.owner)
        assert response.status_code in (400, 422), (body, response.text)
    assert ws.key(["admin"], headers=ws.admin)["created_by"] == ws.users["admin"]["id"]
    agent = bearer(login(client, "agent@keys.example"))
    assert client.post("/api/v1/api-keys", json={"name": "x", "scopes": ["read"]}, headers=agent).status_code == 403
    assert client.get("/api/v1/api-keys", headers=agent).status_code == 403
    unknown = client.get("/api/v1/chatbots", headers=bearer("cs_live_" + "A" * 43))
    assert unknown.status_code == 401


def test_scopes_limit_what_a_key_may_do(ws: Workspace) -> None:
    client = ws.client
    read, write, admin = (bearer(ws.key([scope])["key"]) for scope in ("read", "write", "admin"))
    bot_path = f"/api/v1/chatbots/{ws.bot['id']}"
    assert client.get(bot_path, headers=read).status_code == 200
    assert client.patch(bot_path, json={"name": "Renamed"}, headers=read).status_code == 403
    assert client.patch(bot_path, json={"name": "Renamed"}, headers=write).status_code == 200
    agent_id = ws.users["agent"]["id"]
    assert client.patch(f"/api/v1/users/{agent_id}", json={"role": "viewer"}, headers=write).status_code == 403
    assert client.get("/api/v1/api-keys", headers=write).status_code == 403
    assert client.patch(f"/api/v1/users/{agent_id}", json={"role": "viewer"}, headers=admin).status_code == 200
    # an admin-scoped key of the owner is an admin, never the owner
    me = client.get("/api/v1/auth/me", headers=admin)
    assert me.status_code == 200 and me.json()["permissions"] == permissions_for("admin")
    assert "instance.settings" not in me.json()["permissions"]
    # a key sent to the console is no session: the console answers with its login page
    page = client.get("/settings/api-keys", headers=admin, follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/login")


def test_a_key_never_exceeds_its_creator_now(ws: Workspace) -> None:
    client = ws.client
    key = bearer(ws.key(["admin"], headers=ws.admin)["key"])
    assert client.post("/api/v1/chatbots", json={"name": "By key"}, headers=key).status_code == 201
    admin_id = ws.users["admin"]["id"]
    assert client.patch(f"/api/v1/users/{admin_id}", json={"role": "agent"}, headers=ws.owner).status_code == 200
    assert client.post("/api/v1/chatbots", json={"name": "Again"}, headers=key).status_code == 403
    assert client.get("/api/v1/auth/me", headers=key).json()["permissions"] == permissions_for("agent")
    assert client.patch(f"/api/v1/users/{admin_id}", json={"status": "inactive"}, headers=ws.owner).status_code == 200
    assert client.get("/api/v1/chatbots", headers=key).status_code == 401


def test_last_used_is_recorded_at_most_once_a_minute(ws: Workspace) -> None:
    client = ws.client
    created = ws.key(["read"])
    assert client.get("/api/v1/chatbots", headers=bearer(created["key"])).status_code == 200
    first = client.get("/api/v1/api-keys", headers=ws.owner).json()["data"][0]["last_used_at"]
    assert first is not None
    client.get("/api/v1/chatbots", headers=bearer(created["key"]))
    assert client.get("/api/v1/api-keys", headers=ws.owner).json()["data"][0]["last_used_at"] == first


def test_another_workspace_cannot_see_or_revoke_a_key(ws: Workspace) -> None:
    client = ws.client
    created = ws.key(["read"])
    add_user(client, "Other Co", "owner@other.example", "owner")
    other = bearer(login(client, "owner@other.example"))
    assert client.get("/api/v1/api-keys", headers=other).json()["data"] == []
    response = client.delete(f"/api/v1/api-keys/{created['id']}", headers=other)
    assert response.status_code == 404 and error_code(response) == "not_found"
    assert client.get("/api/v1/chatbots", headers=bearer(created["key"])).status_code == 200
    # the key acts in its own workspace only
    assert [b["id"] for b in client.get("/api/v1/chatbots", headers=bearer(created["key"])).json()["data"]] \
        == [ws.bot["id"]]


# --- console ------------------------------------------------------------------------------------------------------
def test_console_create_shows_the_key_once_and_revokes_with_confirmation(ws: Workspace) -> None:
    owner = Browser(ws.client, ws.users["owner"])
    empty = owner.page("/settings/api-keys")
    assert "keys-empty" in empty.texts and empty.form("create-key-form")
    refused = owner.post("/settings/api-keys", {"name": "", "scopes": ["read"]})
    assert refused.status_code == 422 and "name" in Page(refused.text).field_errors
    no_scope = owner.post("/settings/api-keys", {"name": "Zapier"})
    assert no_scope.status_code == 422 and "scopes" in Page(no_scope.text).field_errors
    created = owner.post("/settings/api-keys", {"name": "Zap <b>ier</b>", "scopes": ["read", "write"]})
    assert created.status_code == 200 and created.headers["cache-control"] == "no-store"
    page = Page(created.text)
    key = input_value(created.text, "new-key")
    assert KEY_SHAPE.match(key) and any("only time the key is shown" in alert for alert in page.alerts)
    assert "copy-key" in page.texts and "copy-status" in page.texts
    assert "<b>ier</b>" not in created.text and not page.inline_styles
    assert all(s.get("src") for s in page.scripts)  # no inline scripts: the copy button is in a static file
    assert ws.client.get("/api/v1/chatbots", headers=bearer(key)).status_code == 200
    listed = owner.get("/settings/api-keys")
    assert key not in listed.text and key[-4:] in listed.text
    [row] = ws.client.get("/api/v1/api-keys", headers=ws.owner).json()["data"]
    assert row["scopes"] == ["read", "write"]
    revoke_form = Page(listed.text).form(f"revoke-{row['id']}")
    assert revoke_form["action"] == f"/settings/api-keys/{row['id']}/revoke"
    assert 'data-confirm="Revoke the key' in listed.text
    revoked = owner.post(revoke_form["action"])
    assert revoked.status_code == 303 and revoked.headers["location"] == "/settings/api-keys?saved=revoked"
    assert ws.client.get("/api/v1/chatbots", headers=bearer(key)).status_code == 401
    after = owner.page("/settings/api-keys?saved=revoked")
    assert "keys-empty" in after.texts and any("revoked" in alert for alert in after.alerts)


def test_console_page_per_role(ws: Workspace) -> None:
    created = ws.key(["read"])
    for role in ("owner", "admin"):
        page = Browser(ws.client, ws.users[role]).page("/settings/api-keys")
        assert f"key-{created['id']}" in page.texts and "tab-api-keys" in page.texts
    for role in ("agent", "viewer"):
        browser = Browser(ws.client, ws.users[role])
        assert browser.get("/settings/api-keys").status_code == 403
        assert browser.post(f"/settings/api-keys/{created['id']}/revoke").status_code == 403
    add_user(ws.client, "Other Co", "owner@other.example", "owner")
    stranger = Browser(ws.client, {"email": "owner@other.example"})
    assert stranger.post(f"/settings/api-keys/{created['id']}/revoke").status_code == 404
    assert ws.client.get("/api/v1/chatbots", headers=bearer(created["key"])).status_code == 200
