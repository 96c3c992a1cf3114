"""Crash scenarios shared by tests/test_crash_safety.py (a few kills) and bench/crash_soak.py (20 runs each).

Each scenario runs the real ``chatsupport serve`` (or ``chatsupport backup``) as a subprocess on 127.0.0.1 over a
temp data dir, sends it work, SIGKILLs it at a seeded random moment, restarts it and checks what survived against
what the client was told. Nothing here imports the app into the client process except to read the database file
and to verify archives, exactly as an operator would after a power cut.
"""

from __future__ import annotations

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

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "Crash#Test#123"
OWNER = "owner@crash.example"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
CONFIG = re.compile(r'<script type="application/json" id="cs-config">(.*?)</script>', re.S)


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    from chatsupport.retrieval.embedder import DEFAULT_CACHE

    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATSUPPORT_")}
    env.update({"CHATSUPPORT_DATA_DIR": str(data_dir), "CHATSUPPORT_MODELS_DIR": str(data_dir.parent / "models"),
                "CHATSUPPORT_MODEL_CACHE_DIR": str(DEFAULT_CACHE), "CHATSUPPORT_ARGON2_MEMORY_KIB": "1024",
                "CHATSUPPORT_WIDGET_IP_LIMIT": "0", "CHATSUPPORT_LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT),
                "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    env.update({f"CHATSUPPORT_{k}": v for k, v in extra.items()})
    return env


def cli(data_dir: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "chatsupport", *args], env=_env(data_dir), capture_output=True,
                          text=True, input=stdin, timeout=300, cwd=ROOT)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """``chatsupport serve`` on one fixed port across restarts, so widget configs stay valid."""

    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.log = data_dir.parent / "server.log"

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "chatsupport", "serve", "--port", str(self.port)],
                env=_env(self.data_dir, BASE_URL=self.url), stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        self.wait_ready()

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"server not ready after {timeout}s")

    def kill(self) -> None:
        """SIGKILL: no shutdown hook, no flush, no lock release — a power cut as far as the process knows."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Instance:
    """A data dir with an owner and one chatbot, plus the server that serves it."""

    data_dir: Path
    server: Server = field(init=False)
    headers: dict[str, str] = field(default_factory=dict)
    bot: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        made = cli(self.data_dir, "create-admin", "--email", OWNER, "--workspace", "Crash Co", "--password-stdin",
                   stdin=PASSWORD + "\n")
        assert made.returncode == 0, made.stderr
        self.server = Server(self.data_dir)
        self.server.start()
        token = httpx.post(self.server.url + "/api/v1/auth/login", json={"email": OWNER, "password": PASSWORD})
        assert token.status_code == 200, token.text
        self.headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        bot = httpx.post(self.server.url + "/api/v1/chatbots", headers=self.headers,
                         json={"name": "Crash Bot", "behavior_settings": {"response_delay": 0}})
        assert bot.status_code == 201, bot.text
        self.bot = bot.json()

    def login(self) -> None:
        token = httpx.post(self.server.url + "/api/v1/auth/login", json={"email": OWNER, "password": PASSWORD})
        assert token.status_code == 200, token.text
        self.headers = {"Authorization": f"Bearer {token.json()['access_token']}"}

    def query(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        """Read the database file directly (the way an operator would after a crash)."""
        from chatsupport.store.db import connect

        conn = connect(self.data_dir / "chatsupport.db")
        try:
            return [dict(row) for row in conn.execute(sql, params)]
        finally:
            conn.close()


# --- (a) widget messages ----------------------------------------------------------------------------------
class Visitor:
    """One widget tab: first message waits for its conversation, the rest go out without waiting for acks."""

    def __init__(self, instance: Instance, rng: random.Random):
        self.instance, self.rng = instance, rng
        self.visitor_id = "v_" + uuid.uuid4().hex[:22]
        self.config: dict[str, Any] = {}
        self.conversation_id: str | None = None
        self.sent: dict[str, str] = {}   # client_id → content, in sending order
        self.acked: dict[str, str] = {}  # client_id → message_id
        self.all_sent = False

    def load_frame(self) -> None:
        origin = "https://shop.example"
        response = httpx.get(self.instance.server.url + "/widget/frame", headers={"Referer": origin + "/"},
                             params={"key": self.instance.bot["public_key"], "visitor": self.visitor_id,
                                     "origin": origin})
        response.raise_for_status()
        match = CONFIG.search(response.text)
        assert match, "no cs-config in the frame"
        self.config = json.loads(match.group(1))

    def _url(self) -> str:
        return f"{self.config['ws_url']}?token={self.config['token']}"

    async def _send(self, ws: Any, client_id: str) -> None:
        await ws.send(json.dumps({"event": "message:send", "data": {
            "client_id": client_id, "conversation_id": self.conversation_id, "content": self.sent[client_id],
            "attachments": []}}))

    def _read(self, frame: dict[str, Any]) -> None:
        data = frame.get("data") or {}
        if frame.get("event") == "message:ack" and data.get("client_id") in self.sent:
            self.acked[data["client_id"]] = data["message_id"]
            self.conversation_id = data.get("conversation_id") or self.conversation_id

    async def burst(self, messages: int) -> None:
        """Send until the server dies (the connection drops) or every message is acked."""
        try:
            async with websockets.connect(self._url(), open_timeout=10, ping_interval=None) as ws:
                reader = asyncio.ensure_future(self._listen(ws))
                for number in range(messages):
                    client_id = uuid.uuid4().hex
                    self.sent[client_id] = f"Question {number} from {self.visitor_id}: where is my order?"
                    await self._send(ws, client_id)
                    if number == 0:
                        while client_id not in self.acked and not reader.done():
                            await asyncio.sleep(0.005)
                    await asyncio.sleep(self.rng.uniform(0, 0.03))
                self.all_sent = True
                await asyncio.wait_for(reader, 10)
        except (OSError, websockets.WebSocketException, asyncio.TimeoutError):
            pass

    async def _listen(self, ws: Any) -> None:
        try:
            async for raw in ws:
                self._read(json.loads(raw))
                if self.all_sent and len(self.acked) == len(self.sent):
                    return
        except websockets.WebSocketException:
            return  # the server died: what was acked so far is what counts

    async def resend_unacked(self) -> None:
        """What the widget does after a reconnect: resend what was never acked, under the same client ids."""
        missing = [c for c in self.sent if c not in self.acked]
        if not missing:
            return
        async with websockets.connect(self._url(), open_timeout=10, ping_interval=None) as ws:
            for client_id in missing:
                if self.conversation_id is None and client_id != next(iter(self.sent)):
                    await self._wait_for(ws, next(iter(self.sent)))
                await self._send(ws, client_id)
                await self._wait_for(ws, client_id)

    async def _wait_for(self, ws: Any, client_id: str) -> None:
        while client_id not in self.acked:
            self._read(json.loads(await asyncio.wait_for(ws.recv(), 15)))


@dataclass
class MessageRun:
    sent: int
    acked_before_kill: int
    lost: list[str]
    duplicated: list[str]
    kill_after: float


def widget_run(instance: Instance, rng: random.Random, visitors: int = 8, messages: int = 8) -> MessageRun:
    """One SIGKILL during a burst; restart; every acked message must be in the database exactly once, and after
    the visitors resend what was not acked, every message sent must be there exactly once."""
    crowd = [Visitor(instance, rng) for _ in range(visitors)]
    for visitor in crowd:
        visitor.load_frame()
    kill_after = rng.uniform(0.05, 0.8)

    async def burst_then_kill() -> None:
        tasks = [asyncio.ensure_future(v.burst(messages)) for v in crowd]
        await asyncio.sleep(kill_after)
        instance.server.kill()
        await asyncio.gather(*tasks)

    asyncio.run(burst_then_kill())
    acked = {c: m for v in crowd for c, m in v.acked.items()}
    instance.server.start()
    stored = _messages_by_client_id(instance, [c for v in crowd for c in v.sent])
    lost = [c for c, message_id in acked.items() if message_id not in stored.get(c, [])]

    async def resend() -> None:
        await asyncio.gather(*(v.resend_unacked() for v in crowd))

    asyncio.run(resend())
    stored = _messages_by_client_id(instance, [c for v in crowd for c in v.sent])
    lost += [c for v in crowd for c in v.sent if c not in stored]
    duplicated = [c for c, ids in stored.items() if len(ids) > 1]
    return MessageRun(sum(len(v.sent) for v in crowd), len(acked), lost, duplicated, kill_after)


def _messages_by_client_id(instance: Instance, client_ids: list[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for start in range(0, len(client_ids), 500):
        batch = client_ids[start:start + 500]
        rows = instance.query(f"SELECT id, client_message_id FROM messages WHERE client_message_id IN "
                              f"({','.join('?' * len(batch))})", *batch)
        for row in rows:
            found.setdefault(row["client_message_id"], []).append(row["id"])
    return found


# --- (b) ingestion ----------------------------------------------------------------------------------------
def handbook(paragraphs: int, seed: int) -> bytes:
    """A Markdown handbook long enough that embedding it takes a few seconds on a small CPU."""
    rng = random.Random(seed)
    words = ("refund order shipping parcel invoice warranty account password delivery courier exchange "
             "voucher subscription billing address tracking return policy store support receipt").split()
    parts = [f"# Handbook {seed}\n"]
    for number in range(paragraphs):
        body = " ".join(rng.choice(words) for _ in range(rng.randint(60, 140)))
        parts.append(f"## Section {number}\n\n{body.capitalize()}.\n")
    return "\n".join(parts).encode()


def upload(instance: Instance, name: str, content: bytes) -> dict[str, Any]:
    response = httpx.post(instance.server.url + "/api/v1/knowledge-base/documents", headers=instance.headers,
                          data={"chatbot_id": instance.bot["id"]}, files={"file": (name, content, "text/markdown")},
                          timeout=30)
    assert response.status_code == 201, response.text
    return dict(response.json())


def index_problems(instance: Instance) -> list[str]:
    """Every way the index could disagree with the documents' statuses; empty when consistent."""
    problems = []
    for doc in instance.query("SELECT d.id, d.status, d.chunk_count, count(c.rowid) AS chunks, "
                              "count(DISTINCT c.position) AS positions FROM knowledge_documents d "
                              "LEFT JOIN knowledge_chunks c ON c.document_id = d.id GROUP BY d.id"):
        if doc["status"] != "completed" and doc["chunks"]:
            problems.append(f"{doc['id']} is {doc['status']} but has {doc['chunks']} chunks visible")
        if doc["status"] == "completed" and doc["chunks"] != doc["chunk_count"]:
            problems.append(f"{doc['id']} says {doc['chunk_count']} chunks, the index holds {doc['chunks']}")
        if doc["chunks"] != doc["positions"]:
            problems.append(f"{doc['id']} has duplicate chunks ({doc['chunks']} rows, {doc['positions']} positions)")
    for table in ("knowledge_chunk_vectors", "knowledge_chunk_bits", "knowledge_chunk_floats"):
        orphans = instance.query(f"SELECT count(*) AS n FROM {table} WHERE chunk_rowid NOT IN "
                                 "(SELECT rowid FROM knowledge_chunks)")[0]["n"]
        missing = instance.query(f"SELECT count(*) AS n FROM knowledge_chunks WHERE rowid NOT IN "
                                 f"(SELECT chunk_rowid FROM {table})")[0]["n"]
        if orphans or missing:
            problems.append(f"{table}: {orphans} vectors without a chunk, {missing} chunks without a vector")
    try:
        instance.query("INSERT INTO knowledge_chunks_fts(knowledge_chunks_fts) VALUES ('integrity-check')")
    except Exception as exc:  # noqa: BLE001 - apsw raises CorruptError; any error is the finding
        problems.append(f"FTS index disagrees with the chunks: {exc}")
    return problems


def wait_settled(instance: Instance, document_id: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        doc = httpx.get(f"{instance.server.url}/api/v1/knowledge-base/documents/{document_id}",
                        headers=instance.headers).json()
        if doc["status"] in ("completed", "failed"):
            return dict(doc)
        time.sleep(0.2)
    raise TimeoutError(f"document {document_id} did not settle")


@dataclass
class IngestRun:
    status_at_kill: str
    final_status: str
    problems: list[str]
    kill_after: float


def ingest_run(instance: Instance, rng: random.Random, paragraphs: int = 60) -> IngestRun:
    """Upload, SIGKILL at a random point of its progress (extracting … embedding … the swap), check the index,
    restart, let it resume (or retry it when it was failed for retry), check again."""
    doc = upload(instance, f"handbook-{rng.randrange(10**6)}.md", handbook(paragraphs, rng.randrange(10**6)))
    target = rng.uniform(0, 95)
    began = time.monotonic()
    while time.monotonic() - began < 60:
        row = instance.query("SELECT status, progress FROM knowledge_documents WHERE id = ?", doc["id"])[0]
        if row["status"] != "pending" and (row["status"] != "processing" or row["progress"] >= target):
            break
        time.sleep(0.01)
    instance.server.kill()
    kill_after = time.monotonic() - began
    at_kill = instance.query("SELECT status FROM knowledge_documents WHERE id = ?", doc["id"])[0]["status"]
    problems = [f"after the kill: {p}" for p in index_problems(instance)]
    instance.server.start()
    settled = wait_settled(instance, doc["id"])
    if settled["status"] == "failed":
        retried = httpx.post(f"{instance.server.url}/api/v1/knowledge-base/documents/{doc['id']}/retry",
                             headers=instance.headers)
        assert retried.status_code in (200, 202), retried.text
        settled = wait_settled(instance, doc["id"])
    problems += [f"after the restart: {p}" for p in index_problems(instance)]
    return IngestRun(at_kill, settled["status"], problems, kill_after)


# --- (c) backups ------------------------------------------------------------------------------------------
def fill_uploads(data_dir: Path, megabytes: int, seed: int) -> None:
    """Incompressible upload files, so archiving takes long enough to be killed half-way."""
    folder = data_dir / "uploads" / "crash-fill"
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    for number in range(megabytes):
        (folder / f"blob-{number}.bin").write_bytes(rng.randbytes(1 << 20))


@dataclass
class BackupRun:
    completed: bool
    listed: list[str]
    problems: list[str]
    kill_after: float


def backup_run(instance: Instance, rng: random.Random, previous: Path, typical_seconds: float) -> BackupRun:
    """``chatsupport backup`` SIGKILLed at a random moment while the server keeps serving: the previous archive
    still verifies, nothing partial is listed, and whatever is listed verifies."""
    env = _env(instance.data_dir)
    process = subprocess.Popen([sys.executable, "-m", "chatsupport", "backup"], env=env, cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    kill_after = rng.uniform(0.2, typical_seconds * 1.1)
    time.sleep(kill_after)
    process.send_signal(signal.SIGKILL)
    process.wait()
    listed, problems = archive_problems(instance, previous)
    return BackupRun(process.returncode == 0, listed, problems, kill_after)


def server_backup_run(instance: Instance, rng: random.Random, previous: Path, typical_seconds: float) -> BackupRun:
    """The console's "Back up now" (a job inside the server), and the server SIGKILLed while it runs."""
    with httpx.Client(base_url=instance.server.url, timeout=30) as browser:
        token = CSRF.search(browser.get("/login").text)
        assert token, "no CSRF token on the login page"
        browser.post("/login", data={"csrf_token": token.group(1), "email": OWNER, "password": PASSWORD})
        token = CSRF.search(browser.get("/settings/instance").text)
        assert token, "no CSRF token on the instance page"
        started = browser.post("/settings/instance/backups", data={"csrf_token": token.group(1)})
        assert started.status_code in (200, 303), started.text
    kill_after = rng.uniform(0.0, typical_seconds)
    time.sleep(kill_after)
    before = {p.name for p in (instance.data_dir / "backups").glob("*.tar.gz")}
    instance.server.kill()
    completed = {p.name for p in (instance.data_dir / "backups").glob("*.tar.gz")} != before
    instance.server.start()
    listed, problems = archive_problems(instance, previous)
    return BackupRun(completed, listed, problems, kill_after)


def archive_problems(instance: Instance, previous: Path) -> tuple[list[str], list[str]]:
    """What ``backup --list`` shows, and what is wrong with it: the previous archive missing, anything partial
    listed, or a listed archive that does not verify."""
    from chatsupport.domain.backups import verify_backup

    listing = cli(instance.data_dir, "backup", "--list")
    listed = [line.split("\t")[0] for line in listing.stdout.splitlines() if line.strip()]
    problems = []
    if listing.returncode != 0:
        problems.append(f"backup --list failed: {listing.stderr}")
    if str(previous) not in listed:
        problems.append(f"the previous archive {previous} is no longer listed")
    for path in listed:
        if not path.endswith(".tar.gz"):
            problems.append(f"a partial archive is listed: {path}")
        staging = instance.data_dir.parent / f"verify-{uuid.uuid4().hex}"
        staging.mkdir()
        try:
            verify_backup(Path(path), staging)
        except Exception as exc:  # noqa: BLE001 - AppError(backup_corrupt/invalid) is the finding
            problems.append(f"listed archive {path} does not verify: {exc}")
    return listed, problems
