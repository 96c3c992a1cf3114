"""``/api/v1/notifications``: the caller's own notifications (mentions, escalations, assignments) and their read
state. Live ones arrive as ``notification:new`` on the console's event stream."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import msgspec
from litestar import Request, get, post
from litestar.params import Parameter

from chatsupport.domain import notifications
from chatsupport.domain.permissions import AUTHENTICATED
from chatsupport.web.api.collaboration_schemas import NotificationPage, ReadNotificationsRequest, \
    ReadNotificationsResponse
from chatsupport.web.auth import actor_of, services_of
from chatsupport.web.permissions import requires


@get("/api/v1/notifications", **requires(AUTHENTICATED))
async def list_notifications(
        request: Request[Any, Any, Any], unread: bool = False,
        cursor: Annotated[str | None, Parameter(max_length=200,
                                                description="next_cursor of the previous page.")] = None,
        limit: Annotated[int, Parameter(ge=1, le=100)] = 20) -> NotificationPage:
    """Newest first, with the caller's ``unread_count``; ``unread=true`` lists only unread ones."""
    result = await asyncio.to_thread(notifications.listing, services_of(request), actor_of(request),
                                     unread_only=unread, cursor=cursor, limit=limit)
    return msgspec.convert(result, NotificationPage)


@post("/api/v1/notifications/read", status_code=200, **requires(AUTHENTICATED))
async def mark_read(request: Request[Any, Any, Any],
                    data: ReadNotificationsRequest | None = None) -> ReadNotificationsResponse:
    """``{"ids": [...]}`` marks those (ids that are not the caller's are ignored); no body or no ``ids``, all."""
    ids = data.ids if data is not None else None
    result = await asyncio.to_thread(notifications.mark_read, services_of(request), actor_of(request), ids)
    return msgspec.convert(result, ReadNotificationsResponse)


ROUTES = [list_notifications, mark_read]
