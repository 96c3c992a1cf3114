"""The inbox console (issue 7) through the real app: pages for each role, actions through the state machine with
their inline errors, CSRF, stored XSS rendered as text, notes with mentions and the bell, and the console event
stream."""

from __future__ import annotations

import json
import threading
import time
from html.parser import HTMLParser
from typing import Any

from litestar.testing import TestClient

from accounts_support import PASSWORD, Page
from chatsupport import live
from chatsupport.domain import auth
from chatsupport.domain.audit import Origin
from chatsupport.store import collaboration
from chatsupport.tasks.housekeeping import housekeep
from conversation_support import Team, client, team  # noqa: F401 - shared fixtures

XSS_NAME = "<script>alert('name')</script>"
XSS_MESSAGE = "<img src=x onerror=alert(1)>"


class Elements(HTMLParser):
    """Every element's tag and attributes, and the text inside elements with a given class."""

    def __init__(self, html: str):
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def having(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if t == tag and all(a.get(k.replace("_", "-")) == v for k, v in attrs.items())]

    def classes(self, name: str) -> list[dict[str, str | None]]:
        return [a for _, a in self.tags if name in (a.get("class") or "").split()]


class Console:
    """One signed-in console browser: its session cookie and the CSRF token its pages carry."""

    def __init__(self, client: TestClient, user: dict[str, Any]):
        self.client = client
        token = auth.login(client.app.state.services, user["email"], PASSWORD, Origin(), kind="console").token
        self.cookies = {"cs_session": token}

    def get(self, path: str, htmx: bool = False) -> Any:
        self.client.cookies.clear()
        return self.client.get(path, cookies=self.cookies, headers={"HX-Request": "true"} if htmx else {})

    def csrf(self, conversation_id: str) -> str:
        page = Page(self.get(f"/inbox/{conversation_id}").text)
        return next(f["fields"]["csrf_token"] for f in page.forms if "csrf_token" in f["fields"])

    def post(self, path: str, data: dict[str, str] | None = None, csrf: str | None = "auto",
             htmx: bool = False) -> Any:
        body = dict(data or {})
        if csrf == "auto":
            body["csrf_token"] = self.csrf(path.split("/")[2])
        elif csrf:
            body["csrf_token"] = csrf
        self.client.cookies.clear()
        return self.client.post(path, data=body, cookies=self.cookies, follow_redirects=False,
                                headers={"HX-Request": "true"} if htmx else {})


def action_forms(html: str) -> set[str]:
    """The last path segment of every conversation action form on the page (takeover, reply, resolve, …)."""
    return {f["action"].rsplit("/", 1)[-1] for f in Page(html).forms
            if f["method"].lower() == "post" and f["action"] and f["action"].startswith("/inbox/")
            and not f["action"].startswith("/inbox/filters")}


# --- pages per role -----------------------------------------------------------------------------------------
def test_every_role_sees_the_list_and_the_conversation(team: Team) -> None:
    conv = team.conversation(status="escalated")
    for user in (team.owner, team.agent, team.viewer):
        console = Console(team.client, user)
        listing = console.get("/inbox")
        assert listing.status_code == 200, listing.text
        page = Page(listing.text)
        assert page.texts[f"row-{conv}"].startswith("John Doe")
        assert "I need help resetting my password" in page.texts[f"row-{conv}"]
        view = console.get(f"/inbox/{conv}")
        assert view.status_code == 200
        assert Page(view.text).texts["customer-name"] == "John Doe"


def test_viewer_is_read_only_agent_cannot_assign_owner_can(team: Team) -> None:
    conv = team.conversation(status="escalated")
    viewer = Console(team.client, team.viewer).get(f"/inbox/{conv}").text
    assert action_forms(viewer) == set()
    assert not [a for a in Elements(viewer).having("a") if "/transcript" in (a.get("href") or "")]
    agent = Console(team.client, team.agent).get(f"/inbox/{conv}").text
    assert {"takeover", "reply", "resolve", "tags", "notes"} <= action_forms(agent)
    assert "assign" not in action_forms(agent) and "reopen" not in action_forms(agent)
    assert len([a for a in Elements(agent).having("a") if "/transcript?format=" in (a.get("href") or "")]) == 4
    assert "assign" in action_forms(Console(team.client, team.owner).get(f"/inbox/{conv}").text)


def test_viewer_posting_an_action_is_refused(team: Team) -> None:
    conv = team.conversation(status="escalated")
    viewer = Console(team.client, team.viewer)
    response = viewer.post(f"/inbox/{conv}/takeover")
    assert response.status_code == 403
    assert team.status(conv)["status"] == "escalated"


def test_empty_inbox_explains_itself(team: Team) -> None:
    page = Page(Console(team.client, team.agent).get("/inbox").text)
    assert "No conversations yet" in page.texts["empty-list"]


# --- actions through the state machine ----------------------------------------------------------------------
def test_takeover_reply_return_resolve_reopen(team: Team) -> None:
    conv = team.conversation(status="escalated")
    agent = Console(team.client, team.agent)
    taken = agent.post(f"/inbox/{conv}/takeover")
    assert taken.status_code == 303 and taken.headers["location"] == f"/inbox/{conv}"
    assert team.status(conv)["status"] == "agent_handling"
    assert team.status(conv)["assigned_agent_id"] == team.agent["id"]

    replied = agent.post(f"/inbox/{conv}/reply", {"content": "Hi John, Sarah here."}, htmx=True)
    assert replied.status_code == 200
    page = Page(replied.text)
    assert "Hi John, Sarah here." in page.texts["timeline"]
    assert page.texts["reply-box"] == ""

    assert agent.post(f"/inbox/{conv}/return-to-ai").status_code == 303
    assert team.status(conv)["status"] == "active"

    resolved = agent.post(f"/inbox/{conv}/resolve", {"resolution_note": "Password reset link sent",
                                                     "tags": "password, account"})
    assert resolved.status_code == 303
    row = team.status(conv)
    assert row["status"] == "resolved" and row["tags"] == ["password", "account"]
    assert row["resolution_note"] == "Password reset link sent"
    assert action_forms(agent.get(f"/inbox/{conv}").text) == {"reopen", "tags", "notes"}
    assert agent.post(f"/inbox/{conv}/reopen").status_code == 303
    assert team.status(conv)["status"] == "active"


def test_illegal_transition_is_shown_inline(team: Team) -> None:
    conv = team.conversation(status="resolved")
    response = Console(team.client, team.agent).post(f"/inbox/{conv}/return-to-ai", htmx=True)
    assert response.status_code == 200
    assert Page(response.text).alerts[0].startswith("A conversation that is resolved cannot take")
    assert team.status(conv)["status"] == "resolved"


def test_already_taken_names_the_colleague(team: Team) -> None:
    conv = team.conversation(status="escalated")
    assert Console(team.client, team.agent).post(f"/inbox/{conv}/takeover").status_code == 303
    other = Console(team.client, team.other)
    response = other.post(f"/inbox/{conv}/takeover")
    assert response.status_code == 409
    assert Page(response.text).alerts[0] == "Sarah Johnson is handling this conversation."
    htmx = other.post(f"/inbox/{conv}/reply", {"content": "me too"}, htmx=True)
    assert htmx.status_code == 200
    page = Page(htmx.text)
    assert page.alerts[0] == "Sarah Johnson is handling this conversation."
    assert page.texts["reply-box"] == "me too"  # the draft is kept
    assert team.status(conv)["assigned_agent_id"] == team.agent["id"]


def test_owner_assigns_and_tags(team: Team) -> None:
    conv = team.conversation(status="escalated")
    owner = Console(team.client, team.owner)
    assert owner.post(f"/inbox/{conv}/assign", {"agent_id": team.other["id"]}).status_code == 303
    assert team.status(conv)["assigned_agent_id"] == team.other["id"]
    assert owner.post(f"/inbox/{conv}/tags", {"tags": "vip, billing"}).status_code == 303
    assert team.status(conv)["tags"] == ["vip", "billing"]
    refused = Console(team.client, team.agent).post(f"/inbox/{conv}/assign", {"agent_id": team.owner["id"]},
                                                    htmx=True)
    assert "Only an owner or admin" in Page(refused.text).alerts[0]
    assert team.status(conv)["assigned_agent_id"] == team.other["id"]


def test_csrf_is_required(team: Team) -> None:
    conv = team.conversation(status="escalated")
    agent = Console(team.client, team.agent)
    for path in ("takeover", "reply", "resolve", "notes"):
        response = agent.post(f"/inbox/{conv}/{path}", {"content": "x"}, csrf=None)
        assert response.status_code == 403, path
        assert response.json()["error"]["code"] == "csrf_failed"
    assert team.status(conv)["status"] == "escalated"


def test_unknown_conversation_is_404_before_csrf(team: Team) -> None:
    agent = Console(team.client, team.agent)
    assert agent.get("/inbox/no-such-id").status_code == 404
    assert agent.post("/inbox/no-such-id/takeover", csrf=None).status_code == 404


# --- escaping -----------------------------------------------------------------------------------------------
def assert_inert(html: str) -> None:
    elements = Elements(html)
    assert all(a.get("src") for a in elements.having("script")), "an inline <script> element"
    assert elements.having("img") == []
    assert not [a for _, a in elements.tags if any(k.startswith("on") for k in a)]


def test_stored_xss_renders_as_text(team: Team) -> None:
    conv = team.conversation(status="escalated", customer=XSS_NAME, text=XSS_MESSAGE)
    agent = Console(team.client, team.agent)
    listing = agent.get("/inbox").text
    assert_inert(listing)
    row = Page(listing).texts[f"row-{conv}"]
    assert XSS_NAME in row and XSS_MESSAGE in row
    view = agent.get(f"/inbox/{conv}").text
    assert_inert(view)
    assert Page(view).texts["customer-name"] == XSS_NAME
    assert XSS_MESSAGE in Page(view).texts["conv-title"] + Page(view).texts["timeline"]
    found = agent.get("/inbox/list?q=onerror", htmx=True).text
    assert_inert(found)
    assert XSS_NAME in Page(found).texts[f"row-{conv}"]
    assert [m for t, m in Elements(found).tags if t == "mark"]  # the match is highlighted, the rest is text
    assert XSS_MESSAGE in Page(found).texts[f"row-{conv}"]


def test_only_http_links_are_clickable(team: Team) -> None:
    conv = team.conversation(status="escalated")
    team.db.write(lambda conn: conn.execute(
        "UPDATE conversations SET context = json_set(context, '$.page_url', 'javascript:alert(1)') WHERE id = ?",
        (conv,)))
    view = Console(team.client, team.agent).get(f"/inbox/{conv}").text
    assert not [a for a in Elements(view).having("a") if (a.get("href") or "").startswith("javascript")]
    assert "javascript:alert(1)" in Page(view).texts["customer-title"] + view  # shown, as text


# --- notes, mentions and the bell ---------------------------------------------------------------------------
def test_note_with_mention_notifies_the_colleague(team: Team) -> None:
    conv = team.conversation(status="escalated")
    agent, other = Console(team.client, team.agent), Console(team.client, team.other)
    assert Elements(other.get("/inbox/notifications/count").text).having("span", data_count="0")
    note = f"Can you check **billing**, @[Omar Other]({team.other['id']})? <script>alert(1)</script>"
    response = agent.post(f"/inbox/{conv}/notes", {"content": note}, htmx=True)
    assert response.status_code == 200
    assert_inert(response.text)
    rendered = Elements(response.text)
    assert rendered.classes("note") and rendered.having("strong")
    assert "<script>alert(1)</script>" in Page(response.text).texts["timeline"]
    assert Elements(other.get("/inbox/notifications/count").text).having("span", data_count="1")
    listing = Page(other.get("/inbox/notifications").text)
    assert "Sarah Johnson mentioned you" in listing.texts["notification-list"]


# --- unread ----------------------------------------------------------------------------------------------------
def test_opening_a_conversation_marks_it_read(team: Team) -> None:
    conv = team.conversation(status="escalated")
    agent = Console(team.client, team.agent)
    assert Elements(agent.get("/inbox").text).classes("unread")
    agent.get(f"/inbox/{conv}")
    assert not [a for a in Elements(agent.get("/inbox").text).classes("row") if "unread" in a["class"]]


def test_filters_and_tabs(team: Team) -> None:
    escalated = team.conversation(status="escalated")
    resolved = team.conversation(status="resolved", customer="Ann Lee")
    agent = Console(team.client, team.agent)
    page = Page(agent.get("/inbox/list?status=resolved", htmx=True).text)
    assert f"row-{resolved}" in page.texts and f"row-{escalated}" not in page.texts
    tabs = Elements(agent.get("/inbox").text).having("a", aria_current="page")
    assert tabs and tabs[0]["href"].startswith("/inbox/list?")
    bad = Page(agent.get("/inbox/list?rating_min=9", htmx=True).text)
    assert bad.alerts and "rating" in bad.alerts[0].lower()


# --- the console event stream -----------------------------------------------------------------------------------
def test_event_stream_forwards_workspace_and_user_frames(team: Team) -> None:
    conv = team.conversation(status="escalated")
    agent = Console(team.client, team.agent)

    def publish_soon() -> None:
        time.sleep(0.5)
        live.publish("message:receive", {"conversation_id": conv, "content": "hello"}, workspace_id=team.ws)
        live.publish("notification:new", {"unread_count": 3}, channel=live.user_channel(team.agent["id"]))
        live.publish("message:receive", {"conversation_id": "elsewhere"}, workspace_id="another-workspace")

    threading.Thread(target=publish_soon, daemon=True).start()
    team.client.cookies.clear()
    started = time.monotonic()
    response = team.client.get("/console/events?wait=2", cookies=agent.cookies)
    assert time.monotonic() - started < 10
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [block for block in response.text.split("\r\n\r\n") if "event:" in block]
    parsed = [(line_value(b, "event"), json.loads(line_value(b, "data"))) for b in events]
    assert parsed == [("message:receive", {"conversation_id": conv, "content": "hello"}),
                      ("notification:new", {"unread_count": 3})]


def line_value(block: str, field: str) -> str:
    return next(line.split(":", 1)[1].strip() for line in block.splitlines() if line.startswith(field + ":"))


def test_event_stream_needs_a_session(client: TestClient) -> None:
    response = client.get("/console/events", follow_redirects=False)
    assert response.status_code in (302, 303) and response.headers["location"].startswith("/login")


# --- saved filters, sort, one row ---------------------------------------------------------------------------
def row_ids(html: str) -> list[str]:
    return [a["data-id"] for t, a in Elements(html).tags if t == "li" and a.get("data-id")]


def selected(html: str, select_name: str) -> list[str]:
    """The selected option values of one select (options follow their select in document order)."""
    values, inside = [], False
    for tag, attrs in Elements(html).tags:
        if tag == "select":
            inside = attrs.get("name") == select_name
        elif tag == "option" and inside and "selected" in attrs:
            values.append(attrs.get("value") or "")
    return values


def page_csrf(console: Console) -> str:
    save = next(f for f in Page(console.get("/inbox?status=").text).forms if f["id"] == "save-filter")
    return str(save["fields"]["csrf_token"])


def saved_ids(html: str) -> list[str]:
    """The ids of the saved filters the picker links to."""
    return [a["href"].split("=", 1)[1] for a in Elements(html).having("a")
            if (a.get("href") or "").startswith("/inbox?filter_id=")]


def test_saved_filter_save_apply_default_and_delete(team: Team) -> None:
    escalated = team.conversation(status="escalated")
    resolved = team.conversation(status="resolved", customer="Ann Lee")
    agent = Console(team.client, team.agent)
    csrf = page_csrf(agent)

    saved = agent.post("/inbox/filters", {"name": "Done", "status": "resolved", "sort": "-created_at",
                                          "is_default": "true"}, csrf=csrf)
    assert saved.status_code == 303 and saved.headers["location"] == "/inbox?status=resolved&sort=-created_at"
    [filter_id] = saved_ids(agent.get("/inbox?status=").text)

    opened = agent.get("/inbox").text  # no query: the default filter applies and fills the form
    assert row_ids(opened) == [resolved]
    assert selected(opened, "status") == ["resolved"]
    assert [a for a in Elements(opened).having("a", aria_current="true") if filter_id in a["href"]]
    assert set(row_ids(agent.get("/inbox?status=").text)) == {escalated, resolved}  # "Clear" shows everything

    applied = agent.get(f"/inbox/list?filter_id={filter_id}", htmx=True).text  # the picker, with htmx
    assert row_ids(applied) == [resolved] and selected(applied, "status") == ["resolved"]
    assert Elements(applied).having("form", id="filters")
    assert row_ids(agent.get(f"/inbox?filter_id={filter_id}").text) == [resolved]  # without JavaScript

    duplicate = agent.post("/inbox/filters", {"name": " done ", "status": "escalated"}, csrf=csrf, htmx=True)
    assert duplicate.status_code == 200
    page = Page(duplicate.text)
    assert "already have a saved filter" in page.field_errors["filter-name"]
    assert next(f for f in page.forms if f["id"] == "save-filter")["fields"]["name"] == " done "
    assert row_ids(duplicate.text) == [escalated]  # the list still shows what it showed
    assert agent.post("/inbox/filters", {"name": "Done"}, csrf=csrf).status_code == 409
    empty = agent.post("/inbox/filters", {"name": "  "}, csrf=csrf, htmx=True)
    assert Page(empty.text).field_errors["filter-name"] == "1 to 100 characters."

    other = Console(team.client, team.other)
    assert other.post(f"/inbox/filters/{filter_id}/delete", csrf=None).status_code == 404  # not theirs
    assert other.get(f"/inbox?filter_id={filter_id}").status_code == 404
    assert agent.post(f"/inbox/filters/{filter_id}/delete", csrf=None).status_code == 403  # CSRF after scope
    deleted = agent.post(f"/inbox/filters/{filter_id}/delete", {"status": "escalated"}, csrf=csrf, htmx=True)
    assert deleted.status_code == 200 and row_ids(deleted.text) == [escalated]
    assert saved_ids(deleted.text) == []
    assert set(row_ids(agent.get("/inbox").text)) == {escalated, resolved}  # no default any more


def test_a_new_default_replaces_the_old_one(team: Team) -> None:
    escalated = team.conversation(status="escalated")
    team.conversation(status="resolved")
    owner = Console(team.client, team.owner)
    csrf = page_csrf(owner)
    for name, status in (("Closed", "resolved"), ("Hot", "escalated")):
        assert owner.post("/inbox/filters", {"name": name, "status": status, "is_default": "true"},
                          csrf=csrf).status_code == 303
    assert row_ids(owner.get("/inbox").text) == [escalated]
    badges = Page(owner.get("/inbox?status=").text).texts["saved-list"]
    assert badges.count("default") == 1


def test_sort_orders_the_list_and_search(team: Team) -> None:
    first, second, third = (team.conversation(status="escalated") for _ in range(3))
    stamps = {first: ("2025-01-01", "2025-03-02"), second: ("2025-01-02", "2025-03-03"),
              third: ("2025-01-03", "2025-03-01")}
    for conv, (created, updated) in stamps.items():
        team.db.write(lambda conn, c=conv, cr=created, up=updated: conn.execute(
            "UPDATE conversations SET created_at = ?, updated_at = ? WHERE id = ?",
            (cr + "T10:00:00.000Z", up + "T10:00:00.000Z", c)))
    agent = Console(team.client, team.agent)
    expected = {"-updated_at": [second, first, third], "updated_at": [third, first, second],
                "-created_at": [third, second, first], "created_at": [first, second, third]}
    for sort, order in expected.items():
        assert row_ids(agent.get(f"/inbox/list?sort={sort}", htmx=True).text) == order, sort
        assert row_ids(agent.get(f"/inbox/list?sort={sort}&q=password", htmx=True).text) == order, sort
    page = agent.get("/inbox?sort=created_at").text
    assert selected(page, "sort") == ["created_at"]
    assert Page(agent.get("/inbox/list?sort=name", htmx=True).text).alerts  # refused in words


def test_row_fragment_follows_the_filters_and_the_workspace(team: Team) -> None:
    conv = team.conversation(status="escalated", customer="Ann Lee")
    agent = Console(team.client, team.agent)
    row = agent.get(f"/inbox/rows/{conv}", htmx=True)
    assert row.status_code == 200 and row_ids(row.text) == [conv]
    assert Page(row.text).texts[f"row-{conv}"].startswith("Ann Lee")
    assert agent.get(f"/inbox/rows/{conv}?status=escalated&sort=updated_at", htmx=True).status_code == 200
    gone = agent.get(f"/inbox/rows/{conv}?status=resolved", htmx=True)
    assert gone.status_code == 204 and gone.text == ""
    elsewhere = Team(team.client, "Globex")
    foreign = elsewhere.conversation(status="escalated")
    assert agent.get(f"/inbox/rows/{foreign}", htmx=True).status_code == 404
    assert agent.get("/inbox/rows/no-such-id", htmx=True).status_code == 404


def test_housekeeping_prunes_old_notifications(team: Team) -> None:
    def seed(conn: Any) -> None:
        for label, age_days, read in (("fresh-read", 5, True), ("old-read", 31, True), ("old-unread", 31, False),
                                      ("ancient-unread", 91, False)):
            row = collaboration.add_notification(conn, team.ws, team.agent["id"], "mention", label, "",
                                                 conversation_id=None)
            conn.execute("UPDATE notifications SET created_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?),"
                         " read_at = CASE WHEN ? THEN created_at END WHERE id = ?",
                         (f"-{age_days} days", read, row["id"]))

    team.db.write(seed)
    assert housekeep(team.db)["old_notifications"] == 2
    left = {row["title"] for row in team.db.query("SELECT title FROM notifications")}
    assert left == {"fresh-read", "old-unread"}
    assert housekeep(team.db)["old_notifications"] == 0
