"""Extracted pages → chunks → vectors, with a progress callback; nothing here touches the database.

The job (``tasks.ingest``) writes the result in one transaction; keeping this part pure means a crash anywhere
in it leaves the index exactly as it was.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from chatsupport.ingest.chunking import Chunk, Chunker
from chatsupport.ingest.extract import Extracted
from chatsupport.memory import release_free_memory
from chatsupport.retrieval.batching import length_batches

EMBED_BATCH = 32
Progress = Callable[[int, int], None]


class Encoder(Protocol):
    max_tokens: int

    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray: ...


def chunker_for(encoder: Encoder) -> Chunker:
    """Chunks sized in the embedder's own word pieces and never beyond what it reads (256 for MiniLM)."""
    return Chunker(encoder.count_tokens, max_tokens=min(256, encoder.max_tokens))


def chunk_pages(chunker: Chunker, extracted: Extracted) -> list[Chunk]:
    """Each page is chunked on its own so every chunk of a PDF keeps its page number."""
    chunks: list[Chunk] = []
    for page in extracted.pages:
        chunks.extend(chunker.chunk(page.text, title=extracted.title, page_number=page.number))
    for position, chunk in enumerate(chunks):
        chunk.position = position
    return chunks


def embed(encoder: Encoder, texts: Sequence[str], progress: Progress | None = None,
          batch: int = EMBED_BATCH) -> list[bytes]:
    """float32 vectors as bytes (what the index stores), in input order, reported batch by batch.

    The model pads a batch to its longest text, and one document's chunks run from a heading-only stub to the
    full 256 word pieces, so batches in reading order spend much of their compute on padding. Texts therefore go
    in length order, in batches cut where padding would pass ``batching.PADDING_SLACK`` (what the model's own
    ``encode`` gets by sorting a whole corpus at once, which a job holding one document cannot do).
    """
    lengths = [min(n, encoder.max_tokens) for n in encoder.count_tokens(texts)]
    vectors: list[bytes] = [b""] * len(texts)
    done = 0
    for rows in length_batches(lengths, batch):
        matrix = np.asarray(encoder.encode([texts[i] for i in rows], batch_size=len(rows)), dtype=np.float32)
        for i, row in zip(rows, matrix):
            vectors[i] = row.tobytes()
        done += len(rows)
        if progress is not None:
            progress(done, len(texts))
    release_free_memory()  # a document's batches are the biggest blocks this process allocates
    return vectors


def chunk_rows(chunks: Sequence[Chunk]) -> list[dict[str, Any]]:
    """The shape ``knowledge_index.replace_chunks`` takes."""
    return [{k: v for k, v in asdict(c).items() if k != "faq_id"} for c in chunks]
