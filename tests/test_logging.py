"""Request ids and JSON logs: one id per request, echoed in X-Request-ID, every error body and every log line
written while the request ran (access log included), also from handlers that run in a worker thread."""

from __future__ import annotations

import io
import json
import logging
import re
from typing import Any, Iterator

import httpx
import pytest
from litestar import get
from litestar.testing import TestClient

from accounts_support import FAST_HASHING, account_settings
from chatsupport.app import create_app
from chatsupport.logs import configure_logging
from chatsupport.web.permissions import public
from conftest import LiveServer

sample_log = logging.getLogger("chatsupport.tests.sample")


@get("/_sample/log", sync_to_thread=True, **public())
def logs_in_a_thread() -> dict[str, str]:
    sample_log.warning("looked up %s", "the order", extra={"order_ref": "A-17"})
    return {"ok": "yes"}


@get("/_sample/crash", sync_to_thread=False, **public())
def crashes() -> dict[str, str]:
    raise RuntimeError("the sample handler broke")


@pytest.fixture
def json_client(tmp_path: Any) -> Iterator[tuple[TestClient, io.StringIO]]:
    settings = account_settings(tmp_path / "data", LOG_FORMAT="json", LOG_LEVEL="INFO")
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    configure_logging(settings)
    stream = io.StringIO()
    root.handlers[0].setStream(stream)  # type: ignore[attr-defined]  # the real handler, read back here
    try:
        app = create_app(settings, extra_routes=[logs_in_a_thread, crashes], load_embedder=False)
        with TestClient(app, raise_server_exceptions=False) as client:
            yield client, stream
    finally:
        root.handlers[:], root.level = saved_handlers, saved_level


def log_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    """Everything logged since the last call; every line must be one JSON object."""
    text = stream.getvalue()
    stream.seek(0)
    stream.truncate()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_json_lines_carry_the_request_id_and_extras(json_client: tuple[TestClient, Any]) -> None:
    client, stream = json_client
    log_lines(stream)
    response = client.get("/_sample/log", headers={"X-Request-ID": "support-ticket-42"})
    assert response.status_code == 200 and response.headers["x-request-id"] == "support-ticket-42"
    entries = log_lines(stream)
    mine = [e for e in entries if e.get("request_id") == "support-ticket-42"]
    sample = next(e for e in mine if e["logger"] == "chatsupport.tests.sample")
    assert sample["message"] == "looked up the order" and sample["order_ref"] == "A-17"
    assert sample["level"] == "warning" and re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$", sample["time"])
    access = next(e for e in mine if e["logger"] == "chatsupport.access")
    assert access["path"] == "/_sample/log" and access["status"] == 200 and access["route"] == "/_sample/log"
    assert access["method"] == "GET" and access["duration_ms"] >= 0


def test_errors_carry_the_request_id_in_body_header_and_log(json_client: tuple[TestClient, Any]) -> None:
    client, stream = json_client
    log_lines(stream)
    response = client.get("/_sample/crash")
    assert response.status_code == 500
    request_id = response.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    assert response.json()["error"] == {**response.json()["error"], "code": "internal_error",
                                        "request_id": request_id}
    entries = [e for e in log_lines(stream) if e.get("request_id") == request_id]
    crash = next(e for e in entries if e["level"] == "error")
    assert "RuntimeError: the sample handler broke" in crash["exception"]
    assert any(e["logger"] == "chatsupport.access" and e["status"] == 500 for e in entries)


@pytest.mark.parametrize("incoming", ["x" * 65, "bad id with spaces", "<script>", ""])
def test_an_unusable_incoming_id_is_replaced(json_client: tuple[TestClient, Any], incoming: str) -> None:
    client, _ = json_client
    response = client.get("/api/v1/chatbots", headers={"X-Request-ID": incoming})
    assert response.status_code == 401
    request_id = response.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    assert response.json()["error"]["request_id"] == request_id


def test_every_response_has_a_request_id(json_client: tuple[TestClient, Any]) -> None:
    client, _ = json_client
    ids = set()
    for path in ("/healthz", "/no/such/route", "/login", "/static/does-not-exist.css", "/schema/openapi.json"):
        response = client.get(path)
        ids.add(response.headers["x-request-id"])
        if response.status_code >= 400 and response.headers["content-type"].startswith("application/json"):
            assert response.json()["error"]["request_id"] == response.headers["x-request-id"], path
    assert len(ids) == 5
    kept = client.get("/no/such/route", headers={"X-Request-ID": "lb.trace_0-9"})
    assert kept.headers["x-request-id"] == "lb.trace_0-9" and kept.json()["error"]["request_id"] == "lb.trace_0-9"


def test_a_real_server_writes_only_json_lines(tmp_path: Any) -> None:
    server = LiveServer(tmp_path / "data", **FAST_HASHING, LOG_FORMAT="json")
    try:
        server.wait("/readyz", timeout=180)
        response = httpx.get(server.url + "/api/v1/chatbots", headers={"X-Request-ID": "from-the-proxy-7"})
        assert response.status_code == 401 and response.headers["x-request-id"] == "from-the-proxy-7"
    finally:
        assert server.stop() in (0, -15)
    entries = [json.loads(line) for line in server.log.read_text().splitlines() if line.strip()]
    assert any(e["logger"] == "chatsupport" and "starting on" in e["message"] for e in entries)
    access = [e for e in entries if e["logger"] == "chatsupport.access"]
    assert [e["status"] for e in access if e["request_id"] == "from-the-proxy-7"] == [401]
    assert not [e for e in entries if e["logger"] == "uvicorn.access"]  # one access line per request, ours
