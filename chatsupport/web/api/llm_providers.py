"""``GET/PUT /api/v1/llm-providers``: the workspace's answer providers (chain order, cloud keys, daily token cap).

Owner and admin only (``workspace.settings``). Responses never contain an API key: ``api_key_set`` and the last
four characters (``api_key_hint``) are all that is shown.
"""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Request, get, put

from chatsupport.llm import provider_config
from chatsupport.llm.provider_config import ProvidersIn
from chatsupport.web.auth import actor_of, services_of
from chatsupport.web.permissions import requires


@get("/api/v1/llm-providers", **requires("workspace.settings"))
async def get_llm_providers(request: Request[Any, Any, Any]) -> dict[str, Any]:
    services = services_of(request)
    return await asyncio.to_thread(provider_config.view, services.db, services.settings,
                                   actor_of(request).workspace_id)


@put("/api/v1/llm-providers", **requires("workspace.settings"))
async def put_llm_providers(request: Request[Any, Any, Any], data: ProvidersIn) -> dict[str, Any]:
    """Replaces the list (its order is the chain order). ``api_key``: omit to keep, ``""`` to remove."""
    services = services_of(request)
    return await asyncio.to_thread(provider_config.update, services.db, services.settings, services.secret_key,
                                   actor_of(request), data)


ROUTES = [get_llm_providers, put_llm_providers]
