"""Workspace brand settings (owners and admins): name, logo, colours and the time zone reports and analytics use.

The logo form is read whole here, with a body cap a little above the 2 MB limit, so a 3 MB file is refused in
words on the page rather than by a bare 413; anything larger than the cap is cut off by the server. The logo is
served back with its sniffed type and ``nosniff``, only to signed-in members of the workspace.
"""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Request, Response, get, post

from chatsupport.domain import brand
from chatsupport.domain.chatbot_schema import timezones
from chatsupport.domain.permissions import AUTHENTICATED
from chatsupport.errors import AppError
from chatsupport.web.auth import actor_of, services_of
from chatsupport.web.console.common import checked_form, error_context, redirect, render
from chatsupport.web.permissions import console_requires

PAGE = {"include_in_schema": False}
LOGO_FORM_MAX = brand.LOGO_MAX_BYTES * 2
SAVED = {"1": "Workspace settings saved.", "logo": "Logo uploaded."}


async def _page(request: Request[Any, Any, Any], status: int = 200, **context: Any) -> Response[Any]:
    shown = await asyncio.to_thread(brand.view, services_of(request), actor_of(request))
    return render(request, "workspace/settings.html", {
        "workspace": {**shown, **context.pop("typed", {})}, "timezones": sorted(timezones()), "field_errors": {},
        **context}, status=status)


@get("/settings/workspace", **PAGE, **console_requires("workspace.settings"))
async def workspace_page(request: Request[Any, Any, Any], saved: str = "") -> Response[Any]:
    return await _page(request, notice=SAVED.get(saved))


@post("/settings/workspace", status_code=200, **PAGE, **console_requires("workspace.settings"))
async def workspace_save(request: Request[Any, Any, Any]) -> Response[Any]:
    form = await checked_form(request)
    typed = {key: str(form.get(key) or "").strip() for key in ("name", "primary_color", "secondary_color",
                                                                 "timezone")}
    try:
        await asyncio.to_thread(brand.update, services_of(request), actor_of(request), **typed)
    except AppError as exc:
        if exc.code != "validation_error":
            raise
        return await _page(request, status=exc.status, typed=typed, **error_context(exc))
    return redirect("/settings/workspace?saved=1")


@post("/settings/workspace/logo", status_code=200, request_max_body_size=LOGO_FORM_MAX, **PAGE,
      **console_requires("workspace.settings"))
async def logo_upload(request: Request[Any, Any, Any]) -> Response[Any]:
    form = await checked_form(request)
    upload = form.get("logo")
    try:
        if upload is None or not hasattr(upload, "read"):
            raise AppError("validation_error", "Choose a PNG or JPEG file.",
                           details=[{"field": "logo", "message": "Choose a PNG or JPEG file."}])
        data = await upload.read()
        await asyncio.to_thread(brand.save_logo, services_of(request), actor_of(request), data)
    except AppError as exc:
        return await _page(request, status=exc.status, **error_context(exc))
    return redirect("/settings/workspace?saved=logo")


@get("/settings/workspace/logo", **PAGE, **console_requires(AUTHENTICATED))
async def logo(request: Request[Any, Any, Any]) -> Response[bytes]:
    services, actor = services_of(request), actor_of(request)
    found = await asyncio.to_thread(brand.logo_file, services, actor.workspace_id)
    if found is None:
        raise AppError("not_found", "No logo uploaded.")
    path, content_type = found
    data = await asyncio.to_thread(path.read_bytes)
    return Response(data, media_type=content_type, headers={
        "X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-cache",
        "Content-Disposition": "inline; filename=logo." + path.suffix.lstrip(".")})


@get("/settings/workspace/brand.css", **PAGE, **console_requires(AUTHENTICATED))
async def brand_stylesheet(request: Request[Any, Any, Any]) -> Response[str]:
    """Linked from every console page (no inline styles under the CSP)."""
    db, workspace_id = services_of(request).db, actor_of(request).workspace_id
    css = await asyncio.to_thread(lambda: brand.stylesheet(db.reader(), workspace_id))
    return Response(css, media_type="text/css", headers={"Cache-Control": "private, no-cache",
                                                         "X-Content-Type-Options": "nosniff"})


ROUTES = [workspace_page, workspace_save, logo_upload, logo, brand_stylesheet]
