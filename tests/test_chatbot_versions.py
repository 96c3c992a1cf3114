"""Clone, version history and rollback over /api/v1/chatbots: what is copied, what each version changed, a rollback
that restores old settings as a new version (and tells open widgets), duplicate names, roles and 404s."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest
from litestar.testing import TestClient

from accounts_support import account_settings, add_user, audit_rows, bearer, error_code, login, open_client
from widget_support import Site, widget_client


class Crew:
    def __init__(self, client: TestClient):
        self.client = client
        for role in ("owner", "admin", "agent", "viewer"):
            add_user(client, "Versions Co", f"{role}@versions.example", role)
        add_user(client, "Elsewhere", "owner@elsewhere.example", "owner")
        self.h = {role: bearer(login(client, f"{role}@versions.example"))
                  for role in ("owner", "admin", "agent", "viewer")}
        self.elsewhere = bearer(login(client, "owner@elsewhere.example"))

    def bot(self, name: str, **fields: Any) -> dict[str, Any]:
        response = self.client.post("/api/v1/chatbots", json={"name": name, **fields}, headers=self.h["owner"])
        assert response.status_code == 201, response.text
        return response.json()

    def patch(self, bot_id: str, body: dict[str, Any], role: str = "owner") -> Any:
        return self.client.patch(f"/api/v1/chatbots/{bot_id}", json=body, headers=self.h[role])


@pytest.fixture(scope="module")
def crew(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Crew]:
    with open_client(account_settings(tmp_path_factory.mktemp("versions") / "data")) as client:
        yield Crew(client)


def test_clone_copies_settings_with_new_keys_and_a_copy_name(crew: Crew) -> None:
    source = crew.bot("Clone Source", personality="casual", allowed_origins=["https://shop.example.com"],
                      ai_settings={"temperature": 0.3}, widget_settings={"button_text": "Ask us"})
    first = crew.client.post(f"/api/v1/chatbots/{source['id']}/clone", headers=crew.h["admin"])
    assert first.status_code == 201, first.text
    copy = first.json()
    assert copy["name"] == "Clone Source copy" and copy["version"] == 1 and copy["id"] != source["id"]
    assert copy["public_key"] != source["public_key"] and copy["identity_secret"] != source["identity_secret"]
    for field in ("personality", "ai_settings", "widget_settings", "behavior_settings", "allowed_origins"):
        assert copy[field] == source[field], field
    second = crew.client.post(f"/api/v1/chatbots/{source['id']}/clone", headers=crew.h["owner"]).json()
    assert second["name"] == "Clone Source copy 2"
    named = crew.client.post(f"/api/v1/chatbots/{source['id']}/clone", json={"name": "Holiday Bot"},
                             headers=crew.h["owner"])
    assert named.status_code == 201 and named.json()["name"] == "Holiday Bot"
    assert audit_rows(crew.client, "chatbot.cloned")[-1]["resource_id"] == named.json()["id"]


def test_clone_of_a_long_name_stays_within_the_name_rule(crew: Crew) -> None:
    source = crew.bot("A" * 50)
    copy = crew.client.post(f"/api/v1/chatbots/{source['id']}/clone", headers=crew.h["owner"]).json()
    assert copy["name"] == "A" * 45 + " copy" and len(copy["name"]) == 50


def test_duplicate_names_are_refused_on_create_rename_and_clone(crew: Crew) -> None:
    crew.bot("Taken Name")
    other = crew.bot("Free Name")
    dup = crew.client.post("/api/v1/chatbots", json={"name": "taken name"}, headers=crew.h["owner"])
    assert dup.status_code == 409 and error_code(dup) == "already_exists"
    assert dup.json()["error"]["details"] == [{"field": "name", "message": "Already used by another chatbot."}]
    rename = crew.patch(other["id"], {"name": "Taken Name"})
    assert rename.status_code == 409 and error_code(rename) == "already_exists"
    clone = crew.client.post(f"/api/v1/chatbots/{other['id']}/clone", json={"name": "TAKEN NAME"},
                             headers=crew.h["owner"])
    assert clone.status_code == 409 and error_code(clone) == "already_exists"
    bad = crew.client.post(f"/api/v1/chatbots/{other['id']}/clone", json={"name": "Bot (copy)"},
                           headers=crew.h["owner"])
    assert bad.status_code == 422 and error_code(bad) == "validation_error"
    # another workspace may use the same name
    assert crew.client.post("/api/v1/chatbots", json={"name": "Taken Name"}, headers=crew.elsewhere).status_code == 201


def test_versions_list_what_each_change_did(crew: Crew) -> None:
    bot = crew.bot("History Bot")
    assert crew.patch(bot["id"], {"ai_settings": {"temperature": 0.2}}).json()["version"] == 2
    assert crew.patch(bot["id"], {"greeting_message": "Hello there", "personality": "friendly"},
                      role="agent").json()["version"] == 3
    listed = crew.client.get(f"/api/v1/chatbots/{bot['id']}/versions", headers=crew.h["viewer"])
    assert listed.status_code == 200
    rows = listed.json()["data"]
    assert [r["version"] for r in rows] == [3, 2, 1]
    assert rows[0]["changed_fields"] == ["greeting_message", "personality"]
    assert rows[0]["changed_by"] and rows[0]["changed_by_name"] == "agent"  # the display name
    assert rows[1]["changed_fields"] == ["ai_settings.temperature"] and rows[2]["changed_fields"] == []
    one = crew.client.get(f"/api/v1/chatbots/{bot['id']}/versions/1", headers=crew.h["viewer"]).json()
    assert one["snapshot"]["settings"]["ai_settings"]["temperature"] == 0.7
    assert {"field": "ai_settings.temperature", "old": 0.7, "new": 0.2} in one["changes_to_current"]
    assert {"field": "personality", "old": "professional", "new": "friendly"} in one["changes_to_current"]


def test_rollback_restores_old_settings_as_a_new_version_and_tells_widgets(crew: Crew) -> None:
    bot = crew.bot("Rollback Bot", allowed_origins=["https://a.example.com"])
    crew.patch(bot["id"], {"name": "Rollback Bot Two", "ai_settings": {"temperature": 1.5, "max_tokens": 900},
                           "widget_settings": {"theme": {"primary_color": "#000000"}}, "allowed_origins": []})
    crew.patch(bot["id"], {"status": "inactive"})
    done = crew.client.post(f"/api/v1/chatbots/{bot['id']}/versions/1/rollback", headers=crew.h["agent"])
    assert done.status_code == 200, done.text
    after = done.json()
    assert after["version"] == 4 and after["name"] == "Rollback Bot"
    assert after["ai_settings"]["temperature"] == 0.7 and after["ai_settings"]["max_tokens"] == 500
    assert after["widget_settings"]["theme"]["primary_color"] == "#3B82F6"
    assert after["allowed_origins"] == ["https://a.example.com"]
    assert after["status"] == "inactive"  # the status is not rolled back
    rows = crew.client.get(f"/api/v1/chatbots/{bot['id']}/versions", headers=crew.h["owner"]).json()["data"]
    assert [r["version"] for r in rows] == [4, 3, 2, 1] and rows[0]["restored_from"] == 1
    two = crew.client.get(f"/api/v1/chatbots/{bot['id']}/versions/2", headers=crew.h["owner"]).json()
    assert two["snapshot"]["name"] == "Rollback Bot Two"  # history is never rewritten
    assert audit_rows(crew.client, "chatbot.rolled_back")[-1]["resource_id"] == bot["id"]
    # rolling back to what is already there changes nothing
    again = crew.client.post(f"/api/v1/chatbots/{bot['id']}/versions/4/rollback", headers=crew.h["owner"])
    assert again.status_code == 200 and again.json()["version"] == 4


def test_a_rollback_reaches_open_widgets(tmp_path: Path) -> None:
    with widget_client(tmp_path / "data") as client:
        site = Site(client, "Pushy")
        site.update(greeting_message="Summer sale!")
        with site.socket(site.config()["token"]) as sock:
            sock.send("ping")
            sock.until("pong")
            done = client.post(f"/api/v1/chatbots/{site.bot['id']}/versions/1/rollback", headers=site.headers)
            assert done.status_code == 200, done.text
            pushed = sock.until("config:updated", timeout=10)
        assert pushed["chatbot"]["greeting_message"] == "Hi! How can I help you today?"


def test_rollback_to_a_name_now_taken_is_409(crew: Crew) -> None:
    bot = crew.bot("Old Name Bot")
    crew.patch(bot["id"], {"name": "New Name Bot"})
    crew.bot("Old Name Bot")
    clash = crew.client.post(f"/api/v1/chatbots/{bot['id']}/versions/1/rollback", headers=crew.h["owner"])
    assert clash.status_code == 409 and error_code(clash) == "already_exists"


def test_roles_follow_the_matrix(crew: Crew) -> None:
    bot = crew.bot("Roles Bot")
    crew.patch(bot["id"], {"greeting_message": "Changed"})
    clone = f"/api/v1/chatbots/{bot['id']}/clone"
    rollback = f"/api/v1/chatbots/{bot['id']}/versions/1/rollback"
    assert crew.client.post(clone, headers=crew.h["agent"]).status_code == 403
    assert crew.client.post(clone, headers=crew.h["viewer"]).status_code == 403
    assert crew.client.post(rollback, headers=crew.h["viewer"]).status_code == 403
    assert crew.client.post(rollback, headers=crew.h["agent"]).status_code == 200
    assert crew.client.get(f"/api/v1/chatbots/{bot['id']}/versions", headers=crew.h["viewer"]).status_code == 200
    assert crew.client.post(clone).status_code == 401


def test_unknown_bots_and_versions_are_404(crew: Crew) -> None:
    bot = crew.bot("Found Bot")
    base = f"/api/v1/chatbots/{bot['id']}"
    for path in (f"{base}/versions/99", f"{base}/versions/0", f"{base}/versions/abc", f"{base}/versions/-1"):
        response = crew.client.get(path, headers=crew.h["owner"])
        assert response.status_code == 404 and error_code(response) == "not_found", path
    assert crew.client.post(f"{base}/versions/7/rollback", headers=crew.h["owner"]).status_code == 404
    for path in (f"/api/v1/chatbots/{uuid.uuid4()}/versions", f"{base}/versions"):
        assert crew.client.get(path, headers=crew.elsewhere).status_code == 404
    # 404 before the body is read: another workspace's bot with a bad body is not a 422
    assert crew.client.post(f"{base}/clone", json={"name": 5}, headers=crew.elsewhere).status_code == 404
    assert crew.client.patch(base, json={"name": 5}, headers=crew.elsewhere).status_code == 404


def test_archived_bots_cannot_be_rolled_back_but_can_be_cloned(crew: Crew) -> None:
    bot = crew.bot("Archived Bot")
    crew.patch(bot["id"], {"greeting_message": "Later"})
    assert crew.client.delete(f"/api/v1/chatbots/{bot['id']}", headers=crew.h["owner"]).status_code == 204
    refused = crew.client.post(f"/api/v1/chatbots/{bot['id']}/versions/1/rollback", headers=crew.h["owner"])
    assert refused.status_code == 409 and error_code(refused) == "conflict"
    copy = crew.client.post(f"/api/v1/chatbots/{bot['id']}/clone", headers=crew.h["owner"])
    assert copy.status_code == 201 and copy.json()["status"] == "inactive"
    assert copy.json()["greeting_message"] == "Later"
