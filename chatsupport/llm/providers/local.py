"""The local GGUF model through llama-cpp-python: one model, one worker thread, a FIFO queue in front.

- **Loaded once, lazily**: the first answer loads the file on the worker thread (SmolLM2-135M: ~0.6 s); later
  answers reuse the same ``Llama``.
- **One owner**: llama.cpp contexts are not thread-safe and two generations on 2 cores only slow each other, so
  every generation runs on the model's own thread, one at a time, in arrival order. The event loop never waits on
  llama: tokens cross to it with ``loop.call_soon_threadsafe`` into an ``asyncio.Queue``.
- **Prefix reuse**: the same ``Llama`` keeps its KV cache between calls and llama-cpp-python re-evaluates only the
  tokens after the longest common prefix, so a prompt that starts with the chatbot's fixed system text pays for
  that text once (keep the varying parts — passages, question — after it).
- **Chat template from the GGUF** (``tokenizer.chat_template``); ChatML when the file has none.
- **Cancellation**: a consumer that stops (timeout, customer gone) sets the job's flag; the worker stops after the
  current token, and a job still waiting in the queue is skipped.

When ``llama_cpp`` cannot be imported (installed without it) the server still starts: this provider raises
``ProviderError("unavailable")`` and ``chatsupport doctor`` says why.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chatsupport.llm.base import ChatRequest, ProviderError, StreamEvent

log = logging.getLogger(__name__)

CHATML = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + "
          "'<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}"
          "{% endif %}")


def llama_status() -> tuple[bool, str]:
    """(importable, version or the import error) — for ``doctor`` and the provider."""
    try:
        import llama_cpp
    except Exception as exc:  # noqa: BLE001 - an ImportError or a broken shared library alike
        return False, f"{type(exc).__name__}: {exc}"
    return True, str(getattr(llama_cpp, "__version__", "unknown"))


def resolve_model(settings: Any) -> Path | None:
    """``LLM_MODEL`` (relative paths under MODELS_DIR), else the first ``*.gguf`` in MODELS_DIR."""
    configured = settings.LLM_MODEL
    models = settings.models_path
    if configured:
        path = Path(configured)
        path = path if path.is_absolute() else models / path
        return path if path.is_file() else None
    found = sorted(models.glob("*.gguf")) if models.is_dir() else []
    return found[0] if found else None


@dataclass
class _Job:
    request: ChatRequest
    loop: asyncio.AbstractEventLoop
    out: "asyncio.Queue[StreamEvent | BaseException]"
    cancelled: threading.Event = field(default_factory=threading.Event)

    def send(self, item: StreamEvent | BaseException) -> None:
        try:
            self.loop.call_soon_threadsafe(self.out.put_nowait, item)
        except RuntimeError:  # the loop has closed: nobody is listening any more
            self.cancelled.set()


class LocalModel:
    """Owner of one GGUF file: the ``Llama`` object lives and works on this object's thread only."""

    def __init__(self, path: Path, n_ctx: int = 4096, n_threads: int = 1, n_threads_batch: int = 2):
        self.path = Path(path)
        self.n_ctx, self.n_threads, self.n_threads_batch = n_ctx, n_threads, n_threads_batch
        self.load_seconds: float | None = None
        self._llama: Any = None
        self._formatter: Any = None
        self._stop_ids: set[int] = set()
        self._jobs: "queue.Queue[_Job | None]" = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.path.stem

    def pending(self) -> int:
        """Answers waiting for the model (not counting the one being generated)."""
        return self._jobs.qsize()

    def submit(self, job: _Job) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name=f"llm-{self.name}", daemon=True)
                self._thread.start()
        self._jobs.put(job)

    def close(self) -> None:
        with self._lock:
            if self._thread is not None:
                self._jobs.put(None)
                self._thread.join(timeout=30)
                self._thread = None

    # --- on the worker thread --------------------------------------------------------------------------------
    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            if job.cancelled.is_set():
                continue
            try:
                self._generate(job)
            except ProviderError as exc:
                job.send(exc)
            except Exception as exc:  # noqa: BLE001 - llama errors become a fallback, never a dead worker
                log.exception("local model %s failed", self.path)
                job.send(ProviderError("generation_failed", f"{type(exc).__name__}: {exc}"))

    def _load(self) -> None:
        if self._llama is not None:
            return
        ok, detail = llama_status()
        if not ok:
            raise ProviderError("unavailable", f"llama-cpp-python cannot be imported ({detail})")
        if not self.path.is_file():
            raise ProviderError("unavailable", f"model file {self.path} not found")
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        started = time.perf_counter()
        try:
            llama = Llama(str(self.path), n_ctx=self.n_ctx, n_threads=self.n_threads,
                          n_threads_batch=self.n_threads_batch, verbose=False)
        except Exception as exc:  # noqa: BLE001 - a damaged or unsupported file
            raise ProviderError("model_load_failed", f"{self.path.name}: {exc}") from exc
        eos, bos = llama.token_eos(), llama.token_bos()
        text = llama._model.token_get_text  # noqa: SLF001 - the same call Llama uses for its own chat format
        template = llama.metadata.get("tokenizer.chat_template") or CHATML
        self._formatter = Jinja2ChatFormatter(template, text(eos) if eos != -1 else "",
                                              text(bos) if bos != -1 else "", stop_token_ids=[eos])
        self._stop_ids = {eos}
        self._llama = llama
        self.load_seconds = time.perf_counter() - started
        log.info("loaded %s in %.2fs (n_ctx=%d, threads=%d/%d)", self.path.name, self.load_seconds, self.n_ctx,
                 self.n_threads, self.n_threads_batch)

    def _prompt_tokens(self, request: ChatRequest) -> tuple[list[int], list[str]]:
        messages = [{"role": m.role, "content": m.content} for m in request.messages] or \
            [{"role": "user", "content": request.question}]
        formatted = self._formatter(messages=messages)
        tokens = self._llama.tokenize(formatted.prompt.encode("utf-8"), add_bos=not formatted.added_special,
                                      special=True)
        return tokens, [s for s in formatted.stop if s]

    def _generate(self, job: _Job) -> None:
        self._load()
        llama = self._llama
        tokens, stop = self._prompt_tokens(job.request)
        room = self.n_ctx - len(tokens)
        if room < 16:
            raise ProviderError("prompt_too_long", f"{len(tokens)} prompt tokens leave no room in n_ctx={self.n_ctx}")
        stream = llama.create_completion(tokens, max_tokens=min(job.request.max_tokens, room), stream=True,
                                         temperature=job.request.temperature, stop=stop)
        pieces: list[str] = []
        for chunk in stream:
            if job.cancelled.is_set():
                stream.close()
                return
            piece = chunk["choices"][0]["text"]
            if piece:
                pieces.append(piece)
                job.send(StreamEvent(delta=piece, model=self.name))
        produced = "".join(pieces)
        tokens_out = len(llama.tokenize(produced.encode("utf-8"), add_bos=False, special=True)) if produced else 0
        job.send(StreamEvent(done=True, tokens_in=len(tokens), tokens_out=tokens_out, model=self.name))


class LocalProvider:
    """The ``Provider`` face of a ``LocalModel`` (many chains share one model)."""

    name = "local"
    cloud = False

    def __init__(self, model: LocalModel | None):
        self.model = model

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        if self.model is None:
            raise ProviderError("unavailable", "no local GGUF model is configured or found in MODELS_DIR")
        ok, detail = llama_status()
        if not ok:
            raise ProviderError("unavailable", f"llama-cpp-python cannot be imported ({detail})")
        job = _Job(request, asyncio.get_running_loop(), asyncio.Queue())
        self.model.submit(job)
        try:
            while True:
                item = await job.out.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
                if item.done:
                    return
        finally:
            job.cancelled.set()


_MODELS: dict[tuple[str, int, int, int], LocalModel] = {}
_MODELS_LOCK = threading.Lock()


def shared_model(path: Path, n_ctx: int, n_threads: int, n_threads_batch: int) -> LocalModel:
    """The process-wide ``LocalModel`` for this file and configuration (one model in memory, one queue)."""
    key = (str(Path(path).resolve()), n_ctx, n_threads, n_threads_batch)
    with _MODELS_LOCK:
        if key not in _MODELS:
            _MODELS[key] = LocalModel(Path(key[0]), n_ctx, n_threads, n_threads_batch)
        return _MODELS[key]


def local_provider(settings: Any) -> LocalProvider:
    """The instance's local provider from settings (``LLM_MODEL``/``MODELS_DIR``, context, threads)."""
    path = resolve_model(settings)
    model = shared_model(path, settings.LLM_CONTEXT, settings.LLM_THREADS, settings.LLM_BATCH_THREADS) \
        if path is not None else None
    return LocalProvider(model)
