"""Two-factor authentication for console users: enrolment (QR code, confirm with a code, ten recovery codes shown
once), turning it off with the password, new recovery codes, the workspace switch that makes it mandatory, an
admin's reset for a lost phone, and the console's two-step sign-in.

The console's second step is bound to a *pending sign-in token*, not to a half-open session: an HMAC over the
purpose, user, expiry and the user's password hash, valid five minutes. A password change voids it; the code
check behind it is throttled per user like passwords.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass

import apsw

from chatsupport.domain import auth, passwords, totp
from chatsupport.domain.audit import Actor, Origin, record
from chatsupport.domain.auth import Context, Session
from chatsupport.errors import AppError
from chatsupport.store import mfa as store
from chatsupport.store import users
from chatsupport.store.db import Row

PENDING_SECONDS = 300
EXPIRED = "This sign-in took too long or is no longer valid. Enter your email and password again."


@dataclass(frozen=True)
class Setup:
    secret: str
    uri: str
    qr: str  # an SVG data: URI


@dataclass(frozen=True)
class Status:
    enabled: bool
    since: str | None
    pending: bool
    recovery_codes_left: int
    required: bool


@dataclass(frozen=True)
class PendingLogin:
    token: str
    purpose: str  # "code": ask for a code; "enrol": the workspace requires two-factor and the user has none
    setup: Setup | None


def status(ctx: Context, user_id: str, workspace_id: str) -> Status:
    reader = ctx.db.reader()
    row = store.get(reader, user_id)
    enabled = bool(row and row["confirmed_at"])
    return Status(enabled=enabled, since=row["confirmed_at"] if row else None, pending=bool(row and not enabled),
                  recovery_codes_left=store.recovery_codes_left(reader, user_id) if enabled else 0,
                  required=store.required(reader, workspace_id))


# --- enrolment ----------------------------------------------------------------------------------------------
def _setup(secret: str, email: str) -> Setup:
    uri = totp.otpauth_uri(secret, email)
    return Setup(secret=secret, uri=uri, qr=totp.qr_data_uri(uri))


def begin_setup(ctx: Context, user: Row) -> Setup:
    """A new secret waiting for its first code (it replaces an unconfirmed one); refused while two-factor is on."""
    secret = totp.new_secret()

    def write(conn: apsw.Connection) -> None:
        if store.enabled(conn, user["id"]):
            raise AppError("conflict", "Two-factor authentication is already on.")
        store.save_pending(conn, user["id"], user["workspace_id"],
                           totp.seal(ctx.secret_key, user["workspace_id"], user["id"], secret))

    ctx.db.write(write)
    return _setup(secret, user["email"])


def pending_setup(ctx: Context, user: Row) -> Setup | None:
    """The set-up under way (shown again after a mistyped code), or None."""
    row = store.get(ctx.db.reader(), user["id"])
    secret = totp.unseal(ctx.secret_key, row) if row and not row["confirmed_at"] else None
    return _setup(secret, user["email"]) if secret else None


def confirm_setup(ctx: Context, user: Row, code: str, origin: Origin) -> list[str]:
    """Turn two-factor on with the first code from the app; returns the recovery codes (only their hashes stay)."""
    key = f"mfa|{user['id']}"
    auth.check_throttle(ctx.db, key)
    codes = totp.new_recovery_codes()

    def write(conn: apsw.Connection) -> str | None:
        row = store.get(conn, user["id"])
        if row is None or row["confirmed_at"]:
            return "Two-factor authentication is already on." if row else "Start the set-up first."
        step = totp.check(totp.unseal(ctx.secret_key, row), code, 0)
        if step is None:
            auth.count_failure(conn, key)
            return None
        store.confirm(conn, user["id"], step)
        store.replace_recovery_codes(conn, user["id"], user["workspace_id"],
                                     [totp.recovery_hash(user["id"], c) for c in codes])
        record(conn, "mfa.enabled", workspace_id=user["workspace_id"], user_id=user["id"], user_email=user["email"],
               origin=origin, resource_type="user", resource_id=user["id"])
        return ""

    problem = ctx.db.write(write)
    if problem is None:
        raise AppError("validation_error", "That code does not match.", details=[{
            "field": "code", "message": "Enter the current 6-digit code from the app (check the phone's clock)."}])
    if problem:
        raise AppError("conflict", problem)
    return codes


# --- while it is on -----------------------------------------------------------------------------------------
def _check_password(ctx: Context, actor: Actor, password: str) -> None:
    stored = users.password_hash(ctx.db.reader(), actor.user_id)
    if not passwords.verify(stored, password, ctx.settings.ARGON2_MEMORY_KIB):
        raise AppError("wrong_password", "The password is incorrect.",
                       details=[{"field": "password", "message": "Incorrect."}])


def disable(ctx: Context, actor: Actor, password: str) -> None:
    """Needs the password; refused while the workspace requires two-factor (an admin can reset it instead)."""
    _check_password(ctx, actor, password)

    def write(conn: apsw.Connection) -> None:
        if not store.enabled(conn, actor.user_id):
            raise AppError("conflict", "Two-factor authentication is not on.")
        if store.required(conn, actor.workspace_id):
            raise AppError("conflict", "Your workspace requires two-factor authentication, so it cannot be turned "
                                       "off. If you change phones, ask an admin to reset it.")
        store.delete(conn, actor.user_id)
        record(conn, "mfa.disabled", actor=actor, resource_type="user", resource_id=actor.user_id)

    ctx.db.write(write)


def regenerate_recovery_codes(ctx: Context, actor: Actor, password: str) -> list[str]:
    """Ten new codes; the old ones stop working at once."""
    _check_password(ctx, actor, password)
    codes = totp.new_recovery_codes()

    def write(conn: apsw.Connection) -> None:
        if not store.enabled(conn, actor.user_id):
            raise AppError("conflict", "Two-factor authentication is not on.")
        store.replace_recovery_codes(conn, actor.user_id, actor.workspace_id,
                                     [totp.recovery_hash(actor.user_id, c) for c in codes])
        record(conn, "mfa.recovery_codes_regenerated", actor=actor, resource_type="user", resource_id=actor.user_id)

    ctx.db.write(write)
    return codes


# --- the workspace ------------------------------------------------------------------------------------------
def members(ctx: Context, actor: Actor) -> list[Row]:
    return store.members(ctx.db.reader(), actor.workspace_id)


def set_required(ctx: Context, actor: Actor, require: bool) -> None:
    """The admin turning it on must use two-factor already: proof the workspace's sign-in works with it."""
    def write(conn: apsw.Connection) -> None:
        before = store.required(conn, actor.workspace_id)
        if require and not store.enabled(conn, actor.user_id):
            raise AppError("conflict", "Turn on two-factor authentication for your own account first (on your "
                                       "profile page), then require it for everyone.")
        store.set_required(conn, actor.workspace_id, require)
        if before != require:
            record(conn, "workspace.security_updated", actor=actor, resource_type="workspace",
                   resource_id=actor.workspace_id, changes={"before": {"require_mfa": before},
                                                            "after": {"require_mfa": require}})

    ctx.db.write(write)


def member_exists(ctx: Context, actor: Actor, user_id: str) -> bool:
    return users.get_in_workspace(ctx.db.reader(), actor.workspace_id, user_id) is not None


def reset(ctx: Context, actor: Actor, user_id: str) -> None:
    """An admin removes a member's two-factor (a lost phone without recovery codes); they enrol again."""
    def write(conn: apsw.Connection) -> None:
        member = users.get_in_workspace(conn, actor.workspace_id, user_id)
        if member is None:
            raise AppError("not_found", "No such member.")
        store.delete(conn, user_id)
        record(conn, "mfa.reset", actor=actor, resource_type="user", resource_id=user_id,
               metadata={"email": member["email"]})

    ctx.db.write(write)


# --- the console's two-step sign-in -------------------------------------------------------------------------
def _signature(ctx: Context, payload: str, user_id: str) -> str:
    password_hash = users.password_hash(ctx.db.reader(), user_id) or ""
    message = f"mfa-pending|{payload}|{password_hash}".encode()
    return hmac.new(ctx.secret_key.encode(), message, hashlib.sha256).hexdigest()


def pending_token(ctx: Context, user: Row, purpose: str) -> str:
    payload = f"{purpose}.{user['id']}.{int(time.time()) + PENDING_SECONDS}"
    return f"{payload}.{_signature(ctx, payload, user['id'])}"


def pending_user(ctx: Context, token: str, purpose: str) -> Row:
    """The active user a valid, unexpired token of ``purpose`` names; otherwise ``invalid_token``."""
    parts = token.split(".")
    if len(parts) == 4 and parts[0] == purpose and parts[2].isdigit() and int(parts[2]) > time.time():
        payload = ".".join(parts[:3])
        if hmac.compare_digest(_signature(ctx, payload, parts[1]), parts[3]):
            user = users.get(ctx.db.reader(), parts[1])
            if user is not None and user["status"] == "active":
                return user
    raise AppError("invalid_token", EXPIRED)


def start_login(ctx: Context, email: str, password: str, origin: Origin) -> Session | PendingLogin:
    """The password step: a console session when no second factor applies, else what to ask next."""
    user, rehash = auth.check_password(ctx, email, password, origin)
    second = totp.gate(ctx.db.reader(), user)
    if second == "none":
        return auth.finish_login(ctx, user, "console", origin, rehash)
    setup = begin_setup(ctx, user) if second == "enrol" else None
    return PendingLogin(token=pending_token(ctx, user, second), purpose=second, setup=setup)


def finish_code_login(ctx: Context, token: str, code: str, origin: Origin) -> Session:
    user = pending_user(ctx, token, "code")
    auth.check_code(ctx, user, code, origin)
    return auth.finish_login(ctx, user, "console", origin)


def finish_enrol_login(ctx: Context, token: str, code: str, origin: Origin) -> tuple[Session, list[str]]:
    """Enrolment forced by the workspace, then the session; returns the recovery codes to show once."""
    user = pending_user(ctx, token, "enrol")
    codes = confirm_setup(ctx, user, code, origin)
    return auth.finish_login(ctx, user, "console", origin), codes
