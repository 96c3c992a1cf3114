"""The chat widget in a real browser (issue 6, Tests): Debian's Chromium driven by Playwright, the real server on
127.0.0.1, and a customer's page on a second loopback origin that pastes the chatbot's embed code.

One server (and one seeded instance) serves the whole module; every test gets a fresh browser context, so a new
visitor with its own localStorage, visitor id and rate limits.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable, Iterator

import pytest

pytest.importorskip("playwright")
from playwright.sync_api import BrowserContext, FrameLocator, Page, WebSocketRoute, expect  # noqa: E402

from browser_support import (AGENT_NAME, CHROMIUM, CHROMIUM_ARGS, HELP_URL, OWNER, QUESTION, SERVER_ENV,  # noqa: E402
                             AgentApi, Seeded, host_page, messages_of, seed)
from conftest import LiveServer  # noqa: E402
from local_site import LocalSite, Page as SitePage  # noqa: E402

TIMEOUT = 30_000


@pytest.fixture(scope="session")
def browser_type_launch_args() -> dict[str, Any]:
    """pytest-playwright launches Debian's Chromium, never a downloaded one."""
    return {"executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Seeded]]:
    data_dir = tmp_path_factory.mktemp("widget-browser") / "data"
    seeded = seed(data_dir)
    server = LiveServer(data_dir, **SERVER_ENV)
    try:
        server.wait()
        yield server, seeded
    finally:
        server.stop()


@pytest.fixture(scope="module")
def site(instance: tuple[LiveServer, Seeded]) -> Iterator[LocalSite]:
    """The customer's website: one page per chatbot, each with that chatbot's embed code (as the live server
    hands it out) pasted in."""
    server, seeded = instance
    agent = AgentApi(server.url)
    with LocalSite() as shop:
        for role, bot in seeded.bots.items():
            embed = agent.http.get(f"/api/v1/chatbots/{bot['id']}").json()["embed_code"]
            assert f'src="{server.url}/widget.js"' in embed, embed
            shop.pages[f"/{role}"] = SitePage(host_page(embed))
        agent.close()
        yield shop


@pytest.fixture
def agent(instance: tuple[LiveServer, Seeded]) -> Iterator[AgentApi]:
    api = AgentApi(instance[0].url)
    yield api
    api.close()


@pytest.fixture
def problems(page: Page) -> Iterator[list[str]]:
    """Uncaught errors and dialogs (an executed alert()) on the host page and in the frame fail the test."""
    found: list[str] = []
    page.on("console", lambda message: print(f"console {message.type}: {message.text}"))  # shown on failure
    page.on("response", lambda r: print(f"{r.status} {r.request.method} {r.url[:150]}") if "/widget" in r.url else None)
    page.on("pageerror", lambda error: found.append(f"pageerror: {error}"))
    page.on("dialog", lambda dialog: (found.append(f"dialog: {dialog.message}"), dialog.dismiss()))
    yield found
    assert found == []


def bot_id(instance: tuple[LiveServer, Seeded], role: str) -> str:
    return instance[1].bots[role]["id"]


def open_chat(page: Page, site: LocalSite, role: str, button: str = "Chat with us") -> FrameLocator:
    page.goto(f"{site.url}/{role}")
    page.get_by_role("button", name=button).click()
    frame = page.frame_locator("iframe[title='Chat window']")
    expect(frame.locator("#cs-app")).to_be_visible(timeout=TIMEOUT)
    return frame


def fill_prechat(frame: FrameLocator, name: str = "Emma Stone", email: str = "emma@example.com") -> None:
    form = frame.get_by_role("form", name="Before we start")
    form.get_by_label("Name").fill(name)
    form.get_by_label("Email").fill(email)
    form.get_by_role("button", name="Start chat").click()
    expect(form).to_have_count(0)


def send(frame: FrameLocator, text: str) -> None:
    box = frame.get_by_role("textbox", name="Message")
    box.fill(text)
    box.press("Enter")


def bot_answer(frame: FrameLocator, containing: str) -> Any:
    return frame.locator(".cs-bot").filter(has_text=containing)


def converse(page: Page, site: LocalSite, instance: tuple[LiveServer, Seeded], agent: AgentApi,
             role: str = "main") -> None:
    """Issue 6's scenario: pre-chat form, a knowledge-base answer with its source link, ask for a person, an agent
    takes over and replies through the API, the agent resolves, the visitor rates."""
    frame = open_chat(page, site, role)
    launcher = page.get_by_role("button", name="Chat with Acme")
    expect(launcher).to_be_visible(timeout=TIMEOUT)  # restyled from the chatbot's widget_settings
    # the host's `button { background: red !important }` does not reach into the shadow root
    expect(launcher).to_have_css("background-color", "rgb(15, 118, 110)")
    expect(launcher).to_have_css("left", "20px")
    expect(page.locator("h1")).to_have_css("color", "rgb(128, 0, 128)")  # and we leave the host's styles alone
    expect(frame.get_by_text("You are chatting with an AI assistant.")).to_be_visible()
    expect(frame.locator(".cs-greeting strong")).to_have_text("billing")
    expect(frame.get_by_role("link", name="Source")).to_have_attribute("href", f"{instance[0].url}/source")
    fill_prechat(frame)

    send(frame, QUESTION)
    expect(frame.locator(".cs-customer")).to_have_text([QUESTION], timeout=TIMEOUT)
    answer = bot_answer(frame, "14 days")
    expect(answer).to_have_count(1, timeout=TIMEOUT)
    source = answer.locator(".cs-sources a")
    expect(source.first).to_have_attribute("href", HELP_URL)
    expect(source.first).to_have_attribute("target", "_blank")
    expect(source.first).to_have_attribute("rel", "noopener noreferrer")
    helpful = answer.get_by_role("button", name="Helpful", exact=True)
    helpful.click()
    expect(helpful).to_have_attribute("aria-pressed", "true")
    expect(frame.get_by_text("Thanks for the feedback.")).to_be_visible(timeout=TIMEOUT)

    frame.get_by_role("button", name="Talk to a person").click()
    expect(frame.locator(".cs-system").first).to_be_visible(timeout=TIMEOUT)
    conversation = agent.only_conversation(bot_id(instance, role))
    assert conversation["customer"]["name"] == "Emma Stone"
    assert conversation["customer"]["email"] == "emma@example.com"
    assert conversation["status"] == "escalated"

    agent.takeover(conversation["id"])
    expect(frame.get_by_text(f"You're now chatting with {AGENT_NAME}")).to_be_visible(timeout=TIMEOUT)
    agent.reply(conversation["id"], "Hi Emma, Alex here. Your refund is **on its way**.\n\n"
                                    "- see [the policy](https://help.acme.example/refunds)\n"
                                    "- <img src=x onerror=alert(1)> [not a link](javascript:alert(2))")
    reply = frame.locator(".cs-agent").filter(has_text="Alex here")
    expect(reply).to_have_count(1, timeout=TIMEOUT)
    expect(reply.locator("strong")).to_have_text("on its way")
    expect(reply.locator("li")).to_have_text(["see the policy", "<img src=x onerror=alert(1)> not a link"])
    expect(reply.locator("a")).to_have_count(1)
    expect(reply.locator("img")).to_have_count(0)
    expect(reply.locator(".cs-from")).to_have_text(AGENT_NAME)

    agent.resolve(conversation["id"])
    survey = frame.get_by_role("form", name="Rate this conversation")
    expect(survey).to_be_visible(timeout=TIMEOUT)
    survey.get_by_role("button", name="5 stars").click()
    survey.get_by_label("Comment (optional)").fill("Quick and kind")
    survey.get_by_role("button", name="Send rating").click()
    expect(frame.get_by_text("Thank you for your feedback!")).to_be_visible(timeout=TIMEOUT)

    stored = agent.conversation(conversation["id"])
    assert stored["satisfaction_rating"]["score"] == 5
    assert stored["satisfaction_rating"]["comment"] == "Quick and kind"
    assert messages_of(stored, "customer") == [QUESTION]
    assert any("14 days" in text for text in messages_of(stored, "bot"))
    assert stored["context"].get("page_url") == f"{site.url}/{role}"


def test_full_conversation_over_websocket(page: Page, site: LocalSite, instance: tuple[LiveServer, Seeded],
                                         agent: AgentApi, problems: list[str]) -> None:
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    converse(page, site, instance, agent)
    assert sockets and all("/ws/widget?token=" in url for url in sockets)


def test_same_conversation_over_the_fallback_when_websockets_are_blocked(
        page: Page, context: BrowserContext, site: LocalSite, instance: tuple[LiveServer, Seeded], agent: AgentApi,
        problems: list[str]) -> None:
    refused: list[str] = []
    context.route_web_socket(re.compile(r"/ws/widget"), lambda ws: (refused.append(ws.url), ws.close()))
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" and "/widget/api/messages" in r.url
            else None)
    converse(page, site, instance, agent, "fallback")
    assert len(refused) >= 2
    assert posts, "the frame never used POST /widget/api/messages"


def relay_with_drops(plan: dict[str, bool], seen: list[dict[str, Any]]) -> Callable[[WebSocketRoute], None]:
    """A WebSocket route that passes frames both ways and kills the connection once per planned moment:
    ``after_send`` right after a ``message:send`` reached the server (so its ack is lost), ``mid_answer`` right
    after the first piece of a bot answer reached the page."""

    def relay(ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()

        def drop() -> None:
            ws.close(code=4000)
            server.close()

        def upstream(message: str | bytes) -> None:
            server.send(message)
            frame = json.loads(message)
            seen.append({"to": "server", **frame})
            if frame["event"] == "message:send" and plan.pop("after_send", False):
                drop()

        def downstream(message: str | bytes) -> None:
            frame = json.loads(message)
            seen.append({"to": "page", **frame})
            ws.send(message)
            bot = (frame["data"].get("sender") or {"type": "bot"})["type"] == "bot"
            if frame["event"] in ("message:streaming", "message:receive") and bot and plan.pop("mid_answer", False):
                drop()

        ws.on_message(upstream)
        server.on_message(downstream)

    return relay


INVOICES = "Where do I download past invoices?"


def test_reconnect_mid_answer_loses_and_doubles_nothing(page: Page, context: BrowserContext, site: LocalSite,
                                                        instance: tuple[LiveServer, Seeded], agent: AgentApi,
                                                        problems: list[str]) -> None:
    """The socket dies right after the first piece of an answer, and later right after the visitor's second
    message reached the server (before its ack): the frame reconnects, resumes from the last message it shows
    and re-sends the unacked message with the same client_id. Every message is shown and stored exactly once."""
    plan = {"mid_answer": True}
    seen: list[dict[str, Any]] = []
    context.route_web_socket(re.compile(r"/ws/widget"), relay_with_drops(plan, seen))
    frame = open_chat(page, site, "reconnect")
    send(frame, QUESTION)
    answer = bot_answer(frame, "14 days")
    expect(answer).to_have_count(1, timeout=TIMEOUT)
    expect(answer).not_to_have_class(re.compile("cs-streaming"), timeout=TIMEOUT)
    assert plan == {}, "the connection was never dropped mid-answer"
    expect(frame.locator(".cs-pending")).to_have_count(0, timeout=TIMEOUT)

    plan["after_send"] = True
    send(frame, INVOICES)
    expect(frame.locator(".cs-customer")).to_have_text([QUESTION, INVOICES], timeout=TIMEOUT)
    expect(frame.locator(".cs-pending")).to_have_count(0, timeout=TIMEOUT)
    expect(frame.locator(".cs-bot:not(.cs-greeting)")).to_have_count(2, timeout=TIMEOUT)
    assert plan == {}

    sends = [f["data"]["client_id"] for f in seen if f["to"] == "server" and f["event"] == "message:send"]
    first, second = dict.fromkeys(sends)  # two messages, in order; every repeat is a re-send of an unacked one
    assert sends.count(second) >= 2, sends
    assert [f["event"] for f in seen if f["to"] == "server"].count("resume") >= 2
    stored = agent.conversation(agent.only_conversation(bot_id(instance, "reconnect"))["id"])
    assert messages_of(stored, "customer") == [QUESTION, INVOICES]
    assert len(messages_of(stored, "bot")) == 2
    page.wait_for_timeout(500)  # nothing else trickles in
    expect(frame.locator(".cs-customer")).to_have_count(2)
    expect(frame.locator(".cs-bot:not(.cs-greeting)")).to_have_count(2)


def test_a_first_message_resent_after_a_drop_starts_one_conversation(
        page: Page, context: BrowserContext, site: LocalSite, instance: tuple[LiveServer, Seeded],
        agent: AgentApi) -> None:
    plan = {"after_send": True}
    seen: list[dict[str, Any]] = []
    context.route_web_socket(re.compile(r"/ws/widget"), relay_with_drops(plan, seen))
    frame = open_chat(page, site, "fresh")  # a chatbot only this test talks to: its conversations are ours
    send(frame, QUESTION)
    expect(frame.locator(".cs-pending")).to_have_count(0, timeout=TIMEOUT)
    assert plan == {}
    assert len(agent.conversations(bot_id(instance, "fresh"))) == 1


def test_markup_typed_by_a_visitor_is_shown_as_text(page: Page, site: LocalSite, problems: list[str]) -> None:
    frame = open_chat(page, site, "plain")
    hostile = "<img src=x onerror=alert(1)> **[click](javascript:alert(2))**"
    send(frame, hostile)
    mine = frame.locator(".cs-customer")
    expect(mine).to_have_text([hostile], timeout=TIMEOUT)
    expect(mine).not_to_have_class(re.compile("cs-pending"), timeout=TIMEOUT)
    expect(frame.locator(".cs-log img")).to_have_count(0)
    expect(frame.locator(".cs-log a[href^='javascript']")).to_have_count(0)
    page.wait_for_timeout(1000)  # any bot reply (it may quote the question) renders by now


def test_a_disallowed_origin_gets_no_frame(page: Page, site: LocalSite, problems: list[str]) -> None:
    with page.expect_response(re.compile(r"/widget/frame\?")) as response:
        page.goto(f"{site.url}/restricted")
        page.get_by_role("button", name="Chat with us").click()
    assert response.value.status == 403
    page.wait_for_timeout(500)
    expect(page.frame_locator("iframe[title='Chat window']").locator("#cs-app")).to_have_count(0)


def test_sending_too_fast_shows_the_rate_limit(page: Page, site: LocalSite, problems: list[str]) -> None:
    frame = open_chat(page, site, "plain")
    for n in range(11):
        send(frame, f"Quick message number {n + 1}")
    notice = frame.locator(".cs-error-line").filter(has_text="sending messages too quickly")
    expect(notice).to_have_count(1, timeout=TIMEOUT)
    expect(notice).to_contain_text(re.compile(r"wait \d+ seconds?"))
    expect(frame.locator(".cs-failed")).to_have_count(1)


def test_keyboard_escape_closes_and_focus_returns_to_the_launcher(page: Page, site: LocalSite,
                                                                  problems: list[str]) -> None:
    page.goto(f"{site.url}/plain")
    launcher = page.get_by_role("button", name="Chat with us")
    launcher.focus()
    page.keyboard.press("Enter")
    frame = page.frame_locator("iframe[title='Chat window']")
    box = frame.get_by_role("textbox", name="Message")
    expect(box).to_be_visible(timeout=TIMEOUT)
    expect(launcher).to_have_attribute("aria-expanded", "true")
    box.click()
    page.keyboard.type("first line")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("second line")
    expect(box).to_have_value("first line\nsecond line")
    page.keyboard.press("Escape")
    expect(page.locator("iframe[title='Chat window']")).to_be_hidden()
    expect(launcher).to_be_focused()
    expect(launcher).to_have_attribute("aria-expanded", "false")
    page.keyboard.press("Enter")  # open again from the keyboard: the draft is still there
    expect(box).to_have_value("first line\nsecond line", timeout=TIMEOUT)


def test_offline_form_outside_business_hours(page: Page, site: LocalSite, instance: tuple[LiveServer, Seeded],
                                             agent: AgentApi, problems: list[str]) -> None:
    frame = open_chat(page, site, "offline")
    form = frame.get_by_role("form", name="Leave us a message")
    form.get_by_role("button", name="Send message").click()
    expect(form.get_by_text("Name is required.")).to_be_visible()
    form.get_by_label("Name").fill("Night Owl")
    form.get_by_label("Email").fill("not-an-email")
    form.get_by_label("Message").fill("Please call me back about my invoice.")
    form.get_by_role("button", name="Send message").click()
    expect(form.get_by_text("Please enter a valid email address.")).to_be_visible()
    form.get_by_label("Email").fill("owl@example.com")
    form.get_by_role("button", name="Send message").click()
    expect(frame.locator(".cs-customer")).to_have_text(["Please call me back about my invoice."], timeout=TIMEOUT)
    conversation = agent.only_conversation(bot_id(instance, "offline"))
    assert conversation["customer"]["email"] == "owl@example.com"
    assert messages_of(agent.conversation(conversation["id"]), "bot") == []


def test_unread_badge_counts_replies_while_closed(page: Page, site: LocalSite, instance: tuple[LiveServer, Seeded],
                                                  agent: AgentApi, problems: list[str]) -> None:
    frame = open_chat(page, site, "unread")
    send(frame, QUESTION)
    expect(bot_answer(frame, "14 days")).to_have_count(1, timeout=TIMEOUT)
    expect(bot_answer(frame, "14 days")).not_to_have_class(re.compile("cs-streaming"), timeout=TIMEOUT)
    frame.get_by_role("button", name="Close chat").click()
    launcher = page.get_by_role("button", name="Chat with us")
    expect(launcher).to_be_focused()
    conversation = agent.only_conversation(bot_id(instance, "unread"))
    agent.reply(conversation["id"], "Still there? I can help with the refund.")
    expect(launcher).to_have_accessible_description("2 unread messages", timeout=TIMEOUT)  # joined + reply
    badge = page.locator("[data-chatsupport] button span[aria-hidden='true']")
    expect(badge).to_have_text("2")
    launcher.click()
    expect(frame.get_by_text("Still there? I can help")).to_be_visible()
    expect(badge).to_be_hidden()
    expect(launcher).to_have_accessible_description("")


def test_attachments_upload_and_refuse_other_files(page: Page, site: LocalSite,
                                                   problems: list[str]) -> None:
    frame = open_chat(page, site, "plain")
    file_input = frame.locator("input[type=file]")
    file_input.set_input_files({"name": "notes.txt", "mimeType": "text/plain", "buffer": b"hello"})
    expect(frame.get_by_text("only images (PNG, JPEG, GIF, WebP) and PDF files up to 10 MB")).to_be_visible()
    png = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                        "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")
    file_input.set_input_files({"name": "screen.png", "mimeType": "image/png", "buffer": png})
    expect(frame.get_by_role("button", name="Remove screen.png")).to_be_visible(timeout=TIMEOUT)
    send(frame, "Here is a screenshot")
    mine = frame.locator(".cs-customer").filter(has_text="Here is a screenshot")
    expect(mine).not_to_have_class(re.compile("cs-pending"), timeout=TIMEOUT)
    download = mine.get_by_role("link", name=re.compile(r"screen\.png"))
    expect(download).to_have_attribute("href", re.compile(r"/widget/api/attachments/"))


def test_full_screen_below_480_pixels(page: Page, site: LocalSite, problems: list[str]) -> None:
    page.set_viewport_size({"width": 400, "height": 700})
    frame = open_chat(page, site, "plain")
    box = page.locator("iframe[title='Chat window']").bounding_box()
    assert box is not None and box["width"] == 400 and box["height"] == 700
    expect(page.get_by_role("button", name="Chat with us")).to_be_hidden()  # the frame's close button stands in
    frame.get_by_role("button", name="Close chat").click()
    expect(page.get_by_role("button", name="Chat with us")).to_be_focused()


def test_settings_changes_reach_an_open_widget(page: Page, site: LocalSite, instance: tuple[LiveServer, Seeded],
                                               problems: list[str]) -> None:
    frame = open_chat(page, site, "theme")
    expect(frame.locator(".cs-title")).to_have_text("Acme Theme")
    owner = AgentApi(instance[0].url, OWNER)
    try:
        response = owner.http.patch(f"/api/v1/chatbots/{bot_id(instance, 'theme')}", json={
            "greeting_message": "Welcome back!", "widget_settings": {
                "button_text": "Ask us", "size": "large", "theme": {"primary_color": "#B91C1C"}}})
        assert response.status_code == 200, response.text
    finally:
        owner.close()
    expect(frame.locator(".cs-greeting")).to_have_text("Welcome back!", timeout=15_000)
    expect(frame.locator(".cs-header")).to_have_css("background-color", "rgb(185, 28, 28)")
    expect(frame.locator("html")).to_have_attribute("data-size", "large")
    launcher = page.get_by_role("button", name="Ask us")
    expect(launcher).to_have_css("background-color", "rgb(185, 28, 28)")
    page.reload()  # the launcher remembers the look before anything loads
    expect(page.get_by_role("button", name="Ask us")).to_have_css("background-color", "rgb(185, 28, 28)")


def test_identified_user_finds_their_conversation_in_another_browser(
        page: Page, browser: Any, site: LocalSite, instance: tuple[LiveServer, Seeded], problems: list[str]) -> None:
    """``ChatSupport.identify`` with the host server's signature, called before the chat is even open (queued
    until the frame is ready): the same user on another device sees the conversation; a forged signature does
    not, and the visitor is told."""
    import hashlib
    import hmac

    secret = instance[1].bots["identity"]["identity_secret"]
    signature = hmac.new(secret.encode(), b"user-42", hashlib.sha256).hexdigest()
    identify = "s => window.ChatSupport.identify({user_id: 'user-42', email: 'u42@example.com', signature: s})"

    page.goto(f"{site.url}/identity")
    page.wait_for_function("window.ChatSupport && window.ChatSupport.version")
    page.evaluate(identify, signature)
    page.get_by_role("button", name="Chat with us").click()
    frame = page.frame_locator("iframe[title='Chat window']")
    send(frame, "Remember me across devices")
    expect(frame.locator(".cs-customer")).not_to_have_class(re.compile("cs-pending"), timeout=TIMEOUT)

    for sig, visible in ((signature, True), ("0" * 64, False)):
        other = browser.new_context()
        try:
            second = other.new_page()
            second.goto(f"{site.url}/identity")
            second.wait_for_function("window.ChatSupport && window.ChatSupport.version")
            second.evaluate(identify, sig)
            second.get_by_role("button", name="Chat with us").click()
            there = second.frame_locator("iframe[title='Chat window']")
            if visible:
                expect(there.locator(".cs-customer")).to_have_text(["Remember me across devices"], timeout=TIMEOUT)
            else:
                expect(there.locator(".cs-error-line")).to_contain_text("couldn't confirm who you are",
                                                                        timeout=TIMEOUT)
                expect(there.locator(".cs-customer")).to_have_count(0)
        finally:
            other.close()
