""""Test connection": one tiny real call through a provider, timed, with the outcome in words.

What is tested is the saved provider with any values the admin typed over it (so a URL or key can be tried before
saving): ``base_url``/``model`` absent or blank use the saved ones, an absent ``api_key`` uses the saved key — but
only towards the saved base URL (a key nobody can read back must not be sendable to a freshly typed address). Cloud
calls go through the same guarded streaming client as answers (``OUTBOUND_ALLOWLIST`` applies), their tokens count
against the daily cap like any other call, and the number of tests per workspace is rate limited.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Annotated, Any, Literal

from msgspec import UNSET, Meta, Struct, UnsetType

from chatsupport.config import Settings
from chatsupport.domain.audit import Actor
from chatsupport.domain.auth import rate_limit
from chatsupport.llm.base import ChatMessage, ChatRequest, Provider, ProviderError
from chatsupport.llm.providers.anthropic import AnthropicProvider
from chatsupport.llm.providers.local import local_provider
from chatsupport.llm.providers.openai_compat import OpenAICompatProvider
from chatsupport.llm.secrets import KeyUnreadable, decrypt_key
from chatsupport.store import llm_usage
from chatsupport.store.db import Database

TIMEOUT_S = 20.0
TESTS_PER_WINDOW = 30
WINDOW = timedelta(minutes=10)
QUESTION = "Reply with the single word OK."


class ProviderTestIn(Struct, forbid_unknown_fields=True, kw_only=True):
    kind: Literal["local", "openai", "anthropic"]
    base_url: Annotated[str, Meta(max_length=500)] | None = None
    model: Annotated[str, Meta(max_length=200)] | None = None
    api_key: Annotated[str, Meta(max_length=500)] | UnsetType = UNSET


class ProviderTestOut(Struct, kw_only=True):
    kind: str
    ok: bool
    latency_ms: int
    model: str | None = None
    reply: str | None = None
    error: str | None = None  # the ProviderError reason, a stable snake_case word
    message: str | None = None  # the outcome in words, for people


def _saved_key(secret: str, workspace_id: str, row: dict[str, Any]) -> str:
    if not row.get("api_key_encrypted"):
        return ""
    try:
        return decrypt_key(secret, workspace_id, row["kind"], bytes(row["api_key_encrypted"]))
    except KeyUnreadable as exc:
        raise ProviderError("key_unreadable", "the saved API key cannot be decrypted (the instance secret "
                            "changed): enter the key again") from exc


def _provider(db: Database, settings: Settings, secret: str, workspace_id: str,
              data: ProviderTestIn) -> tuple[Provider, bool]:
    """The provider as it would answer, with the typed values over the saved ones, and whether the saved key was
    held back: it goes only to the saved base URL, so a test cannot send it to an address typed in just now."""
    if data.kind == "local":
        return local_provider(settings), False
    saved: dict[str, Any] = next((dict(row) for row in llm_usage.list_providers(db, workspace_id)
                                  if row["kind"] == data.kind), {"kind": data.kind})
    base_url = (data.base_url or "").strip() or saved.get("base_url") or ""
    withheld = data.api_key is UNSET and bool(saved.get("api_key_encrypted")) \
        and base_url != (saved.get("base_url") or "")
    api_key = data.api_key if data.api_key is not UNSET else "" if withheld else _saved_key(secret, workspace_id, saved)
    cls = OpenAICompatProvider if data.kind == "openai" else AnthropicProvider
    return cls(base_url, (data.model or "").strip() or saved.get("model") or "", api_key,
               allowlist=settings.OUTBOUND_ALLOWLIST, mask_pii=settings.LLM_MASK_PII), withheld


def _words(reason: str, detail: str, provider: Provider) -> str:
    """A ProviderError as a sentence an admin can act on."""
    where = getattr(provider, "base_url", "") or "the local model"
    if reason in ("timeout", "first_token_timeout"):
        return f"No answer from {where} within {TIMEOUT_S:.0f} seconds."
    if reason == "network":  # detail: "<url>: <ExceptionType>: <what the socket said>"
        said = detail.rsplit(": ", 1)[-1].strip() or "no answer"
        return f"Could not connect to {where} ({said[:1].lower() + said[1:]}): is the server running, and are the " \
            "host and port right?"
    if reason == "url_not_allowed":
        return (f"{where} is refused by the outbound guard (private, loopback and metadata addresses need "
                "CHATSUPPORT_OUTBOUND_ALLOWLIST): " + detail)
    if reason in ("http_401", "http_403"):
        return f"{where} refused the API key (HTTP {reason[5:]}). {detail}".strip()
    if reason == "http_404":
        return f"{where} answered 404 Not Found: check the base URL and the model name. {detail}".strip()
    if reason.startswith("http_"):
        return f"{where} answered HTTP {reason[5:]}. {detail}".strip()
    if reason in ("bad_response", "incomplete"):
        return f"{where} answered, but not in the expected streaming protocol: {detail}"
    return detail or reason.replace("_", " ")


async def run(db: Database, settings: Settings, secret: str, actor: Actor, data: ProviderTestIn) -> ProviderTestOut:
    workspace_id = actor.workspace_id
    await asyncio.to_thread(rate_limit, db, f"llm_test|{workspace_id}", TESTS_PER_WINDOW, WINDOW)
    started = time.monotonic()
    request = ChatRequest(messages=[ChatMessage("user", QUESTION)], passages=[], question=QUESTION, max_tokens=5,
                          temperature=0.0, timeout_s=TIMEOUT_S)
    provider: Provider | None = None
    withheld = False
    try:
        provider, withheld = await asyncio.to_thread(_provider, db, settings, secret, workspace_id, data)
        text, done = await asyncio.wait_for(_ask(provider, request), TIMEOUT_S)
    except (ProviderError, asyncio.TimeoutError) as exc:
        reason = exc.reason if isinstance(exc, ProviderError) else "timeout"
        detail = str(exc).removeprefix(f"{reason}: ").removeprefix(reason) if isinstance(exc, ProviderError) else ""
        message = _words(reason, detail, provider) if provider else detail
        if withheld:
            message += " (The saved key is sent only to the saved base URL: type the key to test this address.)"
        return ProviderTestOut(kind=data.kind, ok=False, latency_ms=_ms(started), error=reason, message=message)
    latency = _ms(started)
    if getattr(provider, "cloud", False):
        await db.awrite(lambda conn: llm_usage.add_usage(conn, workspace_id, llm_usage.today(), data.kind,
                                                         done.tokens_in or 0, done.tokens_out or 0))
    return ProviderTestOut(kind=data.kind, ok=True, latency_ms=latency, model=done.model, reply=text[:200],
                           message=f"Connected: answered in {latency} ms.")


async def _ask(provider: Provider, request: ChatRequest) -> tuple[str, Any]:
    pieces, last = [], None
    async for event in provider.stream(request):
        pieces.append(event.delta)
        last = event
    if last is None or not last.done:
        raise ProviderError("incomplete", "the stream ended without a final event")
    return "".join(pieces).strip(), last


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
