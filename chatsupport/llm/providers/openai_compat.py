"""OpenAI-compatible Chat Completions, streamed (OpenAI, Azure OpenAI, vLLM, Ollama, LM Studio, llama.cpp server).

``base_url`` is the API root the way the OpenAI SDK takes it (``https://api.openai.com/v1``,
``http://ollama:11434/v1``); ``/chat/completions`` is appended. Azure: give the deployment URL with its
``?api-version=…`` (``https://NAME.openai.azure.com/openai/deployments/DEPLOYMENT?api-version=2024-06-01``); the key
then goes in the ``api-key`` header. Usage counts come from ``stream_options.include_usage`` when the server honours
it; servers that ignore it get an estimate (4 characters a token) so the daily cap still counts something.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

from chatsupport.llm.base import ChatRequest, ProviderError, StreamEvent
from chatsupport.llm.privacy import mask_request
from chatsupport.llm.providers.http import CloudEndpoint, endpoint, parse_event, post_stream, sse_events

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = "gpt-4o-mini"


def estimate_tokens(text: str) -> int:
    return max(1, len(text) // 4) if text else 0


class OpenAICompatProvider(CloudEndpoint):
    """One configured endpoint. Cheap to build; each ``stream`` opens (and closes) its own guarded connection."""

    default_base_url, default_model = DEFAULT_BASE_URL, DEFAULT_MODEL

    def __init__(self, *args: Any, name: str = "openai", **kwargs: Any):
        super().__init__(*args, name=name, **kwargs)

    def _headers(self) -> dict[str, str]:
        if not self.api_key:
            return {}
        if (urlsplit(self.base_url).hostname or "").endswith(".openai.azure.com"):
            return {"api-key": self.api_key}
        return {"Authorization": f"Bearer {self.api_key}"}

    def _body(self, request: ChatRequest) -> dict[str, Any]:
        messages = [{"role": m.role, "content": m.content} for m in request.messages]
        if not messages:
            messages = [{"role": "user", "content": request.question}]
        return {"model": self.model, "messages": messages, "stream": True, "max_tokens": request.max_tokens,
                "temperature": request.temperature, "stream_options": {"include_usage": True}}

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        if self.mask_pii:
            request = mask_request(request)
        body = self._body(request)
        url = endpoint(self.base_url, "/chat/completions")
        text, model, usage, finished = [], self.model, None, False
        async with post_stream(self.allowlist, url, self._headers(), body, request.timeout_s) as chunks:
            async for _event, data in sse_events(chunks):
                if data.strip() == "[DONE]":
                    finished = True
                    break
                chunk = _parse(data)
                model = chunk.get("model") or model
                usage = chunk.get("usage") or usage
                for choice in chunk.get("choices") or []:
                    finished = finished or bool(choice.get("finish_reason"))
                    delta = (choice.get("delta") or {}).get("content")
                    if delta:
                        text.append(delta)
                        yield StreamEvent(delta=delta, model=model)
        if not finished:  # a connection cut mid-answer looks like a normal end of a close-delimited body
            raise ProviderError("incomplete", "the stream ended without [DONE] or a finish_reason")
        prompt = " ".join(str(m["content"]) for m in body["messages"])
        yield StreamEvent(done=True, model=model,
                          tokens_in=int((usage or {}).get("prompt_tokens") or estimate_tokens(prompt)),
                          tokens_out=int((usage or {}).get("completion_tokens") or estimate_tokens("".join(text))))


def _parse(data: str) -> dict[str, Any]:
    chunk = parse_event(data)
    if chunk.get("error"):
        raise ProviderError("upstream_error", str(chunk["error"])[:300])
    return chunk
