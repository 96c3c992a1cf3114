"""Benchmark: many widget visitors on one server, from a second process on 127.0.0.1.

Usage:
  PYTHONPATH=. .venv/bin/python bench/widget_load.py CORPUS_DIR QUESTIONS.jsonl
      [--connections 1000] [--duration 600] [--interval 36] [--restart] [--ramp 2000,4000,8000 --step 90]

What it does, in order:
1. Prepares a data dir once (cached in --data-dir): one chatbot with CORPUS_DIR indexed, extractive answers,
   typing delay 0 and escalation off (so every message gets an answer to time; escalation costs no more).
2. Starts ``chatsupport serve`` on 127.0.0.1 with the per-IP conversation cap lifted (every visitor comes from
   127.0.0.1 here; the per-visitor limits stay on).
3. Opens --connections widgets the way a browser does (GET /widget/frame → token → WebSocket /ws/widget), then
   each visitor sends one question every --interval seconds (first one at a random offset) for --duration
   seconds. Reports send → ack and send → answer (the bot's ``message:receive``) p50/p95/p99, errors, server RSS
   and CPU.
4. --restart: SIGTERM the server, start it again on the same port; every widget reconnects with jittered backoff
   and sends ``resume``; reports the time from the new server's first /healthz until all have ``resume:done``.
5. --ramp: more connections in steps (each held --step seconds at the same per-visitor pace); reports the most
   connections held with p99 ack ≤ 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import websockets

from quick import add_quick_flag, write_results

ROOT = Path(__file__).resolve().parent.parent
PREFIXES = ("", "Hi! ", "Hello, ", "Quick question: ", "Hey there. ")
SUFFIXES = ("", " Thanks!", " Thank you.", " Any idea?")
CONFIG = re.compile(r'<script type="application/json" id="cs-config">(.*?)</script>', re.S)


# --- data dir ----------------------------------------------------------------------------------------------
def prepare(data_dir: Path, corpus: Path) -> str:
    """The chatbot's public key; indexes the corpus on first use only."""
    marker = data_dir / "bench-widget.json"
    if marker.exists():
        return json.loads(marker.read_text())["public_key"]
    from chatsupport.config import load_settings
    from chatsupport.llm.evaluation import new_eval_chatbot
    from chatsupport.retrieval.embedder import shared_embedder
    from chatsupport.retrieval.evaluation import index_corpus
    from chatsupport.store import chatbots
    from chatsupport.store.db import Database
    from chatsupport.store.migrations import migrate

    settings = load_settings({"CHATSUPPORT_DATA_DIR": str(data_dir)})
    data_dir.mkdir(parents=True, exist_ok=True)
    migrate(settings.data.database)
    db = Database(settings.data.database)
    workspace_id, chatbot_id = new_eval_chatbot(db)
    bot = chatbots.get(db.reader(), workspace_id, chatbot_id)
    bot["settings"] = {**bot["settings"], "ai_settings": {"enable_escalation": False}}
    db.write(lambda conn: chatbots.update(conn, bot))
    embedder = shared_embedder(settings.EMBEDDING_MODEL, settings.model_cache_path, settings.models_path)
    index_corpus(db, embedder, chatbot_id, corpus, lambda m: print(f"… {m}", file=sys.stderr))
    db.close()
    marker.write_text(json.dumps({"public_key": bot["public_key"]}))
    return str(bot["public_key"])


# --- server ------------------------------------------------------------------------------------------------
class Server:
    def __init__(self, data_dir: Path, port: int):
        self.data_dir, self.port = data_dir, port
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, "CHATSUPPORT_DATA_DIR": str(self.data_dir), "CHATSUPPORT_LOG_LEVEL": "WARNING",
               "CHATSUPPORT_BASE_URL": self.url, "CHATSUPPORT_WIDGET_IP_LIMIT": "0",
               "CHATSUPPORT_WIDGET_MAX_CONNECTIONS": "100000", "PYTHONPATH": str(ROOT)}
        log = (self.data_dir / "bench-server.log").open("ab")
        self.process = subprocess.Popen([sys.executable, "-m", "chatsupport", "serve", "--port", str(self.port)],
                                        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)

    async def ready(self, timeout: float = 120) -> float:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient() as client:
            while time.monotonic() < deadline:
                try:
                    if (await client.get(self.url + "/readyz", timeout=2)).status_code == 200:
                        return time.monotonic()
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.05)
        raise TimeoutError("server not ready")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def cpu_seconds(self) -> float:
        assert self.process is not None
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float:
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0


# --- visitors ----------------------------------------------------------------------------------------------
@dataclass
class Stats:
    ack_ms: list[float] = field(default_factory=list)
    answer_ms: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    sent: int = 0

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


class Visitor:
    def __init__(self, server: Server, public_key: str, questions: list[str], stats: Stats):
        self.server, self.key, self.questions, self.stats = server, public_key, questions, stats
        self.visitor_id = "v_" + uuid.uuid4().hex[:22]
        self.config: dict[str, Any] = {}
        self.ws: Any = None
        self.conversation_id: str | None = None
        self.last_message_id: str | None = None
        self.pending: dict[str, float] = {}          # client_id → send time, until acked
        self.awaiting_answer: list[float] = []       # send times of acked messages without a bot answer yet
        self.resumed = asyncio.Event()
        self.connected = asyncio.Event()
        self.closing = False

    async def load_frame(self, client: httpx.AsyncClient) -> None:
        origin = "http://shop.test"
        response = await client.get(f"{self.server.url}/widget/frame", params={
            "key": self.key, "visitor": self.visitor_id, "origin": origin}, headers={"Referer": origin + "/"})
        response.raise_for_status()
        match = CONFIG.search(response.text)
        assert match, "no cs-config in the frame"
        self.config = json.loads(match.group(1))

    async def run(self) -> None:
        """Stay connected until ``closing``; reconnect with jittered backoff like the real widget."""
        failures = 0
        while not self.closing:
            try:
                url = f"{self.config['ws_url']}?token={self.config['token']}"
                async with websockets.connect(url, compression=None, open_timeout=30, ping_interval=None,
                                              max_size=2 ** 20) as ws:
                    self.ws, failures = ws, 0
                    self.connected.set()
                    if self.conversation_id:
                        await self.send("resume", {"conversation_id": self.conversation_id,
                                                   "last_message_id": self.last_message_id})
                    for client_id, _ in list(self.pending.items()):  # re-send what was never acked
                        await self.send("message:send", {"client_id": client_id, "content": self.questions[0],
                                                         "conversation_id": self.conversation_id,
                                                         "attachments": []})
                    async for raw in ws:
                        self.receive(json.loads(raw))
            except (OSError, websockets.WebSocketException, asyncio.TimeoutError):
                pass
            self.ws = None
            self.connected.clear()
            if not self.closing:  # the widget's own backoff (widget/frame.js)
                base = min(4.0, 0.5 * 2 ** min(failures, 6))
                await asyncio.sleep(base / 2 + random.uniform(0, base / 2))
                failures += 1

    async def send(self, event: str, data: dict[str, Any]) -> None:
        if self.ws is not None:
            try:
                await self.ws.send(json.dumps({"event": event, "data": data}))
            except websockets.WebSocketException:
                pass

    async def ask(self) -> None:
        client_id = uuid.uuid4().hex
        self.pending[client_id] = time.perf_counter()
        self.stats.sent += 1
        await self.send("message:send", {"client_id": client_id, "conversation_id": self.conversation_id,
                                         "content": random.choice(self.questions), "attachments": []})

    def receive(self, frame: dict[str, Any]) -> None:
        event, data = frame.get("event"), frame.get("data") or {}
        now = time.perf_counter()
        if event == "message:ack":
            sent = self.pending.pop(data.get("client_id"), None)
            if sent is not None:
                self.stats.ack_ms.append((now - sent) * 1000)
                self.awaiting_answer.append(sent)
            self.conversation_id = data.get("conversation_id") or self.conversation_id
            self.last_message_id = data.get("message_id") or self.last_message_id
        elif event == "message:receive":
            self.last_message_id = data.get("message_id") or self.last_message_id
            self.conversation_id = data.get("conversation_id") or self.conversation_id
            if (data.get("sender") or {}).get("type") == "bot" and self.awaiting_answer:
                self.stats.answer_ms.append((now - self.awaiting_answer.pop(0)) * 1000)
        elif event == "conversation:started":
            self.conversation_id = data.get("conversation_id")
        elif event == "resume:done":
            self.resumed.set()
        elif event == "error":
            self.stats.error(str(data.get("code")))


async def open_all(server: Server, key: str, questions: list[str], n: int, stats: Stats) -> list[Visitor]:
    visitors = [Visitor(server, key, questions, stats) for _ in range(n)]
    gate = asyncio.Semaphore(50)
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=50)) as client:
        async def load(v: Visitor) -> None:
            async with gate:
                await v.load_frame(client)
        await asyncio.gather(*(load(v) for v in visitors))
    for v in visitors:
        asyncio.get_running_loop().create_task(v.run())
    await asyncio.wait_for(asyncio.gather(*(v.connected.wait() for v in visitors)), 120)
    return visitors


async def pace(visitors: list[Visitor], duration: float, interval: float) -> None:
    async def one(v: Visitor) -> None:
        await asyncio.sleep(random.uniform(0, interval))
        end = time.monotonic() + duration - interval
        while time.monotonic() < end:
            await v.ask()
            await asyncio.sleep(interval)
    await asyncio.gather(*(one(v) for v in visitors))
    await asyncio.sleep(min(interval, 10))  # let the last answers arrive


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def report(label: str, stats: Stats, server: Server, cpu: float, seconds: float) -> dict[str, Any]:
    row = {"label": label, "sent": stats.sent, "acked": len(stats.ack_ms), "answered": len(stats.answer_ms),
           "ack_p50": pct(stats.ack_ms, 50), "ack_p95": pct(stats.ack_ms, 95), "ack_p99": pct(stats.ack_ms, 99),
           "answer_p50": pct(stats.answer_ms, 50), "answer_p95": pct(stats.answer_ms, 95),
           "answer_p99": pct(stats.answer_ms, 99), "errors": stats.errors,
           "unanswered": stats.sent - len(stats.answer_ms), "rss_mb": server.rss_mb(),
           "cpu_pct": 100 * cpu / seconds}
    print(f"{label}: sent {row['sent']} acked {row['acked']} answered {row['answered']} | ack p50/p95/p99 "
          f"{row['ack_p50']:.1f}/{row['ack_p95']:.1f}/{row['ack_p99']:.1f} ms | answer p50/p95/p99 "
          f"{row['answer_p50']:.0f}/{row['answer_p95']:.0f}/{row['answer_p99']:.0f} ms | errors {row['errors']} | "
          f"server RSS {row['rss_mb']:.0f} MB, CPU {row['cpu_pct']:.0f}% of a core", flush=True)
    return row


async def hold(server: Server, key: str, questions: list[str], n: int, duration: float, interval: float,
               label: str, restart: bool = False) -> dict[str, Any]:
    stats = Stats()
    visitors = await open_all(server, key, questions, n, stats)
    print(f"{label}: {n} widgets connected; server RSS {server.rss_mb():.0f} MB", flush=True)
    cpu0, t0 = server.cpu_seconds(), time.monotonic()
    await pace(visitors, duration, interval)
    row = report(label, stats, server, server.cpu_seconds() - cpu0, time.monotonic() - t0)
    if restart:
        for v in visitors:
            v.resumed.clear()
        server.stop()
        server.start()
        up = await server.ready()
        await asyncio.wait_for(asyncio.gather(*(v.resumed.wait() for v in visitors)), 120)
        row["resume_all_s"] = time.monotonic() - up
        print(f"restart: all {n} widgets reconnected and resumed {row['resume_all_s']:.2f} s after the new "
              f"server answered /readyz", flush=True)
    for v in visitors:
        v.closing = True
        if v.ws is not None:
            await v.ws.close()
    await asyncio.sleep(1)
    return row


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", type=Path)
    parser.add_argument("questions", type=Path)
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/chatsupport-bench-widget"))
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=600)
    parser.add_argument("--interval", type=float, default=36)
    parser.add_argument("--restart", action="store_true")
    parser.add_argument("--ramp", default="")
    parser.add_argument("--step", type=float, default=90)
    add_quick_flag(parser, "1,000 widgets at the same pace for 120 s, with the restart, no ramp")
    args = parser.parse_args()
    if args.quick:
        args.connections, args.duration, args.interval, args.restart, args.ramp = 1000, 120, 36, True, ""
    key = prepare(args.data_dir, args.corpus)
    asked = [json.loads(line)["question"] for line in args.questions.read_text().splitlines() if line.strip()]
    # distinct phrasings, so repeated questions do not all hit the embedder's cache
    questions = [f"{before}{q}{after}" for q in asked for before in PREFIXES for after in SUFFIXES]
    server = Server(args.data_dir, free_port())
    server.start()
    try:
        await server.ready()
        print(f"server up, RSS {server.rss_mb():.0f} MB", flush=True)
        rows = [await hold(server, key, questions, args.connections, args.duration, args.interval,
                           f"{args.connections} widgets", restart=args.restart)]
        best = 0
        for n in [int(x) for x in args.ramp.split(",") if x]:
            rows.append(await hold(server, key, questions, n, args.step, args.interval, f"ramp {n}"))
            if rows[-1]["ack_p99"] <= 1000 and not rows[-1]["errors"]:
                best = n
        if args.ramp:
            print(f"most connections held with p99 ack <= 1 s: {best}")
    finally:
        server.stop()
    write_results("widget_load", args, {"rows": rows, "most_held_p99_ack_1s": best if args.ramp else None})
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
