"""The one way ChatSupport talks to other machines: an HTTP client behind the SSRF guard.

Built on httpcore with a network backend that is the guard itself: when httpcore opens a connection it asks the
backend for ``host:port``; the backend resolves the name once (through an injectable resolver), refuses if any
answer is not allowed (see ``addresses``) and connects to the vetted IP. Nothing resolves the name a second
time, so a DNS answer that changes between check and connect (rebinding) cannot slip through. TLS still uses the
URL's host name for SNI and certificate checks, and the ``Host`` header names it too.

Redirects are followed here, one hop at a time (at most ``max_redirects``), so every hop goes through the same
backend and is judged on its own. Only http and https; no proxies from the environment; a connect/read timeout
plus an overall deadline (a server dripping one byte a second cannot hold a worker forever); bodies are streamed
and the read stops as soon as it passes ``max_bytes`` (after decompression).
"""

from __future__ import annotations

import socket
import ssl
import time
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import quote, urljoin, urlsplit

import httpcore

from chatsupport import __version__
from chatsupport.net.addresses import Allowlist, Policy, Resolver, normalize_host, parse_ip_literal, \
    system_resolver
from chatsupport.net.errors import FetchTimeout, OutboundError, OutboundRefused, ResponseTooLarge, \
    TooManyRedirects

USER_AGENT = f"ChatSupportBot/{__version__} (self-hosted customer-support assistant; reads help pages)"
DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_BYTES = 5 * 1024 * 1024
DEFAULT_MAX_REDIRECTS = 5
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
CREDENTIAL_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})
DEFAULT_PORTS = {"http": 80, "https": 443}
URL_SAFE = "/?&=%:@!$'()*+,;~-._[]"

Connector = Callable[[str, int, "float | None", Any], httpcore.NetworkStream]


def direct_connect(ip: str, port: int, timeout: float | None, socket_options: Any) -> httpcore.NetworkStream:
    """Open a TCP connection to an address the guard has already vetted (an IP, never a name)."""
    return httpcore.SyncBackend().connect_tcp(ip, port, timeout=timeout, socket_options=socket_options)


class GuardedBackend(httpcore.NetworkBackend):
    """httpcore asks this backend for every new connection: vet first, then connect to the vetted address."""

    def __init__(self, policy: Policy, connector: Connector = direct_connect):
        self.policy = policy
        self.connector = connector

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        addresses = self.policy.vet(host, port)
        failure: Exception | None = None
        for address in addresses:
            try:
                return self.connector(str(address), port, timeout, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc  # try the next vetted address, like create_connection would
        raise failure or OutboundError(f"cannot connect to {host}")

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        raise OutboundRefused("unix sockets are not reachable from outbound requests", path)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


@dataclass(frozen=True)
class Target:
    """A URL split the way the guard needs it (scheme, host without brackets, port, request target)."""

    url: str
    scheme: str
    host: str
    port: int
    target: str

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"


def parse_target(url: str) -> Target:
    """Refuse anything but absolute http(s) URLs without credentials; IDN hosts become punycode."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise OutboundRefused(f"invalid URL {url!r}: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise OutboundRefused(f"only http and https URLs are fetched, not {scheme or 'relative'}: {url!r}")
    if parts.username is not None or parts.password is not None:
        raise OutboundRefused("URLs with user names or passwords are not fetched")
    host = normalize_host(parts.hostname or "")
    if not host:
        raise OutboundRefused(f"the URL {url!r} has no host")
    try:
        host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError as exc:
        raise OutboundRefused(f"invalid host name {host!r}") from exc
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    target = target if target.isascii() else quote(target, safe=URL_SAFE)
    return Target(url.strip(), scheme, host, port or DEFAULT_PORTS[scheme], target)


@dataclass
class OutboundResponse:
    url: str
    status: int
    headers: dict[str, str]
    content: bytes
    redirects: list[str] = field(default_factory=list)

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)

    @property
    def content_type(self) -> str:
        return self.header("content-type").split(";")[0].strip().lower()


class _Decoder:
    """gzip/deflate decoding that never produces more than ``limit`` bytes (a small bomb stays small)."""

    def __init__(self, encoding: str, limit: int):
        encoding = encoding.strip().lower()
        if encoding not in ("", "identity", "gzip", "x-gzip", "deflate"):
            raise OutboundError(f"unsupported content encoding {encoding!r}")
        self._zlib = zlib.decompressobj(wbits=47) if encoding not in ("", "identity") else None
        self.limit = limit

    def feed(self, chunk: bytes, produced: int) -> bytes:
        if self._zlib is None:
            return chunk
        room = self.limit - produced + 1
        try:
            data = self._zlib.decompress(chunk, room)
        except zlib.error as exc:
            raise OutboundError(f"corrupt compressed body: {exc}") from exc
        if self._zlib.unconsumed_tail:
            raise ResponseTooLarge(f"the response is larger than {self.limit} bytes")
        return data


class OutboundClient:
    """Guarded HTTP requests. One per job or thread of work; close it (or use ``with``) when done."""

    def __init__(self, allowlist: Iterable[str] = (), *, resolver: Resolver = system_resolver,
                 connector: Connector = direct_connect, timeout: float = DEFAULT_TIMEOUT,
                 max_bytes: int = DEFAULT_MAX_BYTES, max_redirects: int = DEFAULT_MAX_REDIRECTS,
                 user_agent: str = USER_AGENT, ssl_context: ssl.SSLContext | None = None):
        self.policy = Policy(Allowlist.parse(allowlist), resolver)
        self.timeout, self.max_bytes, self.max_redirects = timeout, max_bytes, max_redirects
        self.user_agent = user_agent
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context or ssl.create_default_context(), network_backend=GuardedBackend(self.policy, connector),
            max_connections=8, retries=0, http1=True, http2=False)

    def __enter__(self) -> "OutboundClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._pool.close()

    def is_allowlisted(self, url: str) -> bool:
        """True when the URL's host is named or contained in the allow-list (for politeness defaults)."""
        target = parse_target(url)
        address = parse_ip_literal(target.host)
        allow = self.policy.allowlist
        return allow.allows_host(target.host) or (address is not None and allow.allows_address(address))

    def check_url(self, url: str) -> None:
        """What can be judged without DNS (scheme, credentials, literal addresses, localhost): for form checks."""
        self.policy.check_literal(parse_target(url).host)

    def get(self, url: str, **kwargs: Any) -> OutboundResponse:
        return self.request("GET", url, **kwargs)

    def request(self, method: str, url: str, *, headers: Mapping[str, str] | None = None,
                content: bytes | None = None, timeout: float | None = None, max_bytes: int | None = None,
                max_redirects: int | None = None) -> OutboundResponse:
        """Send, following redirects hop by hop; raises an ``OutboundError`` subclass on any failure."""
        timeout = timeout or self.timeout
        deadline = time.monotonic() + 3 * timeout
        limit = max_bytes or self.max_bytes
        hops = self.max_redirects if max_redirects is None else max_redirects
        sent = {"User-Agent": self.user_agent, "Accept-Encoding": "gzip, deflate", **(headers or {})}
        redirects: list[str] = []
        while True:
            target = parse_target(url)
            response, location = self._exchange(method, target, sent, content, timeout, limit, deadline)
            if location is None:
                response.redirects = redirects
                return response
            if len(redirects) >= hops:
                raise TooManyRedirects(f"more than {hops} redirects starting at {redirects[0] if redirects else url}")
            redirects.append(url)
            method, content, sent = self._follow(method, response.status, target, parse_target(location), sent,
                                                 content)
            url = location

    @staticmethod
    def _follow(method: str, status: int, old: Target, new: Target, headers: Mapping[str, str],
                content: bytes | None) -> tuple[str, bytes | None, dict[str, str]]:
        """Browser rules: 303 (and 301/302 after POST) become GET; credentials never cross to another host."""
        if status == 303 or (status in (301, 302) and method == "POST"):
            method, content = "GET", None
        sent = dict(headers)
        if (old.scheme, old.host, old.port) != (new.scheme, new.host, new.port):
            sent = {k: v for k, v in sent.items() if k.lower() not in CREDENTIAL_HEADERS}
        return method, content, sent

    def _exchange(self, method: str, target: Target, headers: Mapping[str, str], content: bytes | None,
                  timeout: float, limit: int, deadline: float) -> tuple[OutboundResponse, str | None]:
        """One request/response. Returns the next URL instead of reading the body when it is a redirect."""
        url = httpcore.URL(scheme=target.scheme.encode(), host=target.host.encode("ascii"), port=target.port,
                           target=target.target.encode("ascii"))
        sent = [(b"Host", target.host_header.encode("ascii"))] + [(k.encode(), v.encode("latin-1", "replace"))
                                                                  for k, v in headers.items()]
        budget = max(0.1, min(timeout, deadline - time.monotonic()))
        extensions = {"timeout": {"connect": budget, "read": budget, "write": budget, "pool": budget}}
        try:
            with self._pool.stream(method, url, headers=sent, content=content, extensions=extensions) as raw:
                found = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in raw.headers}
                location = found.get("location")
                if raw.status in REDIRECT_STATUSES and location:
                    return OutboundResponse(target.url, raw.status, found, b""), urljoin(target.url, location.strip())
                body = self._read(raw, found, limit, deadline)
                return OutboundResponse(target.url, raw.status, found, body), None
        except httpcore.TimeoutException as exc:
            raise FetchTimeout(f"{target.url} timed out after {timeout:g}s") from exc
        except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.UnsupportedProtocol, ssl.SSLError,
                socket.error) as exc:
            raise OutboundError(f"{target.url}: {type(exc).__name__}: {exc}") from exc

    @staticmethod
    def _read(raw: httpcore.Response, headers: Mapping[str, str], limit: int, deadline: float) -> bytes:
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise ResponseTooLarge(f"the response is {declared} bytes, more than the {limit} allowed")
        decoder = _Decoder(headers.get("content-encoding", ""), limit)
        body = bytearray()
        for chunk in raw.iter_stream():
            body += decoder.feed(chunk, len(body))
            if len(body) > limit:
                raise ResponseTooLarge(f"the response is larger than {limit} bytes")
            if time.monotonic() > deadline:
                raise FetchTimeout("the response took too long to arrive")
        return bytes(body)


def client_for(settings: Any, **options: Any) -> OutboundClient:
    """An ``OutboundClient`` with the instance's allow-list (``settings.OUTBOUND_ALLOWLIST``)."""
    return OutboundClient(settings.OUTBOUND_ALLOWLIST, **options)
