"""``/api/v1/users``: the workspace's people, role and status changes, and reset links an admin hands over when
the instance has no mail server. (Invitations and the team pages belong to the console.)"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from litestar import Request, get, patch, post

from chatsupport.domain import accounts, team
from chatsupport.web.api.schemas import LinkOut, UserList, UserOut, UserUpdate
from chatsupport.web.auth import actor_of, origin_of, services_of
from chatsupport.web.permissions import requires


@get("/api/v1/users", **requires("team.view"))
async def list_users(request: Request[Any, Any, Any]) -> UserList:
    rows = await asyncio.to_thread(team.list_users, services_of(request), actor_of(request))
    return UserList(data=msgspec.convert(rows, list[UserOut]))


@get("/api/v1/users/{user_id:str}", **requires("team.view"))
async def get_user(request: Request[Any, Any, Any], user_id: str) -> UserOut:
    return msgspec.convert(await asyncio.to_thread(team.get_user, services_of(request), actor_of(request), user_id),
                           UserOut)


@patch("/api/v1/users/{user_id:str}", **requires("team.manage"))
async def update_user(request: Request[Any, Any, Any], user_id: str, data: UserUpdate) -> UserOut:
    """Change ``role`` and/or ``status``. Deactivating ends every session of the user at once."""
    row = await asyncio.to_thread(team.update_user, services_of(request), actor_of(request), user_id, data.role,
                                  data.status)
    return msgspec.convert(row, UserOut)


@post("/api/v1/users/{user_id:str}/reset-link", status_code=201, **requires("team.manage"))
async def reset_link(request: Request[Any, Any, Any], user_id: str) -> LinkOut:
    """A one-hour password-reset link for a user of this workspace, to pass on by hand."""
    link = await asyncio.to_thread(accounts.issue_link, services_of(request), "", "reset_password",
                                   origin_of(request), actor_of(request), user_id)
    return msgspec.convert(link, LinkOut)


ROUTES = [list_users, get_user, update_user, reset_link]
