"""Analytics API: the dashboard (PRD §5.6.1), per-chatbot analytics (§5.2.3), metric exports (CSV, JSON, PDF) and
the scheduled report setting (§5.6.2). Every number comes from the rollups (``domain.analytics``)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

import msgspec

from litestar import Request, Response, get, post, put
from litestar.params import Parameter
from msgspec import Meta, Struct

from chatsupport.domain import analytics_views, reports
from chatsupport.net.mail import mail_configured
from chatsupport.tasks.analytics import send_analytics_report
from chatsupport.web.api.exports import DOWNLOAD_HEADERS
from chatsupport.web.auth import actor_of, services_of
from chatsupport.web.permissions import requires

PeriodName = Annotated[str, Parameter(max_length=20)]
LocalDate = Annotated[str, Parameter(max_length=10)]
ChatbotId = Annotated[str, Parameter(max_length=100)]
Email = Annotated[str, Meta(max_length=254)]


class ReportSettings(Struct, forbid_unknown_fields=True):
    frequency: Literal["off", "weekly", "monthly"]
    recipients: Annotated[list[Email], Meta(max_length=reports.MAX_RECIPIENTS)]


class AnalyticsPeriod(Struct):
    start: str
    end: str
    timezone: str
    first_day: str
    last_day: str
    preset: str | None = None


class Dashboard(Struct):
    """The top level is typed; the sections are documented in docs/analytics.md."""

    period: AnalyticsPeriod
    chatbot_id: str | None
    conversation_metrics: dict[str, Any]
    agent_metrics: list[dict[str, Any]]
    trends: dict[str, Any]
    top_intents: list[dict[str, Any]]
    common_questions: list[dict[str, Any]]
    common_questions_sample_size: int
    escalation_reasons: list[dict[str, Any]]
    rollup_pending_buckets: int


class ChatbotAnalytics(Struct):
    chatbot_id: str | None
    period: AnalyticsPeriod
    metrics: dict[str, Any]
    top_intents: list[dict[str, Any]]
    hourly_distribution: list[dict[str, Any]]
    daily_trend: list[dict[str, Any]]
    sentiment_trend: list[dict[str, Any]]
    common_questions: list[dict[str, Any]]
    common_questions_sample_size: int
    escalation_reasons: list[dict[str, Any]]


class ReportQueued(Struct):
    queued: int
    recipients: list[str]
    first_day: str
    last_day: str


async def _scope(request: Request[Any, Any, Any], chatbot_id: str | None, period: str | None,
                 start_date: str | None, end_date: str | None) -> analytics_views.Scope:
    db = services_of(request).db
    return await asyncio.to_thread(analytics_views.scope, db, actor_of(request).workspace_id, chatbot_id, period,
                                   start_date, end_date)


@get("/api/v1/analytics/dashboard", **requires("analytics.view"))
async def analytics_dashboard(request: Request[Any, Any, Any], period: PeriodName | None = None,
                              start_date: LocalDate | None = None, end_date: LocalDate | None = None,
                              chatbot_id: ChatbotId | None = None) -> Dashboard:
    """Totals, rates (fractions 0–1), response and resolution times, CSAT, returning customers, daily and hourly
    trends in the workspace time zone, top intents, common questions, escalation reasons and per-agent metrics.
    ``period``: today, yesterday, last_7_days (default), last_30_days, this_month, last_month; or ``start_date``
    and ``end_date`` (YYYY-MM-DD, inclusive)."""
    scope = await _scope(request, chatbot_id, period, start_date, end_date)
    return msgspec.convert(await asyncio.to_thread(analytics_views.dashboard, services_of(request).db, scope),
                           Dashboard)


@get("/api/v1/chatbots/{chatbot_id:str}/analytics", **requires("analytics.view"))
async def chatbot_analytics(request: Request[Any, Any, Any], chatbot_id: str, period: PeriodName | None = None,
                            start_date: LocalDate | None = None, end_date: LocalDate | None = None
                            ) -> ChatbotAnalytics:
    """One chatbot's analytics in the PRD §5.2.3 shape; another workspace's chatbot is "not found"."""
    scope = await _scope(request, chatbot_id, period, start_date, end_date)
    return msgspec.convert(await asyncio.to_thread(analytics_views.chatbot_analytics, services_of(request).db,
                                                   scope), ChatbotAnalytics)


@get("/api/v1/analytics/export", **requires("analytics.view"))
async def export_metrics(request: Request[Any, Any, Any],
                         fmt: Annotated[Literal["csv", "json", "pdf"], Parameter(query="format")] = "csv",
                         period: PeriodName | None = None, start_date: LocalDate | None = None,
                         end_date: LocalDate | None = None, chatbot_id: ChatbotId | None = None) -> Response[bytes]:
    """The dashboard's metrics as a download: CSV (long format), JSON (the dashboard body) or a PDF report."""
    scope = await _scope(request, chatbot_id, period, start_date, end_date)
    filename, media_type, content = await asyncio.to_thread(reports.download, services_of(request).db, scope,
                                                            fmt)
    return Response(content, media_type=media_type, headers={
        **DOWNLOAD_HEADERS, "Content-Disposition": f'attachment; filename="{filename}"'})


@get("/api/v1/analytics/report-settings", **requires("analytics.view"))
async def get_report_settings(request: Request[Any, Any, Any]) -> ReportSettings:
    saved = await asyncio.to_thread(reports.report_settings, services_of(request).db, actor_of(request).workspace_id)
    return ReportSettings(**saved)


@put("/api/v1/analytics/report-settings", **requires("workspace.settings"))
async def put_report_settings(request: Request[Any, Any, Any], data: ReportSettings) -> ReportSettings:
    """Weekly or monthly PDF by email (sent only when a mail server is configured), or off."""
    saved = await asyncio.to_thread(reports.save_settings, services_of(request).db, actor_of(request),
                                    data.frequency, data.recipients)
    return ReportSettings(**saved)


@post("/api/v1/analytics/reports/send", status_code=202, **requires("workspace.settings"))
async def send_report_now(request: Request[Any, Any, Any], period: PeriodName | None = None,
                          start_date: LocalDate | None = None, end_date: LocalDate | None = None) -> ReportQueued:
    """Email the PDF report of a period to the saved recipients now (409 ``mail_not_configured`` without SMTP)."""
    services = services_of(request)
    scope = await _scope(request, None, period, start_date, end_date)
    recipients = await asyncio.to_thread(reports.send_now, services.db,
                                         mail_configured(services.db, services.settings),
                                         actor_of(request), scope)
    first, last = scope.period.first_day.isoformat(), scope.period.last_day.isoformat()
    for recipient in recipients:
        send_analytics_report(actor_of(request).workspace_id, first, last, recipient)
    return ReportQueued(queued=len(recipients), recipients=recipients, first_day=first, last_day=last)


ROUTES = [analytics_dashboard, chatbot_analytics, export_metrics, get_report_settings, put_report_settings,
          send_report_now]
