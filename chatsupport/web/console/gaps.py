"""The console's knowledge-gaps page for one chatbot (PRD §5.4.4): what customers asked that the knowledge base
could not answer well, grouped by meaning, for a chosen period — with sample questions, the suggested action,
and a link that opens the FAQ form with the question filled in.

A GET with the period in the query string: it changes nothing and the URL can be shared. Grouping embeds the
questions, so it runs off the event loop.
"""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Request, Response, get

from chatsupport.domain.permissions import allowed
from chatsupport.llm import gaps
from chatsupport.web.auth import actor_of, services_of
from chatsupport.web.console.common import is_htmx, render
from chatsupport.web.console.knowledge import console_bot
from chatsupport.web.permissions import console_requires

PERIODS = {"7d": "Last 7 days", "30d": "Last 30 days", "90d": "Last 90 days"}


@get("/chatbots/{chatbot_id:str}/knowledge/gaps", include_in_schema=False, **console_requires("knowledge.view"))
async def gaps_page(request: Request[Any, Any, Any], chatbot_id: str, period: str = "30d") -> Response[Any]:
    bot = await console_bot(request, chatbot_id)
    services, actor = services_of(request), actor_of(request)
    chosen = period if period in PERIODS else "30d"
    try:
        report = await asyncio.to_thread(gaps.report, services.db, services.embedder, actor.workspace_id, bot["id"],
                                         chosen)
    except RuntimeError:  # the embedding model failed to load: say so instead of a bare 500
        report, problem = None, "Knowledge gaps need the embedding model, which is not available (see /readyz)."
    else:
        problem = None
    context = {"bot": bot, "report": report, "problem": problem, "period": chosen, "periods": PERIODS, "tab": "gaps",
               "base": f"/chatbots/{bot['id']}/knowledge/gaps", "knowledge_base": f"/chatbots/{bot['id']}/knowledge",
               "can_edit": allowed(actor.role, "knowledge.upload")}
    template = "knowledge/_gaps.html" if is_htmx(request) else "knowledge/gaps.html"
    return render(request, template, context)


ROUTES = [gaps_page]
