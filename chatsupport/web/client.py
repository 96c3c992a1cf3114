"""Who is on the other end: client IP and scheme, believing X-Forwarded-* only from trusted proxies."""

from __future__ import annotations

import ipaddress
from typing import Iterable

from litestar.types import Scope

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _trusted(address: str, proxies: Iterable[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in proxies)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


def client_ip(scope: Scope, proxies: tuple[Network, ...]) -> str:
    """The peer address, or — when the peer is a trusted proxy — the right-most untrusted X-Forwarded-For hop."""
    peer = (scope.get("client") or ("",))[0] or ""
    if not proxies or not _trusted(peer, proxies):
        return peer
    forwarded = _header(scope, b"x-forwarded-for")
    if not forwarded:
        return peer
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, proxies):
            return hop
    return hops[0] if hops else peer


def is_https(scope: Scope, proxies: tuple[Network, ...]) -> bool:
    if scope.get("scheme") in {"https", "wss"}:
        return True
    peer = (scope.get("client") or ("",))[0] or ""
    if proxies and _trusted(peer, proxies):
        return (_header(scope, b"x-forwarded-proto") or "").split(",")[0].strip().lower() == "https"
    return False
