"""Workspace isolation, by enumerating every route that takes an id: another workspace's id, a random id and a
malformed id are all 404 (after the role check, which comes first), and the other workspace's data is unchanged."""

from __future__ import annotations

import re
import uuid
from typing import Any, Iterator

import pytest
from litestar.testing import TestClient

from accounts_support import PASSWORD, account_settings, add_user, bearer, error_code, login, open_client
from chatsupport.domain import auth, events
from chatsupport.domain.audit import Origin
from chatsupport.domain.permissions import allowed

PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")


class Tenant:
    def __init__(self, client: TestClient, name: str):
        self.owner = add_user(client, name, f"owner@{name.lower()}.example", "owner")
        self.viewer = add_user(client, name, f"viewer@{name.lower()}.example", "viewer")
        self.agent = add_user(client, name, f"agent@{name.lower()}.example", "agent")
        self.owner_h = bearer(login(client, self.owner["email"]))
        self.viewer_h = bearer(login(client, self.viewer["email"]))
        bot = client.post("/api/v1/chatbots", json={"name": f"{name} Bot"}, headers=self.owner_h)
        assert bot.status_code == 201
        self.bot = bot.json()
        self.console = {"Cookie": f"cs_session={console_session(client, self.owner)}"}
        self.viewer_console = {"Cookie": f"cs_session={console_session(client, self.viewer)}"}
        doc = client.post("/api/v1/knowledge-base/documents", files={"file": ("a.md", b"# A\n\nSome text.")},
                          data={"chatbot_id": self.bot["id"]}, headers=self.owner_h)
        assert doc.status_code == 201, doc.text
        faqs = client.post("/api/v1/knowledge-base/faqs/import", data={"chatbot_id": self.bot["id"]},
                           files={"file": ("f.csv", b"question,answer\nWhy?,Because.\n")}, headers=self.owner_h)
        assert faqs.json()["imported"] == 1
        faq_id = client.get("/api/v1/knowledge-base/faqs", params={"chatbot_id": self.bot["id"]},
                            headers=self.owner_h).json()["data"][0]["id"]
        # ids by path parameter name; a route with a parameter not listed here fails the test on purpose
        self.ids = {"chatbot_id": self.bot["id"], "user_id": self.agent["id"], "document_id": doc.json()["id"],
                    "faq_id": faq_id}
        # a chatbot's version number, wizard step and settings tab (issue 8): each under its bot's id
        self.ids.update({"version": "1", "step": "personality", "section": "ai"})
        # a website source (its crawl job stays queued: these tests run without a worker, so nothing is fetched)
        site = client.post("/api/v1/knowledge-base/urls", headers=self.owner_h,
                           json={"chatbot_id": self.bot["id"], "url": f"https://help.{name.lower()}.example/"})
        assert site.status_code == 201, site.text
        self.ids["source_id"] = site.json()["id"]
        # a conversation for the agent API (issue 6): escalated, so every action would be legal for its owner
        services = client.app.state.services
        self.ids["conversation_id"] = services.db.write(lambda conn: _escalated_conversation(
            conn, self.owner["workspace_id"], self.bot["id"]))
        # a file a widget visitor attached (issue 6): agents download it by id
        self.ids["attachment_id"] = services.db.write(lambda conn: _attachment(
            conn, self.owner["workspace_id"], self.bot["id"]))
        # a saved reply (issue 7)
        canned = client.post("/api/v1/canned-responses", headers=self.owner_h,
                             json={"shortcut": "hello", "title": "Hello", "content": "Hi there!"})
        assert canned.status_code == 201, canned.text
        self.ids["canned_response_id"] = canned.json()["id"]
        # a saved inbox filter (issue 7): its owner's alone
        saved = client.post("/api/v1/conversation-filters", headers=self.owner_h,
                            json={"name": "Escalated", "filters": {"status": ["escalated"]}})
        assert saved.status_code == 201, saved.text
        self.ids["filter_id"] = saved.json()["id"]
        # a bulk export (issue 7): its job stays queued without a worker, the row is what the routes look up
        export = client.post("/api/v1/exports/conversations", headers=self.owner_h, json={"format": "csv"})
        assert export.status_code == 202, export.text
        self.ids["export_id"] = export.json()["export_id"]
        # an AI answer in the review queue (issue 8)
        self.ids["message_id"] = services.db.write(lambda conn: _bot_answer(conn, self.ids["conversation_id"]))
        # an API key (issue 9)
        key = client.post("/api/v1/api-keys", headers=self.owner_h, json={"name": "CI", "scopes": ["read"]})
        assert key.status_code == 201, key.text
        self.ids["key_id"] = key.json()["id"]
        # a customer (issue 9, privacy): exported and erased by id
        self.ids["customer_id"] = services.db.write(lambda conn: _customer(conn, self.owner["workspace_id"]))
        # a team invitation (issue 9)
        invited = client.post("/api/v1/team/invitations", headers=self.owner_h,
                              json={"email": f"invitee@{name.lower()}.example", "role": "agent"})
        assert invited.status_code == 201, invited.text
        self.ids["invitation_id"] = invited.json()["id"]
        # an outgoing webhook and one delivery of it (issue 9): recorded, never sent (no worker runs here)
        hook = client.post("/api/v1/webhooks", headers=self.owner_h, json={
            "url": f"https://hooks.{name.lower()}.example/", "events": ["conversation.created"]})
        assert hook.status_code == 201, hook.text
        self.ids["webhook_id"] = hook.json()["id"]
        events.conversation_event(services.db, self.owner["workspace_id"], "conversation.created",
                                  self.ids["conversation_id"])
        self.ids["delivery_id"] = services.db.query_one("SELECT id FROM webhook_deliveries WHERE webhook_id = ?",
                                                        (self.ids["webhook_id"],))["id"]

    def headers(self, path: str, role: str = "owner") -> dict[str, str]:
        """Console pages take the session cookie (a Bearer token is not a browser); API routes the token."""
        if path.startswith("/api/"):
            return self.owner_h if role == "owner" else self.viewer_h
        return self.console if role == "owner" else self.viewer_console


def _escalated_conversation(conn: Any, workspace_id: str, chatbot_id: str) -> str:
    from chatsupport.domain import conversations

    conversation_id = conversations.start(conn, workspace_id, chatbot_id)
    conversations.transition(conn, workspace_id, conversation_id, "escalate", reason="user_request")
    return conversation_id


def _bot_answer(conn: Any, conversation_id: str) -> str:
    from chatsupport.store import conversations

    asked = conversations.add_message(conn, conversation_id, "customer", "Why?")
    return conversations.add_message(conn, conversation_id, "bot", "Because.", ai_metadata={
        "outcome": "answered", "confidence": 0.5, "sources": [], "reply_to": asked})


def _customer(conn: Any, workspace_id: str) -> str:
    from chatsupport.store import conversations

    return conversations.create_customer(conn, workspace_id, visitor_id="v_isolation0000", name="Iso Customer",
                                         email="iso@customer.example")


def _attachment(conn: Any, workspace_id: str, chatbot_id: str) -> str:
    from chatsupport.store import widget

    attachment_id = widget.new_id()
    widget.add_attachment(conn, {"id": attachment_id, "workspace_id": workspace_id, "chatbot_id": chatbot_id,
                                 "visitor_id": "v_isolation0000", "filename": "a.png", "content_type": "image/png",
                                 "size": 1, "sha256": "0" * 64})
    return attachment_id


def console_session(client: TestClient, user: dict[str, Any]) -> str:
    return auth.login(client.app.state.services, user["email"], PASSWORD, Origin(), kind="console").token


@pytest.fixture(scope="module")
def tenants(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Tenant, Tenant]]:
    with open_client(account_settings(tmp_path_factory.mktemp("iso") / "data")) as client:
        yield client, Tenant(client, "Alpha"), Tenant(client, "Beta")


def id_routes(client: TestClient, *, with_permission: bool = False) -> list[Any]:
    """(method, path) of every route with an id parameter that needs a login; ``with_permission`` adds the
    permission the route declares."""
    found = []
    for route in client.app.routes:
        if not PARAM.search(route.path) or route.path.startswith(("/static", "/schema")):
            continue
        for handler in getattr(route, "route_handlers", []):
            permission = (handler.opt or {}).get("permission")
            if permission in (None, "public"):
                continue
            for method in sorted(handler.http_methods - {"OPTIONS", "HEAD"}):
                found.append((method, route.path, permission) if with_permission else (method, route.path))
    return found


def fill(path: str, ids: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        assert match.group(1) in ids, f"isolation test does not know the parameter {match.group(0)} in {path}"
        return ids[match.group(1)]
    return PARAM.sub(value, path)


def snapshot(client: TestClient, tenant: Tenant) -> dict[str, Any]:
    db = client.app.state.services.db
    return {"bot": db.query_one("SELECT * FROM chatbots WHERE id = ?", (tenant.bot["id"],)),
            "user": db.query_one("SELECT * FROM users WHERE id = ?", (tenant.agent["id"],)),
            "document": db.query_one("SELECT id, status, attempt FROM knowledge_documents WHERE id = ?",
                                     (tenant.ids["document_id"],)),
            "faq": db.query_one("SELECT * FROM knowledge_faqs WHERE id = ?", (tenant.ids["faq_id"],)),
            "site": db.query_one("SELECT * FROM knowledge_urls WHERE id = ?", (tenant.ids["source_id"],)),
            "conversation": db.query_one("SELECT * FROM conversations WHERE id = ?", (tenant.ids["conversation_id"],))}


BODY = {"PATCH": {"status": "inactive"}, "POST": None, "PUT": {}}


def test_the_enumeration_covers_the_id_routes(tenants: tuple[TestClient, Tenant, Tenant]) -> None:
    client, _, _ = tenants
    routes = id_routes(client)
    for expected in [("GET", "/api/v1/chatbots/{chatbot_id:str}"), ("PATCH", "/api/v1/chatbots/{chatbot_id:str}"),
                     ("DELETE", "/api/v1/chatbots/{chatbot_id:str}"),
                     ("POST", "/api/v1/chatbots/{chatbot_id:str}/restore"), ("PATCH", "/api/v1/users/{user_id:str}"),
                     ("GET", "/api/v1/knowledge-base/urls/{source_id:str}"),
                     ("GET", "/api/v1/knowledge-base/urls/{source_id:str}/pages"),
                     ("POST", "/api/v1/knowledge-base/urls/{source_id:str}/recrawl"),
                     ("POST", "/api/v1/knowledge-base/urls/{source_id:str}/retry"),
                     ("DELETE", "/api/v1/knowledge-base/urls/{source_id:str}"),
                     ("GET", "/api/v1/attachments/{attachment_id:str}"),
                     ("GET", "/api/v1/conversations/{conversation_id:str}"),
                     ("POST", "/api/v1/conversations/{conversation_id:str}/takeover"),
                     ("POST", "/api/v1/conversations/{conversation_id:str}/messages"),
                     ("POST", "/api/v1/conversations/{conversation_id:str}/return-to-ai"),
                     ("POST", "/api/v1/conversations/{conversation_id:str}/resolve")]:
        assert expected in routes


def test_other_workspace_random_and_malformed_ids_are_404(tenants: tuple[TestClient, Tenant, Tenant]) -> None:
    client, alpha, beta = tenants
    before = snapshot(client, alpha)
    random_ids = {name: str(uuid.uuid4()) for name in alpha.ids}
    malformed = {name: "not-an-id'--" for name in alpha.ids}
    for method, path in id_routes(client):
        body = BODY.get(method)
        kwargs = {"json": body} if body is not None else {}
        for label, ids in (("other workspace", alpha.ids), ("random", random_ids), ("malformed", malformed)):
            response = client.request(method, fill(path, ids), headers=beta.headers(path), **kwargs)
            assert response.status_code == 404, (label, method, path, response.text)
            assert error_code(response) == "not_found"
            assert alpha.bot["id"] not in response.text
    assert snapshot(client, alpha) == before


def test_role_is_checked_before_scope(tenants: tuple[TestClient, Tenant, Tenant]) -> None:
    """A viewer of Beta asking to change Alpha's bot gets 403, not 404: the answer reveals nothing either way.
    The few writes a viewer may make (marking a conversation read, deleting an own saved filter) answer 404."""
    client, alpha, beta = tenants
    for method, path, permission in id_routes(client, with_permission=True):
        if method == "GET":
            continue
        body = BODY.get(method)
        kwargs = {"json": body} if body is not None else {}
        response = client.request(method, fill(path, alpha.ids), headers=beta.headers(path, "viewer"), **kwargs)
        expected = 404 if allowed("viewer", permission) else 403
        assert response.status_code == expected, (method, path, response.text)


def test_lists_only_show_the_own_workspace(tenants: tuple[TestClient, Tenant, Tenant]) -> None:
    client, alpha, beta = tenants
    bots = client.get("/api/v1/chatbots?status=all", headers=beta.owner_h).json()["data"]
    assert {b["workspace_id"] for b in bots} == {beta.owner["workspace_id"]}
    people = client.get("/api/v1/users", headers=beta.owner_h).json()["data"]
    assert {p["workspace_id"] for p in people} == {beta.owner["workspace_id"]}
    assert alpha.owner["email"] not in {p["email"] for p in people}
    audit = client.get("/api/v1/audit-logs?limit=200", headers=beta.owner_h).json()["data"]
    assert audit and {row["workspace_id"] for row in audit} == {beta.owner["workspace_id"]}
    filtered = client.get(f"/api/v1/audit-logs?resource_id={alpha.bot['id']}", headers=beta.owner_h).json()
    assert filtered["data"] == [] and filtered["pagination"]["total"] == 0


def test_same_names_in_two_workspaces_do_not_conflict(tenants: tuple[TestClient, Tenant, Tenant]) -> None:
    client, alpha, beta = tenants
    response = client.post("/api/v1/chatbots", json={"name": alpha.bot["name"]}, headers=beta.owner_h)
    assert response.status_code == 201
