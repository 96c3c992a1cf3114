"""Benchmark: ``chatsupport backup`` of a large database while the server keeps serving traffic.

Usage:
  PYTHONPATH=. .venv/bin/python bench/backup_under_load.py [--size-gb 1.0] [--data-dir DIR]
      [--api-clients 4] [--consoles 2] [--writers 2] [--visitors 2] [--before 30] [--after 30] [--quick]

1. Data: a database of about --size-gb, made with bench/inbox_history.py's generator (conversations and messages
   over a year, about 1 KB per message once indexed), padded with text rows if it falls short. With --data-dir,
   an existing chatsupport.db there is reused as it is (kept afterwards); an empty one is filled (and kept).
   Without it, a temp dir is used and removed.
2. Starts the real ``chatsupport serve`` on it (127.0.0.1), with an owner made by ``chatsupport create-admin``.
3. Drives steady traffic from this process: --api-clients API readers with the owner's bearer token (inbox
   list, a filtered list, one conversation, its notes), --consoles signed-in console users (/inbox, a
   conversation, /dashboard), --writers adding internal notes through the API, and --visitors widget visitors
   sending a message every few seconds over the WebSocket (send → ack is timed as one request).
4. After --before seconds runs ``chatsupport backup --to …`` as the operator would (a separate process on the
   same data dir), keeps the traffic going --after seconds past its end, and reports the backup's duration
   (and its phases from the CLI's progress lines), the archive's size, and request latency p50/p95/p99/max,
   count and errors, split into requests that overlapped the backup and the others.

Target (issue 10): no request over 1 s while the backup runs (and no errors; writes must have happened during
it). --quick: 0.2 GB, 10 s before and after. Writes docs/bench-results/backup_under_load.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import websockets

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from crash_support import CONFIG, CSRF, OWNER, PASSWORD, Server, _env, cli  # noqa: E402
from inbox_history import generate, sentences  # noqa: E402
from quick import add_quick_flag, write_results  # noqa: E402
from widget_load import pct  # noqa: E402

WORKSPACE_NAME = "Bench"  # the workspace inbox_history.py makes: the owner joins it and sees its history
BYTES_PER_MESSAGE = 1000  # measured: messages, conversations and their full-text index, per message
MESSAGES_PER_CONVERSATION = 10
TARGET_MAX_MS = 1000.0
BOT_NAME = "Backup Bench Bot"


# --- data --------------------------------------------------------------------------------------------------
def build_database(data_dir: Path, size_gb: float, seed: int) -> dict[str, Any]:
    from chatsupport.store.db import connect
    from chatsupport.store.migrations import migrate

    path = data_dir / "chatsupport.db"
    if path.exists():
        return {"reused": True, "generate_s": 0.0, "padding_mb": 0.0}
    data_dir.mkdir(parents=True, exist_ok=True)
    target = int(size_gb * 1e9)
    messages = max(1000, target // BYTES_PER_MESSAGE)
    began = time.perf_counter()
    migrate(path)
    conn = connect(path, synchronous="NORMAL")
    try:
        for done in generate(conn, messages // MESSAGES_PER_CONVERSATION, messages, seed):
            print(f"\r… {done:,} conversations", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        padding = _pad(conn, target, seed)
        conn.execute("PRAGMA optimize")
    finally:
        conn.close()
    return {"reused": False, "generate_s": time.perf_counter() - began, "padding_mb": padding / 1e6}


def _pad(conn: Any, target: int, seed: int) -> int:
    """Text rows (compressible like the rest) up to ``target`` bytes, when the generator fell more than 2% short.
    Returns the bytes added."""
    def size() -> int:
        return conn.execute("PRAGMA page_count").fetchone()["page_count"] * \
            conn.execute("PRAGMA page_size").fetchone()["page_size"]

    before = size()
    if target - before < 0.02 * target:
        return 0
    rng, text = random.Random(seed), sentences()
    conn.execute("CREATE TABLE IF NOT EXISTS bench_padding(id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
    while size() < target:
        with conn:
            conn.executemany("INSERT INTO bench_padding(body) VALUES (?)",
                             [(" ".join(rng.choice(text) for _ in range(40)),) for _ in range(500)])
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return size() - before


def ensure_owner(data_dir: Path) -> None:
    made = cli(data_dir, "create-admin", "--email", OWNER, "--workspace", WORKSPACE_NAME, "--password-stdin",
               stdin=PASSWORD + "\n")
    if made.returncode != 0 and "already_exists" not in made.stderr:
        raise RuntimeError(f"create-admin failed: {made.stderr}")


# --- traffic -----------------------------------------------------------------------------------------------
@dataclass
class Sample:
    kind: str
    began: float
    ended: float
    ok: bool

    @property
    def ms(self) -> float:
        return (self.ended - self.began) * 1000


@dataclass
class Traffic:
    base: str
    headers: dict[str, str]
    bot_key: str
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    samples: list[Sample] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    ids: list[str] = field(default_factory=list)

    async def timed(self, client: httpx.AsyncClient, kind: str, method: str, path: str,
                    expect: int = 200, **kwargs: Any) -> httpx.Response | None:
        began = time.monotonic()
        try:
            response = await client.request(method, self.base + path, **kwargs)
        except httpx.HTTPError as exc:
            self.samples.append(Sample(kind, began, time.monotonic(), False))
            self._error(f"{kind} {type(exc).__name__}")
            return None
        ok = response.status_code == expect
        self.samples.append(Sample(kind, began, time.monotonic(), ok))
        if not ok:
            self._error(f"{kind} {response.status_code}")
        return response

    def _error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1

    async def pause(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self.stop.wait(), seconds)
        except asyncio.TimeoutError:
            pass

    async def api_reader(self, client: httpx.AsyncClient, rng: random.Random) -> None:
        while not self.stop.is_set():
            listing = await self.timed(client, "api inbox list", "GET", "/api/v1/conversations",
                                       params={"limit": 20}, headers=self.headers)
            if listing is not None and listing.status_code == 200 and listing.json()["data"]:
                self.ids = [row["id"] for row in listing.json()["data"]]
            await self.timed(client, "api filtered list", "GET", "/api/v1/conversations", headers=self.headers,
                             params={"status": rng.choice(("resolved", "escalated,waiting", "archived")),
                                     "tags": rng.choice(("billing", "refund", "vip")), "limit": 20})
            if self.ids:
                conversation = rng.choice(self.ids)
                await self.timed(client, "api conversation", "GET", f"/api/v1/conversations/{conversation}",
                                 headers=self.headers)
                await self.timed(client, "api notes", "GET", f"/api/v1/conversations/{conversation}/notes",
                                 headers=self.headers)
            await self.pause(rng.uniform(0.2, 0.6))

    async def console(self, rng: random.Random) -> None:
        async with httpx.AsyncClient(timeout=30) as browser:
            page = await browser.get(self.base + "/login")
            token = CSRF.search(page.text)
            assert token, "no CSRF token on the login page"
            await browser.post(self.base + "/login", data={"csrf_token": token.group(1), "email": OWNER,
                                                           "password": PASSWORD})
            assert "cs_session" in browser.cookies, "console login failed"
            while not self.stop.is_set():
                await self.timed(browser, "console inbox", "GET", "/inbox")
                if self.ids:
                    await self.timed(browser, "console conversation", "GET", f"/inbox/{rng.choice(self.ids)}")
                await self.timed(browser, "console dashboard", "GET", "/dashboard")
                await self.pause(rng.uniform(0.5, 1.5))

    async def writer(self, client: httpx.AsyncClient, rng: random.Random) -> None:
        while not self.stop.is_set():
            if self.ids:
                await self.timed(client, "api add note", "POST", f"/api/v1/conversations/{rng.choice(self.ids)}/notes",
                                 expect=201, headers=self.headers,
                                 json={"content": f"Backup bench note {uuid.uuid4().hex[:8]}: checked the order."})
            await self.pause(rng.uniform(0.3, 0.8))

    async def visitor(self, client: httpx.AsyncClient, rng: random.Random) -> None:
        """One widget visitor after another, each sending a few messages; send → ack is the sample."""
        while not self.stop.is_set():
            origin = "https://shop.example"
            frame = await self.timed(client, "widget frame", "GET", "/widget/frame", headers={"Referer": origin + "/"},
                                     params={"key": self.bot_key, "visitor": "v_" + uuid.uuid4().hex[:22],
                                             "origin": origin})
            match = CONFIG.search(frame.text) if frame is not None else None
            if match is None:
                await self.pause(2)
                continue
            config = json.loads(match.group(1))
            try:
                await self._chat(f"{config['ws_url']}?token={config['token']}", rng)
            except (OSError, websockets.WebSocketException, asyncio.TimeoutError) as exc:
                self._error(f"widget {type(exc).__name__}")
                await self.pause(2)

    async def _chat(self, url: str, rng: random.Random) -> None:
        conversation_id = None
        async with websockets.connect(url, compression=None, ping_interval=None, open_timeout=10) as ws:
            for _ in range(rng.randint(3, 6)):
                if self.stop.is_set():
                    return
                client_id, began = uuid.uuid4().hex, time.monotonic()
                await ws.send(json.dumps({"event": "message:send", "data": {
                    "client_id": client_id, "conversation_id": conversation_id,
                    "content": rng.choice(("Where is my parcel?", "How do I get a refund?", "Can I change my"
                                           " billing address?")), "attachments": []}}))
                while True:
                    frame = json.loads(await asyncio.wait_for(ws.recv(), 30))
                    data = frame.get("data") or {}
                    if frame.get("event") == "message:ack" and data.get("client_id") == client_id:
                        self.samples.append(Sample("widget message ack", began, time.monotonic(), True))
                        conversation_id = data.get("conversation_id") or conversation_id
                        break
                    if frame.get("event") == "error":
                        self.samples.append(Sample("widget message ack", began, time.monotonic(), False))
                        self._error(f"widget error {data.get('code')}")
                        break
                await self.pause(rng.uniform(2, 5))


# --- the run -----------------------------------------------------------------------------------------------
async def run_backup(data_dir: Path, archive: Path) -> tuple[float, float, dict[str, float]]:
    """``chatsupport backup --to archive`` as a subprocess; (start, end) on the monotonic clock and the time
    from start to each of its progress phases."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "chatsupport", "backup", "--to", str(archive), env=_env(data_dir), cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    began, phases = time.monotonic(), {}
    assert process.stderr is not None and process.stdout is not None
    stderr_lines = []
    async for raw in process.stderr:
        line = raw.decode().strip()
        stderr_lines.append(line)
        phase = line.removeprefix("… ").split(" ")[0]
        if phase and phase not in phases:
            phases[phase] = time.monotonic() - began
    await process.wait()
    ended = time.monotonic()
    if process.returncode != 0:
        raise RuntimeError(f"chatsupport backup failed ({process.returncode}): {' | '.join(stderr_lines)}")
    phases["done"] = ended - began
    return began, ended, phases


def latency(samples: list[Sample], errors: int) -> dict[str, Any]:
    ms = [s.ms for s in samples]
    return {"count": len(ms), "errors": errors, "p50_ms": pct(ms, 50), "p95_ms": pct(ms, 95),
            "p99_ms": pct(ms, 99), "max_ms": max(ms, default=float("nan"))}


def split(samples: list[Sample], began: float, ended: float) -> tuple[list[Sample], list[Sample]]:
    """A request that overlapped the backup at all counts as during it."""
    during = [s for s in samples if s.began < ended and s.ended > began]
    return during, [s for s in samples if not (s.began < ended and s.ended > began)]


async def bench_bot_key(api: httpx.AsyncClient, base: str, headers: dict[str, str]) -> str:
    """The widget visitors' chatbot: made on first use, found again on a reused data dir."""
    made = await api.post(base + "/api/v1/chatbots", headers=headers, json={
        "name": BOT_NAME, "behavior_settings": {"response_delay": 0}})
    if made.status_code == 201:
        return str(made.json()["public_key"])
    listing = await api.get(base + "/api/v1/chatbots", headers=headers, params={"limit": 100})
    listing.raise_for_status()
    found = [bot for bot in listing.json()["data"] if bot["name"] == BOT_NAME]
    if not found:
        raise RuntimeError(f"could not create the bench chatbot: {made.status_code} {made.text}")
    return str(found[0]["public_key"])


async def drive(server: Server, args: argparse.Namespace, archive: Path) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=100)) as api:
        token = await api.post(server.url + "/api/v1/auth/login", json={"email": OWNER, "password": PASSWORD})
        token.raise_for_status()
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        traffic = Traffic(server.url, headers, await bench_bot_key(api, server.url, headers))
        rng = random.Random(args.seed)
        tasks = [asyncio.create_task(traffic.api_reader(api, random.Random(rng.random())))
                 for _ in range(args.api_clients)]
        tasks += [asyncio.create_task(traffic.console(random.Random(rng.random()))) for _ in range(args.consoles)]
        tasks += [asyncio.create_task(traffic.writer(api, random.Random(rng.random()))) for _ in range(args.writers)]
        tasks += [asyncio.create_task(traffic.visitor(api, random.Random(rng.random())))
                  for _ in range(args.visitors)]
        print(f"traffic for {args.before:.0f} s before the backup…", file=sys.stderr, flush=True)
        await traffic.pause(args.before)
        print("running chatsupport backup…", file=sys.stderr, flush=True)
        began, ended, phases = await run_backup(server.data_dir, archive)
        print(f"backup done in {ended - began:.1f} s; traffic for {args.after:.0f} s more…", file=sys.stderr,
              flush=True)
        await traffic.pause(args.after)
        traffic.stop.set()
        await asyncio.wait(tasks, timeout=60)
        failed = [t.exception() for t in tasks if t.done() and not t.cancelled() and t.exception()]
        if failed:
            raise failed[0]  # type: ignore[misc]
    during, outside = split(traffic.samples, began, ended)
    kinds = sorted({s.kind for s in traffic.samples})
    return {
        "backup": {"seconds": ended - began, "phases_s": phases, "archive_mb": archive.stat().st_size / 1e6},
        "during_backup": latency(during, sum(not s.ok for s in during)),
        "outside_backup": latency(outside, sum(not s.ok for s in outside)),
        "writes_during_backup": sum(s.ok for s in during if s.kind in ("api add note", "widget message ack")),
        "per_kind": {kind: {"during": latency([s for s in during if s.kind == kind],
                                              sum(not s.ok for s in during if s.kind == kind)),
                            "outside": latency([s for s in outside if s.kind == kind],
                                               sum(not s.ok for s in outside if s.kind == kind))}
                     for kind in kinds},
        "errors": traffic.errors,
    }


def report(results: dict[str, Any]) -> bool:
    backup, during, outside = results["backup"], results["during_backup"], results["outside_backup"]
    db = results["database"]
    origin = ", reused" if db["reused"] else (f", {db['padding_mb']:.0f} MB of it padding" if db["padding_mb"] else "")
    print(f"\ndatabase {db['mb']:.0f} MB ({db['conversations']:,} conversations, {db['messages']:,} messages"
          f"{origin})")
    phases = ", ".join(f"{name} +{at:.1f} s" for name, at in backup["phases_s"].items())
    print(f"backup: {backup['seconds']:.1f} s (CLI progress lines: {phases}); archive {backup['archive_mb']:.0f} MB")
    print(f"\n{'requests':<26}{'count':>7}{'errors':>7}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for label, row in (("during backup", during), ("outside backup", outside)):
        print(f"{label:<26}{row['count']:>7}{row['errors']:>7}{row['p50_ms']:>9.0f}{row['p95_ms']:>9.0f}"
              f"{row['p99_ms']:>9.0f}{row['max_ms']:>9.0f}")
    print("\nduring backup, per kind:")
    for kind, rows in results["per_kind"].items():
        row = rows["during"]
        if row["count"]:
            print(f"  {kind:<24}{row['count']:>7}{row['errors']:>7}{row['p50_ms']:>9.0f}{row['p95_ms']:>9.0f}"
                  f"{row['p99_ms']:>9.0f}{row['max_ms']:>9.0f}")
    if results["errors"]:
        print(f"errors: {results['errors']}")
    passed = (during["count"] > 0 and during["max_ms"] <= TARGET_MAX_MS and during["errors"] == 0
              and results["writes_during_backup"] > 0)
    print(f"\nno request over {TARGET_MAX_MS:.0f} ms during the backup (max {during['max_ms']:.0f} ms, "
          f"{during['errors']} errors, {results['writes_during_backup']} writes during it): "
          f"{'PASS' if passed else 'FAIL'}")
    return passed


def counts(data_dir: Path) -> dict[str, Any]:
    from chatsupport.store.db import connect

    conn = connect(data_dir / "chatsupport.db", readonly=True)
    try:
        row = conn.execute("SELECT (SELECT count(*) FROM conversations) AS c, (SELECT count(*) FROM messages) AS m"
                           ).fetchone()
    finally:
        conn.close()
    return {"conversations": row["c"], "messages": row["m"],
            "mb": (data_dir / "chatsupport.db").stat().st_size / 1e6}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-gb", type=float, default=1.0, help="database size to generate")
    parser.add_argument("--data-dir", type=Path, help="reuse its chatsupport.db, or generate into it (kept)")
    parser.add_argument("--api-clients", type=int, default=4)
    parser.add_argument("--consoles", type=int, default=2)
    parser.add_argument("--writers", type=int, default=2)
    parser.add_argument("--visitors", type=int, default=2)
    parser.add_argument("--before", type=float, default=30, help="seconds of traffic before the backup starts")
    parser.add_argument("--after", type=float, default=30, help="seconds of traffic after it ends")
    parser.add_argument("--seed", type=int, default=7)
    add_quick_flag(parser, "0.2 GB, 10 s of traffic before and after the backup")
    args = parser.parse_args()
    if args.quick:
        args.size_gb, args.before, args.after = 0.2, 10, 10
    scratch = Path(tempfile.mkdtemp(prefix="backup-under-load-"))
    data_dir = (args.data_dir or scratch / "data").resolve()
    server: Server | None = None
    try:
        made = build_database(data_dir, args.size_gb, args.seed)
        ensure_owner(data_dir)
        database = {**made, **counts(data_dir)}
        server = Server(data_dir)
        server.log = scratch / "server.log"
        server.start()
        results = {"database": database, **asyncio.run(drive(server, args, scratch / "archive.tar.gz"))}
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    passed = report(results)
    write_results("backup_under_load", args, {
        **results, "size_gb": args.size_gb, "clients": {"api": args.api_clients, "consoles": args.consoles,
                                                        "writers": args.writers, "visitors": args.visitors},
        "target_max_ms": TARGET_MAX_MS, "passed": passed})
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
