"""Settings → API keys (owners and admins): the list, a form that creates a key and shows it this once, revoke.

The page that shows a new key is the POST response itself (no redirect: the key exists nowhere else) and is sent
with ``Cache-Control: no-store`` so the browser keeps no copy of it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Request, Response, get, post

from chatsupport.domain import api_keys
from chatsupport.errors import AppError
from chatsupport.web.auth import actor_of, services_of
from chatsupport.web.console.common import checked_form, error_context, redirect, render
from chatsupport.web.permissions import console_requires, console_requires_found, found

PAGE = {"include_in_schema": False}
SAVED = {"revoked": "The key was revoked. Requests made with it are refused from now on."}
SCOPE_HELP = (("read", "Read", "look at conversations, knowledge, analytics (like a viewer)"),
              ("write", "Write", "also answer conversations and upload knowledge (like an agent)"),
              ("admin", "Admin", "also manage chatbots and workspace settings (like an admin)"))


async def _page(request: Request[Any, Any, Any], status: int = 200, **context: Any) -> Response[Any]:
    keys = await asyncio.to_thread(api_keys.list_keys, services_of(request), actor_of(request))
    return render(request, "settings/api_keys.html", {
        "keys": keys, "scope_help": SCOPE_HELP, "typed": {"name": "", "scopes": ["read"]}, "field_errors": {},
        **context}, status=status, headers={"Cache-Control": "no-store"})


@get("/settings/api-keys", **PAGE, **console_requires("api_key.manage"))
async def api_keys_page(request: Request[Any, Any, Any], saved: str = "") -> Response[Any]:
    return await _page(request, notice=SAVED.get(saved))


@post("/settings/api-keys", status_code=200, **PAGE, **console_requires("api_key.manage"))
async def api_key_create(request: Request[Any, Any, Any]) -> Response[Any]:
    form = await checked_form(request)
    typed = {"name": str(form.get("name") or ""), "scopes": (await request.form()).getall("scopes", [])}
    try:
        created = await asyncio.to_thread(api_keys.create, services_of(request), actor_of(request), typed["name"],
                                          typed["scopes"])
    except AppError as exc:
        if exc.code != "validation_error":
            raise
        return await _page(request, status=exc.status, typed=typed, **error_context(exc))
    return await _page(request, created=created, notice=f"API key “{created['name']}” created.")


key_found = found("key_id", api_keys.exists, "No such API key.")


@post("/settings/api-keys/{key_id:str}/revoke", status_code=200, **PAGE,
      **console_requires_found("api_key.manage", key_found))
async def api_key_revoke(request: Request[Any, Any, Any], key_id: str) -> Response[Any]:
    await checked_form(request)
    await asyncio.to_thread(api_keys.revoke, services_of(request), actor_of(request), key_id)
    return redirect("/settings/api-keys?saved=revoked")


ROUTES = [api_keys_page, api_key_create, api_key_revoke]
