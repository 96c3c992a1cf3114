"""``create_app(settings)``: plugins, lifespan and the one route list, read top to bottom."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Sequence

from litestar import Litestar, Router
from litestar.contrib.jinja import JinjaTemplateEngine
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.static_files import create_static_files_router
from litestar.template import TemplateConfig
from litestar.types import ControllerRouterHandler

from chatsupport import __version__, live
from chatsupport.config import Settings, load_settings
from chatsupport.domain.permissions import allowed
from chatsupport.logs import configure_logging
from chatsupport.resources import static_dir, templates_dir
from chatsupport.services import start_services
from chatsupport.web import health, metrics as metrics_web, pages
from chatsupport.web.api import analytics as analytics_api
from chatsupport.web.api import api_keys as api_keys_api
from chatsupport.web.api import answer_reviews as answer_reviews_api
from chatsupport.web.api import audit as audit_api
from chatsupport.web.api import auth as auth_api
from chatsupport.web.api import canned_responses as canned_api
from chatsupport.web.api import chatbots as chatbots_api
from chatsupport.web.api import conversation_actions as conversation_actions_api
from chatsupport.web.api import conversation_filters as conversation_filters_api
from chatsupport.web.api import conversations as conversations_api
from chatsupport.web.api import customers as customers_api
from chatsupport.web.api import exports as exports_api
from chatsupport.web.api import gaps as gaps_api
from chatsupport.web.api import integrations as integrations_api
from chatsupport.web.api import knowledge as knowledge_api
from chatsupport.web.api import knowledge_urls as knowledge_urls_api
from chatsupport.web.api import llm_providers as llm_providers_api
from chatsupport.web.api import mfa as mfa_api
from chatsupport.web.api import notifications as notifications_api
from chatsupport.web.api import presence as presence_api
from chatsupport.web.api import users as users_api
from chatsupport.web.api import webhooks as webhooks_api
from chatsupport.web.api import team as team_api
from chatsupport.web.auth import LoginRequired, login_redirect
from chatsupport.web.console import ai_settings as console_ai_settings
from chatsupport.web.console import api_keys as console_api_keys
from chatsupport.web.console import auth as console_auth
from chatsupport.web.console import dashboard as console_dashboard
from chatsupport.web.console import chatbot_settings as console_chatbot_settings
from chatsupport.web.console import chatbots as console_chatbots
from chatsupport.web.console import gaps as console_gaps
from chatsupport.web.console import inbox as console_inbox
from chatsupport.web.console import integrations as console_integrations
from chatsupport.web.console import knowledge as console_knowledge
from chatsupport.web.console import profile as console_profile
from chatsupport.web.console import privacy as console_privacy
from chatsupport.web.console import review as console_review
from chatsupport.web.console import security_settings as console_security
from chatsupport.web.console import sites as console_sites
from chatsupport.web.console import workspace as console_workspace
from chatsupport.web.console import audit as console_audit
from chatsupport.web.console import team as console_team
from chatsupport.web.console import instance as console_instance
from chatsupport.web.assets import static_url
from chatsupport.web.errors import EXCEPTION_HANDLERS, document_errors
from chatsupport.web.observe import observe_requests
from chatsupport.web.permissions import PUBLIC
from chatsupport.web.security import add_security_headers
from chatsupport.web import widget as widget_web
from chatsupport.web.widget.runtime import WidgetRuntime

log = logging.getLogger(__name__)

ROUTES: list[ControllerRouterHandler] = [
    health.healthz,
    health.readyz,
    *metrics_web.ROUTES,
    pages.index,
    pages.api_docs,
    # console: first run, sign-in, profile
    *console_auth.ROUTES,
    *console_profile.ROUTES,
    *console_chatbots.ROUTES,
    *console_chatbot_settings.ROUTES,
    *console_workspace.ROUTES,
    *console_integrations.ROUTES,
    *console_privacy.ROUTES,
    *console_security.ROUTES,
    *console_team.ROUTES,
    *console_instance.ROUTES,
    *console_audit.ROUTES,
    *console_api_keys.ROUTES,
    *console_ai_settings.ROUTES,
    *console_knowledge.ROUTES,
    *console_sites.ROUTES,
    *console_gaps.ROUTES,
    *console_review.ROUTES,
    *console_inbox.ROUTES,
    *console_dashboard.ROUTES,
    # API v1
    *auth_api.ROUTES,
    *mfa_api.ROUTES,
    *users_api.ROUTES,
    *team_api.ROUTES,
    *chatbots_api.ROUTES,
    *knowledge_api.ROUTES,
    *knowledge_urls_api.ROUTES,
    *gaps_api.ROUTES,
    *answer_reviews_api.ROUTES,
    *audit_api.ROUTES,
    *llm_providers_api.ROUTES,
    *api_keys_api.ROUTES,
    *conversations_api.ROUTES,
    *conversation_actions_api.ROUTES,
    *conversation_filters_api.ROUTES,
    *canned_api.ROUTES,
    *notifications_api.ROUTES,
    *exports_api.ROUTES,
    *customers_api.ROUTES,
    *presence_api.ROUTES,
    *analytics_api.ROUTES,
    *integrations_api.ROUTES,
    *webhooks_api.ROUTES,
    # the chat widget: loader, frame, WebSocket, HTTP fallback, attachments
    *widget_web.ROUTES,
    create_static_files_router(path="/static", directories=[static_dir()], opt={"permission": PUBLIC},
                               include_in_schema=False, cache_control=None),
]


def _templates() -> TemplateConfig:
    def configure(engine: JinjaTemplateEngine) -> None:
        engine.engine.globals["static_url"] = static_url
        engine.engine.globals["allowed"] = allowed  # templates hide what a role cannot do

    return TemplateConfig(directory=templates_dir(), engine=JinjaTemplateEngine, engine_callback=configure)


def create_app(settings: Settings | None = None, extra_routes: Sequence[ControllerRouterHandler] = (),
               **service_options: Any) -> Litestar:
    """Build the ASGI app. ``extra_routes`` lets tests mount a sample handler beside the real ones."""
    settings = settings or load_settings()
    hub = live.Hub()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        services = await asyncio.to_thread(start_services, settings, **service_options)
        app.state.services = services
        app.state.hub = hub
        hub.bind_loop(asyncio.get_running_loop())
        live.use(hub)
        app.state.widget = WidgetRuntime.start(services, hub)
        app.state.answer_engine = app.state.widget.engine
        # Start-up objects live as long as the process: a full collection walking them all froze the event loop
        # ~140 ms at 1,000 widget connections (issue 6 benchmarks).
        gc.freeze()
        log.info("ChatSupport %s ready to serve on %s (data in %s)", __version__, settings.base_url,
                 settings.data.root)
        try:
            yield
        finally:
            gc.unfreeze()  # tests start many apps in one process
            live.use(None)
            hub.bind_loop(None)
            await asyncio.to_thread(app.state.answer_engine.close)
            await asyncio.to_thread(services.stop)

    app = Litestar(
        route_handlers=[*ROUTES, *extra_routes],
        lifespan=[lifespan],
        plugins=[hub.plugin],
        exception_handlers={**EXCEPTION_HANDLERS, LoginRequired: login_redirect},  # type: ignore[dict-item]
        before_send=[add_security_headers],
        request_max_body_size=settings.MAX_BODY_BYTES,
        template_config=_templates(),
        openapi_config=OpenAPIConfig(
            title="ChatSupport API", version=__version__, path="/schema", render_plugins=[JsonRenderPlugin()],
            openapi_router=Router(path="/schema", route_handlers=[], opt={"permission": PUBLIC}),
        ),
        debug=False,
        logging_config=None,
    )
    # around routing and the exception handlers, like Litestar's own OpenTelemetry hook: sees every response
    app.asgi_handler = observe_requests(app.asgi_handler)
    document_errors(app)
    return app


def app_factory() -> Litestar:
    """Entry point for ``uvicorn --factory chatsupport.app:app_factory`` (settings from the environment)."""
    settings = load_settings()
    configure_logging(settings)
    return create_app(settings)
