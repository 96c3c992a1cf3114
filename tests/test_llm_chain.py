"""The provider chain over real peers: fallback on HTTP errors, first-token timeouts and mid-answer failures
(never a mixed answer), the circuit breaker, and the daily cloud-token cap kept in SQLite."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from chatsupport.llm.base import ChatMessage, ChatRequest, ProviderError, StreamEvent
from chatsupport.llm.chain import BreakerBoard, Link, ProviderChain, build_chain, parse_order
from chatsupport.llm.providers.local import LocalModel, LocalProvider
from chatsupport.llm.providers.openai_compat import OpenAICompatProvider
from chatsupport.store import llm_usage
from chatsupport.store.db import Database
from chatsupport.store.migrations import migrate
from llm_support import Peer

LOOPBACK = ("127.0.0.1",)


def ask(question: str = "How do I reset my password?") -> ChatRequest:
    return ChatRequest(messages=[ChatMessage("system", "You are Acme's support assistant."),
                                 ChatMessage("user", question)],
                       passages=[], question=question, max_tokens=12, temperature=0.0, timeout_s=20)


async def drain(chain: ProviderChain, request: ChatRequest | None = None) -> list[StreamEvent]:
    return [event async for event in chain.stream(request or ask())]


def shown_text(events: list[StreamEvent]) -> str:
    """What a consumer following the protocol displays: a reset discards what came before."""
    text = ""
    for event in events:
        text = "" if event.reset else text + event.delta
    return text


@pytest.fixture
def peer() -> Iterator[Peer]:
    server = Peer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def local(tiny_gguf: Path) -> Iterator[LocalProvider]:
    model = LocalModel(tiny_gguf, n_ctx=512, n_threads=1, n_threads_batch=1)
    yield LocalProvider(model)
    model.close()


def cloud(peer: Peer, name: str = "openai") -> OpenAICompatProvider:
    return OpenAICompatProvider(peer.url + "/v1", "gpt-4o-mini", "sk-test", allowlist=LOOPBACK, name=name)


def test_first_provider_answers_without_fallback(peer: Peer, local: LocalProvider) -> None:
    chain = ProviderChain([Link(cloud(peer)), Link(local)], breakers=BreakerBoard())
    events = asyncio.run(drain(chain))
    assert shown_text(events) == "Hello from the peer." and events[-1].done
    result = chain.result
    assert (result.provider, result.model, result.fallback_taken) == ("openai", "peer-model", False)
    assert (result.tokens_in, result.tokens_out, result.text) == (40, 4, "Hello from the peer.")


def test_http_500_falls_back_to_the_next_provider(peer: Peer, local: LocalProvider) -> None:
    peer.mode = "error"
    chain = ProviderChain([Link(cloud(peer)), Link(local)], breakers=BreakerBoard())
    events = asyncio.run(drain(chain))
    assert chain.result.provider == "local" and chain.result.fallback_taken
    assert [(a.provider, a.outcome, a.reason) for a in chain.result.attempts] == [
        ("openai", "failed", "http_500"), ("local", "answered", "")]
    assert shown_text(events) == chain.result.text and chain.result.text
    assert not any(e.reset for e in events)


def test_a_provider_that_hangs_times_out_before_its_first_token(peer: Peer, local: LocalProvider) -> None:
    peer.mode = "hang"
    chain = ProviderChain([Link(cloud(peer), first_token_timeout=0.5, total_timeout=30), Link(local)],
                          breakers=BreakerBoard())
    started = time.monotonic()
    asyncio.run(drain(chain))
    assert time.monotonic() - started < 5
    assert chain.result.attempts[0].reason == "first_token_timeout" and chain.result.provider == "local"


def test_a_failure_mid_answer_restarts_cleanly(peer: Peer, local: LocalProvider) -> None:
    peer.mode = "break"
    chain = ProviderChain([Link(cloud(peer)), Link(local)], breakers=BreakerBoard())
    events = asyncio.run(drain(chain))
    resets = [i for i, e in enumerate(events) if e.reset]
    assert len(resets) == 1 and "".join(e.delta for e in events[:resets[0]]) == "Hello from"
    assert chain.result.restarted and chain.result.provider == "local"
    assert "Hello" not in chain.result.text and shown_text(events) == chain.result.text


def test_when_every_provider_fails_the_chain_says_so(peer: Peer) -> None:
    peer.mode = "break"
    chain = ProviderChain([Link(cloud(peer))], breakers=BreakerBoard())
    events: list[StreamEvent] = []

    async def main() -> None:
        async for event in chain.stream(ask()):
            events.append(event)

    with pytest.raises(ProviderError) as caught:
        asyncio.run(main())
    assert caught.value.reason == "no_provider" and events[-1].reset


def test_circuit_breaker_opens_then_half_opens(peer: Peer, local: LocalProvider) -> None:
    peer.mode = "error"
    board = BreakerBoard()

    def chain() -> ProviderChain:
        return ProviderChain([Link(cloud(peer)), Link(local)], breakers=board, breaker_failures=2,
                             breaker_cooldown=0.5)

    for _ in range(2):
        asyncio.run(drain(chain()))
    assert len(peer.received) == 2
    opened = chain()
    asyncio.run(drain(opened))
    assert len(peer.received) == 2, "an open circuit must not call the provider"
    assert opened.result.attempts[0].reason == "circuit_open" and opened.result.provider == "local"
    time.sleep(0.6)
    peer.mode = "openai"  # the provider recovered: the half-open trial succeeds and closes the circuit
    trial = chain()
    asyncio.run(drain(trial))
    assert len(peer.received) == 3 and trial.result.provider == "openai"
    assert board.get(("", "openai"), 2, 0.5).state == "closed"


def test_a_failed_half_open_trial_reopens_the_circuit(peer: Peer, local: LocalProvider) -> None:
    peer.mode = "error"
    board = BreakerBoard()
    make = lambda: ProviderChain([Link(cloud(peer)), Link(local)], breakers=board, breaker_failures=1,  # noqa: E731
                                 breaker_cooldown=0.3)
    asyncio.run(drain(make()))
    time.sleep(0.35)
    asyncio.run(drain(make()))  # the trial fails
    asyncio.run(drain(make()))  # open again: not called
    assert len(peer.received) == 2
    assert board.get(("", "openai"), 1, 0.3).state == "open"


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    path = tmp_path / "chatsupport.db"
    migrate(path)
    database = Database(path)
    yield database
    database.close()


def workspace(db: Database) -> str:
    workspace_id = str(uuid.uuid4())
    db.execute_write("INSERT INTO workspaces (id, name, slug) VALUES (?, ?, ?)", (workspace_id, "Acme", workspace_id))
    return workspace_id


def test_daily_token_cap_falls_back_to_the_next_provider(db: Database, peer: Peer, local: LocalProvider) -> None:
    ws = workspace(db)

    def chain(cap: int) -> ProviderChain:
        return ProviderChain([Link(cloud(peer)), Link(local)], db=db, workspace_id=ws, daily_token_cap=cap,
                             breakers=BreakerBoard())

    first = chain(40)
    asyncio.run(drain(first))
    assert first.result.provider == "openai"
    assert llm_usage.cloud_tokens_on(db, ws, llm_usage.today()) == 44  # 40 in + 4 out, as the peer reported
    capped = chain(40)
    asyncio.run(drain(capped))
    assert capped.result.attempts[0].reason == "token_cap" and capped.result.provider == "local"
    assert len(peer.received) == 1
    usage = {row["provider"]: row for row in llm_usage.usage_on(db, ws, llm_usage.today())}
    assert usage["openai"]["requests"] == 1 and usage["local"]["requests"] == 1
    assert llm_usage.cloud_tokens_on(db, ws, llm_usage.today()) == 44  # local tokens do not count
    unlimited = chain(0)
    asyncio.run(drain(unlimited))
    assert unlimited.result.provider == "openai"


def test_build_chain_follows_the_workspace_and_the_chatbot(db: Database, settings, peer: Peer,  # noqa: ANN001
                                                           tiny_gguf: Path, local: LocalProvider) -> None:
    ws = workspace(db)
    settings = settings.replace(OUTBOUND_ALLOWLIST=LOOPBACK, LLM_MODEL=str(tiny_gguf), SECRET_KEY="s" * 40)
    rows = [{"kind": "openai", "position": 0, "enabled": 1, "base_url": peer.url + "/v1", "model": "gpt-x"},
            {"kind": "anthropic", "position": 1, "enabled": 0}, {"kind": "local", "position": 2, "enabled": 1}]
    db.write(lambda conn: llm_usage.replace_providers(conn, ws, rows))
    db.write(lambda conn: llm_usage.set_cap(conn, ws, 123))
    auto = build_chain(db, settings, ws, {"model": "auto"}, local)
    assert auto.names == ["openai", "local", "local"] and auto.daily_token_cap == 123
    assert auto.links[0].first_token_timeout == settings.LLM_FIRST_TOKEN_TIMEOUT
    chosen = build_chain(db, settings, ws, {"model": "local, openai:gpt-4o"}, None)
    assert chosen.names == ["local", "openai"] and chosen.links[1].provider.model == "gpt-4o"
    assert build_chain(db, settings, ws, {"model": "extractive"}, local).names == ["local"]
    assert parse_order("auto") == [] and parse_order("openai:gpt-4o-mini") == [("openai", "gpt-4o-mini")]
    fresh = workspace(db)
    assert build_chain(db, settings, fresh, {}, None).names == ["local"]  # nothing configured: the local model
    assert build_chain(db, settings.replace(LLM_MODEL=""), fresh, {}, None).names == []
