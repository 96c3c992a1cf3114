"""Analytics rollups (``console_schema.ANALYTICS_SCHEMA``): the dirty-bucket queue, the source rows a recompute
reads, the rollup rows it writes, and the period reads the dashboard makes. Buckets are 15-minute UTC strings
``YYYY-MM-DDTHH:MM``; a range is ``[start, end)`` in those strings. Every read names its workspace."""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import apsw

from chatsupport.store.db import Row

BUCKET_COLUMNS = (
    "conversations", "resolved", "abandoned", "escalated", "ai_resolved_confirmed", "ai_resolved_assumed",
    "customer_messages", "bot_messages", "agent_messages", "response_seconds_sum", "responses",
    "first_response_seconds_sum", "first_responses", "resolution_seconds_sum", "resolutions", "csat_sum",
    "csat_count", "csat_1", "csat_2", "csat_3", "csat_4", "csat_5", "feedback_up", "feedback_down",
)
DIMENSION_COLUMNS = ("count", "confidence_sum", "confidence_count", "resolution_seconds_sum", "resolutions")
AGENT_COLUMNS = (
    "conversations_handled", "resolved", "messages_sent", "response_seconds_sum", "responses",
    "resolution_seconds_sum", "resolutions", "csat_sum", "csat_count", "feedback_up", "feedback_down",
    "active_seconds",
)
CONVERSATION_FACT_COLUMNS = ("conversation_id", "workspace_id", "chatbot_id", "bucket", "customer_id",
                             "repeat_customer", "outcome", "first_question", "first_answer_confidence")


# --- the dirty queue ------------------------------------------------------------------------------------------
def dirty(conn: apsw.Connection, limit: int) -> list[Row]:
    return conn.execute("SELECT workspace_id, chatbot_id, bucket FROM analytics_dirty"
                        " ORDER BY workspace_id, chatbot_id, bucket LIMIT ?", (limit,)).fetchall()


def clear_dirty(conn: apsw.Connection, workspace_id: str, chatbot_id: str, start: str, end: str) -> None:
    conn.execute("DELETE FROM analytics_dirty WHERE workspace_id = ? AND chatbot_id = ? AND bucket >= ?"
                 " AND bucket < ?", (workspace_id, chatbot_id, start, end))


def pending(conn: apsw.Connection, workspace_id: str | None = None) -> int:
    if workspace_id is None:
        return int(conn.execute("SELECT count(*) AS n FROM analytics_dirty").fetchone()["n"])
    return int(conn.execute("SELECT count(*) AS n FROM analytics_dirty WHERE workspace_id = ?",
                            (workspace_id,)).fetchone()["n"])


def mark_all(conn: apsw.Connection, bucket_sql: str) -> None:
    """Every bucket that holds a conversation becomes dirty (the backfill)."""
    conn.execute(f"INSERT OR IGNORE INTO analytics_dirty SELECT workspace_id, chatbot_id, {bucket_sql}"
                 " FROM conversations")


# --- source rows of one (chatbot, time range) -----------------------------------------------------------------
_RANGE = "FROM conversations WHERE workspace_id = ? AND chatbot_id = ? AND created_at >= ? AND created_at < ?"


def source_conversations(conn: apsw.Connection, workspace_id: str, chatbot_id: str, start: str,
                         end: str) -> list[Row]:
    return conn.execute(
        "SELECT id, customer_id, status, assigned_agent_id, escalation_reason, satisfaction_rating, resolved_by,"
        f" resolved_at, created_at {_RANGE} ORDER BY created_at", (workspace_id, chatbot_id, start, end)).fetchall()


def source_messages(conn: apsw.Connection, workspace_id: str, chatbot_id: str, start: str, end: str) -> list[Row]:
    """Customer, bot and agent messages (system notices and deleted messages do not count), in order."""
    return conn.execute(
        "SELECT conversation_id, sender_type, sender_id, substr(content, 1, 300) AS content, intent,"
        " intent_confidence, sentiment, feedback, json_extract(ai_metadata, '$.confidence') AS confidence,"
        " created_at FROM messages WHERE conversation_id IN (SELECT id " + _RANGE + ")"
        " AND sender_type != 'system' AND deleted_at IS NULL ORDER BY conversation_id, created_at, rowid",
        (workspace_id, chatbot_id, start, end)).fetchall()


def handover_events(conn: apsw.Connection, workspace_id: str, chatbot_id: str, start: str, end: str) -> set[str]:
    """Conversations that were ever escalated or taken over, even if they went back to the AI later."""
    rows = conn.execute(
        "SELECT DISTINCT conversation_id FROM conversation_events WHERE conversation_id IN (SELECT id " + _RANGE
        + ") AND event_type = 'status_changed' AND json_extract(event_data, '$.event') IN ('escalate','agent_join')",
        (workspace_id, chatbot_id, start, end)).fetchall()
    return {row["conversation_id"] for row in rows}


def first_seen(conn: apsw.Connection, workspace_id: str, customer_ids: Sequence[str]) -> dict[str, str]:
    """Each customer's first conversation start in the workspace (across every chatbot)."""
    found: dict[str, str] = {}
    for offset in range(0, len(customer_ids), 500):
        chunk = customer_ids[offset:offset + 500]
        rows = conn.execute(
            f"SELECT customer_id, min(created_at) AS first FROM conversations WHERE workspace_id = ? AND customer_id"
            f" IN ({','.join('?' * len(chunk))}) GROUP BY customer_id", (workspace_id, *chunk)).fetchall()
        found.update({row["customer_id"]: row["first"] for row in rows})
    return found


# --- rollup rows ----------------------------------------------------------------------------------------------
def replace_range(conn: apsw.Connection, workspace_id: str, chatbot_id: str, start: str, end: str,
                  buckets: Iterable[dict[str, Any]], dimensions: Iterable[dict[str, Any]],
                  agents: Iterable[dict[str, Any]], facts: Iterable[dict[str, Any]]) -> None:
    """Drop the range's rollup rows and write the recomputed ones (one transaction: readers see old or new)."""
    scope = (workspace_id, chatbot_id, start, end)
    for table in ("analytics_buckets", "analytics_dimensions", "analytics_agents"):
        conn.execute(f"DELETE FROM {table} WHERE workspace_id = ? AND chatbot_id = ? AND bucket >= ? AND bucket < ?",
                     scope)
    conn.execute("DELETE FROM analytics_conversations WHERE chatbot_id = ? AND bucket >= ? AND bucket < ?"
                 " AND workspace_id = ?", (chatbot_id, start, end, workspace_id))
    _insert(conn, "analytics_buckets", ("workspace_id", "chatbot_id", "bucket", *BUCKET_COLUMNS), buckets)
    _insert(conn, "analytics_dimensions", ("workspace_id", "chatbot_id", "bucket", "dimension", "key",
                                           *DIMENSION_COLUMNS), dimensions)
    _insert(conn, "analytics_agents", ("workspace_id", "chatbot_id", "bucket", "agent_id", *AGENT_COLUMNS), agents)
    _insert(conn, "analytics_conversations", CONVERSATION_FACT_COLUMNS, facts)


def _insert(conn: apsw.Connection, table: str, columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> None:
    sql = f"INSERT INTO {table}({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    conn.executemany(sql, [tuple(row[c] for c in columns) for row in rows])


# --- period reads ---------------------------------------------------------------------------------------------
def _bot_filter(chatbot_id: str | None, column: str = "chatbot_id") -> tuple[str, tuple[str, ...]]:
    return (f" AND {column} = ?", (chatbot_id,)) if chatbot_id else ("", ())


Window = tuple[str, str, str, str]   # (local date, first bucket, end bucket, UTC→local modifier)


def _windows(windows: Sequence[Window]) -> tuple[str, list[str]]:
    """A CTE of the period's windows: rollup rows join it to get their local date and hour."""
    values = ", ".join("(?, ?, ?, ?)" for _ in windows)
    return f"WITH w(day, first, stop, shift) AS (VALUES {values})", [v for window in windows for v in window]


def bucket_sums(conn: apsw.Connection, workspace_id: str, chatbot_id: str | None, windows: Sequence[Window],
                by: str) -> list[Row]:
    """Rollup counters summed per local ``day`` or per local ``hour`` (0–23) of the period."""
    where, extra = _bot_filter(chatbot_id, "b.chatbot_id")
    cte, params = _windows(windows)
    group = "w.day" if by == "day" else "CAST(strftime('%H', b.bucket || ':00', w.shift) AS INTEGER)"
    sums = ", ".join(f"sum(b.{c}) AS {c}" for c in BUCKET_COLUMNS)
    return conn.execute(f"{cte} SELECT {group} AS {by}, {sums} FROM w JOIN analytics_buckets b"
                        f" ON b.workspace_id = ? AND b.bucket >= w.first AND b.bucket < w.stop{where}"
                        f" GROUP BY {by}", (*params, workspace_id, *extra)).fetchall()


def dimension_totals(conn: apsw.Connection, workspace_id: str, dimension: str, chatbot_id: str | None, start: str,
                     end: str) -> list[Row]:
    where, extra = _bot_filter(chatbot_id)
    sums = ", ".join(f"sum({c}) AS {c}" for c in DIMENSION_COLUMNS)
    return conn.execute(f"SELECT key, {sums} FROM analytics_dimensions WHERE workspace_id = ? AND dimension = ?"
                        f" AND bucket >= ? AND bucket < ?{where} GROUP BY key ORDER BY sum(count) DESC, key",
                        (workspace_id, dimension, start, end, *extra)).fetchall()


def dimension_by_day(conn: apsw.Connection, workspace_id: str, dimension: str, chatbot_id: str | None,
                     windows: Sequence[Window]) -> list[Row]:
    where, extra = _bot_filter(chatbot_id, "d.chatbot_id")
    cte, params = _windows(windows)
    return conn.execute(f"{cte} SELECT w.day AS day, d.key AS key, sum(d.count) AS count FROM w JOIN"
                        " analytics_dimensions d ON d.workspace_id = ? AND d.dimension = ? AND d.bucket >= w.first"
                        f" AND d.bucket < w.stop{where} GROUP BY w.day, d.key",
                        (*params, workspace_id, dimension, *extra)).fetchall()


def agent_totals(conn: apsw.Connection, workspace_id: str, chatbot_id: str | None, start: str,
                 end: str) -> dict[str, Row]:
    where, extra = _bot_filter(chatbot_id)
    sums = ", ".join(f"sum({c}) AS {c}" for c in AGENT_COLUMNS)
    rows = conn.execute(f"SELECT agent_id, {sums} FROM analytics_agents WHERE workspace_id = ? AND bucket >= ?"
                        f" AND bucket < ?{where} GROUP BY agent_id", (workspace_id, start, end, *extra)).fetchall()
    return {row["agent_id"]: row for row in rows}


def customer_counts(conn: apsw.Connection, workspace_id: str, chatbot_id: str | None, start: str,
                    end: str) -> Row:
    """Distinct customers with a conversation in the range, and how many of them had come before."""
    where, extra = _bot_filter(chatbot_id)
    return conn.execute(
        "SELECT count(DISTINCT customer_id) AS customers,"
        " count(DISTINCT CASE WHEN repeat_customer THEN customer_id END) AS repeat_customers"
        f" FROM analytics_conversations WHERE workspace_id = ? AND bucket >= ? AND bucket < ? AND customer_id IS NOT NULL{where}",
        (workspace_id, start, end, *extra)).fetchone()


def question_sample(conn: apsw.Connection, workspace_id: str, chatbot_id: str | None, start: str, end: str,
                    limit: int) -> list[Row]:
    """The latest ``limit`` first questions of the range: the bounded sample common questions are grouped from."""
    where, extra = _bot_filter(chatbot_id)
    return conn.execute(
        "SELECT first_question, outcome, first_answer_confidence FROM analytics_conversations WHERE workspace_id = ?"
        f" AND bucket >= ? AND bucket < ? AND first_question IS NOT NULL{where} ORDER BY bucket DESC LIMIT ?",
        (workspace_id, start, end, *extra, limit)).fetchall()


def open_conversations(conn: apsw.Connection, workspace_id: str, chatbot_id: str | None) -> int:
    """Conversations open right now (a live count: the status index makes it cheap)."""
    where, extra = _bot_filter(chatbot_id)
    return int(conn.execute(
        "SELECT count(*) AS n FROM conversations WHERE workspace_id = ?"
        f" AND status IN ('active','waiting','escalated','agent_handling'){where}",
        (workspace_id, *extra)).fetchone()["n"])


def agents_open_load(conn: apsw.Connection, workspace_id: str) -> dict[str, int]:
    rows = conn.execute("SELECT assigned_agent_id AS agent_id, count(*) AS n FROM conversations WHERE workspace_id = ?"
                        " AND status = 'agent_handling' AND assigned_agent_id IS NOT NULL GROUP BY assigned_agent_id",
                        (workspace_id,)).fetchall()
    return {row["agent_id"]: int(row["n"]) for row in rows}


def workspace_settings(conn: apsw.Connection, workspace_id: str) -> Row | None:
    return conn.execute("SELECT id, name, settings FROM workspaces WHERE id = ? AND deleted_at IS NULL",
                        (workspace_id,)).fetchone()


def set_workspace_setting(conn: apsw.Connection, workspace_id: str, key: str, value_json: str) -> None:
    """One key of ``workspaces.settings``: other keys (brand, timezone) are left as they are."""
    conn.execute("UPDATE workspaces SET settings = json_set(settings, '$.' || ?, json(?)),"
                 " updated_at = strftime('%Y-%m-%dT%H:%M:%fZ','now') WHERE id = ?", (key, value_json, workspace_id))


def workspaces_with_reports(conn: apsw.Connection) -> list[Row]:
    return conn.execute("SELECT id, name, settings FROM workspaces WHERE deleted_at IS NULL AND"
                        " json_extract(settings, '$.analytics_report.frequency') IN ('weekly','monthly')").fetchall()


def claim_delivery(conn: apsw.Connection, workspace_id: str, frequency: str, period_start: str,
                   recipients: int) -> bool:
    """True the first time a (workspace, frequency, period) is claimed: the report goes out once."""
    conn.execute("INSERT OR IGNORE INTO analytics_report_deliveries(workspace_id, frequency, period_start, recipients)"
                 " VALUES (?, ?, ?, ?)", (workspace_id, frequency, period_start, recipients))
    return conn.changes() == 1


def chatbots(conn: apsw.Connection, workspace_id: str) -> list[Row]:
    """Every chatbot, archived ones too: their history still counts."""
    return conn.execute("SELECT id, name, status FROM chatbots WHERE workspace_id = ? ORDER BY name",
                        (workspace_id,)).fetchall()


def staff(conn: apsw.Connection, workspace_id: str, extra_ids: Sequence[str]) -> list[Row]:
    """Active staff with their presence, plus anyone else named in ``extra_ids`` (a former agent whose work is in
    the period)."""
    marks = ",".join("?" * len(extra_ids)) or "NULL"
    return conn.execute(
        "SELECT u.id, u.display_name, u.email, u.role, u.max_concurrent_conversations, p.status AS reported_status,"
        " p.last_heartbeat_at FROM users u LEFT JOIN agent_presence p ON p.user_id = u.id WHERE u.workspace_id = ?"
        " AND ((u.role IN ('owner','admin','agent') AND u.status = 'active' AND u.deleted_at IS NULL)"
        f" OR u.id IN ({marks})) ORDER BY u.display_name, u.email", (workspace_id, *extra_ids)).fetchall()
