"""``GET /api/v1/knowledge-base/gaps`` (PRD §5.4.4): grouped questions the knowledge base did not answer well."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, get
from litestar.params import Parameter

from chatsupport.domain.knowledge import require_chatbot
from chatsupport.llm import gaps
from chatsupport.web.api.knowledge_schemas import GapReport
from chatsupport.web.auth import actor_of, services_of
from chatsupport.web.permissions import requires


@get("/api/v1/knowledge-base/gaps", **requires("knowledge.view"))
async def knowledge_gaps(request: Request[Any, Any, Any],
                         chatbot_id: Annotated[str, Parameter(max_length=100)],
                         period: Literal["7d", "30d", "90d"] = "30d") -> GapReport:
    """Declined, low-confidence and thumbs-down questions grouped by meaning, with counts, samples and a
    suggested action. Another workspace's chatbot is "not found"."""
    services, actor = services_of(request), actor_of(request)

    def run() -> dict[str, Any]:
        require_chatbot(services.db.reader(), actor, chatbot_id)
        return gaps.report(services.db, services.embedder, actor.workspace_id, chatbot_id, period)

    return msgspec.convert(await asyncio.to_thread(run), GapReport)


ROUTES = [knowledge_gaps]
