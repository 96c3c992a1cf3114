"""Benchmark: embedding speed and memory by batch cap, onnxruntime arena and malloc_trim, on real chunks.

Usage: PYTHONPATH=. .venv/bin/python bench/embed_memory.py [CORPUS_DIR] [--limit 60] [--rounds 3] [--quick]

The first --limit files of the corpus are chunked as ingestion chunks them; every variant then embeds those
chunks, one document at a time as the ingestion job does (``pipeline.embed``'s batching), --rounds times, in a
fresh process of its own so that its RSS is its own:

- ``pieces``: the cap on padded word pieces per batch (0: none, batches of 32 texts only — the old behaviour);
- ``arena``: onnxruntime's CPU memory arena on (the library default) or off;
- ``trim``: ``malloc_trim`` after each document (``chatsupport.memory.release_free_memory``) or not.

Per variant: median texts/s over rounds, RSS before (model loaded, one warm-up text), peak during (sampled every
10 ms), and after the last document. Run it on a quiet machine: the variants run one after another. Writes
docs/bench-results/embed_memory.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from quick import add_quick_flag, write_results

VARIANTS = [
    {"pieces": 0, "arena": True, "trim": False},     # before: batches of 32 texts, arena on, no trim
    {"pieces": 2048, "arena": True, "trim": False},
    {"pieces": 1024, "arena": True, "trim": False},
    {"pieces": 1024, "arena": True, "trim": True},
    {"pieces": 1024, "arena": False, "trim": False},
    {"pieces": 1024, "arena": False, "trim": True},
]


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def child(corpus: Path, limit: int, variant: dict[str, Any], rounds: int) -> dict[str, Any]:
    import onnxruntime as ort

    from chatsupport.ingest import pipeline
    from chatsupport.memory import release_free_memory
    from chatsupport.retrieval import batching
    from chatsupport.retrieval.embedder import shared_embedder
    from chatsupport.retrieval.evaluation import corpus_files, file_chunks

    embedder = shared_embedder()
    model = embedder.model
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = os.cpu_count() or 1, 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.enable_cpu_mem_arena = variant["arena"]
    model.session = ort.InferenceSession(str(model.folder / "model.onnx"), options,
                                         providers=["CPUExecutionProvider"])
    chunker = pipeline.chunker_for(embedder)
    documents = []
    for path in corpus_files(corpus)[:limit]:
        chunked = file_chunks(path, chunker)
        if chunked and chunked[1]:
            documents.append([c.embed_text for c in chunked[1]])
    # The cap is a default argument of length_batches; every caller inherits it from the module constant.
    cap = variant["pieces"] or 10**9
    batching.length_batches.__defaults__ = (batching.PADDING_SLACK, cap)
    if not variant["trim"]:
        pipeline.release_free_memory = lambda: False  # type: ignore[attr-defined]
    embedder.encode(["warm up"])
    release_free_memory()
    before, peak, running = rss_mb(), [0.0], [True]

    def watch() -> None:
        while running[0]:
            peak[0] = max(peak[0], rss_mb())
            time.sleep(0.01)

    threading.Thread(target=watch, daemon=True).start()
    speeds = []
    texts = sum(len(d) for d in documents)
    for _ in range(rounds):
        began = time.perf_counter()
        for doc in documents:
            vectors = pipeline.embed(embedder, doc)
            assert len(vectors) == len(doc)
        speeds.append(texts / (time.perf_counter() - began))
    running[0] = False
    return {**variant, "documents": len(documents), "texts": texts, "texts_per_s": statistics.median(speeds),
            "rss_before_mb": before, "rss_peak_mb": max(peak[0], rss_mb()), "rss_after_mb": rss_mb()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", nargs="?", default="/work/shared/corpora/B-huggingface-hub-docs")
    parser.add_argument("--limit", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    add_quick_flag(parser, "20 documents, 1 round")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(Path(args.corpus), args.limit, json.loads(args.child), args.rounds)))
        return 0
    if args.quick:
        args.limit, args.rounds = 20, 1
    rows = []
    for variant in VARIANTS:
        command = [sys.executable, __file__, args.corpus, "--limit", str(args.limit), "--rounds", str(args.rounds),
                   "--child", json.dumps(variant)]
        out = subprocess.run(command, check=True, capture_output=True, text=True,
                             env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        row = rows[-1]
        print(f"pieces {row['pieces'] or 'none':>5}  arena {'on ' if row['arena'] else 'off'}  trim "
              f"{'yes' if row['trim'] else 'no '}  {row['texts_per_s']:6.1f} texts/s  RSS before "
              f"{row['rss_before_mb']:4.0f} MB  peak {row['rss_peak_mb']:5.0f} MB  after {row['rss_after_mb']:5.0f} MB",
              flush=True)
    write_results("embed_memory", args, {"rows": rows, "documents": rows[0]["documents"], "texts": rows[0]["texts"]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
