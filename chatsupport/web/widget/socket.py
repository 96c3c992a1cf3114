"""``WebSocket /ws/widget?token=…``: the frame's real-time channel (docs/widget-protocol.md).

The socket is accepted first and then closed with the protocol's code, because a refusal before the handshake
reaches the browser as an anonymous 1006: 4401 bad or expired token, 4403 site not allowed (or the chatbot is
gone), 4429 over the workspace's connection cap. One task reads and dispatches frames in order; one writes
everything the connection receives, so sends never interleave.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any
from urllib.parse import urlsplit

from litestar import WebSocket, websocket
from litestar.exceptions import WebSocketDisconnect

from chatsupport import live, metrics
from chatsupport.domain import widget
from chatsupport.errors import AppError
from chatsupport.web.client import client_ip
from chatsupport.web.permissions import public
from chatsupport.web.widget.feed import Feed
from chatsupport.web.widget.runtime import runtime_of
from chatsupport.web.widget.session import VisitorSession

CLOSE_TOKEN, CLOSE_ORIGIN, CLOSE_BUSY = 4401, 4403, 4429


def same_site(socket: WebSocket[Any, Any, Any], visitor: widget.Visitor) -> bool:
    """The browser's Origin header: the appliance's own frame, or the host site the token names."""
    origin = socket.headers.get("origin")
    if origin is None:
        return True  # not a browser
    host = socket.headers.get("host", "")
    parts = urlsplit(origin)
    return parts.netloc.lower() == host.lower() or widget.normalise_origin(origin) == visitor.origin


@websocket("/ws/widget", **public())
async def widget_socket(socket: WebSocket[Any, Any, Any]) -> None:
    runtime = runtime_of(socket.app)
    await socket.accept()
    try:
        visitor = widget.read_token(runtime.secret, socket.query_params.get("token"))
        runtime.usable_bot(await runtime.bot(visitor.chatbot_id), visitor)
    except AppError as exc:
        await socket.close(CLOSE_TOKEN if exc.code == "widget_token_invalid" else CLOSE_ORIGIN, exc.message)
        return
    if not same_site(socket, visitor):
        await socket.close(CLOSE_ORIGIN, "This chat is not available on this website.")
        return
    if not runtime.connections.acquire(visitor.workspace_id):
        await socket.close(CLOSE_BUSY, AppError("too_many_connections").message)
        return
    feed = Feed(runtime.hub)
    writer = asyncio.create_task(_write(socket, feed))
    metrics.WIDGET_SOCKETS.inc()
    try:
        await feed.add(live.chatbot_channel(visitor.chatbot_id))
        ip = client_ip(socket.scope, runtime.services.settings.TRUSTED_PROXIES)
        session = VisitorSession(runtime, visitor, ip, feed.add)
        await _read(socket, session, feed)
    finally:
        metrics.WIDGET_SOCKETS.dec()
        runtime.connections.release(visitor.workspace_id)
        writer.cancel()
        await feed.close()
        with contextlib.suppress(Exception):
            await socket.close()


async def _read(socket: WebSocket[Any, Any, Any], session: VisitorSession, feed: Feed) -> None:
    while True:
        try:
            text = await socket.receive_text()
        except WebSocketDisconnect:
            return
        for answer in await session.handle_text(text):
            feed.send(answer)


async def _write(socket: WebSocket[Any, Any, Any], feed: Feed) -> None:
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            raw = await feed.queue.get()
            await socket.send_text(raw.decode())
