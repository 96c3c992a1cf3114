"""Soak: a mixed workload on one server from a second process on 127.0.0.1, for a long time.

Usage:
  PYTHONPATH=. .venv/bin/python bench/soak.py [--duration 1800] [--visitors 40] [--agents 4]
      [--ingest-every 60] [--quick]

What runs at the same time, for --duration seconds (--quick: 120):
- widget chats: --visitors concurrent visitors, each loading /widget/frame and holding /ws/widget for a
  conversation of 3–6 questions (one every 8–20 s), then leaving; a new visitor takes the place. Records
  send → ack and send → bot answer;
- console users: --agents agents signed in through the login form, each browsing the inbox list, a
  conversation and the dashboard with 1–3 s of think time. Records each page's latency;
- ingestion: a generated Markdown handbook uploaded every --ingest-every seconds. Records upload → completed.

Reports throughput, p95 per kind, errors (target 0) and the server's RSS growth after warm-up (the first 10% of
the run, at least 20 s; target < 10%) with the database's page caches beside it (read from /metrics every
minute), prints a summary and writes docs/bench-results/soak.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import websockets

from quick import add_quick_flag, write_results
from widget_load import CONFIG, ROOT, Server, free_port, pct

OWNER, AGENT, PASSWORD = "owner@soak.example", "agent{}@soak.example", "Soak#Bench#1"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
WORDS = ("refund order shipping parcel invoice warranty account password delivery courier exchange voucher "
         "subscription billing address tracking return policy store support receipt").split()
QUESTIONS = ("How long do refunds take?", "Where is my parcel?", "How do I reset my password?",
             "Can I change my billing address?", "Do you ship abroad?", "How do I track my order?",
             "What is the warranty on a new order?", "Can I exchange a voucher?")


@dataclass
class Record:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)

    def time(self, kind: str, ms: float) -> None:
        self.latencies.setdefault(kind, []).append(ms)

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


def handbook(seed: int) -> bytes:
    rng = random.Random(seed)
    parts = [f"# Handbook {seed}\n"]
    for number in range(30):
        body = " ".join(rng.choice(WORDS) for _ in range(rng.randint(40, 90)))
        parts.append(f"## Section {number}: {rng.choice(WORDS)}\n\n{body.capitalize()}.\n")
    return "\n".join(parts).encode()


def _env(data_dir: Path) -> dict[str, str]:
    return {**os.environ, "CHATSUPPORT_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT)}


class Soak:
    def __init__(self, server: Server, args: argparse.Namespace):
        self.server, self.args, self.record = server, args, Record()
        self.base = server.url
        self.stop = asyncio.Event()
        self.headers: dict[str, str] = {}
        self.bot: dict[str, Any] = {}
        self.messages = self.answered = self.conversations = 0

    async def login(self, api: httpx.AsyncClient) -> None:
        token = await api.post(f"{self.base}/api/v1/auth/login", json={"email": OWNER, "password": PASSWORD})
        token.raise_for_status()
        self.headers = {"Authorization": f"Bearer {token.json()['access_token']}"}

    async def call(self, api: httpx.AsyncClient, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """An API call as the owner; an access token lives 15 minutes, so a 401 signs in again once."""
        response = await api.request(method, f"{self.base}{path}", headers=self.headers, **kwargs)
        if response.status_code == 401:
            await self.login(api)
            response = await api.request(method, f"{self.base}{path}", headers=self.headers, **kwargs)
        return response

    async def setup(self, api: httpx.AsyncClient) -> None:
        await self.login(api)
        bot = await api.post(f"{self.base}/api/v1/chatbots", headers=self.headers, json={
            "name": "Soak Helper", "behavior_settings": {"response_delay": 0},
            # every question gets an answer to time (an escalation costs less, and stops the AI for the chat)
            "ai_settings": {"enable_escalation": False}})
        bot.raise_for_status()
        self.bot = bot.json()
        for seed in range(3):  # something to answer from before the chats start
            await self.ingest(api, seed)

    # --- ingestion ------------------------------------------------------------------------------------------
    async def ingest(self, api: httpx.AsyncClient, seed: int) -> None:
        started = time.perf_counter()
        made = await self.call(api, "POST", "/api/v1/knowledge-base/documents", data={"chatbot_id": self.bot["id"]},
                               files={"file": (f"handbook-{seed}.md", handbook(seed), "text/markdown")})
        if made.status_code != 201:
            self.record.error(f"upload {made.status_code}")
            return
        while True:
            await asyncio.sleep(0.5)
            doc = (await self.call(api, "GET", f"/api/v1/knowledge-base/documents/{made.json()['id']}")).json()
            if doc["status"] in ("completed", "failed"):
                break
        if doc["status"] == "failed":
            self.record.error("ingestion failed")
        self.record.time("ingestion", (time.perf_counter() - started) * 1000)

    async def ingestion(self, api: httpx.AsyncClient) -> None:
        seed = 100
        while not self.stop.is_set():
            await self._sleep(self.args.ingest_every)
            if not self.stop.is_set():
                seed += 1
                await self.ingest(api, seed)

    # --- console users --------------------------------------------------------------------------------------
    async def agent(self, number: int) -> None:
        async with httpx.AsyncClient(timeout=30) as browser:
            page = await browser.get(f"{self.base}/login")
            token = CSRF.search(page.text)
            assert token, "no CSRF token on the login page"
            await browser.post(f"{self.base}/login", data={"csrf_token": token.group(1),
                                                           "email": AGENT.format(number), "password": PASSWORD})
            assert "cs_session" in browser.cookies, "console login failed"
            rng = random.Random(number)
            while not self.stop.is_set():
                inbox = await self.page(browser, "inbox", "/inbox")
                ids = re.findall(r'href="/inbox/([0-9a-f-]{36})"', inbox)
                if ids:
                    await self.page(browser, "conversation", f"/inbox/{rng.choice(ids)}")
                await self.page(browser, "dashboard", "/dashboard")
                await self._sleep(rng.uniform(1, 3))

    async def page(self, browser: httpx.AsyncClient, kind: str, path: str) -> str:
        started = time.perf_counter()
        try:
            response = await browser.get(self.base + path)
        except httpx.HTTPError as exc:
            self.record.error(f"{kind} {type(exc).__name__}")
            return ""
        self.record.time(kind, (time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            self.record.error(f"{kind} {response.status_code}")
        return response.text

    # --- widget visitors ------------------------------------------------------------------------------------
    async def visitors(self, api: httpx.AsyncClient, number: int) -> None:
        rng = random.Random(1000 + number)
        await self._sleep(rng.uniform(0, 10))
        while not self.stop.is_set():
            try:
                await self.conversation(api, rng)
            except (OSError, websockets.WebSocketException, asyncio.TimeoutError, httpx.HTTPError) as exc:
                self.record.error(f"widget {type(exc).__name__}")
                await self._sleep(2)

    async def conversation(self, api: httpx.AsyncClient, rng: random.Random) -> None:
        visitor, origin = "v_" + uuid.uuid4().hex[:22], "https://shop.example"
        frame = await api.get(f"{self.base}/widget/frame", headers={"Referer": origin + "/"},
                              params={"key": self.bot["public_key"], "visitor": visitor, "origin": origin})
        frame.raise_for_status()
        match = CONFIG.search(frame.text)
        assert match, "no cs-config in the frame"
        config = json.loads(match.group(1))
        self.conversations += 1
        conversation_id = None
        async with websockets.connect(f"{config['ws_url']}?token={config['token']}", compression=None,
                                      ping_interval=None) as ws:
            for _ in range(rng.randint(3, 6)):
                if self.stop.is_set():
                    return
                client_id, sent = uuid.uuid4().hex, time.perf_counter()
                await ws.send(json.dumps({"event": "message:send", "data": {
                    "client_id": client_id, "conversation_id": conversation_id,
                    "content": rng.choice(QUESTIONS), "attachments": []}}))
                self.messages += 1
                conversation_id = await self.await_answer(ws, client_id, sent, conversation_id)
                await self._sleep(rng.uniform(8, 20))

    async def await_answer(self, ws: Any, client_id: str, sent: float, conversation_id: str | None) -> str | None:
        acked = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            frame = json.loads(await asyncio.wait_for(ws.recv(), max(0.1, deadline - time.monotonic())))
            event, data = frame.get("event"), frame.get("data") or {}
            if event == "message:ack" and data.get("client_id") == client_id:
                acked = data["message_id"]
                self.record.time("widget ack", (time.perf_counter() - sent) * 1000)
                conversation_id = data.get("conversation_id") or conversation_id
            elif event == "message:receive" and (data.get("sender") or {}).get("type") == "bot" and acked:
                self.record.time("widget answer", (time.perf_counter() - sent) * 1000)
                self.answered += 1
                return conversation_id
            elif event == "error":
                self.record.error(f"widget error {data.get('code')}")
                return conversation_id
        self.record.error("widget no answer in 60 s")
        return conversation_id

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self.stop.wait(), seconds)
        except asyncio.TimeoutError:
            pass

    # --- the run --------------------------------------------------------------------------------------------
    async def run(self) -> dict[str, Any]:
        duration, warmup = self.args.duration, max(20.0, self.args.duration * 0.1)
        async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=200)) as api:
            await self.setup(api)
            tasks = [asyncio.create_task(self.visitors(api, n)) for n in range(self.args.visitors)]
            tasks += [asyncio.create_task(self.agent(n)) for n in range(self.args.agents)]
            tasks.append(asyncio.create_task(self.ingestion(api)))
            began, rss, caches = time.monotonic(), [], []
            while time.monotonic() - began < duration:
                await asyncio.sleep(5)
                rss.append((time.monotonic() - began, self.server.rss_mb()))
                if len(rss) % 12 == 1:
                    caches.append((rss[-1][0], *await self.database_memory(api)))
                if any(t.done() and t.exception() for t in tasks):
                    raise next(t.exception() for t in tasks if t.done() and t.exception())  # type: ignore[misc]
            self.stop.set()
            await asyncio.wait(tasks, timeout=90)
        return {**self.summary(duration, warmup, rss), "sqlite": {"samples": caches}}

    async def database_memory(self, api: httpx.AsyncClient) -> tuple[float, int]:
        """(page caches MB, connections) from /metrics, which answers loopback clients without a token: the first
        suspect when RSS grows is the page caches filling as the database grows."""
        text = (await api.get(self.base + "/metrics")).text
        found = dict(re.findall(r"^(chatsupport_sqlite_\w+) (\S+)$", text, re.M))
        return (float(found.get("chatsupport_sqlite_page_cache_bytes", 0)) / 2**20,
                int(float(found.get("chatsupport_sqlite_connections", 0))))

    def summary(self, duration: float, warmup: float, rss: list[tuple[float, float]]) -> dict[str, Any]:
        after = [mb for t, mb in rss if t >= warmup]
        at_warm, at_end = (after[0], statistics.median(after[-3:])) if after else (float("nan"), float("nan"))
        kinds = {kind: {"count": len(v), "per_minute": len(v) * 60 / duration, "p50_ms": statistics.median(v),
                        "p95_ms": pct(v, 95), "max_ms": max(v)} for kind, v in self.record.latencies.items()}
        return {"duration_s": duration, "visitors": self.args.visitors, "agents": self.args.agents,
                "conversations": self.conversations, "messages": self.messages, "answered": self.answered,
                "kinds": kinds, "errors": self.record.errors, "error_count": sum(self.record.errors.values()),
                "rss_mb": {"after_warmup": at_warm, "end": at_end, "max": max(mb for _, mb in rss),
                           "growth_pct": 100 * (at_end - at_warm) / at_warm, "samples": rss}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=1800)
    parser.add_argument("--visitors", type=int, default=40)
    parser.add_argument("--agents", type=int, default=4)
    parser.add_argument("--ingest-every", type=float, default=60)
    add_quick_flag(parser, "2 minutes")
    args = parser.parse_args()
    if args.quick:
        args.duration = 120
    with tempfile.TemporaryDirectory(prefix="chatsupport-soak-") as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        base = ["--workspace", "Soak Co"]
        subprocess.run([sys.executable, "-m", "chatsupport", "create-admin", "--email", OWNER, *base, "--password",
                        PASSWORD], check=True, cwd=ROOT, capture_output=True, env=_env(data_dir))
        for number in range(args.agents):
            subprocess.run([sys.executable, "-m", "chatsupport", "create-user", "--email", AGENT.format(number),
                            "--role", "agent", *base, "--password", PASSWORD], check=True, cwd=ROOT,
                           capture_output=True, env=_env(data_dir))
        server = Server(data_dir, free_port())
        server.start()
        try:
            asyncio.run(server.ready())
            result = asyncio.run(Soak(server, args).run())
        finally:
            server.stop()
    report(result)
    write_results("soak", args, result)
    return 0 if result["error_count"] == 0 and result["rss_mb"]["growth_pct"] < 10 else 1


def report(result: dict[str, Any]) -> None:
    minutes = result["duration_s"] / 60
    print(f"\nsoak {minutes:.1f} min: {result['conversations']} conversations, {result['messages']} widget messages "
          f"({result['messages'] / minutes:.0f}/min), {result['answered']} answered")
    print(f"{'kind':<16}{'count':>7}{'per min':>9}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}")
    for kind, row in sorted(result["kinds"].items()):
        print(f"{kind:<16}{row['count']:>7}{row['per_minute']:>9.1f}{row['p50_ms']:>9.0f}{row['p95_ms']:>9.0f}"
              f"{row['max_ms']:>9.0f}")
    rss = result["rss_mb"]
    print(f"errors: {result['error_count']} {result['errors'] or ''} (target 0)")
    print(f"server RSS after warm-up {rss['after_warmup']:.0f} MB, at the end {rss['end']:.0f} MB, max "
          f"{rss['max']:.0f} MB: growth {rss['growth_pct']:+.1f}% (target < 10%)")
    caches = result["sqlite"]["samples"]
    if caches:
        print(f"SQLite page caches {caches[0][1]:.1f} MB at the start, {caches[-1][1]:.1f} MB at the end "
              f"({caches[-1][2]} connections)")


if __name__ == "__main__":
    sys.exit(main())
