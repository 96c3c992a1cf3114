"""Cloud providers over real HTTP on 127.0.0.1: ``llama_cpp.server`` as an OpenAI-compatible peer, a local server
speaking the Anthropic Messages streaming protocol, the outbound guard, PII masking on the wire, and the
``/api/v1/llm-providers`` settings (keys encrypted at rest, never returned)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, Iterator

import pytest

from accounts_support import account_settings, add_user, bearer, error_code, login, open_client
from chatsupport.llm.base import ChatMessage, ChatRequest, Provider, ProviderError, StreamEvent
from chatsupport.llm.chain import build_chain
from chatsupport.llm.providers.anthropic import AnthropicProvider
from chatsupport.llm.providers.openai_compat import OpenAICompatProvider
from llm_support import Peer, body_of

LOOPBACK = ("127.0.0.1",)
PII_TURN = "I'm jane@roe.example, card 4111 1111 1111 1111, IBAN DE89 3704 0044 0532 0130 00, call +44 20 7946 0958"
RAW_VALUES = ("jane@roe.example", "4111 1111 1111 1111", "DE89 3704", "7946 0958")


def ask(question: str = "How do I reset my password?", max_tokens: int = 16) -> ChatRequest:
    return ChatRequest(messages=[ChatMessage("system", "You are Acme's support assistant."),
                                 ChatMessage("user", question)],
                       passages=[], question=question, max_tokens=max_tokens, temperature=0.0, timeout_s=20)


async def collect(provider: Provider, request: ChatRequest) -> list[StreamEvent]:
    return [event async for event in provider.stream(request)]


@pytest.fixture
def peer() -> Iterator[Peer]:
    server = Peer()
    yield server
    server.close()


def test_openai_compatible_streaming_against_llama_cpp_server(llama_server: str) -> None:
    provider = OpenAICompatProvider(llama_server, "tiny", "sk-test-key-0001", allowlist=LOOPBACK)
    events = asyncio.run(collect(provider, ask()))
    deltas, done = events[:-1], events[-1]
    assert len(deltas) >= 2 and all(isinstance(e.delta, str) and e.delta for e in deltas)
    assert done.done and done.tokens_in and done.tokens_in > 0 and done.tokens_out and done.tokens_out > 0


def test_the_outbound_guard_refuses_loopback_unless_allowlisted(llama_server: str) -> None:
    with pytest.raises(ProviderError) as caught:
        asyncio.run(collect(OpenAICompatProvider(llama_server, "tiny", "k"), ask()))
    assert caught.value.reason == "url_not_allowed"
    with pytest.raises(ProviderError) as caught:
        asyncio.run(collect(OpenAICompatProvider("file:///etc/passwd", "tiny", "k", allowlist=LOOPBACK), ask()))
    assert caught.value.reason == "url_not_allowed"


def test_openai_request_shape_key_and_usage(peer: Peer) -> None:
    provider = OpenAICompatProvider(peer.url + "/v1", "gpt-4o-mini", "sk-test-key-0001", allowlist=LOOPBACK)
    events = asyncio.run(collect(provider, ask()))
    assert "".join(e.delta for e in events) == "Hello from the peer."
    assert (events[-1].tokens_in, events[-1].tokens_out, events[-1].model) == (40, 4, "peer-model")
    sent = peer.received[0]
    assert sent["path"] == "/v1/chat/completions" and sent["headers"]["authorization"] == "Bearer sk-test-key-0001"
    body = json.loads(sent["body"])
    assert body["stream"] is True and body["model"] == "gpt-4o-mini" and body["max_tokens"] == 16
    assert [m["role"] for m in body["messages"]] == ["system", "user"]


def test_azure_style_base_url_keeps_its_query_and_key_header(peer: Peer) -> None:
    provider = OpenAICompatProvider(peer.url + "/openai/deployments/gpt?api-version=2024-06-01", "gpt", "k" * 20,
                                    allowlist=LOOPBACK)
    asyncio.run(collect(provider, ask()))
    assert peer.received[0]["path"] == "/openai/deployments/gpt/chat/completions?api-version=2024-06-01"


def test_http_errors_are_provider_errors(peer: Peer) -> None:
    peer.mode, peer.status = "error", 503
    with pytest.raises(ProviderError) as caught:
        asyncio.run(collect(OpenAICompatProvider(peer.url, "m", "k", allowlist=LOOPBACK), ask()))
    assert caught.value.reason == "http_503"


def test_anthropic_messages_streaming(peer: Peer) -> None:
    peer.mode = "anthropic"
    provider = AnthropicProvider(peer.url, "claude-sonnet-4-5", "sk-ant-test-0001", allowlist=LOOPBACK)
    request = ChatRequest(messages=[ChatMessage("system", "Be brief."), ChatMessage("assistant", "Hi!"),
                                    ChatMessage("user", "one"), ChatMessage("user", "two")],
                          passages=[], question="two", max_tokens=50)
    events = asyncio.run(collect(provider, request))
    assert "".join(e.delta for e in events) == "Hello from the peer."
    assert (events[-1].tokens_in, events[-1].tokens_out, events[-1].model) == (42, 7, "claude-peer")
    sent = peer.received[0]
    assert sent["path"] == "/v1/messages"
    assert sent["headers"]["x-api-key"] == "sk-ant-test-0001" and sent["headers"]["anthropic-version"]
    body = json.loads(sent["body"])
    assert body["system"] == "Be brief." and body["stream"] is True
    assert body["messages"] == [{"role": "user", "content": "one\n\ntwo"}]


def test_anthropic_stream_without_message_stop_is_an_error(peer: Peer) -> None:
    peer.mode = "break"
    with pytest.raises(ProviderError):
        asyncio.run(collect(AnthropicProvider(peer.url, "m", "k", allowlist=LOOPBACK), ask()))


@pytest.mark.parametrize("cls, mode", [(OpenAICompatProvider, "openai"), (AnthropicProvider, "anthropic")])
def test_pii_is_masked_on_the_wire(peer: Peer, cls: type, mode: str) -> None:
    peer.mode = mode
    request = ChatRequest(messages=[ChatMessage("system", "Customer: Jane Roe. Help them."),
                                    ChatMessage("user", PII_TURN)],
                          passages=[], question=PII_TURN, sensitive=["Jane Roe"])
    asyncio.run(collect(cls(peer.url, "m", "k", allowlist=LOOPBACK), request))
    received = peer.received[0]["body"]
    for value in (*RAW_VALUES, "Jane Roe"):
        assert value not in received
    for placeholder in ("[email]", "[card]", "[iban]", "[phone]", "[customer data]"):
        assert placeholder in received


def test_masking_can_be_turned_off(peer: Peer) -> None:
    request = ChatRequest(messages=[ChatMessage("user", PII_TURN)], passages=[], question=PII_TURN)
    asyncio.run(collect(OpenAICompatProvider(peer.url, "m", "k", allowlist=LOOPBACK, mask_pii=False), request))
    assert "jane@roe.example" in peer.received[0]["body"]


# --- provider settings API --------------------------------------------------------------------------------------

@pytest.fixture
def api(tmp_path: Path) -> Iterator[Any]:
    with open_client(account_settings(tmp_path / "data", OUTBOUND_ALLOWLIST="127.0.0.1")) as client:
        yield client


def test_provider_settings_store_keys_encrypted_and_never_return_them(api: Any, peer: Peer) -> None:
    owner = add_user(api, "Acme", "owner@acme.example", "owner")
    add_user(api, "Acme", "agent@acme.example", "agent")
    headers = bearer(login(api, "owner@acme.example"))
    key = "sk-live-very-secret-7f3a"
    body = {"providers": [{"kind": "anthropic", "enabled": False},
                          {"kind": "openai", "base_url": peer.url + "/v1", "model": "gpt-4o-mini", "api_key": key},
                          {"kind": "local"}], "daily_token_cap": 5000}
    saved = api.put("/api/v1/llm-providers", json=body, headers=headers)
    assert saved.status_code == 200, saved.text
    assert key not in saved.text
    shown = api.get("/api/v1/llm-providers", headers=headers)
    assert shown.status_code == 200 and key not in shown.text
    openai = shown.json()["providers"][1]
    assert openai["api_key_set"] is True and openai["api_key_hint"] == "…7f3a"
    assert [p["kind"] for p in shown.json()["providers"]] == ["anthropic", "openai", "local"]
    assert shown.json()["daily_token_cap"] == 5000
    services = api.app.state.services
    raw = services.db.query("SELECT * FROM llm_providers")
    assert key.encode() not in repr(raw).encode() and all(key not in str(v) for row in raw for v in row.values())
    audit = services.db.query("SELECT changes FROM audit_logs WHERE action = 'llm_providers.updated'")
    assert audit and key not in audit[0]["changes"]
    # omitted api_key keeps the key; the chain decrypts it and the peer receives it
    api.put("/api/v1/llm-providers", json={"providers": [{"kind": "openai", "base_url": peer.url + "/v1"}]},
            headers=headers)
    chain = build_chain(services.db, services.settings, owner["workspace_id"], {"model": "auto"}, None)
    assert chain.names == ["openai"]
    asyncio.run(collect(chain, ask()))
    assert peer.received[0]["headers"]["authorization"] == f"Bearer {key}"
    # "" removes it
    api.put("/api/v1/llm-providers", json={"providers": [{"kind": "openai", "base_url": peer.url + "/v1",
                                                          "api_key": ""}]}, headers=headers)
    assert api.get("/api/v1/llm-providers", headers=headers).json()["providers"][0]["api_key_set"] is False
    agent = bearer(login(api, "agent@acme.example"))
    assert api.get("/api/v1/llm-providers", headers=agent).status_code == 403
    assert api.put("/api/v1/llm-providers", json=body, headers=agent).status_code == 403


def test_provider_settings_are_per_workspace_and_validated(api: Any) -> None:
    add_user(api, "Alpha", "owner@alpha.example", "owner")
    add_user(api, "Beta", "owner@beta.example", "owner")
    alpha, beta = bearer(login(api, "owner@alpha.example")), bearer(login(api, "owner@beta.example"))
    assert api.put("/api/v1/llm-providers", headers=alpha, json={
        "providers": [{"kind": "openai", "api_key": "sk-alpha-key-123456"}]}).status_code == 200
    assert api.get("/api/v1/llm-providers", headers=beta).json()["providers"] == []
    duplicate = api.put("/api/v1/llm-providers", headers=alpha, json={"providers": [{"kind": "openai"},
                                                                                    {"kind": "openai"}]})
    assert duplicate.status_code == 422 and error_code(duplicate) == "validation_error"
    private = api.put("/api/v1/llm-providers", headers=alpha, json={
        "providers": [{"kind": "openai", "base_url": "http://169.254.169.254/v1"}]})
    assert private.status_code == 422 and error_code(private) == "url_not_allowed"
    unknown = api.put("/api/v1/llm-providers", headers=alpha, json={"providers": [{"kind": "gemini"}]})
    assert unknown.status_code in (400, 422)
