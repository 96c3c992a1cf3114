"""The console's chatbots: the list, the create wizard (name → personality → business hours → greeting → done, with
a live preview of the real widget and the embed code), clone, archive (after a confirmation page) and restore.

A new owner lands in the wizard straight after ``/setup``. Every step is one short form that saves through the
same domain calls and rules as the API, so a step can be skipped and everything changed later in the settings.
Scope before CSRF: another workspace's ids are "not found" whatever the token says.
"""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Request, Response, get, post
from litestar.response import Template

from chatsupport.domain import brand, chatbots
from chatsupport.domain.chatbot_schema import RULES, ChatbotCreate, parse_update, timezones
from chatsupport.domain.permissions import allowed
from chatsupport.errors import AppError
from chatsupport.web.auth import actor_of, services_of
from chatsupport.web.console.chatbot_forms import DAYS, SECTIONS
from chatsupport.web.console.common import checked_form, error_context, redirect, render
from chatsupport.web.permissions import console_requires
from chatsupport.web.widget.assets import base_url

PAGE = {"include_in_schema": False}
BOT = "/chatbots/{chatbot_id:str}"
STEPS = ("personality", "hours", "greeting")
STEP_TITLES = {"name": "Name", "personality": "Personality", "hours": "Business hours", "greeting": "Greeting",
               "done": "Done"}
NOTICES = {"archived": "The chatbot was archived. It no longer answers on your site; restore it at any time.",
           "restored": "The chatbot was restored.", "created": "Your chatbot is ready."}
# the preview page is framed by the console itself, nowhere else
PREVIEW_OPT = {"frame_ancestors": "'self'"}


async def load_bot(request: Request[Any, Any, Any], chatbot_id: str) -> dict[str, Any]:
    """The bot as the API shows it (settings sections at the top level), or 404."""
    return await asyncio.to_thread(chatbots.get, services_of(request), actor_of(request), chatbot_id)


def abilities(request: Request[Any, Any, Any]) -> dict[str, bool]:
    """What the page offers: a role sees only the buttons it may use."""
    role = actor_of(request).role
    return {f"can_{action}": allowed(role, f"chatbot.{action}") for action in ("update", "create", "delete")}


def snippet(request: Request[Any, Any, Any], bot: dict[str, Any]) -> str:
    """The embed code with the address this browser reached us at (PUBLIC_URL when set)."""
    return chatbots.snippet(base_url(request), bot["public_key"])


# --- the list ------------------------------------------------------------------------------------------------------
@get("/chatbots", **PAGE, **console_requires("chatbot.view"))
async def chatbot_list(request: Request[Any, Any, Any], show: str = "current", notice: str = "") -> Response[Any]:
    status = "archived" if show == "archived" else "current"
    listed = await asyncio.to_thread(chatbots.search, services_of(request), actor_of(request), status, 1, 100)
    return render(request, "chatbots/list.html", {
        "bots": listed["data"], "show": status, "notice": NOTICES.get(notice), **abilities(request)})


# --- the wizard ----------------------------------------------------------------------------------------------------
def _wizard(request: Request[Any, Any, Any], step: str, bot: dict[str, Any] | None = None, status: int = 200,
            **context: Any) -> Template:
    steps = ("name", *STEPS, "done")
    return render(request, "chatbots/wizard.html", {
        "step": step, "steps": steps, "step_titles": STEP_TITLES, "number": steps.index(step) + 1, "bot": bot,
        "rules": RULES, "days": DAYS, "timezones": sorted(timezones()), "form": {}, "field_errors": {}, **context},
        status=status)


@get("/chatbots/new", **PAGE, **console_requires("chatbot.create"))
async def wizard_start(request: Request[Any, Any, Any]) -> Response[Any]:
    return _wizard(request, "name")


@post("/chatbots/new", status_code=200, **PAGE, **console_requires("chatbot.create"))
async def wizard_create(request: Request[Any, Any, Any]) -> Response[Any]:
    form = await checked_form(request)
    name = " ".join(str(form.get("name") or "").split())
    try:
        request_data = parse_create(name)
        bot = await asyncio.to_thread(chatbots.create, services_of(request), actor_of(request), request_data)
    except AppError as exc:
        return _wizard(request, "name", status=exc.status, form={"name": name}, **error_context(exc))
    return redirect(f"/chatbots/{bot['id']}/setup/personality")


def parse_create(name: str) -> ChatbotCreate:
    """The name step: only the name, checked by the same rule as the API."""
    parse_update({"name": name})
    return ChatbotCreate(name=name)


def _step_patch(step: str, form: dict[str, Any], timezone: str) -> dict[str, Any]:
    """The update one wizard step makes, in the API's shape."""
    if step == "personality":
        return {"personality": str(form.get("personality") or "")}
    if step == "greeting":
        return {"greeting_message": str(form.get("greeting_message") or ""),
                "widget_settings": {"button_text": str(form.get("button_text") or "").strip(),
                                    "theme": {"primary_color": str(form.get("primary_color") or "").upper()}}}
    hours = {"start": str(form.get("start") or "").strip(), "end": str(form.get("end") or "").strip()}
    return {"business_hours": {
        "enabled": form.get("mode") == "hours", "timezone": str(form.get("timezone") or timezone).strip(),
        "schedule": {day: dict(hours) if f"day.{day}" in form else None for day in DAYS}}}


def _next(bot: dict[str, Any], step: str) -> str:
    later = STEPS[STEPS.index(step) + 1:]
    return f"/chatbots/{bot['id']}/setup/{later[0] if later else 'done'}"


async def _timezone(request: Request[Any, Any, Any]) -> str:
    services, actor = services_of(request), actor_of(request)
    return await asyncio.to_thread(lambda: brand.timezone_of(services.db.reader(), actor.workspace_id))


@get(BOT + "/setup/{step:str}", **PAGE, **console_requires("chatbot.update"))
async def wizard_step(request: Request[Any, Any, Any], chatbot_id: str, step: str) -> Response[Any]:
    bot = await load_bot(request, chatbot_id)
    if step == "done":
        return await install_page(request, bot, wizard=True)
    if step not in STEPS:
        raise AppError("not_found", "No such step.")
    return _wizard(request, step, bot, workspace_timezone=await _timezone(request))


@post(BOT + "/setup/{step:str}", status_code=200, **PAGE, **console_requires("chatbot.update"))
async def wizard_save(request: Request[Any, Any, Any], chatbot_id: str, step: str) -> Response[Any]:
    bot = await load_bot(request, chatbot_id)
    if step not in STEPS:
        raise AppError("not_found", "No such step.")
    form = await checked_form(request)
    timezone = await _timezone(request)
    try:
        update = parse_update(_step_patch(step, form, timezone))
        await asyncio.to_thread(chatbots.update, services_of(request), actor_of(request), bot["id"], update)
    except AppError as exc:
        return _wizard(request, step, bot, status=exc.status, form=form, workspace_timezone=timezone,
                       **error_context(exc))
    return redirect(_next(bot, step))


# --- install: live preview and embed code --------------------------------------------------------------------------
async def install_page(request: Request[Any, Any, Any], bot: dict[str, Any], wizard: bool = False) -> Template:
    origin = base_url(request)
    blocked = bool(bot["allowed_origins"]) and origin not in bot["allowed_origins"]
    return render(request, "chatbots/install.html", {
        "bot": bot, "embed_code": snippet(request, bot), "wizard": wizard, "preview_blocked": blocked,
        "origin": origin, "tab": "install", "sections": SECTIONS, "steps": ("name", *STEPS, "done"),
        "step_titles": STEP_TITLES, "step": "done", "number": len(STEPS) + 2, **abilities(request)})


@get(BOT + "/install", **PAGE, **console_requires("chatbot.view"))
async def install(request: Request[Any, Any, Any], chatbot_id: str) -> Response[Any]:
    return await install_page(request, await load_bot(request, chatbot_id))


@get(BOT + "/preview", **PAGE, opt={**console_requires("chatbot.view")["opt"], **PREVIEW_OPT},
     guards=console_requires("chatbot.view")["guards"])
async def preview(request: Request[Any, Any, Any], chatbot_id: str) -> Response[Any]:
    """A stand-in for the customer's site: a page of ours that loads the real loader for this bot, so the
    preview is exactly what visitors get (the console frames it; no other site may)."""
    bot = await load_bot(request, chatbot_id)
    return render(request, "chatbots/preview.html", {"bot": bot}, headers={"Cache-Control": "no-store"})


# --- clone, archive, restore ---------------------------------------------------------------------------------------
@post(BOT + "/clone", status_code=200, **PAGE, **console_requires("chatbot.create"))
async def clone(request: Request[Any, Any, Any], chatbot_id: str) -> Response[Any]:
    bot = await load_bot(request, chatbot_id)
    await checked_form(request)
    copy = await asyncio.to_thread(chatbots.clone, services_of(request), actor_of(request), bot["id"], None)
    return redirect(f"/chatbots/{copy['id']}/settings/general?saved=cloned")


@get(BOT + "/archive", **PAGE, **console_requires("chatbot.delete"))
async def archive_page(request: Request[Any, Any, Any], chatbot_id: str) -> Response[Any]:
    """The confirmation: what archiving does, and the one button that does it."""
    return render(request, "chatbots/archive.html", {"bot": await load_bot(request, chatbot_id)})


@post(BOT + "/archive", status_code=200, **PAGE, **console_requires("chatbot.delete"))
async def archive(request: Request[Any, Any, Any], chatbot_id: str) -> Response[Any]:
    bot = await load_bot(request, chatbot_id)
    await checked_form(request)
    await asyncio.to_thread(chatbots.archive, services_of(request), actor_of(request), bot["id"])
    return redirect("/chatbots?notice=archived")


@post(BOT + "/restore", status_code=200, **PAGE, **console_requires("chatbot.delete"))
async def restore(request: Request[Any, Any, Any], chatbot_id: str) -> Response[Any]:
    bot = await load_bot(request, chatbot_id)
    await checked_form(request)
    try:
        await asyncio.to_thread(chatbots.restore, services_of(request), actor_of(request), bot["id"])
    except AppError as exc:
        if exc.code != "already_exists":
            raise
        listed = await asyncio.to_thread(chatbots.search, services_of(request), actor_of(request), "archived", 1, 100)
        return render(request, "chatbots/list.html", {
            "bots": listed["data"], "show": "archived", "error": "Another chatbot already uses this name. Rename "
            "that one first, then restore this one.", **abilities(request)}, status=exc.status)
    return redirect("/chatbots?notice=restored")


ROUTES = [chatbot_list, wizard_start, wizard_create, wizard_step, wizard_save, install, preview, clone, archive_page,
          archive, restore]
