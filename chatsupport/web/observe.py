"""The one hook every HTTP request passes: request id, access log line and the HTTP metrics.

It wraps the app's ASGI handler (inside ``before_send``, outside routing and the exception handlers), so it sees
404s that matched no route and the final status of error responses. Metrics are labelled with the route template
(``/api/v1/chatbots/{chatbot_id}``), never the raw path, so ids cannot blow up the number of series.
"""

from __future__ import annotations

import logging
import time

from litestar.types import ASGIApp, Message, Receive, Scope, Send

from chatsupport import metrics
from chatsupport.logs import REQUEST_ID
from chatsupport.web.security import request_id

access_log = logging.getLogger("chatsupport.access")
UNMATCHED = "unmatched"


def observe_requests(app: ASGIApp) -> ASGIApp:
    async def observed(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            token = REQUEST_ID.set(request_id(scope))
            try:
                await app(scope, receive, send)
            finally:
                REQUEST_ID.reset(token)
            return
        started = time.perf_counter()
        status = 500  # what the server reports when the handler dies before sending a response
        token = REQUEST_ID.set(request_id(scope))

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await app(scope, receive, send_observed)
        finally:
            elapsed = time.perf_counter() - started
            _record(scope, status, elapsed)
            REQUEST_ID.reset(token)

    return observed


def _record(scope: Scope, status: int, elapsed: float) -> None:
    method, route = scope["method"], scope.get("path_template") or UNMATCHED
    metrics.HTTP_REQUESTS.inc(method, route, f"{status // 100}xx")
    metrics.HTTP_LATENCY.observe(method, route, seconds=elapsed)
    if access_log.isEnabledFor(logging.INFO):
        access_log.info("%s %s %d %.1fms", method, scope["path"], status, elapsed * 1000,
                        extra={"method": method, "path": scope["path"], "route": route, "status": status,
                               "duration_ms": round(elapsed * 1000, 1)})
