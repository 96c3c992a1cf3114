"""The second factor itself: TOTP codes (RFC 6238: HMAC-SHA1, 30-second steps, 6 digits, one step of clock drift
either way), one-time recovery codes, and the check sign-in makes.

Kept apart from ``domain.mfa`` (enrolment and management) because ``domain.auth`` needs the check and
``domain.mfa`` needs ``domain.auth``. A code is accepted once: the newest accepted step is stored and only later
steps pass, so a code seen over a shoulder is useless once its owner has signed in with it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
import time
from urllib.parse import quote, urlencode

import apsw
import segno

from chatsupport.domain.audit import Origin, record
from chatsupport.llm.secrets import KeyUnreadable, decrypt_key, encrypt_key
from chatsupport.store import mfa as store
from chatsupport.store.db import Row

STEP_SECONDS = 30
DIGITS = 6
DRIFT_STEPS = 1
SECRET_BYTES = 20  # the RFC 4226 recommendation: as long as the SHA-1 output
RECOVERY_CODES = 10
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: codes are read off paper
ISSUER = "ChatSupport"


def code_at(secret: bytes, step: int, digits: int = DIGITS) -> str:
    """HOTP (RFC 4226) of the time step ``step``: dynamic truncation of HMAC-SHA1 over the big-endian counter."""
    mac = hmac.new(secret, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10 ** digits).zfill(digits)


def step_of(moment: float) -> int:
    return int(moment // STEP_SECONDS)


def matching_step(secret: bytes, code: str, after_step: int, moment: float | None = None) -> int | None:
    """The time step within the drift window whose code is ``code`` and that is later than ``after_step``."""
    current = step_of(time.time() if moment is None else moment)
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if step > after_step and hmac.compare_digest(code_at(secret, step), code):
            return step
    return None


def new_secret() -> str:
    """Base32 without padding, the form authenticator apps take (typed by hand, too)."""
    return base64.b32encode(secrets.token_bytes(SECRET_BYTES)).decode().rstrip("=")


def secret_bytes(secret: str) -> bytes:
    return base64.b32decode(secret + "=" * (-len(secret) % 8))


def otpauth_uri(secret: str, account: str) -> str:
    """The Key URI authenticator apps scan (issuer both as label prefix and parameter, as Google's format asks)."""
    query = urlencode({"secret": secret, "issuer": ISSUER, "algorithm": "SHA1", "digits": DIGITS,
                       "period": STEP_SECONDS})
    return f"otpauth://totp/{quote(ISSUER)}:{quote(account)}?{query}"


def qr_data_uri(uri: str) -> str:
    """An SVG QR code as a ``data:`` URI, drawn here: the secret never goes to a third-party QR service."""
    return segno.make(uri, error="m").svg_data_uri(scale=5, border=2)


def seal(instance_secret: str, workspace_id: str, user_id: str, secret: str) -> bytes:
    """The secret encrypted under the instance secret, bound to its user (a row copied to another user fails)."""
    return encrypt_key(instance_secret, workspace_id, f"totp:{user_id}", secret)


def unseal(instance_secret: str, row: Row) -> str | None:
    """The Base32 secret, or None when the instance secret changed since enrolment (the user needs a reset)."""
    try:
        return decrypt_key(instance_secret, row["workspace_id"], f"totp:{row['user_id']}", row["secret_encrypted"])
    except KeyUnreadable:
        return None


def check(secret: str | None, code: str, after_step: int) -> int | None:
    """The step a typed code matches (spaces allowed, as apps show ``123 456``), or None."""
    typed = "".join(code.split())
    if secret is None or not (typed.isdigit() and len(typed) == DIGITS):
        return None
    return matching_step(secret_bytes(secret), typed, after_step)


# --- recovery codes -----------------------------------------------------------------------------------------
def new_recovery_codes() -> list[str]:
    """Ten codes of 10 characters (about 50 bits each), shown as ``xxxxx-xxxxx``."""
    codes = ["".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(10)) for _ in range(RECOVERY_CODES)]
    return [f"{code[:5]}-{code[5:]}" for code in codes]


def recovery_hash(user_id: str, code: str) -> str:
    """A plain SHA-256 is enough for 50 random bits behind a login throttle; the user id salts it."""
    normalized = "".join(code.lower().split()).replace("-", "")
    return hashlib.sha256(f"{user_id}|{normalized}".encode()).hexdigest()


# --- the check at sign-in -----------------------------------------------------------------------------------
def gate(conn: apsw.Connection, user: Row) -> str:
    """What sign-in asks after the password: "code" (two-factor is on), "enrol" (the workspace requires it and
    the user has none yet) or "none"."""
    if store.enabled(conn, user["id"]):
        return "code"
    return "enrol" if store.required(conn, user["workspace_id"]) else "none"


def verify(conn: apsw.Connection, instance_secret: str, user: Row, code: str, origin: Origin) -> bool:
    """Accept a current TOTP code or an unused recovery code (spending it), inside the caller's transaction."""
    row = store.get(conn, user["id"])
    if row is None or row["confirmed_at"] is None:
        return False
    typed = "".join(code.split())
    if typed.isdigit() and len(typed) == DIGITS:
        step = check(unseal(instance_secret, row), typed, row["last_step"])
        return step is not None and store.use_step(conn, user["id"], step)
    if not store.use_recovery_code(conn, user["id"], recovery_hash(user["id"], typed)):
        return False
    record(conn, "mfa.recovery_code_used", workspace_id=user["workspace_id"], user_id=user["id"],
           user_email=user["email"], origin=origin, resource_type="user", resource_id=user["id"],
           metadata={"codes_left": store.recovery_codes_left(conn, user["id"])})
    return True
