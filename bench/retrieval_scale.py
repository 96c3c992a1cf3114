"""Benchmark: retrieval latency at 10k and 100k chunks in one chatbot; the vector half (exact float KNN up to
``EXACT_SEARCH_MAX`` chunks, bit KNN + float re-scoring above) vs exact float KNN.

Usage: PYTHONPATH=. .venv/bin/python bench/retrieval_scale.py [--sizes 10000 100000] [--queries 200]
Chunks are synthetic but shaped like real ones: vectors drawn around 2,000 topic centroids (real embeddings are
clustered; uniform random vectors would make binary quantisation look worse than it is), texts of ~120 words
from a Zipf-distributed vocabulary. Queries are noisy copies of stored vectors plus words from the same chunk.
Each size lives in its own chatbot partition of one database, as in production.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from chatsupport.retrieval import search as hybrid
from chatsupport.retrieval.embedder import Embedder
from chatsupport.retrieval.evaluation import new_chatbot
from chatsupport.store import knowledge_index as index
from chatsupport.store.db import Database
from chatsupport.store.migrations import migrate
from quick import add_quick_flag, write_results

DIM = 384
rng = np.random.default_rng(7)
VOCAB = [f"w{i}" for i in range(20000)]
ZIPF = 1.0 / np.arange(1, len(VOCAB) + 1)
ZIPF /= ZIPF.sum()


def vectors(n: int, centroids: np.ndarray) -> np.ndarray:
    picks = rng.integers(0, len(centroids), n)
    v = centroids[picks] + rng.normal(0, 0.6 / np.sqrt(DIM), (n, DIM)).astype(np.float32) * 1.0
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def fill(db: Database, bot: str, n: int, centroids: np.ndarray) -> tuple[np.ndarray, list[str]]:
    vecs = vectors(n, centroids)
    texts = [" ".join(rng.choice(VOCAB, 120, p=ZIPF)) for _ in range(n)]
    for start in range(0, n, 500):
        doc = db.write(lambda conn: index.add_document(conn, bot, title=f"doc {start}"))
        rows = [{"title": f"doc {start}", "heading": "", "content": texts[i], "position": i - start}
                for i in range(start, min(n, start + 500))]
        blobs = [vecs[i].tobytes() for i in range(start, min(n, start + 500))]
        db.write(lambda conn: index.replace_chunks(conn, bot, rows, blobs, document_id=doc))
    return vecs, texts


def pct(values: list[float], p: int) -> float:
    return sorted(values)[min(len(values) - 1, int(round(p / 100 * len(values))) - 1)]


def measure(db: Database, embedder: Embedder, bot: str, vecs: np.ndarray, texts: list[str], queries: int) -> dict:
    conn = db.reader()
    exact_ms, binary_ms, hybrid_ms, full_ms, recalls = [], [], [], [], []
    for q in range(queries):
        i = int(rng.integers(0, len(vecs)))
        query = vecs[i] + rng.normal(0, 0.5 / np.sqrt(DIM), DIM).astype(np.float32)
        query = (query / np.linalg.norm(query)).astype(np.float32)
        # content words only: the query builder drops stop words, so the 200 commonest synthetic words play that role
        words = " ".join([w for w in texts[i].split() if int(w[1:]) >= 200][:5])
        t0 = time.perf_counter()
        exact = [r["rowid"] for r in index.exact_vector_search(conn, bot, query.tobytes(), 10)]
        t1 = time.perf_counter()
        approx = hybrid.vector_scores(db, bot, query, limit=10)
        t2 = time.perf_counter()
        hybrid.search(db, embedder, bot, words, 10, "hybrid", query_vector=query)
        t3 = time.perf_counter()
        hybrid.search(db, embedder, bot, f"how do I {words}", 10, "hybrid")
        t4 = time.perf_counter()
        top = sorted(approx, key=lambda r: -approx[r])[:10]
        recalls.append(len(set(top) & set(exact)) / 10)
        exact_ms.append((t1 - t0) * 1000)
        binary_ms.append((t2 - t1) * 1000)
        hybrid_ms.append((t3 - t2) * 1000)
        full_ms.append((t4 - t3) * 1000)
    path = "exact" if len(vecs) <= hybrid.EXACT_SEARCH_MAX else f"bits top-{hybrid.RESCORE_CANDIDATES}"
    return {"exact float top-10": exact_ms, f"vector half ({path}+rescore)": binary_ms,
            "hybrid (vector given)": hybrid_ms, "hybrid incl. embedding": full_ms, "recall@10": recalls}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10000, 100000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--model-cache", default="data/model-cache")
    add_quick_flag(parser, "10k chunks, 50 queries")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.queries = [10000], 50
    summary: dict[int, dict[str, dict[str, float]]] = {}
    embedder = Embedder(cache_dir=Path(args.model_cache).resolve())
    embedder.encode(["warm up"])
    centroids = rng.normal(0, 1, (2000, DIM)).astype(np.float32)
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        migrate(path)
        db = Database(path, synchronous="NORMAL")
        for size in args.sizes:
            bot = new_chatbot(db, f"bench-{size}")
            started = time.perf_counter()
            vecs, texts = fill(db, bot, size, centroids)
            print(f"\n{size} chunks (filled in {time.perf_counter() - started:.0f}s)", file=sys.stderr)
            result = measure(db, embedder, bot, vecs, texts, args.queries)
            summary[size] = {name: ({"mean": statistics.fmean(values)} if name == "recall@10" else
                                    {"p50_ms": statistics.median(values), "p95_ms": pct(values, 95)})
                             for name, values in result.items()}
            print(f"{size:>7} chunks  {'variant':<26} {'p50 ms':>7} {'p95 ms':>7}")
            for name, values in result.items():
                if name == "recall@10":
                    print(f"{'':>15}{name:<26} {statistics.fmean(values):>7.3f}")
                else:
                    print(f"{'':>15}{name:<26} {statistics.median(values):>7.1f} {pct(values, 95):>7.1f}")
        db.close()
    write_results("retrieval_scale", args, {"queries": args.queries, "sizes": summary})


if __name__ == "__main__":
    main()
