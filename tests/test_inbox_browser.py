"""The inbox in a real browser (issue 7, Tests): Debian's Chromium under Playwright, the real server on 127.0.0.1,
a customer's page with the widget on a second loopback origin, and two agents signed in to the console.

(a) a widget message appears in the open inbox without a reload; (b) take over and reply from the console reach
the widget; (c) a note that @mentions agent B raises B's bell live and shows in B's notification list; (d) a new
conversation arriving live keeps the rows loaded with "Load more"; (e) a saved filter applies from the picker.
"""

from __future__ import annotations

from typing import Any, Iterator

import pytest

pytest.importorskip("playwright")
from playwright.sync_api import Browser, FrameLocator, Page, expect  # noqa: E402

from accounts_support import account_settings, add_user, bearer, login, open_client  # noqa: E402
from chatsupport.domain import conversations as states  # noqa: E402
from chatsupport.store import conversations as conversation_store  # noqa: E402
from chatsupport.store import db  # noqa: E402
from browser_support import CHROMIUM, CHROMIUM_ARGS, SERVER_ENV, AgentApi, host_page  # noqa: E402
from conftest import LiveServer  # noqa: E402
from local_site import LocalSite, Page as SitePage  # noqa: E402

TIMEOUT = 30_000
OWNER, AGENT_A, AGENT_B = "owner@acme.example", "alex@acme.example", "bea@acme.example"
NAME_A, NAME_B = "Alex Agent", "Bea Backup"
PASSWORD = "Secret#123"


@pytest.fixture(scope="session")
def browser_type_launch_args() -> dict[str, Any]:
    return {"executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, dict[str, str]]]:
    """Owner, two agents and one chatbot without a pre-chat form, answering at once; then the real server."""
    data_dir = tmp_path_factory.mktemp("inbox-browser") / "data"
    with open_client(account_settings(data_dir, MODEL_CACHE_DIR=SERVER_ENV["MODEL_CACHE_DIR"])) as client:
        workspace_id = add_user(client, "Acme", OWNER, "owner")["workspace_id"]
        add_user(client, "Acme", AGENT_A, "agent", name=NAME_A)
        bea = add_user(client, "Acme", AGENT_B, "agent", name=NAME_B)
        bot = client.post("/api/v1/chatbots", headers=bearer(login(client, OWNER)), json={
            "name": "Acme Help", "behavior_settings": {"response_delay": 0},
            "ai_settings": {"model": "extractive", "enable_escalation": False}})
        assert bot.status_code == 201, bot.text
    server = LiveServer(data_dir, **SERVER_ENV)
    try:
        server.wait()
        owner = AgentApi(server.url, OWNER)  # the embed code names the live server's address
        embed = owner.http.get(f"/api/v1/chatbots/{bot.json()['id']}").json()["embed_code"]
        owner.close()
        yield server, {"embed_code": embed, "bea_id": bea["id"], "workspace_id": workspace_id,
                       "bot_id": bot.json()["id"], "database": str(data_dir / "chatsupport.db")}
    finally:
        server.stop()


@pytest.fixture(scope="module")
def site(instance: tuple[LiveServer, dict[str, str]]) -> Iterator[LocalSite]:
    with LocalSite() as shop:
        shop.pages["/shop"] = SitePage(host_page(instance[1]["embed_code"]))
        yield shop


def console(browser: Browser, server: LiveServer, email: str, problems: list[str]) -> Page:
    """A signed-in console tab on /inbox; uncaught errors and CSP violations are collected."""
    page = browser.new_context().new_page()
    page.goto(f"{server.url}/login?next=/inbox")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible(timeout=TIMEOUT)
    page.on("pageerror", lambda error: problems.append(f"pageerror: {error}"))
    page.on("console", lambda m: problems.append(f"console: {m.text} at {m.location.get('url')}")
            if m.type == "error" and "favicon" not in str(m.location.get("url")) else None)
    page.reload()  # the inbox page itself, watched from its start
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible(timeout=TIMEOUT)
    page.evaluate("window.__sameDocument = true")  # gone after any reload
    return page


def widget(browser: Browser, site: LocalSite) -> FrameLocator:
    page = browser.new_context().new_page()
    page.goto(f"{site.url}/shop")
    page.get_by_role("button", name="Chat with us").click()
    frame = page.frame_locator("iframe[title='Chat window']")
    expect(frame.locator("#cs-app")).to_be_visible(timeout=TIMEOUT)
    return frame


def send(frame: FrameLocator, text: str) -> None:
    box = frame.get_by_role("textbox", name="Message")
    box.fill(text)
    box.press("Enter")


def settled(page: Page) -> None:
    """htmx has processed what it swapped in (a click before that would be a plain form post)."""
    expect(page.locator(".htmx-request, .htmx-settling, .htmx-swapping")).to_have_count(0, timeout=TIMEOUT)


def still_same_document(page: Page) -> None:
    assert page.evaluate("window.__sameDocument === true"), "the page was reloaded"


def test_widget_message_appears_live_then_takeover_and_reply_reach_the_widget(
        browser: Browser, instance: tuple[LiveServer, dict[str, str]], site: LocalSite) -> None:
    problems: list[str] = []
    server = instance[0]
    inbox = console(browser, server, AGENT_A, problems)
    expect(inbox.get_by_text("No conversations yet")).to_be_visible()

    frame = widget(browser, site)
    send(frame, "Where is my parcel 4711?")
    row = inbox.locator("#rows > li.row")
    expect(row).to_have_count(1, timeout=TIMEOUT)  # the bot may have answered already: the preview is its reply
    expect(row).to_contain_text("Visitor")
    still_same_document(inbox)

    row.locator("a").click()
    expect(inbox.locator("#timeline")).to_contain_text("Where is my parcel 4711?", timeout=TIMEOUT)
    settled(inbox)
    inbox.keyboard.press("t")  # the take-over shortcut
    expect(inbox.locator("#conversation .badge")).to_have_text("agent handling", timeout=TIMEOUT)
    settled(inbox)
    expect(frame.get_by_text(f"You're now chatting with {NAME_A}")).to_be_visible(timeout=TIMEOUT)

    box = inbox.get_by_label("Reply to Visitor")
    box.fill("Hi, Alex here. It ships today.")
    box.press("Enter")
    expect(frame.locator(".cs-agent").filter(has_text="It ships today.")).to_have_count(1, timeout=TIMEOUT)
    expect(inbox.locator("#timeline")).to_contain_text("It ships today.")

    send(frame, "Thanks <b>a lot</b>!")
    expect(inbox.locator("#timeline")).to_contain_text("Thanks <b>a lot</b>!", timeout=TIMEOUT)
    expect(inbox.locator("#timeline b")).to_have_count(0)
    expect(row.locator(".preview")).to_have_text("Thanks <b>a lot</b>!")  # the AI is silent now: the preview is live
    still_same_document(inbox)
    assert problems == []


def test_a_mention_in_a_note_rings_the_other_agents_bell(
        browser: Browser, instance: tuple[LiveServer, dict[str, str]], site: LocalSite) -> None:
    problems: list[str] = []
    server = instance[0]
    frame = widget(browser, site)
    send(frame, "My invoice is wrong")
    alex = console(browser, server, AGENT_A, problems)
    bea = console(browser, server, AGENT_B, problems)
    expect(bea.locator("#bell-count")).to_have_attribute("data-count", "0", timeout=TIMEOUT)

    alex.locator("#rows > li.row").first.locator("a").click()  # the newest conversation
    expect(alex.locator("#timeline")).to_contain_text("My invoice is wrong", timeout=TIMEOUT)
    settled(alex)
    note = alex.get_by_label("Internal note (markdown; @ to mention)")
    note.press_sequentially("Please check this, @Be")
    alex.locator(".picker").get_by_role("option", name=NAME_B).click()
    expect(note).to_have_value(f"Please check this, @[{NAME_B}]({instance[1]['bea_id']}) ")
    alex.get_by_role("button", name="Add note").click()
    expect(alex.locator("#timeline .note")).to_contain_text(f"Please check this, @{NAME_B}", timeout=TIMEOUT)

    expect(bea.locator("#bell-count")).to_have_text("1", timeout=TIMEOUT)
    still_same_document(bea)
    bea.locator("#bell").click()
    expect(bea.locator("#notification-list")).to_contain_text(f"{NAME_A} mentioned you", timeout=TIMEOUT)
    assert problems == []


def test_a_live_conversation_keeps_the_rows_loaded_with_load_more(
        browser: Browser, instance: tuple[LiveServer, dict[str, str]], site: LocalSite) -> None:
    problems: list[str] = []
    server, info = instance
    conn = db.connect(info["database"])  # 30 older conversations, written beside the running server
    with conn:
        for n in range(30):
            conv = states.start(conn, info["workspace_id"], info["bot_id"], None, {})
            conversation_store.add_message(conn, conv, "customer", f"Old question {n}")
            conn.execute("UPDATE conversations SET created_at = ?, updated_at = ? WHERE id = ?",
                         (f"2024-01-{n + 1:02d}T10:00:00.000Z", f"2024-01-{n + 1:02d}T10:00:00.000Z", conv))
    conn.close()
    inbox = console(browser, server, AGENT_A, problems)
    rows = inbox.locator("#rows > li.row")
    expect(rows).to_have_count(25, timeout=TIMEOUT)
    before = inbox.evaluate("document.querySelectorAll('#rows > li.row').length")
    inbox.get_by_role("link", name="Load more").click()
    expect(inbox.locator("#rows")).to_contain_text("Old question 0", timeout=TIMEOUT)
    loaded = rows.count()
    assert loaded > before

    frame = widget(browser, site)
    send(frame, "A brand new question")
    expect(rows.first).to_contain_text("Visitor", timeout=TIMEOUT)
    expect(rows).to_have_count(loaded + 1, timeout=TIMEOUT)
    expect(inbox.locator("#rows")).to_contain_text("Old question 0")  # still there, below
    expect(inbox.get_by_role("link", name="Load more")).to_have_count(0)
    still_same_document(inbox)

    inbox.get_by_text("Filters", exact=True).click()
    inbox.locator("#f-status").select_option("escalated")
    expect(rows).to_have_count(0, timeout=TIMEOUT)
    settled(inbox)
    inbox.get_by_text("Save filter").click()
    inbox.get_by_label("Name").fill("Escalated only")
    inbox.get_by_role("button", name="Save", exact=True).click()
    expect(inbox.locator("#saved-list")).to_contain_text("Escalated only", timeout=TIMEOUT)
    inbox.get_by_role("link", name="Clear", exact=True).click()
    expect(rows).to_have_count(25, timeout=TIMEOUT)
    inbox.get_by_text("Saved (1)").click()
    inbox.get_by_role("link", name="Escalated only").click()
    expect(inbox.locator("#f-status")).to_have_value("escalated", timeout=TIMEOUT)
    expect(inbox.get_by_text("No conversations match these filters.")).to_be_visible()
    assert problems == []
