"""``/settings/security``: require two-factor authentication for everyone in the workspace, see who uses it, and
reset a member's two-factor when they lose their phone and their recovery codes."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Request, Response, get, post

from chatsupport.domain import mfa
from chatsupport.errors import AppError
from chatsupport.web.auth import actor_of, services_of
from chatsupport.web.console.common import checked_form, error_context, redirect, render
from chatsupport.web.permissions import console_requires, console_requires_found, found

PAGE = {"include_in_schema": False}
SAVED = {"on": "Two-factor authentication is now required. Members without it set it up at their next sign-in.",
         "off": "Two-factor authentication is now optional.",
         "reset": "Two-factor authentication was reset. The member can sign in with the password and set it up "
                  "again."}


async def _page(request: Request[Any, Any, Any], status: int = 200, **context: Any) -> Response[Any]:
    services, actor = services_of(request), actor_of(request)
    members = await asyncio.to_thread(mfa.members, services, actor)
    own = await asyncio.to_thread(mfa.status, services, actor.user_id, actor.workspace_id)
    return render(request, "settings/security.html", {
        "members": members, "required": own.required, "own_enabled": own.enabled,
        "enrolled": sum(1 for m in members if m["mfa_since"]), **context}, status=status)


@get("/settings/security", **PAGE, **console_requires("workspace.settings"))
async def security_page(request: Request[Any, Any, Any], saved: str = "") -> Response[Any]:
    return await _page(request, notice=SAVED.get(saved))


@post("/settings/security", status_code=200, **PAGE, **console_requires("workspace.settings"))
async def security_save(request: Request[Any, Any, Any]) -> Response[Any]:
    try:
        form = await checked_form(request)
        require = form.get("require_mfa") == "on"
        await asyncio.to_thread(mfa.set_required, services_of(request), actor_of(request), require)
    except AppError as exc:
        return await _page(request, status=exc.status, **error_context(exc))
    return redirect(f"/settings/security?saved={'on' if require else 'off'}")


@post("/settings/security/members/{user_id:str}/reset-mfa", status_code=200, **PAGE,
      **console_requires_found("workspace.settings", found("user_id", mfa.member_exists, "No such member.")))
async def reset_member(request: Request[Any, Any, Any], user_id: str) -> Response[Any]:
    try:
        await checked_form(request)
        await asyncio.to_thread(mfa.reset, services_of(request), actor_of(request), user_id)
    except AppError as exc:
        return await _page(request, status=exc.status, **error_context(exc))
    return redirect("/settings/security?saved=reset")


ROUTES = [security_page, security_save, reset_member]
