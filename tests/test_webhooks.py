"""Outgoing webhooks end to end: events from the widget and the agent API reach a receiver on 127.0.0.1 (allowed
through the outbound allow-list) signed with the webhook's secret, failures are retried with the log showing every
try, and the API is scoped to owners and admins of one workspace."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from litestar.testing import TestClient

from accounts_support import add_user, bearer, error_code, login, open_client
from chatsupport.tasks.webhooks import trim_delivery_log
from knowledge_support import upload
from widget_support import Site, widget_settings

EVENTS = ["conversation.created", "conversation.escalated", "conversation.resolved", "message.created",
          "csat.submitted", "document.processed"]


class Receiver:
    """An HTTP server on 127.0.0.1 that records every request and answers with the scripted statuses (then 200)."""

    def __init__(self, statuses: list[int] | None = None):
        self.requests: list[dict[str, Any]] = []
        self.statuses = list(statuses or [])
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append({"path": self.path, "headers": dict(self.headers), "raw": raw})
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def wait_for(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    settings = widget_settings(tmp_path / "data", OUTBOUND_ALLOWLIST="127.0.0.1", RUN_WORKER="true",
                               WEBHOOK_RETRY_BASE="0.3")
    with open_client(settings) as client:
        yield Site(client)


def widget(site: Site, token: str, event: str, data: dict[str, Any]) -> list[dict[str, Any]]:
    response = site.client.post("/widget/api/messages", headers={"Authorization": f"Bearer {token}"},
                                json={"event": event, "data": data})
    assert response.status_code == 200, response.text
    return response.json()["events"]


def start_chat(site: Site, token: str | None = None) -> tuple[str, str]:
    token = token or site.config()["token"]
    started = widget(site, token, "conversation:start", {"fields": {"name": "Noor", "email": "noor@shop.example"}})
    return token, started[0]["data"]["conversation_id"]


def create_hook(client: TestClient, headers: dict[str, str], url: str, events: list[str]) -> dict[str, Any]:
    response = client.post("/api/v1/webhooks", json={"url": url, "events": events, "description": "CRM"},
                           headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def deliveries(client: TestClient, headers: dict[str, str], hook_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/api/v1/webhooks/{hook_id}/deliveries", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def test_events_arrive_signed_with_the_webhook_secret(site: Site, receiver: Receiver) -> None:
    hook = create_hook(site.client, site.headers, receiver.url + "/hooks", EVENTS)
    assert hook["secret"].startswith("whsec_") and hook["events"] == EVENTS and hook["enabled"] is True

    token, conversation_id = start_chat(site)
    widget(site, token, "conversation:request_human", {"conversation_id": conversation_id})
    reply = site.client.post(f"/api/v1/conversations/{conversation_id}/messages", json={"content": "Hi Noor!"},
                             headers=site.headers)
    assert reply.status_code == 201, reply.text
    resolved = site.client.post(f"/api/v1/conversations/{conversation_id}/resolve", json={}, headers=site.headers)
    assert resolved.status_code == 200, resolved.text
    widget(site, token, "csat:submit", {"conversation_id": conversation_id, "rating": 5, "comment": "Great"})

    wanted = ["conversation.created", "conversation.escalated", "message.created", "conversation.resolved",
              "csat.submitted"]
    wait_for(lambda: {r["headers"]["X-ChatSupport-Event"] for r in receiver.requests} >= set(wanted))
    for request in receiver.requests:
        headers, raw = request["headers"], request["raw"]
        expected = "sha256=" + hmac.new(hook["secret"].encode(), raw, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["X-ChatSupport-Signature"], expected)
        body = json.loads(raw)
        assert set(body) == {"event", "delivery_id", "created_at", "workspace_id", "data"}
        assert body["event"] == headers["X-ChatSupport-Event"]
        assert body["delivery_id"] == headers["X-ChatSupport-Delivery"]
        assert body["workspace_id"] == site.owner["workspace_id"]
        assert headers["Content-Type"] == "application/json" and request["path"] == "/hooks"
    by_event = {json.loads(r["raw"])["event"]: json.loads(r["raw"])["data"] for r in receiver.requests}
    assert by_event["conversation.created"]["conversation"]["customer"]["email"] == "noor@shop.example"
    assert by_event["conversation.escalated"]["conversation"]["escalation_reason"] == "user_request"
    messages = sorted((json.loads(r["raw"])["data"]["message"] for r in receiver.requests
                       if r["headers"]["X-ChatSupport-Event"] == "message.created"), key=lambda m: m["created_at"])
    assert [m["sender_type"] for m in messages] == ["bot", "agent"], "the hand-over notice, then the reply"
    assert messages[1]["content"] == "Hi Noor!" and messages[1]["conversation_id"] == conversation_id
    assert by_event["conversation.resolved"]["conversation"]["status"] == "resolved"
    assert by_event["csat.submitted"]["conversation"]["satisfaction"] == {"rating": 5, "comment": "Great"}

    log = wait_for(lambda: [d for d in deliveries(site.client, site.headers, hook["id"]) if d["status"] == "succeeded"]
                   if len(receiver.requests) >= 6 else None)
    assert all(d["response_code"] == 200 and d["attempt"] == 1 for d in log)
    # each delivery row names the customer, so erasing a customer can reach the log
    owners = site.db.query("SELECT DISTINCT customer_id FROM webhook_deliveries")
    customer = site.db.query_one("SELECT customer_id FROM conversations WHERE id = ?", (conversation_id,))
    assert [row["customer_id"] for row in owners] == [customer["customer_id"]]


def test_a_failing_receiver_is_retried_and_every_try_is_logged(site: Site, receiver: Receiver) -> None:
    receiver.statuses = [500]
    hook = create_hook(site.client, site.headers, receiver.url, ["conversation.created"])
    start_chat(site)
    wait_for(lambda: len(receiver.requests) >= 2)
    log = wait_for(lambda: (rows := deliveries(site.client, site.headers, hook["id"]))
                   and rows[0]["status"] == "succeeded" and rows)
    assert [(d["attempt"], d["status"], d["response_code"]) for d in log] == [(2, "succeeded", 200),
                                                                             (1, "failed", 500)]
    assert log[1]["error"] == "HTTP 500" and all(d["duration_ms"] >= 0 for d in log)
    first, second = receiver.requests
    assert first["raw"] == second["raw"], "a retry sends the very same body"
    assert first["headers"]["X-ChatSupport-Delivery"] == second["headers"]["X-ChatSupport-Delivery"]
    listed = site.client.get("/api/v1/webhooks", headers=site.headers).json()
    assert listed["data"][0]["last_delivery_status"] == "succeeded" and "secret" not in listed["data"][0]

    delivery_id = log[0]["delivery_id"]
    again = site.client.post(f"/api/v1/webhooks/{hook['id']}/deliveries/{delivery_id}/redeliver",
                             headers=site.headers)
    assert again.status_code == 202, again.text
    wait_for(lambda: len(receiver.requests) == 3)
    assert receiver.requests[2]["raw"] == first["raw"]
    assert wait_for(lambda: deliveries(site.client, site.headers, hook["id"])[0]["attempt"] == 3)

    # after 30 days the body is gone and the delivery cannot be sent again
    site.db.execute_write("UPDATE webhook_deliveries SET created_at = '2000-01-01T00:00:00.000Z'")
    assert trim_delivery_log.call_local() == (1, 1)
    assert site.db.query("SELECT * FROM webhook_deliveries") == []


def test_a_receiver_that_never_answers_well_gives_up(tmp_path: Path, receiver: Receiver) -> None:
    settings = widget_settings(tmp_path / "data", OUTBOUND_ALLOWLIST="127.0.0.1", RUN_WORKER="true",
                               WEBHOOK_RETRY_BASE="0.005")  # 5 retries in under 5 s
    receiver.statuses = [503] * 10
    with open_client(settings) as client:
        site = Site(client)
        hook = create_hook(client, site.headers, receiver.url, ["conversation.created"])
        start_chat(site)
        log = wait_for(lambda: (rows := deliveries(client, site.headers, hook["id"]))
                       and rows[0]["delivery_status"] == "failed" and rows, timeout=40)
        assert [d["attempt"] for d in log] == [6, 5, 4, 3, 2, 1] and len(receiver.requests) == 6
        assert {d["response_code"] for d in log} == {503}
        redeliver = client.post(f"/api/v1/webhooks/{hook['id']}/deliveries/{log[0]['delivery_id']}/redeliver",
                                headers=site.headers)
        assert redeliver.status_code == 202
        wait_for(lambda: len(receiver.requests) == 7)


def test_disabled_and_unsubscribed_webhooks_hear_nothing(site: Site, receiver: Receiver) -> None:
    off = create_hook(site.client, site.headers, receiver.url + "/off", ["conversation.created"])
    patched = site.client.patch(f"/api/v1/webhooks/{off['id']}", json={"enabled": False}, headers=site.headers)
    assert patched.status_code == 200 and patched.json()["enabled"] is False
    create_hook(site.client, site.headers, receiver.url + "/other", ["document.processed"])
    on = create_hook(site.client, site.headers, receiver.url + "/on", ["conversation.created",
                                                                      "conversation.resolved"])
    _, conversation_id = start_chat(site)
    resolve = f"/api/v1/conversations/{conversation_id}/resolve"
    assert site.client.post(resolve, json={}, headers=site.headers).status_code == 200
    # an action that fails (resolving twice) was rolled back and sends nothing
    assert site.client.post(resolve, json={}, headers=site.headers).status_code == 409
    wait_for(lambda: len(receiver.requests) >= 2)
    time.sleep(0.5)
    # (two job threads: the two deliveries may arrive in either order)
    assert sorted((r["path"], r["headers"]["X-ChatSupport-Event"]) for r in receiver.requests) == [
        ("/on", "conversation.created"), ("/on", "conversation.resolved")]
    assert sorted(d["event"] for d in deliveries(site.client, site.headers, on["id"])) == [
        "conversation.created", "conversation.resolved"]
    assert site.db.query_one("SELECT count(*) AS n FROM webhook_deliveries")["n"] == 2


def test_urls_are_checked_when_saved(tmp_path: Path) -> None:
    with open_client(widget_settings(tmp_path / "data")) as client:
        site = Site(client)
        for url in ("http://127.0.0.1:8080/hook", "http://10.0.0.7/hook", "http://[::1]/x", "http://localhost/x",
                    "http://169.254.169.254/latest"):
            response = client.post("/api/v1/webhooks", json={"url": url, "events": ["message.created"]},
                                   headers=site.headers)
            assert response.status_code == 422 and error_code(response) == "url_not_allowed", url
            assert response.json()["error"]["details"][0]["field"] == "url"
        for body in ({"url": "ftp://files.example/x", "events": ["message.created"]},
                     {"url": "https://hooks.example/x", "events": []},
                     {"url": "https://hooks.example/x", "events": ["user.deleted"]}):
            response = client.post("/api/v1/webhooks", json=body, headers=site.headers)
            assert response.status_code in (400, 422) and error_code(response) in ("validation_error", "bad_request")
        hook = create_hook(client, site.headers, "https://hooks.example/x", ["message.created"])
        moved = client.patch(f"/api/v1/webhooks/{hook['id']}", json={"url": "http://192.168.1.5/"},
                             headers=site.headers)
        assert moved.status_code == 422 and error_code(moved) == "url_not_allowed"
        assert client.get(f"/api/v1/webhooks/{hook['id']}", headers=site.headers).json()["url"] == \
            "https://hooks.example/x"


def test_only_owners_and_admins_of_the_workspace_manage_webhooks(tmp_path: Path) -> None:
    with open_client(widget_settings(tmp_path / "data")) as client:
        site = Site(client)
        hook = create_hook(client, site.headers, "https://hooks.example/a", ["message.created"])
        item = f"/api/v1/webhooks/{hook['id']}"
        admin = bearer(login(client, add_user(client, "Acme", "admin@acme.example", "admin")["email"]))
        assert client.get(item, headers=admin).status_code == 200
        secret = client.get(f"{item}/secret", headers=admin)
        assert secret.status_code == 200 and secret.json() == {"secret": hook["secret"]}
        revealed = site.db.query("SELECT * FROM audit_logs WHERE action = 'webhook.secret_revealed'")
        assert len(revealed) == 1 and hook["secret"] not in json.dumps(revealed)
        for role in ("agent", "viewer"):
            headers = bearer(login(client, add_user(client, "Acme", f"{role}@acme.example", role)["email"]))
            assert client.get("/api/v1/webhooks", headers=headers).status_code == 403
            assert client.post("/api/v1/webhooks", json={"url": "https://x.example", "events": ["message.created"]},
                               headers=headers).status_code == 403
            assert client.get(f"{item}/secret", headers=headers).status_code == 403

        other = bearer(login(client, add_user(client, "Globex", "owner@globex.example", "owner")["email"]))
        assert client.get("/api/v1/webhooks", headers=other).json()["data"] == []
        for method, path, body in (("GET", item, None), ("PATCH", item, {"enabled": "not a bool"}),
                                   ("DELETE", item, None), ("GET", f"{item}/secret", None),
                                   ("GET", f"{item}/deliveries", None),
                                   ("POST", f"{item}/deliveries/nope/redeliver", None)):
            response = client.request(method, path, json=body, headers=other)
            assert response.status_code == 404 and error_code(response) == "not_found", (method, path)
        assert client.get(item, headers=site.headers).json()["enabled"] is True

        assert client.delete(item, headers=admin).status_code == 204
        assert client.get(item, headers=site.headers).status_code == 404
        actions = [r["action"] for r in site.db.query("SELECT action FROM audit_logs WHERE action LIKE 'webhook.%'"
                                                      " ORDER BY created_at")]
        assert actions == ["webhook.created", "webhook.secret_revealed", "webhook.deleted"]


def test_processed_documents_are_announced(tmp_path: Path, receiver: Receiver) -> None:
    settings = widget_settings(tmp_path / "data", OUTBOUND_ALLOWLIST="127.0.0.1", RUN_WORKER="true")
    with open_client(settings) as client:
        site = Site(client)
        hook = create_hook(client, site.headers, receiver.url, ["document.processed"])
        good = upload(client, site.headers, site.bot["id"], "returns.md",
                      b"# Returns\n\nYou can return any kettle within thirty days for a full refund.\n")
        empty = upload(client, site.headers, site.bot["id"], "blank.txt", b"   \n\n   ")
        assert good.status_code == 201 and empty.status_code == 201, (good.text, empty.text)
        wait_for(lambda: len(receiver.requests) >= 2, timeout=60)
        documents = {d["id"]: d for d in (json.loads(r["raw"])["data"]["document"] for r in receiver.requests)}
        assert documents[good.json()["id"]]["status"] == "completed"
        assert documents[good.json()["id"]]["chunk_count"] >= 1
        assert (documents[empty.json()["id"]]["status"], documents[empty.json()["id"]]["error_code"]) == \
            ("failed", "no_text")
        assert {d["event"] for d in deliveries(client, site.headers, hook["id"])} == {"document.processed"}
