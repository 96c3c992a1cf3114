"""Streaming HTTP for cloud providers, behind the same SSRF guard as every other outbound call.

``chatsupport.net.outbound`` is synchronous and reads whole bodies; a model answer must stream. This is its async
twin built on the same pieces: ``parse_target`` refuses non-http(s) URLs and embedded credentials, and an httpcore
``AsyncNetworkBackend`` asks the same ``Policy`` (with the instance's ``OUTBOUND_ALLOWLIST``) to resolve and vet
the host once, then connects to the vetted IP. No redirects are followed: an API endpoint that redirects a POST is
misconfigured, and following it would send the key elsewhere.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Iterable, Mapping

import httpcore

from chatsupport import __version__
from chatsupport.llm.base import ProviderError
from chatsupport.net.addresses import Allowlist, Policy
from chatsupport.net.errors import OutboundError, OutboundRefused
from chatsupport.net.outbound import parse_target

USER_AGENT = f"ChatSupport/{__version__}"
ERROR_BODY_LIMIT = 16 * 1024


class GuardedAsyncBackend(httpcore.AsyncNetworkBackend):
    """Vet ``host:port`` with the outbound policy (DNS once, in a thread), then connect to the vetted address."""

    def __init__(self, policy: Policy):
        self.policy = policy
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                          socket_options: Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
        addresses = await asyncio.to_thread(self.policy.vet, host, port)
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(str(address), port, timeout=timeout,
                                                     socket_options=socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        raise failure or OutboundError(f"cannot connect to {host}")

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
        raise OutboundRefused("unix sockets are not reachable from outbound requests", path)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def endpoint(base_url: str, path: str) -> str:
    """``base_url`` + ``path``, keeping a query string on the base (Azure's ``?api-version=…``)."""
    base, _, query = base_url.partition("?")
    return base.rstrip("/") + path + (f"?{query}" if query else "")


@asynccontextmanager
async def post_stream(allowlist: Iterable[str], url: str, headers: Mapping[str, str], body: dict[str, Any],
                      timeout: float) -> AsyncIterator[AsyncIterator[bytes]]:
    """POST JSON and yield the response body as it arrives; any HTTP or network failure is a ``ProviderError``."""
    try:
        target = parse_target(url)
    except OutboundRefused as exc:
        raise ProviderError("url_not_allowed", str(exc)) from exc
    pool = httpcore.AsyncConnectionPool(ssl_context=ssl.create_default_context(), retries=0, http1=True,
                                        http2=False, network_backend=GuardedAsyncBackend(
                                            Policy(Allowlist.parse(allowlist))))
    sent = {"User-Agent": USER_AGENT, "Content-Type": "application/json", "Accept": "text/event-stream",
            "Host": target.host_header, **headers}
    extensions = {"timeout": {"connect": timeout, "read": timeout, "write": timeout, "pool": timeout}}
    try:
        async with pool.stream("POST", url, headers=list(sent.items()), content=json.dumps(body).encode(),
                               extensions=extensions) as response:
            if response.status >= 400:
                detail = await _read_some(response)
                raise ProviderError(f"http_{response.status}", detail[:300])
            yield response.aiter_stream()
    except OutboundRefused as exc:
        raise ProviderError("url_not_allowed", str(exc)) from exc
    except httpcore.TimeoutException as exc:
        raise ProviderError("timeout", f"{target.url}: {type(exc).__name__}") from exc
    except (OutboundError, httpcore.NetworkError, httpcore.ProtocolError, httpcore.UnsupportedProtocol,
            ssl.SSLError, OSError) as exc:
        raise ProviderError("network", f"{target.url}: {type(exc).__name__}: {exc}") from exc
    finally:
        await pool.aclose()


async def _read_some(response: httpcore.Response) -> str:
    body = bytearray()
    async for chunk in response.aiter_stream():
        body += chunk
        if len(body) > ERROR_BODY_LIMIT:
            break
    return body.decode("utf-8", "replace")


async def sse_events(chunks: AsyncIterator[bytes]) -> AsyncIterator[tuple[str, str]]:
    """Server-sent events as (event name, data) pairs; ``data`` lines of one event are joined with newlines."""
    buffer = b""
    event, data = "", []
    async for chunk in chunks:
        buffer += chunk
        while True:
            line, sep, rest = buffer.partition(b"\n")
            if not sep:
                break
            buffer = rest
            text = line.decode("utf-8", "replace").rstrip("\r")
            if not text:
                if data:
                    yield event or "message", "\n".join(data)
                event, data = "", []
            elif text.startswith("event:"):
                event = text[6:].strip()
            elif text.startswith("data:"):
                data.append(text[5:].removeprefix(" "))
    if data:
        yield event or "message", "\n".join(data)


class CloudEndpoint:
    """What every cloud provider is configured with: one endpoint, model and key, reached through the guard.
    Subclasses set their defaults and speak their vendor's streaming protocol."""

    cloud = True
    default_base_url = ""
    default_model = ""

    def __init__(self, base_url: str = "", model: str = "", api_key: str = "", *,
                 allowlist: Iterable[str] = (), mask_pii: bool = True, name: str = ""):
        self.name = name or type(self).__name__
        self.base_url = base_url or self.default_base_url
        self.model = model or self.default_model
        self.api_key = api_key
        self.allowlist = tuple(allowlist)
        self.mask_pii = mask_pii


def parse_event(data: str) -> dict[str, Any]:
    """One server-sent event's JSON object; anything else means the peer does not speak the protocol."""
    try:
        payload = json.loads(data)
    except ValueError as exc:
        raise ProviderError("bad_response", f"not JSON: {data[:100]!r}") from exc
    if not isinstance(payload, dict):
        raise ProviderError("bad_response", "a stream event is not an object")
    return payload
