"""The lifecycle's timers with a fake clock: waiting → abandoned after the chatbot's inactivity timeout,
agent_handling → waiting when the agent leaves the customer without a reply for ten minutes, resolved/abandoned →
archived after CHATSUPPORT_ARCHIVE_AFTER_DAYS. Each change goes through the state machine and is published."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from chatsupport import live
from chatsupport.domain import conversation_lifecycle as lifecycle
from chatsupport.store import conversations as store
from chatsupport.store.presence import stamp
from chatsupport.tasks import housekeeping, runtime
from chatsupport.tasks.queue import huey
from conversation_support import Listener, Team, client, team  # noqa: F401 - shared fixtures


def now() -> datetime:
    return datetime.now(timezone.utc)


def test_waiting_conversations_are_abandoned_after_the_bots_inactivity_timeout(team: Team) -> None:
    default_bot = team.conversation(status="waiting")
    quick = team.client.post("/api/v1/chatbots", headers=team.owner_h, json={
        "name": "Quick", "behavior_settings": {"inactivity_timeout": 60000}}).json()["id"]
    on_quick = team.conversation(status="waiting", bot=quick)
    active = team.conversation(status="active")
    start = now()
    assert lifecycle.abandon_inactive(team.db, start + timedelta(seconds=30)) == 0
    assert lifecycle.abandon_inactive(team.db, start + timedelta(seconds=61)) == 1
    assert team.status(on_quick)["status"] == "abandoned"
    assert team.status(default_bot)["status"] == "waiting"            # the default is five minutes
    assert lifecycle.abandon_inactive(team.db, start + timedelta(minutes=5, seconds=1)) == 1
    assert team.status(default_bot)["status"] == "abandoned"
    assert team.status(active)["status"] == "active"                  # only waiting conversations time out
    assert lifecycle.abandon_inactive(team.db, start + timedelta(hours=1)) == 0   # idempotent
    change = [e for e in store.events(team.db.reader(), on_quick) if e["event_type"] == "status_changed"][-1]
    assert change["event_data"]["event"] == "abandon" and change["event_data"]["reason"] == "inactivity_timeout"
    assert change["triggered_by_type"] == "system"


def test_a_customer_message_restarts_the_inactivity_clock(team: Team) -> None:
    conv = team.conversation(status="waiting")
    team.db.write(lambda conn: conn.execute("UPDATE conversations SET updated_at = ? WHERE id = ?",
                                            (stamp(now() - timedelta(minutes=10)), conv)))
    team.db.write(lambda conn: store.add_message(conn, conv, "customer", "still there?"))
    assert lifecycle.abandon_inactive(team.db, now() + timedelta(minutes=1)) == 0


def _take(team: Team, conv: str) -> None:
    response = team.client.post(f"/api/v1/conversations/{conv}/takeover", headers=team.agent_h, json={})
    assert response.status_code == 200, response.text


def _age(team: Team, conv: str, sender_type: str, minutes_ago: float) -> None:
    """Move the conversation's ``sender_type`` messages (or its assignment) back in time."""
    at = stamp(now() - timedelta(minutes=minutes_ago))
    if sender_type == "assigned":
        team.db.write(lambda conn: conn.execute("UPDATE conversations SET assigned_at = ? WHERE id = ?", (at, conv)))
    else:
        team.db.write(lambda conn: conn.execute("UPDATE messages SET created_at = ? WHERE conversation_id = ?"
                                                " AND sender_type = ?", (at, conv, sender_type)))


def test_an_agent_silent_for_ten_minutes_hands_the_conversation_back(team: Team) -> None:
    conv = team.conversation(status="escalated")
    _take(team, conv)
    start = now()
    assert lifecycle.release_silent_agents(team.db, start + timedelta(minutes=9)) == 0
    assert lifecycle.release_silent_agents(team.db, start + lifecycle.AGENT_REPLY_TIMEOUT + timedelta(seconds=5)) == 1
    row = team.status(conv)
    assert row["status"] == "waiting" and row["assigned_agent_id"] is None
    # the AI may answer again, and another agent may take it
    other = team.client.post(f"/api/v1/conversations/{conv}/takeover", headers=team.other_h, json={})
    assert other.status_code == 200


def test_the_agent_clock_runs_only_while_the_customer_waits_for_the_agent(team: Team) -> None:
    answered = team.conversation(status="escalated")
    _take(team, answered)
    team.client.post(f"/api/v1/conversations/{answered}/messages", headers=team.agent_h, json={"content": "On it"})
    _age(team, answered, "assigned", 30)
    _age(team, answered, "agent", 20)                  # the agent answered 20 minutes ago; the customer is quiet
    assert lifecycle.release_silent_agents(team.db, now()) == 0

    owed = team.conversation(status="escalated")
    _take(team, owed)
    team.client.post(f"/api/v1/conversations/{owed}/messages", headers=team.agent_h, json={"content": "On it"})
    team.db.write(lambda conn: store.add_message(conn, owed, "customer", "and now?"))
    _age(team, owed, "assigned", 30)
    _age(team, owed, "agent", 20)
    _age(team, owed, "customer", 5)                    # the customer wrote after the agent, 5 minutes ago
    assert lifecycle.release_silent_agents(team.db, now()) == 0            # asked 5 minutes ago
    assert lifecycle.release_silent_agents(team.db, now() + timedelta(minutes=6)) == 1
    assert team.status(owed)["status"] == "waiting" and team.status(answered)["status"] == "agent_handling"


def test_closed_conversations_are_archived_after_the_configured_days(team: Team) -> None:
    resolved = team.conversation(status="resolved")
    abandoned = team.conversation(status="abandoned")
    waiting = team.conversation(status="waiting")
    start = now()
    assert lifecycle.archive_old(team.db, start + timedelta(days=89), 90) == 0
    assert lifecycle.archive_old(team.db, start + timedelta(days=91), 90) == 2
    assert team.status(resolved)["status"] == "archived" and team.status(abandoned)["status"] == "archived"
    assert team.status(resolved)["archived_at"] and team.status(waiting)["status"] == "waiting"
    assert lifecycle.archive_old(team.db, start + timedelta(days=400), 90) == 0


def test_job_changes_are_published_from_a_worker_thread(team: Team) -> None:
    conv = team.conversation(status="waiting")
    inbox = Listener(team.client, [live.workspace_channel(team.ws)])
    try:
        assert lifecycle.abandon_inactive(team.db, now() + timedelta(hours=1)) == 1   # called off the event loop
        assert inbox.take(1) == [{"event": "conversation:status_changed", "data": {
            "conversation_id": conv, "old_status": "waiting", "new_status": "abandoned", "changed_by": "system"}}]
    finally:
        inbox.close()


def test_the_periodic_tasks_run_the_jobs(team: Team) -> None:
    periodic = huey._registry._periodic_tasks  # noqa: SLF001 - no public listing
    assert housekeeping.conversation_timeouts.task_class in periodic
    assert housekeeping.archive_conversations.task_class in periodic
    services = team.client.app.state.services
    assert services.settings.ARCHIVE_AFTER_DAYS == 90
    runtime.bind(services.db, services.settings.replace(ARCHIVE_AFTER_DAYS=1))
    try:
        old = team.conversation(status="resolved")
        team.db.write(lambda conn: conn.execute("UPDATE conversations SET updated_at = ? WHERE id = ?",
                                                (stamp(now() - timedelta(days=2)), old)))
        assert housekeeping.archive_conversations.call_local() == 1
        assert housekeeping.conversation_timeouts.call_local() == {"abandoned": 0, "released": 0}
    finally:
        runtime.unbind()
    assert team.status(old)["status"] == "archived"
