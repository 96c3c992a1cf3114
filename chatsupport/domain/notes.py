"""Internal notes (PRD Story 6.2): markdown the team writes beside a conversation, with @mentions.

Notes never reach a customer: ``note:created`` goes to the workspace channel only (consoles), never to
``conversation:<id>``, the one channel a widget listens on for its conversation.

Markdown is rendered here, on the server, by markdown-it-py (CommonMark plus tables and strikethrough) with raw
HTML off (``<script>`` stays text), images off (no tracking pixels in the console) and links kept only when they
are http, https or mailto; ``content_html`` is therefore safe to insert as-is, and is rendered on every read so
old notes get today's rules.

Mentions, two spellings:
- ``@[Sarah Johnson](<user id>)``: what the console's autocomplete inserts; exact, survives renames.
- ``@sarah`` (the first word of a display name), ``@sarah.j`` (an e-mail's local part) or ``@sarah.j@acme.example``
  (the whole address), case-insensitive, when exactly one active member of the workspace answers to it; an
  ambiguous handle mentions nobody.
A mention is only a mention in running text (not inside code), of an active member of the note's workspace.
Everyone mentioned except the author is notified (``notification:new``), and e-mailed when SMTP is configured.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html import escape
from typing import Any, Sequence

import apsw
from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.rules_inline import StateInline
from markdown_it.token import Token
from markdown_it.utils import OptionsDict

from chatsupport import live
from chatsupport.domain import notifications
from chatsupport.domain.audit import Actor, record
from chatsupport.domain.auth import Context
from chatsupport.errors import AppError
from chatsupport.store import collaboration as store
from chatsupport.store import conversations as conversation_store
from chatsupport.store.db import Row

MAX_NOTE_CHARS = 5000
SAFE_SCHEMES = ("http://", "https://", "mailto:")
STRUCTURED = re.compile(r"\[([^\[\]\n]{1,100})\]\(([A-Za-z0-9-]{1,64})\)")
HANDLE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}(?:@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)?")
WORDLIKE = re.compile(r"[\w@.+/-]")
# Where a mention e-mail sends the reader: the conversation in the console.
CONSOLE_CONVERSATION_PATH = "/inbox/{conversation_id}"


# --- rendering ------------------------------------------------------------------------------------------------
def _handles(member: Row) -> set[str]:
    email = str(member["email"]).lower()
    first = (member["display_name"] or "").split()
    return {email, email.split("@", 1)[0], *([first[0].lower()] if first else [])}


def _mention(state: StateInline, silent: bool) -> bool:
    """Inline rule at "@": a structured mention, or a handle that names exactly one member."""
    src, pos = state.src, state.pos
    if src[pos] != "@" or (pos > 0 and WORDLIKE.match(src[pos - 1])):
        return False
    members: dict[str, Row] = state.env["members"]
    only: set[str] | None = state.env["only"]
    structured = STRUCTURED.match(src, pos + 1)
    if structured:
        member = members.get(structured.group(2))
        member = member if member is not None and (only is None or member["id"] in only) else None
        if not silent:
            token = state.push("mention" if member else "text", "", 0)
            token.content = f"@{structured.group(1)}"
            token.meta = {"user_id": member["id"]} if member else {}
        state.pos = structured.end()
    else:
        handle = HANDLE.match(src, pos + 1)
        if handle is None:
            return False
        text = handle.group(0).rstrip(".-+_")
        found = [m for m in members.values() if text.lower() in _handles(m)]
        if len(found) != 1 or (only is not None and found[0]["id"] not in only):
            return False
        if not silent:
            token = state.push("mention", "", 0)
            token.content = f"@{text}"
            token.meta = {"user_id": found[0]["id"]}
        state.pos = pos + 1 + len(text)
    if not silent and state.tokens[-1].type == "mention":
        state.env["mentioned"].setdefault(state.tokens[-1].meta["user_id"], None)
    return True


def _render_mention(_: RendererHTML, tokens: Sequence[Token], idx: int, __: OptionsDict, ___: Any) -> str:
    token = tokens[idx]
    return (f'<span class="mention" data-user-id="{escape(token.meta["user_id"])}">'
            f"{escape(token.content)}</span>")


def _render_link_open(renderer: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict,
                      env: Any) -> str:
    tokens[idx].attrSet("rel", "nofollow noopener noreferrer")
    return renderer.renderToken(tokens, idx, options, env)


def _safe_link(url: str) -> bool:
    return url.strip().lower().startswith(SAFE_SCHEMES)


def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False})
    md.enable(["table", "strikethrough"])
    md.disable("image")
    md.validateLink = _safe_link  # type: ignore[method-assign]
    md.inline.ruler.push("mention", _mention)
    md.add_render_rule("mention", _render_mention)
    md.add_render_rule("link_open", _render_link_open)
    return md


MARKDOWN = _markdown()


@dataclass
class Rendered:
    html: str
    mentioned: list[str] = field(default_factory=list)   # user ids, in order of first mention


def render(content: str, members: Sequence[Row], only: Sequence[str] | None = None) -> Rendered:
    """``members``: who may be mentioned (active members of the workspace). ``only``: the user ids a stored note
    mentioned — a handle is still resolved among all ``members``, so it means what it meant when written (a
    colleague who joined since does not make "@sarah" resolve differently) — or None when writing."""
    env: dict[str, Any] = {"members": {m["id"]: m for m in members}, "only": None if only is None else set(only),
                           "mentioned": {}}
    html = MARKDOWN.render(content, env)
    return Rendered(html, list(env["mentioned"]))


# --- notes ----------------------------------------------------------------------------------------------------
@dataclass
class Added:
    note: dict[str, Any]
    emails: list[tuple[str, str, str]]   # (to, subject, body): mention e-mails for the job queue


def _content(text: str) -> str:
    text = text.strip()
    if not text or len(text) > MAX_NOTE_CHARS:
        raise AppError("validation_error", details=[{"field": "content",
                                                     "message": f"Between 1 and {MAX_NOTE_CHARS} characters."}])
    return text


def _conversation(conn: apsw.Connection, actor: Actor, conversation_id: str) -> Row:
    conversation = conversation_store.get(conn, actor.workspace_id, conversation_id)
    if conversation is None:
        raise AppError("not_found", "Conversation not found.")
    return conversation


def note_out(row: Row, members: Sequence[Row]) -> dict[str, Any]:
    """A stored note as the API shows it; ``members``: the workspace's active members (mentions of anyone else
    render as plain text)."""
    names = {m["id"]: m["display_name"] for m in members if m["id"] in row["mentioned_users"]}
    return {"id": row["id"], "conversation_id": row.get("conversation_id"), "content": row["content"],
            "content_html": render(row["content"], members, row["mentioned_users"]).html,
            "author": {"id": row["author_id"], "name": row.get("author_name")},
            "mentioned_users": [{"id": user_id, "name": names.get(user_id)} for user_id in row["mentioned_users"]],
            "created_at": row["created_at"]}


def _email(ctx: Context, actor: Actor, member: Row, conversation_id: str, content: str) -> tuple[str, str, str]:
    url = ctx.settings.base_url + CONSOLE_CONVERSATION_PATH.format(conversation_id=conversation_id)
    author = actor.display_name or actor.email
    body = f"{author} mentioned you in an internal note:\n\n{content}\n\nOpen the conversation: {url}\n"
    return member["email"], f"{author} mentioned you in a note", body


def add(ctx: Context, actor: Actor, conversation_id: str, content: str, *, mail: bool) -> Added:
    """Store the note, notify the people it mentions (``mail``: SMTP is configured, e-mail them too)."""
    text = _content(content)

    def work(conn: apsw.Connection) -> tuple[dict[str, Any], list[Row], list[Row]]:
        _conversation(conn, actor, conversation_id)
        members = store.active_members(conn, actor.workspace_id)
        mentioned = render(text, members).mentioned
        row = store.add_note(conn, conversation_id, actor.user_id, text, mentioned)
        others = [m for m in members if m["id"] in mentioned and m["id"] != actor.user_id]
        author = actor.display_name or actor.email
        sent = notifications.create(conn, actor.workspace_id, [m["id"] for m in others], "mention",
                                    f"{author} mentioned you", text, conversation_id=conversation_id,
                                    note_id=row["id"], actor_id=actor.user_id)
        conversation_store.add_event(conn, conversation_id, "note_added",
                                     {"note_id": row["id"], "mentioned_users": mentioned}, "user", actor.user_id)
        record(conn, "conversation.note_added", actor=actor, resource_type="conversation",
               resource_id=conversation_id, metadata={"note_id": row["id"], "mentioned_users": mentioned})
        return note_out({**row, "author_name": actor.display_name}, members), others, sent

    note, others, sent = ctx.db.write(work)
    live.publish("note:created", {"conversation_id": conversation_id, "note": note},
                 workspace_id=actor.workspace_id)  # consoles only: never the conversation channel
    notifications.publish(sent)
    emails = [_email(ctx, actor, m, conversation_id, text) for m in others] if mail else []
    return Added(note, emails)


def notes_of(conn: apsw.Connection, workspace_id: str, conversation_id: str) -> list[dict[str, Any]]:
    """A conversation's notes, oldest first, as the API shows them (the caller has checked the workspace)."""
    members = store.active_members(conn, workspace_id)
    return [note_out({**row, "conversation_id": conversation_id}, members)
            for row in conversation_store.notes(conn, conversation_id)]


def list_notes(ctx: Context, actor: Actor, conversation_id: str) -> dict[str, Any]:
    conn = ctx.db.reader()
    _conversation(conn, actor, conversation_id)
    return {"data": notes_of(conn, actor.workspace_id, conversation_id)}
