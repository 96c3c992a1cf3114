"""Conversation search (PRD §5.3.4): full text over messages, internal notes and customers' name and e-mail,
narrowed by the inbox ``Filters``, with highlighted matches and aggregations.

How it stays fast on a big history: FTS5 hands out matches newest first (highest rowid first, no sort), and the
search looks at no more than the workspace's ``SCAN_HITS`` newest matching messages and notes, whatever the
filters (plus the conversations of up to ``CUSTOMER_HITS`` matching customers). A rare word is therefore found
everywhere, in full; a word in half of all messages yields the conversations of its newest matches and says so
with ``pagination.total_capped``. One scan serves both the results (narrowed to the status filter) and
``by_status`` (every status); results are then sorted by the requested field.

User text never reaches FTS5 as syntax: words are cut out of it and quoted, so ``"``, ``*``, ``AND``, ``NEAR``,
``-`` or ``:`` are searched for as text (or ignored when they are not word characters). A run of words without
spaces (``john@example.com``) is one phrase; the last word also matches as a prefix while it is being typed.
"""

from __future__ import annotations

import html
import json
import math
import re
import threading
from collections import Counter
from typing import Any

import apsw

from chatsupport.domain.audit import Actor
from chatsupport.domain.auth import Context
from chatsupport.domain.conversation_filters import MAX_QUERY_CHARS, SORT_FIELDS, Filters
from chatsupport.domain.conversation_views import TOTAL_CAP, applied_filters, list_items
from chatsupport.domain.conversations import STATUSES
from chatsupport.errors import AppError
from chatsupport.store import conversation_search as store
from chatsupport.store import conversations as conversations_store
from chatsupport.store.db import Row

SCAN_HITS = 2_000
CUSTOMER_HITS = 200
MATCHES_PER_CONVERSATION = 3
SNIPPET_TOKENS = 24
# "th*" would merge the lists of every word starting with th; from 4 letters on the index has the prefixes
PREFIX_MIN_CHARS = 4
_WORD = re.compile(r"[^\W_]+")   # what the unicode61 tokenizer keeps: letters and digits
_OPEN, _CLOSE = "\x01", "\x02"   # highlight markers no stored text contains (they are stripped first)


def _invalid(field: str, message: str) -> AppError:
    return AppError("validation_error", details=[{"field": field, "message": message}])


def fts_query(text: str) -> str | None:
    """The FTS5 MATCH expression for what a user typed, or None when it holds no word at all."""
    phrases = [" ".join(_WORD.findall(chunk)) for chunk in text.split()]
    phrases = [p for p in phrases if p]
    if not phrases:
        return None
    quoted = [f'"{p}"' for p in phrases]
    if text[-1:].strip() and len(_WORD.findall(text)[-1]) >= PREFIX_MIN_CHARS:
        quoted[-1] += "*"
    return " ".join(quoted)


def search(ctx: Context, actor: Actor, query: str, filters: Filters | None = None, *, filter_id: str | None = None,
           sort_field: str = "updated_at", order: str = "desc", page: int = 1, limit: int = 20) -> dict[str, Any]:
    if len(query) > MAX_QUERY_CHARS:
        raise _invalid("query", f"At most {MAX_QUERY_CHARS} characters.")
    if sort_field not in SORT_FIELDS:
        raise _invalid("sort.field", f"One of {', '.join(SORT_FIELDS)}.")
    if order not in ("asc", "desc"):
        raise _invalid("sort.order", "asc or desc.")
    if not 1 <= limit <= 100:
        raise _invalid("limit", "Between 1 and 100.")
    if page < 1:
        raise _invalid("page", "1 or more.")
    chosen = applied_filters(ctx, actor, filters or Filters(), filter_id)
    match = fts_query(query)
    if match is None:
        return _result([], [], page, limit, capped=False, by_status={})
    conn = ctx.db.reader()
    # one scan with every status serves both by_status and, narrowed to the status filter, the results
    found, refs, capped = _matching(conn, actor, match, chosen)
    by_status = dict(Counter(row["status"] for row in found))
    wanted = set(chosen.status) if chosen.status is not None else set(STATUSES) - {"archived"}
    found = [row for row in found if row["status"] in wanted]
    descending = order == "desc"
    # conversations without a value for the field (resolved_at of open ones) come last either way
    results = sorted((r for r in found if r[sort_field]), key=lambda r: (r[sort_field], r["id"]),
                     reverse=descending)
    results += sorted((r for r in found if not r[sort_field]), key=lambda r: r["id"], reverse=descending)
    chosen_page = results[(page - 1) * limit: page * limit]
    rows = conversations_store.list_rows(conn, actor.workspace_id, [r["id"] for r in chosen_page])
    items = list_items(conn, actor, [rows[r["id"]] for r in chosen_page if r["id"] in rows])
    snippets = _highlights(conn, actor.workspace_id, match, {item["id"]: refs[item["id"]] for item in items})
    for item in items:
        item["matches"] = snippets.get(item["id"], [])
    return _result(items, results, page, limit, capped=capped, by_status=by_status)


def _matching(conn: apsw.Connection, actor: Actor, match: str,
              filters: Filters) -> tuple[list[Row], dict[str, list[tuple[str, str]]], bool]:
    """The conversations that match and pass ``filters`` minus its status condition (``KEY_COLUMNS``), each
    one's newest matches as (kind, ref id), and whether a scan stopped at its bound."""
    where, params = store.filter_where(actor.workspace_id, filters, actor.user_id, with_status=False)
    scanned = store.content_matches(conn, actor.workspace_id, match, where, params, SCAN_HITS)
    found = [row for row in scanned if row["id"] is not None]
    refs = {row["id"]: [(kind, ref_id) for kind, ref_id, _ in sorted(json.loads(row["refs"]), key=lambda r: -r[2])]
            [:MATCHES_PER_CONVERSATION] for row in found}
    customers = store.matching_customers(conn, actor.workspace_id, match, CUSTOMER_HITS)
    theirs = store.conversations_of_customers(conn, customers, where, params, SCAN_HITS) if customers else []
    for row in theirs:
        if row["id"] not in refs:
            found.append(row)
        refs.setdefault(row["id"], []).insert(0, ("customer", row["customer_id"]))
    capped = (sum(row["hits"] for row in scanned) >= SCAN_HITS or len(customers) >= CUSTOMER_HITS
              or len(theirs) >= SCAN_HITS)
    return found, refs, capped


def _result(items: list[dict[str, Any]], results: list[Row], page: int, limit: int, *, capped: bool,
            by_status: dict[str, int]) -> dict[str, Any]:
    agents = Counter(r["assigned_agent_id"] or "unassigned" for r in results)
    ratings = [r["satisfaction_rating"] for r in results if r["satisfaction_rating"] is not None]
    shown = min(len(results), TOTAL_CAP)
    return {"data": items,
            "pagination": {"page": page, "limit": limit, "total": shown,
                           "total_pages": max(1, math.ceil(shown / limit)), "total_capped": capped},
            "aggregations": {"by_status": by_status, "by_agent": dict(agents),
                             "avg_satisfaction": round(sum(ratings) / len(ratings), 2) if ratings else None}}


# --- highlighting ----------------------------------------------------------------------------------------------
_local = threading.local()


def _highlighter() -> apsw.Connection:
    """A private in-memory FTS5 table with the index's own tokenizer, so highlights mark exactly what matched
    (stems, diacritics, prefixes) without a second implementation of them."""
    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = apsw.Connection(":memory:")
        conn.execute("CREATE VIRTUAL TABLE marks USING fts5(body,"
                     " tokenize='porter unicode61 remove_diacritics 2')")
        _local.conn = conn
    return conn


def _highlights(conn: apsw.Connection, workspace_id: str, match: str,
                refs: dict[str, list[tuple[str, str]]]) -> dict[str, list[dict[str, str]]]:
    """Per conversation: ``{kind, id, snippet}`` where ``snippet`` is HTML: the source text escaped, the matched
    words in ``<mark>``."""
    wanted = [ref for pairs in refs.values() for ref in pairs]
    sources = store.texts(conn, workspace_id, wanted) if wanted else {}
    marked = _mark(match, [sources.get(ref, "") for ref in wanted])
    by_ref = dict(zip(wanted, marked))
    return {conversation_id: [{"kind": kind, "id": ref_id, "snippet": by_ref[(kind, ref_id)]}
                              for kind, ref_id in pairs if (kind, ref_id) in sources]
            for conversation_id, pairs in refs.items()}


def _mark(match: str, texts: list[str]) -> list[str]:
    scratch = _highlighter()
    with scratch:
        scratch.execute("DELETE FROM marks")
        for index, text in enumerate(texts):
            clean = text.replace(_OPEN, " ").replace(_CLOSE, " ")
            scratch.execute("INSERT INTO marks(rowid, body) VALUES (?, ?)", (index, clean))
        rows = scratch.execute("SELECT rowid, snippet(marks, 0, ?, ?, '…', ?) AS s FROM marks WHERE marks MATCH ?",
                               (_OPEN, _CLOSE, SNIPPET_TOKENS, match)).fetchall()
    snippets = {index: snippet for index, snippet in rows}
    out = []
    for index, text in enumerate(texts):
        raw = snippets.get(index, text[:200])
        out.append(html.escape(raw).replace(_OPEN, "<mark>").replace(_CLOSE, "</mark>"))
    return out
