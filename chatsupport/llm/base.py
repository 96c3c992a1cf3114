"""The one streaming interface every answer provider implements (local GGUF, OpenAI-compatible, Anthropic,
extractive), and the request/response types the answer pipeline passes through it.

Providers receive an already-built, already-masked ``ChatRequest``: prompt building lives in ``llm.prompts`` and
PII masking happens before a cloud provider sees anything. A provider raises ``ProviderError`` for anything that
should make the chain fall back to the next provider (timeout, HTTP error, model missing, cap reached).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Literal, Protocol, Sequence

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True)
class Passage:
    """A retrieved source as the providers see it (the extractive provider answers from these directly)."""

    source_type: str  # document | url | faq
    source_id: str
    title: str
    content: str
    score: float
    url: str | None = None
    page: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ChatRequest:
    messages: Sequence[ChatMessage]
    passages: Sequence[Passage]
    question: str
    max_tokens: int = 300
    temperature: float = 0.3
    timeout_s: float = 30.0
    # customer PII known from outside the turns (pre-chat form email, name, phone): masked wherever it appears
    # in the request before a cloud call, including the system prompt's customer block (see ``llm.privacy``)
    sensitive: Sequence[str] = ()


@dataclass
class StreamEvent:
    """``delta`` text pieces while streaming; the last event has ``done=True`` and the usage counts.

    ``reset=True`` (sent only by ``llm.chain``) means "discard the text streamed so far": the provider that was
    answering failed mid-answer and the next one starts over, so the customer never sees a mixed answer.
    """

    delta: str = ""
    done: bool = False
    tokens_in: int | None = None
    tokens_out: int | None = None
    model: str | None = None
    reset: bool = False


class ProviderError(RuntimeError):
    """The provider could not answer; the chain tries the next one. ``reason`` is a short snake_case word."""

    def __init__(self, reason: str, message: str = ""):
        self.reason = reason
        super().__init__(f"{reason}: {message}" if message else reason)


class Provider(Protocol):
    name: str  # local | openai | anthropic | extractive

    def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]: ...
