"""Benchmark: ingestion embedding speed against the raw model on the same chunks, in one process.

Usage: PYTHONPATH=. .venv/bin/python bench/ingest_speed.py [CORPUS_DIR] [--rounds 3] [--limit 0] [--torch]

Every corpus file is uploaded as a real document (``domain.knowledge.create``) into a fresh data dir. Each round
walks the corpus in slices of ``--slice`` documents and runs the three variants on every slice back to back, in
an order that rotates from slice to slice, so that a busy machine's changing load falls on every variant alike:

- ``raw``: ``embedder.encode(slice_chunk_texts, batch_size=32)`` — the model's own speed on those texts;
- ``ingest``: the real job, ``tasks.ingest.ingest(db, embedder, document_id)`` for every document (extract, chunk,
  embed with progress reports, one swap transaction each). The time spent inside ``pipeline.embed`` (its progress
  writes included) is the ingestion path's embedding; the whole job's time is reported beside it;
- ``reading-order``: the previous ``pipeline.embed`` (batches of 32 in reading order), on the same documents'
  texts, to show what the length ordering buys.

The texts given to ``raw`` are exactly those the ingestion job embedded (captured in the first round), so the
comparison is on the same chunks. Medians over rounds are printed; ratio = ingest embed texts/s ÷ raw texts/s.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from chatsupport.config import load_settings
from chatsupport.domain import accounts, knowledge
from chatsupport.domain.audit import Actor
from chatsupport.ingest import pipeline
from chatsupport.ingest.extract import sniff
from chatsupport.retrieval.evaluation import corpus_files, new_chatbot
from chatsupport.services import start_services
from chatsupport.tasks import ingest as ingest_task
from quick import add_quick_flag, write_results


def reading_order_embed(encoder: Any, texts: Sequence[str], batch: int = 32) -> list[bytes]:
    """``pipeline.embed`` as it was before length ordering: batches in reading order."""
    vectors: list[bytes] = []
    for start in range(0, len(texts), batch):
        matrix = np.asarray(encoder.encode(texts[start:start + batch], batch_size=batch), dtype=np.float32)
        vectors.extend(row.tobytes() for row in matrix)
    return vectors


class EmbedTimer:
    """Wraps ``pipeline.embed`` so the real job runs unchanged while we add up the time spent embedding."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.texts: list[list[str]] = []
        self._real: Callable[..., list[bytes]] = pipeline.embed

    def __call__(self, encoder: Any, texts: Sequence[str], *args: Any, **kwargs: Any) -> list[bytes]:
        started = time.perf_counter()
        try:
            return self._real(encoder, texts, *args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - started
            self.texts.append(list(texts))


def upload_corpus(services: Any, files: list[Path], tmp: Path) -> list[str]:
    bot = new_chatbot(services.db, "bench")
    workspace = services.db.query("SELECT w.id, w.name FROM chatbots c JOIN workspaces w ON w.id = c.workspace_id "
                                  "WHERE c.id = ?", (bot,))[0]
    user, _ = accounts.create_user(services, workspace=workspace["name"], email="bench@example.com",
                                   password="Bench#12345", role="owner")
    actor = Actor(user_id=user["id"], workspace_id=workspace["id"], role="owner", email="bench@example.com",
                  display_name="bench")
    ids = []
    for number, path in enumerate(files):
        data = path.read_bytes()
        kind = sniff(data[:8192], path.name)
        temp = tmp / f"upload-{number}"
        shutil.copyfile(path, temp)
        new = knowledge.NewDocument(chatbot_id=bot, temp_path=temp, filename=path.name, kind=kind, size=len(data),
                                    sha256=hashlib.sha256(data).hexdigest(), metadata={})
        ids.append(knowledge.create(services, actor, new)["id"])
    return ids


def run_ingest(services: Any, ids: list[str]) -> tuple[float, float, list[list[str]]]:
    """(embedding seconds, whole-job seconds, texts per document) for one pass of the real job over all docs."""
    marks = ",".join("?" * len(ids))
    services.db.write(lambda conn: conn.execute(f"UPDATE knowledge_documents SET status = 'pending' WHERE id IN "
                                                f"({marks})", ids))
    timer = EmbedTimer()
    pipeline.embed = timer  # type: ignore[assignment]
    try:
        started = time.perf_counter()
        outcomes = [ingest_task.ingest(services.db, services.embedder, doc_id) for doc_id in ids]
        total = time.perf_counter() - started
    finally:
        pipeline.embed = timer._real  # type: ignore[assignment]
    failed = [o for o in outcomes if o != "completed"]
    if failed:
        print(f"  note: {len(failed)} document(s) did not complete: {sorted(set(failed))}")
    return timer.seconds, total, timer.texts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("corpus", nargs="?", default="/work/shared/corpora/B-huggingface-hub-docs")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--limit", type=int, default=0, help="first N files only (0: all)")
    parser.add_argument("--slice", type=int, default=10, help="documents per interleaved slice")
    parser.add_argument("--torch", action="store_true", help="also time sentence-transformers once")
    parser.add_argument("--model-cache", default="data/model-cache")
    add_quick_flag(parser, "the first 40 files, one round")
    args = parser.parse_args()
    if args.quick:
        args.limit, args.rounds = 40, 1
    files = corpus_files(Path(args.corpus))[:args.limit or None]
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(env={
            "CHATSUPPORT_DATA_DIR": str(Path(tmp) / "data"), "CHATSUPPORT_RUN_WORKER": "false",
            "CHATSUPPORT_ARGON2_MEMORY_KIB": "1024",
            "CHATSUPPORT_MODEL_CACHE_DIR": str(Path(args.model_cache).resolve())})
        services = start_services(settings, run_worker=False, hold_lock=False)
        embedder = services.embedder
        embedder.encode(["warm up"] * 32)
        ids = upload_corpus(services, files, Path(tmp))
        _, _, per_doc = run_ingest(services, ids)  # warm-up pass; captures the exact texts the job embeds
        texts = [t for doc in per_doc for t in doc]
        tokens = embedder.count_tokens(texts)
        print(f"{len(ids)} documents, {len(texts)} chunks, mean {sum(tokens) / len(tokens):.0f} word pieces; "
              f"{args.rounds} interleaved rounds")
        results: dict[str, list[float]] = {"raw": [], "ingest": [], "job": [], "reading-order": []}
        slices = [list(range(i, min(i + args.slice, len(ids)))) for i in range(0, len(ids), args.slice)]
        for round_no in range(1, args.rounds + 1):
            seconds = dict.fromkeys(results, 0.0)
            for number, docs in enumerate(slices):
                part = [t for d in docs for t in per_doc[d]]
                steps = ["raw", "ingest", "reading-order"]
                shift = (round_no + number) % len(steps)
                for step in steps[shift:] + steps[:shift]:  # rotate who goes first, slice by slice
                    started = time.perf_counter()
                    if step == "raw":
                        embedder.encode(part, batch_size=32)
                    elif step == "reading-order":
                        for d in docs:
                            reading_order_embed(embedder, per_doc[d])
                    else:
                        embed_s, job_s, _ = run_ingest(services, [ids[d] for d in docs])
                        seconds["job"] += job_s
                        seconds["ingest"] += embed_s
                        continue
                    seconds[step] += time.perf_counter() - started
            for key in results:
                results[key].append(len(texts) / seconds[key])
            print(f"  round {round_no}: " + "  ".join(f"{k} {v[-1]:.1f}/s" for k, v in results.items()))
        med = {k: statistics.median(v) for k, v in results.items()}
        ratios = [i / r for i, r in zip(results["ingest"], results["raw"])]
        print(f"ingest/raw per round: {', '.join(f'{x:.0%}' for x in ratios)}; median {statistics.median(ratios):.0%}")
        print(f"{'variant':<48} {'median texts/s':>15}  {'of raw':>7}")
        labels = {"raw": "raw ONNX encode(chunks, batch_size=32)",
                  "ingest": "ingestion path: pipeline.embed inside the job",
                  "job": "ingestion job end to end (extract..commit)",
                  "reading-order": "old pipeline.embed (reading order), same docs"}
        for key, label in labels.items():
            print(f"{label:<48} {med[key]:>15.1f}  {med[key] / med['raw']:>7.0%}")
        write_results("ingest_speed", args, {"documents": len(ids), "chunks": len(texts),
                                             "median_texts_per_s": med, "ingest_over_raw": statistics.median(ratios)})
        if args.torch:
            from sentence_transformers import SentenceTransformer

            from chatsupport.retrieval.embedder import bundled_model_path

            model = SentenceTransformer(str(bundled_model_path()), device="cpu")
            model.encode(texts[:32])
            started = time.perf_counter()
            model.encode(texts, batch_size=32)
            print(f"{'raw sentence-transformers (torch)':<48} {len(texts) / (time.perf_counter() - started):>15.1f}")
        services.stop()


if __name__ == "__main__":
    main()
