"""Benchmark: what the one-writer store costs per acknowledged write, and what synchronous=FULL adds.

Usage: .venv/bin/python bench/store_writes.py [--writes 500] [--threads 4]
Runs both variants in one process on the same disk and prints medians (ms) per write, plus throughput.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

from chatsupport.store.db import Database
from chatsupport.store.migrations import migrate
from quick import add_quick_flag, write_results


def run(sync: str, writes: int, threads: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        migrate(path)
        db = Database(path, synchronous=sync)
        latencies: list[float] = []
        lock = threading.Lock()

        def worker(offset: int) -> None:
            for i in range(writes // threads):
                started = time.perf_counter()
                db.execute_write("INSERT INTO instance_state(key, value) VALUES (?, ?)", (f"k{offset}-{i}", "v"))
                with lock:
                    latencies.append((time.perf_counter() - started) * 1000)

        began = time.perf_counter()
        pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        elapsed = time.perf_counter() - began
        db.close()
    return {"median_ms": statistics.median(latencies), "p95_ms": statistics.quantiles(latencies, n=20)[18],
            "writes_per_s": len(latencies) / elapsed}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--writes", type=int, default=500)
    parser.add_argument("--threads", type=int, default=4)
    add_quick_flag(parser, "2,000 writes (the documented run)")
    args = parser.parse_args()
    if args.quick:
        args.writes = 2000
    print(f"{'variant':<16}{'median ms':>10}{'p95 ms':>10}{'writes/s':>10}")
    results = {}
    for sync in ("FULL", "NORMAL"):
        r = results[sync] = run(sync, args.writes, args.threads)
        print(f"{'synchronous=' + sync:<16}{r['median_ms']:>10.2f}{r['p95_ms']:>10.2f}{r['writes_per_s']:>10.0f}")
    write_results("store_writes", args, {"writes": args.writes, "threads": args.threads, "variants": results})


if __name__ == "__main__":
    main()
