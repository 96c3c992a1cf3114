"""Anthropic Messages API, streamed: ``message_start`` (input tokens), ``content_block_delta`` (text),
``message_delta`` (output tokens), ``message_stop``; an ``error`` event ends the answer with a ``ProviderError``.

System messages become the top-level ``system`` field; the rest must alternate user/assistant starting with the
user, so consecutive turns of one role are merged and a leading assistant turn is dropped.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from chatsupport.llm.base import ChatRequest, ProviderError, StreamEvent
from chatsupport.llm.privacy import mask_request
from chatsupport.llm.providers.http import CloudEndpoint, endpoint, parse_event, post_stream, sse_events
from chatsupport.llm.providers.openai_compat import estimate_tokens

DEFAULT_BASE_URL = "https://api.anthropic.com"
DEFAULT_MODEL = "claude-sonnet-4-5"
API_VERSION = "2023-06-01"


def to_messages(request: ChatRequest) -> tuple[str, list[dict[str, str]]]:
    system = "\n\n".join(m.content for m in request.messages if m.role == "system")
    turns: list[dict[str, str]] = []
    for message in request.messages:
        if message.role == "system" or (not turns and message.role == "assistant"):
            continue
        if turns and turns[-1]["role"] == message.role:
            turns[-1]["content"] += "\n\n" + message.content
        else:
            turns.append({"role": message.role, "content": message.content})
    return system, turns or [{"role": "user", "content": request.question}]


class AnthropicProvider(CloudEndpoint):
    default_base_url, default_model = DEFAULT_BASE_URL, DEFAULT_MODEL

    def __init__(self, *args: Any, name: str = "anthropic", **kwargs: Any):
        super().__init__(*args, name=name, **kwargs)

    def _body(self, request: ChatRequest) -> dict[str, Any]:
        system, turns = to_messages(request)
        body: dict[str, Any] = {"model": self.model, "max_tokens": request.max_tokens, "messages": turns,
                                "stream": True, "temperature": min(request.temperature, 1.0)}
        if system:
            body["system"] = system
        return body

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        if self.mask_pii:
            request = mask_request(request)
        body = self._body(request)
        headers = {"x-api-key": self.api_key, "anthropic-version": API_VERSION}
        text: list[str] = []
        model, tokens_in, tokens_out, stopped = self.model, None, None, False
        async with post_stream(self.allowlist, endpoint(self.base_url, "/v1/messages"), headers, body,
                               request.timeout_s) as chunks:
            async for event, data in sse_events(chunks):
                payload = parse_event(data)
                kind = payload.get("type") or event
                if kind == "error":
                    raise ProviderError("upstream_error", str(payload.get("error"))[:300])
                if kind == "message_start":
                    message = payload.get("message") or {}
                    model = message.get("model") or model
                    tokens_in = (message.get("usage") or {}).get("input_tokens", tokens_in)
                elif kind == "content_block_delta":
                    delta = payload.get("delta") or {}
                    if delta.get("type") == "text_delta" and delta.get("text"):
                        text.append(delta["text"])
                        yield StreamEvent(delta=delta["text"], model=model)
                elif kind == "message_delta":
                    tokens_out = (payload.get("usage") or {}).get("output_tokens", tokens_out)
                elif kind == "message_stop":
                    stopped = True
                    break
        if not stopped:
            raise ProviderError("incomplete", "the stream ended without message_stop")
        prompt = body.get("system", "") + " ".join(t["content"] for t in body["messages"])
        yield StreamEvent(done=True, model=model, tokens_in=int(tokens_in or estimate_tokens(prompt)),
                          tokens_out=int(tokens_out or estimate_tokens("".join(text))))
