"""Helpers for the accounts tests: cheap argon2 (through the explicit setting), users seeded through the domain
layer, API logins, and an HTML reader for console pages (forms, alerts, field errors), so no test greps markup."""

from __future__ import annotations

from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Iterator

from litestar.testing import TestClient

from chatsupport.app import create_app
from chatsupport.config import Settings, load_settings
from chatsupport.domain import accounts, auth
from chatsupport.domain.audit import Origin
from conftest import make_env

PASSWORD = "Secret#123"
FAST_HASHING = {"ARGON2_MEMORY_KIB": "1024", "RUN_WORKER": "false"}


def account_settings(data_dir: Path, **extra: str) -> Settings:
    return load_settings(env=make_env(data_dir, **{**FAST_HASHING, **extra}))


@contextmanager
def open_client(settings: Settings, base_url: str = "http://testserver.local") -> Iterator[TestClient]:
    app = create_app(settings, load_embedder=False)
    with TestClient(app, base_url=base_url, raise_server_exceptions=False) as client:
        yield client


def add_user(client: TestClient, workspace: str, email: str, role: str, password: str = PASSWORD,
             name: str | None = None) -> dict[str, Any]:
    user, _ = accounts.create_user(client.app.state.services, workspace=workspace, email=email, password=password,
                                   role=role, display_name=name)
    return user


def login(client: TestClient, email: str, password: str = PASSWORD, **kwargs: Any) -> dict[str, Any]:
    response = client.post("/api/v1/auth/login", json={"email": email, "password": password}, **kwargs)
    assert response.status_code == 200, response.text
    return response.json()


def bearer(tokens: dict[str, Any] | str) -> dict[str, str]:
    token = tokens if isinstance(tokens, str) else tokens["access_token"]
    return {"Authorization": f"Bearer {token}"}


def error_code(response: Any) -> str:
    return response.json()["error"]["code"]


def audit_rows(client: TestClient, action: str) -> list[dict[str, Any]]:
    return client.app.state.services.db.query("SELECT * FROM audit_logs WHERE action = ? ORDER BY created_at",
                                              (action,))


class Page(HTMLParser):
    """What a person sees on a console page: forms with their fields, alerts, field errors, texts by id."""

    def __init__(self, html: str):
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self.alerts: list[str] = []
        self.field_errors: dict[str, str] = {}
        self.texts: dict[str, str] = {}
        self.scripts: list[dict[str, str | None]] = []
        self.inline_styles = 0
        self._capture: list[tuple[str, str, list[str]]] = []  # (kind, key, chunks)
        self._depth: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if "style" in a:
            self.inline_styles += 1
        if tag == "script":
            self.scripts.append(a)
        if tag == "style":
            self.inline_styles += 1
        if tag == "form":
            self.forms.append({"id": a.get("id"), "action": a.get("action"), "method": (a.get("method") or "get"),
                               "fields": {}})
        if tag in {"input", "textarea", "select"} and self.forms and a.get("name"):
            self.forms[-1]["fields"][a["name"]] = a.get("value") or ""
        classes = (a.get("class") or "").split()
        if "alert" in classes:
            self._capture.append(("alert", "", []))
        elif "field-error" in classes:
            self._capture.append(("field", (a.get("id") or "e-")[2:], []))
        elif a.get("id"):
            self._capture.append(("id", a["id"], []))
        else:
            return
        self._depth.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if self._depth and self._depth[-1] == tag:
            self._depth.pop()
            kind, key, chunks = self._capture.pop()
            text = " ".join("".join(chunks).split())
            if kind == "alert":
                self.alerts.append(text)
            elif kind == "field":
                self.field_errors[key] = text
            else:
                self.texts[key] = text
            for _, _, outer in self._capture:
                outer.append(" " + text + " ")

    def handle_data(self, data: str) -> None:
        if self._capture:
            self._capture[-1][2].append(data)

    def form(self, form_id: str) -> dict[str, Any]:
        for form in self.forms:
            if form["id"] == form_id:
                return form
        raise AssertionError(f"no form #{form_id} on the page; forms: {[f['id'] for f in self.forms]}")


class Browser:
    """One signed-in console browser: its session cookie and the CSRF token its pages carry."""

    def __init__(self, client: TestClient, user: dict[str, Any]):
        self.client = client
        self.user = user
        self.cookies = {"cs_session": auth.login(client.app.state.services, user["email"], PASSWORD, Origin(),
                                                 kind="console").token}

    def get(self, path: str) -> Any:
        self.client.cookies.clear()
        return self.client.get(path, cookies=self.cookies, follow_redirects=False)

    def page(self, path: str) -> Page:
        response = self.get(path)
        assert response.status_code == 200, (path, response.status_code, response.text[:500])
        return Page(response.text)

    def csrf(self) -> str:
        page = self.page("/profile")
        return next(f["fields"]["csrf_token"] for f in page.forms if "csrf_token" in f["fields"])

    def post(self, path: str, data: dict[str, Any] | None = None, files: Any = None) -> Any:
        token = self.csrf()
        self.client.cookies.clear()
        return self.client.post(path, data={"csrf_token": token, **(data or {})}, files=files, cookies=self.cookies,
                                follow_redirects=False)
