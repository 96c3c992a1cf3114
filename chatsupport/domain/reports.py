"""Analytics reports (PRD §5.6.2, trimmed to what an appliance needs): the dashboard's metrics as CSV or JSON on
demand, a one-page PDF (PyMuPDF), and a weekly or monthly PDF emailed to the workspace's chosen recipients when a
mail server is configured.

The schedule is one workspace setting, ``settings.analytics_report = {"frequency": "off"|"weekly"|"monthly",
"recipients": [...]}``. A weekly report covers the last full Monday–Sunday week, a monthly one the last calendar
month, both in the workspace's time zone, and is due from 07:00 local on the day after the period ends; a row in
``analytics_report_deliveries`` makes sure each period goes out once however often the job runs.
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pymupdf

from chatsupport.domain.analytics_periods import Period, resolve, workspace_zone
from chatsupport.domain.analytics_views import Scope, dashboard
from chatsupport.domain.audit import Actor, record
from chatsupport.errors import AppError
from chatsupport.store import analytics as store
from chatsupport.store.db import Database

FREQUENCIES = ("off", "weekly", "monthly")
MAX_RECIPIENTS = 20
EMAIL = re.compile(r"^[^@\s,;]{1,64}@[^@\s,;]{1,190}\.[^@\s,;]{1,63}$")
DUE_HOUR = 7
HEADLINES = (
    ("total_conversations", "Conversations", "count"), ("ai_resolution_rate", "AI resolution rate", "rate"),
    ("ai_resolved_confirmed", "AI resolved (confirmed)", "count"),
    ("ai_resolved_assumed", "AI resolved (assumed)", "count"), ("escalation_rate", "Escalation rate", "rate"),
    ("avg_first_response_time_seconds", "Avg first response (s)", "number"),
    ("avg_response_time_seconds", "Avg response time (s)", "number"),
    ("avg_resolution_time_minutes", "Avg resolution time (min)", "number"),
    ("avg_conversation_length_messages", "Avg conversation length (messages)", "number"),
    ("avg_satisfaction_rating", "CSAT (1-5)", "number"),
    ("total_satisfaction_responses", "CSAT responses", "count"),
    ("returning_customers", "Returning customers", "count"),
)


# --- the schedule setting -------------------------------------------------------------------------------------
def report_settings(db: Database, workspace_id: str) -> dict[str, Any]:
    row = store.workspace_settings(db.reader(), workspace_id)
    saved = json.loads(row["settings"]).get("analytics_report") if row else None
    saved = saved if isinstance(saved, dict) else {}
    return {"frequency": saved.get("frequency", "off"), "recipients": list(saved.get("recipients", []))}


def clean_settings(frequency: Any, recipients: Any) -> dict[str, Any]:
    """Validate the schedule: a known frequency, and 1–20 e-mail addresses unless it is off."""
    errors = []
    if frequency not in FREQUENCIES:
        errors.append({"field": "frequency", "message": "off, weekly or monthly"})
    if isinstance(recipients, str):
        recipients = [r for r in re.split(r"[\s,;]+", recipients) if r]
    if not isinstance(recipients, list) or not all(isinstance(r, str) for r in recipients):
        errors.append({"field": "recipients", "message": "a list of e-mail addresses"})
        recipients = []
    emails = list(dict.fromkeys(r.strip().lower() for r in recipients))
    bad = [r for r in emails if len(r) > 254 or not EMAIL.match(r)]
    if bad:
        errors.append({"field": "recipients", "message": "not an e-mail address: " + ", ".join(bad[:3])})
    elif len(emails) > MAX_RECIPIENTS:
        errors.append({"field": "recipients", "message": f"at most {MAX_RECIPIENTS} recipients"})
    elif frequency in ("weekly", "monthly") and not emails:
        errors.append({"field": "recipients", "message": "add at least one recipient for a scheduled report"})
    if errors:
        raise AppError("validation_error", details=errors)
    return {"frequency": frequency, "recipients": emails}


def save_settings(db: Database, actor: Actor, frequency: Any, recipients: Any) -> dict[str, Any]:
    cleaned = clean_settings(frequency, recipients)

    def write(conn: Any) -> None:
        store.set_workspace_setting(conn, actor.workspace_id, "analytics_report", json.dumps(cleaned))
        record(conn, "analytics.report_settings_changed", actor=actor, resource_type="workspace",
               resource_id=actor.workspace_id, changes=cleaned)

    db.write(write)
    return cleaned


# --- formats --------------------------------------------------------------------------------------------------
def _cell(value: Any, kind: str) -> str:
    if value is None:
        return "–"
    if kind == "rate":
        return f"{value * 100:.1f}%"
    return f"{value:g}" if isinstance(value, float) else str(value)


def as_csv(report: dict[str, Any]) -> str:
    """Long format, one row per value (``section,key,metric,value``; key is a date, hour, intent…): easy to pivot."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["section", "key", "metric", "value"])
    period = report["period"]
    for name in ("start", "end", "timezone", "preset"):
        writer.writerow(["period", "", name, period[name]])
    for metric, value in report["conversation_metrics"].items():
        if isinstance(value, dict):
            for key, count in value.items():
                writer.writerow(["conversation_metrics", key, metric, count])
        else:
            writer.writerow(["conversation_metrics", "", metric, "" if value is None else value])
    for section, key_field in (("top_intents", "intent"), ("escalation_reasons", "reason"),
                               ("common_questions", "question"), ("agent_metrics", "agent_name")):
        for item in report[section]:
            for metric, value in item.items():
                if metric != key_field:
                    writer.writerow([section, item[key_field], metric, "" if value is None else value])
    for trend in ("daily", "hourly", "sentiment"):
        key_field = "hour" if trend == "hourly" else "date"
        for item in report["trends"][trend]:
            for metric, value in item.items():
                if metric != key_field:
                    writer.writerow([f"trends.{trend}", item[key_field], metric, "" if value is None else value])
    return out.getvalue()


def as_pdf(report: dict[str, Any], workspace_name: str) -> bytes:
    """One A4 page (more when the tables are long): the headline numbers, then the daily trend, intents and
    escalation reasons as tables. Plain text drawn with PyMuPDF's built-in Helvetica."""
    doc = pymupdf.open()
    writer = _PdfWriter(doc)
    period = report["period"]
    writer.line(f"{workspace_name}: support report", size=18)
    writer.line(f"{period['first_day']} to {period['last_day']} ({period['timezone']})", size=10)
    writer.gap()
    metrics = report["conversation_metrics"]
    writer.line("Headline numbers", size=13)
    for key, label, kind in HEADLINES:
        writer.row([label, _cell(metrics[key], kind)], widths=[260, 120])
    writer.gap()
    writer.line("Daily trend", size=13)
    writer.row(["Date", "Conversations", "AI resolution", "CSAT"], widths=[120, 100, 100, 80])
    for day in report["trends"]["daily"]:
        writer.row([day["date"], str(day["conversations"]), _cell(day["ai_resolution_rate"], "rate"),
                    _cell(day["avg_satisfaction"], "number")], widths=[120, 100, 100, 80])
    for title, section, key in (("Top intents", "top_intents", "intent"),
                                ("Escalation reasons", "escalation_reasons", "reason")):
        writer.gap()
        writer.line(title, size=13)
        if not report[section]:
            writer.line("None in this period.", size=10)
        for item in report[section]:
            writer.row([str(item[key]), str(item["count"])], widths=[260, 120])
    data = doc.tobytes(garbage=3, deflate=True)
    doc.close()
    return data


class _PdfWriter:
    """Lines of text down A4 pages, a new page when one is full."""

    def __init__(self, doc: pymupdf.Document):
        self.doc = doc
        self.page = doc.new_page(width=595, height=842)
        self.y = 60.0

    def _room(self, height: float) -> None:
        if self.y + height > 800:
            self.page = self.doc.new_page(width=595, height=842)
            self.y = 60.0

    def line(self, text: str, size: float = 10) -> None:
        self._room(size + 6)
        self.page.insert_text((50, self.y), text, fontsize=size, fontname="helv")
        self.y += size + 6

    def row(self, cells: list[str], widths: list[float]) -> None:
        self._room(15)
        x = 50.0
        for text, width in zip(cells, widths):
            self.page.insert_text((x, self.y), text[:60], fontsize=10, fontname="helv")
            x += width
        self.y += 15

    def gap(self) -> None:
        self.y += 10


# --- scheduled delivery ---------------------------------------------------------------------------------------
def due_period(frequency: str, settings_json: str, now: datetime) -> Period:
    """The period a scheduled report is due for at ``now``: the last full week or month before 07:00 today."""
    zone = workspace_zone(settings_json)
    shifted = now.astimezone(zone) - timedelta(hours=DUE_HOUR)
    if frequency == "weekly":
        monday = shifted.date() - timedelta(days=shifted.weekday())
        return Period("custom", monday - timedelta(days=7), monday - timedelta(days=1), zone)
    return resolve(zone, "last_month", now=shifted)


def due_reports(db: Database, now: datetime | None = None) -> list[dict[str, Any]]:
    """Claim every scheduled report due now (each period once) and return what to send."""
    at = now or datetime.now(timezone.utc)
    due = []
    for workspace in store.workspaces_with_reports(db.reader()):
        schedule = json.loads(workspace["settings"])["analytics_report"]
        recipients = [r for r in schedule.get("recipients", []) if isinstance(r, str)]
        if not recipients:
            continue
        period = due_period(schedule["frequency"], workspace["settings"], at)
        claimed = db.write(lambda conn, w=workspace["id"], f=schedule["frequency"], p=period, n=len(recipients):
                           store.claim_delivery(conn, w, f, p.first_day.isoformat(), n))
        if claimed:
            due.append({"workspace_id": workspace["id"], "first_day": period.first_day.isoformat(),
                        "last_day": period.last_day.isoformat(), "recipients": recipients,
                        "frequency": schedule["frequency"]})
    return due


def build(db: Database, workspace_id: str, first_day: str, last_day: str) -> tuple[str, bytes, dict[str, Any]]:
    """The PDF of a custom period (local dates): (file name, bytes, the metrics it shows)."""
    workspace = store.workspace_settings(db.reader(), workspace_id)
    if workspace is None:
        raise AppError("not_found", "Workspace not found.")
    zone = workspace_zone(workspace["settings"])
    period = Period("custom", date.fromisoformat(first_day), date.fromisoformat(last_day), zone)
    report = dashboard(db, Scope(workspace_id, None, period))
    return f"chatsupport-report-{first_day}-to-{last_day}.pdf", as_pdf(report, workspace["name"]), report


def email_body(workspace_name: str, report: dict[str, Any]) -> str:
    metrics = report["conversation_metrics"]
    lines = [f"Support report for {workspace_name}, {report['period']['first_day']} to "
             f"{report['period']['last_day']} ({report['period']['timezone']}).", ""]
    lines += [f"{label}: {_cell(metrics[key], kind)}" for key, label, kind in HEADLINES]
    lines += ["", "The full report is attached as a PDF."]
    return "\n".join(lines)


def download(db: Database, scope: Scope, fmt: str) -> tuple[str, str, bytes]:
    """The period's metrics as a file: (file name, media type, content) for csv, json or pdf."""
    report = dashboard(db, scope)
    period = scope.period
    stem = f"chatsupport-analytics-{period.first_day.isoformat()}-to-{period.last_day.isoformat()}"
    if fmt == "csv":
        return f"{stem}.csv", "text/csv; charset=utf-8", as_csv(report).encode()
    if fmt == "json":
        return f"{stem}.json", "application/json", json.dumps(report, indent=2).encode()
    workspace = store.workspace_settings(db.reader(), scope.workspace_id)
    return f"{stem}.pdf", "application/pdf", as_pdf(report, workspace["name"] if workspace else "ChatSupport")


def send_now(db: Database, mail_ready: bool, actor: Actor, scope: Scope) -> list[str]:
    """Check a "Send now" can go out (a mail server, saved recipients) and record it; returns the recipients.
    The caller queues one mail job per recipient."""
    if not mail_ready:
        raise AppError("mail_not_configured")
    recipients = report_settings(db, actor.workspace_id)["recipients"]
    if not recipients:
        raise AppError("validation_error", details=[{"field": "recipients",
                                                     "message": "save at least one recipient first"}])
    db.write(lambda conn: record(conn, "analytics.report_sent", actor=actor, resource_type="workspace",
                                 resource_id=actor.workspace_id,
                                 metadata={"first_day": scope.period.first_day.isoformat(),
                                           "last_day": scope.period.last_day.isoformat(),
                                           "recipients": len(recipients)}))
    return recipients
