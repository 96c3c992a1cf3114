"""Files visitors attach: images (PNG, JPEG, GIF, WebP) and PDF up to 10 MB, kind sniffed from the first bytes
(the name and the declared type prove nothing), streamed to ``DATA_DIR/uploads/attachments`` and cut off the moment
they pass the limit. Served only as downloads — ``Content-Disposition: attachment``, ``nosniff`` and a sandboxing
CSP — so an uploaded file can never run as a page on the appliance's origin (HTML and SVG are refused anyway).

The visitor downloads with their widget token (``?token=``, a link cannot carry a header); agents through
``/api/v1/attachments/{id}`` with the conversation.view permission, scoped to their workspace.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from pathlib import Path
from typing import IO, Any

import msgspec
from litestar import Request, get, post
from litestar.response import File
from multipart import MultipartSegment

from chatsupport.domain import visitor_chat, widget
from chatsupport.domain import widget_limits as limits
from chatsupport.errors import AppError
from chatsupport.store import widget as store
from chatsupport.store.db import Row
from chatsupport.web.auth import actor_of
from chatsupport.web.permissions import public, requires
from chatsupport.web.uploads import feed, multipart_boundary
from chatsupport.web.widget.fallback import bearer, visitor_of
from chatsupport.web.widget.runtime import runtime_of
from chatsupport.web.widget.session import limited

MAGIC = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF87a", "image/gif"),
         (b"GIF89a", "image/gif"), (b"%PDF-", "application/pdf"))
SNIFF_BYTES = 16
DOWNLOAD_CSP = "default-src 'none'; sandbox; frame-ancestors 'none'"


def sniff(head: bytes) -> str | None:
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return next((kind for magic, kind in MAGIC if head.startswith(magic)), None)


def folder(request: Request[Any, Any, Any]) -> Path:
    return runtime_of(request.app).services.settings.data.uploads / "attachments"


class AttachmentOut(msgspec.Struct):
    id: str
    filename: str
    content_type: str
    size: int
    url: str  # the visitor's download path; the frame adds ?token=


class _File:
    """The ``file`` part of a multipart body, written as it arrives and refused as soon as it is wrong."""

    def __init__(self, path: Path):
        self.path, self.filename, self.kind, self.size = path, "", "", 0
        self.head = bytearray()
        self.digest = hashlib.sha256()
        self.fh: IO[bytes] | None = None
        self.in_file = False

    def event(self, event: Any) -> None:
        if isinstance(event, MultipartSegment):
            self.in_file = event.name == "file" and self.fh is None and not self.size
            if self.in_file:
                self.filename = (event.filename or "file").replace("\\", "/").rsplit("/", 1)[-1][:255]
                self.fh = self.path.open("wb")
        elif event is None:
            self.in_file = False
        elif self.in_file:
            self.data(bytes(event))

    def data(self, chunk: bytes) -> None:
        if not self.kind:
            self.head += chunk[:SNIFF_BYTES]
            if len(self.head) >= SNIFF_BYTES:
                self.check_kind()
        self.size += len(chunk)
        if self.size > widget.MAX_ATTACHMENT_BYTES:
            raise AppError("too_large", "Attachments are 10 MB at most.",
                           details={"limit_bytes": widget.MAX_ATTACHMENT_BYTES})
        self.digest.update(chunk)
        assert self.fh is not None
        self.fh.write(chunk)

    def check_kind(self) -> None:
        kind = sniff(bytes(self.head))
        if kind is None:
            raise AppError("unsupported_type", "Attach an image (PNG, JPEG, GIF, WebP) or a PDF.")
        self.kind = kind

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()


async def receive(request: Request[Any, Any, Any], path: Path) -> _File:
    boundary = multipart_boundary(request)
    upload = _File(path)
    try:
        await feed(request, boundary, upload.event, max_segments=8)
        upload.close()
        if not upload.size:
            raise AppError("validation_error", details=[{"field": "file", "message": "A file is required."}])
        if not upload.kind:
            upload.check_kind()
    except BaseException:
        upload.close()
        path.unlink(missing_ok=True)
        raise
    return upload


@post("/widget/api/attachments", status_code=201, request_max_body_size=widget.MAX_ATTACHMENT_BYTES + 64 * 1024,
      **public())
async def upload_attachment(request: Request[Any, Any, Any]) -> AttachmentOut:
    visitor = await visitor_of(request)
    runtime = runtime_of(request.app)
    key = f"attachments:{visitor.chatbot_id}:{visitor.visitor_id}"
    if (wait := runtime.limiter.check(key, limits.ATTACHMENTS)) is not None:
        raise limited(wait, "files")
    attachment_id = str(uuid.uuid4())
    target = folder(request)
    target.mkdir(parents=True, exist_ok=True)
    upload = await receive(request, target / f"{attachment_id}.part")
    row = {"id": attachment_id, "workspace_id": visitor.workspace_id, "chatbot_id": visitor.chatbot_id,
           "visitor_id": visitor.visitor_id, "filename": upload.filename, "content_type": upload.kind,
           "size": upload.size, "sha256": upload.digest.hexdigest()}
    try:
        await asyncio.to_thread(upload.path.rename, target / attachment_id)
        await runtime.services.db.awrite(lambda conn: store.add_attachment(conn, row))
    except BaseException:
        (target / attachment_id).unlink(missing_ok=True)
        upload.path.unlink(missing_ok=True)
        raise
    runtime.limiter.hit(key, limits.ATTACHMENTS)
    return msgspec.convert(visitor_chat.attachment_summary(row), AttachmentOut)


def download(request: Request[Any, Any, Any], row: Row) -> File:
    path = folder(request) / row["id"]
    if not path.is_file():
        raise AppError("not_found", "The file is gone.")
    return File(path, filename=row["filename"], media_type=row["content_type"], content_disposition_type="attachment",
                headers={"Content-Security-Policy": DOWNLOAD_CSP, "X-Content-Type-Options": "nosniff",
                         "Cache-Control": "private, no-store"})


@get("/widget/api/attachments/{attachment_id:str}", **public())
async def visitor_download(request: Request[Any, Any, Any], attachment_id: str,
                           token: str | None = None) -> File:
    """The visitor's own uploads, and files in their own conversations."""
    visitor = await visitor_of(request, token or bearer(request))
    db = runtime_of(request.app).services.db

    def find() -> Row | None:
        conn = db.reader()
        row = store.attachment(conn, attachment_id)
        if row is None or row["chatbot_id"] != visitor.chatbot_id:
            return None
        if row["conversation_id"] is None:
            return row if row["visitor_id"] == visitor.visitor_id else None
        mine = store.visitor_conversation(conn, visitor.chatbot_id, widget.customer_of(conn, visitor),
                                          row["conversation_id"])
        return row if mine is not None else None

    row = await asyncio.to_thread(find)
    if row is None:
        raise AppError("not_found", "Attachment not found.")
    return download(request, row)


@get("/api/v1/attachments/{attachment_id:str}", **requires("conversation.view"))
async def agent_download(request: Request[Any, Any, Any], attachment_id: str) -> File:
    """A visitor's file, for the team of the workspace it belongs to."""
    db = runtime_of(request.app).services.db
    row = await asyncio.to_thread(lambda: store.workspace_attachment(db.reader(), actor_of(request).workspace_id,
                                                                     attachment_id))
    if row is None:
        raise AppError("not_found", "Attachment not found.")
    return download(request, row)


ROUTES = [upload_attachment, visitor_download, agent_download]
