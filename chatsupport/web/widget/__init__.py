"""Everything a visitor's browser talks to: the loader, the frame, the WebSocket, the HTTP fallback and
attachments (docs/widget-protocol.md)."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from chatsupport.web.widget import assets, attachments, fallback, socket

ROUTES: list[ControllerRouterHandler] = [*assets.ROUTES, socket.widget_socket, *fallback.ROUTES,
                                         *attachments.ROUTES]
