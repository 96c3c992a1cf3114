"""The console knowledge page as a browser sees it (HTML parsed, never grepped): empty states, upload through the
API with the page's CSRF token (what knowledge.js does), live status fragment, FAQ add and import, "Test your
bot", delete, roles and scope, and no inline script or style (the CSP forbids them)."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any, Iterator

import pytest
from litestar.testing import TestClient

from accounts_support import PASSWORD, Page, add_user, bearer, login, open_client
from knowledge_support import DOCS, kb_settings, pdf_bytes, wait_settled, wait_until

HTMX = {"HX-Request": "true"}


class Elements(HTMLParser):
    """Attributes of every element that has an id, and the text of each."""

    def __init__(self, html: str):
        super().__init__()
        self.attrs: dict[str, dict[str, str | None]] = {}
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.attrs[a["id"]] = {"tag": tag, **a}


def console_login(client: TestClient, email: str) -> None:
    client.cookies.clear()
    form = Page(client.get("/login").text).form("login-form")
    response = client.post("/login", data={**form["fields"], "email": email, "password": PASSWORD},
                           follow_redirects=False)
    assert response.status_code == 303, response.text


class World:
    def __init__(self, client: TestClient):
        self.client = client
        add_user(client, "Console Co", "owner@console.example", "owner")
        add_user(client, "Console Co", "viewer@console.example", "viewer")
        add_user(client, "Other Co", "owner@other.example", "owner")
        self.owner = bearer(login(client, "owner@console.example"))
        self.bot = client.post("/api/v1/chatbots", json={"name": "Console Bot"}, headers=self.owner).json()
        other = bearer(login(client, "owner@other.example"))
        self.other_bot = client.post("/api/v1/chatbots", json={"name": "Other Bot"}, headers=other).json()
        self.base = f"/chatbots/{self.bot['id']}/knowledge"

    def page(self) -> tuple[Page, Elements]:
        response = self.client.get(self.base)
        assert response.status_code == 200, response.text
        return Page(response.text), Elements(response.text)

    def csrf(self) -> str:
        return self.page()[0].form("faq-form")["fields"]["csrf_token"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with open_client(kb_settings(tmp_path_factory.mktemp("kb-console") / "data")) as client:
        world = World(client)
        console_login(client, "owner@console.example")
        yield world


def test_empty_page_has_every_part_and_no_inline_code(world: World) -> None:
    page, elements = world.page()
    assert "No documents yet" in page.texts["documents-empty"]
    assert "No FAQs yet" in page.texts["faqs-empty"]
    for form_id in ("upload-form", "faq-form", "faq-import-form", "test-form"):
        page.form(form_id)
    upload_form = elements.attrs["upload-form"]
    assert upload_form["action"] == DOCS and upload_form["data-chatbot"] == world.bot["id"]
    assert upload_form["data-csrf"] == world.csrf()
    assert "multiple" in elements.attrs["upload-files"]
    assert page.inline_styles == 0
    assert all(script.get("src") for script in page.scripts)
    assert any("knowledge.js" in (script.get("src") or "") for script in page.scripts)
    assert "every 2s" not in (elements.attrs["documents"]["hx-trigger"] or "")  # nothing to watch yet
    js = next(s["src"] for s in page.scripts if "knowledge.js" in (s.get("src") or ""))
    assert world.client.get(js).status_code == 200


def test_upload_with_the_page_token_then_live_status_then_delete(world: World) -> None:
    token = world.csrf()
    response = world.client.post(DOCS, files={"file": ("manual.pdf", pdf_bytes(["Cleaning\nRinse the filter "
                                                                               "under warm water weekly."]))},
                                 data={"chatbot_id": world.bot["id"]}, headers={"X-CSRF-Token": token})
    assert response.status_code == 201, response.text
    doc_id = response.json()["id"]
    without_token = world.client.post(DOCS, files={"file": ("x.txt", b"some text here")},
                                      data={"chatbot_id": world.bot["id"]})
    assert without_token.status_code == 403

    def ready() -> bool:
        fragment = Elements(world.client.get(f"{world.base}/documents", headers=HTMX).text)
        return f"doc-{doc_id}" in fragment.attrs and "status-completed" in fragment.attrs[f"doc-{doc_id}"]["class"]

    wait_until(ready, timeout=60)
    page, elements = world.page()
    assert "manual.pdf" in page.texts[f"doc-{doc_id}"] and "Ready" in page.texts[f"doc-{doc_id}"]
    assert "every 2s" not in elements.attrs["documents"]["hx-trigger"]

    results = world.client.get(f"{world.base}/test", params={"q": "how do I clean the filter"}, headers=HTMX)
    assert results.status_code == 200
    shown = Page(results.text)
    assert "manual.pdf, page 1" in shown.texts["result-1"] and "Rinse the filter" in shown.texts["result-1"]

    gone = world.client.post(f"{world.base}/documents/{doc_id}/delete", headers={**HTMX, "X-CSRF-Token": token})
    assert gone.status_code == 200
    assert f"doc-{doc_id}" not in Elements(gone.text).attrs and "Deleted manual.pdf." in Page(gone.text).alerts


def test_processing_documents_are_polled(world: World) -> None:
    token = world.csrf()
    doc = world.client.post(DOCS, files={"file": ("slow.md", b"# Slow\n\nA document being processed.\n")},
                            data={"chatbot_id": world.bot["id"]}, headers={"X-CSRF-Token": token}).json()
    # pretend the job is mid-way: the fragment must keep polling
    services = world.client.app.state.services
    wait_settled(world.client, world.owner, doc["id"])
    services.db.write(lambda conn: conn.execute("UPDATE knowledge_documents SET status='processing', "
                                                "stage='embedding', progress=40 WHERE id = ?", (doc["id"],)))
    fragment = world.client.get(f"{world.base}/documents", headers=HTMX).text
    elements, page = Elements(fragment), Page(fragment)
    assert "every 2s" in elements.attrs["documents"]["hx-trigger"]
    assert "Embedding" in page.texts[f"doc-{doc['id']}"]
    services.db.write(lambda conn: conn.execute("UPDATE knowledge_documents SET status='failed', stage=NULL, "
                                                "error_code='no_text', error_message='No text was found.' "
                                                "WHERE id = ?", (doc["id"],)))
    failed = Page(world.client.get(f"{world.base}/documents", headers=HTMX).text)
    assert failed.field_errors[f"doc-{doc['id']}"] == "No text was found."
    retried = world.client.post(f"{world.base}/documents/{doc['id']}/retry", headers={**HTMX, "X-CSRF-Token": token})
    assert retried.status_code == 200
    assert wait_settled(world.client, world.owner, doc["id"])["status"] == "completed"


def test_faqs_add_import_and_errors(world: World) -> None:
    token = world.csrf()
    added = world.client.post(f"{world.base}/faqs", data={"question": "Is there a student discount?",
                                                          "answer": "Yes, 20% with a student card.",
                                                          "tags": "discount, students"},
                              headers={**HTMX, "X-CSRF-Token": token})
    assert added.status_code == 200 and Page(added.text).alerts == ["FAQ added."]
    duplicate = world.client.post(f"{world.base}/faqs", data={"question": "is there a student discount",
                                                              "answer": "Again"}, headers={**HTMX, "X-CSRF-Token": token})
    assert "already exists" in Page(duplicate.text).alerts[0]
    csv = b"question,answer,category,tags\nDo you gift wrap?,Yes for 2 euros.,extras,\n,missing question,,\n"
    imported = world.client.post(f"{world.base}/faqs/import", files={"file": ("faqs.csv", csv)},
                                 data={"csrf_token": token}, headers=HTMX)
    assert imported.status_code == 200
    report = Page(imported.text).texts["import-report"]
    assert "Imported 1, skipped 1." in report and "Row 3:" in report
    page, _ = world.page()
    assert any("Do you gift wrap?" in text for key, text in page.texts.items() if key.startswith("faq-"))
    no_token = world.client.post(f"{world.base}/faqs", data={"question": "Q?", "answer": "A"}, headers=HTMX)
    assert no_token.status_code == 403


def test_viewer_sees_no_edit_controls_and_cannot_change(world: World) -> None:
    try:
        console_login(world.client, "viewer@console.example")
        page, elements = world.page()
        assert "upload-form" not in elements.attrs and "faq-form" not in elements.attrs
        page.form("test-form")
        token = world.client.cookies.get("cs_session") and Elements(
            world.client.get(world.base).text).attrs["knowledge"]["hx-headers"].split('"')[3]
        response = world.client.post(f"{world.base}/faqs", data={"question": "Q?", "answer": "A"},
                                     headers={**HTMX, "X-CSRF-Token": token})
        assert response.status_code == 403
    finally:
        console_login(world.client, "owner@console.example")


def test_other_workspace_bot_is_not_found(world: World) -> None:
    assert world.client.get(f"/chatbots/{world.other_bot['id']}/knowledge").status_code == 404
    assert world.client.get("/chatbots/nope/knowledge/documents", headers=HTMX).status_code == 404
    world.client.cookies.clear()
    try:
        anonymous = world.client.get(world.base, follow_redirects=False)
        assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")
    finally:
        console_login(world.client, "owner@console.example")
