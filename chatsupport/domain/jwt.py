"""Minimal JWT (HS256 only) for API access tokens, signed with the instance secret.

The PRD asks for RS256; a single-instance appliance has one signer and one verifier, so a symmetric key kept
in the data dir is as strong and needs no key pair. Anything but HS256 in the header — ``none`` included — is
refused before the signature is looked at.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

from chatsupport.errors import AppError

ALGORITHM = "HS256"
ISSUER = "chatsupport"
AUDIENCE = "chatsupport-api"
LEEWAY_SECONDS = 10


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(signing_input: bytes, key: str) -> bytes:
    return hmac.new(key.encode(), signing_input, hashlib.sha256).digest()


def encode(claims: dict[str, Any], key: str) -> str:
    header = _b64encode(json.dumps({"alg": ALGORITHM, "typ": "JWT"}, separators=(",", ":")).encode())
    payload = _b64encode(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}".encode()
    return f"{header}.{payload}.{_b64encode(_sign(signing_input, key))}"


def _parts(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    try:
        header_b64, payload_b64, signature_b64 = token.split(".")
        header = json.loads(_b64decode(header_b64))
        payload = json.loads(_b64decode(payload_b64))
        signature = _b64decode(signature_b64)
    except (ValueError, TypeError):
        raise AppError("invalid_token") from None
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise AppError("invalid_token")
    return header, payload, signature, f"{header_b64}.{payload_b64}".encode()


def decode(token: str, key: str, now: float | None = None) -> dict[str, Any]:
    """Verified claims, or ``AppError("invalid_token")`` for any defect: algorithm, signature, expiry, audience."""
    header, payload, signature, signing_input = _parts(token)
    if header.get("alg") != ALGORITHM:
        raise AppError("invalid_token")
    if not hmac.compare_digest(signature, _sign(signing_input, key)):
        raise AppError("invalid_token")
    now = time.time() if now is None else now
    exp = payload.get("exp")
    if not isinstance(exp, (int, float)) or exp + LEEWAY_SECONDS < now:
        raise AppError("invalid_token")
    if payload.get("iss") != ISSUER or payload.get("aud") != AUDIENCE:
        raise AppError("invalid_token")
    return payload
