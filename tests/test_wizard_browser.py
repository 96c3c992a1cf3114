"""The first five minutes in a real browser (issue 8, Tests): a new owner opens ``/setup``, creates the workspace,
walks the chatbot wizard to the done page, sees the real widget in the live preview, copies the embed code, and a
customer's page on another loopback origin with that code shows a launcher that opens and greets.

Debian's Chromium under Playwright, the real server on 127.0.0.1 — the same fixtures as test_widget_browser.
"""

from __future__ import annotations

import time
from typing import Any, Iterator

import pytest

pytest.importorskip("playwright")
from playwright.sync_api import Browser, FrameLocator, Page, expect  # noqa: E402

from browser_support import CHROMIUM, CHROMIUM_ARGS, SERVER_ENV, host_page  # noqa: E402
from conftest import LiveServer  # noqa: E402
from local_site import LocalSite, Page as SitePage  # noqa: E402

TIMEOUT = 30_000
GREETING = "Hi! I'm the Acme helper. What can I do for you?"


@pytest.fixture(scope="session")
def browser_type_launch_args() -> dict[str, Any]:
    """pytest-playwright launches Debian's Chromium, never a downloaded one."""
    return {"executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A brand-new instance: no users, so /setup is open."""
    live = LiveServer(tmp_path_factory.mktemp("wizard-browser") / "data", **SERVER_ENV)
    try:
        live.wait()
        yield live
    finally:
        live.stop()


@pytest.fixture
def problems(page: Page) -> Iterator[list[str]]:
    """Uncaught errors and CSP violations on the console and the customer's page fail the test."""
    found: list[str] = []
    page.on("console", lambda message: found.append(f"console: {message.text}")
            if "Content Security Policy" in message.text else None)
    page.on("pageerror", lambda error: found.append(f"pageerror: {error}"))
    yield found
    assert found == []


def first_run(page: Page, url: str) -> None:
    page.goto(f"{url}/setup")
    page.get_by_label("Workspace name").fill("Acme")
    page.get_by_label("Your name").fill("Sarah Owner")
    page.get_by_label("Email").fill("sarah@acme.example")
    page.get_by_label("Password", exact=True).fill("Secret#123")
    page.get_by_label("Repeat the password").fill("Secret#123")
    page.get_by_role("button", name="Create workspace").click()
    expect(page).to_have_url(f"{url}/chatbots/new")


def wizard(page: Page) -> None:
    page.get_by_label("Name").fill("Acme Help")
    page.get_by_role("button", name="Next: personality").click()
    page.get_by_label("Friendly").check()
    page.get_by_role("button", name="Next: business hours").click()
    expect(page.get_by_label("Always available")).to_be_checked()
    page.get_by_role("button", name="Next: greeting").click()
    page.get_by_label("First message customers see").fill(GREETING)
    page.get_by_label("Chat button text").fill("Ask Acme")
    page.get_by_role("button", name="Finish").click()
    expect(page.get_by_role("heading", name="Acme Help is ready")).to_be_visible()


def open_chat(host: Page | FrameLocator) -> None:
    """The loader starts with the default button; opening loads the frame, which greets and restyles the button
    with the wizard's text."""
    launcher = host.get_by_role("button", name="Chat with us")
    expect(launcher).to_be_visible(timeout=TIMEOUT)
    launcher.click()
    expect(host.frame_locator("iframe[title='Chat window']").locator(".cs-greeting")).to_have_text(
        GREETING, timeout=TIMEOUT)
    expect(host.get_by_role("button", name="Ask Acme")).to_be_visible(timeout=TIMEOUT)


def test_a_new_owner_goes_from_setup_to_a_working_widget(browser: Browser, server: LiveServer,
                                                         problems: list[str], page: Page) -> None:
    started = time.monotonic()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    first_run(page, server.url)
    wizard(page)

    # the live preview is the real widget, framed from a page of ours
    page.locator("#preview-frame").scroll_into_view_if_needed()  # as the owner scrolls to it
    open_chat(page.frame_locator("#preview-frame"))

    page.get_by_role("button", name="Copy").click()
    expect(page.locator("#copy-status")).to_have_text("Copied to the clipboard.")
    snippet = page.evaluate("navigator.clipboard.readText()")
    assert snippet == page.locator("#embed-code").input_value()
    assert snippet.startswith(f'<script async src="{server.url}/widget.js" data-chatbot="pk_')
    assert time.monotonic() - started < 300  # the PRD's five minutes, with room to spare

    with LocalSite() as shop:
        shop.pages["/"] = SitePage(host_page(snippet))
        page.goto(shop.url + "/")
        open_chat(page)


def test_without_the_clipboard_api_copy_selects_the_code(browser: Browser, server: LiveServer) -> None:
    """Older browsers or a refused permission: the code is selected for Ctrl+C and the page says so."""
    context = browser.new_context()
    page = context.new_page()
    page.add_init_script("Object.defineProperty(navigator, 'clipboard', {value: undefined});"
                         "document.execCommand = function () { return false; };")
    page.goto(f"{server.url}/login")
    page.get_by_label("Email").fill("sarah@acme.example")
    page.get_by_label("Password").fill("Secret#123")
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"{server.url}/chatbots")
    page.get_by_role("link", name="Install").first.click()
    page.get_by_role("button", name="Copy").click()
    expect(page.locator("#copy-status")).to_have_text("Selected: press Ctrl+C (⌘C on a Mac) to copy.")
    selected = page.evaluate("(() => { const box = document.getElementById('embed-code');"
                             " return box.value.substring(box.selectionStart, box.selectionEnd); })()")
    assert selected == page.locator("#embed-code").input_value() and "data-chatbot" in selected
    context.close()
