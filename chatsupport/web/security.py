"""Headers every response carries (PRD §6.4) and the request id that ties a response to its log lines.

The console gets a CSP without 'unsafe-inline'. A handler may declare ``opt={"csp": …}`` to widen it (the local
API browser) or ``opt={"frame_ancestors": …}`` for pages that customers' sites frame (the widget), which then
get CSP ``frame-ancestors`` instead of ``X-Frame-Options: DENY``.
"""

from __future__ import annotations

import re
import uuid

from litestar.datastructures import MutableScopeHeaders
from litestar.types import Message, Scope

CONSOLE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
STATIC_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "X-XSS-Protection": "1; mode=block",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Permissions-Policy": "geolocation=(), microphone=(), camera=()",
}
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def request_id(scope: Scope) -> str:
    """The request's id: the caller's X-Request-ID when it looks sane, else a new one (kept in scope state)."""
    state = scope.setdefault("state", {})
    if "request_id" not in state:
        incoming = dict(scope.get("headers", [])).get(b"x-request-id", b"").decode("latin-1")
        state["request_id"] = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
    return state["request_id"]


async def add_security_headers(message: Message, scope: Scope) -> None:
    """``before_send`` hook: runs for every HTTP response, including 404s that matched no route."""
    if message["type"] != "http.response.start":
        return
    headers = MutableScopeHeaders.from_message(message)
    opt = getattr(scope.get("route_handler"), "opt", None) or {}
    for name, value in STATIC_HEADERS.items():
        headers.setdefault(name, value)
    headers["X-Request-ID"] = request_id(scope)
    csp = opt.get("csp", CONSOLE_CSP)
    ancestors = opt.get("frame_ancestors")
    if ancestors is not None:
        csp = csp.replace("frame-ancestors 'none'", f"frame-ancestors {ancestors}")
    else:
        headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Content-Security-Policy", csp)
