"""Signing in and staying signed in: login with throttling, sessions, refresh-token rotation, access tokens.

A *session* is a family of tokens that share a ``family_id``: an API refresh token that is rotated on every use,
or a console session cookie. A user has at most ``MAX_SESSIONS`` live ones (the oldest is revoked). Presenting
a refresh token that was already rotated means a copy leaked, so the whole family is revoked.

Every function here blocks (argon2, the writer thread): the web layer calls them through ``asyncio.to_thread``.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

import apsw

from chatsupport.config import Settings
from chatsupport.domain import jwt, passwords, totp
from chatsupport.domain.audit import Actor, Origin, record
from chatsupport.domain.permissions import permissions_for
from chatsupport.errors import AppError
from chatsupport.store import sessions, users
from chatsupport.store.db import Database, Row

ACCESS_TOKEN_SECONDS = 900
SESSION_DAYS = 30
MAX_SESSIONS = 5
THROTTLE_LIMIT = 5
THROTTLE_WINDOW = timedelta(minutes=15)
TOUCH_EVERY = timedelta(hours=1)


class Context(Protocol):
    """What the auth functions need from the running process (``Services`` fits; the CLI builds its own)."""

    db: Database
    settings: Settings
    secret_key: str


@dataclass(frozen=True)
class Session:
    user: Row
    family_id: str
    token: str  # the refresh token (API) or the cookie value (console); shown once, stored hashed


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def parse_iso(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def normalize_email(email: str) -> str:
    return email.strip().lower()


# --- throttling ---------------------------------------------------------------------------------------------
def check_throttle(db: Database, key: str, limit: int = THROTTLE_LIMIT, window: timedelta = THROTTLE_WINDOW) -> None:
    """429 ``too_many_attempts`` with the seconds until the oldest counted failure leaves the window."""
    now = now_utc()
    failures = sessions.failures_since(db.reader(), key, iso(now - window))
    if len(failures) >= limit:
        retry = parse_iso(failures[-limit]) + window - now
        raise AppError("too_many_attempts", details={"retry_after": max(1, math.ceil(retry.total_seconds()))})


def count_failure(conn: apsw.Connection, key: str, window: timedelta = THROTTLE_WINDOW) -> None:
    sessions.add_failure(conn, key, iso(now_utc() - max(window, timedelta(hours=1))))


def rate_limit(db: Database, key: str, limit: int, window: timedelta) -> None:
    """Count one attempt against ``key`` (any outcome), refusing it once ``limit`` were made in ``window``."""
    check_throttle(db, key, limit, window)
    db.write(lambda conn: count_failure(conn, key, window))


# --- sessions -----------------------------------------------------------------------------------------------
def start_session(conn: apsw.Connection, user: Row, kind: str, origin: Origin) -> Session:
    """Open a session for ``user`` inside the caller's transaction, revoking the oldest beyond the cap."""
    live = sessions.active_families(conn, user["id"], iso(now_utc()))
    for family_id in live[: max(0, len(live) - MAX_SESSIONS + 1)]:
        sessions.revoke_family(conn, family_id)
        record(conn, "session.revoked", workspace_id=user["workspace_id"], user_id=user["id"],
               user_email=user["email"], origin=origin, resource_type="session", resource_id=family_id,
               metadata={"reason": "session_limit"})
    family_id, token = str(uuid.uuid4()), new_token()
    sessions.insert_token(conn, user_id=user["id"], family_id=family_id, token_hash=token_hash(token), kind=kind,
                          expires_at=iso(now_utc() + timedelta(days=SESSION_DAYS)), user_agent=origin.user_agent,
                          ip_address=origin.ip)
    return Session(user=user, family_id=family_id, token=token)


def access_token(ctx: Context, user: Row, family_id: str) -> str:
    issued = int(time.time())
    claims = {"sub": user["id"], "user_id": user["id"], "workspace_id": user["workspace_id"], "role": user["role"],
              "permissions": permissions_for(user["role"]), "sid": family_id, "iat": issued,
              "exp": issued + ACCESS_TOKEN_SECONDS, "iss": jwt.ISSUER, "aud": jwt.AUDIENCE, "jti": uuid.uuid4().hex}
    return jwt.encode(claims, ctx.secret_key)


def token_response(ctx: Context, session: Session) -> dict[str, Any]:
    """The PRD §5.1.1 token structure."""
    user = session.user
    return {
        "access_token": access_token(ctx, user, session.family_id),
        "refresh_token": session.token,
        "expires_in": ACCESS_TOKEN_SECONDS,
        "token_type": "Bearer",
        "user": public_user(user),
    }


def public_user(user: Row) -> dict[str, Any]:
    return {"id": user["id"], "email": user["email"], "workspace_id": user["workspace_id"], "role": user["role"],
            "display_name": user["display_name"], "status": user["status"],
            "email_verified": bool(user["email_verified"]), "created_at": user["created_at"]}


# --- login --------------------------------------------------------------------------------------------------
def login(ctx: Context, email: str, password: str, origin: Origin, kind: str = "api",
          code: str | None = None) -> Session:
    """Check credentials (throttled per client IP and email), then the second factor, and open a session of
    ``kind``. ``code`` is a TOTP or recovery code: without it a user with two-factor gets ``mfa_required``, and one
    whose workspace requires two-factor but who has none gets ``mfa_enrollment_required``."""
    row, rehash = check_password(ctx, email, password, origin)
    second = totp.gate(ctx.db.reader(), row)
    if second == "enrol":
        raise AppError("mfa_enrollment_required")
    if second == "code":
        if not code:
            raise AppError("mfa_required", "Two-factor authentication is on for this account: send the code from "
                                           "the authenticator app (or a recovery code) as \"totp\" too.")
        check_code(ctx, row, code, origin)
    return finish_login(ctx, row, kind, origin, rehash)


def _login_key(email: str, origin: Origin) -> str:
    return f"login|{origin.ip or ''}|{email}"


def check_password(ctx: Context, email: str, password: str, origin: Origin) -> tuple[Row, str | None]:
    """The active user with these credentials and a new hash when the stored one uses old parameters."""
    email = normalize_email(email)
    key = _login_key(email, origin)
    check_throttle(ctx.db, key)
    row = users.credentials(ctx.db.reader(), email) if email else None
    memory = ctx.settings.ARGON2_MEMORY_KIB
    ok = passwords.verify(row["password_hash"] if row else None, password, memory)
    if not ok or row is None or row["status"] != "active":
        ctx.db.write(lambda conn: _failed_login(conn, key, email, row, origin))
        raise AppError("invalid_credentials")
    rehash = passwords.hash_password(password, memory) if passwords.needs_rehash(row["password_hash"], memory) \
        else None
    return row, rehash


def check_code(ctx: Context, user: Row, code: str, origin: Origin) -> None:
    """The second factor, throttled per user like passwords (the code may come from another address)."""
    key = f"mfa|{user['id']}"
    check_throttle(ctx.db, key)
    if not ctx.db.write(lambda conn: _checked_code(conn, ctx.secret_key, key, user, code, origin)):
        raise AppError("mfa_invalid")


def _checked_code(conn: apsw.Connection, secret_key: str, key: str, user: Row, code: str, origin: Origin) -> bool:
    """Returns the outcome rather than raising, so a failure's count is committed."""
    if totp.verify(conn, secret_key, user, code, origin):
        sessions.clear_failures(conn, key)
        return True
    count_failure(conn, key)
    record(conn, "user.login_failed", workspace_id=user["workspace_id"], user_id=user["id"],
           user_email=user["email"], origin=origin, metadata={"reason": "bad_code"})
    return False


def finish_login(ctx: Context, user: Row, kind: str, origin: Origin, rehash: str | None = None) -> Session:
    key = _login_key(normalize_email(user["email"]), origin)
    return ctx.db.write(lambda conn: _logged_in(conn, key, user, kind, origin, rehash))


def _failed_login(conn: apsw.Connection, key: str, email: str, row: Row | None, origin: Origin) -> None:
    count_failure(conn, key)
    record(conn, "user.login_failed", workspace_id=row["workspace_id"] if row else None,
           user_id=row["id"] if row else None, user_email=email[:254], origin=origin,
           metadata={"reason": "inactive" if row and row["status"] != "active" else "bad_credentials"})


def _logged_in(conn: apsw.Connection, key: str, row: Row, kind: str, origin: Origin,
               rehash: str | None) -> Session:
    sessions.clear_failures(conn, key)
    fields: dict[str, Any] = {"last_login_at": iso(now_utc())}
    if rehash:
        fields["password_hash"] = rehash
    users.update(conn, row["id"], **fields)
    user = users.get(conn, row["id"])
    if user is None or user["status"] != "active":  # deactivated between the password and the code step
        raise AppError("invalid_credentials")
    session = start_session(conn, user, kind, origin)
    record(conn, "user.login", workspace_id=user["workspace_id"], user_id=user["id"], user_email=user["email"],
           origin=origin, resource_type="session", resource_id=session.family_id, metadata={"via": kind})
    return session


def open_session(ctx: Context, user: Row, kind: str, origin: Origin) -> Session:
    """Sign in a user who just proved who they are another way (first-run setup)."""
    def write(conn: apsw.Connection) -> Session:
        session = start_session(conn, user, kind, origin)
        record(conn, "user.login", workspace_id=user["workspace_id"], user_id=user["id"], user_email=user["email"],
               origin=origin, resource_type="session", resource_id=session.family_id, metadata={"via": kind})
        return session

    return ctx.db.write(write)


# --- refresh and logout -------------------------------------------------------------------------------------
def refresh(ctx: Context, refresh_token: str, origin: Origin) -> Session:
    """Rotate an API refresh token. A rotated token presented again revokes its whole family."""
    outcome = ctx.db.write(lambda conn: _rotate(conn, token_hash(refresh_token), origin))
    if not isinstance(outcome, Session):
        raise AppError("invalid_token")
    return outcome


def _rotate(conn: apsw.Connection, hashed: str, origin: Origin) -> Session | str:
    """Returns the new session, or why not: raising here would roll back a family revocation."""
    row = sessions.by_hash(conn, hashed)
    if row is None or row["kind"] != "api" or row["revoked_at"]:
        return "unknown"
    user = users.get(conn, row["user_id"])
    if row["rotated_at"]:
        sessions.revoke_family(conn, row["family_id"])
        if user:
            record(conn, "session.reuse_detected", workspace_id=user["workspace_id"], user_id=user["id"],
                   user_email=user["email"], origin=origin, resource_type="session", resource_id=row["family_id"])
        return "reused"
    if row["expires_at"] <= iso(now_utc()) or user is None or user["status"] != "active":
        sessions.revoke_family(conn, row["family_id"])
        return "expired"
    sessions.mark_rotated(conn, row["id"])
    token = new_token()
    sessions.insert_token(conn, user_id=user["id"], family_id=row["family_id"], token_hash=token_hash(token),
                          kind="api", expires_at=iso(now_utc() + timedelta(days=SESSION_DAYS)),
                          user_agent=origin.user_agent, ip_address=origin.ip)
    return Session(user=user, family_id=row["family_id"], token=token)


def logout(ctx: Context, *, family_id: str | None = None, token: str | None = None,
           origin: Origin = Origin()) -> bool:
    """End one session, named by its family or by any of its tokens; False when there was nothing to end."""
    return ctx.db.write(lambda conn: _end_session(conn, family_id, token, origin))


def _end_session(conn: apsw.Connection, family_id: str | None, token: str | None, origin: Origin) -> bool:
    if family_id is None and token:
        row = sessions.by_hash(conn, token_hash(token))
        family_id = row["family_id"] if row else None
    if family_id is None or not sessions.family_active(conn, family_id, iso(now_utc())):
        return False
    owner = conn.execute("SELECT user_id FROM refresh_tokens WHERE family_id = ? LIMIT 1", (family_id,)).fetchone()
    sessions.revoke_family(conn, family_id)
    user = users.get(conn, owner["user_id"]) if owner else None
    if user:
        record(conn, "user.logout", workspace_id=user["workspace_id"], user_id=user["id"],
               user_email=user["email"], origin=origin, resource_type="session", resource_id=family_id)
    return True


# --- who is calling -----------------------------------------------------------------------------------------
def _actor(user: Row | None, family_id: str, origin: Origin) -> Actor:
    if user is None or user["status"] != "active":
        raise AppError("invalid_token")
    return Actor(user_id=user["id"], workspace_id=user["workspace_id"], role=user["role"], email=user["email"],
                 display_name=user["display_name"], session_id=family_id, origin=origin)


def actor_from_access_token(ctx: Context, token: str, origin: Origin) -> Actor:
    """The user behind a Bearer token; role and status are read fresh, and a revoked session ends the token."""
    claims = jwt.decode(token, ctx.secret_key)
    family_id = str(claims.get("sid", ""))
    reader = ctx.db.reader()
    if not sessions.family_active(reader, family_id, iso(now_utc())):
        raise AppError("invalid_token")
    return _actor(users.get(reader, str(claims.get("sub", ""))), family_id, origin)


def actor_from_session(ctx: Context, cookie: str, origin: Origin) -> Actor | None:
    """The console user behind a session cookie, or None. Sessions slide: 30 days after the last use."""
    row = sessions.by_hash(ctx.db.reader(), token_hash(cookie))
    now = now_utc()
    if row is None or row["kind"] != "console" or row["revoked_at"] or row["expires_at"] <= iso(now):
        return None
    try:
        actor = _actor(users.get(ctx.db.reader(), row["user_id"]), row["family_id"], origin)
    except AppError:
        return None
    if parse_iso(row["last_used_at"] or row["created_at"]) + TOUCH_EVERY < now:
        ctx.db.write(lambda conn: sessions.touch(conn, row["id"], iso(now + timedelta(days=SESSION_DAYS))))
    return actor
