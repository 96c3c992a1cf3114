"""Benchmark: cold start and memory of the embedder (ONNX vs sentence-transformers) and of the whole server.

Usage: PYTHONPATH=. .venv/bin/python bench/embedder_startup.py [--runs 3] [--model-cache data/model-cache]
Each measurement is a fresh process: time from interpreter start to the first vector, and peak RSS. The server
line starts ``chatsupport serve`` on a fresh data dir (export already cached) and times it until /readyz is 200,
then reads its resident memory.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from quick import add_quick_flag, write_results

ROOT = Path(__file__).resolve().parents[1]
PROBE = """
import json, resource, sys, time
t0 = time.perf_counter()
if sys.argv[1] == "onnx":
    from pathlib import Path
    from chatsupport.retrieval.embedder import Embedder
    Embedder(cache_dir=Path(sys.argv[2])).encode(["how do I reset my password?"])
else:
    from sentence_transformers import SentenceTransformer
    from chatsupport.retrieval.embedder import bundled_model_path
    SentenceTransformer(str(bundled_model_path()), device="cpu").encode(["how do I reset my password?"])
print(json.dumps({"s": time.perf_counter() - t0, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def probe(kind: str, cache: Path) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", PROBE, kind, str(cache)], capture_output=True, text=True, env=env,
                         check=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    result["wall_s"] = time.perf_counter() - started
    return result


def server(cache: Path) -> dict[str, float]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("CHATSUPPORT_")}, "PYTHONPATH": str(ROOT),
               "CHATSUPPORT_DATA_DIR": tmp, "CHATSUPPORT_MODEL_CACHE_DIR": str(cache), "HF_HUB_OFFLINE": "1"}
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "chatsupport", "serve", "--port", str(port)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
        try:
            while True:
                try:
                    if urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1).status == 200:
                        break
                except OSError:
                    time.sleep(0.05)
            ready = time.perf_counter() - started
            status = Path(f"/proc/{proc.pid}/status").read_text()
            rss = int(next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1]) / 1024
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return {"wall_s": ready, "rss_mb": rss}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--model-cache", default="data/model-cache")
    add_quick_flag(parser, "1 run of each variant")
    args = parser.parse_args()
    if args.quick:
        args.runs = 1
    cache = Path(args.model_cache).resolve()
    probe("onnx", cache)  # makes the export if missing, warms the page cache
    print(f"{'variant':<40} {'first vector s':>14} {'peak RSS MB':>12}")
    rows = {}
    for name, run in (("embedder, ONNX (this product)", lambda: probe("onnx", cache)),
                      ("embedder, sentence-transformers (torch)", lambda: probe("st", cache)),
                      ("server: serve → /readyz 200 (ONNX)", lambda: server(cache))):
        results = [run() for _ in range(args.runs)]
        rows[name] = {"wall_s": statistics.median(r["wall_s"] for r in results),
                      "rss_mb": statistics.median(r["rss_mb"] for r in results)}
        print(f"{name:<40} {rows[name]['wall_s']:>14.2f} {rows[name]['rss_mb']:>12.0f}")
    write_results("embedder_startup", args, {"runs": args.runs, "variants": rows})


if __name__ == "__main__":
    main()
