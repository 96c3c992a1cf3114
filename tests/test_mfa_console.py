"""Two-factor authentication in the console, as a browser sees it: enrolment on the profile page (QR code, key in
text, recovery codes once), the two-step sign-in, recovery codes, enforcement from /settings/security with
enrolment straight after the password, and an admin's reset."""

from __future__ import annotations

import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Iterator

import pytest
from litestar.testing import TestClient

from accounts_support import PASSWORD, Page, account_settings, add_user, audit_rows, open_client
from chatsupport.domain import totp


class Images(HTMLParser):
    def __init__(self, html: str):
        super().__init__()
        self.src: dict[str, str] = {}
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "img" and a.get("id"):
            self.src[a["id"]] = a.get("src") or ""


def post_form(client: TestClient, html: str, form_id: str, **values: str) -> Any:
    form = Page(html).form(form_id)
    return client.post(form["action"], data={**form["fields"], **values}, follow_redirects=False)


def submit(client: TestClient, path: str, form_id: str, **values: str) -> Any:
    return post_form(client, client.get(path).text, form_id, **values)


def code(secret: str, offset: int = 0) -> str:
    if time.time() % totp.STEP_SECONDS > totp.STEP_SECONDS - 3:  # not across a step boundary
        time.sleep(3.5)
    return totp.code_at(totp.secret_bytes(secret), totp.step_of(time.time()) + offset)


def recovery_codes(page: Page) -> list[str]:
    return page.texts["recovery-codes"].split()


def sign_in(client: TestClient, email: str, next_path: str = "/profile") -> Any:
    client.cookies.clear()
    return submit(client, f"/login?next={next_path}", "login-form", email=email, password=PASSWORD)


def enrol_on_profile(client: TestClient) -> tuple[str, list[str]]:
    started = submit(client, "/profile", "mfa-setup-form")
    assert started.status_code == 200
    page = Page(started.text)
    assert page.inline_styles == 0 and all(s.get("src") for s in page.scripts)
    assert Images(started.text).src["mfa-qr"].startswith("data:image/svg+xml")
    secret = page.texts["mfa-secret"]
    done = post_form(client, started.text, "mfa-confirm-form", code=code(secret, -1))
    assert done.status_code == 200, done.text
    return secret, recovery_codes(Page(done.text))


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with open_client(account_settings(tmp_path / "data")) as test_client:
        add_user(test_client, "Acme", "owner@acme.example", "owner", name="Olga")
        add_user(test_client, "Acme", "agent@acme.example", "agent", name="Arno")
        yield test_client


def test_enrol_on_the_profile_page(client: TestClient) -> None:
    assert sign_in(client, "owner@acme.example").status_code == 303
    profile = Page(client.get("/profile").text)
    assert profile.texts["mfa-state"].startswith("Off.")
    started = submit(client, "/profile", "mfa-setup-form")
    secret = Page(started.text).texts["mfa-secret"]
    wrong = post_form(client, started.text, "mfa-confirm-form", code="123456")
    assert wrong.status_code == 422
    shown = Page(wrong.text)
    assert "current 6-digit code" in shown.field_errors["code"]
    assert shown.texts["mfa-secret"] == secret  # the same set-up, shown again
    done = post_form(client, wrong.text, "mfa-confirm-form", code=code(secret, -1))
    page = Page(done.text)
    assert "Two-factor authentication is on." in page.alerts and len(recovery_codes(page)) == 10
    again = Page(client.get("/profile").text)  # shown once: never again
    assert "recovery-codes" not in again.texts and again.texts["mfa-codes-left"].startswith("10 of 10")
    assert again.texts["mfa-state"].startswith("On")


def test_two_step_sign_in(client: TestClient) -> None:
    sign_in(client, "owner@acme.example")
    secret, codes = enrol_on_profile(client)

    first = sign_in(client, "owner@acme.example", "/inbox")
    assert first.status_code == 200 and "cs_session" not in first.headers.get("set-cookie", "")
    step = Page(first.text)
    fields = step.form("mfa-code-form")["fields"]
    assert fields["next"] == "/inbox" and fields["pending"] and "password" not in fields
    assert client.get("/profile", follow_redirects=False).status_code == 303  # no half-session

    wrong = post_form(client, first.text, "mfa-code-form", code="000000" if code(secret) != "000000" else "111111")
    assert wrong.status_code == 401 and "incorrect" in Page(wrong.text).field_errors["code"]
    forged = dict(fields, code=code(secret), pending=fields["pending"][:-4] + "0000")
    back = client.post("/login/code", data=forged, follow_redirects=False)
    assert back.status_code == 401 and Page(back.text).form("login-form")
    ok = post_form(client, wrong.text, "mfa-code-form", code=code(secret))
    assert ok.status_code == 303 and ok.headers["location"] == "/inbox"
    assert "cs_session=" in ok.headers["set-cookie"]
    assert Page(client.get("/profile").text).texts["profile-email"].startswith("owner@acme.example")

    # a recovery code instead of the app, once
    step = sign_in(client, "owner@acme.example")
    assert post_form(client, step.text, "mfa-code-form", code=codes[0]).status_code == 303
    step = sign_in(client, "owner@acme.example")
    assert post_form(client, step.text, "mfa-code-form", code=codes[0]).status_code == 401
    assert len(audit_rows(client, "mfa.recovery_code_used")) == 1


def test_wrong_codes_are_throttled_in_the_console(client: TestClient) -> None:
    sign_in(client, "owner@acme.example")
    secret, _ = enrol_on_profile(client)
    step = sign_in(client, "owner@acme.example")
    for _ in range(5):
        step = post_form(client, step.text, "mfa-code-form", code="999999" if code(secret) != "999999" else "888888")
    limited = post_form(client, step.text, "mfa-code-form", code=code(secret))
    assert limited.status_code == 429 and limited.headers["retry-after"]


def test_disable_and_new_codes_on_the_profile_page(client: TestClient) -> None:
    sign_in(client, "owner@acme.example")
    _, codes = enrol_on_profile(client)
    wrong = submit(client, "/profile", "mfa-disable-form", password="Wrong#123")
    assert wrong.status_code == 403 and Page(wrong.text).field_errors["password"] == "Incorrect."
    fresh = submit(client, "/profile", "mfa-codes-form", password=PASSWORD)
    new_codes = recovery_codes(Page(fresh.text))
    assert len(new_codes) == 10 and not set(new_codes) & set(codes)
    off = submit(client, "/profile", "mfa-disable-form", password=PASSWORD)
    assert off.status_code == 303 and off.headers["location"] == "/profile?saved=mfa_off"
    assert sign_in(client, "owner@acme.example").status_code == 303  # password alone again
    assert len(audit_rows(client, "mfa.disabled")) == 1


def test_enforcement_sends_members_to_enrol_after_the_password(client: TestClient) -> None:
    sign_in(client, "agent@acme.example")
    assert client.get("/settings/security", follow_redirects=False).status_code == 403
    sign_in(client, "owner@acme.example")
    page = Page(client.get("/settings/security").text)
    assert page.texts["mfa-summary"].startswith("0 of 2") and page.inline_styles == 0
    early = submit(client, "/settings/security", "security-form", require_mfa="on")
    assert early.status_code == 409 and "your own account" in Page(early.text).alerts[0]
    _, owner_codes = enrol_on_profile(client)
    on = submit(client, "/settings/security", "security-form", require_mfa="on")
    assert on.status_code == 303
    settings = Page(client.get(on.headers["location"]).text)
    assert settings.form("security-form")["fields"]["require_mfa"] == "" and "now required" in settings.alerts[0]
    assert settings.texts["mfa-summary"].startswith("1 of 2")

    step = sign_in(client, "agent@acme.example", "/inbox")
    assert step.status_code == 200 and "cs_session" not in step.headers.get("set-cookie", "")
    enrol_page = Page(step.text)
    assert Images(step.text).src["mfa-qr"].startswith("data:image/svg+xml")
    secret = enrol_page.texts["mfa-secret"]
    wrong = post_form(client, step.text, "mfa-enrol-form", code="12")
    assert wrong.status_code == 422 and Page(wrong.text).texts["mfa-secret"] == secret
    done = post_form(client, wrong.text, "mfa-enrol-form", code=code(secret, -1))
    assert done.status_code == 200 and "cs_session=" in done.headers["set-cookie"]
    shown = Page(done.text)
    assert len(recovery_codes(shown)) == 10 and shown.texts["continue"]
    assert client.get("/profile").status_code == 200
    agent_profile = Page(client.get("/profile").text)
    assert agent_profile.texts["mfa-state"].startswith("On") and "mfa-disable-form" not in [
        f["id"] for f in agent_profile.forms]  # required: no way to turn it off oneself

    # an admin resets the agent's two-factor (lost phone): the next sign-in enrols again
    step = sign_in(client, "owner@acme.example", "/settings/security")
    signed_in = post_form(client, step.text, "mfa-code-form", code=owner_codes[0])
    page = Page(client.get(signed_in.headers["location"]).text)
    agent_id = client.app.state.services.db.query_one("SELECT id FROM users WHERE email = 'agent@acme.example'")["id"]
    reset_form = next(f for f in page.forms if f["action"] == f"/settings/security/members/{agent_id}/reset-mfa")
    missing = client.post("/settings/security/members/nobody/reset-mfa", data=reset_form["fields"],
                          follow_redirects=False)
    assert missing.status_code == 404
    reset = client.post(reset_form["action"], data=reset_form["fields"], follow_redirects=False)
    assert reset.status_code == 303 and len(audit_rows(client, "mfa.reset")) == 1
    again = sign_in(client, "agent@acme.example")
    assert Page(again.text).form("mfa-enrol-form")
