"""Console pages as a browser sees them: first-run setup, login, CSRF on every form, profile, logout, reset link,
cookie flags. Pages are read with an HTML parser."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from litestar.testing import TestClient

from accounts_support import PASSWORD, Page, account_settings, add_user, audit_rows, bearer, login, open_client
from chatsupport.domain import accounts
from conftest import LiveServer


def submit(client: TestClient, page_path: str, form_id: str, **values: str) -> Any:
    """Load the page, fill the form like a person would, post it (hidden fields, CSRF included)."""
    page = Page(client.get(page_path).text)
    form = page.form(form_id)
    return client.post(form["action"], data={**form["fields"], **values}, follow_redirects=False)


def cookie_header(response: Any, name: str) -> str:
    for value in response.headers.get_list("set-cookie"):
        if value.startswith(name + "="):
            return value
    raise AssertionError(f"no {name} cookie set")


def test_first_run_setup_then_closed(tmp_path: Path) -> None:
    with open_client(account_settings(tmp_path / "data")) as client:
        assert client.get("/login", follow_redirects=False).headers["location"] == "/setup"
        page = Page(client.get("/setup").text)
        assert page.scripts and all(s.get("src") for s in page.scripts) and page.inline_styles == 0
        mismatch = submit(client, "/setup", "setup-form", workspace="Acme", email="boss@acme.example",
                          password=PASSWORD, password_confirm="Other#123")
        assert mismatch.status_code == 422
        assert "do not match" in Page(mismatch.text).field_errors["password_confirm"]
        weak = submit(client, "/setup", "setup-form", workspace="Acme", email="boss@acme.example",
                      password="weak", password_confirm="weak")
        assert weak.status_code == 422 and "uppercase" in Page(weak.text).field_errors["password"]
        done = submit(client, "/setup", "setup-form", workspace="Acme", email="boss@acme.example",
                      display_name="The Boss", password=PASSWORD, password_confirm=PASSWORD)
        assert done.status_code == 303 and done.headers["location"] == "/chatbots/new"  # straight into the wizard
        session = cookie_header(done, "cs_session")
        assert "HttpOnly" in session and "SameSite=lax" in session.replace("Lax", "lax")
        assert "Secure" not in session  # plain http, no trusted proxy
        profile = Page(client.get("/profile").text)
        assert profile.texts["profile-role"] == "owner" and profile.texts["profile-workspace"] == "Acme"
        assert profile.form("name-form")["fields"]["display_name"] == "The Boss"
        # closed now: the page redirects and a forged post creates nobody
        assert client.get("/setup", follow_redirects=False).headers["location"] == "/login"
        token = profile.form("name-form")["fields"]["csrf_token"]
        again = client.post("/setup", data={"csrf_token": token, "workspace": "Evil", "email": "evil@x.example",
                                            "password": PASSWORD, "password_confirm": PASSWORD},
                            follow_redirects=False)
        assert again.status_code == 303
        db = client.app.state.services.db
        assert db.query_one("SELECT count(*) AS n FROM users")["n"] == 1
        assert db.query_one("SELECT count(*) AS n FROM workspaces")["n"] == 1


def _instance(tmp_path: Path) -> tuple[Any, TestClient]:
    """An instance with one owner; the caller exits the returned context manager."""
    manager = open_client(account_settings(tmp_path / "data"))
    client = manager.__enter__()
    add_user(client, "Acme", "owner@acme.example", "owner", name="Olga")
    return manager, client


def test_login_profile_password_and_logout(tmp_path: Path) -> None:
    manager, client = _instance(tmp_path)
    try:
        assert client.get("/profile", follow_redirects=False).headers["location"] == "/login?next=/profile"
        wrong = submit(client, "/login", "login-form", email="owner@acme.example", password="Nope#1234")
        assert wrong.status_code == 401
        assert Page(wrong.text).alerts == ["Email or password is incorrect."]
        ok = submit(client, "/login?next=/profile", "login-form", email="owner@acme.example", password=PASSWORD)
        assert ok.status_code == 303 and ok.headers["location"] == "/profile"
        assert audit_rows(client, "user.login")[-1]["metadata"] == '{"via": "console"}'
        # display name
        renamed = submit(client, "/profile", "name-form", display_name="Olga K")
        assert renamed.status_code == 303
        page = Page(client.get(renamed.headers["location"]).text)
        assert page.form("name-form")["fields"]["display_name"] == "Olga K"
        assert "display name was saved" in page.alerts[0]
        too_long = submit(client, "/profile", "name-form", display_name="x" * 101)
        assert too_long.status_code == 422 and Page(too_long.text).field_errors["display_name"]
        # password: other sessions end, this browser stays signed in
        api = login(client, "owner@acme.example")
        wrong_current = submit(client, "/profile", "password-form", current_password="Bad#12345",
                               new_password="Newer#456", new_password_confirm="Newer#456")
        assert wrong_current.status_code == 403
        changed = submit(client, "/profile", "password-form", current_password=PASSWORD, new_password="Newer#456",
                         new_password_confirm="Newer#456")
        assert changed.status_code == 303 and changed.headers["location"] == "/profile?saved=password"
        assert client.get("/api/v1/auth/me", headers=bearer(api)).status_code == 401
        assert client.get("/profile").status_code == 200
        # logout
        logout_form = Page(client.get("/profile").text).form("name-form")  # any page form carries the token
        out = client.post("/logout", data={"csrf_token": logout_form["fields"]["csrf_token"]},
                          follow_redirects=False)
        assert out.status_code == 303 and out.headers["location"] == "/login?done=out"
        assert client.get("/profile", follow_redirects=False).status_code == 303
    finally:
        manager.__exit__(None, None, None)


def test_forms_without_a_valid_csrf_token_are_refused(tmp_path: Path) -> None:
    manager, client = _instance(tmp_path)
    try:
        no_token = client.post("/login", data={"email": "owner@acme.example", "password": PASSWORD},
                               follow_redirects=False)
        assert no_token.status_code == 403 and "cs_session" not in no_token.headers.get("set-cookie", "")
        assert Page(no_token.text).alerts[0].startswith("The form expired")
        # a token from another browser does not fit this browser's cookie
        other = TestClient(client.app, base_url="http://testserver.local")
        foreign = Page(other.get("/login").text).form("login-form")["fields"]["csrf_token"]
        client.cookies.clear()
        client.get("/login")
        stolen = client.post("/login", data={"csrf_token": foreign, "email": "owner@acme.example",
                                             "password": PASSWORD}, follow_redirects=False)
        assert stolen.status_code == 403
        assert submit(client, "/login", "login-form", email="owner@acme.example",
                      password=PASSWORD).status_code == 303
        for path, data in (("/profile", {"display_name": "Mallory"}),
                           ("/profile/password", {"current_password": PASSWORD, "new_password": "Evil#1234",
                                                  "new_password_confirm": "Evil#1234"}),
                           ("/logout", {})):
            for token in ("", "forged"):
                response = client.post(path, data={**data, "csrf_token": token}, follow_redirects=False)
                assert response.status_code == 403, path
        page = Page(client.get("/profile").text)  # still signed in, nothing changed
        assert page.form("name-form")["fields"]["display_name"] == "Olga"
        login(client, "owner@acme.example")  # password unchanged
        # API writes with the session cookie need the token as a header
        assert client.post("/api/v1/chatbots", json={"name": "Cookie Bot"}).status_code == 403
        token = page.form("name-form")["fields"]["csrf_token"]
        made = client.post("/api/v1/chatbots", json={"name": "Cookie Bot"}, headers={"X-CSRF-Token": token})
        assert made.status_code == 201
    finally:
        manager.__exit__(None, None, None)


def test_console_login_is_throttled_with_retry_after(tmp_path: Path) -> None:
    manager, client = _instance(tmp_path)
    try:
        for _ in range(5):
            assert submit(client, "/login", "login-form", email="owner@acme.example",
                          password="Wrong#999").status_code == 401
        blocked = submit(client, "/login", "login-form", email="owner@acme.example", password=PASSWORD)
        assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) > 0
        assert "Too many attempts" in Page(blocked.text).alerts[0]
    finally:
        manager.__exit__(None, None, None)


def test_secure_cookie_over_https(tmp_path: Path) -> None:
    with open_client(account_settings(tmp_path / "a"), base_url="https://testserver.local") as client:
        add_user(client, "Acme", "owner@acme.example", "owner")
        done = submit(client, "/login", "login-form", email="owner@acme.example", password=PASSWORD)
        assert "Secure" in cookie_header(done, "cs_session")


def test_secure_cookie_and_client_ip_behind_a_trusted_proxy(tmp_path: Path) -> None:
    """A real server on loopback, with loopback as the trusted proxy (TestClient has no IP to trust)."""
    server = LiveServer(tmp_path / "data", TRUSTED_PROXIES="127.0.0.1", ARGON2_MEMORY_KIB="1024",
                        RUN_WORKER="false")
    try:
        server.wait()
        plain = httpx.get(server.url + "/setup")
        assert "Secure" not in plain.headers["set-cookie"]
        proxied = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
        page = httpx.get(server.url + "/setup", headers=proxied)
        csrf_cookie = page.headers["set-cookie"]
        assert "Secure" in csrf_cookie
        form = Page(page.text).form("setup-form")
        done = httpx.post(server.url + "/setup", headers={**proxied, "Cookie": csrf_cookie.split(";")[0]},
                          data={**form["fields"], "workspace": "Proxy Co", "email": "owner@proxy.example",
                                "password": PASSWORD, "password_confirm": PASSWORD})
        assert done.status_code == 303
        session = [c for c in done.headers.get_list("set-cookie") if c.startswith("cs_session=")][0]
        assert "Secure" in session and "HttpOnly" in session
        tokens = httpx.post(server.url + "/api/v1/auth/login", headers=proxied,
                            json={"email": "owner@proxy.example", "password": PASSWORD}).json()
        log = httpx.get(server.url + "/api/v1/audit-logs?action=user.login", headers=bearer(tokens)).json()
        assert {row["ip_address"] for row in log["data"]} == {"203.0.113.9"}
    finally:
        server.stop()


def test_reset_link_page_sets_a_new_password(tmp_path: Path) -> None:
    manager, client = _instance(tmp_path)
    try:
        link = accounts.issue_link(client.app.state.services, "owner@acme.example", "reset_password")
        path = "/" + link["url"].split("/", 3)[3]  # the link names PUBLIC_URL; the path is what matters
        page = Page(client.get(path).text)
        assert page.form("reset-form")["fields"]["token"]
        done = submit(client, path, "reset-form", password="Fresh#2024", password_confirm="Fresh#2024")
        assert done.status_code == 303 and done.headers["location"] == "/login?done=reset"
        reused = submit(client, path, "reset-form", password="Fresh#2025", password_confirm="Fresh#2025")
        assert reused.status_code == 401 and "invalid" in Page(reused.text).alerts[0]
        login(client, "owner@acme.example", "Fresh#2024")
        notice = Page(client.get("/login?done=reset").text).alerts
        assert notice == ["Your password was changed. Sign in with the new one."]
    finally:
        manager.__exit__(None, None, None)


def test_login_next_never_leaves_the_site(tmp_path: Path) -> None:
    manager, client = _instance(tmp_path)
    try:
        for target in ("https://evil.example/", "//evil.example", "/\\evil.example"):
            response = submit(client, f"/login?next={target}", "login-form", email="owner@acme.example",
                              password=PASSWORD)
            assert response.headers["location"] == "/profile", target
            client.cookies.clear()
    finally:
        manager.__exit__(None, None, None)
