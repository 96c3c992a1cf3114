"""Benchmark: how fast a widget message reaches an open inbox tab (issue 7 target: p95 ≤ 500 ms).

Usage:
  PYTHONPATH=. .venv/bin/python bench/inbox_live.py [--messages 200] [--interval 0.2] [--data-dir DIR]

What it does:
1. Prepares a fresh data dir (a workspace with one chatbot, escalation off, and an agent), then starts
   ``chatsupport serve`` on 127.0.0.1 with the per-IP conversation cap lifted (every visitor is 127.0.0.1 here).
2. Signs the agent in through the console login form and opens the console event stream
   (``GET /console/events``) the way inbox.js does, reconnecting when the server ends it.
3. Opens widget visitors the way a browser does (GET /widget/frame → token → WebSocket /ws/widget) and sends
   --messages messages, one every --interval seconds, spread over visitors (a visitor may send 10 a minute).
4. Reports p50/p95/max of "widget send → the customer's ``message:receive`` arrives on the console stream".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import re
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent))
from widget_load import CONFIG, Server, free_port  # noqa: E402
from quick import add_quick_flag, write_results  # noqa: E402

AGENT_EMAIL, AGENT_PASSWORD = "agent@bench.example", "Bench#Secret1"
PER_VISITOR = 5
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def prepare(data_dir: Path) -> str:
    """The chatbot's public key; a workspace with the bot and a signed-up agent."""
    from chatsupport.config import load_settings
    from chatsupport.domain import accounts
    from chatsupport.llm.evaluation import new_eval_chatbot
    from chatsupport.services import start_services
    from chatsupport.store import chatbots

    settings = load_settings({"CHATSUPPORT_DATA_DIR": str(data_dir)})
    services = start_services(settings, run_worker=False, load_embedder=False)
    try:
        workspace_id, chatbot_id = new_eval_chatbot(services.db)
        bot = chatbots.get(services.db.reader(), workspace_id, chatbot_id)
        bot["settings"] = {**bot["settings"], "ai_settings": {"enable_escalation": False}}
        services.db.write(lambda conn: chatbots.update(conn, bot))
        name = services.db.reader().execute("SELECT name FROM workspaces WHERE id = ?",
                                            (workspace_id,)).fetchone()["name"]
        accounts.create_user(services, workspace=name, email=AGENT_EMAIL, password=AGENT_PASSWORD, role="agent",
                             display_name="Bench Agent")
    finally:
        services.stop()
    return str(bot["public_key"])


async def console_login(client: httpx.AsyncClient, base: str) -> None:
    page = await client.get(f"{base}/login")
    token = CSRF.search(page.text)
    assert token, "no CSRF token on the login page"
    signed_in = await client.post(f"{base}/login", data={"csrf_token": token.group(1), "email": AGENT_EMAIL,
                                                         "password": AGENT_PASSWORD, "next": "/inbox"})
    assert "cs_session" in client.cookies, f"login failed: {signed_in.status_code}"


async def listen(client: httpx.AsyncClient, base: str, arrived: dict[str, float], stop: asyncio.Event,
                 ready: asyncio.Event) -> None:
    """The console stream, reconnected whenever the server ends it; records when each marked message arrives."""
    while not stop.is_set():
        async with client.stream("GET", f"{base}/console/events", params={"wait": 55}, timeout=None) as response:
            response.raise_for_status()
            event = None
            async for line in response.aiter_lines():
                ready.set()
                if line.startswith("event:"):
                    event = line.split(":", 1)[1].strip()
                elif line.startswith("data:") and event == "message:receive":
                    data = json.loads(line.split(":", 1)[1])
                    content = str(data.get("content", ""))
                    if (data.get("sender") or {}).get("type") == "customer" and content.startswith("bench-"):
                        arrived.setdefault(content, time.perf_counter())
                if stop.is_set():
                    return


class Visitor:
    def __init__(self, server: Server, key: str):
        self.server, self.key = server, key
        self.visitor_id = "v_" + uuid.uuid4().hex[:22]
        self.conversation_id: str | None = None
        self.ws: Any = None

    async def connect(self, client: httpx.AsyncClient) -> None:
        origin = "http://shop.test"
        frame = await client.get(f"{self.server.url}/widget/frame", params={
            "key": self.key, "visitor": self.visitor_id, "origin": origin}, headers={"Referer": origin + "/"})
        frame.raise_for_status()
        match = CONFIG.search(frame.text)
        assert match, "no cs-config in the frame"
        config = json.loads(match.group(1))
        self.ws = await websockets.connect(f"{config['ws_url']}?token={config['token']}", compression=None,
                                           ping_interval=None)
        asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                frame = json.loads(raw)
                if frame["event"] == "message:ack":
                    self.conversation_id = frame["data"]["conversation_id"]
        except websockets.WebSocketException:
            pass

    async def send(self, content: str) -> float:
        started = time.perf_counter()
        await self.ws.send(json.dumps({"event": "message:send", "data": {
            "client_id": uuid.uuid4().hex, "conversation_id": self.conversation_id, "content": content,
            "attachments": []}}))
        return started


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="inbox-live-")) / "data"
    key = prepare(data_dir)
    server = Server(data_dir, args.port or free_port())
    server.start()
    try:
        await server.ready()
        async with httpx.AsyncClient() as agent, httpx.AsyncClient() as visitors_http:
            await console_login(agent, server.url)
            arrived: dict[str, float] = {}
            stop, ready = asyncio.Event(), asyncio.Event()
            listener = asyncio.create_task(listen(agent, server.url, arrived, stop, ready))
            await asyncio.wait_for(ready.wait(), 30)
            visitors = [Visitor(server, key) for _ in range(math.ceil(args.messages / PER_VISITOR))]
            for visitor in visitors:
                await visitor.connect(visitors_http)
            sent: dict[str, float] = {}
            for index in range(args.messages):
                visitor = visitors[index % len(visitors)]
                content = f"bench-{index} where is my order?"
                sent[content] = await visitor.send(content)
                await asyncio.sleep(args.interval)
            deadline = time.monotonic() + 10
            while len(arrived) < len(sent) and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            stop.set()
            listener.cancel()
            for visitor in visitors:
                await visitor.ws.close()
    finally:
        server.stop()
    latencies = [(arrived[c] - sent[c]) * 1000 for c in sent if c in arrived]
    return {"messages": len(sent), "received": len(latencies),
            "p50_ms": round(statistics.median(latencies), 1) if latencies else None,
            "p95_ms": round(percentile(latencies, 0.95), 1) if latencies else None,
            "max_ms": round(max(latencies), 1) if latencies else None, "target_p95_ms": 500}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between messages")
    parser.add_argument("--data-dir", help="where to put the data dir (default: a new temporary directory)")
    parser.add_argument("--port", type=int, default=0)
    add_quick_flag(parser, "100 messages")
    args = parser.parse_args()
    if args.quick:
        args.messages = 100
    result = asyncio.run(run(args))
    print(json.dumps(result, indent=2))
    write_results("inbox_live", args, result)
    if result["p95_ms"] is None or result["received"] < result["messages"] or result["p95_ms"] > 500:
        sys.exit(1)


if __name__ == "__main__":
    main()
