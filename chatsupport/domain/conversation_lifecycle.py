"""The lifecycle's timers (PRD §5.3.1), run by Huey periodic tasks: waiting → abandoned after the chatbot's
inactivity timeout, agent_handling → waiting when an agent leaves the customer without a reply for
``AGENT_REPLY_TIMEOUT``, resolved/abandoned → archived after ``CHATSUPPORT_ARCHIVE_AFTER_DAYS``.

Plain functions of (db, now) so tests drive them with a fake clock. Each run picks its candidates inside the same
write transaction that changes them (a customer writing in between cannot be overruled), changes at most
``BATCH`` conversations through the state machine, and publishes ``conversation:status_changed`` after the commit.
Running one twice in a row changes nothing the second time.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Callable

import apsw

from chatsupport import live
from chatsupport.domain import conversation_payloads as payloads
from chatsupport.domain import conversations as states
from chatsupport.store import conversations as store
from chatsupport.store.db import Database, Row
from chatsupport.store.presence import stamp

AGENT_REPLY_TIMEOUT = timedelta(minutes=10)   # the one place: agent_handling → waiting after this silence
DEFAULT_INACTIVITY_MS = 300_000                # a chatbot whose settings predate inactivity_timeout
BATCH = 500


def _apply(db: Database, pick: Callable[[apsw.Connection], list[Row]], event: str,
           data: dict[str, Any] | None = None) -> int:
    def work(conn: apsw.Connection) -> list[tuple[Row, str, str]]:
        changed = []
        for row in pick(conn):
            old = store.get(conn, row["workspace_id"], row["id"])["status"]  # type: ignore[index]
            new = states.transition(conn, row["workspace_id"], row["id"], event, data=data)
            if event == "agent_timeout":  # back to the AI: nobody holds it, any agent may take it
                store.clear_agent(conn, row["workspace_id"], row["id"])
            changed.append((row, old, new))
        return changed

    changed = db.write(work)
    for row, old, new in changed:
        live.publish("conversation:status_changed", payloads.status_changed(row["id"], old, new, "system"),
                     conversation_id=row["id"], workspace_id=row["workspace_id"])
    return len(changed)


def abandon_inactive(db: Database, now: datetime) -> int:
    """Waiting conversations whose customer said nothing for the chatbot's ``inactivity_timeout``."""
    return _apply(db, lambda conn: store.idle_waiting(conn, stamp(now), DEFAULT_INACTIVITY_MS, BATCH), "abandon",
                  {"reason": "inactivity_timeout"})


def release_silent_agents(db: Database, now: datetime) -> int:
    """Agent-handled conversations where the customer waited ``AGENT_REPLY_TIMEOUT`` for the agent: back to
    waiting, unassigned, so the AI may answer again."""
    cutoff = stamp(now - AGENT_REPLY_TIMEOUT)
    return _apply(db, lambda conn: store.agent_silent_since(conn, cutoff, BATCH), "agent_timeout",
                  {"reason": "agent_reply_timeout"})


def archive_old(db: Database, now: datetime, days: int) -> int:
    cutoff = stamp(now - timedelta(days=days))
    return _apply(db, lambda conn: store.archivable(conn, cutoff, BATCH), "archive")
