"""Internal notes with markdown and @mentions, and the notifications they (and escalations, and assignments)
produce: stored rows, the frames on each channel, e-mail through a real SMTP server on 127.0.0.1, sanitized HTML,
and the guarantee that a note never reaches the customer's widget."""

from __future__ import annotations

import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from litestar.testing import TestClient

from accounts_support import account_settings, add_user, audit_rows, bearer, error_code, login, open_client
from chatsupport import live
from conversation_support import Listener, Team, client, team  # noqa: F401 - shared fixtures
from test_mail import Inbox, smtp  # noqa: F401  (the fixture)
from widget_support import Site, widget_client


def add_note(team: Team, conv: str, content: str, headers: dict[str, str] | None = None) -> Any:
    return team.client.post(f"/api/v1/conversations/{conv}/notes", headers=headers or team.owner_h,
                            json={"content": content})


def notifications(team: Team, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    response = team.client.get("/api/v1/notifications", headers=headers, params=params)
    assert response.status_code == 200, response.text
    return response.json()


class Html(HTMLParser):
    """Every element with its attributes, and the text: what a browser would build from ``content_html``."""

    def __init__(self, html: str):
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text = ""
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text += data

    def tags(self) -> set[str]:
        return {tag for tag, _ in self.elements}


# --- notes and mentions ---------------------------------------------------------------------------------------
def test_a_note_with_a_mention_notifies_the_mentioned_agent(team: Team) -> None:
    conv = team.conversation(status="escalated")
    inbox = Listener(team.client, [live.workspace_channel(team.ws)])
    widget = Listener(team.client, [live.conversation_channel(conv)])
    sarah = Listener(team.client, [live.user_channel(team.agent["id"])])
    omar = Listener(team.client, [live.user_channel(team.other["id"])])
    try:
        response = add_note(team, conv, f"**2FA** trouble. @[Sarah Johnson]({team.agent['id']}) can you check?")
        assert response.status_code == 201, response.text
        note = response.json()
        assert note["conversation_id"] == conv and note["author"] == {"id": team.owner["id"], "name": "Olive Owner"}
        assert note["mentioned_users"] == [{"id": team.agent["id"], "name": "Sarah Johnson"}]
        html = Html(note["content_html"])
        assert ("strong", {}) in html.elements
        assert ("span", {"class": "mention", "data-user-id": team.agent["id"]}) in html.elements
        assert "@Sarah Johnson can you check?" in html.text
        [created] = inbox.take(1)
        assert created == {"event": "note:created", "data": {"conversation_id": conv, "note": note}}
        [frame] = sarah.take(1)
        assert frame["event"] == "notification:new" and frame["data"]["unread_count"] == 1
        pushed = frame["data"]["notification"]
        assert pushed["kind"] == "mention" and pushed["title"] == "Olive Owner mentioned you"
        assert pushed["conversation_id"] == conv and pushed["note_id"] == note["id"]
        assert pushed["actor_id"] == team.owner["id"] and pushed["read"] is False
        assert "2FA" in pushed["body"]
        assert widget.pending() == 0 and omar.pending() == 0
    finally:
        for listener in (inbox, widget, sarah, omar):
            listener.close()
    listed = notifications(team, team.agent_h)
    assert listed["unread_count"] == 1 and listed["data"] == [pushed]
    assert notifications(team, team.other_h) == {"data": [], "unread_count": 0, "next_cursor": None}
    stored = team.db.query_one("SELECT mentioned_users FROM internal_notes WHERE id = ?", (note["id"],))
    assert stored["mentioned_users"] == f'["{team.agent["id"]}"]'
    notes = team.client.get(f"/api/v1/conversations/{conv}/notes", headers=team.viewer_h).json()["data"]
    assert notes == [note]
    last = team.client.get(f"/api/v1/conversations/{conv}", headers=team.agent_h).json()["events"][-1]
    assert last["type"] == "note_added" and last["note_id"] == note["id"]
    assert len(audit_rows(team.client, "conversation.note_added")) == 1


def test_plain_mentions_match_one_member_by_first_name_or_email(team: Team) -> None:
    add_user(team.client, "Acme", "sam@acme.example", "agent", name="Sarah Smith")   # a second "Sarah"
    conv = team.conversation()
    note = add_note(team, conv, "@omar and @agent@acme.example, not @sarah (two of them), nor `@viewer` in code, "
                                "nor mail@omar.example; @Vic too. And me: @owner.").json()
    mentioned = {m["id"] for m in note["mentioned_users"]}
    assert mentioned == {team.other["id"], team.agent["id"], team.viewer["id"], team.owner["id"]}
    spans = [a["data-user-id"] for tag, a in Html(note["content_html"]).elements if tag == "span"]
    assert spans == [team.other["id"], team.agent["id"], team.viewer["id"], team.owner["id"]]
    # everyone mentioned is notified, except the author
    for user, headers in ((team.other, team.other_h), (team.agent, team.agent_h), (team.viewer, team.viewer_h)):
        assert notifications(team, headers)["unread_count"] == 1, user["email"]
    assert notifications(team, team.owner_h)["unread_count"] == 0


def test_mentions_stay_in_the_workspace_and_among_active_members(client: TestClient, team: Team) -> None:
    rival = Team(client, "Rival")
    team.db.write(lambda conn: conn.execute("UPDATE users SET status = 'suspended' WHERE id = ?",
                                            (team.other["id"],)))
    conv = team.conversation()
    note = add_note(team, conv, f"@[Spy]({rival.agent['id']}) @[Omar]({team.other['id']}) @omar "
                                f"@agent@rival.example").json()
    assert note["mentioned_users"] == []
    assert "mention" not in note["content_html"] and "@Spy" in Html(note["content_html"]).text
    assert notifications(team, rival.agent_h)["unread_count"] == 0
    assert team.db.query_one("SELECT count(*) AS n FROM notifications")["n"] == 0


def test_markdown_is_rendered_without_scripts_or_dangerous_links(team: Team) -> None:
    conv = team.conversation()
    content = ("<script>alert('x')</script>\n\n<img src=x onerror=alert(1)>\n\n"
               "[click](javascript:alert(1)) [also](JAVASCRIPT:alert(1)) [data](data:text/html,<b>x</b>) "
               "[rel](/api/v1/users) <javascript:alert(1)> ![pixel](https://tracker.example/p.gif)\n\n"
               "[docs](https://docs.example/a?b=1) [mail](mailto:help@acme.example)\n\n"
               f"@[\"><script>alert(2)</script>]({team.agent['id']})\n\n- one\n- two\n\n`code <b>`")
    note = add_note(team, conv, content).json()
    html = Html(note["content_html"])
    assert html.tags() <= {"p", "a", "span", "ul", "li", "code"}, html.tags()
    links = [a for tag, a in html.elements if tag == "a"]
    # an image is only a link: nothing loads by itself in the console
    assert [a["href"] for a in links] == ["https://tracker.example/p.gif", "https://docs.example/a?b=1",
                                          "mailto:help@acme.example"]
    assert all(a["rel"] == "nofollow noopener noreferrer" for a in links)
    assert not any(key.startswith("on") for _, attrs in html.elements for key in attrs)
    assert "<script>alert('x')</script>" in html.text        # shown as text, never run
    assert "javascript:alert(1)" in html.text
    assert note["content"] == content.strip()                # stored as written


def test_note_validation(team: Team) -> None:
    conv = team.conversation()
    for content in ("", "   ", "x" * 5001):
        response = add_note(team, conv, content)
        assert response.status_code == 422 and error_code(response) == "validation_error", len(content)
    assert add_note(team, conv, "x" * 5000).status_code == 201
    assert add_note(team, conv, "hi", team.viewer_h).status_code == 403
    archived = team.conversation(status="archived")
    assert add_note(team, archived, "Notes on an archived conversation are fine.").status_code == 201


def test_mentioned_people_are_emailed_when_smtp_is_configured(tmp_path: Path,
                                                              smtp: tuple[Inbox, int]) -> None:  # noqa: F811
    inbox, port = smtp
    settings = account_settings(tmp_path / "data", SMTP_HOST="127.0.0.1", SMTP_PORT=str(port),
                                SMTP_STARTTLS="false", SMTP_FROM="Acme Support <help@acme.example>",
                                RUN_WORKER="true")
    with open_client(settings) as client:
        team = Team(client)
        conv = team.conversation()
        response = add_note(team, conv, "Refund approved. @omar please confirm with the customer.")
        assert response.status_code == 201
        deadline = time.monotonic() + 30
        while not inbox.messages and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
        [mail] = inbox.messages
        assert mail["to"] == "other@acme.example" and mail["subject"] == "Olive Owner mentioned you in a note"
        assert "Refund approved." in mail["body"] and f"/inbox/{conv}" in mail["body"]


def test_without_smtp_nobody_is_emailed(team: Team) -> None:
    conv = team.conversation()
    assert add_note(team, conv, "@omar look").status_code == 201
    assert team.client.app.state.services.settings.SMTP_HOST == ""
    assert notifications(team, team.other_h)["unread_count"] == 1


# --- a note never reaches the customer -------------------------------------------------------------------------
def test_notes_never_reach_a_widget_socket(tmp_path: Path) -> None:
    with widget_client(tmp_path / "data") as client:
        site = Site(client)
        agent = add_user(client, "Acme", "agent@acme.example", "agent", name="Sarah Johnson")
        agent_h = bearer(login(client, agent["email"]))
        with site.socket(site.config()["token"]) as sock:
            sock.send("conversation:start", {})
            conv = sock.until("conversation:started")["conversation_id"]
            secret = "Internal: customer is on the fraud watch list"
            note = client.post(f"/api/v1/conversations/{conv}/notes", headers=site.headers,
                               json={"content": f"{secret} @sarah"})
            assert note.status_code == 201
            # a frame that must arrive after anything the note could have sent
            assert client.post(f"/api/v1/conversations/{conv}/typing", headers=agent_h,
                               json={"typing": True}).status_code == 200
            typing = sock.until("typing:start")
            assert typing["sender"] == {"type": "agent", "name": "Sarah Johnson"}
        assert not any(frame["event"].startswith(("note:", "notification:")) for frame in sock.seen)
        assert not any(secret in str(frame) for frame in sock.seen)


# --- escalations --------------------------------------------------------------------------------------------------
def test_escalations_notify_every_active_staff_member(tmp_path: Path) -> None:
    with widget_client(tmp_path / "data") as client:
        site = Site(client)
        site.index()
        agent = add_user(client, "Acme", "agent@acme.example", "agent", name="Sarah Johnson")
        viewer = add_user(client, "Acme", "viewer@acme.example", "viewer")
        heads = {u["id"]: bearer(login(client, u["email"])) for u in (agent, viewer)}
        heads[site.owner["id"]] = site.headers
        listener = Listener(client, [live.user_channel(agent["id"])])
        try:
            with site.socket(site.config()["token"]) as sock:
                sock.send("conversation:start", {"fields": {}})
                button = sock.until("conversation:started")["conversation_id"]
                sock.send("conversation:request_human", {"conversation_id": button})
                sock.until("conversation:escalated")
                [frame] = listener.take(1, timeout=10)
                assert frame["event"] == "notification:new"
                assert frame["data"]["notification"]["kind"] == "escalation"
                assert frame["data"]["notification"]["conversation_id"] == button
                assert frame["data"]["notification"]["body"] == "The customer asked for a person."
                # the answer engine's own escalation rules notify too
                sock.send("conversation:start", {})
                asked = sock.until("conversation:started")["conversation_id"]
                sock.send("message:send", {"client_id": "h-1", "conversation_id": asked,
                                           "content": "I want to speak to a human agent now"})
                sock.until("conversation:escalated", timeout=60)
                [second] = listener.take(1, timeout=10)
                assert second["data"]["notification"]["conversation_id"] == asked
                assert second["data"]["unread_count"] == 2
        finally:
            listener.close()
        staff = {site.owner["id"], agent["id"]}
        rows = site.db.query("SELECT user_id, conversation_id FROM notifications WHERE kind = 'escalation'")
        assert {(r["user_id"], r["conversation_id"]) for r in rows} == {
            (user, conv) for user in staff for conv in (button, asked)}
        assert site.client.get("/api/v1/notifications", headers=heads[viewer["id"]]).json()["unread_count"] == 0
        # asking again while waiting changes nothing and notifies nobody again
        with site.socket(site.config()["token"]) as sock:
            sock.send("conversation:request_human", {"conversation_id": button})
        assert len(site.db.query("SELECT id FROM notifications")) == 4


# --- the notifications API --------------------------------------------------------------------------------------
def test_notification_list_pages_and_marks_read(team: Team) -> None:
    conv = team.conversation()
    for i in range(5):
        assert add_note(team, conv, f"note {i} for @sarah").status_code == 201
    first = notifications(team, team.agent_h, limit=2)
    assert first["unread_count"] == 5 and len(first["data"]) == 2 and first["next_cursor"]
    assert first["data"][0]["body"].startswith("note 4")                  # newest first
    seen, cursor = [n["id"] for n in first["data"]], first["next_cursor"]
    while cursor:
        page = notifications(team, team.agent_h, limit=2, cursor=cursor)
        seen += [n["id"] for n in page["data"]]
        cursor = page["next_cursor"]
    assert len(seen) == len(set(seen)) == 5
    bad = team.client.get("/api/v1/notifications", headers=team.agent_h, params={"cursor": "junk"})
    assert bad.status_code == 422

    other_tab = Listener(team.client, [live.user_channel(team.agent["id"])])
    try:
        # someone else's notification id is ignored, not revealed
        add_note(team, conv, "and @omar")
        omars = notifications(team, team.other_h)["data"][0]["id"]
        marked = team.client.post("/api/v1/notifications/read", headers=team.agent_h,
                                  json={"ids": seen[:2] + [omars]})
        assert marked.status_code == 200 and marked.json() == {"updated": 2, "unread_count": 3}
        assert other_tab.take(1) == [{"event": "notification:read",
                                      "data": {"ids": seen[:2] + [omars], "unread_count": 3}}]
    finally:
        other_tab.close()
    assert notifications(team, team.other_h)["unread_count"] == 1
    unread = notifications(team, team.agent_h, unread="true")
    assert {n["id"] for n in unread["data"]} == set(seen[2:])
    read_one = [n for n in notifications(team, team.agent_h)["data"] if n["id"] == seen[0]][0]
    assert read_one["read"] is True and read_one["read_at"]
    everything = team.client.post("/api/v1/notifications/read", headers=team.agent_h)
    assert everything.json() == {"updated": 3, "unread_count": 0}
    assert team.client.post("/api/v1/notifications/read", headers=team.agent_h, json={}).json() == {
        "updated": 0, "unread_count": 0}
    assert team.client.get("/api/v1/notifications").status_code == 401
    viewer = notifications(team, team.viewer_h)                           # any signed-in role has a list
    assert viewer["unread_count"] == 0
