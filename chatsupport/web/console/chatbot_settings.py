"""A chatbot's settings tabs (general, business hours, AI, escalation, widget look, allowed sites, data collection,
behaviour) and its version history: each version's changes, a field-level diff against the current settings, and
rollback.

Every tab is declared in ``chatbot_forms`` and saved through ``chatbot_schema.parse_update`` and
``chatbots.update``, the API's own rules and domain call; a refused value comes back with its rule next to the
field. People who may not change the bot see the same page read-only.
"""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Request, Response, get, post

from chatsupport.domain import chatbots
from chatsupport.domain.chatbot_schema import timezones
from chatsupport.errors import AppError
from chatsupport.store import llm_usage
from chatsupport.web.api.chatbots import version_number
from chatsupport.web.auth import actor_of, services_of
from chatsupport.web.console.chatbot_forms import BLANK_CUSTOM_ROWS, CUSTOM_FIELD_TYPES, DAYS, SECTIONS, \
    check_section, read_section, value_at
from chatsupport.web.console.chatbots import BOT, PAGE, abilities, load_bot
from chatsupport.web.console.common import checked_form, error_context, redirect, render
from chatsupport.web.permissions import console_requires

SAVED = {"1": "Saved.", "cloned": "This is the copy. Its knowledge base starts empty: add documents or a website "
                                  "on the Knowledge page.", "rolledback": "Rolled back. This is now a new version."}
PROVIDER_KINDS = ("auto", "local", "openai", "anthropic", "extractive")


def _provider_rows(request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
    services, actor = services_of(request), actor_of(request)
    return list(llm_usage.list_providers(services.db, actor.workspace_id))


async def _settings_page(request: Request[Any, Any, Any], bot: dict[str, Any], slug: str, shown: dict[str, Any],
                         status: int = 200, **context: Any) -> Response[Any]:
    providers = await asyncio.to_thread(_provider_rows, request) if slug == "ai" else []
    custom = list(value_at(shown, "data_collection.custom_fields") or [])
    return render(request, "chatbots/settings.html", {
        "bot": bot, "shown": shown, "section": SECTIONS[slug], "sections": SECTIONS, "tab": slug,
        "value_at": value_at, "days": DAYS, "providers": providers, "provider_kinds": PROVIDER_KINDS,
        "custom_rows": custom + [{}] * BLANK_CUSTOM_ROWS, "custom_types": CUSTOM_FIELD_TYPES,
        "timezones": sorted(timezones()) if slug == "hours" else [], "field_errors": {}, **abilities(request),
        **context}, status=status)


def _section(slug: str) -> str:
    if slug not in SECTIONS:
        raise AppError("not_found", "No such settings page.")
    return slug


@get(BOT, **PAGE, **console_requires("chatbot.view"))
async def chatbot_home(request: Request[Any, Any, Any], chatbot_id: str) -> Response[Any]:
    bot = await load_bot(request, chatbot_id)
    return redirect(f"/chatbots/{bot['id']}/settings/general")


@get(BOT + "/settings/{section:str}", **PAGE, **console_requires("chatbot.view"))
async def settings_page(request: Request[Any, Any, Any], chatbot_id: str, section: str,
                        saved: str = "") -> Response[Any]:
    bot = await load_bot(request, chatbot_id)
    return await _settings_page(request, bot, _section(section), bot, notice=SAVED.get(saved))


@post(BOT + "/settings/{section:str}", status_code=200, **PAGE, **console_requires("chatbot.update"))
async def settings_save(request: Request[Any, Any, Any], chatbot_id: str, section: str) -> Response[Any]:
    bot = await load_bot(request, chatbot_id)
    slug = _section(section)
    form = await checked_form(request)
    try:
        update = check_section(SECTIONS[slug], form)
        await asyncio.to_thread(chatbots.update, services_of(request), actor_of(request), bot["id"], update)
    except AppError as exc:
        if exc.code not in ("validation_error", "already_exists", "conflict"):
            raise
        shown = chatbots.merge(bot, read_section(SECTIONS[slug], form)[0])
        return await _settings_page(request, bot, slug, shown, status=exc.status, **error_context(exc))
    return redirect(f"/chatbots/{bot['id']}/settings/{slug}?saved=1")


# --- versions ------------------------------------------------------------------------------------------------------
async def _versions_page(request: Request[Any, Any, Any], bot: dict[str, Any], status: int = 200,
                         **context: Any) -> Response[Any]:
    rows = await asyncio.to_thread(chatbots.versions, services_of(request), actor_of(request), bot["id"])
    return render(request, "chatbots/versions.html", {
        "bot": bot, "versions": rows, "tab": "versions", "sections": SECTIONS, **abilities(request), **context},
        status=status)


@get(BOT + "/versions", **PAGE, **console_requires("chatbot.view"))
async def versions_page(request: Request[Any, Any, Any], chatbot_id: str, saved: str = "") -> Response[Any]:
    return await _versions_page(request, await load_bot(request, chatbot_id), notice=SAVED.get(saved))


@get(BOT + "/versions/{version:str}", **PAGE, **console_requires("chatbot.view"))
async def version_page(request: Request[Any, Any, Any], chatbot_id: str, version: str) -> Response[Any]:
    """The changes a rollback to this version would make, field by field: now → then."""
    bot = await load_bot(request, chatbot_id)
    number = version_number(version)
    row = await asyncio.to_thread(chatbots.version, services_of(request), actor_of(request), bot["id"], number)
    offered = abilities(request)
    offered["can_update"] = offered["can_update"] and bot["status"] != "archived"
    return render(request, "chatbots/version.html", {"bot": bot, "row": row, "tab": "versions", "sections": SECTIONS,
                                                     **offered})


@post(BOT + "/versions/{version:str}/rollback", status_code=200, **PAGE, **console_requires("chatbot.update"))
async def rollback(request: Request[Any, Any, Any], chatbot_id: str, version: str) -> Response[Any]:
    bot = await load_bot(request, chatbot_id)
    number = version_number(version)
    await checked_form(request)
    try:
        await asyncio.to_thread(chatbots.rollback, services_of(request), actor_of(request), bot["id"], number)
    except AppError as exc:
        if exc.code not in ("already_exists", "conflict"):
            raise
        reason = "another chatbot now uses that version's name" if exc.code == "already_exists" else exc.message
        return await _versions_page(request, bot, status=exc.status,
                                    error=f"Version {number} was not restored: {reason}.".replace("..", "."))
    return redirect(f"/chatbots/{bot['id']}/versions?saved=rolledback")


ROUTES = [chatbot_home, settings_page, settings_save, versions_page, version_page, rollback]
