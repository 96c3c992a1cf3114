"""The console dashboard (PRD §5.6.1, Stories 5.1–5.2): KPI cards, server-drawn SVG charts with table fallbacks,
agent and question tables, a period and chatbot selector (htmx swaps the panel; the URL stays shareable), metric
downloads, and the scheduled email report's settings.

Everything shown is read from the rollups (``domain.analytics_views``), so the page stays fast at 1M messages.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlencode

from litestar import Request, Response, get, post

from chatsupport.domain import analytics_views, reports
from chatsupport.domain.analytics_periods import PRESETS
from chatsupport.domain.permissions import allowed
from chatsupport.errors import AppError
from chatsupport.net.mail import mail_configured
from chatsupport.store import analytics as store
from chatsupport.tasks.analytics import send_analytics_report
from chatsupport.web import charts
from chatsupport.web.auth import actor_of, services_of
from chatsupport.web.console.common import checked_form, error_context, is_htmx, render, words
from chatsupport.web.permissions import console_requires

PAGE = {"include_in_schema": False}


def _fmt(value: Any, kind: str = "number") -> str:
    if value is None:
        return "–"
    if kind == "rate":
        return f"{value * 100:.1f}%"
    if kind == "seconds":
        return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min"
    if kind == "minutes":
        return f"{value:.1f} min"
    return f"{value:,.2f}".rstrip("0").rstrip(".") if isinstance(value, float) else f"{value:,}"


def kpis(m: dict[str, Any]) -> list[dict[str, str]]:
    return [
        {"label": "Conversations", "value": _fmt(m["total_conversations"]),
         "hint": f"{m['new_conversations_today']} today · {m['active_conversations']} open now"},
        {"label": "AI resolution rate", "value": _fmt(m["ai_resolution_rate"], "rate"),
         "hint": f"{m['ai_resolved_confirmed']} confirmed · {m['ai_resolved_assumed']} assumed"},
        {"label": "Escalation rate", "value": _fmt(m["escalation_rate"], "rate"),
         "hint": f"{m['human_escalated']} handed to a person"},
        {"label": "First response", "value": _fmt(m["avg_first_response_time_seconds"], "seconds"),
         "hint": f"average reply {_fmt(m['avg_response_time_seconds'], 'seconds')}"},
        {"label": "Resolution time", "value": _fmt(m["avg_resolution_time_minutes"], "minutes"),
         "hint": f"{_fmt(m['avg_conversation_length_messages'])} messages per conversation"},
        {"label": "CSAT", "value": _fmt(m["avg_satisfaction_rating"]) + (" / 5" if m["avg_satisfaction_rating"]
                                                                          else ""),
         "hint": f"{m['total_satisfaction_responses']} ratings · {_fmt(m['satisfaction_response_rate'], 'rate')}"
                 " responded"},
        {"label": "Returning customers", "value": _fmt(m["returning_customers"]),
         "hint": f"{_fmt(m['returning_customer_rate'], 'rate')} of known customers"},
    ]


def _pct(value: float | None) -> str:
    return _fmt(value, "rate")


def chart_set(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Each chart: its SVG (None when the period has nothing to draw: the template shows an empty state) and
    the same numbers as table rows."""
    daily, hourly = report["trends"]["daily"], report["trends"]["hourly"]
    days = [d["date"][5:] for d in daily]
    total = report["conversation_metrics"]["total_conversations"]
    sentiment = report["trends"]["sentiment"]
    csat = report["conversation_metrics"]["satisfaction_distribution"]
    intents, reasons = report["top_intents"], report["escalation_reasons"]
    moods = ("positive", "neutral", "negative")
    return [
        {"id": "chart-daily", "title": "Conversations per day",
         "svg": charts.line_chart("Conversations per day", f"{total} conversations over {len(daily)} days.", days,
                                  [("Conversations", [d["conversations"] for d in daily])]) if total else None,
         "headers": ["Date", "Conversations", "AI resolved", "Escalated"],
         "rows": [[d["date"], d["conversations"], d["ai_resolved"], d["escalated"]] for d in daily]},
        {"id": "chart-resolution", "title": "AI resolution rate per day",
         "svg": charts.line_chart("AI resolution rate per day", "Share of each day's conversations the AI resolved"
                                  " (confirmed or assumed).", days,
                                  [("AI resolution rate", [d["ai_resolution_rate"] for d in daily])], percent=True)
         if total else None,
         "headers": ["Date", "AI resolution rate", "CSAT"],
         "rows": [[d["date"], _pct(d["ai_resolution_rate"]), _fmt(d["avg_satisfaction"])] for d in daily]},
        {"id": "chart-hourly", "title": "Conversations by hour of day",
         "svg": charts.bar_chart("Conversations by hour of day", "Conversations started in each local hour.",
                                 [str(h["hour"]) for h in hourly], [h["conversations"] for h in hourly])
         if total else None,
         "headers": ["Hour", "Conversations", "AI resolution rate"],
         "rows": [[f"{h['hour']:02d}:00", h["conversations"], _pct(h["ai_resolution_rate"])] for h in hourly]},
        {"id": "chart-intents", "title": "Top intents",
         "svg": charts.hbar_chart("Top intents", "Conversations by the intent of their first classified question.",
                                  [i["intent"] for i in intents], [i["count"] for i in intents]) if intents else None,
         "headers": ["Intent", "Conversations", "Share", "Avg confidence"],
         "rows": [[i["intent"], i["count"], _pct(i["percentage"]), _fmt(i["avg_confidence"])] for i in intents]},
        {"id": "chart-reasons", "title": "Escalation reasons",
         "svg": charts.hbar_chart("Escalation reasons", "Conversations handed to a person, by reason.",
                                  [r["reason"] for r in reasons], [r["count"] for r in reasons]) if reasons else None,
         "headers": ["Reason", "Conversations"], "rows": [[r["reason"], r["count"]] for r in reasons],
         "empty": "No escalations in this period."},
        {"id": "chart-csat", "title": "Satisfaction ratings",
         "svg": charts.bar_chart("Satisfaction ratings", "Conversations rated 1 to 5 stars.",
                                 ["1", "2", "3", "4", "5"], [csat[str(s)] for s in range(1, 6)])
         if any(csat.values()) else None,
         "headers": ["Stars", "Ratings"], "rows": [[s, csat[str(s)]] for s in range(1, 6)],
         "empty": "No ratings in this period yet."},
        {"id": "chart-sentiment", "title": "Customer sentiment per day",
         "svg": charts.line_chart("Customer sentiment per day", "Customer messages per day by detected sentiment.",
                                  days, [(mood.capitalize(), [d[mood] for d in sentiment]) for mood in moods])
         if any(d[mood] for d in sentiment for mood in moods) else None,
         "headers": ["Date", "Positive", "Neutral", "Negative"],
         "rows": [[d["date"], d["positive"], d["neutral"], d["negative"]] for d in sentiment],
         "empty": "No analysed customer messages in this period yet."},
    ]


def _query(params: dict[str, str | None]) -> str:
    return urlencode({k: v for k, v in params.items() if v})


async def _context(request: Request[Any, Any, Any], period: str | None, start_date: str | None,
                   end_date: str | None, chatbot_id: str | None, **extra: Any) -> dict[str, Any]:
    services, actor = services_of(request), actor_of(request)
    bots = await asyncio.to_thread(store.chatbots, services.db.reader(), actor.workspace_id)
    params = {"period": period or None, "start_date": start_date or None, "end_date": end_date or None,
              "chatbot_id": chatbot_id or None}
    context: dict[str, Any] = {
        "bots": bots, "presets": PRESETS, "params": params, "report": None, "problem": None,
        "query": _query(params), "can_manage": allowed(actor.role, "workspace.settings"),
        "mail_ready": mail_configured(services.db, services.settings),
        "schedule": await asyncio.to_thread(reports.report_settings, services.db, actor.workspace_id), **extra}
    try:
        scope = await asyncio.to_thread(analytics_views.scope, services.db, actor.workspace_id, chatbot_id or None,
                                        period if period != "custom" or start_date else None, start_date or None,
                                        end_date or None)
    except AppError as exc:
        if exc.code != "validation_error":
            raise
        context["problem"] = words(exc)
        return context
    report = await asyncio.to_thread(analytics_views.dashboard, services.db, scope)
    context.update(report=report, kpis=kpis(report["conversation_metrics"]), charts=chart_set(report),
                   period=scope.period, bot=next((b for b in bots if b["id"] == scope.chatbot_id), None))
    return context


@get("/dashboard", **PAGE, **console_requires("analytics.view"))
async def dashboard_page(request: Request[Any, Any, Any], period: str | None = None, start_date: str | None = None,
                         end_date: str | None = None, chatbot_id: str | None = None) -> Response[Any]:
    context = await _context(request, period, start_date, end_date, chatbot_id)
    return render(request, "dashboard/_panel.html" if is_htmx(request) else "dashboard/page.html", context)


@post("/dashboard/report", **PAGE, **console_requires("workspace.settings"))
async def save_report_settings(request: Request[Any, Any, Any]) -> Response[Any]:
    form = await checked_form(request)
    services, actor = services_of(request), actor_of(request)
    extra: dict[str, Any] = {}
    try:
        await asyncio.to_thread(reports.save_settings, services.db, actor, form.get("frequency"),
                                str(form.get("recipients") or ""))
        extra["notice"] = "Report settings saved."
    except AppError as exc:
        extra.update(error_context(exc), recipients_text=str(form.get("recipients") or ""))
    return await _report_fragment(request, form, **extra)


@post("/dashboard/report/send", **PAGE, **console_requires("workspace.settings"))
async def send_report(request: Request[Any, Any, Any]) -> Response[Any]:
    form = await checked_form(request)
    services, actor = services_of(request), actor_of(request)
    extra: dict[str, Any] = {}
    try:
        scope = await asyncio.to_thread(analytics_views.scope, services.db, actor.workspace_id, None,
                                        form.get("period") or None, form.get("start_date") or None,
                                        form.get("end_date") or None)
        recipients = await asyncio.to_thread(reports.send_now, services.db,
                                             mail_configured(services.db, services.settings),
                                             actor, scope)
        for recipient in recipients:
            send_analytics_report(actor.workspace_id, scope.period.first_day.isoformat(),
                                  scope.period.last_day.isoformat(), recipient)
        extra["notice"] = f"The report is on its way to {len(recipients)} recipient(s)."
    except AppError as exc:
        extra["error"] = words(exc)
    return await _report_fragment(request, form, **extra)


async def _report_fragment(request: Request[Any, Any, Any], form: dict[str, Any], **extra: Any) -> Response[Any]:
    """htmx gets the settings box back; a plain form post gets the whole page with the same news."""
    args = [str(form.get(k) or "") or None for k in ("period", "start_date", "end_date", "chatbot_id")]
    if is_htmx(request):
        services, actor = services_of(request), actor_of(request)
        context = {"schedule": await asyncio.to_thread(reports.report_settings, services.db, actor.workspace_id),
                   "params": dict(zip(("period", "start_date", "end_date", "chatbot_id"), args)),
                   "can_manage": True, "mail_ready": mail_configured(services.db, services.settings), **extra}
        return render(request, "dashboard/_report.html", context)
    return render(request, "dashboard/page.html", await _context(request, *args, **extra))


ROUTES = [dashboard_page, save_report_settings, send_report]
