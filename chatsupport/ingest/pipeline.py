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
    """float32 vectors as bytes (what the index stores), reported batch by batch."""
    vectors: list[bytes] = []
    for start in range(0, len(texts), batch):
        matrix = np.asarray(encoder.encode(texts[start:start + batch], batch_size=batch), dtype=np.float32)
        vectors.extend(row.tobytes() for row in matrix)
        if progress is not None:
            progress(len(vectors), len(texts))
    return vectors


def chunk_rows(chunks: Sequence[Chunk]) -> list[dict[str, Any]]:
    """The shape ``knowledge_index.replace_chunks`` takes."""
    return [{k: v for k, v in asdict(c).items() if k != "faq_id"} for c in chunks]
