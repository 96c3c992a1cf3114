"""Settings → AI providers (owners and admins): the workspace's provider chain, the cloud token cap with today's
usage, and a "Test connection" button per provider.

The form edits what ``PUT /api/v1/llm-providers`` edits, through the same domain call (``provider_config.update``):
one block per kind with "use it" and its place in the chain. The local model is always saved (on or off: off means
"auto" never uses it); a cloud provider that is switched off but has a URL, model or key keeps them (saved as
disabled), so turning it back on needs no retyping. A key field left blank keeps the saved key; "remove the saved
key" removes it. Keys are never shown, only their last four characters.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any, Mapping

import msgspec
from litestar import Request, Response, get, post
from msgspec import UNSET

from chatsupport.errors import AppError
from chatsupport.llm import provider_check, provider_config
from chatsupport.llm.provider_check import ProviderTestIn, ProviderTestOut
from chatsupport.llm.provider_config import ProvidersIn
from chatsupport.llm.providers.anthropic import DEFAULT_BASE_URL as ANTHROPIC_URL
from chatsupport.llm.providers.anthropic import DEFAULT_MODEL as ANTHROPIC_MODEL
from chatsupport.llm.providers.local import resolve_model
from chatsupport.llm.providers.openai_compat import DEFAULT_BASE_URL as OPENAI_URL
from chatsupport.llm.providers.openai_compat import DEFAULT_MODEL as OPENAI_MODEL
from chatsupport.web.auth import actor_of, services_of
from chatsupport.web.console.common import checked_form, error_context, is_htmx, redirect, render
from chatsupport.web.permissions import console_requires

PAGE = {"include_in_schema": False}
KINDS = ("local", "openai", "anthropic")
CLOUD = ("openai", "anthropic")
TITLES = {"local": "Local model", "openai": "OpenAI-compatible (OpenAI, Azure, Ollama, vLLM …)",
          "anthropic": "Anthropic"}
DEFAULTS = {"openai": (OPENAI_URL, OPENAI_MODEL), "anthropic": (ANTHROPIC_URL, ANTHROPIC_MODEL)}
TIMEOUTS = ("first_token_timeout_s", "total_timeout_s")
PATH = re.compile(r"providers\[(\d+)\]\.?(\w*)")


def _blocks(view: Mapping[str, Any], typed: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """One block per kind, in chain order (configured kinds first), with what the form shows."""
    saved = {p["kind"]: {**p, "position": i + 1} for i, p in enumerate(view["providers"])}
    local_default = not saved and view["local"]["available"]  # what "auto" does for a workspace with no settings
    blocks = []
    for kind in KINDS:
        row = saved.get(kind, {"kind": kind, "enabled": kind == "local" and local_default, "api_key_set": False,
                               "position": len(KINDS) + 1 + KINDS.index(kind)})
        block = {**row, "title": TITLES[kind], "cloud": kind in CLOUD, "defaults": DEFAULTS.get(kind)}
        if typed and kind in typed:
            block.update({k: v for k, v in typed[kind].items() if k != "api_key"})
        blocks.append(block)
    blocks.sort(key=lambda b: (_rank(str(b["position"])), KINDS.index(b["kind"])))
    return [{**block, "position": place} for place, block in enumerate(blocks, 1)]


def _rank(position: str) -> int:
    return int(position) if position.isdigit() else len(KINDS) * 2


def _local_facts(request: Request[Any, Any, Any]) -> dict[str, Any]:
    settings = services_of(request).settings
    path = resolve_model(settings)
    return {"path": str(path) if path else None, "configured": settings.LLM_MODEL,
            "models_dir": str(settings.models_path)}


async def _page(request: Request[Any, Any, Any], status: int = 200, typed: Mapping[str, Any] | None = None,
                **context: Any) -> Response[Any]:
    services, actor = services_of(request), actor_of(request)
    view = await asyncio.to_thread(provider_config.view, services.db, services.settings, actor.workspace_id)
    facts = await asyncio.to_thread(_local_facts, request)
    cap = typed.get("daily_token_cap", view["daily_token_cap"]) if typed else view["daily_token_cap"]
    return render(request, "settings/ai.html", {
        "view": view, "blocks": _blocks(view, typed), "local_model": facts, "cap": "" if cap is None else cap,
        "positions": range(1, len(KINDS) + 1), "field_errors": {}, "tests": {}, **context}, status=status)


@get("/settings/ai", **PAGE, **console_requires("workspace.settings"))
async def ai_page(request: Request[Any, Any, Any], saved: str = "") -> Response[Any]:
    return await _page(request, notice="AI providers saved." if saved else None)


def _typed(form: Mapping[str, Any]) -> dict[str, Any]:
    """The form as typed, by kind, to show again next to its errors."""
    typed: dict[str, Any] = {"daily_token_cap": str(form.get("daily_token_cap") or "").strip()}
    for kind in KINDS:
        typed[kind] = {"enabled": form.get(f"{kind}.enabled") == "1",
                       "position": str(form.get(f"{kind}.position") or "").strip()}
        for name in ("base_url", "model", *TIMEOUTS):
            if f"{kind}.{name}" in form:
                typed[kind][name] = str(form.get(f"{kind}.{name}") or "").strip()
        typed[kind]["remove_key"] = form.get(f"{kind}.remove_key") == "1"
        typed[kind]["api_key"] = str(form.get(f"{kind}.api_key") or "").strip()
    return typed


def _number(text: str, field: str, cast: type) -> Any:
    if not text:
        return None
    try:
        return cast(text)
    except ValueError:
        raise AppError("validation_error", details=[{"field": field, "message": "Enter a number."}]) from None


def _request(typed: Mapping[str, Any], view: Mapping[str, Any]) -> tuple[ProvidersIn, list[str]]:
    """The API request the form means, and the kinds in its order (to put errors back on the right block)."""
    saved = {p["kind"]: p for p in view["providers"]}
    chosen = []
    for kind in KINDS:
        block = typed[kind]
        keeps = kind == "local" or block.get("base_url") or block.get("model") or block["api_key"] \
            or (saved.get(kind, {}).get("api_key_set") and not block["remove_key"])
        if block["enabled"] or keeps:
            chosen.append((_rank(block["position"]), KINDS.index(kind), kind))
    order = [kind for _, _, kind in sorted(chosen)]
    providers = []
    for kind in order:
        block = typed[kind]
        item: dict[str, Any] = {"kind": kind, "enabled": block["enabled"]}
        for name in TIMEOUTS:
            item[name] = _number(block.get(name, ""), f"{kind}.{name}", float)
        if kind in CLOUD:
            item["base_url"], item["model"] = block.get("base_url") or None, block.get("model") or None
            if block["remove_key"]:
                item["api_key"] = ""
            elif block["api_key"]:
                item["api_key"] = block["api_key"]
        providers.append(item)
    body: dict[str, Any] = {"providers": providers,
                            "daily_token_cap": _number(typed["daily_token_cap"], "daily_token_cap", int)}
    try:
        return msgspec.convert(body, ProvidersIn), order
    except msgspec.ValidationError as exc:
        raise AppError("validation_error", details=[{"field": _field(str(exc), order),
                                                     "message": str(exc).split(" - at ")[0]}]) from None


def _field(path: str, order: list[str]) -> str:
    """``providers[1].base_url`` (the API's name for a field) → ``openai.base_url`` (the form's)."""
    match = PATH.search(path)
    if not match or int(match.group(1)) >= len(order):
        return "daily_token_cap" if "daily_token_cap" in path else "providers"
    kind = order[int(match.group(1))]
    return f"{kind}.{match.group(2)}" if match.group(2) else kind


@post("/settings/ai", status_code=200, **PAGE, **console_requires("workspace.settings"))
async def ai_save(request: Request[Any, Any, Any]) -> Response[Any]:
    services, actor = services_of(request), actor_of(request)
    typed = _typed(await checked_form(request))
    order: list[str] = []
    try:
        view = await asyncio.to_thread(provider_config.view, services.db, services.settings, actor.workspace_id)
        data, order = _request(typed, view)
        await asyncio.to_thread(provider_config.update, services.db, services.settings, services.secret_key, actor,
                                data)
    except AppError as exc:
        if exc.code not in ("validation_error", "url_not_allowed"):
            raise
        context = error_context(exc)
        context["field_errors"] = {_field(name, order) if name.startswith("providers") else name: message
                                   for name, message in context["field_errors"].items()}
        return await _page(request, status=exc.status, typed=typed, **context)
    return redirect("/settings/ai?saved=1")


@post("/settings/ai/test", status_code=200, **PAGE, **console_requires("workspace.settings"))
async def ai_test(request: Request[Any, Any, Any]) -> Response[Any]:
    """The ``test`` button's kind is tested with the values typed in its block (blank ones: the saved values)."""
    services, actor = services_of(request), actor_of(request)
    form = await checked_form(request)
    kind = str(form.get("test") or "")
    if kind not in KINDS:
        raise AppError("validation_error", details=[{"field": "test", "message": "Choose a provider to test."}])
    block = _typed(form)[kind]
    asked = ProviderTestIn(kind=kind, base_url=block.get("base_url") or None, model=block.get("model") or None,
                           api_key="" if block["remove_key"] else (block["api_key"] or UNSET))
    try:
        result = await provider_check.run(services.db, services.settings, services.secret_key, actor, asked)
    except AppError as exc:
        result = ProviderTestOut(kind=kind, ok=False, latency_ms=0, error=exc.code, message=exc.message)
    if is_htmx(request):
        return render(request, "settings/_ai_test.html", {"test": result})
    return await _page(request, typed=_typed(form), tests={kind: result})


ROUTES = [ai_page, ai_save, ai_test]
