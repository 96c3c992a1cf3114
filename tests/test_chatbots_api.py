"""/api/v1/chatbots: PRD defaults, embed code, validation with field details, versions, archive and restore."""

from __future__ import annotations

from typing import Any, Iterator

import pytest
from litestar.testing import TestClient

from accounts_support import account_settings, add_user, audit_rows, bearer, error_code, login, open_client

PUBLIC_URL = "https://support.example.com"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = account_settings(tmp_path_factory.mktemp("bots") / "data", PUBLIC_URL=PUBLIC_URL)
    with open_client(settings) as test_client:
        add_user(test_client, "Bots Inc", "owner@bots.example", "owner")
        add_user(test_client, "Bots Inc", "agent@bots.example", "agent")
        yield test_client


@pytest.fixture(scope="module")
def owner(client: TestClient) -> dict[str, str]:
    return bearer(login(client, "owner@bots.example"))


@pytest.fixture(scope="module")
def agent(client: TestClient) -> dict[str, str]:
    return bearer(login(client, "agent@bots.example"))


def versions(client: TestClient, bot_id: str) -> list[int]:
    rows = client.app.state.services.db.query("SELECT version FROM chatbot_versions WHERE chatbot_id = ?"
                                              " ORDER BY version", (bot_id,))
    return [row["version"] for row in rows]


def test_create_with_only_a_name_gets_prd_defaults(client: TestClient, owner: dict[str, str]) -> None:
    response = client.post("/api/v1/chatbots", json={"name": "Support Bot"}, headers=owner)
    assert response.status_code == 201
    bot = response.json()
    assert bot["status"] == "active" and bot["version"] == 1 and bot["personality"] == "professional"
    assert bot["greeting_message"] == "Hi! How can I help you today?"
    assert bot["ai_settings"]["temperature"] == 0.7 and bot["ai_settings"]["max_tokens"] == 500
    assert bot["ai_settings"]["escalation_triggers"] == {"low_confidence_threshold": 0.7,
                                                         "frustration_detection": True, "explicit_request": True,
                                                         "max_failed_responses": 3}
    assert bot["widget_settings"]["position"] == "bottom-right" and bot["widget_settings"]["size"] == "medium"
    assert bot["widget_settings"]["theme"]["primary_color"] == "#3B82F6"
    assert bot["widget_settings"]["button_text"] == "Chat with us"
    assert bot["behavior_settings"] == {"response_delay": 1000, "show_typing_indicator": True,
                                        "enable_rich_responses": True, "max_conversation_length": 50,
                                        "inactivity_timeout": 300000}
    assert bot["business_hours"]["offline_message"] == "We're currently offline. Leave a message!"
    assert bot["embed_code"] == (f'<script async src="{PUBLIC_URL}/widget.js" '
                                 f'data-chatbot="{bot["public_key"]}"></script>')
    assert bot["public_key"] and bot["identity_secret"] and bot["identity_secret"] != bot["public_key"]
    assert versions(client, bot["id"]) == [1]
    assert client.get(f"/api/v1/chatbots/{bot['id']}", headers=owner).json() == bot
    assert audit_rows(client, "chatbot.created")[-1]["resource_id"] == bot["id"]


def test_full_prd_create_request_is_accepted(client: TestClient, owner: dict[str, str]) -> None:
    body = {
        "name": "Sales Bot", "personality": "friendly", "greeting_message": "Hello!",
        "business_hours": {"enabled": True, "timezone": "America/New_York",
                           "schedule": {"monday": {"start": "09:00", "end": "17:00"}, "sunday": None},
                           "offline_message": "Back soon"},
        "ai_settings": {"model": "local", "temperature": 0.2, "max_tokens": 800, "enable_escalation": False,
                        "escalation_triggers": {"low_confidence_threshold": 0.5, "max_failed_responses": 2}},
        "widget_settings": {"position": "bottom-left", "theme": {"primary_color": "#112233"},
                            "avatar_url": "https://cdn.example.com/a.png", "button_text": "Ask", "size": "large"},
        "data_collection": {"collect_email": True,
                            "custom_fields": [{"name": "company", "type": "text", "required": False,
                                               "label": "Company Name"}]},
        "behavior_settings": {"response_delay": 0, "inactivity_timeout": 60000},
        "allowed_origins": ["https://shop.example.com"],
    }
    response = client.post("/api/v1/chatbots", json=body, headers=owner)
    assert response.status_code == 201, response.text
    bot = response.json()
    assert bot["business_hours"]["schedule"]["tuesday"] == {"start": "09:00", "end": "17:00"}  # default kept
    assert bot["business_hours"]["schedule"]["sunday"] is None
    assert bot["ai_settings"]["escalation_triggers"]["frustration_detection"] is True
    assert bot["widget_settings"]["theme"]["secondary_color"] == "#1E40AF"
    assert bot["data_collection"]["custom_fields"][0]["label"] == "Company Name"
    assert bot["allowed_origins"] == ["https://shop.example.com"]


INVALID = [
    ({"name": "ab"}, "name"),
    ({"name": "x" * 51}, "name"),
    ({"name": "Bad<script>"}, "name"),
    ({"name": "  Padded  "}, "name"),
    ({"name": 42}, "name"),
    ({}, "name"),
    ({"name": "Valid Bot", "ai_settings": {"temperature": 2.1}}, "ai_settings.temperature"),
    ({"name": "Valid Bot", "ai_settings": {"temperature": -0.1}}, "ai_settings.temperature"),
    ({"name": "Valid Bot", "ai_settings": {"max_tokens": 99}}, "ai_settings.max_tokens"),
    ({"name": "Valid Bot", "ai_settings": {"max_tokens": 2001}}, "ai_settings.max_tokens"),
    ({"name": "Valid Bot", "widget_settings": {"theme": {"primary_color": "blue"}}},
     "widget_settings.theme.primary_color"),
    ({"name": "Valid Bot", "widget_settings": {"theme": {"text_color": "#GGGGGG"}}},
     "widget_settings.theme.text_color"),
    ({"name": "Valid Bot", "widget_settings": {"position": "top"}}, "widget_settings.position"),
    ({"name": "Valid Bot", "behavior_settings": {"response_delay": 5001}}, "behavior_settings.response_delay"),
    ({"name": "Valid Bot", "behavior_settings": {"inactivity_timeout": 59999}},
     "behavior_settings.inactivity_timeout"),
    ({"name": "Valid Bot", "behavior_settings": {"inactivity_timeout": 1800001}},
     "behavior_settings.inactivity_timeout"),
    ({"name": "Valid Bot", "personality": "grumpy"}, "personality"),
    ({"name": "Valid Bot", "business_hours": {"schedule": {"monday": {"start": "25:00", "end": "17:00"}}}},
     "business_hours.schedule.monday.start"),
    ({"name": "Valid Bot", "allowed_origins": ["javascript:alert(1)"]}, "allowed_origins[0]"),
]


@pytest.mark.parametrize("body,field", INVALID, ids=[f for _, f in INVALID])
def test_invalid_values_are_422_with_the_field_named(client: TestClient, owner: dict[str, str],
                                                     body: dict[str, Any], field: str) -> None:
    before = client.app.state.services.db.query_one("SELECT count(*) AS n FROM chatbots")["n"]
    response = client.post("/api/v1/chatbots", json=body, headers=owner)
    assert response.status_code == 422, response.text
    assert error_code(response) == "validation_error"
    assert field in [d["field"] for d in response.json()["error"]["details"]]
    assert client.app.state.services.db.query_one("SELECT count(*) AS n FROM chatbots")["n"] == before


def test_unknown_fields_and_malformed_json_are_refused(client: TestClient, owner: dict[str, str]) -> None:
    assert client.post("/api/v1/chatbots", json={"name": "Valid Bot", "colour": "red"}, headers=owner).status_code \
        == 422
    bad = client.post("/api/v1/chatbots", content=b'{"name": ', headers={**owner, "content-type": "application/json"})
    assert bad.status_code == 400 and error_code(bad) == "malformed_json"


def test_duplicate_names_conflict(client: TestClient, owner: dict[str, str]) -> None:
    assert client.post("/api/v1/chatbots", json={"name": "Twin Bot"}, headers=owner).status_code == 201
    dup = client.post("/api/v1/chatbots", json={"name": "twin bot"}, headers=owner)
    assert dup.status_code == 409 and error_code(dup) == "already_exists"


def test_patch_merges_bumps_the_version_and_snapshots(client: TestClient, owner: dict[str, str],
                                                      agent: dict[str, str]) -> None:
    bot = client.post("/api/v1/chatbots", json={"name": "Patch Bot"}, headers=owner).json()
    response = client.patch(f"/api/v1/chatbots/{bot['id']}", headers=agent, json={
        "name": "Updated Support Bot",
        "ai_settings": {"temperature": 0.8, "enable_fallback_responses": True,
                        "fallback_responses": ["I'm not sure about that."]},
        "data_collection": {"collect_email": True, "collect_name": True},
        "behavior_settings": {"response_delay": 1500},
    })
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["version"] == 2 and updated["name"] == "Updated Support Bot"
    assert updated["ai_settings"]["temperature"] == 0.8 and updated["ai_settings"]["max_tokens"] == 500
    assert updated["behavior_settings"]["inactivity_timeout"] == 300000
    assert "identity_secret" not in updated  # agents edit settings but do not see the secret
    assert updated["updated_at"] >= bot["updated_at"]
    same = client.patch(f"/api/v1/chatbots/{bot['id']}", headers=owner, json={"ai_settings": {"temperature": 0.8}})
    assert same.json()["version"] == 2  # nothing changed, no new version
    third = client.patch(f"/api/v1/chatbots/{bot['id']}", headers=owner, json={"status": "inactive"})
    assert third.json()["version"] == 3 and third.json()["status"] == "inactive"
    assert versions(client, bot["id"]) == [1, 2, 3]
    bad = client.patch(f"/api/v1/chatbots/{bot['id']}", headers=owner, json={"ai_settings": {"temperature": 9}})
    assert bad.status_code == 422
    assert client.get(f"/api/v1/chatbots/{bot['id']}", headers=owner).json()["version"] == 3
    entry = [r for r in audit_rows(client, "chatbot.updated") if r["resource_id"] == bot["id"]][0]
    assert '"Patch Bot"' in entry["changes"] and '"Updated Support Bot"' in entry["changes"]


def test_archive_and_restore(client: TestClient, owner: dict[str, str]) -> None:
    bot = client.post("/api/v1/chatbots", json={"name": "Archive Bot"}, headers=owner).json()
    assert client.delete(f"/api/v1/chatbots/{bot['id']}", headers=owner).status_code == 204
    listed = client.get("/api/v1/chatbots", headers=owner).json()
    assert bot["id"] not in [b["id"] for b in listed["data"]]
    archived = client.get("/api/v1/chatbots?status=archived", headers=owner).json()["data"]
    assert [b["id"] for b in archived] == [bot["id"]]
    shown = client.get(f"/api/v1/chatbots/{bot['id']}", headers=owner).json()
    assert shown["status"] == "archived" and shown["archived_at"] and shown["version"] == 2
    locked = client.patch(f"/api/v1/chatbots/{bot['id']}", headers=owner, json={"name": "Renamed Bot"})
    assert locked.status_code == 409
    assert client.delete(f"/api/v1/chatbots/{bot['id']}", headers=owner).status_code == 204  # idempotent
    restored = client.post(f"/api/v1/chatbots/{bot['id']}/restore", headers=owner)
    assert restored.status_code == 200
    assert restored.json()["status"] == "active" and restored.json()["archived_at"] is None
    assert restored.json()["version"] == 3
    assert bot["id"] in [b["id"] for b in client.get("/api/v1/chatbots", headers=owner).json()["data"]]
    assert [r["resource_id"] for r in audit_rows(client, "chatbot.archived")][-1] == bot["id"]
    assert [r["resource_id"] for r in audit_rows(client, "chatbot.restored")][-1] == bot["id"]


def test_list_pagination_and_bad_filters(client: TestClient, owner: dict[str, str]) -> None:
    page = client.get("/api/v1/chatbots?limit=1&page=1", headers=owner).json()
    assert len(page["data"]) == 1 and page["pagination"]["limit"] == 1 and page["pagination"]["total"] >= 2
    assert client.get("/api/v1/chatbots?status=bogus", headers=owner).status_code == 422
    assert client.get("/api/v1/chatbots?limit=1000", headers=owner).status_code == 422


def test_openapi_describes_the_chatbot_types(client: TestClient) -> None:
    schema = client.get("/schema/openapi.json").json()
    assert "/api/v1/chatbots" in schema["paths"] and "/api/v1/auth/login" in schema["paths"]
    names = set(schema["components"]["schemas"])
    assert {"ChatbotCreate", "ChatbotOut", "TokenResponse", "AISettings"} <= names
