"""Metric exports (CSV, JSON, PDF read back with PyMuPDF), the scheduled-report setting, "send now" through a
real SMTP server on 127.0.0.1 and the in-process job queue, and the weekly schedule sending each period once."""

from __future__ import annotations

import csv
import io
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pymupdf

from accounts_support import account_settings, audit_rows, error_code, open_client
from analytics_support import known_history, seed
from chatsupport.domain import analytics, reports
from conversation_support import Team
from test_mail import Inbox, smtp  # noqa: F401 - the fixture

RANGE = {"start_date": "2025-03-10", "end_date": "2025-03-11"}


def pdf_text(data: bytes) -> str:
    with pymupdf.open(stream=data, filetype="pdf") as doc:
        return "\n".join(page.get_text() for page in doc)


def seeded(team: Team) -> None:
    seed(team.db, team.ws, team.bot, known_history(team.agent["id"]))
    analytics.roll_up(team.db)


def test_exports_in_three_formats(tmp_path: Path) -> None:
    with open_client(account_settings(tmp_path / "data")) as client:
        team = Team(client)
        seeded(team)
        response = client.get("/api/v1/analytics/export", params={"format": "csv", **RANGE}, headers=team.viewer_h)
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
        assert response.headers["content-disposition"] == \
            'attachment; filename="chatsupport-analytics-2025-03-10-to-2025-03-11.csv"'
        rows = list(csv.DictReader(io.StringIO(response.text)))
        value = {(r["section"], r["key"], r["metric"]): r["value"] for r in rows}
        assert value[("conversation_metrics", "", "total_conversations")] == "10"
        assert value[("conversation_metrics", "", "ai_resolution_rate")] == "0.7"
        assert value[("conversation_metrics", "", "nps_score")] == ""
        assert value[("top_intents", "account", "count")] == "3"
        assert value[("trends.daily", "2025-03-11", "conversations")] == "5"

        as_json = client.get("/api/v1/analytics/export", params={"format": "json", **RANGE}, headers=team.viewer_h)
        dashboard = client.get("/api/v1/analytics/dashboard", params=RANGE, headers=team.viewer_h).json()
        assert as_json.json()["conversation_metrics"] == dashboard["conversation_metrics"]

        pdf = client.get("/api/v1/analytics/export", params={"format": "pdf", **RANGE}, headers=team.viewer_h)
        assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
        text = pdf_text(pdf.content)
        assert "Acme: support report" in text and "2025-03-10 to 2025-03-11 (UTC)" in text
        lines = text.splitlines()
        assert lines[lines.index("Conversations") + 1] == "10"
        assert lines[lines.index("AI resolution rate") + 1] == "70.0%"
        assert lines[lines.index("CSAT (1-5)") + 1] == "3.5"
        assert lines[lines.index("Avg resolution time (min)") + 1] == "11.83"
        assert "low_confidence" in text and "account" in text

        unknown = client.get("/api/v1/analytics/export", params={"format": "xlsx"}, headers=team.viewer_h)
        assert unknown.status_code == 422 and error_code(unknown) == "validation_error"
        assert client.get("/api/v1/analytics/export").status_code == 401


def test_report_settings_are_validated_and_managers_only(tmp_path: Path) -> None:
    with open_client(account_settings(tmp_path / "data")) as client:
        team = Team(client)
        assert client.get("/api/v1/analytics/report-settings", headers=team.viewer_h).json() == {
            "frequency": "off", "recipients": []}
        body = {"frequency": "weekly", "recipients": ["Boss@Acme.example", "ops@acme.example"]}
        assert client.put("/api/v1/analytics/report-settings", json=body, headers=team.viewer_h).status_code == 403
        assert client.put("/api/v1/analytics/report-settings", json=body, headers=team.agent_h).status_code == 403
        saved = client.put("/api/v1/analytics/report-settings", json=body, headers=team.owner_h)
        assert saved.status_code == 200
        assert saved.json() == {"frequency": "weekly", "recipients": ["boss@acme.example", "ops@acme.example"]}
        assert client.get("/api/v1/analytics/report-settings", headers=team.viewer_h).json() == saved.json()
        assert audit_rows(client, "analytics.report_settings_changed")
        for bad in ({"frequency": "weekly", "recipients": []}, {"frequency": "weekly", "recipients": ["not-mail"]},
                    {"frequency": "daily", "recipients": ["a@b.example"]}):
            response = client.put("/api/v1/analytics/report-settings", json=bad, headers=team.owner_h)
            assert response.status_code == 422 and error_code(response) == "validation_error", bad
        assert client.get("/api/v1/analytics/report-settings", headers=team.owner_h).json() == saved.json()
        off = client.put("/api/v1/analytics/report-settings", json={"frequency": "off", "recipients": []},
                         headers=team.owner_h)
        assert off.status_code == 200
        # no mail server: "send now" says so instead of pretending
        response = client.post("/api/v1/analytics/reports/send", params=RANGE, headers=team.owner_h)
        assert response.status_code == 409 and error_code(response) == "mail_not_configured"


def test_send_now_emails_the_pdf(tmp_path: Path, smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    settings = account_settings(tmp_path / "data", SMTP_HOST="127.0.0.1", SMTP_PORT=str(port),
                                SMTP_STARTTLS="false", RUN_WORKER="true")
    with open_client(settings) as client:
        team = Team(client)
        seeded(team)
        client.put("/api/v1/analytics/report-settings", headers=team.owner_h,
                   json={"frequency": "monthly", "recipients": ["boss@acme.example", "ops@acme.example"]})
        assert client.post("/api/v1/analytics/reports/send", params=RANGE, headers=team.viewer_h).status_code == 403
        response = client.post("/api/v1/analytics/reports/send", params=RANGE, headers=team.owner_h)
        assert response.status_code == 202
        assert response.json() == {"queued": 2, "recipients": ["boss@acme.example", "ops@acme.example"],
                                   "first_day": "2025-03-10", "last_day": "2025-03-11"}
        deadline = time.monotonic() + 30
        while len(inbox.raw) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert sorted(m["To"] for m in inbox.raw) == ["boss@acme.example", "ops@acme.example"]
        mail = inbox.raw[0]
        assert mail["Subject"] == "Acme: support report 2025-03-10 to 2025-03-11"
        parts = {part.get_content_type(): part for part in mail.walk()}
        assert "Conversations: 10" in parts["text/plain"].get_payload(decode=True).decode()
        attachment = parts["application/pdf"]
        assert attachment.get_filename() == "chatsupport-report-2025-03-10-to-2025-03-11.pdf"
        assert "70.0%" in pdf_text(attachment.get_payload(decode=True))


def test_weekly_schedule_claims_each_period_once(tmp_path: Path) -> None:
    with open_client(account_settings(tmp_path / "data")) as client:
        team = Team(client)
        client.put("/api/v1/analytics/report-settings", headers=team.owner_h,
                   json={"frequency": "weekly", "recipients": ["boss@acme.example"]})
        client.app.state.services.db.execute_write(
            "UPDATE workspaces SET settings = json_set(settings, '$.timezone', 'Europe/Paris') WHERE id = ?",
            (team.ws,))
        db = client.app.state.services.db
        monday_early = datetime(2025, 3, 17, 5, 0, tzinfo=timezone.utc)   # 06:00 in Paris: not yet due
        due: list[dict[str, Any]] = reports.due_reports(db, monday_early)
        assert [(d["first_day"], d["last_day"]) for d in due] == [("2025-03-03", "2025-03-09")]   # the week before
        assert reports.due_reports(db, monday_early) == []
        monday_late = datetime(2025, 3, 17, 7, 0, tzinfo=timezone.utc)    # 08:00 in Paris
        [week] = reports.due_reports(db, monday_late)
        assert (week["first_day"], week["last_day"], week["recipients"]) == ("2025-03-10", "2025-03-16",
                                                                             ["boss@acme.example"])
        assert reports.due_reports(db, datetime(2025, 3, 19, 12, 0, tzinfo=timezone.utc)) == []
