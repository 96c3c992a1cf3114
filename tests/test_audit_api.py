"""GET /api/v1/audit-logs: filters, pagination, owner/admin only."""

from __future__ import annotations

from typing import Iterator

import pytest
from litestar.testing import TestClient

from accounts_support import account_settings, add_user, bearer, login, open_client


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, dict[str, str], str]]:
    with open_client(account_settings(tmp_path_factory.mktemp("audit") / "data")) as client:
        add_user(client, "Audit Co", "owner@audit.example", "owner")
        add_user(client, "Audit Co", "agent@audit.example", "agent")
        headers = bearer(login(client, "owner@audit.example"))
        client.post("/api/v1/auth/login", json={"email": "agent@audit.example", "password": "Wrong#000"})
        bot = client.post("/api/v1/chatbots", json={"name": "Audited Bot"}, headers=headers).json()
        client.patch(f"/api/v1/chatbots/{bot['id']}", json={"greeting_message": "Yo"}, headers=headers)
        client.delete(f"/api/v1/chatbots/{bot['id']}", headers=headers)
        yield client, headers, bot["id"]


def actions(client: TestClient, headers: dict[str, str], query: str) -> list[str]:
    response = client.get(f"/api/v1/audit-logs{query}", headers=headers)
    assert response.status_code == 200, response.text
    return [row["action"] for row in response.json()["data"]]


def test_newest_first_with_actor_and_resource(setup: tuple[TestClient, dict[str, str], str]) -> None:
    client, headers, bot_id = setup
    rows = client.get("/api/v1/audit-logs", headers=headers).json()["data"]
    assert rows[0]["action"] == "chatbot.archived" and rows[0]["resource_id"] == bot_id
    assert rows[0]["user_email"] == "owner@audit.example" and rows[0]["ip_address"] == "testclient"
    assert [r["created_at"] for r in rows] == sorted((r["created_at"] for r in rows), reverse=True)


def test_filters(setup: tuple[TestClient, dict[str, str], str]) -> None:
    client, headers, bot_id = setup
    assert actions(client, headers, "?action=user.login_failed") == ["user.login_failed"]
    assert actions(client, headers, "?action=chatbot.*") == ["chatbot.archived", "chatbot.updated",
                                                             "chatbot.created"]
    assert actions(client, headers, f"?resource_id={bot_id}&action=chatbot.updated") == ["chatbot.updated"]
    assert actions(client, headers, "?since=2999-01-01T00:00:00Z") == []
    assert actions(client, headers, "?until=2000-01-01T00:00:00Z") == []
    assert "user.created" in actions(client, headers, "?resource_type=user")


def test_pagination_and_bad_parameters(setup: tuple[TestClient, dict[str, str], str]) -> None:
    client, headers, _ = setup
    first = client.get("/api/v1/audit-logs?limit=2&page=1", headers=headers).json()
    second = client.get("/api/v1/audit-logs?limit=2&page=2", headers=headers).json()
    assert len(first["data"]) == 2 and first["pagination"]["total"] == second["pagination"]["total"] >= 4
    assert {r["id"] for r in first["data"]}.isdisjoint({r["id"] for r in second["data"]})
    assert client.get("/api/v1/audit-logs?limit=0", headers=headers).status_code == 422
    assert client.get("/api/v1/audit-logs?page=abc", headers=headers).status_code in {400, 422}
