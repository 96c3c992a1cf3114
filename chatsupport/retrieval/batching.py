"""Batches for a transformer that pads each batch to its longest text: padding is compute spent on nothing.

Help-centre text runs from 9-piece labels to 180-piece paragraphs; one batch of 24 such sentences padded to the
longest costs ~4x what length-cut batches cost (measured in issue 5). Ingestion and the answer path's sentence
ranking both batch through here.

A batch is also capped in padded word pieces: attention memory grows with batch x width², and onnxruntime's
arena keeps its largest size for good, so 32 texts of 256 pieces left the process ~800 MB bigger; and on CPU a
batch beyond ~1,000 pieces is no faster per text (bench/embed_memory.py on corpus B: no cap 38.5 texts/s and
+292 MB kept; a 1,024-piece cap 41.7 texts/s and +85 MB kept).
"""

from __future__ import annotations

from typing import Iterator, Sequence

PADDING_SLACK = 0.10  # share of a batch's compute we let padding take before starting a new batch
BATCH_PIECES = 1024  # padded word pieces per batch (width x texts); one text longer than this goes alone


def length_batches(lengths: Sequence[int], size: int, slack: float = PADDING_SLACK,
                   pieces: int = BATCH_PIECES) -> Iterator[list[int]]:
    """Indices in ascending length, in batches of at most ``size`` texts and ``pieces`` padded word pieces whose
    padded width wastes at most ``slack``."""
    batch: list[int] = []
    real = 0
    for i in sorted(range(len(lengths)), key=lengths.__getitem__):
        padded = lengths[i] * (len(batch) + 1)  # ascending order: the newcomer sets the batch's width
        if batch and (len(batch) == size or padded > pieces or padded > (1 + slack) * (real + lengths[i])):
            yield batch
            batch, real = [], 0
        batch.append(i)
        real += lengths[i]
    if batch:
        yield batch
