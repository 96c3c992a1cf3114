"""Hostile and broken uploads against a real server process: each gets a clear 4xx at upload or a failed
document with words a person can act on, and the server's peak memory (its VmHWM) barely moves."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from accounts_support import FAST_HASHING, PASSWORD
from chatsupport.retrieval.embedder import DEFAULT_CACHE
from conftest import ROOT, LiveServer, make_env
from knowledge_support import DOCS, FAQS, docx_bytes, pdf_bytes

OWNER = "owner@uploads.example"
MB = 1024 * 1024
# Extraction, chunking and embedding of a small document cost some memory; parsing a 1 GB zip bomb or holding a
# million CSV rows would cost gigabytes.
PEAK_GROWTH_LIMIT = 150 * MB


class Server:
    def __init__(self, data_dir: Path):
        env = {**FAST_HASHING, "RUN_WORKER": "true", "MODEL_CACHE_DIR": str(DEFAULT_CACHE)}
        created = subprocess.run(
            [sys.executable, "-m", "chatsupport", "create-admin", "--email", OWNER, "--workspace", "Uploads Co",
             "--password-stdin"], input=PASSWORD, text=True, capture_output=True, cwd=ROOT,
            env=make_env(data_dir, **env))
        assert created.returncode == 0, created.stderr
        self.live = LiveServer(data_dir, **env)
        self.live.wait("/readyz", timeout=180)
        self.http = httpx.Client(base_url=self.live.url, timeout=120)
        token = self.http.post("/api/v1/auth/login", json={"email": OWNER, "password": PASSWORD}).json()
        self.http.headers["Authorization"] = f"Bearer {token['access_token']}"
        self.bot_id = self.http.post("/api/v1/chatbots", json={"name": "Uploads"}).json()["id"]

    def memory(self, field: str) -> int:
        """``VmHWM`` (peak resident set since start) or ``VmRSS`` of the server process, in bytes."""
        for line in Path(f"/proc/{self.live.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        raise KeyError(field)

    def upload(self, name: str, content: bytes) -> httpx.Response:
        return self.http.post(DOCS, files={"file": (name, content, "application/octet-stream")},
                              data={"chatbot_id": self.bot_id})

    def settled(self, document_id: str, timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            doc = self.http.get(f"{DOCS}/{document_id}").json()
            if doc["status"] in ("completed", "failed"):
                return doc
            time.sleep(0.2)
        raise TimeoutError(doc)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("malformed") / "data")
    try:
        warm = server.upload("warm-up.txt", b"Opening hours\nWe are open from nine to five on weekdays.\n" * 30)
        assert warm.status_code == 201 and server.settled(warm.json()["id"])["status"] == "completed"
        yield server
    finally:
        server.http.close()
        server.live.stop()


@pytest.fixture(scope="module")
def peak_before(server: Server) -> int:
    return server.memory("VmHWM")


def zip_bomb_docx(unpacked: int = 1024 * MB) -> bytes:
    """A real DOCX whose document.xml unpacks to ``unpacked`` bytes of whitespace (about 1 MB packed)."""
    source = zipfile.ZipFile(io.BytesIO(docx_bytes("Bomb", [("Heading", "Body text.")])))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as bomb:
        for info in source.infolist():
            if info.filename != "word/document.xml":
                bomb.writestr(info, source.read(info))
        xml = source.read("word/document.xml")
        split = xml.index(b"<w:body>") + len(b"<w:body>")
        with bomb.open("word/document.xml", "w", force_zip64=True) as part:
            part.write(xml[:split])
            block = b" " * (16 * MB)
            for _ in range(unpacked // len(block)):
                part.write(block)
            part.write(xml[split:])
    return out.getvalue()


def test_truncated_pdf_fails_with_a_readable_reason(server: Server, peak_before: int) -> None:
    whole = pdf_bytes(["Shipping\n" + "We ship every order within two business days. " * 40,
                       "Refunds\n" + "Refunds are issued within fourteen days. " * 40])
    response = server.upload("handbook.pdf", whole[: len(whole) // 2])
    assert response.status_code == 201, response.text
    doc = server.settled(response.json()["id"])
    assert doc["status"] == "failed"
    assert doc["error_code"] == "extraction_failed" and "damaged" in doc["error_message"]


def test_zip_bomb_docx_is_refused_before_it_is_unpacked(server: Server, peak_before: int) -> None:
    bomb = zip_bomb_docx()
    assert len(bomb) < 5 * MB
    response = server.upload("manual.docx", bomb)
    assert response.status_code == 413, response.text
    error = response.json()["error"]
    assert error["code"] == "too_large" and "unpacks to more than 64 MB" in error["message"]
    assert error["request_id"] == response.headers["x-request-id"]


def test_binary_renamed_txt_is_refused(server: Server, peak_before: int) -> None:
    response = server.upload("notes.txt", os.urandom(256 * 1024))
    assert response.status_code == 415, response.text
    assert "Only PDF, Word (.docx), text, Markdown and HTML" in response.json()["error"]["message"]
    # text for as far as the sniffer looks, binary after it: caught when the whole file is checked
    response = server.upload("notes.txt", b"Plain words to begin with.\n" * 2000 + os.urandom(64 * 1024))
    assert response.status_code == 415, response.text
    assert "not readable text" in response.json()["error"]["message"]


def test_a_declared_1gb_body_is_refused_without_reading_it(server: Server, peak_before: int) -> None:
    port, token = server.live.port, server.http.headers["Authorization"]
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        started = time.monotonic()
        sock.sendall((f"POST {DOCS} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {token}\r\n"
                      "Content-Type: multipart/form-data; boundary=xyz\r\n"
                      f"Content-Length: {1024 * MB}\r\n\r\n--xyz\r\n").encode())
        reply = b""
        while b"\r\n\r\n" not in reply:
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
    assert time.monotonic() - started < 10


def test_a_million_row_csv_is_refused_with_a_clear_reason(server: Server, peak_before: int) -> None:
    csv = b"question,answer\n" + b"q,a\n" * 1_000_000
    assert len(csv) < 5 * MB  # under the CSV size limit: the row count is what must stop it
    response = server.http.post(f"{FAQS}/import", files={"file": ("faqs.csv", csv, "text/csv")},
                                data={"chatbot_id": server.bot_id})
    assert response.status_code == 422, response.text
    assert "more than 5,000 rows" in response.json()["error"]["message"]
    assert server.http.get(FAQS, params={"chatbot_id": server.bot_id}).json()["pagination"]["total"] == 0


def test_memory_stayed_bounded(server: Server, peak_before: int) -> None:
    """Runs last: the peak over every upload above (the bomb alone would add a gigabyte if it were parsed)."""
    growth = server.memory("VmHWM") - peak_before
    assert growth < PEAK_GROWTH_LIMIT, f"peak RSS grew by {growth // MB} MB"
    assert server.http.get("/healthz").status_code == 200
