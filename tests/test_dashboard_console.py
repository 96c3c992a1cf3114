"""The console dashboard as a browser sees it (HTML parsed): empty states on a fresh install, every chart drawn as
an accessible SVG with a table fallback once there is history, the htmx period/chatbot selector, links to the
review queue and knowledge gaps, customer text escaped inside charts, roles, and the email-report form."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from accounts_support import Page, account_settings, open_client
from analytics_support import Conv, Msg, known_history, seed
from chatsupport.domain import analytics
from conversation_support import Team
from test_knowledge_console import console_login

HTMX = {"HX-Request": "true"}
RANGE = {"start_date": "2025-03-10", "end_date": "2025-03-11"}
CHARTS = ("chart-daily", "chart-resolution", "chart-hourly", "chart-intents", "chart-reasons", "chart-csat",
          "chart-sentiment")


class Charts(HTMLParser):
    """Each chart card: its SVG's role, title and desc, and whether it has a table or an empty-state line."""

    def __init__(self, html: str):
        super().__init__()
        self.cards: dict[str, dict[str, Any]] = {}
        self._card: str | None = None
        self._into: str | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "figure" and a.get("id") in CHARTS:
            self._card = a["id"]
            self.cards[self._card] = {"svg": None, "title": "", "desc": "", "table_rows": 0, "empty": ""}
        elif self._card:
            card = self.cards[self._card]
            if tag == "svg":
                card["svg"] = a
            elif tag in ("title", "desc"):
                self._into = tag
            elif tag == "tr":
                card["table_rows"] += 1
            elif tag == "p" and "empty" in (a.get("class") or ""):
                self._into = "empty"

    def handle_endtag(self, tag: str) -> None:
        if tag == "figure":
            self._card = None
        if tag in ("title", "desc", "p"):
            self._into = None

    def handle_data(self, data: str) -> None:
        if self._card and self._into:
            self.cards[self._card][self._into] += data


def test_a_fresh_install_shows_empty_states(tmp_path: Path) -> None:
    with open_client(account_settings(tmp_path / "data")) as client:
        team = Team(client)
        console_login(client, team.owner["email"])
        response = client.get("/dashboard")
        assert response.status_code == 200
        page, charts = Page(response.text), Charts(response.text)
        assert "No conversations in this period yet" in page.texts["dashboard-empty"]
        assert page.inline_styles == 0 and all(script.get("src") for script in page.scripts)
        assert set(charts.cards) == set(CHARTS)
        assert all(card["svg"] is None and card["empty"] for card in charts.cards.values())
        assert "Last 7 days" in page.texts["panel-heading"]
        assert "Conversations 0" in page.texts["kpis"]
        assert page.form("period-form")["method"] == "get"
        assert "No mail server is configured" in page.texts["no-mail"]


def test_charts_tables_and_links_with_history(tmp_path: Path) -> None:
    with open_client(account_settings(tmp_path / "data")) as client:
        team = Team(client)
        history = known_history(team.agent["id"])
        history.append(Conv("2025-03-11T16:00:00", "resolved",
                            [Msg(0, "customer", "<script>alert(1)</script> price?", intent=("<b>x</b>", .5)),
                             Msg(1, "bot", confidence=.9)], resolved_after=60))
        seed(team.db, team.ws, team.bot, history)
        analytics.roll_up(team.db)
        console_login(client, team.viewer["email"])   # a viewer may look
        response = client.get("/dashboard", params=RANGE)
        assert response.status_code == 200
        page, charts = Page(response.text), Charts(response.text)
        assert "Conversations 11" in page.texts["kpis"] and "AI resolution rate 72.7%" in page.texts["kpis"]
        for chart_id in CHARTS:
            card = charts.cards[chart_id]
            assert card["svg"] and card["svg"]["role"] == "img" and card["svg"]["aria-labelledby"], chart_id
            assert card["title"] and card["desc"] and card["table_rows"] > 1, chart_id
        assert charts.cards["chart-hourly"]["table_rows"] == 25        # header + 24 hours
        assert "<script>alert(1)</script>" not in response.text and "&lt;b&gt;x&lt;/b&gt;" in response.text
        assert "/review" in response.text and f"/chatbots/{team.bot}/knowledge/gaps" in response.text
        assert "Sarah Johnson" in page.texts["agents"]
        assert "Do you ship to Canada" in page.texts["common-questions"]
        assert "format=pdf" in response.text and "start_date=2025-03-10" in response.text
        assert "report-form" not in response.text   # viewers do not manage the schedule

        fragment = client.get("/dashboard", params={**RANGE, "chatbot_id": team.bot}, headers=HTMX)
        assert fragment.status_code == 200 and "<html" not in fragment.text
        assert 'id="gaps-link"' in fragment.text and "Acme Bot" in Page(fragment.text).texts["panel-heading"]
        bad = client.get("/dashboard", params={"start_date": "2025-03-10"}, headers=HTMX)
        assert bad.status_code == 200 and any("custom range needs both dates" in a for a in Page(bad.text).alerts)


def test_roles_and_the_report_form(tmp_path: Path) -> None:
    with open_client(account_settings(tmp_path / "data")) as client:
        team = Team(client)
        anonymous = client.get("/dashboard", follow_redirects=False)
        assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")
        console_login(client, team.owner["email"])
        page = Page(client.get("/dashboard").text)
        form = page.form("report-form")
        saved = client.post("/dashboard/report", headers=HTMX, data={
            **form["fields"], "frequency": "weekly", "recipients": "boss@acme.example, ops@acme.example"})
        assert saved.status_code == 200 and "Report settings saved." in Page(saved.text).alerts
        assert client.get("/api/v1/analytics/report-settings", headers=team.owner_h).json() == {
            "frequency": "weekly", "recipients": ["boss@acme.example", "ops@acme.example"]}
        refused = client.post("/dashboard/report", headers=HTMX, data={
            **form["fields"], "frequency": "weekly", "recipients": "nobody"})
        assert "not an e-mail address: nobody" in Page(refused.text).field_errors["recipients"]
        send = client.post("/dashboard/report/send", headers=HTMX, data=page.form("send-form")["fields"])
        assert any("No mail server is configured" in a for a in Page(send.text).alerts)
        forged = client.post("/dashboard/report", headers=HTMX, data={"frequency": "off", "recipients": ""})
        assert forged.status_code == 403
        console_login(client, team.agent["email"])
        assert client.post("/dashboard/report", headers=HTMX, data={**form["fields"], "frequency": "off"}
                           ).status_code == 403
