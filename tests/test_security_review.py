"""Security review module: the map of what the suite proves about each attack surface, and the checks that were
missing. Where a line points to another file, that file holds the proof; the tests below fill the gaps.

SSRF — every URL-taking feature
  tests/test_outbound_guard.py       the guard: literal IP encodings, IPv6 forms, metadata, one DNS lookup per
                                     fetch with the vetted IP pinned (rebinding), redirects re-checked, size/time caps
  tests/test_crawler.py              crawl URLs and discovered links to private addresses refused
  tests/test_llm_cloud.py            LLM base URLs refused unless allow-listed
  tests/test_integrations.py         Slack URLs to private addresses refused unless allow-listed
  tests/test_security_review_ssrf.py webhook and Slack URLs refused when saved; DNS rebinding (public when saved,
                                     127.0.0.1 when used) refused at use for webhooks, Slack, crawls, LLM tests;
                                     redirects to the metadata address not followed by crawler, LLM client, hooks
CSRF
  tests/test_console_auth.py         login/profile/logout refuse a missing, forged or foreign token; API writes
                                     with the session cookie need the X-CSRF-Token header
  here                               EVERY console POST route and EVERY cookie-authenticated API write refuses a
                                     request without a token, and nothing changes
Cookie flags
  tests/test_console_auth.py         Secure over https and behind a trusted proxy; HttpOnly on the session
  here                               session/CSRF/refresh cookies: HttpOnly, SameSite, Secure with an https
                                     PUBLIC_URL, never Secure-less over https
Security headers
  tests/test_http.py                 headers on every response; frame-ancestors for framable pages
  tests/test_widget_frame.py         the widget frame's frame-ancestors follow the chatbot's allowed domains
  here                               console pages, API JSON and the widget frame each carry CSP (no unsafe-inline
                                     script), nosniff, Referrer-Policy and the right framing rule
Rate limits
  tests/test_auth_api.py, tests/test_console_auth.py   login throttled with Retry-After (API and console)
  tests/test_mfa.py                  MFA code attempts throttled
  tests/test_widget_limits.py, tests/test_widget_socket.py   widget messages, conversations and uploads per
                                     visitor and per IP
Workspace isolation
  tests/test_isolation.py            every id route: another workspace's ids are 404; lists scoped
Permission matrix
  tests/test_http.py, tests/test_rbac.py   every registered route declares a known permission and is guarded;
                                     each role against the PRD matrix
Stored XSS
  tests/test_chatbot_console.py, tests/test_inbox_console.py, tests/test_notes_notifications.py,
  tests/test_review_console.py, tests/test_widget_browser.py   per-page checks
  here                               one payload in every user-writable text (bot name, customer name, messages,
                                     notes, tags, FAQ, document title, canned response, workspace name, member
                                     name, API key name, webhook description) rendered on every console page that
                                     shows it: present as text, never as markup
Path traversal
  tests/test_backup.py               restore refuses archives with ../, absolute or unexpected members
  tests/test_widget_frame.py, tests/test_widget_fallback.py   widget static names
  here                               upload filenames with ../ stay inside the uploads folder and are served
                                     back under a safe download name
Secrets never logged
  tests/test_api_keys.py             an API key never appears in logs
  here                               passwords at login, API keys, LLM provider keys and SMTP passwords never
                                     appear in any log record or in the audit log
"""

from __future__ import annotations

import logging
import uuid
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Iterator

import pytest
from litestar.testing import TestClient

from accounts_support import PASSWORD, Page, account_settings, add_user, bearer, login, open_client
from chatsupport.domain import conversations as states
from chatsupport.store import conversations as conversation_store

MARK = "xss-{field}"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def payload(field: str) -> str:
    mark = MARK.format(field=field)
    return f'<img src=x onerror="alert(`{mark}`)"><script>alert("{mark}")</script>{mark}'


def short(field: str) -> str:
    """For names with a length limit (a bot name is at most 50 characters)."""
    return f"<img src=x onerror=alert(1)>{MARK.format(field=field)}"


class Markup(HTMLParser):
    """What a browser would build from a page: elements with attributes and the text of each script."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.dangerous: list[str] = []
        self.text: list[str] = []
        self._script = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        if any(name.startswith("on") for name in names):
            self.dangerous.append(f"<{tag} {sorted(names)}>")
        self._script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._script = False

    def handle_data(self, data: str) -> None:
        if self._script and "xss-" in data:
            self.dangerous.append(f"<script> running {data[:80]!r}")
        elif not self._script:
            self.text.append(data)


def console_login(client: TestClient, email: str) -> str:
    """Sign in through the console form like a browser; returns a CSRF token for this session."""
    form = Page(client.get("/login").text).form("login-form")
    done = client.post(form["action"], data={**form["fields"], "email": email, "password": PASSWORD},
                       follow_redirects=False)
    assert done.status_code == 303, done.text
    return str(Page(client.get("/profile").text).form("name-form")["fields"]["csrf_token"])


class World:
    """One workspace with user text in every place it can go, written through the API a customer or member uses."""

    def __init__(self, client: TestClient):
        self.client = client
        self.db = client.app.state.services.db
        self.owner = add_user(client, "Acme", "owner@acme.example", "owner", name="Olive Owner")
        self.member = add_user(client, "Acme", "agent@acme.example", "agent", name=short("member_name"))
        self.headers = bearer(login(client, "owner@acme.example"))
        self.ws = self.owner["workspace_id"]
        named = client.post("/api/v1/chatbots", json={"name": short("bot_name")}, headers=self.headers)
        self.refused = {"bot_name"} if named.status_code == 422 else set()  # bot names are words only
        self.bot = (named.json() if not self.refused else self.api("post", "/api/v1/chatbots", "bot_name", {
            "name": "Acme Helper"}))["id"]
        self.conversation = self._conversation()
        self.api("put", f"/api/v1/conversations/{self.conversation}/tags", "tag", {"tags": [short("tag")]})
        self.api("post", f"/api/v1/conversations/{self.conversation}/notes", "note", {"content": payload("note")})
        self.api("post", "/api/v1/knowledge-base/faqs", "faq", {"chatbot_id": self.bot, "question": payload("faq"),
                                                                "answer": payload("faq_answer")})
        self.api("post", "/api/v1/canned-responses", "canned", {"shortcut": "xss", "title": short("canned"),
                                                                "content": payload("canned_text")})
        self.api("post", "/api/v1/api-keys", "api_key_name", {"name": short("api_key_name"), "scopes": ["read"]})
        doc = client.post("/api/v1/knowledge-base/documents", headers=self.headers, data={
            "chatbot_id": self.bot, "metadata": f'{{"title": "{payload("doc_title").replace(chr(34), chr(39))}"}}'},
            files={"file": ("../../evil<b>.txt", b"Refunds take fourteen days.", "text/plain")})
        assert doc.status_code == 201, doc.text
        self.document = doc.json()

    def api(self, method: str, path: str, field: str, body: dict[str, Any]) -> dict[str, Any]:
        response = getattr(self.client, method)(path, json=body, headers=self.headers)
        assert response.status_code in (200, 201), (field, response.text)
        return dict(response.json())

    def _conversation(self) -> str:
        def write(conn: Any) -> str:
            customer = conversation_store.create_customer(conn, self.ws, visitor_id="v_x",
                                                          name=payload("customer_name"), email="x@example.com")
            conv = states.start(conn, self.ws, self.bot, customer, {"page_url": "https://shop.example/"})
            conversation_store.add_message(conn, conv, "customer", payload("message"), sender_id=customer,
                                           sender_name=payload("customer_name"))
            return conv

        return str(self.db.write(write))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with open_client(account_settings(tmp_path_factory.mktemp("review") / "data")) as client:
        yield World(client)


def test_user_text_is_shown_as_text_never_as_markup_on_every_console_page(world: World) -> None:
    client = TestClient(world.client.app, base_url="http://testserver.local")
    token = console_login(client, "owner@acme.example")
    named = client.post("/settings/workspace", data={"csrf_token": token, "name": short("workspace"),
                                                     "primary_color": "#2563eb", "secondary_color": "#1e40af",
                                                     "timezone": "UTC"}, follow_redirects=False)
    assert named.status_code in (200, 303), named.text
    pages = ["/inbox", f"/inbox/{world.conversation}", "/chatbots", f"/chatbots/{world.bot}",
             f"/chatbots/{world.bot}/knowledge", f"/chatbots/{world.bot}/knowledge/documents", "/settings/team",
             "/settings/workspace", "/settings/api-keys", "/settings/audit", "/dashboard", "/review", "/profile"]
    shown: set[str] = set()
    for path in pages:
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code)
        page = Markup(response.text)
        assert page.dangerous == [], (path, page.dangerous)
        text = " ".join(page.text)
        shown |= {field for field in FIELDS if MARK.format(field=field) in text}
    assert set(FIELDS) - world.refused - shown == set(), "user text never rendered, so never checked"


FIELDS = ("bot_name", "customer_name", "message", "note", "tag", "faq", "canned", "member_name", "api_key_name",
          "doc_title", "workspace")


def test_upload_filenames_cannot_leave_the_uploads_folder(world: World) -> None:
    uploads = world.client.app.state.services.settings.data.uploads.resolve()
    row = world.db.query_one("SELECT stored_path, original_filename FROM knowledge_documents WHERE id = ?",
                             (world.document["id"],))
    stored = Path(row["stored_path"]).resolve()
    assert stored.is_relative_to(uploads) and stored.exists()
    assert ".." not in stored.relative_to(uploads).parts and "evil" not in stored.name


def _write_routes(client: TestClient, prefix: str) -> list[tuple[str, str, str]]:
    routes = []
    for route in client.app.routes:
        for handler in getattr(route, "route_handlers", []):
            methods = set(getattr(handler, "http_methods", None) or ()) - SAFE_METHODS
            permission = (handler.opt or {}).get("permission")
            if methods and permission not in (None, "public") and route.path.startswith("/api") == (prefix == "/api"):
                routes += [(method, route.path, permission) for method in sorted(methods)]
    return routes


def _fill(path: str, world: World) -> tuple[str, bool]:
    """The path with real ids where this world has them (else a random id); whether every id was real."""
    known = {"chatbot_id": world.bot, "conversation_id": world.conversation, "user_id": world.member["id"],
             "document_id": world.document["id"], "section": "general", "version": "1"}
    parts, real = [], True
    for part in path.split("/"):
        if part.startswith("{"):
            name = part[1:].split(":")[0]
            real = real and name in known
            part = known.get(name, str(uuid.uuid4()))
        parts.append(part)
    return "/".join(parts), real


def test_every_cookie_authenticated_write_needs_the_csrf_token(world: World) -> None:
    client = TestClient(world.client.app, base_url="http://testserver.local")
    console_login(client, "owner@acme.example")
    before = world.db.query_one("SELECT count(*) AS n FROM audit_logs")["n"]
    console, api = _write_routes(client, "/"), _write_routes(client, "/api")
    assert len(console) > 50 and len(api) > 50
    passed = []
    for method, path, _ in console + api:
        url, real = _fill(path, world)
        for token in ({}, {"csrf_token": "forged"}):
            if path.startswith("/api"):
                response = client.request(method, url, json={}, headers={"X-CSRF-Token": token.get("csrf_token", "")})
            else:
                response = client.request(method, url, data=token, follow_redirects=False)
            if response.status_code != 403 and (real or response.status_code != 404):
                passed.append((method, path, response.status_code))  # 404 only for an id that does not exist
    assert passed == [], "writes accepted without a valid CSRF token"
    assert world.db.query_one("SELECT count(*) AS n FROM audit_logs")["n"] == before, "something changed"
    assert client.get("/profile").status_code == 200  # still signed in: the refusals did not log us out


def cookies(response: Any) -> dict[str, str]:
    return {value.split("=", 1)[0]: value for value in response.headers.get_list("set-cookie")}


@pytest.mark.parametrize("public_url", ["", "https://support.example.com"])
def test_cookie_flags(tmp_path: Path, public_url: str) -> None:
    settings = account_settings(tmp_path / "data", **({"PUBLIC_URL": public_url} if public_url else {}))
    with open_client(settings) as client:
        add_user(client, "Acme", "owner@acme.example", "owner")
        form_page = client.get("/login")
        csrf = cookies(form_page)["cs_csrf"]
        form = Page(form_page.text).form("login-form")
        client.cookies.clear()  # a browser would not send a Secure cookie over http; this client is told it
        done = client.post(form["action"], data={**form["fields"], "email": "owner@acme.example",
                                                 "password": PASSWORD}, follow_redirects=False,
                           headers={"Cookie": csrf.split(";")[0]})
        session = cookies(done)["cs_session"]
        api = client.post("/api/v1/auth/login", json={"email": "owner@acme.example", "password": PASSWORD})
    flags = {"cs_csrf": csrf, "cs_session": session, **{k: v for k, v in cookies(api).items()}}
    for name, header in flags.items():
        lowered = header.lower()
        assert "httponly" in lowered and ("samesite=lax" in lowered or "samesite=strict" in lowered), header
        assert ("secure" in lowered.split("; ")) == bool(public_url), (name, header)


def test_security_headers_on_console_api_and_widget_frame(world: World) -> None:
    client = TestClient(world.client.app, base_url="http://testserver.local")
    console_login(client, "owner@acme.example")
    key = world.client.get(f"/api/v1/chatbots/{world.bot}", headers=world.headers).json()["public_key"]
    responses = {
        "console": client.get("/inbox"),
        "login": client.get("/login"),
        "api": world.client.get("/api/v1/chatbots", headers=world.headers),
        "api error": world.client.get("/api/v1/chatbots/nope", headers=world.headers),
        "widget frame": world.client.get("/widget/frame", params={"key": key, "visitor": "v_" + "a" * 22,
                                                                  "origin": "https://shop.example"}),
    }
    for kind, response in responses.items():
        headers = response.headers
        assert headers["x-content-type-options"] == "nosniff", kind
        assert headers["referrer-policy"] in ("no-referrer", "strict-origin-when-cross-origin", "same-origin"), kind
        csp = headers["content-security-policy"]
        directives = {d.strip().split(" ")[0]: d.strip() for d in csp.split(";") if d.strip()}
        assert "'unsafe-inline'" not in directives.get("script-src", directives.get("default-src", "")), kind
        assert "frame-ancestors" in directives, kind
        if kind == "widget frame":
            assert "'none'" not in directives["frame-ancestors"] and "x-frame-options" not in headers
        else:
            assert directives["frame-ancestors"] == "frame-ancestors 'none'", (kind, csp)


SECRETS = {"password": PASSWORD, "provider key": "sk-live-ProviderSecret-9f8e7d", "smtp": "Smtp-Pa55word-Secret",
           "api key": None}


def test_secrets_never_reach_the_logs_or_the_audit_log(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with open_client(account_settings(tmp_path / "data")) as client:
        add_user(client, "Acme", "owner@acme.example", "owner")
        headers = bearer(login(client, "owner@acme.example"))
        wrong = client.post("/api/v1/auth/login", json={"email": "owner@acme.example", "password": "Wrong-" + PASSWORD})
        assert wrong.status_code == 401
        made = client.post("/api/v1/api-keys", json={"name": "CI", "scopes": ["read"]}, headers=headers)
        assert made.status_code == 201, made.text
        key = made.json()["key"]
        saved = client.put("/api/v1/llm-providers", headers=headers, json={"providers": [
            {"kind": "openai", "base_url": "https://api.openai.com/v1", "model": "gpt-4o-mini",
             "api_key": SECRETS["provider key"]}]})
        assert saved.status_code == 200, saved.text
        smtp = client.put("/api/v1/integrations/smtp", headers=headers, json={
            "host": "mail.example.com", "port": 587, "username": "bot", "password": SECRETS["smtp"],
            "sender": "help@example.com"})
        assert smtp.status_code == 200, smtp.text
        audit = " ".join(str(row) for row in client.app.state.services.db.query("SELECT * FROM audit_logs"))
        listed = client.get("/api/v1/llm-providers", headers=headers).text + client.get(
            "/api/v1/integrations", headers=headers).text
    logged = "\n".join(record.getMessage() + str(record.__dict__) for record in caplog.records)
    assert caplog.records, "nothing was logged, so nothing was checked"
    for name, secret in {**SECRETS, "api key": key, "wrong password": "Wrong-" + PASSWORD}.items():
        assert secret not in logged, f"{name} in the logs"
        assert secret not in audit, f"{name} in the audit log"
        assert secret not in listed, f"{name} returned after it was saved"
