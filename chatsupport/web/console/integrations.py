"""Settings → Integrations (owners and admins): the mail server, the transcript email, Slack, and outgoing
webhooks with their delivery log. Plain forms (each posts, then the page comes back with a notice or the
error in words); destructive ones ask first (``data-confirm``). A webhook's secret is shown right after it is
created and again only on an explicit, audited "reveal"."""

from __future__ import annotations

import asyncio
from typing import Any, Callable

from litestar import Request, Response, get, post

from chatsupport.domain import integrations, webhooks
from chatsupport.domain.events import EVENTS
from chatsupport.errors import AppError
from chatsupport.tasks.webhooks import deliver_webhook
from chatsupport.web.auth import actor_of, services_of
from chatsupport.web.console.common import checked_form, error_context, redirect, render
from chatsupport.web.permissions import console_requires, console_requires_found, found

PAGE = {"include_in_schema": False}
PERMISSION = "integrations.manage"
BASE = "/settings/integrations"
HOOK = f"{BASE}/webhooks/{{webhook_id:str}}"
NOTICES = {"smtp": "Mail server saved: the next email uses it.", "smtp-cleared": "Back to the environment's mail "
           "settings.", "transcripts": "Transcript email setting saved.", "slack": "Slack connected.",
           "slack-removed": "Slack disconnected.", "webhook": "Webhook saved.", "webhook-deleted": "Webhook deleted.",
           "redelivered": "Delivery queued again."}
# What a form failure looks like on the page rather than as an error page.
SHOWN_ERRORS = frozenset({"validation_error", "url_not_allowed", "integration_failed", "mail_not_configured",
                          "conflict"})


def _hook_exists(services: Any, actor: Any, webhook_id: str) -> bool:
    return webhooks.exists(services, actor, webhook_id)


def hook_route() -> dict[str, Any]:
    return console_requires_found(PERMISSION, found("webhook_id", _hook_exists, "Webhook not found."))


async def _page(request: Request[Any, Any, Any], status: int = 200, **context: Any) -> Response[Any]:
    services, actor = services_of(request), actor_of(request)
    shown = await asyncio.to_thread(integrations.view, services, actor)
    hooks = await asyncio.to_thread(webhooks.listing, services, actor)
    return render(request, "settings/integrations.html", {
        **shown, "webhooks": hooks["data"], "events": EVENTS, "field_errors": {}, "typed": {}, **context},
        status=status)


async def _hook_page(request: Request[Any, Any, Any], webhook_id: str, status: int = 200,
                     **context: Any) -> Response[Any]:
    services, actor = services_of(request), actor_of(request)
    hook = await asyncio.to_thread(webhooks.get, services, actor, webhook_id)
    log = await asyncio.to_thread(webhooks.deliveries, services, actor, webhook_id, 1, 100)
    seen: set[str] = set()
    for row in log["data"]:  # the newest try of each delivery carries its "redeliver" button
        row["latest"] = row["delivery_id"] not in seen
        seen.add(row["delivery_id"])
    return render(request, "settings/webhook.html", {"hook": hook, "deliveries": log["data"], "events": EVENTS,
                                                     "field_errors": {}, **context}, status=status)


async def _attempt(request: Request[Any, Any, Any], fn: Callable[..., Any], *args: Any,
                   **kwargs: Any) -> tuple[Any, AppError | None]:
    try:
        return await asyncio.to_thread(fn, services_of(request), actor_of(request), *args, **kwargs), None
    except AppError as exc:
        if exc.code not in SHOWN_ERRORS:
            raise
        return None, exc


@get(BASE, **PAGE, **console_requires(PERMISSION))
async def integrations_page(request: Request[Any, Any, Any], saved: str = "") -> Response[Any]:
    return await _page(request, notice=NOTICES.get(saved))


@post(f"{BASE}/smtp", status_code=200, **PAGE, **console_requires(PERMISSION))
async def smtp_save(request: Request[Any, Any, Any]) -> Response[Any]:
    form = await checked_form(request)
    typed: dict[str, Any] = {key: str(form.get(key) or "").strip() for key in ("host", "port", "username", "sender")}
    typed["starttls"] = bool(form.get("starttls"))
    password = str(form.get("password") or "")
    try:
        port = int(typed["port"] or 587)
    except ValueError:
        port = 0
    _, problem = await _attempt(request, integrations.save_smtp, host=typed["host"], port=port,
                                username=typed["username"], sender=typed["sender"], starttls=typed["starttls"],
                                password="" if form.get("remove_password") else password or None)
    if problem:
        return await _page(request, status=problem.status, typed=typed, section="smtp", **error_context(problem))
    return redirect(f"{BASE}?saved=smtp")


@post(f"{BASE}/smtp/clear", status_code=200, **PAGE, **console_requires(PERMISSION))
async def smtp_clear(request: Request[Any, Any, Any]) -> Response[Any]:
    await checked_form(request)
    await asyncio.to_thread(integrations.clear_smtp, services_of(request), actor_of(request))
    return redirect(f"{BASE}?saved=smtp-cleared")


@post(f"{BASE}/smtp/test", status_code=200, **PAGE, **console_requires(PERMISSION))
async def smtp_test(request: Request[Any, Any, Any]) -> Response[Any]:
    form = await checked_form(request)
    sent, problem = await _attempt(request, integrations.test_smtp, str(form.get("to") or ""))
    if problem:
        return await _page(request, status=problem.status, section="smtp", **error_context(problem))
    return await _page(request, notice=f"Test email sent to {sent['sent_to']} "
                                       f"through {sent['host']}.")


@post(f"{BASE}/transcripts", status_code=200, **PAGE, **console_requires(PERMISSION))
async def transcripts_save(request: Request[Any, Any, Any]) -> Response[Any]:
    form = await checked_form(request)
    await asyncio.to_thread(integrations.set_transcript_email, services_of(request), actor_of(request),
                            bool(form.get("transcript_email")))
    return redirect(f"{BASE}?saved=transcripts")


@post(f"{BASE}/slack", status_code=200, **PAGE, **console_requires(PERMISSION))
async def slack_save(request: Request[Any, Any, Any]) -> Response[Any]:
    form = await checked_form(request)
    _, problem = await _attempt(request, integrations.save_slack, str(form.get("webhook_url") or ""))
    if problem:
        return await _page(request, status=problem.status, section="slack", **error_context(problem))
    return redirect(f"{BASE}?saved=slack")


@post(f"{BASE}/slack/remove", status_code=200, **PAGE, **console_requires(PERMISSION))
async def slack_remove(request: Request[Any, Any, Any]) -> Response[Any]:
    await checked_form(request)
    await asyncio.to_thread(integrations.remove_slack, services_of(request), actor_of(request))
    return redirect(f"{BASE}?saved=slack-removed")


@post(f"{BASE}/slack/test", status_code=200, **PAGE, **console_requires(PERMISSION))
async def slack_test(request: Request[Any, Any, Any]) -> Response[Any]:
    await checked_form(request)
    _, problem = await _attempt(request, integrations.test_slack)
    if problem:
        return await _page(request, status=problem.status, section="slack", **error_context(problem))
    return await _page(request, notice="Test message posted to Slack.")


def _hook_form(form: dict[str, Any], multi: Any) -> dict[str, Any]:
    """``multi``: the raw form, for the repeated ``events`` checkboxes (``form`` keeps one value per name)."""
    return {"url": str(form.get("url") or "").strip(), "description": str(form.get("description") or "").strip(),
            "events": [e for e in multi.getall("events", []) if isinstance(e, str)],
            "enabled": bool(form.get("enabled"))}


@post(f"{BASE}/webhooks", status_code=200, **PAGE, **console_requires(PERMISSION))
async def webhook_create(request: Request[Any, Any, Any]) -> Response[Any]:
    form = await checked_form(request)
    typed = _hook_form(form, await request.form())
    created, problem = await _attempt(request, webhooks.create, **typed)
    if problem:
        return await _page(request, status=problem.status, typed=typed, section="webhooks", **error_context(problem))
    return await _page(request, status=201, created=created,
                       notice="Webhook created. Copy its secret now: receivers use it to check signatures.")


@get(HOOK, **PAGE, **hook_route())
async def webhook_page(request: Request[Any, Any, Any], webhook_id: str, saved: str = "") -> Response[Any]:
    return await _hook_page(request, webhook_id, notice=NOTICES.get(saved))


@post(HOOK, status_code=200, **PAGE, **hook_route())
async def webhook_update(request: Request[Any, Any, Any], webhook_id: str) -> Response[Any]:
    form = await checked_form(request)
    typed = _hook_form(form, await request.form())
    _, problem = await _attempt(request, webhooks.update, webhook_id, **typed)
    if problem:
        return await _hook_page(request, webhook_id, status=problem.status, typed=typed, **error_context(problem))
    return redirect(f"{BASE}/webhooks/{webhook_id}?saved=webhook")


@post(f"{HOOK}/delete", status_code=200, **PAGE, **hook_route())
async def webhook_delete(request: Request[Any, Any, Any], webhook_id: str) -> Response[Any]:
    await checked_form(request)
    await asyncio.to_thread(webhooks.delete, services_of(request), actor_of(request), webhook_id)
    return redirect(f"{BASE}?saved=webhook-deleted")


@post(f"{HOOK}/secret", status_code=200, **PAGE, **hook_route())
async def webhook_reveal(request: Request[Any, Any, Any], webhook_id: str) -> Response[Any]:
    await checked_form(request)
    revealed, problem = await _attempt(request, webhooks.reveal_secret, webhook_id)
    if problem:
        return await _hook_page(request, webhook_id, status=problem.status, **error_context(problem))
    return await _hook_page(request, webhook_id, secret=revealed["secret"])


@post(f"{HOOK}/deliveries/{{delivery_id:str}}/redeliver", status_code=200, **PAGE, **hook_route())
async def webhook_redeliver(request: Request[Any, Any, Any], webhook_id: str, delivery_id: str) -> Response[Any]:
    await checked_form(request)
    _, problem = await _attempt(request, webhooks.redeliver, webhook_id, delivery_id)
    if problem:
        return await _hook_page(request, webhook_id, status=problem.status, **error_context(problem))
    deliver_webhook(delivery_id)
    return redirect(f"{BASE}/webhooks/{webhook_id}?saved=redelivered")


ROUTES = [integrations_page, smtp_save, smtp_clear, smtp_test, transcripts_save, slack_save, slack_remove,
          slack_test, webhook_create, webhook_page, webhook_update, webhook_delete, webhook_reveal, webhook_redeliver]
