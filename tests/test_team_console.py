"""Settings → Team as each role sees it, the invitation link shown to copy and its accept page, deactivation
from the console cutting that member's live session, and capacity edits. Pages are read with an HTML parser."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
from litestar.testing import TestClient

from accounts_support import Browser, Page, account_settings, add_user, audit_rows, bearer, login, open_client
from chatsupport.domain.permissions import ROLES
from chatsupport.store import mfa

JOIN_PASSWORD = "Joined#2026"


class Office:
    def __init__(self, client: TestClient):
        self.client = client
        self.db = client.app.state.services.db
        self.users = {role: add_user(client, "Acme", f"{role}@acme.example", role, name=f"{role.title()} A")
                      for role in ROLES}
        self.as_ = {role: Browser(client, user) for role, user in self.users.items()}
        self.second_agent = add_user(client, "Acme", "agent2@acme.example", "agent", name="Second Agent")


@pytest.fixture
def office(tmp_path: Path) -> Iterator[Office]:
    with open_client(account_settings(tmp_path / "data")) as client:
        yield Office(client)


def _form_ids(page: Page) -> set[str]:
    return {f["id"] for f in page.forms if f["id"]}


def test_each_role_sees_what_it_may_do(office: Office) -> None:
    owner, admin, agent = office.users["owner"], office.users["admin"], office.users["agent"]
    other = office.second_agent

    page = office.as_["owner"].page("/settings/team")
    assert page.inline_styles == 0 and all(s.get("src") for s in page.scripts)
    forms = _form_ids(page)
    assert {"invite-form", f"member-form-{other['id']}", f"deactivate-{other['id']}",
            f"member-form-{admin['id']}", f"member-form-{owner['id']}"} <= forms
    assert f"deactivate-{owner['id']}" not in forms  # not one's own
    assert "role" not in page.form(f"member-form-{owner['id']}")["fields"]  # own role is not editable
    assert page.texts["tab-team"] == "Team" and "tab-audit" in page.texts

    page = office.as_["admin"].page("/settings/team")
    forms = _form_ids(page)
    assert f"member-form-{owner['id']}" not in forms and f"deactivate-{owner['id']}" not in forms
    assert {f"member-form-{agent['id']}", f"deactivate-{agent['id']}", "invite-form"} <= forms
    assert page.texts[f"role-{owner['id']}"] == "owner"
    html = office.as_["admin"].get("/settings/team").text
    assert '<option value="owner"' not in html  # admins cannot make owners: the console does not offer it

    for role in ("agent", "viewer"):
        page = office.as_[role].page("/settings/team")
        assert not _form_ids(page) - {None}, (role, _form_ids(page))  # nothing to change here
        assert "Only owners and admins" in page.texts["read-only"]
        assert {f"member-{u['id']}" for u in office.users.values()} <= set(page.texts)
        assert "tab-audit" not in page.texts and "tab-team" in page.texts
        # and the API side of the same forms refuses them
        refused = office.as_[role].post(f"/settings/team/members/{other['id']}", {"role": "admin"})
        assert refused.status_code == 403
        assert office.as_[role].post("/settings/team/invitations", {"email": "x@acme.example",
                                                                    "role": "agent"}).status_code == 403
    assert office.db.query_one("SELECT role FROM users WHERE id = ?", (other["id"],))["role"] == "agent"


def test_invite_from_the_console_copy_link_renew_and_revoke(office: Office) -> None:
    owner = office.as_["owner"]
    page = owner.page("/settings/team")
    assert page.texts["invitations-empty"] == "No pending invitations."
    bad = owner.post("/settings/team/invitations", {"email": "not-an-email", "name": "Zed", "role": "agent"})
    assert bad.status_code == 422 and Page(bad.text).field_errors["email"] == "Enter a valid email address."
    assert Page(bad.text).form("invite-form")["fields"]["name"] == "Zed"  # what was typed stays

    done = owner.post("/settings/team/invitations", {"email": "zed@acme.example", "name": "Zed", "role": "viewer"})
    assert done.status_code == 200
    shown = Page(done.text)
    assert "copy the link" in shown.alerts[0]  # no mail server here
    link = _link(done.text)
    assert link.startswith("http://127.0.0.1:8000/invite/")
    [row] = office.db.query("SELECT id, role FROM invitations")
    assert row["role"] == "viewer" and f"invitation-{row['id']}" in shown.texts
    assert shown.form(f"revoke-{row['id']}")  # with a confirmation (data-confirm) in the markup
    assert 'data-confirm="Revoke the invitation for zed@acme.example?' in done.text

    # the list afterwards never shows the link again; a new link replaces it
    assert link not in owner.get("/settings/team").text
    renewed = owner.post(f"/settings/team/invitations/{row['id']}/renew")
    fresh = _link(renewed.text)
    assert fresh != link and "previous link no longer works" in Page(renewed.text).alerts[0]
    assert office.client.get("/invite/" + link.rsplit("/", 1)[1]).status_code == 404

    revoked = owner.post(f"/settings/team/invitations/{row['id']}/revoke")
    assert revoked.status_code == 303 and revoked.headers["location"] == "/settings/team?saved=revoked"
    after = owner.page("/settings/team?saved=revoked")
    assert after.alerts == ["Invitation revoked."] and "invitations-empty" in after.texts
    problem = Page(office.client.get("/invite/" + fresh.rsplit("/", 1)[1]).text)
    assert "withdrawn" in problem.alerts[0]
    assert [r["action"] for r in office.db.query("SELECT action FROM audit_logs WHERE action LIKE 'invitation.%'"
                                                 " ORDER BY created_at")] == \
        ["invitation.created", "invitation.renewed", "invitation.revoked"]


def _link(html: str) -> str:
    page = Page(html)
    for form in page.forms:
        assert "invite-link" not in form["fields"]
    start = html.index('id="invite-link"')
    value = html[start:].split('value="', 1)[1].split('"', 1)[0]
    assert 'data-copy="invite-link"' in html  # the Copy button
    return value


def test_accept_page_sets_a_password_and_signs_in(office: Office) -> None:
    client = office.client
    owner_h = bearer(login(client, office.users["owner"]["email"]))
    invitation = client.post("/api/v1/team/invitations", headers=owner_h,
                             json={"email": "ivy@acme.example", "role": "agent", "name": "Ivy"}).json()
    path = "/invite/" + invitation["accept_url"].rsplit("/", 1)[1]

    client.cookies.clear()
    page = Page(client.get(path).text)
    assert "agent" in page.texts["invite-summary"] and "ivy@acme.example" in page.texts["invite-summary"]
    form = page.form("accept-form")
    assert form["action"] == path and form["fields"]["name"] == "Ivy"
    mismatch = client.post(path, data={**form["fields"], "password": JOIN_PASSWORD, "password_confirm": "Other#1234"},
                           follow_redirects=False)
    assert mismatch.status_code == 422 and "do not match" in Page(mismatch.text).field_errors["password_confirm"]
    forged = client.post(path, data={"name": "Ivy", "password": JOIN_PASSWORD, "password_confirm": JOIN_PASSWORD},
                         follow_redirects=False)
    assert forged.status_code == 403  # no CSRF token: nothing is created
    assert office.db.query_one("SELECT count(*) AS n FROM users WHERE email = 'ivy@acme.example'")["n"] == 0

    joined = client.post(path, data={**form["fields"], "name": "Ivy Green", "password": JOIN_PASSWORD,
                                     "password_confirm": JOIN_PASSWORD}, follow_redirects=False)
    assert joined.status_code == 303 and joined.headers["location"] == "/inbox"
    session = next(c for c in joined.headers.get_list("set-cookie") if c.startswith("cs_session="))
    assert "HttpOnly" in session
    profile = Page(client.get("/profile").text)
    assert profile.texts["profile-role"] == "agent" and profile.form("name-form")["fields"]["display_name"] == \
        "Ivy Green"

    client.cookies.clear()
    used = client.get(path)
    assert used.status_code == 410 and "already used" in Page(used.text).alerts[0]
    assert client.get("/invite/nonsense").status_code == 404
    ivy = office.db.query_one("SELECT id FROM users WHERE email = 'ivy@acme.example'")
    members = office.as_["viewer"].page("/settings/team")
    shown = members.texts[f"member-{ivy['id']}"]
    assert shown.startswith("Ivy Green") and shown.endswith(" agent") and "active 0 (no limit)" in shown
    assert "never" not in shown  # joining signed them in


def test_deactivate_and_capacity_from_the_console(office: Office) -> None:
    owner, agent = office.as_["owner"], office.as_["agent"]
    agent_id = office.users["agent"]["id"]
    assert agent.get("/profile").status_code == 200
    html = owner.get("/settings/team").text
    assert f'id="deactivate-{agent_id}"' in html and "They are signed out everywhere" in html  # confirmation text

    gone = owner.post(f"/settings/team/members/{agent_id}/deactivate")
    assert gone.status_code == 303 and gone.headers["location"] == "/settings/team?saved=deactivated"
    cut = agent.get("/profile")  # the agent's very next request
    assert cut.status_code == 303 and cut.headers["location"].startswith("/login")
    page = owner.page("/settings/team?saved=deactivated")
    assert page.texts[f"status-{agent_id}"] == "inactive" and f"reactivate-{agent_id}" in _form_ids(page)
    assert owner.post(f"/settings/team/members/{agent_id}/reactivate").status_code == 303
    assert [r["resource_id"] for r in audit_rows(office.client, "user.deactivated")] == [agent_id]

    other_id = office.second_agent["id"]
    wrong = owner.post(f"/settings/team/members/{other_id}", {"role": "agent", "max_concurrent_conversations": "x"})
    assert wrong.status_code == 422
    assert Page(wrong.text).field_errors["max_concurrent_conversations"].startswith("A whole number")
    saved = owner.post(f"/settings/team/members/{other_id}", {"role": "admin", "max_concurrent_conversations": "3"})
    assert saved.status_code == 303
    page = owner.page("/settings/team?saved=member")
    assert page.alerts == ["Member saved."] and page.texts[f"load-{other_id}"] == "0 of 3"
    assert page.form(f"member-form-{other_id}")["fields"]["max_concurrent_conversations"] == "3"
    row = office.db.query_one("SELECT role, max_concurrent_conversations AS m FROM users WHERE id = ?", (other_id,))
    assert (row["role"], row["m"]) == ("admin", 3)
    cleared = owner.post(f"/settings/team/members/{other_id}", {"role": "admin", "max_concurrent_conversations": ""})
    assert cleared.status_code == 303
    assert office.db.query_one("SELECT max_concurrent_conversations AS m FROM users WHERE id = ?",
                               (other_id,))["m"] is None
    # the admin cannot touch the owner even by posting the form by hand
    owner_id = office.users["owner"]["id"]
    refused = office.as_["admin"].post(f"/settings/team/members/{owner_id}/deactivate")
    assert refused.status_code == 403 and "Only an owner" in Page(refused.text).alerts[0]
    assert owner.get("/profile").status_code == 200


def test_accepting_into_a_two_factor_workspace_sends_to_sign_in(office: Office) -> None:
    client = office.client
    owner_h = bearer(login(client, office.users["owner"]["email"]))  # signed in before two-factor was required
    office.db.write(lambda conn: mfa.set_required(conn, office.users["owner"]["workspace_id"], True))
    invitation = client.post("/api/v1/team/invitations", headers=owner_h,
                             json={"email": "tfa@acme.example", "role": "agent"}).json()
    path = "/invite/" + invitation["accept_url"].rsplit("/", 1)[1]
    client.cookies.clear()
    form = Page(client.get(path).text).form("accept-form")
    done = client.post(path, data={**form["fields"], "password": JOIN_PASSWORD, "password_confirm": JOIN_PASSWORD},
                       follow_redirects=False)
    assert done.status_code == 200 and "requires two-factor" in Page(done.text).texts["invite-joined"]
    assert not [c for c in done.headers.get_list("set-cookie") if c.startswith("cs_session=")]
