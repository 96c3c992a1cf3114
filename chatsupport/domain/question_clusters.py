"""Common questions: customers' first questions grouped when they share most of their words.

Cheap and deterministic on purpose: the dashboard groups a bounded sample (the latest few hundred first
questions of the period) on every request, so no model is loaded and the cost stays at a few milliseconds.
Two questions join when the Jaccard overlap of their content words (stop words dropped, plurals and -ing/-ed
endings trimmed) reaches ``THRESHOLD``; a question with no content word only joins an identical one.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable

THRESHOLD = 0.5
STOP_WORDS = frozenset("""
a an the and or but if to of in on at for from by with about as is are was were be been being am do does did
i me my we our you your it its this that these those there here what which who whom how when where why can could
would should will shall may might must have has had not no yes please hi hello hey thanks thank just so any some
get got want need like know tell help""".split())


def words(question: str) -> frozenset[str]:
    tokens = re.findall(r"[a-z0-9]+", question.lower().replace("'s", ""))
    return frozenset(_stem(t) for t in tokens if t not in STOP_WORDS)


def _stem(token: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if token.endswith(suffix) and len(token) - len(suffix) >= 3:
            return token[: -len(suffix)]
    return token


@dataclass
class Cluster:
    key: frozenset[str]
    texts: Counter[str] = field(default_factory=Counter)
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def question(self) -> str:
        """The wording asked most often, the shortest on a tie."""
        return min(self.texts.items(), key=lambda item: (-item[1], len(item[0]), item[0]))[0]


def cluster(rows: Iterable[dict[str, Any]], text_field: str = "first_question") -> list[Cluster]:
    """Greedy single pass: each question joins the first cluster (by creation) close enough, else starts one.
    An inverted index of words keeps it near-linear."""
    clusters: list[Cluster] = []
    by_word: dict[str, list[int]] = defaultdict(list)
    exact: dict[str, int] = {}
    for row in rows:
        text = " ".join(str(row[text_field]).split())
        if not text:
            continue
        key = words(text)
        index = _match(key, text.lower(), clusters, by_word, exact)
        if index is None:
            index = len(clusters)
            clusters.append(Cluster(key))
            exact[text.lower()] = index
            for word in key:
                by_word[word].append(index)
        clusters[index].texts[text] += 1
        clusters[index].rows.append(row)
    return sorted(clusters, key=lambda c: (-len(c.rows), c.question))


def _match(key: frozenset[str], lowered: str, clusters: list[Cluster], by_word: dict[str, list[int]],
           exact: dict[str, int]) -> int | None:
    if lowered in exact:
        return exact[lowered]
    if not key:
        return None
    for index in sorted({i for word in key for i in by_word.get(word, ())}):
        other = clusters[index].key
        if len(key & other) / len(key | other) >= THRESHOLD:
            return index
    return None
