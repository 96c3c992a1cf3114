"""Settings → Audit log: owners and admins only, the workspace's own entries newest first, filters by action (exact
or a family), by who acted and by a date range (UTC days, both included), and pagination that keeps the filters."""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

from accounts_support import Page, add_user, bearer, login
from test_team_console import Office, office  # noqa: F401


def _entry(conn: Any, workspace_id: str, action: str, user: dict[str, Any], created_at: str,
           metadata: Any = None) -> None:
    conn.execute("INSERT INTO audit_logs(id, workspace_id, user_id, user_email, action, resource_type, resource_id,"
                 " metadata, created_at) VALUES (?, ?, ?, ?, ?, 'chatbot', ?, ?, ?)",
                 (str(uuid.uuid4()), workspace_id, user["id"], user["email"], action, str(uuid.uuid4()),
                  json.dumps(metadata) if metadata is not None else None, created_at))


def _entries(page: Page) -> dict[str, str]:
    return {key: text for key, text in page.texts.items() if key.startswith("entry-")}


def _seed(office: Office) -> None:
    ws = office.users["owner"]["workspace_id"]
    owner, admin = office.users["owner"], office.users["admin"]

    def write(conn: Any) -> None:
        for day in range(1, 31):  # 60 entries across January 2026
            _entry(conn, ws, "chatbot.updated", owner, f"2026-01-{day:02d}T10:00:00.000Z")
            _entry(conn, ws, "chatbot.created", admin, f"2026-01-{day:02d}T11:00:00.000Z")
        _entry(conn, ws, "chatbot.deleted", admin, "2026-02-01T00:00:00.000Z",
               {"note": "<script>alert(1)</script>"})

    office.db.write(write)


def test_only_owners_and_admins_read_the_log(office: Office) -> None:
    for role in ("agent", "viewer"):
        assert office.as_[role].get("/settings/audit").status_code == 403
    for role in ("owner", "admin"):
        page = office.as_[role].page("/settings/audit")
        assert page.texts["tab-audit"] == "Audit log" and page.form("audit-filters")["method"] == "get"
        assert page.inline_styles == 0 and all(s.get("src") for s in page.scripts)
    # the refused visits are themselves on the log, and another workspace's entries never show
    other = add_user(office.client, "Globex", "owner@globex.example", "owner")
    login(office.client, other["email"])
    page = office.as_["owner"].page("/settings/audit?action=access.denied")
    assert len(_entries(page)) == 2
    assert not any("globex" in text for text in _entries(office.as_["owner"].page("/settings/audit")).values())


def test_filters_and_pages(office: Office) -> None:
    _seed(office)
    owner = office.as_["owner"]
    admin_id = office.users["admin"]["id"]

    first = owner.page("/settings/audit")
    total = int(first.texts["audit-count"].split()[0])
    assert total >= 61 and len(_entries(first)) == 50
    assert first.texts["page-of"] == f"Page 1 of {(total + 49) // 50}" and "prev-page" not in first.texts
    assert len(first.scripts) == len([s for s in first.scripts if s.get("src")])  # the stored <script> is text

    exact = owner.page("/settings/audit?action=chatbot.deleted")
    [deleted] = _entries(exact).values()
    assert "<script>alert(1)</script>" in deleted and "Admin A" in deleted

    family = owner.page("/settings/audit?action=chatbot.*")
    assert family.texts["audit-count"].startswith("61 entries")
    assert family.texts["page-of"] == "Page 1 of 2"
    next_url = _href(owner.get("/settings/audit?action=chatbot.*").text, "next-page")
    assert parse_qs(urlsplit(next_url).query) == {"action": ["chatbot.*"], "page": ["2"]}
    second = owner.page("/settings/audit" + next_url)
    assert len(_entries(second)) == 11 and second.texts["page-of"] == "Page 2 of 2"
    assert "next-page" not in second.texts and "prev-page" in second.texts

    by_admin = owner.page(f"/settings/audit?action=chatbot.*&user_id={admin_id}")
    assert by_admin.texts["audit-count"].startswith("31 entries")
    assert all("Admin A" in text for text in _entries(by_admin).values())

    week = owner.page("/settings/audit?action=chatbot.*&since=2026-01-10&until=2026-01-16")
    assert week.texts["audit-count"].startswith("14 entries")  # seven days, both ends included, two a day
    days = sorted({text.split()[0] for text in _entries(week).values()})
    assert days[0] == "2026-01-10" and days[-1] == "2026-01-16"
    assert "clear-filters" in week.texts

    nothing = owner.page("/settings/audit?action=chatbot.*&since=2025-01-01&until=2025-01-02")
    assert nothing.texts["audit-empty"] == "No entries match these filters."

    bad = owner.get("/settings/audit?since=2026-13-45")
    assert bad.status_code == 422 and Page(bad.text).field_errors["since"] == "A date like 2026-01-31."
    backwards = owner.get("/settings/audit?since=2026-01-10&until=2026-01-01")
    assert backwards.status_code == 422 and "start date" in Page(backwards.text).field_errors["until"]
    assert owner.get("/settings/audit?page=abc").status_code == 200  # a nonsense page number is page 1


def _href(html: str, element_id: str) -> str:
    start = html.index(f'id="{element_id}"')
    tag_start = html.rindex("<a ", 0, start)
    href = html[tag_start:].split('href="', 1)[1].split('"', 1)[0]
    return href.replace("&amp;", "&")


def test_team_actions_show_up_on_the_page(office: Office) -> None:
    client = office.client
    owner_h = bearer(login(client, office.users["owner"]["email"]))
    client.post("/api/v1/team/invitations", json={"email": "new@acme.example", "role": "agent"}, headers=owner_h)
    client.patch(f"/api/v1/team/members/{office.second_agent['id']}", json={"max_concurrent_conversations": 2},
                 headers=owner_h)
    client.delete(f"/api/v1/team/members/{office.second_agent['id']}", headers=owner_h)
    page = office.as_["admin"].page("/settings/audit")
    for action in ("invitation.created", "user.max_concurrent_changed", "user.deactivated"):
        assert any(action in text for text in _entries(page).values()), action
    families = Page(office.as_["admin"].get("/settings/audit?action=user.*").text)
    assert all("user." in text for text in _entries(families).values())
