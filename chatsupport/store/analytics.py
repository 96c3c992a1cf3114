"""Analytics rollups (``console_schema.ANALYTICS_SCHEMA``): the dirty-bucket queue, the source rows a recompute
reads, the rollup rows it writes, and the period reads the dashboard makes. Buckets are 15-minute UTC strings
``YYYY-MM-DDTHH:MM``; a range is ``[start, end)`` in those strings. Every read names its workspace."""

from __future__ import annotations

from datetime import datetime, timedelta
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
    _resum_hours(conn, workspace_id, chatbot_id, hour_floor(start), hour_ceil(end))


def hour_floor(bucket: str) -> str:
    return bucket[:14] + "00"


def hour_ceil(bucket: str) -> str:
    if bucket.endswith(":00"):
        return bucket
    return (datetime.strptime(bucket[:13], "%Y-%m-%dT%H") + timedelta(hours=1)).strftime("%Y-%m-%dT%H:00")


def _resum_hours(conn: apsw.Connection, workspace_id: str, chatbot_id: str, start: str, end: str) -> None:
    """The hourly copies of ``[start, end)`` (whole hours) become the sums of their 15-minute rows again."""
    scope = (workspace_id, chatbot_id, start, end)
    for table, keys, columns in (("analytics_buckets", ("workspace_id", "chatbot_id"), BUCKET_COLUMNS),
                                 ("analytics_dimensions", ("workspace_id", "dimension", "chatbot_id", "key"),
                                  DIMENSION_COLUMNS)):
        conn.execute(f"DELETE FROM {table}_hourly WHERE workspace_id = ? AND chatbot_id = ? AND bucket >= ?"
                     " AND bucket < ?", scope)
        names = ", ".join((*keys, "bucket", *columns))
        sums = ", ".join((*keys, "substr(bucket, 1, 14) || '00'", *(f"sum({c})" for c in columns)))
        conn.execute(f"INSERT INTO {table}_hourly({names}) SELECT {sums} FROM {table} WHERE workspace_id = ?"
                     f" AND chatbot_id = ? AND bucket >= ? AND bucket < ? GROUP BY {', '.join(keys)},"
                     " substr(bucket, 1, 14)", scope)


def _insert(conn: apsw.Connection, table: str, columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> None:
    sql = f"INSERT INTO {table}({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    conn.executemany(sql, [tuple(row[c] for c in columns) for row in rows])


# --- period reads ---------------------------------------------------------------------------------------------
def _bot_filter(chatbot_id: str | None, column: str = "chatbot_id") -> tuple[str, tuple[str, ...]]:
    return (f" AND {column} = ?", (chatbot_id,)) if chatbot_id else ("", ())


Window = tuple[str, str, str, str]   # (local date, first bucket, end bucket, UTC→local offset as "+330 minutes")


def _pieces(windows: Sequence[Window], hourly: bool = True) -> tuple[list[Window], list[Window]]:
    """Each window split into its whole hours (read from the hourly tables) and the quarter hours at its edges
    (read from the 15-minute tables): the same sums from about a quarter of the rows."""
    if not hourly:
        return [], list(windows)
    hours: list[Window] = []
    quarters: list[Window] = []
    for label, first, stop, shift in windows:
        inner_first, inner_stop = hour_ceil(first), hour_floor(stop)
        if inner_first >= inner_stop:
            quarters.append((label, first, stop, shift))
            continue
        hours.append((label, inner_first, inner_stop, shift))
        quarters.extend((label, a, b, shift) for a, b in ((first, inner_first), (inner_stop, stop)) if a < b)
    return hours, quarters


def _from_pieces(table: str, key_filter: str, columns: Sequence[str], windows: Sequence[Window],
                 chatbot_id: str | None, filter_params: Sequence[Any] = (), hourly: bool = True) -> tuple[str, list[Any]]:
    """SQL (and parameters) for the rows of ``table`` inside ``windows``, each row carrying its window's ``day``
    and ``shift``: a UNION ALL of the hourly and the 15-minute table. ``key_filter`` narrows rows (e.g. the
    dimension); the caller adds the workspace id first among ``filter_params``."""
    bot, extra = _bot_filter(chatbot_id, "t.chatbot_id")
    selects, params = [], []
    for source, pieces in zip((f"{table}_hourly", table), _pieces(windows, hourly)):
        if not pieces:
            continue
        values = ", ".join("(?, ?, ?, ?)" for _ in pieces)
        selects.append(f"SELECT w.day AS day, w.shift AS shift, t.bucket AS bucket, {', '.join(f't.{c}' for c in columns)}"
                       " FROM (SELECT column1 AS day, column2 AS first, column3 AS stop, column4 AS shift"
                       f" FROM (VALUES {values})) w"
                       f" JOIN {source} t ON {key_filter} AND t.bucket >= w.first AND t.bucket < w.stop{bot}")
        params += [v for piece in pieces for v in piece] + [*filter_params, *extra]
    return " UNION ALL ".join(selects), params


def bucket_sums(conn: apsw.Connection, workspace_id: str, chatbot_id: str | None, windows: Sequence[Window],
                by: str, columns: Sequence[str] = BUCKET_COLUMNS) -> list[Row]:
    """Rollup ``columns`` summed per local ``day`` or per local ``hour`` (0–23) of the period. The local hour is
    integer arithmetic on the bucket text and the window's offset in minutes (``CAST('+330 minutes' AS INTEGER)``
    is 330): strftime per row cost a third of a 90-day dashboard."""
    # an hourly row straddles two local hours where the offset is not whole hours (India's +5:30)
    hourly = by == "day" or all(int(window[3].split()[0]) % 60 == 0 for window in windows)
    rows, params = _from_pieces("analytics_buckets", "t.workspace_id = ?", columns, windows, chatbot_id,
                                (workspace_id,), hourly)
    minute = ("CAST(substr(bucket, 12, 2) AS INTEGER) * 60 + CAST(substr(bucket, 15, 2) AS INTEGER)"
              " + CAST(shift AS INTEGER)")
    group = "day" if by == "day" else f"(({minute}) % 1440 + 1440) % 1440 / 60"
    sums = ", ".join(f"sum({c}) AS {c}" for c in columns)
    return conn.execute(f"SELECT {group} AS {by}, {sums} FROM ({rows}) GROUP BY {by}", params).fetchall()


def dimension_totals(conn: apsw.Connection, workspace_id: str, dimension: str, chatbot_id: str | None, start: str,
                     end: str) -> list[Row]:
    rows, params = _from_pieces("analytics_dimensions", "t.workspace_id = ? AND t.dimension = ?",
                                ("key", *DIMENSION_COLUMNS), [("", start, end, "")], chatbot_id,
                                (workspace_id, dimension))
    sums = ", ".join(f"sum({c}) AS {c}" for c in DIMENSION_COLUMNS)
    return conn.execute(f"SELECT key, {sums} FROM ({rows}) GROUP BY key ORDER BY sum(count) DESC, key",
                        params).fetchall()


def dimension_by_day(conn: apsw.Connection, workspace_id: str, dimension: str, chatbot_id: str | None,
                     windows: Sequence[Window]) -> list[Row]:
    rows, params = _from_pieces("analytics_dimensions", "t.workspace_id = ? AND t.dimension = ?", ("key", "count"),
                                windows, chatbot_id, (workspace_id, dimension))
    return conn.execute(f"SELECT day, key, sum(count) AS count FROM ({rows}) GROUP BY day, key", params).fetchall()


def agent_totals(conn: apsw.Connection, workspace_id: str, chatbot_id: str | None, start: str,
                 end: str) -> dict[str, Row]:
    where, extra = _bot_filter(chatbot_id)
    sums = ", ".join(f"sum({c}) AS {c}" for c in AGENT_COLUMNS)
    rows = conn.execute(f"SELECT agent_id, {sums} FROM analytics_agents WHERE workspace_id = ? AND bucket >= ?"
                        f" AND bucket < ?{where} GROUP BY agent_id", (workspace_id, start, end, *extra)).fetchall()
    return {row["agent_id"]: row for row in rows}


def customer_counts(conn: apsw.Connection, workspace_id: str, chatbot_id: str | None, start: str,
                    end: str) -> Row:
    """Distinct customers with a conversation in the range, and how many of them had come before.

    Counting distinct ids means sorting them, unless they are read in customer order: when the range holds a good
    share of the history (a third or more of its span) one pass over the customer-ordered index is cheaper than
    sorting the range's rows (90 days at 1M messages: ~5x); a short range sorts its few rows."""
    bot, extra = _bot_filter(chatbot_id)
    scope = f"workspace_id = ?{bot}"
    # two statements: min() and max() together defeat SQLite's one-probe min/max optimisation (15 ms vs 0.02)
    first, last = (conn.execute(f"SELECT {edge}(bucket) AS b FROM analytics_conversations WHERE {scope}",
                                (workspace_id, *extra)).fetchone()["b"] for edge in ("min", "max"))
    index = ""
    if first is not None:
        def minutes(bucket: str) -> float:
            return datetime.strptime(bucket[:16], "%Y-%m-%dT%H:%M").timestamp() / 60
        history = minutes(last) - minutes(first) + 15
        covered = min(minutes(end), minutes(last) + 15) - max(minutes(start), minutes(first))
        if covered * 3 >= history:
            index = " INDEXED BY " + ("idx_analytics_conversations_bot_customer" if chatbot_id
                                      else "idx_analytics_conversations_customer")
    return conn.execute(
        "SELECT count(*) AS customers, coalesce(sum(came_before), 0) AS repeat_customers FROM"
        f" (SELECT max(repeat_customer) AS came_before FROM analytics_conversations{index} WHERE {scope}"
        " AND customer_id IS NOT NULL AND bucket >= ? AND bucket < ? GROUP BY customer_id)",
        (workspace_id, *extra, start, end)).fetchone()


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
