"""HTTP conventions every later route follows: health, readiness, error shape, status codes, headers, OpenAPI."""

from __future__ import annotations

import time
import uuid
from html.parser import HTMLParser
from typing import Any

import msgspec
from litestar import Request, delete, get, post
from litestar.testing import TestClient

from chatsupport.app import create_app
from chatsupport.config import Settings, load_settings
from chatsupport.errors import ERRORS, AppError
from chatsupport.retrieval.embedder import Embedder
from chatsupport.web.client import client_ip, is_https
from conftest import make_env


# --- a sample resource built the way real /api/v1 resources are -------------------------------------------------
class NoteIn(msgspec.Struct):
    title: str
    body: str = ""


class NoteOut(msgspec.Struct):
    id: str
    title: str
    body: str


def _db(request: Request[Any, Any, Any]):  # type: ignore[no-untyped-def]
    return request.app.state.services.db


def _parse_id(raw: str) -> str:
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise AppError("not_found") from None


async def _load(request: Request[Any, Any, Any], note_id: str) -> NoteOut:
    row = await _db(request).aquery_one("SELECT value FROM instance_state WHERE key = ?", ("note:" + _parse_id(note_id),))
    if row is None:
        raise AppError("not_found", "No note with this id.")
    return msgspec.json.decode(row["value"], type=NoteOut)


@post("/api/v1/sample-notes", opt={"permission": "public"})
async def create_note(request: Request[Any, Any, Any], data: NoteIn) -> NoteOut:
    if not 1 <= len(data.title) <= 50:
        raise AppError("validation_error", details=[{"field": "title", "message": "1 to 50 characters"}])
    note = NoteOut(id=str(uuid.uuid4()), title=data.title, body=data.body)
    await _db(request).awrite(lambda c: c.execute("INSERT INTO instance_state(key, value) VALUES (?, ?)",
                                                  ("note:" + note.id, msgspec.json.encode(note).decode())))
    return note


@get("/api/v1/sample-notes/{note_id:str}", opt={"permission": "public"})
async def read_note(request: Request[Any, Any, Any], note_id: str) -> NoteOut:
    return await _load(request, note_id)


@post("/api/v1/sample-notes/{note_id:str}/archive", status_code=200, opt={"permission": "public"})
async def archive_note(request: Request[Any, Any, Any], note_id: str) -> NoteOut:
    return await _load(request, note_id)


@delete("/api/v1/sample-notes/{note_id:str}", opt={"permission": "public"})
async def delete_note(request: Request[Any, Any, Any], note_id: str) -> None:
    await _load(request, note_id)
    key = "note:" + _parse_id(note_id)
    await _db(request).awrite(lambda c: c.execute("DELETE FROM instance_state WHERE key = ?", (key,)))


SAMPLE = [create_note, read_note, archive_note, delete_note]


def sample_client(settings: Settings) -> TestClient:
    return TestClient(create_app(settings, extra_routes=SAMPLE), raise_server_exceptions=False)


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details", "request_id"}
    assert body["error"]["code"] == code
    assert body["error"]["code"] in ERRORS
    assert body["error"]["message"]
    assert body["error"]["request_id"] == response.headers["x-request-id"]
    return body["error"]


# --- tests ---------------------------------------------------------------------------------------------------
def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_503_until_the_embedder_has_loaded(client: TestClient) -> None:
    services = client.app.state.services
    services.embedder = Embedder()  # a fresh, unloaded embedder: the state a just-started server is in
    first = client.get("/readyz")
    assert first.status_code == 503
    body = first.json()
    assert body["status"] == "not_ready"
    assert body["checks"]["embedder"] == {"ok": False, "state": "not_loaded", "error": None}
    assert body["checks"]["database"]["ok"] and body["checks"]["extensions"]["ok"]
    assert body["checks"]["migrations"] == {"ok": True, "pending": []}

    services.embedder.start_loading()
    deadline = time.monotonic() + 120
    while (response := client.get("/readyz")).status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.25)
    assert response.status_code == 200
    assert response.json()["status"] == "ready"
    assert set(response.json()["checks"]) == set(body["checks"])
    assert len(services.embedder.encode(["hello"])[0]) == 384


def test_status_codes_and_error_shape(settings: Settings) -> None:
    with sample_client(settings) as client:
        created = client.post("/api/v1/sample-notes", json={"title": "Hi", "body": "x'); DROP TABLE users;--"})
        assert created.status_code == 201
        note = created.json()
        assert client.get(f"/api/v1/sample-notes/{note['id']}").json()["body"] == "x'); DROP TABLE users;--"
        assert client.post(f"/api/v1/sample-notes/{note['id']}/archive").status_code == 200
        deleted = client.delete(f"/api/v1/sample-notes/{note['id']}")
        assert deleted.status_code == 204 and deleted.content == b""

        assert_error(client.get(f"/api/v1/sample-notes/{note['id']}"), 404, "not_found")
        assert_error(client.get("/api/v1/sample-notes/not-a-uuid"), 404, "not_found")
        assert_error(client.get("/api/v1/sample-notes/1' OR '1'='1"), 404, "not_found")
        assert_error(client.get("/api/v1/nothing-here"), 404, "not_found")
        assert_error(client.put("/api/v1/sample-notes"), 405, "method_not_allowed")

        bad_json = client.post("/api/v1/sample-notes", content=b'{"title": ', headers={"content-type": "application/json"})
        assert_error(bad_json, 400, "malformed_json")
        wrong_type = assert_error(client.post("/api/v1/sample-notes", json={"title": 5}), 422, "validation_error")
        assert wrong_type["details"][0]["field"] == "title"
        missing = assert_error(client.post("/api/v1/sample-notes", json={}), 422, "validation_error")
        assert missing["details"][0]["field"] == "title"
        domain_rule = assert_error(client.post("/api/v1/sample-notes", json={"title": "x" * 51}), 422,
                                   "validation_error")
        assert domain_rule["details"] == [{"field": "title", "message": "1 to 50 characters"}]
        assert_error(client.post("/api/v1/sample-notes", json={"title": "a", "body": "x" * 2_000_000}), 413,
                     "too_large")
        count = client.app.state.services.db.query_one(
            "SELECT count(*) AS n FROM instance_state WHERE key LIKE 'note:%'")["n"]
        assert count == 0  # nothing bad got in


def test_request_id_is_echoed_when_sane(client: TestClient) -> None:
    assert client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"] == "abc-123"
    generated = client.get("/healthz", headers={"X-Request-ID": "<script>"}).headers["x-request-id"]
    assert generated != "<script>" and len(generated) == 32


def test_security_headers_on_every_response(client: TestClient) -> None:
    for path in ("/", "/healthz", "/api/v1/missing", "/static/console.css"):
        headers = client.get(path).headers
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert headers["strict-transport-security"].startswith("max-age=31536000")
        assert headers["referrer-policy"] == "strict-origin-when-cross-origin"
        assert headers["permissions-policy"] == "geolocation=(), microphone=(), camera=()"
        assert headers["x-xss-protection"] == "1; mode=block"
        csp = headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp, path


def test_framable_pages_use_frame_ancestors_instead_of_deny(settings: Settings) -> None:
    @get("/framed-sample", opt={"permission": "public", "frame_ancestors": "https://shop.example"},
         sync_to_thread=False)
    def framed() -> str:
        return "ok"

    with TestClient(create_app(settings, extra_routes=[framed])) as client:
        headers = client.get("/framed-sample").headers
        assert "x-frame-options" not in headers
        assert "frame-ancestors https://shop.example" in headers["content-security-policy"]


def test_every_route_declares_a_permission(client: TestClient) -> None:
    undeclared = [
        (route.path, sorted(handler.http_methods) if hasattr(handler, "http_methods") else "ws")
        for route in client.app.routes
        for handler in getattr(route, "route_handlers", None) or [route.route_handler]  # type: ignore[attr-defined]
        if "permission" not in (handler.opt or {}) and getattr(handler, "http_methods", None) != {"OPTIONS"}
    ]
    assert undeclared == []


def test_openapi_is_typed_and_the_api_browser_is_local(settings: Settings) -> None:
    with sample_client(settings) as client:
        spec = client.get("/schema/openapi.json").json()
        operation = spec["paths"]["/api/v1/sample-notes"]["post"]
        assert "requestBody" in operation and "201" in operation["responses"]
        assert "NoteIn" in str(spec["components"]["schemas"]) or "NoteIn" in str(operation)

        page = client.get("/api/docs")
        assert page.status_code == 200
        urls = AssetCollector.collect(page.text)
        assert urls, "the docs page loads its scripts and styles"
        for url in urls:
            assert url.startswith("/static/"), f"{url} is not served locally"
            assert client.get(url).status_code == 200


class AssetCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "script" and found.get("src"):
            self.urls.append(found["src"] or "")
        if tag == "link" and found.get("href"):
            self.urls.append(found["href"] or "")

    @classmethod
    def collect(cls, html: str) -> list[str]:
        parser = cls()
        parser.feed(html)
        return parser.urls


def _scope(peer: str, headers: dict[str, str], scheme: str = "http") -> dict[str, Any]:
    return {"type": "http", "scheme": scheme, "client": (peer, 5000),
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}


def test_forwarded_headers_are_believed_only_from_trusted_proxies() -> None:
    proxies = load_settings(env={"CHATSUPPORT_TRUSTED_PROXIES": "10.0.0.0/8"}).TRUSTED_PROXIES
    spoofed = {"X-Forwarded-For": "6.6.6.6", "X-Forwarded-Proto": "https"}
    assert client_ip(_scope("203.0.113.9", spoofed), proxies) == "203.0.113.9"
    assert is_https(_scope("203.0.113.9", spoofed), proxies) is False
    chain = {"X-Forwarded-For": "6.6.6.6, 198.51.100.7, 10.0.0.5", "X-Forwarded-Proto": "https"}
    assert client_ip(_scope("10.0.0.2", chain), proxies) == "198.51.100.7"
    assert is_https(_scope("10.0.0.2", chain), proxies) is True
    assert client_ip(_scope("10.0.0.2", {}), proxies) == "10.0.0.2"
    assert client_ip(_scope("10.0.0.2", chain), ()) == "10.0.0.2"
    assert is_https(_scope("127.0.0.1", {}, scheme="https"), ()) is True


def test_start_page_renders(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert "ChatSupport" in page.text
    assert page.headers["content-type"].startswith("text/html")


def test_browsers_get_an_error_page_and_api_clients_get_json(client: TestClient) -> None:
    page = client.get("/no-such-page", headers={"Accept": "text/html,application/xhtml+xml"})
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "Page not found" in page.text and page.headers["x-request-id"] in page.text
    api = client.get("/api/v1/no-such-thing", headers={"Accept": "text/html"})
    assert api.status_code == 404 and api.json()["error"]["code"] == "not_found"
