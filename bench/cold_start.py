"""Benchmark: cold start to ready, and idle memory with the embedder loaded, of the real server.

Usage: PYTHONPATH=. .venv/bin/python bench/cold_start.py [--runs 5] [--idle 10] [--quick]

Each run starts ``chatsupport serve`` as a subprocess on 127.0.0.1 twice: first on a fresh, empty data dir
(migrations from nothing, a new instance secret), then again on the same, now existing, data dir (a restart).
It times spawn → ``/readyz`` answering 200 (readiness includes the embedder, so this is the time until the
first widget answer could be served), lets the server sit idle for --idle seconds, then reads its resident
memory (VmRSS of the server process plus any children it started), and stops it with SIGTERM.

The embedding model's one-time ONNX export is shared (the default model cache, as after install or in the Docker
image): one untimed warm-up start makes it if missing and warms the OS file cache, so every timed start is a
process start on warm disks, which is what a restart or an upgrade is. Targets (issue 10): cold start ≤ 10 s,
idle RSS ≤ 600 MB. --quick: 3 runs. Writes docs/bench-results/cold_start.json.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from crash_support import _env, free_port  # noqa: E402
from quick import add_quick_flag, write_results  # noqa: E402

TARGET_READY_S = 10.0
TARGET_RSS_MB = 600.0


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (the server forks none today; a future worker would count)."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # exited while we looked
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        queue += parents.get(current, [])
    return found


def rss_mb(pid: int) -> float:
    total_kib = 0
    for member in descendants(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        total_kib += next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
    return total_kib / 1024


def start_once(data_dir: Path, idle: float, timeout: float = 120) -> dict[str, float]:
    """Spawn → /readyz 200 in seconds, then the RSS after ``idle`` seconds of no traffic."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/readyz"
    log = (data_dir.parent / f"{data_dir.name}-server.log").open("ab")
    began = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "chatsupport", "serve", "--port", str(port)],
                               env=_env(data_dir, BASE_URL=f"http://127.0.0.1:{port}"),
                               stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        with httpx.Client(timeout=2) as client:
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"server exited with {process.returncode}; see {log.name}")
                if time.perf_counter() - began > timeout:
                    raise TimeoutError(f"/readyz not 200 after {timeout:.0f} s; see {log.name}")
                try:
                    if client.get(url).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.02)
        ready = time.perf_counter() - began
        at_ready = rss_mb(process.pid)
        time.sleep(idle)
        return {"ready_s": ready, "rss_at_ready_mb": at_ready, "idle_rss_mb": rss_mb(process.pid)}
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def summarize(samples: list[dict[str, float]]) -> dict[str, float]:
    ready = [s["ready_s"] for s in samples]
    rss = [s["idle_rss_mb"] for s in samples]
    return {"ready_median_s": statistics.median(ready), "ready_max_s": max(ready),
            "idle_rss_median_mb": statistics.median(rss), "idle_rss_max_mb": max(rss)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="fresh starts and restarts, each")
    parser.add_argument("--idle", type=float, default=10, help="seconds idle after ready before reading RSS")
    add_quick_flag(parser, "3 runs")
    args = parser.parse_args()
    runs = 3 if args.quick else args.runs
    with tempfile.TemporaryDirectory(prefix="cold-start-") as tmp:
        warmup = start_once(Path(tmp) / "warmup", idle=0)
        print(f"warm-up start (untimed): ready in {warmup['ready_s']:.2f} s")
        fresh, restart = [], []
        for number in range(runs):
            data_dir = Path(tmp) / f"run-{number}"
            fresh.append(start_once(data_dir, args.idle))
            restart.append(start_once(data_dir, args.idle))
            print(f"run {number + 1}/{runs}: fresh {fresh[-1]['ready_s']:.2f} s, {fresh[-1]['idle_rss_mb']:.0f} MB;"
                  f" restart {restart[-1]['ready_s']:.2f} s, {restart[-1]['idle_rss_mb']:.0f} MB", flush=True)
    every = summarize(fresh + restart)
    passed = {"cold_start": every["ready_max_s"] <= TARGET_READY_S,
              "idle_rss": every["idle_rss_median_mb"] <= TARGET_RSS_MB}
    print(f"\n{'':<22}{'median s':>10}{'max s':>8}{'idle RSS MB (median)':>22}{'max MB':>8}")
    for name, rows in (("fresh data dir", fresh), ("restart (existing)", restart), ("all", fresh + restart)):
        line = summarize(rows)
        print(f"{name:<22}{line['ready_median_s']:>10.2f}{line['ready_max_s']:>8.2f}"
              f"{line['idle_rss_median_mb']:>22.0f}{line['idle_rss_max_mb']:>8.0f}")
    print(f"\ncold start: max {every['ready_max_s']:.2f} s (target ≤ {TARGET_READY_S:.0f} s)"
          f" {'PASS' if passed['cold_start'] else 'FAIL'}")
    print(f"idle RSS after {args.idle:.0f} s: median {every['idle_rss_median_mb']:.0f} MB"
          f" (target ≤ {TARGET_RSS_MB:.0f} MB) {'PASS' if passed['idle_rss'] else 'FAIL'}")
    write_results("cold_start", args, {
        "runs": runs, "idle_s": args.idle, "warmup": warmup, "fresh": fresh, "restart": restart,
        "summary": {"fresh": summarize(fresh), "restart": summarize(restart), "all": every},
        "targets": {"ready_s": TARGET_READY_S, "idle_rss_mb": TARGET_RSS_MB}, "passed": passed})
    return 0 if all(passed.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
