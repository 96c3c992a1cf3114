"""Benchmark: while a large ingestion runs, /healthz and an authenticated list request answer in under 100 ms.

Usage: PYTHONPATH=. .venv/bin/python bench/responsiveness.py [--limit 150] [--corpus DIR]

Starts the real server (``python -m chatsupport serve`` on 127.0.0.1, job consumer in-process, as shipped) in a
fresh data dir, creates an owner with ``create-admin`` and logs in through the API. A sampler thread then asks
``GET /healthz`` and ``GET /api/v1/knowledge-base/documents?chatbot_id=…`` (Bearer token) every 100 ms, each on
its own keep-alive connection, while the main thread uploads corpus B files through the API and waits until every
document is completed or failed. Samples taken while at least one document was pending or processing count as
"during ingestion"; p50 / p95 / max are printed for each endpoint, plus a baseline taken before any upload.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from chatsupport.retrieval.evaluation import corpus_files
from quick import add_quick_flag, write_results

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "Bench#12345"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def env_for(data_dir: Path, model_cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATSUPPORT_")}
    env.update({"CHATSUPPORT_DATA_DIR": str(data_dir), "CHATSUPPORT_MODEL_CACHE_DIR": str(model_cache),
                "CHATSUPPORT_ARGON2_MEMORY_KIB": "1024", "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1",
                "TRANSFORMERS_OFFLINE": "1", "CHATSUPPORT_LOG_LEVEL": "WARNING"})
    return env


class Sampler(threading.Thread):
    """Every ``interval`` seconds: one timed GET per endpoint; records (t, endpoint, ms, status, busy)."""

    def __init__(self, base: str, token: str, chatbot_id: str, interval: float = 0.1):
        super().__init__(daemon=True)
        self.base, self.interval = base, interval
        self.targets = {"/healthz": ({}, {}),
                        "documents list": ({"Authorization": f"Bearer {token}"},
                                           {"chatbot_id": chatbot_id, "limit": 50})}
        self.samples: list[tuple[float, str, float, int, bool]] = []
        self.busy = False
        self.stop = threading.Event()

    def run(self) -> None:
        clients = {name: httpx.Client(base_url=self.base, timeout=10) for name in self.targets}
        paths = {"/healthz": "/healthz", "documents list": "/api/v1/knowledge-base/documents"}
        next_at = time.perf_counter()
        while not self.stop.is_set():
            for name, (headers, params) in self.targets.items():
                busy = self.busy
                started = time.perf_counter()
                response = clients[name].get(paths[name], headers=headers, params=params)
                ms = (time.perf_counter() - started) * 1000
                self.samples.append((started, name, ms, response.status_code, busy))
            next_at += self.interval
            time.sleep(max(0.0, next_at - time.perf_counter()))
        for client in clients.values():
            client.close()


def stats(values: list[float]) -> str:
    if not values:
        return "no samples"
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    under = sum(1 for v in values if v < 100) / len(values)
    return (f"n={len(values):>5}  p50 {statistics.median(values):6.1f} ms  p95 {p95:6.1f} ms  "
            f"max {ordered[-1]:7.1f} ms  <100 ms: {under:.1%}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", default="/work/shared/corpora/B-huggingface-hub-docs")
    parser.add_argument("--limit", type=int, default=150, help="files to upload (0: all)")
    parser.add_argument("--model-cache", default="data/model-cache")
    add_quick_flag(parser, "20 files")
    args = parser.parse_args()
    if args.quick:
        args.limit = 20
    files = corpus_files(Path(args.corpus))[:args.limit or None]
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        env = env_for(data_dir, Path(args.model_cache).resolve())
        subprocess.run([sys.executable, "-m", "chatsupport", "create-admin", "--email", "bench@example.com",
                        "--workspace", "Bench", "--password", PASSWORD], env=env, check=True, cwd=ROOT,
                       capture_output=True)
        port = free_port()
        log = (Path(tmp) / "server.log").open("w")
        server = subprocess.Popen([sys.executable, "-m", "chatsupport", "serve", "--host", "127.0.0.1", "--port",
                                   str(port)], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            write_results("responsiveness", args, run(base, files))
        finally:
            server.terminate()
            server.wait(timeout=30)
            log.close()


def wait_ready(base: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError("server not ready")


def run(base: str, files: list[Path]) -> dict[str, Any]:
    wait_ready(base)
    api = httpx.Client(base_url=base, timeout=60)
    token = api.post("/api/v1/auth/login", json={"email": "bench@example.com", "password": PASSWORD}).json()[
        "access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    bot = api.post("/api/v1/chatbots", json={"name": "Bench"}, headers=auth).json()
    sampler = Sampler(base, token, bot["id"])
    sampler.start()
    time.sleep(5)  # baseline: idle server
    sampler.busy = True
    started = time.perf_counter()
    ids = []
    for path in files:
        response = api.post("/api/v1/knowledge-base/documents", headers=auth, data={"chatbot_id": bot["id"]},
                            files={"file": (path.name, path.read_bytes())})
        if response.status_code == 201:
            ids.append(response.json()["id"])
    uploaded = time.perf_counter() - started
    while True:
        page = api.get("/api/v1/knowledge-base/documents", headers=auth,
                       params={"chatbot_id": bot["id"], "limit": 200, "page": 1}).json()
        docs = page["data"]
        for number in range(2, page["pagination"]["total_pages"] + 1):
            docs += api.get("/api/v1/knowledge-base/documents", headers=auth,
                            params={"chatbot_id": bot["id"], "limit": 200, "page": number}).json()["data"]
        if all(d["status"] in ("completed", "failed") for d in docs) and len(docs) >= len(ids):
            break
        time.sleep(1)
    ingest = time.perf_counter() - started
    sampler.busy = False
    time.sleep(1)
    sampler.stop.set()
    sampler.join()
    chunks = sum(d.get("chunk_count") or 0 for d in docs)
    failed = sum(1 for d in docs if d["status"] == "failed")
    print(f"uploaded {len(ids)} files in {uploaded:.1f} s; all settled after {ingest:.1f} s "
          f"({chunks} chunks, {failed} failed, {chunks / ingest:.1f} chunks/s)")
    bad = [s for s in sampler.samples if s[3] != 200]
    if bad:
        print(f"non-200 answers: {len(bad)} (first: {bad[0][1]} → {bad[0][3]})")
    summary: dict[str, Any] = {"files": len(ids), "settled_s": ingest, "chunks": chunks, "failed": failed,
                               "non_200": len(bad), "latency": {}}
    for name in sampler.targets:
        idle = [s[2] for s in sampler.samples if s[1] == name and not s[4]]
        busy = [s[2] for s in sampler.samples if s[1] == name and s[4]]
        print(f"{name:<15} idle    {stats(idle)}")
        print(f"{name:<15} ingest  {stats(busy)}")
        summary["latency"][name] = {"idle": stats(idle), "ingest": stats(busy)}
    return summary


if __name__ == "__main__":
    main()
