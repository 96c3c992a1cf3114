"""Settings → AI providers and ``POST /api/v1/llm-providers/test`` over real HTTP: the chain edited from the console
(keys kept when blank, never shown), the token cap with today's usage, and "Test connection" against local peers on
127.0.0.1 speaking the OpenAI and Anthropic protocols, a peer that refuses the key, and a dead port."""

from __future__ import annotations

import socket
from typing import Any, Iterator

import pytest
from litestar.testing import TestClient

from accounts_support import Browser, Page, account_settings, add_user, bearer, error_code, login, open_client
from chatsupport.store import llm_usage
from llm_support import Peer

SECRET_KEY = "sk-live-console-secret-9a8b"


class World:
    def __init__(self, client: TestClient):
        self.client = client
        self.users = {role: add_user(client, "AI Co", f"{role}@ai.example", role)
                      for role in ("owner", "admin", "agent", "viewer")}
        self.api = bearer(login(client, "owner@ai.example"))
        self.owner = Browser(client, self.users["owner"])

    def providers(self) -> dict[str, Any]:
        response = self.client.get("/api/v1/llm-providers", headers=self.api)
        assert response.status_code == 200, response.text
        return response.json()

    def form(self, **changes: str) -> dict[str, str]:
        """The AI form as the page fills it in, with ``changes`` typed over it; its checkboxes start unticked."""
        fields = dict(self.owner.page("/settings/ai").form("ai-form")["fields"])
        fields.pop("csrf_token")
        fields = {name: value for name, value in fields.items() if not name.endswith((".enabled", ".remove_key"))}
        order = [p["kind"] for p in self.providers()["providers"]]  # the selected places (the parser skips options)
        order += [kind for kind in ("local", "openai", "anthropic") if kind not in order]
        fields.update({f"{kind}.position": str(place) for place, kind in enumerate(order, 1)})
        return {**fields, **changes}


@pytest.fixture
def world(tmp_path: Any) -> Iterator[World]:
    with open_client(account_settings(tmp_path / "data", OUTBOUND_ALLOWLIST="127.0.0.1")) as client:
        yield World(client)


@pytest.fixture
def peer() -> Iterator[Peer]:
    server = Peer()
    yield server
    server.close()


def dead_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_page_per_role_and_the_empty_state(world: World) -> None:
    for role in ("owner", "admin"):
        page = Browser(world.client, world.users[role]).page("/settings/ai")
        assert page.form("ai-form") and "tab-ai" in page.texts and "local-facts" in page.texts
        assert page.texts["local-model-path"] == "none found"
        assert "0 cloud tokens used" in page.texts["usage-today"]
    for role in ("agent", "viewer"):
        browser = Browser(world.client, world.users[role])
        assert browser.get("/settings/ai").status_code == 403
        assert browser.post("/settings/ai", {"openai.enabled": "1"}).status_code == 403
        assert browser.post("/settings/ai/test", {"test": "openai"}).status_code == 403


def test_saving_the_chain_keeps_keys_hidden_and_kept(world: World, peer: Peer) -> None:
    owner = world.owner
    saved = owner.post("/settings/ai", world.form(**{
        "openai.enabled": "1", "openai.position": "1", "openai.base_url": peer.url + "/v1", "openai.model": "tiny",
        "openai.api_key": SECRET_KEY, "local.position": "2", "daily_token_cap": "5000",
        "openai.total_timeout_s": "45"}))
    assert saved.status_code == 303 and saved.headers["location"] == "/settings/ai?saved=1"
    shown = world.providers()
    assert [(p["kind"], p["enabled"]) for p in shown["providers"]] == [("openai", True), ("local", False)]
    openai = shown["providers"][0]
    assert openai["api_key_hint"] == "…9a8b" and openai["model"] == "tiny" and openai["total_timeout_s"] == 45
    assert shown["daily_token_cap"] == 5000
    page = owner.get("/settings/ai?saved=1")
    assert SECRET_KEY not in page.text and page.status_code == 200
    parsed = Page(page.text)
    assert parsed.form("ai-form")["fields"]["openai.api_key"] == "" and "9a8b" in parsed.texts["key-state-openai"]
    assert any("saved" in alert for alert in parsed.alerts)
    # saved again with the key field blank: the key stays; the provider switched off keeps its URL and key
    assert owner.post("/settings/ai", world.form()).status_code == 303
    openai = world.providers()["providers"][0]
    assert openai["kind"] == "openai" and openai["enabled"] is False and openai["api_key_set"] is True
    assert owner.post("/settings/ai", world.form(**{"openai.remove_key": "1", "openai.enabled": "1"})).status_code \
        == 303
    assert world.providers()["providers"][0]["api_key_set"] is False
    # the audit log has the change, never the key
    audit = world.client.app.state.services.db.query("SELECT changes FROM audit_logs WHERE action = "
                                                      "'llm_providers.updated'")
    assert len(audit) == 3 and all(SECRET_KEY not in row["changes"] for row in audit)


def test_refused_values_come_back_next_to_their_field(world: World) -> None:
    refused = world.owner.post("/settings/ai", world.form(**{
        "openai.enabled": "1", "openai.base_url": "http://169.254.169.254/v1", "openai.api_key": SECRET_KEY}))
    assert refused.status_code == 422
    page = Page(refused.text)
    assert "outbound" in page.field_errors.get("openai.base_url", "") or \
        "169.254.169.254" in page.field_errors.get("openai.base_url", "")
    assert page.form("ai-form")["fields"]["openai.base_url"] == "http://169.254.169.254/v1"
    assert SECRET_KEY not in refused.text
    slow = world.owner.post("/settings/ai", world.form(**{"anthropic.enabled": "1",
                                                          "anthropic.total_timeout_s": "9000"}))
    assert slow.status_code == 422 and "anthropic.total_timeout_s" in Page(slow.text).field_errors
    words = world.owner.post("/settings/ai", world.form(daily_token_cap="lots"))
    assert words.status_code == 422 and Page(words.text).field_errors["daily_token_cap"] == "Enter a number."
    assert world.providers()["providers"] == []


def test_usage_today_is_shown_against_the_cap(world: World) -> None:
    services = world.client.app.state.services
    workspace = world.users["owner"]["workspace_id"]
    services.db.write(lambda conn: llm_usage.add_usage(conn, workspace, llm_usage.today(), "openai", 1200, 34))
    assert world.owner.post("/settings/ai", world.form(daily_token_cap="10000")).status_code == 303
    text = world.owner.page("/settings/ai").texts["usage-today"]
    assert "1,234 cloud tokens used of 10,000" in text


# --- test connection ----------------------------------------------------------------------------------------------
def test_api_test_connection_against_local_peers(world: World, peer: Peer) -> None:
    client = world.client
    put = client.put("/api/v1/llm-providers", headers=world.api, json={"providers": [
        {"kind": "openai", "base_url": peer.url + "/v1", "model": "tiny", "api_key": SECRET_KEY}]})
    assert put.status_code == 200
    ok = client.post("/api/v1/llm-providers/test", json={"kind": "openai"}, headers=world.api)
    assert ok.status_code == 200, ok.text
    body = ok.json()
    assert body["ok"] is True and body["reply"] == "Hello from the peer." and body["latency_ms"] >= 0
    assert body["error"] is None and "Connected" in body["message"]
    assert peer.received[-1]["headers"]["authorization"] == f"Bearer {SECRET_KEY}"  # the saved key was used
    assert SECRET_KEY not in ok.text
    assert client.get("/api/v1/llm-providers", headers=world.api).json()["usage_today"]["cloud_tokens"] > 0
    port = dead_port()
    dead = client.post("/api/v1/llm-providers/test", headers=world.api,
                       json={"kind": "openai", "base_url": f"http://127.0.0.1:{port}/v1"})
    assert dead.status_code == 200 and dead.json()["ok"] is False and dead.json()["error"] == "network"
    assert dead.json()["message"].startswith(f"Could not connect to http://127.0.0.1:{port}/v1")
    # the saved key goes only to the saved address: a typed one is tested without it, and the page says so
    other = Peer()
    try:
        moved = client.post("/api/v1/llm-providers/test", headers=world.api,
                            json={"kind": "openai", "base_url": other.url + "/v1"}).json()
        assert moved["ok"] is True and "authorization" not in other.received[-1]["headers"]
    finally:
        other.close()
    anthropic = Peer(mode="anthropic")
    try:
        answer = client.post("/api/v1/llm-providers/test", headers=world.api,
                             json={"kind": "anthropic", "base_url": anthropic.url, "api_key": "sk-ant-typed-0001"})
        assert answer.json()["ok"] is True, answer.text
        assert anthropic.received[-1]["headers"]["x-api-key"] == "sk-ant-typed-0001"
    finally:
        anthropic.close()
    refusing = Peer(mode="error", status=401)
    try:
        denied = client.post("/api/v1/llm-providers/test", headers=world.api,
                             json={"kind": "openai", "base_url": refusing.url + "/v1"})
        assert denied.json()["error"] == "http_401" and "refused the API key" in denied.json()["message"]
        assert "sent only to the saved base URL" in denied.json()["message"]
    finally:
        refusing.close()
    local = client.post("/api/v1/llm-providers/test", headers=world.api, json={"kind": "local"}).json()
    assert local["ok"] is False and "no local GGUF model" in local["message"]
    agent = bearer(login(client, "agent@ai.example"))
    assert client.post("/api/v1/llm-providers/test", json={"kind": "openai"}, headers=agent).status_code == 403
    bad = client.post("/api/v1/llm-providers/test", json={"kind": "gemini"}, headers=world.api)
    assert bad.status_code in (400, 422) and error_code(bad) in ("validation_error", "bad_request")


def test_console_test_button_with_htmx_and_without(world: World, peer: Peer) -> None:
    owner = world.owner
    typed = world.form(**{"openai.base_url": peer.url + "/v1", "openai.api_key": SECRET_KEY, "test": "openai"})
    token = owner.csrf()
    world.client.cookies.clear()
    fragment = world.client.post("/settings/ai/test", data=typed, cookies=owner.cookies,
                                 headers={"HX-Request": "true", "X-CSRF-Token": token})
    assert fragment.status_code == 200
    result = Page(fragment.text).texts["test-result-openai"]
    assert result.startswith("OK: answered in") and SECRET_KEY not in fragment.text
    assert peer.received[-1]["headers"]["authorization"] == f"Bearer {SECRET_KEY}"
    assert world.providers()["providers"] == []  # testing saves nothing
    whole = owner.post("/settings/ai/test", world.form(**{"openai.base_url": f"http://127.0.0.1:{dead_port()}/v1",
                                                          "test": "openai"}))
    assert whole.status_code == 200
    page = Page(whole.text)
    assert page.texts["test-result-openai"].startswith("Failed: Could not connect to")
    assert page.form("ai-form")["fields"]["openai.base_url"].startswith("http://127.0.0.1:")


def test_the_chatbot_ai_tab_links_here(world: World) -> None:
    bot = world.client.post("/api/v1/chatbots", json={"name": "Linked"}, headers=world.api).json()
    page = world.owner.page(f"/chatbots/{bot['id']}/settings/ai")
    assert "Settings → AI providers" in page.texts["providers-link"]
    viewer = Browser(world.client, world.users["viewer"]).page(f"/chatbots/{bot['id']}/settings/ai")
    assert "owners and admins" in viewer.texts["providers-link"]
