"""The role matrix over HTTP, checked against a copy of PRD §5.1.2 written here (not the code's table)."""

from __future__ import annotations

from itertools import count
from typing import Any, Callable, Iterator

import pytest
from litestar.testing import TestClient

from accounts_support import account_settings, add_user, audit_rows, bearer, error_code, login, open_client

ROLES = ("owner", "admin", "agent", "viewer")
Y, N = True, False

# PRD §5.1.2 as the issue reads it: feature → (permission name in the API, owner, admin, agent, viewer).
PRD_MATRIX: dict[str, tuple[str, bool, bool, bool, bool]] = {
    "Manage instance settings (PRD: Manage Billing)": ("instance.settings", Y, N, N, N),
    "Create Chatbots": ("chatbot.create", Y, Y, N, N),
    "Delete Chatbots": ("chatbot.delete", Y, Y, N, N),
    "Edit Chatbot Settings": ("chatbot.update", Y, Y, Y, N),
    "Invite/Remove Team": ("team.manage", Y, Y, N, N),
    "View Conversations": ("conversation.view", Y, Y, Y, Y),
    "Respond to Conversations": ("conversation.respond", Y, Y, Y, N),
    "Upload Knowledge Base": ("knowledge.upload", Y, Y, Y, N),
    "View Analytics": ("analytics.view", Y, Y, Y, Y),
    "Export Data (bulk)": ("export.bulk", Y, Y, N, N),
    "Export one transcript (issue: agents too)": ("export.transcript", Y, Y, Y, N),
    "API Access (API keys)": ("api_key.manage", Y, Y, N, N),
    "Audit log (issue: owner/admin only)": ("audit.view", Y, Y, N, N),
}


def may(permission: str, role: str) -> bool:
    for name, *flags in PRD_MATRIX.values():
        if name == permission:
            return flags[ROLES.index(role)]
    if permission in {"chatbot.view", "team.view"}:  # reading is open to every role
        return True
    raise KeyError(permission)


_n = count()


class World:
    def __init__(self, client: TestClient):
        self.client = client
        self.users = {role: add_user(client, "RBAC Co", f"{role}@rbac.example", role) for role in ROLES}
        self.target = add_user(client, "RBAC Co", "target@rbac.example", "agent")
        self.tokens = {role: bearer(login(client, f"{role}@rbac.example")) for role in ROLES}
        self.bot = self.new_bot()

    def new_bot(self) -> dict[str, Any]:
        response = self.client.post("/api/v1/chatbots", json={"name": f"Bot {next(_n)}"},
                                    headers=self.tokens["owner"])
        assert response.status_code == 201
        return response.json()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with open_client(account_settings(tmp_path_factory.mktemp("rbac") / "data")) as client:
        yield World(client)


def test_me_lists_exactly_the_prd_permissions_for_each_role(world: World) -> None:
    for role in ROLES:
        granted = set(world.client.get("/api/v1/auth/me", headers=world.tokens[role]).json()["permissions"])
        for feature, (permission, *_flags) in PRD_MATRIX.items():
            assert (permission in granted) == may(permission, role), f"{role}: {feature}"


Request = Callable[[World], tuple[str, str, Any]]

ROUTE_CHECKS: list[tuple[str, Request, int]] = [
    ("chatbot.create", lambda w: ("POST", "/api/v1/chatbots", {"name": f"Made {next(_n)}"}), 201),
    ("chatbot.view", lambda w: ("GET", "/api/v1/chatbots", None), 200),
    ("chatbot.view", lambda w: ("GET", f"/api/v1/chatbots/{w.bot['id']}", None), 200),
    ("chatbot.update", lambda w: ("PATCH", f"/api/v1/chatbots/{w.bot['id']}",
                                  {"greeting_message": f"Hello {next(_n)}"}), 200),
    ("chatbot.delete", lambda w: ("DELETE", f"/api/v1/chatbots/{w.new_bot()['id']}", None), 204),
    ("chatbot.delete", lambda w: ("POST", f"/api/v1/chatbots/{w.bot['id']}/restore", None), 200),
    ("team.view", lambda w: ("GET", "/api/v1/users", None), 200),
    ("team.view", lambda w: ("GET", f"/api/v1/users/{w.target['id']}", None), 200),
    ("team.manage", lambda w: ("PATCH", f"/api/v1/users/{w.target['id']}", {"status": "active"}), 200),
    ("team.manage", lambda w: ("POST", f"/api/v1/users/{w.target['id']}/reset-link", None), 201),
    ("audit.view", lambda w: ("GET", "/api/v1/audit-logs", None), 200),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("permission,build,ok", ROUTE_CHECKS,
                         ids=[f"{p}-{i}" for i, (p, _, _) in enumerate(ROUTE_CHECKS)])
def test_routes_follow_the_matrix(world: World, role: str, permission: str, build: Request, ok: int) -> None:
    method, path, body = build(world)
    kwargs = {"json": body} if body is not None else {}
    response = world.client.request(method, path, headers=world.tokens[role], **kwargs)
    if may(permission, role):
        assert response.status_code == ok, (role, method, path, response.text)
    else:
        assert response.status_code == 403, (role, method, path, response.text)
        assert error_code(response) == "forbidden"


def test_a_viewer_write_changes_nothing_and_is_audited(world: World) -> None:
    before = world.client.get(f"/api/v1/chatbots/{world.bot['id']}", headers=world.tokens["owner"]).json()
    for method, body in (("PATCH", {"name": "Hijacked"}), ("DELETE", None)):
        kwargs = {"json": body} if body else {}
        response = world.client.request(method, f"/api/v1/chatbots/{world.bot['id']}",
                                        headers=world.tokens["viewer"], **kwargs)
        assert response.status_code == 403
    after = world.client.get(f"/api/v1/chatbots/{world.bot['id']}", headers=world.tokens["owner"]).json()
    assert after == before
    denied = [r for r in audit_rows(world.client, "access.denied") if r["user_id"] == world.users["viewer"]["id"]]
    assert any('"chatbot.update"' in r["metadata"] for r in denied)
    assert any('"chatbot.delete"' in r["metadata"] for r in denied)


def test_identity_secret_only_for_owner_and_admin(world: World) -> None:
    for role in ROLES:
        bot = world.client.get(f"/api/v1/chatbots/{world.bot['id']}", headers=world.tokens[role]).json()
        assert ("identity_secret" in bot) == (role in {"owner", "admin"}), role
        assert bot["public_key"] and bot["embed_code"]


def test_only_an_owner_makes_owners(world: World) -> None:
    response = world.client.patch(f"/api/v1/users/{world.target['id']}", headers=world.tokens["admin"],
                                  json={"role": "owner"})
    assert response.status_code == 403
    owner = world.users["owner"]
    assert world.client.patch(f"/api/v1/users/{owner['id']}", headers=world.tokens["admin"],
                              json={"status": "inactive"}).status_code == 403
    assert world.client.get("/api/v1/auth/me", headers=world.tokens["owner"]).status_code == 200


def test_every_route_declares_a_known_permission_and_guards_it(world: World) -> None:
    from chatsupport.domain.permissions import AUTHENTICATED, MATRIX

    for route in world.client.app.routes:
        for handler in getattr(route, "route_handlers", []):
            if getattr(handler, "http_methods", None) == {"OPTIONS"}:
                continue
            permission = (handler.opt or {}).get("permission")
            assert permission is not None, route.path
            if permission != "public":
                assert permission in MATRIX or permission == AUTHENTICATED, (route.path, permission)
                assert handler.guards, route.path


def test_without_credentials_api_is_401_and_console_redirects(world: World) -> None:
    client = world.client
    client.cookies.clear()
    for route in client.app.routes:
        for handler in getattr(route, "route_handlers", []):
            if (handler.opt or {}).get("permission") in (None, "public"):
                continue
            path = route.path.replace("{chatbot_id:str}", world.bot["id"]).replace("{user_id:str}",
                                                                                  world.target["id"])
            for method in sorted(handler.http_methods - {"OPTIONS", "HEAD"}):
                response = client.request(method, path, follow_redirects=False)
                if path.startswith("/api/") or path == "/metrics":  # machine endpoints answer 401
                    assert response.status_code == 401, (method, path)
                    assert error_code(response) == "unauthorized"
                else:
                    assert response.status_code == 303, (method, path)
                    assert response.headers["location"].startswith("/login?next=")
