"""The SQL of "which conversations" (``Filters``), full-text hits, counts per status, and saved filters.

``filter_where`` is the one translation of ``Filters`` into SQL, shared by the inbox list, search and bulk
exports. Its fragment reads a ``conversations`` row under the alias ``c`` and already includes the workspace
condition, so a caller writes ``SELECT … FROM conversations c WHERE {where}`` (joins are fine as long as the
alias stays ``c``) and passes ``params`` in order.

Full text lives in two contentless FTS5 tables keyed by ``search_refs.id`` (see ``inbox_schema.SEARCH_SCHEMA``):
``conversation_text`` (messages and internal notes) and ``customer_text`` (customer name and e-mail).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Sequence

import apsw

from chatsupport.store.db import Row

if TYPE_CHECKING:  # the store reads a Filters' fields; importing domain at run time would turn the layers around
    from chatsupport.domain.conversation_filters import Filters

# The conversation columns a date range may name (interpolated into SQL, so only these).
DATE_COLUMNS = ("created_at", "updated_at", "resolved_at")
UNASSIGNED = "unassigned"
# "assigned_agent": "me" (handy in a saved filter) means whoever applies the filter.
ME = "me"


def filter_where(workspace_id: str, filters: Filters, user_id: str | None,
                 with_status: bool = True) -> tuple[str, list[Any]]:
    """``(sql, params)`` for conversations (alias ``c``) of ``workspace_id`` that pass ``filters``.

    No status filter means every status but archived. ``with_status=False`` drops the status condition entirely
    (every status, archived included), which is what counts per status need. ``user_id`` resolves
    ``assigned_agent: "me"``; without one, "me" matches nothing.
    """
    clauses, params = ["c.workspace_id = ?"], [workspace_id]
    if with_status and filters.status is None:
        # "!=" keeps the (workspace, sort key) indexes an ordered scan; an IN list would need a sort
        clauses.append("c.status != 'archived'")
    elif with_status:
        clauses.append(f"c.status IN ({','.join('?' * len(filters.status))})")
        params.extend(filters.status)
    if filters.chatbot_id is not None:
        clauses.append("c.chatbot_id = ?")
        params.append(filters.chatbot_id)
    if filters.assigned_agent == UNASSIGNED:
        clauses.append("c.assigned_agent_id IS NULL")
    elif filters.assigned_agent is not None:
        clauses.append("c.assigned_agent_id = ?")
        params.append(user_id if filters.assigned_agent == ME else filters.assigned_agent)
    for tag in filters.tags:
        clauses.append("c.id IN (SELECT conversation_id FROM conversation_tags WHERE workspace_id = ? AND tag = ?)")
        params.extend((workspace_id, tag))
    if filters.date_range is not None:
        column = filters.date_range.field
        if column not in DATE_COLUMNS:
            raise ValueError(f"unknown date field {column!r}")
        if filters.date_range.start is not None:
            clauses.append(f"c.{column} >= ?")
            params.append(filters.date_range.start)
        if filters.date_range.end is not None:
            clauses.append(f"c.{column} <= ?")
            params.append(filters.date_range.end)
    if filters.rating_min is not None:
        clauses.append("c.satisfaction_rating >= ?")
        params.append(filters.rating_min)
    if filters.rating_max is not None:
        clauses.append("c.satisfaction_rating <= ?")
        params.append(filters.rating_max)
    if filters.customer_email is not None:
        # customers.email is COLLATE NOCASE, so this is an index lookup on (workspace_id, email)
        clauses.append("c.customer_id IN (SELECT id FROM customers WHERE workspace_id = ? AND email = ?)")
        params.extend((workspace_id, filters.customer_email))
    if filters.has_internal_notes is not None:
        exists = ("EXISTS (SELECT 1 FROM internal_notes n WHERE n.conversation_id = c.id"
                  " AND n.deleted_at IS NULL)")
        clauses.append(exists if filters.has_internal_notes else f"NOT {exists}")
    return " AND ".join(clauses), params


def counts_by_status(conn: apsw.Connection, workspace_id: str, filters: Filters,
                     user_id: str | None) -> dict[str, int]:
    """How many conversations of each status pass ``filters`` minus its status condition (statuses with none
    are left out). One pass over the filters' cheapest index: without filters that is the covering
    (workspace, status, …) index, so even 100k conversations take a few milliseconds."""
    where, params = filter_where(workspace_id, filters, user_id, with_status=False)
    rows = conn.execute(f"SELECT c.status, count(*) AS n FROM conversations c WHERE {where} GROUP BY c.status",
                        params).fetchall()
    return {row["status"]: int(row["n"]) for row in rows}


def unread(conn: apsw.Connection, user_id: str, conversation_ids: Sequence[str]) -> set[str]:
    """Which of these conversations have a customer message newer than the user's read marker (no marker: any
    customer message at all)."""
    if not conversation_ids:
        return set()
    rows = conn.execute(
        "SELECT j.value AS id FROM json_each(?) j WHERE EXISTS (SELECT 1 FROM messages m"
        " WHERE m.conversation_id = j.value AND m.sender_type = 'customer' AND m.deleted_at IS NULL"
        " AND m.created_at > coalesce((SELECT read_at FROM conversation_reads r WHERE r.user_id = ?"
        " AND r.conversation_id = j.value), ''))", (json.dumps(list(conversation_ids)), user_id)).fetchall()
    return {row["id"] for row in rows}


# --- full text ------------------------------------------------------------------------------------------------
KEY_COLUMNS = ("c.id, c.status, c.assigned_agent_id, c.satisfaction_rating, c.updated_at, c.created_at,"
               " c.resolved_at")


def content_matches(conn: apsw.Connection, workspace_id: str, match: str, where: str, params: Sequence[Any],
                    scan: int) -> list[Row]:
    """The conversations passing ``where`` among this workspace's ``scan`` newest messages and notes matching
    ``match`` (newest = highest FTS rowid, which FTS5 reads without sorting, so the work is bounded by ``scan``
    whatever the filters). One row per conversation: ``KEY_COLUMNS``, ``hits`` and ``refs`` (a JSON list of
    [kind, ref_id, rowid]); matches that fail ``where`` come back as one row with ``id`` NULL, so the ``hits``
    of all rows add up to what was scanned."""
    return conn.execute(
        "WITH m AS MATERIALIZED (SELECT f.rowid AS hit, r.conversation_id, r.kind, r.ref_id FROM conversation_text f"
        "  JOIN search_refs r ON r.id = f.rowid WHERE conversation_text MATCH ? AND r.workspace_id = ?"
        "  ORDER BY f.rowid DESC LIMIT ?)"
        f" SELECT {KEY_COLUMNS}, count(*) AS hits, json_group_array(json_array(m.kind, m.ref_id, m.hit)) AS refs"
        f" FROM m LEFT JOIN conversations c ON c.id = m.conversation_id AND {where} GROUP BY c.id",
        (match, workspace_id, scan, *params)).fetchall()


def matching_customers(conn: apsw.Connection, workspace_id: str, match: str, limit: int) -> list[str]:
    """Ids of this workspace's customers whose name or e-mail matches, newest first."""
    rows = conn.execute(
        "SELECT r.ref_id FROM customer_text f JOIN search_refs r ON r.id = f.rowid"
        " WHERE customer_text MATCH ? AND r.workspace_id = ? ORDER BY f.rowid DESC LIMIT ?",
        (match, workspace_id, limit)).fetchall()
    return [row["ref_id"] for row in rows]


def conversations_of_customers(conn: apsw.Connection, customer_ids: Sequence[str], where: str,
                               params: Sequence[Any], limit: int) -> list[Row]:
    """``KEY_COLUMNS`` and ``customer_id`` of these customers' conversations that pass ``where``, newest
    first."""
    return conn.execute(
        f"SELECT {KEY_COLUMNS}, c.customer_id FROM conversations c"
        f" WHERE c.customer_id IN (SELECT value FROM json_each(?)) AND {where} ORDER BY c.updated_at DESC LIMIT ?",
        (json.dumps(list(customer_ids)), *params, limit)).fetchall()


def texts(conn: apsw.Connection, workspace_id: str, refs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """The source text of (kind, ref_id) pairs: message or note content, or a customer's "name email"."""
    wanted = json.dumps([list(ref) for ref in refs])
    rows = conn.execute(
        "WITH w AS (SELECT value ->> 0 AS kind, value ->> 1 AS ref_id FROM json_each(?))"
        " SELECT w.kind, w.ref_id, m.content AS body FROM w JOIN messages m ON m.id = w.ref_id"
        "  JOIN conversations c ON c.id = m.conversation_id WHERE w.kind = 'message' AND c.workspace_id = ?"
        " UNION ALL SELECT w.kind, w.ref_id, n.content FROM w JOIN internal_notes n ON n.id = w.ref_id"
        "  JOIN conversations c ON c.id = n.conversation_id WHERE w.kind = 'note' AND c.workspace_id = ?"
        " UNION ALL SELECT w.kind, w.ref_id, concat_ws(' ', cu.name, cu.email) FROM w"
        "  JOIN customers cu ON cu.id = w.ref_id WHERE w.kind = 'customer' AND cu.workspace_id = ?",
        (wanted, workspace_id, workspace_id, workspace_id)).fetchall()
    return {(row["kind"], row["ref_id"]): row["body"] for row in rows}


# --- saved filters (PRD §5.3.4), each owned by one user --------------------------------------------------------
SAVED_COLUMNS = "id, name, filters, is_default, created_at, updated_at"


def _saved(row: Row | None) -> Row | None:
    if row is not None:
        row["filters"] = json.loads(row["filters"])
        row["is_default"] = bool(row["is_default"])
    return row


def saved_filters(conn: apsw.Connection, workspace_id: str, user_id: str) -> list[Row]:
    rows = conn.execute(f"SELECT {SAVED_COLUMNS} FROM conversation_filters WHERE workspace_id = ? AND user_id = ?"
                        " ORDER BY name COLLATE NOCASE, id", (workspace_id, user_id)).fetchall()
    return [_saved(row) for row in rows]  # type: ignore[misc]


def saved_filter(conn: apsw.Connection, workspace_id: str, user_id: str, filter_id: str) -> Row | None:
    return _saved(conn.execute(f"SELECT {SAVED_COLUMNS} FROM conversation_filters WHERE id = ? AND workspace_id = ?"
                               " AND user_id = ?", (filter_id, workspace_id, user_id)).fetchone())


def name_taken(conn: apsw.Connection, user_id: str, name: str) -> bool:
    return conn.execute("SELECT 1 FROM conversation_filters WHERE user_id = ? AND name = ? COLLATE NOCASE",
                        (user_id, name)).fetchone() is not None


def add_saved_filter(conn: apsw.Connection, filter_id: str, workspace_id: str, user_id: str, name: str,
                     filters: dict[str, Any], is_default: bool, now: str) -> None:
    """A new default replaces the user's previous one (one default per user)."""
    if is_default:
        conn.execute("UPDATE conversation_filters SET is_default = 0, updated_at = ? WHERE user_id = ?"
                     " AND is_default = 1", (now, user_id))
    conn.execute("INSERT INTO conversation_filters(id, workspace_id, user_id, name, filters, is_default,"
                 " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                 (filter_id, workspace_id, user_id, name, json.dumps(filters), int(is_default), now, now))


def delete_saved_filter(conn: apsw.Connection, workspace_id: str, user_id: str, filter_id: str) -> bool:
    conn.execute("DELETE FROM conversation_filters WHERE id = ? AND workspace_id = ? AND user_id = ?",
                 (filter_id, workspace_id, user_id))
    return conn.changes() > 0
