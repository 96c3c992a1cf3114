"""The provider chain: try each provider of a chatbot in order until one answers.

Public API (what the answer pipeline calls)::

    chain = build_chain(db, settings, workspace_id, chatbot["ai_settings"], extractive=ExtractiveProvider(...))
    async for event in chain.stream(request):     # StreamEvent: delta pieces, then one done=True event
        if event.reset: text = ""                  # see "mixed answers" below
        text += event.delta
    chain.result   # ChainResult: provider, model, fallback_taken, tokens_in, tokens_out, text, attempts

``stream`` raises ``ProviderError("no_provider")`` only when every provider failed (the extractive provider at the
end of every built chain makes that rare). A provider that answers with no text hands over to the next one; the
last provider's empty answer is returned as it is (the extractive provider declines that way). ``ProviderChain(links, …)`` builds a chain from any ``Provider``
objects directly (tests, the eval CLI).

Order: the chatbot's ``ai_settings.model`` — ``"auto"`` (the default) is the workspace's enabled providers in
their configured order (``GET/PUT /api/v1/llm-providers``; a workspace with none configured uses the local GGUF
model when one is installed); otherwise a comma-separated list of kinds, each optionally with a model:
``"local,openai:gpt-4o-mini"``; ``"extractive"`` alone means no model. Extractive always ends the chain.

Per provider: a first-token timeout and a total timeout (``LLM_FIRST_TOKEN_TIMEOUT``/``LLM_TOTAL_TIMEOUT`` or the
provider's own), a circuit breaker (``LLM_BREAKER_FAILURES`` consecutive failures open it; after
``LLM_BREAKER_COOLDOWN`` one trial call is let through — success closes it, failure reopens it), and for cloud
providers the workspace's daily token cap (reached: skipped, like an open circuit). Breakers are per workspace and
provider kind, shared by every chain in the process.

Mixed answers: deltas are passed on as soon as a provider produces them (streaming matters: the first token is
the latency the customer feels). If a provider fails *after* it streamed text, the chain restarts cleanly: the
next provider's first delta is preceded by ``StreamEvent(reset=True)`` ("discard what was shown"), and
``result.text`` holds only the final provider's answer. So no consumer ever shows or stores a mixed answer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from chatsupport import metrics
from chatsupport.config import Settings, ensure_secret_key
from chatsupport.llm.base import ChatRequest, Provider, ProviderError, StreamEvent
from chatsupport.llm.providers.anthropic import AnthropicProvider
from chatsupport.llm.providers.local import local_provider
from chatsupport.llm.providers.openai_compat import OpenAICompatProvider
from chatsupport.llm.secrets import KeyUnreadable, decrypt_key
from chatsupport.store import llm_usage
from chatsupport.store.db import Database

log = logging.getLogger(__name__)


class Breaker:
    """Closed → open after ``threshold`` consecutive failures → half-open after ``cooldown`` (one trial)."""

    def __init__(self, threshold: int = 3, cooldown: float = 60.0):
        self.threshold, self.cooldown = threshold, cooldown
        self.failures = 0
        self.opened_at: float | None = None
        self._trial = False

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "half_open" if time.monotonic() - self.opened_at >= self.cooldown else "open"

    def allow(self) -> bool:
        state = self.state
        if state == "closed":
            return True
        if state == "half_open" and not self._trial:
            self._trial = True  # exactly one caller probes the provider
            return True
        return False

    def success(self) -> None:
        self.failures, self.opened_at, self._trial = 0, None, False

    def failure(self) -> None:
        self.failures += 1
        if self._trial or self.failures >= self.threshold:
            self.opened_at, self._trial = time.monotonic(), False


class BreakerBoard:
    """Breakers by (workspace, provider), created on first use with the instance's threshold and cool-down."""

    def __init__(self) -> None:
        self._breakers: dict[tuple[str, str], Breaker] = {}

    def get(self, key: tuple[str, str], threshold: int, cooldown: float) -> Breaker:
        breaker = self._breakers.get(key)
        if breaker is None:
            breaker = self._breakers[key] = Breaker(threshold, cooldown)
        breaker.threshold, breaker.cooldown = threshold, cooldown
        return breaker


BREAKERS = BreakerBoard()


@dataclass
class Link:
    """One provider in a chain with its limits."""

    provider: Provider
    first_token_timeout: float = 20.0
    total_timeout: float = 90.0

    @property
    def cloud(self) -> bool:
        return bool(getattr(self.provider, "cloud", False))


@dataclass
class Attempt:
    provider: str
    outcome: str  # answered | failed | skipped
    reason: str = ""
    ms: int = 0


@dataclass
class _Outcome:
    answered: bool = False
    streamed: bool = False


@dataclass
class ChainResult:
    provider: str | None = None
    model: str | None = None
    fallback_taken: bool = False
    tokens_in: int = 0
    tokens_out: int = 0
    text: str = ""
    restarted: bool = False
    attempts: list[Attempt] = field(default_factory=list)


class ProviderChain:
    def __init__(self, links: Sequence[Link], *, db: Database | None = None, workspace_id: str = "",
                 daily_token_cap: int = 0, breakers: BreakerBoard | None = None, breaker_failures: int = 3,
                 breaker_cooldown: float = 60.0):
        self.links = list(links)
        self.db, self.workspace_id, self.daily_token_cap = db, workspace_id, daily_token_cap
        self.breakers = breakers or BREAKERS
        self.breaker_failures, self.breaker_cooldown = breaker_failures, breaker_cooldown
        self.result = ChainResult()

    @property
    def names(self) -> list[str]:
        return [link.provider.name for link in self.links]

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        self.result = result = ChainResult()
        shown = False  # text from a failed provider reached the consumer: the next answer starts with a reset
        for index, link in enumerate(self.links):
            reason = await self._skip_reason(link)
            if reason:
                result.attempts.append(Attempt(link.provider.name, "skipped", reason))
                continue
            outcome = _Outcome()
            async with aclosing(self._attempt(link, request, index == len(self.links) - 1, shown, outcome)) as events:
                async for event in events:
                    yield event
            if outcome.answered:
                return
            shown = shown or outcome.streamed
        if shown:
            yield StreamEvent(reset=True)
        raise ProviderError("no_provider", "; ".join(f"{a.provider}: {a.reason}" for a in result.attempts))

    async def _attempt(self, link: Link, request: ChatRequest, last: bool, shown: bool,
                       outcome: "_Outcome") -> AsyncIterator[StreamEvent]:
        """One provider's try: its events passed on; ``outcome`` says whether it answered or streamed text."""
        name, started, pieces = link.provider.name, time.monotonic(), []
        try:
            async with aclosing(_timed(link, request)) as events:
                async for event in events:
                    if event.done and not pieces and not last:
                        # no text is not an outage: fall back without touching the breaker
                        self.result.attempts.append(Attempt(name, "failed", "empty_answer", _ms(started)))
                        return
                    if event.done:
                        await self._finish(link, event, pieces, started)
                        outcome.answered = True
                        yield StreamEvent(done=True, tokens_in=self.result.tokens_in,
                                          tokens_out=self.result.tokens_out, model=self.result.model)
                        return
                    if event.delta:
                        if not pieces and shown:
                            self.result.restarted = True
                            yield StreamEvent(reset=True)
                        pieces.append(event.delta)
                        outcome.streamed = True
                        yield StreamEvent(delta=event.delta, model=event.model)
        except ProviderError as exc:
            metrics.LLM_LATENCY.observe(name, "failed", seconds=time.monotonic() - started)
            self._breaker(name).failure()
            self.result.attempts.append(Attempt(name, "failed", exc.reason, _ms(started)))
            log.warning("provider %s failed (%s); falling back", name, exc)

    def _breaker(self, name: str) -> Breaker:
        return self.breakers.get((self.workspace_id, name), self.breaker_failures, self.breaker_cooldown)

    async def _skip_reason(self, link: Link) -> str:
        if not self._breaker(link.provider.name).allow():
            return "circuit_open"
        if link.cloud and self.db is not None and self.daily_token_cap > 0:
            used = await asyncio.to_thread(llm_usage.cloud_tokens_on, self.db, self.workspace_id, llm_usage.today())
            if used >= self.daily_token_cap:
                return "token_cap"
        return ""

    async def _finish(self, link: Link, done: StreamEvent, pieces: list[str], started: float) -> None:
        result, name = self.result, link.provider.name
        self._breaker(name).success()
        result.provider, result.model = name, done.model
        result.tokens_in, result.tokens_out = done.tokens_in or 0, done.tokens_out or 0
        result.text = "".join(pieces)
        result.fallback_taken = any(a.outcome != "answered" for a in result.attempts)
        result.attempts.append(Attempt(name, "answered", "", _ms(started)))
        metrics.observe_llm(name, time.monotonic() - started, result.tokens_in, result.tokens_out)
        if self.db is not None and self.workspace_id:
            await self.db.awrite(lambda conn: llm_usage.add_usage(
                conn, self.workspace_id, llm_usage.today(), name, result.tokens_in, result.tokens_out))


async def _timed(link: Link, request: ChatRequest) -> AsyncIterator[StreamEvent]:
    """The provider's events under its first-token and total deadlines (``ProviderError("timeout")`` past them)."""
    started = time.monotonic()
    first_deadline, total_deadline = started + link.first_token_timeout, started + link.total_timeout
    events = link.provider.stream(request).__aiter__()
    got_text = False
    try:
        while True:
            deadline = total_deadline if got_text else min(first_deadline, total_deadline)
            try:
                event = await asyncio.wait_for(events.__anext__(), max(0.001, deadline - time.monotonic()))
            except StopAsyncIteration:
                raise ProviderError("incomplete", "the stream ended without a final event") from None
            except asyncio.TimeoutError:
                raise ProviderError("timeout" if got_text else "first_token_timeout") from None
            except ProviderError:
                raise
            except Exception as exc:  # noqa: BLE001 - a provider bug must not break the chain
                raise ProviderError("provider_bug", f"{type(exc).__name__}: {exc}") from exc
            got_text = got_text or bool(event.delta)
            yield event
            if event.done:
                return
    finally:
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            try:
                await aclose()
            except Exception:  # noqa: BLE001 - closing a failed stream is best effort
                pass


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


# --- building a chain from the workspace's configuration ----------------------------------------------------------

def parse_order(spec: str) -> list[tuple[str, str]]:
    """``"local,openai:gpt-4o-mini"`` → [("local", ""), ("openai", "gpt-4o-mini")]; ``"auto"``/empty → []."""
    spec = (spec or "").strip()
    if spec.lower() in ("", "auto"):
        return []
    order = []
    for part in spec.split(","):
        kind, _, model = part.strip().partition(":")
        if kind.strip():
            order.append((kind.strip().lower(), model.strip()))
    return order


def _cloud_provider(row: Mapping[str, Any], settings: Settings, secret: str, workspace_id: str,
                    model: str) -> Provider | None:
    api_key = ""
    if row.get("api_key_encrypted"):
        try:
            api_key = decrypt_key(secret, workspace_id, row["kind"], bytes(row["api_key_encrypted"]))
        except KeyUnreadable:
            log.warning("the %s API key of workspace %s cannot be decrypted (instance secret changed?)",
                        row["kind"], workspace_id)
            return None
    cls = OpenAICompatProvider if row["kind"] == "openai" else AnthropicProvider
    return cls(row.get("base_url") or "", model or row.get("model") or "", api_key,
               allowlist=settings.OUTBOUND_ALLOWLIST, mask_pii=settings.LLM_MASK_PII)


def build_chain(db: Database, settings: Settings, workspace_id: str, ai_settings: Mapping[str, Any] | None,
                extractive: Provider | None, *, secret: str | None = None,
                breakers: BreakerBoard | None = None) -> ProviderChain:
    """The chatbot's chain (see the module docstring). Reads the workspace's provider rows; cheap per message."""
    rows = {row["kind"]: row for row in llm_usage.list_providers(db, workspace_id)}
    order = parse_order(str((ai_settings or {}).get("model") or "auto"))
    if not order:
        order = [(kind, "") for kind, row in rows.items() if row["enabled"]]
        if not rows and local_provider(settings).model is not None:
            order = [("local", "")]
    links: list[Link] = []
    for kind, model in order:
        row = rows.get(kind, {"kind": kind})
        if kind in rows and not row["enabled"]:
            continue
        provider: Provider | None = None
        if kind == "local":
            provider = local_provider(settings)
        elif kind in ("openai", "anthropic") and kind in rows:
            provider = _cloud_provider(row, settings, secret or ensure_secret_key(settings), workspace_id, model)
        if provider is not None:
            links.append(Link(provider, row.get("first_token_timeout_s") or settings.LLM_FIRST_TOKEN_TIMEOUT,
                              row.get("total_timeout_s") or settings.LLM_TOTAL_TIMEOUT))
    if extractive is not None:
        links.append(Link(extractive, settings.LLM_FIRST_TOKEN_TIMEOUT, settings.LLM_TOTAL_TIMEOUT))
    cap = llm_usage.get_cap(db, workspace_id)
    return ProviderChain(links, db=db, workspace_id=workspace_id,
                         daily_token_cap=settings.LLM_DAILY_TOKEN_CAP if cap is None else cap, breakers=breakers,
                         breaker_failures=settings.LLM_BREAKER_FAILURES,
                         breaker_cooldown=settings.LLM_BREAKER_COOLDOWN)
