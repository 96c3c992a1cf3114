"""One conversation's transcript (``GET /api/v1/conversations/{id}/transcript``) in PDF, JSON, CSV and text,
through the real app: the PDF is read back with PyMuPDF, CSV cells that would run as formulas are quoted,
internal notes sit in their own staff-only section, viewers are refused, unknown ids are 404 before the format
is looked at."""

from __future__ import annotations

import csv
import io
from typing import Any

import pymupdf

from accounts_support import error_code
from chatsupport.domain import conversations as states
from chatsupport.store import conversations as store
from conversation_support import Team, client, team  # noqa: F401 - shared fixtures

GREETING = "Grüße aus München — 你好, помогите пожалуйста"
ANSWER = "You can reset it from Settings → Security. Ça marche ?"
FORMULA = "=HYPERLINK(\"http://evil.example\",\"click\")"
NOTE = "Customer is on the **Pro** plan; refund approved by Ana."


def seeded(team: Team, extra_messages: int = 0) -> str:
    conv = team.conversation(status="escalated", text=GREETING)

    def write(conn: Any) -> None:
        store.add_message(conn, conv, "bot", ANSWER, ai_metadata={
            "confidence": 0.9, "provider": "extractive",
            "sources": [{"title": "Password reset guide", "url": "https://help.example/reset"}]})
        store.add_message(conn, conv, "customer", FORMULA, sender_name="John Doe")
        store.add_message(conn, conv, "agent", "Done: your password link is on its way.\nAnything else?",
                          sender_id=team.agent["id"], sender_name="Sarah Johnson")
        for number in range(extra_messages):
            store.add_message(conn, conv, "customer", f"Line number {number} of a long conversation, ünïcödé.")
        conn.execute("INSERT INTO internal_notes(id, conversation_id, content, author_id) VALUES ('n1', ?, ?, ?)",
                     (conv, NOTE, team.agent["id"]))
        conn.execute("UPDATE conversations SET tags = '[\"billing\",\"password\"]', satisfaction_rating = 4,"
                     " satisfaction_comment = 'Quick, merci' WHERE id = ?", (conv,))

    team.db.write(write)
    return conv


def fetch(team: Team, conv: str, fmt: str, headers: dict[str, str] | None = None, **params: str) -> Any:
    response = team.client.get(f"/api/v1/conversations/{conv}/transcript", params={"format": fmt, **params},
                               headers=headers or team.agent_h)
    assert response.status_code == 200, response.text
    assert response.headers["content-disposition"] == f'attachment; filename="conversation-{conv}.{fmt}"'
    assert response.headers["x-content-type-options"] == "nosniff"
    return response


def pdf_text(content: bytes) -> tuple[str, int]:
    """The text as a reader copies it: ligatures (the "ff" of "staff") expanded."""
    document = pymupdf.open(stream=content, filetype="pdf")
    flags = pymupdf.TEXTFLAGS_TEXT & ~pymupdf.TEXT_PRESERVE_LIGATURES
    return "\n".join(page.get_text(flags=flags) for page in document), document.page_count


def flat(text: str) -> str:
    """PDF text comes back with line breaks where the layout wrapped."""
    return " ".join(text.split())


def test_pdf_transcript_holds_every_message_in_any_script(team: Team) -> None:
    conv = seeded(team)
    response = fetch(team, conv, "pdf")
    assert response.headers["content-type"] == "application/pdf"
    text, pages = pdf_text(response.content)
    text = flat(text)
    assert pages == 1
    for expected in (f"Conversation {conv}", "Acme Bot", "John Doe <john@example.com>", "escalated",
                     "billing, password", "4/5", "Quick, merci", GREETING, ANSWER, FORMULA,
                     "Done: your password link is on its way.", "Anything else?", "Password reset guide",
                     "https://help.example/reset", "Sarah Johnson", NOTE, "Internal notes (staff only"):
        assert expected in text, expected
    # messages in order, the notes after every message
    positions = [text.index(part) for part in (GREETING, ANSWER, FORMULA, "Anything else?", "Internal notes", NOTE)]
    assert positions == sorted(positions)


def test_a_long_conversation_spans_pages_with_nothing_lost(team: Team) -> None:
    conv = seeded(team, extra_messages=150)
    url = "https://shop.example/orders/" + "7" * 300 + "?ref=mail"
    team.db.write(lambda conn: store.add_message(conn, conv, "customer", url))
    text, pages = pdf_text(fetch(team, conv, "pdf").content)
    assert pages >= 4
    assert f"page {pages} of {pages}" in text
    assert url in "".join(text.split())              # an unbroken word wraps instead of running off the page
    text = flat(text)
    for number in range(150):
        assert f"Line number {number} of a long conversation, ünïcödé." in text
    assert text.index("Line number 149") < text.index(NOTE)


def test_json_transcript_shape(team: Team) -> None:
    conv = seeded(team)
    response = fetch(team, conv, "json")
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"conversation", "exported_at", "messages", "internal_notes"}
    head = body["conversation"]
    assert head["id"] == conv and head["chatbot"] == {"id": team.bot, "name": "Acme Bot"}
    assert head["customer"] == {"name": "John Doe", "email": "john@example.com"}
    assert head["status"] == "escalated" and head["tags"] == ["billing", "password"]
    assert head["satisfaction_rating"] == {"score": 4, "comment": "Quick, merci"}
    assert head["created_at"] and head["resolved_at"] is None
    kinds = [(m["sender"]["type"], m["sender"]["name"], m["content"]) for m in body["messages"]]
    assert kinds == [("customer", "John Doe", GREETING), ("bot", "Acme Bot", ANSWER), ("customer", "John Doe", FORMULA),
                     ("agent", "Sarah Johnson", "Done: your password link is on its way.\nAnything else?")]
    assert body["messages"][1]["sources"] == [{"title": "Password reset guide", "url": "https://help.example/reset"}]
    assert "sources" not in body["messages"][0]
    assert [m["timestamp"] for m in body["messages"]] == sorted(m["timestamp"] for m in body["messages"])
    assert body["internal_notes"] == [{"id": "n1", "timestamp": body["internal_notes"][0]["timestamp"],
                                       "author": "Sarah Johnson", "content": NOTE}]


def test_csv_transcript_has_a_row_per_message_and_defuses_formulas(team: Team) -> None:
    conv = seeded(team)
    response = fetch(team, conv, "csv")
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["timestamp", "sender_type", "sender_name", "content"]
    assert [row[1:] for row in rows[1:]] == [
        ["customer", "John Doe", GREETING], ["bot", "Acme Bot", ANSWER], ["customer", "John Doe", "'" + FORMULA],
        ["agent", "Sarah Johnson", "Done: your password link is on its way.\nAnything else?"],
        ["internal_note", "Sarah Johnson", NOTE]]
    assert all(row[0].endswith("Z") for row in rows[1:])


def test_csv_cells_starting_with_formula_characters_are_quoted(team: Team) -> None:
    conv = team.conversation(text="+1 555 0100")
    dangerous = ["-2+3", "@SUM(A1:A9)", "\tTAB", "\rCR", "=1+1"]
    team.db.write(lambda conn: [store.add_message(conn, conv, "customer", text) for text in dangerous])
    rows = list(csv.reader(io.StringIO(fetch(team, conv, "csv").content.decode(), newline="")))
    assert [row[3] for row in rows[1:]] == ["'+1 555 0100", *("'" + text for text in dangerous)]


def test_text_transcript(team: Team) -> None:
    conv = seeded(team)
    response = fetch(team, conv, "txt")
    assert response.headers["content-type"].startswith("text/plain")
    text = response.content.decode()
    lines = text.splitlines()
    assert lines[0] == f"Conversation {conv}"
    assert "Customer:    John Doe <john@example.com>" in lines and "Rating:      4/5 — “Quick, merci”" in lines
    assert any(line.endswith("] Bot · Acme Bot") for line in lines)
    assert f"    {ANSWER}" in lines and "    Sources: Password reset guide (https://help.example/reset)" in lines
    assert "    Anything else?" in lines       # multi-line messages stay indented under their sender
    assert text.index("MESSAGES") < text.index(GREETING) < text.index("INTERNAL NOTES") < text.index(NOTE)


def test_notes_can_be_left_out_for_a_customer_copy(team: Team) -> None:
    conv = seeded(team)
    params = {"include_notes": "false"}
    assert "internal_notes" not in fetch(team, conv, "json", **params).json()
    assert NOTE not in fetch(team, conv, "txt", **params).content.decode()
    assert "internal_note" not in fetch(team, conv, "csv", **params).content.decode()
    text, _ = pdf_text(fetch(team, conv, "pdf", **params).content)
    assert "Internal notes" not in text and "Pro" not in text and "Grüße" in text


def test_an_empty_conversation_still_has_a_transcript(team: Team) -> None:
    conv = team.db.write(lambda conn: states.start(conn, team.ws, team.bot, None))
    body = fetch(team, conv, "json").json()
    assert body["messages"] == [] and body["conversation"]["customer"] is None and body["internal_notes"] == []
    text, pages = pdf_text(fetch(team, conv, "pdf").content)
    assert pages == 1 and conv in text
    assert "(none)" in fetch(team, conv, "txt").content.decode()


def test_permissions_and_404_before_the_format(team: Team) -> None:
    conv = seeded(team)
    path = f"/api/v1/conversations/{conv}/transcript"
    viewer = team.client.get(path, params={"format": "pdf"}, headers=team.viewer_h)
    assert viewer.status_code == 403 and error_code(viewer) == "forbidden"
    assert team.client.get(path, params={"format": "json"}, headers=team.owner_h).status_code == 200
    assert team.client.get(path, params={"format": "json"}).status_code == 401
    bad = team.client.get(path, params={"format": "docx"}, headers=team.agent_h)
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "format"
    unknown = team.client.get("/api/v1/conversations/nope/transcript", params={"format": "docx"},
                              headers=team.agent_h)
    assert unknown.status_code == 404 and error_code(unknown) == "not_found"
    stranger = Team(team.client, "Globex")
    foreign = stranger.client.get(path, params={"format": "docx"}, headers=stranger.agent_h)
    assert foreign.status_code == 404 and GREETING not in foreign.text


def test_pdf_is_the_default_format(team: Team) -> None:
    conv = seeded(team)
    response = team.client.get(f"/api/v1/conversations/{conv}/transcript", headers=team.agent_h)
    assert response.status_code == 200 and response.content.startswith(b"%PDF")
    assert response.headers["content-disposition"] == f'attachment; filename="conversation-{conv}.pdf"'
