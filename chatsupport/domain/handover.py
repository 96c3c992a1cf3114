"""Handing a conversation to a person: when one can be expected, and what the customer is told. One place for
the wait estimate, used by the answer engine's escalations and by the widget's "Talk to a person" button."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import apsw

from chatsupport.domain.chatbot_schema import DEFAULTS
from chatsupport.llm import escalation
from chatsupport.store import conversations as store
from chatsupport.store import presence

OFFLINE_DEFAULT = str(DEFAULTS["business_hours"]["offline_message"])  # type: ignore[index]


@dataclass(frozen=True)
class Wait:
    open_now: bool
    agents_online: int
    queue_ahead: int
    minutes: int | None         # None: closed, or nobody online to estimate from

    @property
    def seconds(self) -> int | None:
        return None if self.minutes is None else self.minutes * 60


def wait_estimate(conn: apsw.Connection, workspace_id: str, hours: dict[str, Any], now: datetime) -> Wait:
    """Agents count as online by the presence list's own rule (their console's heartbeat)."""
    open_now = escalation.is_open(hours, now)
    online = store.agents_online(conn, workspace_id, presence.online_cutoff(now))
    ahead = store.waiting_for_agent(conn, workspace_id)
    minutes = escalation.estimated_wait_minutes(online, ahead) if open_now else None
    return Wait(open_now, online, ahead, minutes)


def notice(reason: str, wait: Wait, hours: dict[str, Any]) -> str:
    return escalation.escalation_message(reason, open_now=wait.open_now, wait_minutes=wait.minutes,
                                         offline_message=hours.get("offline_message") or OFFLINE_DEFAULT)
