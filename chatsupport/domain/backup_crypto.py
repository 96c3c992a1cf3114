"""Passphrase encryption of backup archives: scrypt → AES-256-GCM over 1 MiB chunks (a STREAM construction).

Each chunk's nonce is a random 7-byte prefix, a 4-byte counter and a last-chunk flag, so chunks cannot be
reordered, dropped or the stream cut short without the tag check failing. The associated data is the SHA-256 of
the archive's plain manifest, which binds what ``--list`` shows (time, schema version) to the encrypted payload.
Memory stays at one chunk whatever the archive size.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import struct
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from chatsupport.errors import AppError

CIPHER = "AES-256-GCM-STREAM"
CHUNK = 1 << 20
TAG = 16
SCRYPT_N, SCRYPT_R, SCRYPT_P = 1 << 15, 8, 1


def read_passphrase(path: Path) -> str:
    """The first line of ``path`` (a trailing newline is not part of it)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AppError("backup_passphrase", f"cannot read the passphrase file {path} ({exc})") from None
    passphrase = text.splitlines()[0] if text.strip() else ""
    if len(passphrase) < 8:
        raise AppError("backup_passphrase", f"the passphrase in {path} is shorter than 8 characters")
    return passphrase


def _derive(passphrase: str, params: dict) -> tuple[AESGCM, str]:
    """The AES key and a check value: scrypt gives 64 bytes, the first half keys AES, the second half's hash tells a
    wrong passphrase from a damaged archive before any chunk is read."""
    if params.get("cipher") != CIPHER or params.get("kdf") != "scrypt":
        raise AppError("backup_invalid", "the archive uses an encryption this version does not know")
    kdf = Scrypt(salt=base64.b64decode(params["salt"]), length=64, n=int(params["n"]), r=int(params["r"]),
                 p=int(params["p"]))
    material = kdf.derive(passphrase.encode())
    return AESGCM(material[:32]), hashlib.sha256(material[32:]).hexdigest()[:32]


def new_parameters(passphrase: str) -> dict:
    """The public part of the encryption (stored in the plain manifest)."""
    params = {"cipher": CIPHER, "kdf": "scrypt", "n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P, "chunk": CHUNK,
              "salt": base64.b64encode(os.urandom(16)).decode(),
              "nonce_prefix": base64.b64encode(os.urandom(7)).decode()}
    params["key_check"] = _derive(passphrase, params)[1]
    return params


def _key(passphrase: str, params: dict) -> AESGCM:
    aead, check = _derive(passphrase, params)
    if not hmac.compare_digest(check, str(params.get("key_check", ""))):
        raise AppError("backup_passphrase", "wrong passphrase for this archive")
    return aead


def _nonce(prefix: bytes, counter: int, last: bool) -> bytes:
    return prefix + struct.pack(">IB", counter, 1 if last else 0)


def encrypted_size(size: int) -> int:
    return size + TAG * max(1, -(-size // CHUNK))


class EncryptingReader:
    """Reads as the encrypted form of ``source`` (for ``tarfile.addfile``), one chunk in memory at a time."""

    def __init__(self, source: BinaryIO, size: int, passphrase: str, params: dict, associated: bytes):
        self._source, self._left = source, size
        self._aead, self._prefix = _key(passphrase, params), base64.b64decode(params["nonce_prefix"])
        self._aad = hashlib.sha256(associated).digest()
        self._counter, self._finished, self._buffer, self._position = 0, False, b"", 0
        self.size = encrypted_size(size)

    def _next_chunk(self) -> bytes:
        chunk = self._source.read(min(CHUNK, self._left))
        self._left -= len(chunk)
        last = self._left <= 0 or not chunk
        sealed = self._aead.encrypt(_nonce(self._prefix, self._counter, last), chunk, self._aad)
        self._counter, self._finished = self._counter + 1, last
        return sealed

    def read(self, size: int = -1) -> bytes:
        """``tarfile`` asks for small blocks: slice a position forward instead of copying the chunk each time."""
        want = size if size >= 0 else 1 << 62
        while len(self._buffer) - self._position < want and not self._finished:
            self._buffer = self._buffer[self._position:] + self._next_chunk()
            self._position = 0
        out = self._buffer[self._position:self._position + want]
        self._position += len(out)
        return out


def decrypt_stream(source: BinaryIO, dest: Path, passphrase: str, params: dict, associated: bytes) -> None:
    """Decrypt into ``dest``; a wrong passphrase or any changed, missing or extra byte raises AppError."""
    aead, prefix = _key(passphrase, params), base64.b64decode(params["nonce_prefix"])
    aad, counter = hashlib.sha256(associated).digest(), 0
    with dest.open("wb") as out:
        block = source.read(CHUNK + TAG)
        while True:
            following = source.read(CHUNK + TAG)
            last = not following
            try:
                out.write(aead.decrypt(_nonce(prefix, counter, last), block, aad))
            except InvalidTag:
                raise AppError("backup_corrupt", f"the encrypted payload is damaged at chunk {counter}") from None
            if last:
                return
            block, counter = following, counter + 1
