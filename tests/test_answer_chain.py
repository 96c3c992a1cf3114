"""The answer engine on the chatbot's configured provider chain (``llm.chain.build_chain``, extractive last):
a cloud provider on a real local peer that answers, and one that breaks mid-answer so the engine falls back,
tells the widget to clear the text shown, and stores only the extractive answer with honest metadata; and a
chain where nothing answers, whose half-shown text is replaced by the decline."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

import pytest

from answer_support import bot_messages, index_pages, new_bot, new_conversation, new_db
from chatsupport.llm.answer import AnswerEngine
from chatsupport.llm.base import ChatRequest, ProviderError, StreamEvent
from chatsupport.store import llm_usage
from llm_support import Peer


@pytest.fixture
def kit(tmp_path: Path, embedder, settings):  # noqa: ANN001, ANN201
    db = new_db(tmp_path)
    ws, bot = new_bot(db)
    index_pages(db, embedder, bot)
    # no local model: the chain is the workspace's cloud provider, then extractive
    settings = settings.replace(OUTBOUND_ALLOWLIST=("127.0.0.1",), LLM_MODEL="", SECRET_KEY="s" * 40)
    yield db, embedder, settings, ws, bot
    db.close()


def use_peer(db: Any, ws: str, peer: Peer) -> None:
    rows = [{"kind": "openai", "position": 0, "enabled": 1, "base_url": peer.url + "/v1", "model": "gpt-x"}]
    db.write(lambda conn: llm_usage.replace_providers(conn, ws, rows))


def events_of(engine: AnswerEngine, ws: str, conv: str, text: str) -> list[dict[str, Any]]:
    async def collect() -> list[dict[str, Any]]:
        return [event async for event in engine.respond(ws, conv, text)]
    return asyncio.run(collect())


def shown(events: list[dict[str, Any]]) -> str:
    """What a widget following the protocol displays: a reset clears what came before."""
    text = ""
    for event in events:
        if event["type"] == "reset":
            text = ""
        elif event["type"] == "delta":
            text += event["text"]
    return text


@pytest.fixture
def breaking_peer() -> Iterator[Peer]:
    peer = Peer(mode="break", words=("Hello", " from", " the", " peer."))
    yield peer
    peer.close()


@pytest.fixture
def answering_peer() -> Iterator[Peer]:
    peer = Peer(words=("The Pro plan costs $9 per month", " [1]."))
    yield peer
    peer.close()


def test_mid_answer_failure_resets_and_stores_only_the_extractive_answer(kit,  # noqa: ANN001
                                                                          breaking_peer: Peer) -> None:
    db, embedder, settings, ws, bot = kit
    use_peer(db, ws, breaking_peer)
    engine = AnswerEngine(db, embedder, settings=settings)
    conv = new_conversation(db, ws, bot)
    events = events_of(engine, ws, conv, "how much does the pro plan cost per month?")
    kinds = [e["type"] for e in events]
    assert kinds[0] == "delta" and "reset" in kinds and kinds[-1] == "message"
    assert "Hello" in events[0]["text"]  # the peer's words reached the widget before it broke
    final = events[-1]
    assert final["outcome"] == "answered" and "$9" in final["content"] and "Hello" not in final["content"]
    assert shown(events) == final["content"]
    stored = bot_messages(db, conv)[-1]
    assert stored["content"] == final["content"]
    meta = stored["ai_metadata"]
    assert meta["provider"] == "extractive" and meta["model"] == "extractive" and meta["fallback_taken"] is True
    assert meta["tokens_in"] > 0 and meta["tokens_out"] > 0
    assert [e["provider"] for e in meta["provider_errors"]] == ["openai"]
    assert len(breaking_peer.received) == 1


def test_the_configured_cloud_provider_answers_first(kit, answering_peer: Peer) -> None:  # noqa: ANN001
    db, embedder, settings, ws, bot = kit
    use_peer(db, ws, answering_peer)
    engine = AnswerEngine(db, embedder, settings=settings)
    conv = new_conversation(db, ws, bot)
    events = events_of(engine, ws, conv, "how much does the pro plan cost per month?")
    assert "reset" not in [e["type"] for e in events]
    meta = bot_messages(db, conv)[-1]["ai_metadata"]
    assert meta["provider"] == "openai" and meta["model"] == "peer-model" and meta["fallback_taken"] is False
    assert meta["tokens_in"] == 40 and meta["tokens_out"] == 2
    assert events[-1]["content"].startswith("The Pro plan costs $9 per month [1].")


def test_without_settings_or_providers_the_engine_answers_extractively(kit) -> None:  # noqa: ANN001
    db, embedder, _, ws, bot = kit
    engine = AnswerEngine(db, embedder)
    conv = new_conversation(db, ws, bot)
    events = events_of(engine, ws, conv, "how much does the pro plan cost per month?")
    meta = bot_messages(db, conv)[-1]["ai_metadata"]
    assert meta["provider"] == "extractive" and meta["fallback_taken"] is False and "$9" in events[-1]["content"]


class HalfAnswer:
    """A provider that says a few words, then fails: nothing after it can answer."""

    name = "openai"

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        yield StreamEvent(delta="The Pro plan")
        raise ProviderError("connection_lost", "peer went away")


def test_when_every_provider_fails_the_shown_text_is_replaced_by_the_decline(kit) -> None:  # noqa: ANN001
    db, embedder, _, ws, bot = kit
    engine = AnswerEngine(db, embedder, [HalfAnswer()])
    conv = new_conversation(db, ws, bot)
    events = events_of(engine, ws, conv, "how much does the pro plan cost per month?")
    final = events[-1]
    assert final["outcome"] in ("declined", "escalated") and "The Pro plan" not in final["content"]
    assert [e["type"] for e in events].count("reset") >= 1 and shown(events) == final["content"]
    meta = bot_messages(db, conv)[-1]["ai_metadata"]
    assert meta["provider"] is None and meta["provider_errors"] == [{"provider": "openai",
                                                                      "reason": "connection_lost"}]
