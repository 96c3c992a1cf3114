"""GET /metrics: Prometheus text after real traffic (route templates, monotonic buckets, job, ingestion and
retrieval series, backup age, memory) and who may read it (loopback, the metrics token, owner/admin tokens)."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from litestar.testing import TestClient

from accounts_support import account_settings, add_user, bearer, login, open_client
from chatsupport import metrics
from chatsupport.domain.backups import create_backup
from chatsupport.retrieval.embedder import DEFAULT_CACHE
from chatsupport.web.metrics import refresh_backup_gauges
from knowledge_support import upload, wait_settled
from widget_support import Site

METRICS_TOKEN = "metrics-scrape-token-0123456789"
SAMPLE = re.compile(r'^([a-z_]+)(?:\{(.*)\})? (\S+)$')


def peer_switch(client: TestClient) -> dict[str, str]:
    """Requests arrive from ``switch["address"]`` (the TestClient's own peer is the non-IP "testclient")."""
    inner, switch = client.app.asgi_handler, {"address": "testclient"}

    async def from_address(scope: Any, receive: Any, send: Any) -> None:
        scope["client"] = (switch["address"], 40000)
        await inner(scope, receive, send)

    client.app.asgi_handler = from_address
    return switch


class World:
    def __init__(self, client: TestClient):
        self.client = client
        for role in ("owner", "admin", "agent"):
            add_user(client, "Metrics Co", f"{role}@metrics.example", role)
        self.tokens = {role: bearer(login(client, f"{role}@metrics.example")) for role in ("owner", "admin", "agent")}
        self.bot = client.post("/api/v1/chatbots", json={"name": "Metered"}, headers=self.tokens["owner"]).json()

    def scrape(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        response = self.client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
        samples = {}
        for line in response.text.splitlines():
            if line.startswith("#"):
                continue
            match = SAMPLE.match(line)
            assert match, line
            labels = frozenset(re.findall(r'([a-z_]+)="((?:[^"\\]|\\.)*)"', match.group(2) or ""))
            samples[(match.group(1), labels)] = float(match.group(3))
        return samples


def value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    settings = account_settings(tmp_path_factory.mktemp("metrics") / "data", RUN_WORKER="true",
                                MODEL_CACHE_DIR=str(DEFAULT_CACHE), METRICS_TOKEN=METRICS_TOKEN)
    with open_client(settings) as client:
        yield World(client)


def test_requests_are_counted_per_route_template_and_status_class(world: World) -> None:
    owner, bot_id = world.tokens["owner"], world.bot["id"]
    before = world.scrape()
    for _ in range(3):
        assert world.client.get(f"/api/v1/chatbots/{bot_id}", headers=owner).status_code == 200
    assert world.client.get("/api/v1/chatbots/no-such-bot", headers=owner).status_code == 404
    assert world.client.get("/no/such/page/at/all").status_code == 404
    after = world.scrape()
    route = "/api/v1/chatbots/{chatbot_id}"
    assert value(after, "chatsupport_http_requests_total", method="GET", route=route, status="2xx") - \
        value(before, "chatsupport_http_requests_total", method="GET", route=route, status="2xx") == 3
    assert value(after, "chatsupport_http_requests_total", method="GET", route=route, status="4xx") - \
        value(before, "chatsupport_http_requests_total", method="GET", route=route, status="4xx") == 1
    assert value(after, "chatsupport_http_requests_total", method="GET", route="unmatched", status="4xx") >= 1
    assert not [key for key in after if any(bot_id in v or "no-such" in v for _, v in key[1])], "raw ids in labels"
    count = value(after, "chatsupport_http_request_duration_seconds_count", method="GET", route=route)
    assert count - value(before, "chatsupport_http_request_duration_seconds_count", method="GET", route=route) == 4


def test_histogram_buckets_are_cumulative(world: World) -> None:
    world.client.get("/healthz")
    samples = world.scrape()
    buckets = sorted(((float("inf") if dict(labels)["le"] == "+Inf" else float(dict(labels)["le"])), v)
                     for (name, labels), v in samples.items()
                     if name == "chatsupport_http_request_duration_seconds_bucket"
                     and dict(labels)["route"] == "/healthz")
    assert len(buckets) == 12 and buckets[-1][0] == float("inf")
    counts = [v for _, v in buckets]
    assert counts == sorted(counts) and counts[-1] == value(
        samples, "chatsupport_http_request_duration_seconds_count", method="GET", route="/healthz")
    assert value(samples, "chatsupport_http_request_duration_seconds_sum", method="GET", route="/healthz") > 0


def test_ingestion_jobs_retrieval_and_backup_series(world: World) -> None:
    owner, bot_id = world.tokens["owner"], world.bot["id"]
    before = world.scrape()
    text = b"Returns\nParcels may be returned within thirty days of delivery for a full refund.\n" * 20
    good = upload(world.client, owner, bot_id, "returns.txt", text)
    bad = upload(world.client, owner, bot_id, "empty.pdf", b"%PDF-1.4\n%%EOF")
    assert good.status_code == 201 and wait_settled(world.client, owner, good.json()["id"])["status"] == "completed"
    if bad.status_code == 201:
        assert wait_settled(world.client, owner, bad.json()["id"])["status"] == "failed"
    asked = world.client.post("/api/v1/knowledge-base/test", headers=owner,
                              json={"chatbot_id": bot_id, "query": "how long to return a parcel", "top_k": 3})
    assert asked.status_code == 200, asked.text
    create_backup(world.client.app.state.services.settings)
    after = world.scrape()

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("chatsupport_ingest_documents_total", outcome="completed") == 1
    assert grew("chatsupport_ingest_documents_total", outcome="failed") == (1 if bad.status_code == 201 else 0)
    assert grew("chatsupport_ingest_chunks_total") >= 1
    assert grew("chatsupport_jobs_total", task="ingest_document", outcome="completed") >= 1
    assert grew("chatsupport_job_duration_seconds_count", task="ingest_document") >= 1
    assert grew("chatsupport_retrieval_duration_seconds_count", mode="hybrid") >= 1
    assert value(after, "chatsupport_queue_pending_jobs") >= 0
    assert value(after, "chatsupport_backups") >= 1  # ours, and the scheduled one if it ran already
    assert 0 <= value(after, "chatsupport_backup_age_seconds") < 120
    assert value(after, "chatsupport_widget_websockets_open") >= 0


def test_access_rules(world: World, tmp_path: Any) -> None:
    client = world.client
    assert client.get("/metrics").status_code == 401  # TestClient's peer is not loopback
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong-token"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).status_code == 200
    assert client.get("/metrics", headers=world.tokens["owner"]).status_code == 200
    assert client.get("/metrics", headers=world.tokens["admin"]).status_code == 200
    denied = client.get("/metrics", headers=world.tokens["agent"])
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "forbidden"


def test_loopback_needs_no_token_unless_forwarded(world: World) -> None:
    client, handler = world.client, world.client.app.asgi_handler
    peer = peer_switch(client)
    try:
        peer["address"] = "10.1.2.3"
        assert client.get("/metrics").status_code == 401
        peer["address"] = "127.0.0.1"
        response = client.get("/metrics")
        assert response.status_code == 200 and "# TYPE chatsupport_http_requests_total counter" in response.text
        assert client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 401
        peer["address"] = "::1"
        assert client.get("/metrics").status_code == 200
    finally:
        client.app.asgi_handler = handler


def test_memory_gauges(world: World) -> None:
    """Resident memory as the kernel reports it, and the database connections with their page caches."""
    samples = world.scrape()
    statm = Path("/proc/self/statm").read_text().split()  # the TestClient serves in this process
    rss = int(statm[1]) * os.sysconf("SC_PAGE_SIZE")
    assert 0.5 * rss < value(samples, "process_resident_memory_bytes") < 2 * rss
    assert value(samples, "chatsupport_sqlite_connections") >= 2  # the writer and at least this request's reader
    assert value(samples, "chatsupport_sqlite_page_cache_bytes") > 0


def test_backup_age_is_absent_without_an_archive(tmp_path: Any) -> None:
    refresh_backup_gauges(account_settings(tmp_path / "empty"))
    lines = metrics.render().splitlines()
    assert "chatsupport_backups 0" in lines  # no archive: the age is absent, not a made-up 0
    assert not [line for line in lines if line.startswith("chatsupport_backup_age_seconds ")]


def test_widget_sockets_and_answers_are_measured(world: World) -> None:
    """An open socket is counted until it closes; its answer adds retrieval and LLM latency (the extractive
    provider answers when no model is configured)."""
    site = Site(world.client, name="Sockets", behavior_settings={"response_delay": 0})
    site.index()
    before = world.scrape()
    with site.socket(site.config()["token"]) as sock:
        sock.send("ping")
        assert sock.until("pong") == {}  # the server has taken the connection in
        assert value(world.scrape(), "chatsupport_widget_websockets_open") == \
            value(before, "chatsupport_widget_websockets_open") + 1
        sock.send("conversation:start", {})
        conversation_id = sock.until("conversation:started")["conversation_id"]
        sock.send("message:send", {"client_id": "m-1", "conversation_id": conversation_id,
                                   "content": "How long do refunds take?", "attachments": []})
        deadline = time.monotonic() + 60
        while not [m for m in sock.events("message:receive") if m["sender"]["type"] == "bot"]:
            assert time.monotonic() < deadline, [f["event"] for f in sock.seen]
            sock.next(timeout=60)
    after = world.scrape()
    assert value(after, "chatsupport_llm_duration_seconds_count", provider="extractive", outcome="answered") > \
        value(before, "chatsupport_llm_duration_seconds_count", provider="extractive", outcome="answered")
    assert value(after, "chatsupport_retrieval_duration_seconds_count", mode="hybrid") > \
        value(before, "chatsupport_retrieval_duration_seconds_count", mode="hybrid")
    before = value(before, "chatsupport_widget_websockets_open")
    deadline = time.monotonic() + 10
    while value(world.scrape(), "chatsupport_widget_websockets_open") != before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert value(world.scrape(), "chatsupport_widget_websockets_open") == before
