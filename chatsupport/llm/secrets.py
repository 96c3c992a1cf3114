"""Cloud API keys at rest: AES-256-GCM under a key derived from the instance secret with HKDF-SHA256.

The stored blob is ``b"v1" + nonce (12 bytes) + ciphertext+tag``. The associated data binds a key to its workspace
and provider kind, so a row copied into another workspace (or a restored backup edited by hand) does not decrypt.
A database file alone (a leaked backup without ``secret_key``) reveals no key. Changing the instance secret makes
stored keys unreadable: the provider then fails with ``key_unreadable`` and an admin re-enters the key.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VERSION = b"v1"
INFO = b"chatsupport llm provider api keys v1"


class KeyUnreadable(ValueError):
    """The blob was not made with this instance secret for this workspace and provider."""


def _aead(instance_secret: str) -> AESGCM:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=INFO).derive(instance_secret.encode())
    return AESGCM(key)


def _context(workspace_id: str, kind: str) -> bytes:
    return f"{workspace_id}\x00{kind}".encode()


def encrypt_key(instance_secret: str, workspace_id: str, kind: str, api_key: str) -> bytes:
    nonce = os.urandom(12)
    return VERSION + nonce + _aead(instance_secret).encrypt(nonce, api_key.encode(), _context(workspace_id, kind))


def decrypt_key(instance_secret: str, workspace_id: str, kind: str, blob: bytes) -> str:
    if not blob.startswith(VERSION) or len(blob) < 2 + 12 + 16:
        raise KeyUnreadable("not an encrypted key")
    nonce, sealed = blob[2:14], blob[14:]
    try:
        return _aead(instance_secret).decrypt(nonce, sealed, _context(workspace_id, kind)).decode()
    except InvalidTag as exc:
        raise KeyUnreadable("the key was stored under another instance secret or workspace") from exc


def key_hint(api_key: str) -> str:
    """What the API and console show: the last four characters, never more (nothing for very short keys)."""
    return api_key[-4:] if len(api_key) >= 12 else ""
