"""``/settings/privacy`` (owners and admins): the retention policy, a customer found by e-mail to export,
anonymise or delete (the erasure asks for the customer's address typed again), and whole-workspace exports with
their progress (the list refreshes itself through htmx while one is being written)."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Request, Response, get, post
from litestar.response import File

from chatsupport.domain import customer_data, retention, workspace_export
from chatsupport.errors import AppError
from chatsupport.store import customer_data as customer_store
from chatsupport.tasks.retention import export_workspace
from chatsupport.web.api.exports import DOWNLOAD_HEADERS
from chatsupport.web.auth import actor_of, services_of
from chatsupport.web.console.common import checked_form, error_context, is_htmx, redirect, render
from chatsupport.web.permissions import console_requires, console_requires_found, found

PAGE = {"include_in_schema": False}
PERMISSION = "privacy.manage"
SAVED = {"retention": "Retention policy saved.", "export": "Workspace export started; it appears below when ready."}
MODE_WORDS = {"anonymize": "anonymised", "delete": "deleted"}


def _customer_found() -> dict[str, Any]:
    return console_requires_found(PERMISSION, found("customer_id", customer_data.exists, "Customer not found."))


def _export_found() -> dict[str, Any]:
    return console_requires_found(PERMISSION, found("export_id", workspace_export.exists, "Export not found."))


async def _page(request: Request[Any, Any, Any], status: int = 200, email: str = "", **context: Any) -> Response[Any]:
    services, actor = services_of(request), actor_of(request)
    policy = await asyncio.to_thread(retention.view, services, actor)
    exports = await asyncio.to_thread(workspace_export.listing, services, actor)
    customers, search_error = None, None
    if email:
        try:
            customers = await asyncio.to_thread(customer_data.find_by_email, services, actor, email)
        except AppError as exc:
            search_error = error_context(exc)["field_errors"].get("email") or exc.message
    return render(request, "settings/privacy.html", {
        "policy": {**policy, **context.pop("typed_policy", {})}, "exports": exports, "email": email,
        "customers": customers, "search_error": search_error, "field_errors": {}, **context}, status=status)


@get("/settings/privacy", **PAGE, **console_requires(PERMISSION))
async def privacy_page(request: Request[Any, Any, Any], saved: str = "", email: str = "") -> Response[Any]:
    return await _page(request, email=email.strip()[:254], notice=SAVED.get(saved))


@post("/settings/privacy/retention", status_code=200, **PAGE, **console_requires(PERMISSION))
async def save_retention(request: Request[Any, Any, Any]) -> Response[Any]:
    form = await checked_form(request)
    typed = {"action": str(form.get("action") or ""), "after_days": str(form.get("after_days") or "").strip()}
    try:
        await asyncio.to_thread(retention.update, services_of(request), actor_of(request), typed["action"],
                                typed["after_days"])
    except AppError as exc:
        if exc.code != "validation_error":
            raise
        return await _page(request, status=exc.status, typed_policy=typed, **error_context(exc))
    return redirect("/settings/privacy?saved=retention")


@get("/settings/privacy/customers/{customer_id:str}/export", **PAGE, **_customer_found())
async def export_customer(request: Request[Any, Any, Any], customer_id: str) -> Response[Any]:
    document = await asyncio.to_thread(customer_data.export, services_of(request), actor_of(request), customer_id)
    return Response(document, headers={**DOWNLOAD_HEADERS, "Content-Disposition":
                                       f'attachment; filename="customer-{customer_id[:8]}.json"'})


@post("/settings/privacy/customers/{customer_id:str}/erase", status_code=200, **PAGE, **_customer_found())
async def erase_customer(request: Request[Any, Any, Any], customer_id: str) -> Response[Any]:
    """The typed address must match the customer's: an erasure cannot be undone, a stray click must not do it."""
    form = await checked_form(request)
    services, actor = services_of(request), actor_of(request)
    mode, typed = str(form.get("mode") or ""), str(form.get("confirm") or "").strip()
    row = await asyncio.to_thread(lambda: customer_store.customer(services.db.reader(), actor.workspace_id,
                                                                  customer_id))
    email = (row or {}).get("email") or ""
    if mode not in customer_data.MODES:
        return await _page(request, status=422, email=email, error="Choose anonymise or delete.")
    if not typed or typed.lower() != email.lower():
        return await _page(request, status=422, email=email, erase_error={customer_id: (
            "Type the customer's e-mail address exactly to confirm.")})
    result = await asyncio.to_thread(customer_data.erase, services, actor, customer_id, mode)
    touched = result["touched"]
    return await _page(request, notice=(
        f"Customer {MODE_WORDS[mode]}: {touched['conversations']} conversations, {touched['messages']} messages, "
        f"{touched['attachments']} attachments."), summary=result)


@post("/settings/privacy/workspace-exports", status_code=200, **PAGE, **console_requires(PERMISSION))
async def start_workspace_export(request: Request[Any, Any, Any]) -> Response[Any]:
    await checked_form(request)
    try:
        result = await asyncio.to_thread(workspace_export.request, services_of(request), actor_of(request))
    except AppError as exc:
        return await _page(request, status=exc.status, error=exc.message)
    await asyncio.to_thread(export_workspace, result["export_id"])
    return redirect("/settings/privacy?saved=export")


@get("/settings/privacy/workspace-exports", **PAGE, **console_requires(PERMISSION))
async def workspace_exports(request: Request[Any, Any, Any]) -> Response[Any]:
    """The exports list alone (htmx polls it while an export is being written); the whole page otherwise."""
    if not is_htmx(request):
        return redirect("/settings/privacy")
    exports = await asyncio.to_thread(workspace_export.listing, services_of(request), actor_of(request))
    return render(request, "settings/_privacy_exports.html", {"exports": exports})


@get("/settings/privacy/workspace-exports/{export_id:str}/download", **PAGE, **_export_found())
async def download_workspace_export(request: Request[Any, Any, Any], export_id: str) -> File:
    path, filename = await asyncio.to_thread(workspace_export.file, services_of(request), actor_of(request),
                                             export_id)
    return File(path, filename=filename, media_type="application/zip", content_disposition_type="attachment",
                headers=DOWNLOAD_HEADERS)


ROUTES = [privacy_page, save_retention, export_customer, erase_customer, start_workspace_export, workspace_exports,
          download_workspace_export]
