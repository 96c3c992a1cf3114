"""``/api/v1/presence``: the console's heartbeat and the team's presence (online, away, offline)."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from litestar import Request, get, post

from chatsupport.domain import presence
from chatsupport.domain.permissions import AUTHENTICATED
from chatsupport.web.api.conversation_schemas import HeartbeatRequest, HeartbeatResponse, PresenceList
from chatsupport.web.auth import actor_of, services_of
from chatsupport.web.permissions import requires


@post("/api/v1/presence", status_code=200, **requires(AUTHENTICATED))
async def heartbeat(request: Request[Any, Any, Any], data: HeartbeatRequest) -> HeartbeatResponse:
    """Sent by the console every ~30 s while open. Without one for two minutes a person shows as offline."""
    result = await asyncio.to_thread(presence.heartbeat, services_of(request), actor_of(request), data.status)
    return msgspec.convert(result, HeartbeatResponse)


@get("/api/v1/presence", **requires("team.view"))
async def team_presence(request: Request[Any, Any, Any]) -> PresenceList:
    result = await asyncio.to_thread(presence.team, services_of(request), actor_of(request))
    return msgspec.convert(result, PresenceList)


ROUTES = [heartbeat, team_presence]
