"""One conversation's transcript as PDF, JSON, CSV or plain text (``GET …/transcript?format=``).

Every format starts from the same document (``transcript_document``, which is also the JSON format): a header
(conversation, chatbot, customer, dates, status, agent, tags, rating), every message in order with its time, sender
and, for the bot's answers, the sources it used, then the internal notes. Transcripts are a staff permission, so
notes are in by default, always in their own section marked "staff only" (CSV: rows whose ``sender_type`` is
``internal_note``, after the messages); ``include_notes=false`` leaves them out, for a transcript meant to be
forwarded to the customer.
"""

from __future__ import annotations

import csv
import html
import io
import json
from dataclasses import dataclass
from typing import Any

import pymupdf

from chatsupport.domain import conversation_views as views
from chatsupport.domain.audit import Actor
from chatsupport.domain.auth import Context, iso, now_utc
from chatsupport.errors import AppError
from chatsupport.store import chatbots as chatbot_store

MEDIA_TYPES = {"pdf": "application/pdf", "json": "application/json", "csv": "text/csv; charset=utf-8",
               "txt": "text/plain; charset=utf-8"}
CSV_HEADER = ("timestamp", "sender_type", "sender_name", "content")
NOTES_TITLE = "Internal notes (staff only, never shown to the customer)"
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection): such cells get a quote.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Transcript:
    content: bytes
    media_type: str
    filename: str


def safe_cell(value: Any) -> Any:
    """A CSV cell a spreadsheet shows as text, never evaluates."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def transcript(ctx: Context, actor: Actor, conversation_id: str, fmt: str, include_notes: bool = True) -> Transcript:
    if fmt not in MEDIA_TYPES:
        raise AppError("validation_error", details=[{"field": "format", "message": "One of pdf, json, csv, txt."}])
    document = transcript_document(ctx, actor, conversation_id, include_notes)
    return Transcript(RENDERERS[fmt](document), MEDIA_TYPES[fmt], f"conversation-{conversation_id}.{fmt}")


def transcript_document(ctx: Context, actor: Actor, conversation_id: str, include_notes: bool) -> dict[str, Any]:
    view = views.get_conversation(ctx, actor, conversation_id)
    bot = chatbot_store.get(ctx.db.reader(), actor.workspace_id, view["chatbot_id"])
    customer, agent, rating = view["customer"], view["assigned_agent"], view["satisfaction_rating"]
    document: dict[str, Any] = {
        "conversation": {
            "id": view["id"], "chatbot": {"id": view["chatbot_id"], "name": bot["name"] if bot else None},
            "customer": customer and {"name": customer["name"], "email": customer["email"]},
            "status": view["status"], "assigned_agent": agent and {"name": agent["name"], "email": agent["email"]},
            "tags": view["tags"], "satisfaction_rating": rating and {"score": rating["score"],
                                                                     "comment": rating["comment"]},
            "created_at": view["created_at"], "updated_at": view["updated_at"], "resolved_at": view["resolved_at"]},
        "exported_at": iso(now_utc()),
        "messages": [_message(m) for m in view["messages"]],
    }
    if include_notes:
        document["internal_notes"] = [{"id": n["id"], "timestamp": n["created_at"], "author": n["author"]["name"],
                                       "content": n["content"]} for n in view["internal_notes"]]
    return document


def _message(message: dict[str, Any]) -> dict[str, Any]:
    sender = message["sender"]
    out = {"id": message["id"], "timestamp": message["timestamp"],
           "sender": {"type": sender["type"], "name": sender["name"]}, "content": message["content"]}
    if sender["type"] == "bot":
        out["sources"] = message["metadata"].get("sources") or []
    return out


# --- renderers ------------------------------------------------------------------------------------------------
def human_time(stamp: str | None) -> str:
    return f"{stamp[:19].replace('T', ' ')} UTC" if stamp else "—"


def _sender_label(sender: dict[str, Any]) -> str:
    kind = sender["type"].capitalize()
    return f"{kind} · {sender['name']}" if sender["name"] else kind


def _header_lines(conversation: dict[str, Any], exported_at: str) -> list[tuple[str, str]]:
    customer, agent, rating = conversation["customer"], conversation["assigned_agent"], \
        conversation["satisfaction_rating"]
    who = "—"
    if customer:
        who = " ".join(p for p in (customer["name"] or "", f"<{customer['email']}>" if customer["email"] else "")
                       if p) or "—"
    score = "—"
    if rating:
        score = f"{rating['score']}/5" + (f" — “{rating['comment']}”" if rating["comment"] else "")
    return [("Chatbot", conversation["chatbot"]["name"] or conversation["chatbot"]["id"]), ("Customer", who),
            ("Status", conversation["status"]), ("Agent", (agent["name"] or agent["email"]) if agent else "—"),
            ("Tags", ", ".join(conversation["tags"]) or "—"), ("Rating", score),
            ("Started", human_time(conversation["created_at"])), ("Resolved", human_time(conversation["resolved_at"])),
            ("Last update", human_time(conversation["updated_at"])), ("Exported", human_time(exported_at))]


def _sources_text(sources: list[dict[str, Any]]) -> str:
    return "; ".join(f"{s.get('title') or s.get('url')}" + (f" ({s['url']})" if s.get("url") and s.get("title")
                                                            else "") for s in sources)


def render_json(document: dict[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False, indent=2).encode()


def render_csv(document: dict[str, Any]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    for m in document["messages"]:
        writer.writerow([safe_cell(v) for v in (m["timestamp"], m["sender"]["type"], m["sender"]["name"] or "",
                                                m["content"])])
    for n in document.get("internal_notes", []):
        writer.writerow([safe_cell(v) for v in (n["timestamp"], "internal_note", n["author"] or "", n["content"])])
    return out.getvalue().encode()


def render_txt(document: dict[str, Any]) -> bytes:
    conversation = document["conversation"]
    lines = [f"Conversation {conversation['id']}", ""]
    lines += [f"{label + ':':<13}{value}" for label, value in _header_lines(conversation, document["exported_at"])]
    lines += ["", "MESSAGES", "========", ""]
    for m in document["messages"]:
        lines.append(f"[{human_time(m['timestamp'])}] {_sender_label(m['sender'])}")
        lines += [f"    {line}" for line in m["content"].splitlines() or [""]]
        if m.get("sources"):
            lines.append(f"    Sources: {_sources_text(m['sources'])}")
        lines.append("")
    if "internal_notes" in document:
        lines += [NOTES_TITLE.upper(), "=" * len(NOTES_TITLE), ""]
        for n in document["internal_notes"] or []:
            lines.append(f"[{human_time(n['timestamp'])}] {n['author'] or 'Former team member'}")
            lines += [f"    {line}" for line in n["content"].splitlines() or [""]]
            lines.append("")
        if not document["internal_notes"]:
            lines += ["(none)", ""]
    return "\n".join(lines).encode()


PDF_CSS = """
body { font-family: sans-serif; font-size: 10pt; overflow-wrap: break-word; }
h1 { font-size: 15pt; margin-bottom: 4pt; }
h2 { font-size: 12pt; margin-top: 14pt; border-bottom: 1px solid #888; }
table { margin-bottom: 6pt; } td { font-size: 9pt; padding-right: 8pt; vertical-align: top; }
.meta { font-size: 8.5pt; color: #444; margin-top: 8pt; margin-bottom: 1pt; }
.content { margin-top: 0; margin-bottom: 2pt; }
.sources { font-size: 8pt; color: #555; margin-top: 0; }
.notes h2 { color: #8a5a00; border-bottom: 1px solid #8a5a00; }
.note { background-color: #fff6dd; }
"""


def _paragraphs(text: str) -> str:
    return "<br/>".join(html.escape(line) for line in text.splitlines()) or "&nbsp;"


def _pdf_html(document: dict[str, Any]) -> str:
    conversation = document["conversation"]
    rows = "".join(f"<tr><td><b>{html.escape(label)}</b></td><td>{html.escape(value)}</td></tr>"
                   for label, value in _header_lines(conversation, document["exported_at"]))
    parts = [f"<h1>Conversation {html.escape(conversation['id'])}</h1><table>{rows}</table><h2>Messages</h2>"]
    for m in document["messages"]:
        parts.append(f"<p class='meta'><b>{html.escape(_sender_label(m['sender']))}</b> — "
                     f"{html.escape(human_time(m['timestamp']))}</p><p class='content'>{_paragraphs(m['content'])}</p>")
        if m.get("sources"):
            parts.append(f"<p class='sources'>Sources: {html.escape(_sources_text(m['sources']))}</p>")
    if "internal_notes" in document:
        parts.append(f"<div class='notes'><h2>{html.escape(NOTES_TITLE)}</h2>")
        for n in document["internal_notes"]:
            parts.append(f"<div class='note'><p class='meta'><b>{html.escape(n['author'] or 'Former team member')}"
                         f"</b> — {html.escape(human_time(n['timestamp']))}</p>"
                         f"<p class='content'>{_paragraphs(n['content'])}</p></div>")
        parts.append("</div>" if document["internal_notes"] else "<p>(none)</p></div>")
    return "".join(parts)


def render_pdf(document: dict[str, Any]) -> bytes:
    """MuPDF's HTML layout wraps the text (long URLs too: ``overflow-wrap``), breaks the pages and falls back to
    its built-in Noto fonts for scripts the base font lacks; page numbers go on afterwards, once the page count is
    known."""
    story = pymupdf.Story(html=_pdf_html(document), user_css=PDF_CSS)
    buffer = io.BytesIO()
    writer = pymupdf.DocumentWriter(buffer)
    page_box = pymupdf.paper_rect("a4")
    content_box = page_box + (48, 48, -48, -56)
    more = True
    while more:
        device = writer.begin_page(page_box)
        more, _ = story.place(content_box)
        story.draw(device)
        writer.end_page()
    writer.close()
    pdf = pymupdf.open(stream=buffer.getvalue(), filetype="pdf")
    footer = f"Conversation {document['conversation']['id']}"
    for number, page in enumerate(pdf, 1):
        page.insert_text((48, page_box.height - 30), f"{footer} · page {number} of {pdf.page_count}", fontsize=8,
                         color=(0.4, 0.4, 0.4))
    pdf.set_metadata({"title": footer, "creator": "ChatSupport"})
    return pdf.tobytes(garbage=3, deflate=True)


RENDERERS = {"pdf": render_pdf, "json": render_json, "csv": render_csv, "txt": render_txt}
