"""What agents do to a conversation (PRD §5.3.3): take over, reply, return to the AI, resolve, reopen, assign,
tag, mark read, and the agent's typing indicator.

Each action is one write transaction that re-reads the conversation, goes through the state machine
(``domain.conversations.transition``), logs its own event and audit row, and only after the commit publishes the
widget-protocol frames to the conversation's and the workspace's channels.

Who holds a conversation: ``agent_handling`` with an ``assigned_agent_id``. Another agent's takeover or reply is
refused with 409 ``already_taken`` (the same agent again is a no-op). A reply on a conversation nobody holds
(active, waiting, escalated) takes it over first, so the customer sees "agent joined" before the agent's words and
the AI falls silent; resolved and abandoned conversations must be reopened first (409 ``illegal_transition``).
Return to AI and resolve are open to any staff member, so a colleague can close what someone left behind.
Taking a conversation live (takeover, a first reply, a handover) is refused with 409 ``agent_at_capacity`` once
the agent handles their max concurrent conversations.

Assignment is not a status: ``assigned_agent_id`` says who the conversation is for. On an ``agent_handling``
conversation, assigning hands it over (the customer sees the new agent join); on any other it only names the
agent who should pick it up (their "mine" list, a notification), the status stays, the AI keeps answering, and
whoever takes it over holds it. An agent may assign to themselves (taking another agent's live conversation
that way is ``already_taken``); handing to someone else is ``conversation.assign`` (owners and admins).
Assignments (but a handover's ``agent:joined``) and tag changes are console matters: their frames go to the
workspace channel only (``CONSOLE_ONLY``), never to the widget; a read marker goes to the reader's own channel.
"""

from __future__ import annotations

from typing import Any, Callable

import apsw

from chatsupport import live
from chatsupport.domain import conversation_payloads as payloads
from chatsupport.domain import conversations as states
from chatsupport.domain import events
from chatsupport.domain import notifications
from chatsupport.domain.audit import Actor, record
from chatsupport.domain.auth import Context
from chatsupport.domain.permissions import allowed
from chatsupport.errors import AppError
from chatsupport.store import collaboration
from chatsupport.store import conversations as store
from chatsupport.store import users
from chatsupport.store.db import Row

MAX_MESSAGE_CHARS = 4000
MAX_NOTE_CHARS = 2000
MAX_TAGS = 20
MAX_TAG_CHARS = 50

Frames = list[tuple[str, dict[str, Any]]]
# Events the customer's widget must not hear: published to the workspace channel only.
CONSOLE_ONLY = frozenset({"conversation:assigned", "conversation:tags_updated"})


def _invalid(field: str, message: str) -> AppError:
    return AppError("validation_error", details=[{"field": field, "message": message}])


def _run(ctx: Context, actor: Actor, conversation_id: str,
         work: Callable[[apsw.Connection], tuple[dict[str, Any], Frames]]) -> dict[str, Any]:
    """One transaction, then the frames it produced, in order, to widget and console."""
    result, frames = ctx.db.write(work)
    for event, data in frames:
        live.publish(event, data, conversation_id=None if event in CONSOLE_ONLY else conversation_id,
                     workspace_id=actor.workspace_id)
    return result


def _conversation(conn: apsw.Connection, actor: Actor, conversation_id: str) -> Row:
    row = store.details(conn, actor.workspace_id, conversation_id)
    if row is None:
        raise AppError("not_found", "Conversation not found.")
    return row


def exists(ctx: Context, actor: Actor, conversation_id: str) -> bool:
    """For the web layer's 404-before-the-body check; the actions check again inside their transaction."""
    return store.get(ctx.db.reader(), actor.workspace_id, conversation_id) is not None


def _agent(conn: apsw.Connection, actor: Actor, agent_id: str | None) -> Row:
    """The person taking the conversation: the caller, or (owners and admins only) another active staff member."""
    if agent_id is not None and agent_id != actor.user_id and not allowed(actor.role, "conversation.assign"):
        raise AppError("forbidden", "Only an owner or admin can hand a conversation to someone else.")
    user = users.get_in_workspace(conn, actor.workspace_id, agent_id or actor.user_id)
    if user is None or user["status"] != "active" or not allowed(user["role"], "conversation.respond"):
        raise _invalid("agent_id", "Not an active owner, admin or agent of this workspace.")
    return user


def name_of(agent: Row) -> str:
    """What the customer sees; never the e-mail address."""
    return agent["display_name"] or "Support agent"


def _held_by_other(conversation: Row, agent_id: str) -> None:
    if conversation["status"] == "agent_handling" and conversation["assigned_agent_id"] not in (None, agent_id):
        raise AppError("already_taken", details={"assigned_agent_id": conversation["assigned_agent_id"]})


def _room_for_one_more(conn: apsw.Connection, workspace_id: str, agent: Row) -> None:
    """An agent's max concurrent conversations (set under Settings → Team): one more live conversation beyond it
    is refused with 409 ``agent_at_capacity``."""
    limit = agent["max_concurrent_conversations"]
    if limit is None:
        return
    held = users.conversations_held(conn, workspace_id, agent["id"]).get(agent["id"], 0)
    if held >= limit:
        raise AppError("agent_at_capacity", details={"agent_id": agent["id"], "max_concurrent_conversations": limit,
                                                     "active_conversations": held})


def _join(conn: apsw.Connection, actor: Actor, conversation: Row, agent: Row) -> Frames:
    conversation_id = conversation["id"]
    _room_for_one_more(conn, actor.workspace_id, agent)
    new = states.transition(conn, actor.workspace_id, conversation_id, "agent_join", by_type="user",
                            by_id=actor.user_id, agent_id=agent["id"], data={"agent_id": agent["id"]})
    store.add_event(conn, conversation_id, "agent_joined", {"agent_id": agent["id"]}, "user", actor.user_id)
    record(conn, "conversation.taken_over", actor=actor, resource_type="conversation", resource_id=conversation_id,
           changes={"before": {"status": conversation["status"]}, "after": {"status": new}},
           metadata={"agent_id": agent["id"]})
    return [("conversation:status_changed", payloads.status_changed(conversation_id, conversation["status"], new,
                                                                    agent["id"])),
            ("agent:joined", payloads.agent_joined(conversation_id, {**agent, "name": name_of(agent)}))]


def _say(conn: apsw.Connection, conversation_id: str, agent: Row, content: str) -> tuple[Row, Frames]:
    message_id = store.add_message(conn, conversation_id, "agent", content, sender_id=agent["id"],
                                   sender_name=name_of(agent))
    message = store.get_message(conn, message_id)
    assert message is not None
    message["attachments"] = []
    return message, [("message:receive", payloads.message_receive(message))]


def _content(text: str, field: str) -> str:
    text = text.strip()
    if not text or len(text) > MAX_MESSAGE_CHARS:
        raise _invalid(field, f"Between 1 and {MAX_MESSAGE_CHARS} characters.")
    return text


# --- actions --------------------------------------------------------------------------------------------------
def takeover(ctx: Context, actor: Actor, conversation_id: str, agent_id: str | None = None,
             message: str | None = None) -> dict[str, Any]:
    """Returns the PRD takeover response. Taking over a conversation one already holds changes nothing and sends
    no message again (a retried request must not greet the customer twice)."""

    def work(conn: apsw.Connection) -> tuple[dict[str, Any], Frames]:
        conversation = _conversation(conn, actor, conversation_id)
        text = _content(message, "message") if message is not None else None
        agent = _agent(conn, actor, agent_id)
        _held_by_other(conversation, agent["id"])
        frames: Frames = []
        if conversation["status"] != "agent_handling":
            frames = _join(conn, actor, conversation, agent)
            if text:
                frames += _say(conn, conversation_id, agent, text)[1]
        after = _conversation(conn, actor, conversation_id)
        return {"conversation_id": conversation_id, "status": after["status"],
                "assigned_agent": {"id": agent["id"], "name": name_of(agent)},
                "takeover_at": after["assigned_at"]}, frames

    return _run(ctx, actor, conversation_id, work)


def reply(ctx: Context, actor: Actor, conversation_id: str, content: str) -> dict[str, Any]:
    """An agent's message to the customer; takes the conversation over first when nobody holds it."""

    def work(conn: apsw.Connection) -> tuple[dict[str, Any], Frames]:
        conversation = _conversation(conn, actor, conversation_id)
        text = _content(content, "content")
        agent = _agent(conn, actor, None)
        _held_by_other(conversation, agent["id"])
        frames = _join(conn, actor, conversation, agent) if conversation["status"] != "agent_handling" else []
        message, said = _say(conn, conversation_id, agent, text)
        return {"conversation_id": conversation_id, "status": "agent_handling",
                "message": {"id": message["id"], "content": message["content"],
                            "sender": {"type": "agent", "id": agent["id"], "name": message["sender_name"]},
                            "timestamp": message["created_at"]}}, frames + said

    result = _run(ctx, actor, conversation_id, work)
    events.message_created(ctx.db, actor.workspace_id, result["message"]["id"])
    return result


def return_to_ai(ctx: Context, actor: Actor, conversation_id: str) -> dict[str, Any]:
    def work(conn: apsw.Connection) -> tuple[dict[str, Any], Frames]:
        conversation = _conversation(conn, actor, conversation_id)
        new = states.transition(conn, actor.workspace_id, conversation_id, "return_to_ai", by_type="user",
                                by_id=actor.user_id, data={"agent_id": conversation["assigned_agent_id"]})
        store.clear_agent(conn, actor.workspace_id, conversation_id)
        record(conn, "conversation.returned_to_ai", actor=actor, resource_type="conversation",
               resource_id=conversation_id, metadata={"agent_id": conversation["assigned_agent_id"]})
        after = _conversation(conn, actor, conversation_id)
        return {"conversation_id": conversation_id, "status": new, "assigned_agent": None,
                "returned_at": after["updated_at"]}, [
            ("conversation:status_changed", payloads.status_changed(conversation_id, conversation["status"], new,
                                                                    actor.user_id))]

    return _run(ctx, actor, conversation_id, work)


def clean_tags(tags: list[str] | None, existing: list[str]) -> list[str]:
    """Existing tags plus the new ones, trimmed, without duplicates (case-insensitive), in first-seen order."""
    merged: dict[str, str] = {}
    for tag in [*existing, *(tags or [])]:
        tag = " ".join(str(tag).split())
        if not tag or len(tag) > MAX_TAG_CHARS:
            raise _invalid("tags", f"Each tag has 1 to {MAX_TAG_CHARS} characters.")
        merged.setdefault(tag.lower(), tag)
    if len(merged) > MAX_TAGS:
        raise _invalid("tags", f"At most {MAX_TAGS} tags per conversation.")
    return list(merged.values())


def resolve(ctx: Context, actor: Actor, conversation_id: str, resolution_note: str | None = None,
            tags: list[str] | None = None) -> dict[str, Any]:
    """Resolve with an optional note; ``tags`` are added to the conversation's tags (``PUT …/tags`` replaces)."""

    def work(conn: apsw.Connection) -> tuple[dict[str, Any], Frames]:
        conversation = _conversation(conn, actor, conversation_id)
        note = (resolution_note or "").strip() or None
        if note is not None and len(note) > MAX_NOTE_CHARS:
            raise _invalid("resolution_note", f"At most {MAX_NOTE_CHARS} characters.")
        merged = clean_tags(tags, conversation["tags"])
        new = states.transition(conn, actor.workspace_id, conversation_id, "resolve", by_type="user",
                                by_id=actor.user_id, data={"resolved_by": actor.user_id})
        store.set_resolution(conn, actor.workspace_id, conversation_id, actor.user_id, note, merged)
        store.add_event(conn, conversation_id, "resolved", {"resolved_by": actor.user_id,
                                                            **({"note": note} if note else {})},
                        "user", actor.user_id)
        record(conn, "conversation.resolved", actor=actor, resource_type="conversation", resource_id=conversation_id,
               changes={"before": {"status": conversation["status"]}, "after": {"status": new, "tags": merged}})
        after = _conversation(conn, actor, conversation_id)
        return {"conversation_id": conversation_id, "status": new, "resolved_by": actor.user_id,
                "resolved_at": after["resolved_at"]}, [
            ("conversation:status_changed", payloads.status_changed(conversation_id, conversation["status"], new,
                                                                    actor.user_id)),
            ("conversation:resolved", payloads.resolved(conversation_id))]

    result = _run(ctx, actor, conversation_id, work)
    events.conversation_event(ctx.db, actor.workspace_id, "conversation.resolved", conversation_id)
    return result


def reopen(ctx: Context, actor: Actor, conversation_id: str) -> dict[str, Any]:
    """resolved or abandoned → active: the AI answers again; the assigned agent, if any, stays named."""

    def work(conn: apsw.Connection) -> tuple[dict[str, Any], Frames]:
        conversation = _conversation(conn, actor, conversation_id)
        new = states.transition(conn, actor.workspace_id, conversation_id, "reopen", by_type="user",
                                by_id=actor.user_id, data={"reopened_by": actor.user_id})
        record(conn, "conversation.reopened", actor=actor, resource_type="conversation", resource_id=conversation_id,
               changes={"before": {"status": conversation["status"]}, "after": {"status": new}})
        after = _conversation(conn, actor, conversation_id)
        return {"conversation_id": conversation_id, "status": new, "reopened_by": actor.user_id,
                "reopened_at": after["updated_at"]}, [
            ("conversation:status_changed", payloads.status_changed(conversation_id, conversation["status"], new,
                                                                    actor.user_id))]

    return _run(ctx, actor, conversation_id, work)


def assign(ctx: Context, actor: Actor, conversation_id: str, agent_id: str) -> dict[str, Any]:
    """See the module docstring: a handover on an agent-handled conversation, a named owner on any other."""
    sent: list[Row] = []

    def work(conn: apsw.Connection) -> tuple[dict[str, Any], Frames]:
        conversation = _conversation(conn, actor, conversation_id)
        agent = _agent(conn, actor, agent_id)
        if conversation["status"] == "archived":
            raise AppError("conversation_closed")
        if not allowed(actor.role, "conversation.assign"):
            _held_by_other(conversation, agent["id"])
        before = conversation["assigned_agent_id"]
        result = {"conversation_id": conversation_id, "status": conversation["status"],
                  "assigned_agent": {"id": agent["id"], "name": name_of(agent)}, "previous_agent_id": before}
        if before == agent["id"]:
            return result, []
        handover = conversation["status"] == "agent_handling"
        if handover:
            _room_for_one_more(conn, actor.workspace_id, agent)
        collaboration.assign(conn, actor.workspace_id, conversation_id, agent["id"])
        store.add_event(conn, conversation_id, "assigned", {"agent_id": agent["id"], "previous_agent_id": before,
                                                            "handover": handover}, "user", actor.user_id)
        frames: Frames = [("conversation:assigned", {"conversation_id": conversation_id,
                                                     "assigned_agent": result["assigned_agent"],
                                                     "previous_agent_id": before, "assigned_by": actor.user_id})]
        if handover:
            store.add_event(conn, conversation_id, "agent_joined", {"agent_id": agent["id"]}, "user", actor.user_id)
            frames.append(("agent:joined", payloads.agent_joined(conversation_id, {**agent, "name": name_of(agent)})))
        record(conn, "conversation.assigned", actor=actor, resource_type="conversation", resource_id=conversation_id,
               changes={"before": {"assigned_agent_id": before}, "after": {"assigned_agent_id": agent["id"]}},
               metadata={"handover": handover})
        sent[:] = notifications.assigned(conn, actor, conversation_id, agent["id"])
        return result, frames

    result = _run(ctx, actor, conversation_id, work)
    notifications.publish(sent)
    return result


def set_tags(ctx: Context, actor: Actor, conversation_id: str, tags: list[str]) -> dict[str, Any]:
    """Replace the conversation's tags (trimmed, case-insensitive duplicates dropped); any status, archived too."""

    def work(conn: apsw.Connection) -> tuple[dict[str, Any], Frames]:
        conversation = _conversation(conn, actor, conversation_id)
        cleaned = clean_tags(tags, [])
        result = {"conversation_id": conversation_id, "tags": cleaned}
        if cleaned == conversation["tags"]:
            return result, []
        collaboration.set_tags(conn, actor.workspace_id, conversation_id, cleaned)
        store.add_event(conn, conversation_id, "tags_changed", {"before": conversation["tags"], "after": cleaned},
                        "user", actor.user_id)
        record(conn, "conversation.tags_updated", actor=actor, resource_type="conversation",
               resource_id=conversation_id, changes={"before": {"tags": conversation["tags"]},
                                                     "after": {"tags": cleaned}})
        return result, [("conversation:tags_updated", result)]

    return _run(ctx, actor, conversation_id, work)


def tag_suggestions(ctx: Context, actor: Actor, prefix: str, limit: int) -> dict[str, Any]:
    """The workspace's tags for autocomplete, most used first."""
    rows = collaboration.tag_counts(ctx.db.reader(), actor.workspace_id, " ".join(prefix.split()), limit)
    return {"data": [{"tag": r["tag"], "count": r["count"]} for r in rows]}


def mark_read(ctx: Context, actor: Actor, conversation_id: str) -> dict[str, Any]:
    """The caller has read the conversation up to now (the inbox's unread highlight). Not audited: reading is not
    a change. The caller's other console tabs hear ``conversation:read``."""

    def work(conn: apsw.Connection) -> str:
        _conversation(conn, actor, conversation_id)
        return collaboration.mark_read(conn, actor.user_id, conversation_id)

    read_at = ctx.db.write(work)
    result = {"conversation_id": conversation_id, "read_at": read_at}
    live.publish("conversation:read", result, channel=live.user_channel(actor.user_id))
    return result


def typing(ctx: Context, actor: Actor, conversation_id: str, is_typing: bool) -> dict[str, Any]:
    """The agent's typing indicator in the customer's widget: only from the agent holding the conversation, or
    anyone on staff while nobody holds it. Nothing is stored."""
    conn = ctx.db.reader()
    conversation = _conversation(conn, actor, conversation_id)
    if conversation["status"] == "archived":
        raise AppError("conversation_closed")
    _held_by_other(conversation, actor.user_id)
    me = users.get_in_workspace(conn, actor.workspace_id, actor.user_id)
    name = name_of(me) if me is not None else "Support agent"
    live.publish("typing:start" if is_typing else "typing:stop", payloads.typing(conversation_id, "agent", name),
                 conversation_id=conversation_id, workspace_id=actor.workspace_id)
    return {"conversation_id": conversation_id, "typing": is_typing}
