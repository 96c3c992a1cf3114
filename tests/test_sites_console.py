"""The console's websites page as a browser sees it (HTML parsed, never grepped): the empty state, adding a site
with its crawl settings through the form (CSRF checked), live progress by polling while it crawls, a source's
pages with a status filter, re-crawl, retry of a failed crawl, delete behind a confirmation (htmx dialog, and a
page for browsers without JavaScript), form errors in words, roles and workspace scope, no inline code (CSP)."""

from __future__ import annotations

import time
from typing import Any, Iterator

import pytest
from litestar.testing import TestClient

from accounts_support import Page, account_settings, add_user, bearer, login, open_client
from knowledge_support import DEFAULT_CACHE
from local_site import LocalSite
from local_site import Page as SitePage
from local_site import html
from test_knowledge_console import Elements, console_login

HTMX = {"HX-Request": "true"}


def text_page(title: str, body: str, links: str = "") -> str:
    return html(title, f"<nav>{links}</nav><main><h1>{title}</h1><p>{body}</p></main>")


class World:
    def __init__(self, client: TestClient, site: LocalSite):
        self.client, self.site = client, site
        add_user(client, "Sites Co", "owner@sites.example", "owner")
        add_user(client, "Sites Co", "viewer@sites.example", "viewer")
        add_user(client, "Other Co", "owner@other.example", "owner")
        owner = bearer(login(client, "owner@sites.example"))
        self.bot = client.post("/api/v1/chatbots", json={"name": "Sites Bot"}, headers=owner).json()
        other = bearer(login(client, "owner@other.example"))
        self.other_bot = client.post("/api/v1/chatbots", json={"name": "Other Bot"}, headers=other).json()
        self.base = f"/chatbots/{self.bot['id']}/knowledge/sites"

    def page(self, path: str = "") -> tuple[Page, Elements]:
        response = self.client.get(self.base + path)
        assert response.status_code == 200, response.text
        return Page(response.text), Elements(response.text)

    def csrf(self) -> str:
        return self.page()[0].form("site-form")["fields"]["csrf_token"]

    def add(self, **fields: str) -> Any:
        token = self.csrf()
        form = {"url": f"{self.site.url}/", "max_pages": "20", "max_depth": "2", "schedule": "none", **fields}
        return self.client.post(self.base, data={**form, "csrf_token": token}, headers=HTMX)

    def source_id(self, url: str) -> str:
        rows = self.client.app.state.services.db.query("SELECT id FROM knowledge_urls WHERE url = ?", (url,))
        return rows[0]["id"]

    def wait(self, source_id: str, timeout: float = 120) -> Elements:
        """Poll the list fragment as htmx would, until the crawl stops polling."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            fragment = Elements(self.client.get(f"{self.base}/list", headers=HTMX).text)
            if "every 2s" not in (fragment.attrs["sites"]["hx-trigger"] or ""):
                return fragment
            time.sleep(0.2)
        raise TimeoutError("crawl did not finish")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    settings = account_settings(tmp_path_factory.mktemp("sites-console") / "data", RUN_WORKER="true",
                                MODEL_CACHE_DIR=str(DEFAULT_CACHE), OUTBOUND_ALLOWLIST="127.0.0.1")
    with LocalSite() as site, open_client(settings) as client:
        site.pages.update({
            "/": SitePage(text_page("Help center", "Guides about billing and accounts for the Sites product.",
                                    '<a href="/billing">Billing</a> <a href="/blog/news">Blog</a>')),
            "/billing": SitePage(text_page("Billing", "Invoices are emailed on the first day of every month.")),
            "/blog/news": SitePage(text_page("News", "Release notes for the spring edition.")),
        })
        world = World(client, site)
        console_login(client, "owner@sites.example")
        yield world


def test_empty_page_has_tabs_form_and_no_inline_code(world: World) -> None:
    page, elements = world.page()
    assert "No websites yet" in page.texts["sites-empty"]
    form = page.form("site-form")
    assert form["method"] == "post" and form["action"] == world.base
    assert {"url", "max_pages", "max_depth", "include_patterns", "exclude_patterns", "follow_external_links",
            "schedule", "csrf_token"} <= set(form["fields"])
    assert elements.attrs["site-url"]["type"] == "url" and "required" in elements.attrs["site-url"]
    assert page.inline_styles == 0 and all(script.get("src") for script in page.scripts)
    assert "every 2s" not in elements.attrs["sites"]["hx-trigger"]
    assert elements.attrs["tab-sites"]["aria-current"] == "page" and "aria-current" not in elements.attrs["tab-gaps"]
    knowledge = Elements(world.client.get(f"/chatbots/{world.bot['id']}/knowledge").text)
    assert knowledge.attrs["tab-sites"]["href"] == world.base  # the knowledge page leads here
    assert knowledge.attrs["tab-documents"]["aria-current"] == "page"


def test_add_a_site_watch_it_crawl_see_pages_then_recrawl(world: World) -> None:
    added = world.add(exclude_patterns="/blog/*", schedule="weekly")
    assert added.status_code == 200, added.text
    shown = Page(added.text)
    assert any(a.startswith("Crawling http://127.0.0.1") for a in shown.alerts)
    source_id = world.source_id(f"{world.site.url}/")
    assert f"site-{source_id}" in Elements(added.text).attrs
    done = world.wait(source_id)
    assert "status-completed" in done.attrs[f"site-{source_id}"]["class"]
    page, _ = world.page()
    counts = page.texts[f"counts-{source_id}"]
    assert "2 indexed" in counts and "skipped" in counts  # "/" and "/billing"; the blog is excluded
    assert "Weekly" in page.texts[f"site-{source_id}"]

    detail, elements = world.page(f"/{source_id}")
    assert "Ready" in detail.texts["site-summary"] and "2 indexed" in detail.texts["site-summary"]
    assert "/blog/*" in detail.texts["site-settings"]
    rows = [key for key in detail.texts if key.startswith("page-")]
    assert len(rows) == 3
    billing = next(detail.texts[k] for k in rows if "Billing" in detail.texts[k])
    assert "Indexed" in billing
    skipped = Page(world.client.get(f"{world.base}/{source_id}", params={"status": "skipped"}, headers=HTMX).text)
    assert [k for k in skipped.texts if k.startswith("page-")] and all(
        "Skipped" in skipped.texts[k] for k in skipped.texts if k.startswith("page-"))
    nothing = Page(world.client.get(f"{world.base}/{source_id}", params={"status": "failed"}, headers=HTMX).text)
    assert "No failed pages" in nothing.texts["pages-empty"]

    actions = [f["action"] for f in detail.forms]
    assert f"{world.base}/{source_id}/recrawl" in actions and elements.attrs["site-actions"]
    token = world.csrf()
    again = world.client.post(f"{world.base}/{source_id}/recrawl", headers={**HTMX, "X-CSRF-Token": token})
    assert again.status_code == 200 and any("again" in a for a in Page(again.text).alerts)
    assert "status-completed" in world.wait(source_id).attrs[f"site-{source_id}"]["class"]
    no_token = world.client.post(f"{world.base}/{source_id}/recrawl", headers=HTMX)
    assert no_token.status_code == 403


def test_progress_is_polled_while_crawling(world: World) -> None:
    world.site.pages["/slow"] = SitePage(text_page("Slow", "A page that takes its time to answer."), delay=1.5)
    world.add(url=f"{world.site.url}/slow", max_depth="0")
    source_id = world.source_id(f"{world.site.url}/slow")
    fragment = world.client.get(f"{world.base}/list", headers=HTMX).text
    elements = Elements(fragment)
    assert "every 2s" in elements.attrs["sites"]["hx-trigger"]
    assert any(s in elements.attrs[f"site-{source_id}"]["class"] for s in ("status-pending", "status-crawling"))
    detail = Elements(world.client.get(f"{world.base}/{source_id}", headers=HTMX).text)
    assert "every 2s" in detail.attrs["site-pages"]["hx-trigger"]
    world.wait(source_id)
    detail = Elements(world.client.get(f"{world.base}/{source_id}", headers=HTMX).text)
    assert "every 2s" not in detail.attrs["site-pages"]["hx-trigger"]


def test_failed_crawl_says_why_and_retry_fixes_it(world: World) -> None:
    world.add(url=f"{world.site.url}/not-yet", max_depth="0")
    source_id = world.source_id(f"{world.site.url}/not-yet")
    world.wait(source_id)
    failed = Page(world.client.get(f"{world.base}/list", headers=HTMX).text)
    assert failed.field_errors[f"site-{source_id}"]
    retry_form = next(f for f in failed.forms if f["action"] == f"{world.base}/{source_id}/retry")
    world.site.pages["/not-yet"] = SitePage(text_page("Now here", "Published after the first crawl failed."))
    retried = world.client.post(retry_form["action"], data=retry_form["fields"], headers=HTMX)
    assert retried.status_code == 200
    assert "status-completed" in world.wait(source_id).attrs[f"site-{source_id}"]["class"]
    conflict = world.client.post(retry_form["action"], data=retry_form["fields"], headers=HTMX)
    assert "Only a failed crawl can be retried" in Page(conflict.text).alerts[0]


def test_form_errors_are_shown_in_words_next_to_the_form(world: World) -> None:
    bad = world.add(url="ftp://example.com/", max_pages="0")
    assert bad.status_code == 200 and bad.headers["hx-retarget"] == "#site-form"
    page = Page(bad.text)
    assert page.alerts and page.alerts[0].startswith("Could not add the site.")
    assert page.field_errors["site-max-pages"] == "A whole number from 1 to 5000."
    assert page.form("site-form")["fields"]["url"] == "ftp://example.com/"  # what was typed stays
    private = world.client.post(world.base, data={"url": "http://10.1.2.3/", "csrf_token": world.csrf()})
    assert private.status_code == 422
    assert Page(private.text).field_errors["site-url"]
    count = world.client.app.state.services.db.query("SELECT count(*) AS n FROM knowledge_urls WHERE url LIKE "
                                                     "'%10.1.2.3%'")[0]["n"]
    assert count == 0


def test_delete_asks_first_then_removes_the_site(world: World) -> None:
    world.add(url=f"{world.site.url}/billing", max_depth="0")
    source_id = world.source_id(f"{world.site.url}/billing")
    world.wait(source_id)
    listed = Page(world.client.get(f"{world.base}/list", headers=HTMX).text)
    button = next(f for f in listed.forms if f["action"] == f"{world.base}/{source_id}/delete")
    assert button["method"] == "get"  # without JavaScript: the confirmation page first
    with_js = Elements(world.client.get(f"{world.base}/list", headers=HTMX).text).attrs[f"delete-{source_id}"]
    assert with_js["hx-post"] == button["action"] and world.site.url in with_js["hx-confirm"]
    confirm, _ = world.page(f"/{source_id}/delete")
    assert world.site.url in confirm.texts["delete-what"]
    form = confirm.form("delete-form")
    gone = world.client.post(form["action"], data=form["fields"], follow_redirects=False)
    assert gone.status_code == 303 and gone.headers["location"] == f"{world.base}?notice=deleted"
    after, elements = world.page("?notice=deleted")
    assert "Site deleted, with its pages." in after.alerts and f"site-{source_id}" not in elements.attrs
    assert world.client.get(f"{world.base}/{source_id}").status_code == 404


def test_viewer_reads_but_cannot_change_and_other_workspaces_are_not_found(world: World) -> None:
    source_id = world.source_id(f"{world.site.url}/")
    try:
        console_login(world.client, "viewer@sites.example")
        page, elements = world.page()
        assert "site-form" not in elements.attrs and f"site-{source_id}" in elements.attrs
        assert not [f for f in page.forms if f["action"].endswith(("/recrawl", "/delete", "/retry"))]
        token = Elements(world.client.get(world.base).text).attrs["sites-page"]["hx-headers"].split('"')[3]
        denied = world.client.post(f"{world.base}/{source_id}/recrawl", headers={**HTMX, "X-CSRF-Token": token})
        assert denied.status_code == 403
        detail = world.client.get(f"{world.base}/{source_id}")
        assert detail.status_code == 200 and "site-actions" not in Elements(detail.text).attrs
    finally:
        console_login(world.client, "owner@sites.example")
    assert world.client.get(f"/chatbots/{world.other_bot['id']}/knowledge/sites").status_code == 404
    other_base = f"/chatbots/{world.other_bot['id']}/knowledge/sites"
    assert world.client.get(f"{other_base}/{source_id}").status_code == 404
    world.client.cookies.clear()
    try:
        anonymous = world.client.get(world.base, follow_redirects=False)
        assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")
    finally:
        console_login(world.client, "owner@sites.example")
