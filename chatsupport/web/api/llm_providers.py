"""``GET/PUT /api/v1/llm-providers``: the workspace's answer providers (chain order, cloud keys, daily token cap).

Owner and admin only (``workspace.settings``). Responses never contain an API key: ``api_key_set`` and the last
four characters (``api_key_hint``) are all that is shown. ``POST /api/v1/llm-providers/test`` makes one tiny call
through a provider and reports whether it answered, how fast, or what went wrong.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

import msgspec
from litestar import Request, get, post, put
from msgspec import Struct

from chatsupport.llm import provider_check, provider_config
from chatsupport.llm.provider_check import ProviderTestIn, ProviderTestOut
from chatsupport.llm.provider_config import ProvidersIn
from chatsupport.web.auth import actor_of, services_of
from chatsupport.web.permissions import requires


class ProviderOut(Struct):
    kind: Literal["local", "openai", "anthropic"]
    enabled: bool
    base_url: str | None
    model: str | None
    api_key_set: bool
    api_key_hint: str | None  # "…" and the key's last four characters
    first_token_timeout_s: float | None
    total_timeout_s: float | None


class ProviderUsage(Struct):
    provider: str
    requests: int
    tokens_in: int
    tokens_out: int


class UsageToday(Struct):
    day: str  # the UTC day the cap counts
    cloud_tokens: int
    by_provider: list[ProviderUsage]


class LocalModel(Struct):
    llama_cpp: str | None  # its version, or null when it cannot be imported
    available: bool
    model: str | None


class ProvidersOut(Struct):
    providers: list[ProviderOut]
    daily_token_cap: int | None  # null: the instance default (effective_daily_token_cap)
    effective_daily_token_cap: int
    usage_today: UsageToday
    local: LocalModel
    mask_pii: bool


@get("/api/v1/llm-providers", **requires("workspace.settings"))
async def get_llm_providers(request: Request[Any, Any, Any]) -> ProvidersOut:
    services = services_of(request)
    view = await asyncio.to_thread(provider_config.view, services.db, services.settings,
                                   actor_of(request).workspace_id)
    return msgspec.convert(view, ProvidersOut)


@put("/api/v1/llm-providers", **requires("workspace.settings"))
async def put_llm_providers(request: Request[Any, Any, Any], data: ProvidersIn) -> ProvidersOut:
    """Replaces the list (its order is the chain order). ``api_key``: omit to keep, ``""`` to remove."""
    services = services_of(request)
    view = await asyncio.to_thread(provider_config.update, services.db, services.settings, services.secret_key,
                                   actor_of(request), data)
    return msgspec.convert(view, ProvidersOut)


@post("/api/v1/llm-providers/test", status_code=200, **requires("workspace.settings"))
async def test_llm_provider(request: Request[Any, Any, Any], data: ProviderTestIn) -> ProviderTestOut:
    """One tiny real call (``ok`` false with ``error`` and ``message`` when it fails; still a 200: the test ran).
    Blank ``base_url``/``model`` and an absent ``api_key`` use the saved values; the saved key is sent only to the
    saved base URL."""
    services = services_of(request)
    return await provider_check.run(services.db, services.settings, services.secret_key, actor_of(request), data)


ROUTES = [get_llm_providers, put_llm_providers, test_llm_provider]
