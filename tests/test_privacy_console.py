"""``/settings/privacy`` as a browser sees it (HTML parsed): the retention form with its errors, a customer found
by e-mail (their text escaped) with export and an erasure that needs the address typed again, the workspace export
with its progress polled by htmx and the download; managers only."""

from __future__ import annotations

import io
import zipfile
from html.parser import HTMLParser
from pathlib import Path

from accounts_support import Page
from chatsupport.domain import workspace_export
from chatsupport.store import conversations as store
from conversation_support import Team, client, team  # noqa: F401
from privacy_support import ZELDA, seed_person
from test_knowledge_console import console_login

HTMX = {"HX-Request": "true"}
VOID = {"input", "br", "img", "meta", "link", "hr"}


class TextById(HTMLParser):
    """The text inside each element that has an id (``Page`` loses its place after an input with an id)."""

    def __init__(self) -> None:
        super().__init__()
        self.open: list[tuple[str, str | None]] = []
        self.found: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in VOID:
            element_id = dict(attrs).get("id")
            self.open.append((tag, element_id))
            if element_id:
                self.found[element_id] = ""

    def handle_endtag(self, tag: str) -> None:
        while self.open and self.open.pop()[0] != tag:
            pass

    def handle_data(self, data: str) -> None:
        for _, element_id in self.open:
            if element_id:
                self.found[element_id] += " " + data


def texts(html: str) -> dict[str, str]:
    parser = TextById()
    parser.feed(html)
    return {key: " ".join(value.split()) for key, value in parser.found.items()}


def folder(team: Team) -> Path:
    return team.client.app.state.services.settings.data.uploads / "attachments"


def page(team: Team, path: str = "/settings/privacy") -> Page:
    response = team.client.get(path)
    assert response.status_code == 200, response.text
    return Page(response.text)


def test_page_shows_the_three_parts_and_saves_retention(team: Team) -> None:
    console_login(team.client, team.owner["email"])
    shown = page(team)
    assert {"retention-form", "customer-search", "workspace-export-form"} <= {f["id"] for f in shown.forms}
    assert shown.texts["tab-privacy"] == "Privacy"
    assert "No workspace exports" in shown.texts["exports-empty"]
    assert "has not run" in shown.texts["retention-last-run"]
    form = shown.form("retention-form")
    bad = team.client.post("/settings/privacy/retention", data={**form["fields"], "action": "delete",
                                                                "after_days": ""})
    assert bad.status_code == 422
    assert "how many days" in Page(bad.text).field_errors["after_days"]
    saved = team.client.post("/settings/privacy/retention", data={**form["fields"], "action": "anonymize",
                                                                  "after_days": "180"}, follow_redirects=False)
    assert saved.status_code == 303 and saved.headers["location"] == "/settings/privacy?saved=retention"
    after = page(team, saved.headers["location"])
    assert after.alerts == ["Retention policy saved."]
    assert after.form("retention-form")["fields"]["after_days"] == "180"
    no_csrf = team.client.post("/settings/privacy/retention", data={"action": "off"})
    assert no_csrf.status_code == 403


def test_find_export_and_erase_a_customer_with_typed_confirmation(team: Team) -> None:
    zelda = seed_person(team, folder(team), ZELDA)
    evil = team.db.write(lambda conn: store.create_customer(conn, team.ws, name='<script>alert("x")</script>',
                                                            email="evil@example.org"))
    console_login(team.client, team.owner["email"])
    nobody = page(team, "/settings/privacy?email=nobody@example.org")
    assert nobody.texts["customer-none"] == "No customer with this address."
    escaped = team.client.get("/settings/privacy?email=evil@example.org")
    assert '<script>alert("x")' not in escaped.text and all(s.get("src") for s in Page(escaped.text).scripts)
    assert "alert(" in texts(escaped.text)[f"customer-{evil}"]

    found = page(team, f"/settings/privacy?email={zelda.email}")
    assert "Zelda Quixote" in texts(team.client.get(f"/settings/privacy?email={zelda.email}").text)[
        f"customer-{zelda.customer_id}"]
    download = team.client.get(f"/settings/privacy/customers/{zelda.customer_id}/export")
    assert download.status_code == 200 and "attachment" in download.headers["content-disposition"]
    assert download.json()["customer"]["email"] == zelda.email

    form = found.form(f"erase-{zelda.customer_id}")
    wrong = team.client.post(form["action"], data={**form["fields"], "mode": "delete", "confirm": "zelda@wrong.org"})
    assert wrong.status_code == 422
    assert "exactly" in Page(wrong.text).field_errors[f"confirm-{zelda.customer_id}"]
    assert team.db.query_one("SELECT count(*) AS n FROM customers WHERE id = ?", (zelda.customer_id,))["n"] == 1

    done = team.client.post(form["action"], data={**form["fields"], "mode": "delete",
                                                  "confirm": zelda.email.upper()})
    assert done.status_code == 200, done.text
    shown = Page(done.text)
    assert shown.alerts == ["Customer deleted: 2 conversations, 4 messages, 3 attachments."]
    assert "conversations 2 messages 4" in texts(done.text)["erase-summary"]
    assert team.db.query_one("SELECT count(*) AS n FROM customers WHERE id = ?", (zelda.customer_id,))["n"] == 0
    gone = team.client.get(f"/settings/privacy/customers/{zelda.customer_id}/export")
    assert gone.status_code == 404


def test_workspace_export_progress_and_download(team: Team) -> None:
    seed_person(team, folder(team), ZELDA)
    console_login(team.client, team.owner["email"])
    form = page(team).form("workspace-export-form")
    started = team.client.post(form["action"], data=form["fields"], follow_redirects=False)
    assert started.status_code == 303
    writing = team.client.get(started.headers["location"])
    assert 'hx-get="/settings/privacy/workspace-exports"' in writing.text
    assert "Writing" in Page(writing.text).texts["workspace-export-list"]
    export_id = team.db.query_one("SELECT id FROM exports WHERE kind = 'workspace'")["id"]
    services = team.client.app.state.services
    workspace_export.run(services.db, services.settings.data.exports, export_id)
    fragment = team.client.get("/settings/privacy/workspace-exports", headers=HTMX)
    assert fragment.status_code == 200 and "hx-trigger" not in fragment.text
    assert "Ready" in Page(fragment.text).texts[f"export-{export_id}"]
    zipped = team.client.get(f"/settings/privacy/workspace-exports/{export_id}/download")
    assert zipped.status_code == 200
    assert "messages.json" in zipfile.ZipFile(io.BytesIO(zipped.content)).namelist()


def test_only_managers_reach_the_page(team: Team) -> None:
    zelda = seed_person(team, folder(team), ZELDA)
    team.client.cookies.clear()
    anonymous = team.client.get("/settings/privacy", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login?next=")
    for user in (team.agent, team.viewer):
        console_login(team.client, user["email"])
        assert team.client.get("/settings/privacy").status_code == 403
        assert team.client.get(f"/settings/privacy/customers/{zelda.customer_id}/export").status_code == 403
    other = Team(team.client, "Globex")
    console_login(team.client, other.owner["email"])
    assert team.client.get(f"/settings/privacy/customers/{zelda.customer_id}/export").status_code == 404
    assert zelda.email not in team.client.get(f"/settings/privacy?email={zelda.email}").text.split("value=")[-1]
    assert f"customer-{zelda.customer_id}" not in texts(team.client.get(
        f"/settings/privacy?email={zelda.email}").text)
