"""Security review — SSRF on every feature that takes a URL (the map of the whole review is in
tests/test_security_review.py).

What the guard itself does (literal encodings, IPv6 forms, one lookup per fetch, redirects re-checked) is proved in
tests/test_outbound_guard.py; the crawler's and the LLM base URL's refusals at save time in tests/test_crawler.py
and tests/test_llm_cloud.py. Here each URL-taking feature is driven through its real API:

- webhook and Slack URLs naming private, loopback, link-local or metadata addresses are refused when saved;
- DNS rebinding: a name that answers a public address when the URL is saved and 127.0.0.1 when it is used is
  refused at use time — webhook delivery, Slack test post, crawl, LLM provider test — and nothing ever connects;
- redirects to private addresses: the crawler and the LLM client refuse to follow them; hooks do not follow any.

Names resolve through ``socket.getaddrinfo`` replaced for the test (the system's resolver, not our code); a
listener on 127.0.0.1 counts every connection that reaches it.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest
from litestar.testing import TestClient

from accounts_support import account_settings, add_user, bearer, error_code, login, open_client
from chatsupport.domain import webhooks
from chatsupport.retrieval.embedder import DEFAULT_CACHE
from chatsupport.store import webhooks as webhook_store

PRIVATE = ["http://127.0.0.1:8080/hook", "http://localhost/hook", "http://2130706433/", "http://[::1]/hook",
           "http://10.0.0.5/hook", "http://192.168.1.1/", "http://169.254.169.254/latest/meta-data/",
           "http://[fd00:ec2::254]/", "http://0.0.0.0/"]
PUBLIC_IP = "93.184.216.34"


class Rebinding:
    """``rebind.test`` answers a public address while the URL is saved, then 127.0.0.1 once ``flip()`` is called
    (what an attacker's DNS with a short TTL does). Nothing connects while the answer is public: saving a URL
    only vets it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.answer = PUBLIC_IP
        self.lookups: list[str] = []
        real = socket.getaddrinfo

        def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            if host != "rebind.test":
                return real(host, port, *args, **kwargs)
            self.lookups.append(self.answer)
            assert self.answer != PUBLIC_IP or not self.flipped, "looked up after the flip"
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (self.answer, int(port or 80)))]

        self.flipped = False
        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)

    def flip(self) -> None:
        self.answer, self.flipped = "127.0.0.1", True

    @property
    def used_after_flip(self) -> bool:
        return "127.0.0.1" in self.lookups


class Listener:
    """A TCP port on 127.0.0.1 that counts connections (and answers nothing useful)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            conn.close()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    peer = Listener()
    yield peer
    peer.close()


class Owner:
    def __init__(self, client: TestClient):
        self.client = client
        add_user(client, "Guarded", "owner@guarded.example", "owner")
        self.headers = bearer(login(client, "owner@guarded.example"))
        self.bot = client.post("/api/v1/chatbots", json={"name": "Guarded Bot"}, headers=self.headers).json()

    @property
    def services(self) -> Any:
        return self.client.app.state.services

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self.client.post(path, json=body, headers=self.headers)

    def put(self, path: str, body: dict[str, Any]) -> Any:
        return self.client.put(path, json=body, headers=self.headers)


@pytest.fixture
def owner(data_dir: Path) -> Iterator[Owner]:
    settings = account_settings(data_dir, RUN_WORKER="true", MODEL_CACHE_DIR=str(DEFAULT_CACHE))
    with open_client(settings) as client:
        yield Owner(client)


@pytest.fixture
def allowlisted(data_dir: Path) -> Iterator[Owner]:
    settings = account_settings(data_dir, RUN_WORKER="true", MODEL_CACHE_DIR=str(DEFAULT_CACHE),
                                OUTBOUND_ALLOWLIST="127.0.0.1")
    with open_client(settings) as client:
        yield Owner(client)


@pytest.mark.parametrize("url", PRIVATE)
def test_hook_urls_naming_private_addresses_are_refused_when_saved(owner: Owner, url: str) -> None:
    webhook = owner.post("/api/v1/webhooks", {"url": url, "events": ["conversation.created"]})
    assert webhook.status_code == 422 and error_code(webhook) == "url_not_allowed", webhook.text
    slack = owner.put("/api/v1/integrations/slack", {"webhook_url": url})
    assert slack.status_code == 422 and error_code(slack) == "url_not_allowed", slack.text
    assert owner.client.get("/api/v1/webhooks", headers=owner.headers).json()["data"] == []


def test_dns_rebinding_is_refused_when_a_webhook_is_delivered(owner: Owner, listener: Listener,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    dns = Rebinding(monkeypatch)
    created = owner.post("/api/v1/webhooks", {"url": f"http://rebind.test:{listener.port}/hook",
                                               "events": ["conversation.created"]})
    assert created.status_code == 201, created.text  # the name looked public when it was saved
    services, delivery_id = owner.services, str(uuid.uuid4())
    workspace_id = services.db.query_one("SELECT workspace_id FROM webhooks WHERE id = ?",
                                         (created.json()["id"],))["workspace_id"]
    services.db.write(lambda conn: webhook_store.add_delivery(
        conn, delivery_id=delivery_id, webhook_id=created.json()["id"], workspace_id=workspace_id,
        event="conversation.created", payload=json.dumps({"event": "conversation.created"}), customer_id=None,
        created_at="2026-01-01T00:00:00Z"))
    dns.flip()
    attempt = webhooks.attempt_delivery(services.db, services.settings, services.secret_key, delivery_id)
    assert attempt is not None and not attempt.succeeded
    row = services.db.query_one("SELECT * FROM webhook_delivery_attempts WHERE delivery_id = ?", (delivery_id,))
    assert row["response_code"] is None and "127.0.0.1" in row["error"]
    assert listener.connections == 0 and dns.used_after_flip


def test_dns_rebinding_is_refused_when_slack_is_posted_to(owner: Owner, listener: Listener,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    dns = Rebinding(monkeypatch)
    saved = owner.put("/api/v1/integrations/slack", {"webhook_url": f"http://rebind.test:{listener.port}/services/x"})
    assert saved.status_code == 200, saved.text
    dns.flip()
    sent = owner.post("/api/v1/integrations/slack/test", {})
    assert sent.status_code == 502 and error_code(sent) == "integration_failed", sent.text
    assert "127.0.0.1" in sent.json()["error"]["message"]
    assert listener.connections == 0 and dns.used_after_flip


def test_dns_rebinding_is_refused_when_a_site_is_crawled(owner: Owner, listener: Listener,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    dns = Rebinding(monkeypatch)
    dns.flip()  # the crawl job may start at once: the save-time check only looks at the name
    created = owner.post("/api/v1/knowledge-base/urls", {"chatbot_id": owner.bot["id"],
                                                          "url": f"http://rebind.test:{listener.port}/docs"})
    assert created.status_code == 201, created.text
    source = _settled(owner, created.json()["id"])
    assert source["status"] == "failed" and source["error_code"] == "url_not_allowed", source
    assert listener.connections == 0 and dns.used_after_flip


def test_dns_rebinding_is_refused_for_an_llm_base_url(owner: Owner, listener: Listener,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    dns = Rebinding(monkeypatch)
    base = f"http://rebind.test:{listener.port}/v1"
    saved = owner.put("/api/v1/llm-providers", {"providers": [{"kind": "openai", "base_url": base,
                                                               "model": "gpt-test", "api_key": "sk-test-1"}]})
    assert saved.status_code == 200, saved.text
    dns.flip()
    tried = owner.post("/api/v1/llm-providers/test", {"kind": "openai"})
    assert tried.status_code == 200 and tried.json()["ok"] is False, tried.text
    assert tried.json()["error"] == "url_not_allowed"
    assert listener.connections == 0 and dns.used_after_flip


class Redirector:
    """A server on 127.0.0.1 answering every GET and POST with a 302 to the cloud metadata address."""

    def __init__(self) -> None:
        paths = self.paths = []

        class Handler(BaseHTTPRequestHandler):
            def _redirect(self) -> None:
                paths.append(self.path)
                self.send_response(302)
                self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = _redirect

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_redirects_to_private_addresses_are_not_followed(allowlisted: Owner) -> None:
    site = Redirector()
    try:
        crawl = allowlisted.post("/api/v1/knowledge-base/urls", {"chatbot_id": allowlisted.bot["id"],
                                                                  "url": f"{site.url}/docs"})
        assert crawl.status_code == 201, crawl.text
        source = _settled(allowlisted, crawl.json()["id"])
        assert source["status"] == "failed" and source["error_code"] == "url_not_allowed", source
        llm = allowlisted.post("/api/v1/llm-providers/test", {"kind": "openai", "base_url": f"{site.url}/v1",
                                                              "model": "m", "api_key": "sk-test-2"})
        assert llm.status_code == 200 and llm.json()["ok"] is False, llm.text
        assert "169.254.169.254" not in llm.json()["message"], llm.text  # the 302 was not followed
        assert site.paths[-1] == "/v1/chat/completions"
        slack = allowlisted.put("/api/v1/integrations/slack", {"webhook_url": f"{site.url}/hook"})
        assert slack.status_code == 200
        posted = allowlisted.post("/api/v1/integrations/slack/test", {})
        assert posted.status_code == 502 and "redirect" in posted.json()["error"]["message"]  # hooks never follow
    finally:
        site.close()
    assert all(not path.startswith("/latest") for path in site.paths)


def _settled(owner: Owner, source_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        source = owner.client.get(f"/api/v1/knowledge-base/urls/{source_id}", headers=owner.headers).json()
        if source["status"] in ("completed", "failed"):
            return dict(source)
        time.sleep(0.1)
    raise TimeoutError(source)
