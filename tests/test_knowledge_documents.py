"""/api/v1/knowledge-base/documents: real files through the real job consumer and embedder — formats, bad input
codes, limits enforced while streaming, page numbers on PDF hits, delete and atomic re-upload."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest
from litestar.testing import TestClient

from accounts_support import add_user, bearer, error_code, login, open_client
from chatsupport.domain import knowledge
from chatsupport.domain.audit import Actor
from chatsupport.ingest import pipeline
from chatsupport.ingest.extract import extract
from chatsupport.tasks.ingest import recover_interrupted_ingestion
from knowledge_support import (DOCS, blank_pdf, docx_bytes, index_counts, kb_settings, pdf_bytes,
                               total_index_rows, upload, wait_settled, wait_until)

PAGES = [
    "Shipping\nWe ship every order within two business days. Express shipping arrives the next day.",
    "Refunds\nRefunds are issued within fourteen days of receiving the returned parcel at our warehouse.",
    "Warranty\nEvery kettle carries a three year warranty against manufacturing defects.",
]


class World:
    def __init__(self, client: TestClient):
        self.client = client
        add_user(client, "Docs Co", "owner@docs.example", "owner")
        add_user(client, "Docs Co", "viewer@docs.example", "viewer")
        self.owner = bearer(login(client, "owner@docs.example"))
        self.viewer = bearer(login(client, "viewer@docs.example"))
        self.bot = client.post("/api/v1/chatbots", json={"name": "Docs Bot"}, headers=self.owner).json()

    def ingest(self, name: str, content: bytes, **kwargs: Any) -> dict[str, Any]:
        response = upload(self.client, self.owner, self.bot["id"], name, content, **kwargs)
        assert response.status_code == 201, response.text
        return wait_settled(self.client, self.owner, response.json()["id"])

    def ask(self, query: str, top_k: int = 5) -> dict[str, Any]:
        response = self.client.post("/api/v1/knowledge-base/test", headers=self.owner,
                                    json={"chatbot_id": self.bot["id"], "query": query, "top_k": top_k})
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with open_client(kb_settings(tmp_path_factory.mktemp("kb-docs") / "data")) as client:
        yield World(client)


def uploads_dir(world: World) -> Path:
    return world.client.app.state.services.settings.data.uploads


def test_pdf_is_indexed_with_pages_and_without_headers_or_page_numbers(world: World) -> None:
    doc = world.ingest("handbook.pdf", pdf_bytes(PAGES), metadata={"title": "Customer Handbook",
                                                                   "category": "policies", "language": "en"})
    assert doc["status"] == "completed" and doc["progress"] == 100 and doc["stage"] is None, doc
    assert doc["page_count"] == 3 and doc["chunk_count"] >= 3 and doc["mime_type"] == "application/pdf"
    assert doc["metadata"] == {"title": "Customer Handbook", "category": "policies", "language": "en"}
    stored = Path(world.client.app.state.services.db.query_one(
        "SELECT stored_path FROM knowledge_documents WHERE id = ?", (doc["id"],))["stored_path"])
    assert stored == uploads_dir(world) / world.bot["id"] / f"{doc['id']}.pdf" and stored.exists()
    chunks = world.client.app.state.services.db.query(
        "SELECT content, heading, page_number, title FROM knowledge_chunks WHERE document_id = ?", (doc["id"],))
    assert {c["page_number"] for c in chunks} == {1, 2, 3}
    text = " ".join(c["content"] + " " + c["heading"] for c in chunks)
    assert "ACME Handbook" not in text and "Page 2 of 3" not in text
    assert {c["title"] for c in chunks} == {"Customer Handbook"}
    assert any(c["heading"] == "Refunds" and c["page_number"] == 2 for c in chunks)

    answer = world.ask("how long until my refund arrives?")
    top = answer["results"][0]
    assert top["source_type"] == "document" and top["source_id"] == doc["id"] and top["rank"] == 1
    assert top["metadata"]["filename"] == "handbook.pdf" and top["metadata"]["page"] == 2
    assert 0 < top["score"] <= 1 and "fourteen days" in top["content"]
    assert all("page" in r["metadata"] for r in answer["results"] if r["source_id"] == doc["id"])


def test_docx_markdown_text_and_html_keep_their_structure(world: World) -> None:
    docx_doc = world.ingest("guide.docx", docx_bytes("Setup Guide", [("Pairing the kettle", "Hold the button for "
                                                                     "five seconds until the light blinks blue.")]))
    md_doc = world.ingest("faq.md", b"# Returns\n\n## Damaged items\n\nPhotograph the damage and mail support.\n")
    txt_doc = world.ingest("notes.txt", "Descaling\n=========\n\nUse citric acid every month. Caf\xe9 owners "
                                        "descale weekly.\n".encode("cp1252"))
    html_doc = world.ingest("page.html", b"<!doctype html><html><head><title>Opening hours</title></head><body>"
                                         b"<nav>Home | Shop</nav><h1>Opening hours</h1><p>The shop opens at nine "
                                         b"on weekdays.</p><footer>Copyright</footer></body></html>")
    db = world.client.app.state.services.db
    rows = {d["id"]: db.query("SELECT title, heading, content FROM knowledge_chunks WHERE document_id = ?",
                              (d["id"],)) for d in (docx_doc, md_doc, txt_doc, html_doc)}
    assert all(d["status"] == "completed" for d in (docx_doc, md_doc, txt_doc, html_doc))
    assert rows[docx_doc["id"]][0]["title"] == "Setup Guide" and rows[docx_doc["id"]][0]["heading"] == \
        "Pairing the kettle"
    assert docx_doc["mime_type"].endswith("wordprocessingml.document")
    assert rows[md_doc["id"]][0]["title"] == "Returns" and rows[md_doc["id"]][0]["heading"] == "Damaged items"
    assert md_doc["mime_type"] == "text/markdown" and txt_doc["mime_type"] == "text/plain"
    assert "Café owners" in rows[txt_doc["id"]][0]["content"] and rows[txt_doc["id"]][0]["title"] == "Descaling"
    html_text = " ".join(r["content"] for r in rows[html_doc["id"]])
    assert "opens at nine" in html_text and "Home | Shop" not in html_text and "Copyright" not in html_text
    top = world.ask("how do I pair the kettle")["results"][0]
    assert top["source_id"] == docx_doc["id"] and top["metadata"]["filename"] == "guide.docx"


@pytest.mark.parametrize(("name", "content", "code"), [
    ("locked.pdf", pdf_bytes(PAGES[:1], password="s3cret"), "encrypted"),
    ("broken.pdf", b"%PDF-1.7\n" + b"\x00garbage" * 500, "extraction_failed"),
    ("scan.pdf", blank_pdf(), "no_text"),
    ("broken.docx", b"PK\x03\x04" + b"\x00" * 2000, "extraction_failed"),
    ("empty.txt", b"   \n\n  ", "no_text"),
])
def test_files_that_cannot_be_read_fail_with_a_code_and_words(world: World, name: str, content: bytes,
                                                              code: str) -> None:
    before = total_index_rows(world.client)
    doc = world.ingest(name, content)
    assert doc["status"] == "failed" and doc["error_code"] == code, doc
    assert doc["error_message"] and doc["chunk_count"] == 0
    assert total_index_rows(world.client) == before


def test_content_is_sniffed_not_trusted_from_the_name(world: World) -> None:
    count = world.client.app.state.services.db.query_one("SELECT count(*) AS n FROM knowledge_documents")["n"]
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 20
    for name, content in (("photo.pdf", png), ("photo.txt", png), ("old.doc", b"\xd0\xcf\x11\xe0" + b"\0" * 600),
                          ("fake.docx", _zip_without_word())):
        response = upload(world.client, world.owner, world.bot["id"], name, content)
        assert response.status_code == 415 and error_code(response) == "unsupported_type", (name, response.text)
    # a real PDF called .txt is a PDF
    assert world.ingest("handbook.txt", pdf_bytes(PAGES[:1]))["mime_type"] == "application/pdf"
    after = world.client.app.state.services.db.query_one("SELECT count(*) AS n FROM knowledge_documents")["n"]
    assert after == count + 1
    assert not list((uploads_dir(world) / ".incoming").glob("*"))


def test_markdown_opening_with_a_comment_stays_markdown(world: World) -> None:
    """Generated docs often open with a "do not edit" comment; read as HTML they lost all their text."""
    body = (b"<!---\nThis file is generated by a script. Do not edit it directly.\n--->\n\n## Fill-mask\n\n"
            b"Mask filling predicts the missing word in the middle of a sentence.\n")
    doc = world.ingest("fill-mask.md", body)
    assert doc["status"] == "completed" and doc["mime_type"] == "text/markdown", doc
    assert world.ingest("page.html", b"<!-- saved page -->\n<html><body><p>Saved help page text about exports."
                        b"</p></body></html>")["mime_type"] == "text/html"


def _zip_without_word() -> bytes:
    import io
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("hello.txt", "not a word document")
    return out.getvalue()


def test_bad_requests(world: World) -> None:
    no_bot = world.client.post(DOCS, files={"file": ("a.txt", b"hello there, some text")}, headers=world.owner)
    assert no_bot.status_code == 422 and error_code(no_bot) == "validation_error"
    not_multipart = world.client.post(DOCS, json={"chatbot_id": world.bot["id"]}, headers=world.owner)
    assert not_multipart.status_code == 415
    bad_meta = upload(world.client, world.owner, world.bot["id"], "a.txt", b"hello there, text", metadata={"x": 1})
    assert bad_meta.status_code == 422 and bad_meta.json()["error"]["details"][0]["field"] == "metadata.x"
    unknown_bot = upload(world.client, world.owner, "00000000-0000-0000-0000-000000000000", "a.txt", b"some text!")
    assert unknown_bot.status_code == 404
    assert not list((uploads_dir(world) / ".incoming").glob("*"))


def test_viewer_cannot_upload_but_can_read(world: World) -> None:
    response = upload(world.client, world.viewer, world.bot["id"], "a.txt", b"viewer text that is long enough")
    assert response.status_code == 403 and error_code(response) == "forbidden"
    listing = world.client.get(DOCS, params={"chatbot_id": world.bot["id"]}, headers=world.viewer)
    assert listing.status_code == 200 and listing.json()["data"]


def test_delete_removes_chunks_fts_vectors_and_file(world: World) -> None:
    doc = world.ingest("delete-me.md", b"# Gift cards\n\nGift cards never expire and work in every shop.\n")
    assert index_counts(world.client, doc["id"]) == {"chunks": 1, "fts": 1, "vectors": 1, "bits": 1}
    path = uploads_dir(world) / world.bot["id"] / f"{doc['id']}.md"
    assert path.exists()
    assert world.client.delete(f"{DOCS}/{doc['id']}", headers=world.owner).status_code == 204
    assert index_counts(world.client, doc["id"]) == {"chunks": 0, "fts": 0, "vectors": 0, "bits": 0}
    assert not path.exists()
    assert world.client.get(f"{DOCS}/{doc['id']}", headers=world.owner).status_code == 404
    assert all(r["source_id"] != doc["id"] for r in world.ask("do gift cards expire")["results"])


def test_reupload_replaces_atomically(world: World) -> None:
    old = world.ingest("prices.md", b"# Prices\n\nThe basic kettle costs forty euros.\n")
    response = world.client.put(f"{DOCS}/{old['id']}", files={"file": ("prices.md", b"# Prices\n\nThe basic "
                                                                       b"kettle now costs fifty euros.\n")},
                                headers=world.owner)
    assert response.status_code == 201, response.text
    new = response.json()
    assert new["replaces_document_id"] == old["id"] and new["id"] != old["id"]
    done = wait_settled(world.client, world.owner, new["id"])
    assert done["status"] == "completed" and done["replaces_document_id"] is None
    assert world.client.get(f"{DOCS}/{old['id']}", headers=world.owner).status_code == 404
    assert index_counts(world.client, old["id"])["chunks"] == 0
    hit = world.ask("what does the basic kettle cost")["results"][0]
    assert hit["source_id"] == new["id"] and "fifty" in hit["content"]


def test_failed_reupload_keeps_the_old_document_serving(world: World) -> None:
    old = world.ingest("colours.md", b"# Colours\n\nThe kettle comes in red, green and black.\n")
    new = upload(world.client, world.owner, world.bot["id"], "colours.pdf", blank_pdf(),
                 replace_document_id=old["id"]).json()
    assert wait_settled(world.client, world.owner, new["id"])["error_code"] == "no_text"
    assert world.client.get(f"{DOCS}/{old['id']}", headers=world.owner).json()["status"] == "completed"
    assert index_counts(world.client, old["id"])["chunks"] == 1


def _owner_actor(world: World) -> Actor:
    user = world.client.app.state.services.db.query_one("SELECT * FROM users WHERE email = 'owner@docs.example'")
    return Actor(user_id=user["id"], workspace_id=user["workspace_id"], role="owner", email=user["email"],
                 display_name="")


def test_old_chunks_serve_until_the_swap_commits(world: World, tmp_path: Path) -> None:
    """The job's steps by hand (nothing enqueued): until the swap commits, search finds the old chunks only."""
    services = world.client.app.state.services
    old = world.ingest("hours.md", b"# Hours\n\nSupport answers from eight to six.\n")
    temp = tmp_path / "hours.part"
    temp.write_bytes(b"# Hours\n\nSupport answers around the clock, every day.\n")
    new = knowledge.create(services, _owner_actor(world), knowledge.NewDocument(
        chatbot_id=world.bot["id"], temp_path=temp, filename="hours.md", kind="markdown", size=temp.stat().st_size,
        sha256="x", metadata={}, replaces_document_id=old["id"]))
    claimed = knowledge.claim(services.db, new["id"])
    assert claimed is not None and claimed["status"] == "processing"
    extracted = extract(Path(claimed["stored_path"]), "markdown", "hours")
    chunks = pipeline.chunk_pages(pipeline.chunker_for(services.embedder), extracted)
    vectors = pipeline.embed(services.embedder, [c.embed_text for c in chunks])

    def served() -> list[str]:
        return [r["source_id"] for r in world.ask("when does support answer", top_k=10)["results"]
                if r["source_id"] in (old["id"], new["id"])]

    assert served() == [old["id"]] and index_counts(world.client, new["id"])["chunks"] == 0
    model = (services.embedder.name, services.embedder.dimension)
    assert knowledge.complete(services.db, new["id"], claimed["attempt"], pipeline.chunk_rows(chunks), vectors,
                              {"page_count": None, "text_length": extracted.text_length}, model)
    assert served() == [new["id"]] and index_counts(world.client, old["id"])["chunks"] == 0
    # a stale run (an older attempt) commits nothing
    assert not knowledge.complete(services.db, new["id"], claimed["attempt"] - 1, [], [], {}, model)


def test_a_job_killed_half_way_is_requeued_at_start_up(world: World) -> None:
    services = world.client.app.state.services
    doc = world.ingest("later.md", b"# Later\n\nSome later text about descaling.\n")
    services.db.write(lambda conn: conn.execute("UPDATE knowledge_documents SET status = 'processing', "
                                                "stage = 'embedding', progress = 50 WHERE id = ?", (doc["id"],)))
    assert recover_interrupted_ingestion(services.db) == [doc["id"]]
    final = wait_settled(world.client, world.owner, doc["id"])
    assert final["status"] == "completed" and index_counts(world.client, doc["id"])["chunks"] == 1


def test_interrupted_too_often_fails_for_retry_and_retry_works(world: World) -> None:
    services = world.client.app.state.services
    doc = world.ingest("retry.md", b"# Retry\n\nThis document is retried after failures.\n")
    services.db.write(lambda conn: conn.execute("UPDATE knowledge_documents SET status = 'processing', attempt = ?"
                                                " WHERE id = ?", (knowledge.MAX_RECOVERY_ATTEMPTS, doc["id"])))
    assert recover_interrupted_ingestion(services.db) == []
    failed = world.client.get(f"{DOCS}/{doc['id']}", headers=world.owner).json()
    assert failed["status"] == "failed" and failed["error_code"] == "interrupted"
    assert index_counts(world.client, doc["id"])["chunks"] == 1  # the earlier chunks were never half-removed
    retried = world.client.post(f"{DOCS}/{doc['id']}/retry", headers=world.owner)
    assert retried.status_code == 200 and retried.json()["status"] in ("pending", "processing", "completed")
    assert wait_settled(world.client, world.owner, doc["id"])["status"] == "completed"
    assert index_counts(world.client, doc["id"])["chunks"] == 1
    again = world.client.post(f"{DOCS}/{doc['id']}/retry", headers=world.owner)
    assert again.status_code == 409


def test_progress_is_reported_while_processing(world: World) -> None:
    long_pages = [f"Topic {i}\n" + " ".join(f"Sentence {j} about topic {i} and kettles." for j in range(60))
                  for i in range(6)]
    response = upload(world.client, world.owner, world.bot["id"], "long.pdf", pdf_bytes(long_pages))
    doc_id = response.json()["id"]
    seen: set[tuple[str, str | None]] = set()

    def settled() -> bool:
        doc = world.client.get(f"{DOCS}/{doc_id}", headers=world.owner).json()
        seen.add((doc["status"], doc["stage"]))
        assert 0 <= doc["progress"] <= 100
        return doc["status"] in ("completed", "failed")

    wait_until(settled, timeout=60)
    assert ("completed", None) in seen
    listing = world.client.get(DOCS, params={"chatbot_id": world.bot["id"]}, headers=world.owner).json()
    assert doc_id in [d["id"] for d in listing["data"]] and listing["pagination"]["total"] >= 1


def _stream_upload(world: World, chunks: int, chunk_size: int = 1024 * 1024,
                   extra_headers: list[tuple[bytes, bytes]] = ()) -> tuple[int, dict[str, Any], int]:
    """POST a multipart text upload straight into the ASGI app, counting the body chunks the app pulled."""
    boundary = "kb-boundary-0123"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"chatbot_id\"\r\n\r\n{world.bot['id']}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.txt\"\r\n"
            "Content-Type: text/plain\r\n\r\n").encode()
    pulled = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        pulled += 1
        body = head if pulled == 1 else b"a" * chunk_size
        return {"type": "http.request", "body": body, "more_body": pulled <= chunks}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    token = world.owner["Authorization"].encode()
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": DOCS, "raw_path": DOCS.encode(), "root_path": "", "query_string": b"",
             "headers": [(b"host", b"testserver.local"), (b"authorization", token),
                         (b"content-type", f"multipart/form-data; boundary={boundary}".encode()), *extra_headers],
             "client": ("127.0.0.1", 50000), "server": ("testserver.local", 80), "state": {}}
    with world.client.portal() as portal:
        portal.call(world.client.app, scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    import json
    return start["status"], json.loads(body), pulled


def test_too_large_is_refused_while_streaming_and_creates_nothing(world: World) -> None:
    db = world.client.app.state.services.db
    before = db.query_one("SELECT count(*) AS n FROM knowledge_documents")["n"]
    status, body, pulled = _stream_upload(world, chunks=40)  # 40 MB of text; the text limit is 10 MB
    assert status == 413 and body["error"]["code"] == "too_large"
    assert pulled <= 12, f"the app read {pulled} MB before refusing"
    # announced too large for any kind: refused before reading anything
    status, body, pulled = _stream_upload(world, chunks=60, extra_headers=[(b"content-length", b"62914560")])
    assert status == 413 and body["error"]["code"] == "too_large" and pulled <= 1
    assert db.query_one("SELECT count(*) AS n FROM knowledge_documents")["n"] == before
    assert not list((uploads_dir(world) / ".incoming").glob("*"))


def test_a_pdf_above_the_default_request_limit_is_accepted(world: World) -> None:
    """12 MB: above Litestar's 10 MB default and the app's JSON limit, below the PDF limit of 50 MB."""
    big = pdf_bytes(PAGES[:1]) + b"%" + b"0" * (12 * 1024 * 1024) + b"\n"
    doc = world.ingest("big.pdf", big)
    assert doc["size_bytes"] == len(big) and doc["status"] == "completed", doc
