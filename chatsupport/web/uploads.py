"""Multipart uploads read chunk by chunk into a temporary file, cut off at the file kind's limit.

Litestar's ``request.form()`` buffers the whole body before a handler sees it; here the body is pushed through an
incremental multipart parser as it arrives. The file part is sniffed from its first bytes (its name proves
nothing), and the moment it passes its kind's limit the request ends with 413 ``too_large`` — the rest of the
body is never read and nothing is created. Small form fields ride along in ``fields``.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable

from litestar import Request
from multipart import MultipartError, MultipartSegment, PushMultipartParser, parse_options_header

from chatsupport.errors import AppError
from chatsupport.ingest.extract import LIMITS, SNIFF_BYTES, UnsupportedType, confirm, sniff

MAX_FIELD_BYTES = 64 * 1024
# The route's body cap: the largest file plus room for the form fields and multipart framing.
MAX_REQUEST_BYTES = max(LIMITS.values()) + 1024 * 1024


@dataclass
class Upload:
    path: Path
    filename: str = ""
    kind: str = ""
    size: int = 0
    sha256: str = ""
    fields: dict[str, str] = field(default_factory=dict)

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


class _Receiver:
    """Parser events → the temp file (for the ``file`` part) or a small field value."""

    def __init__(self, upload: Upload, kinds: set[str]):
        self.upload, self.kinds = upload, kinds
        self.segment: MultipartSegment | None = None
        self.value = bytearray()
        self.head = bytearray()
        self.limit = max(LIMITS[k] for k in kinds)
        self.digest = hashlib.sha256()
        self.fh: IO[bytes] | None = None
        self.seen_file = False

    def event(self, event: Any) -> None:
        if isinstance(event, MultipartSegment):
            self.segment, self.value = event, bytearray()
            if event.name == "file":
                if self.seen_file:
                    raise AppError("bad_request", "Send one file per request.")
                self.seen_file = True
                self.upload.filename = (event.filename or "").replace("\\", "/").rsplit("/", 1)[-1][:255]
                self.fh = self.upload.path.open("wb")
        elif event is None:
            self._end_segment()
        elif self.segment is not None and self.segment.name == "file":
            self._file_data(bytes(event))
        else:
            self.value += event
            if len(self.value) > MAX_FIELD_BYTES:
                raise AppError("too_large", "A form field is too large.")

    def _file_data(self, data: bytes) -> None:
        assert self.fh is not None
        if not self.upload.kind:
            self.head += data[:SNIFF_BYTES]
            if len(self.head) >= SNIFF_BYTES:
                self._sniff()
        self.upload.size += len(data)
        if self.upload.size > self.limit:
            raise AppError("too_large", f"The file is larger than {self.limit // (1024 * 1024)} MB, the limit for "
                                        "this kind of file.", details={"limit_bytes": self.limit})
        self.digest.update(data)
        self.fh.write(data)

    def _sniff(self) -> None:
        try:
            kind = sniff(bytes(self.head), self.upload.filename)
        except UnsupportedType as exc:
            raise AppError("unsupported_type", str(exc)) from None
        if kind not in self.kinds:
            raise AppError("unsupported_type", f"A {kind.upper()} file cannot be used here.")
        self.upload.kind, self.limit = kind, LIMITS[kind]

    def _end_segment(self) -> None:
        if self.segment is not None and self.segment.name == "file":
            if not self.upload.kind:
                self._sniff()
            self.close()
        elif self.segment is not None and self.segment.name:
            self.upload.fields[self.segment.name] = self.value.decode("utf-8", "replace")
        self.segment = None

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()
            self.fh = None


def multipart_boundary(request: Request[Any, Any, Any]) -> str:
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    if content_type != "multipart/form-data" or not options.get("boundary"):
        raise AppError("unsupported_type", "Send the file as multipart/form-data.")
    return str(options["boundary"])


async def feed(request: Request[Any, Any, Any], boundary: str, on_event: Callable[[Any], None],
               max_segments: int) -> None:
    """Push the body through the incremental parser as it arrives, handing each event to ``on_event`` (which
    raises to stop reading); a malformed body is ``bad_request``."""
    try:
        with PushMultipartParser(boundary, max_segment_count=max_segments) as parser:
            async for chunk in request.stream():
                for event in parser.parse(chunk):
                    on_event(event)
            for event in parser.parse(b""):
                on_event(event)
    except MultipartError as exc:
        raise AppError("bad_request", f"The multipart body is malformed ({exc}).") from None


async def receive(request: Request[Any, Any, Any], folder: Path, kinds: set[str]) -> Upload:
    """Stream the multipart body into ``folder``; on any failure the partial file is gone before the error."""
    boundary = multipart_boundary(request)
    folder.mkdir(parents=True, exist_ok=True)
    upload = Upload(path=folder / f"{uuid.uuid4().hex}.part")
    receiver = _Receiver(upload, kinds)
    try:
        await feed(request, boundary, receiver.event, max_segments=16)
        receiver.close()
        if not receiver.seen_file:
            raise AppError("validation_error", details=[{"field": "file", "message": "A file is required."}])
        if upload.size == 0:
            raise AppError("validation_error", details=[{"field": "file", "message": "The file is empty."}])
        await asyncio.to_thread(_confirm, upload)  # reads the whole file: off the event loop
    except BaseException:
        receiver.close()
        upload.discard()
        raise
    upload.sha256 = receiver.digest.hexdigest()
    return upload


def _confirm(upload: Upload) -> None:
    try:
        confirm(upload.kind, upload.path)
    except UnsupportedType as exc:
        raise AppError("unsupported_type", str(exc)) from None
