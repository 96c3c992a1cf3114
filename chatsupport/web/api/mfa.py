"""``/api/v1/auth/mfa*``: two-factor authentication of the signed-in user (status, set-up, confirm, turn off, new
recovery codes) and ``/api/v1/workspace/security`` (require it for everyone).

The user's own routes refuse API keys: a key acts *for* its creator, and must not enrol a phone of its holder's
choosing on the creator's account.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from litestar import Request, get, post, put
from msgspec import Meta, Struct

from chatsupport.domain import mfa
from chatsupport.domain.audit import Actor
from chatsupport.domain.permissions import AUTHENTICATED
from chatsupport.errors import AppError
from chatsupport.store import users
from chatsupport.web.api.schemas import Secret, StatusResponse
from chatsupport.web.auth import actor_of, origin_of, services_of
from chatsupport.web.permissions import requires

Code = Annotated[str, Meta(min_length=1, max_length=64)]


class MfaStatusOut(Struct):
    enabled: bool
    enabled_at: str | None
    setup_pending: bool
    recovery_codes_left: int
    required_by_workspace: bool


class MfaSetupOut(Struct):
    secret: str  # Base32, for typing into an app by hand
    otpauth_uri: str
    qr_code: str  # an SVG data: URI of the otpauth URI


class MfaConfirmRequest(Struct, forbid_unknown_fields=True):
    code: Code


class PasswordRequest(Struct, forbid_unknown_fields=True):
    password: Secret


class RecoveryCodesOut(Struct):
    recovery_codes: list[str]  # shown once; only their hashes are kept


class WorkspaceSecurity(Struct, forbid_unknown_fields=True):
    require_mfa: bool


def _person(request: Request[Any, Any, Any]) -> Actor:
    actor = actor_of(request)
    if actor.session_id is None:
        raise AppError("forbidden", "Two-factor settings belong to the signed-in person; an API key cannot change "
                                    "them.")
    return actor


@get("/api/v1/auth/mfa", **requires(AUTHENTICATED))
async def mfa_status(request: Request[Any, Any, Any]) -> MfaStatusOut:
    actor = actor_of(request)
    found = await asyncio.to_thread(mfa.status, services_of(request), actor.user_id, actor.workspace_id)
    return MfaStatusOut(enabled=found.enabled, enabled_at=found.since if found.enabled else None,
                        setup_pending=found.pending, recovery_codes_left=found.recovery_codes_left,
                        required_by_workspace=found.required)


@post("/api/v1/auth/mfa/setup", status_code=200, **requires(AUTHENTICATED))
async def mfa_setup(request: Request[Any, Any, Any]) -> MfaSetupOut:
    """A new secret to add to an authenticator app; two-factor turns on once ``/confirm`` gets a code from it."""
    services, actor = services_of(request), _person(request)
    user = await asyncio.to_thread(users.get, services.db.reader(), actor.user_id)
    setup = await asyncio.to_thread(mfa.begin_setup, services, user)
    return MfaSetupOut(secret=setup.secret, otpauth_uri=setup.uri, qr_code=setup.qr)


@post("/api/v1/auth/mfa/confirm", status_code=200, **requires(AUTHENTICATED))
async def mfa_confirm(request: Request[Any, Any, Any], data: MfaConfirmRequest) -> RecoveryCodesOut:
    services, actor = services_of(request), _person(request)
    user = await asyncio.to_thread(users.get, services.db.reader(), actor.user_id)
    codes = await asyncio.to_thread(mfa.confirm_setup, services, user, data.code, origin_of(request))
    return RecoveryCodesOut(recovery_codes=codes)


@post("/api/v1/auth/mfa/disable", status_code=200, **requires(AUTHENTICATED))
async def mfa_disable(request: Request[Any, Any, Any], data: PasswordRequest) -> StatusResponse:
    await asyncio.to_thread(mfa.disable, services_of(request), _person(request), data.password)
    return StatusResponse(status="ok")


@post("/api/v1/auth/mfa/recovery-codes", status_code=200, **requires(AUTHENTICATED))
async def mfa_recovery_codes(request: Request[Any, Any, Any], data: PasswordRequest) -> RecoveryCodesOut:
    """Ten new recovery codes; the previous ones stop working."""
    codes = await asyncio.to_thread(mfa.regenerate_recovery_codes, services_of(request), _person(request),
                                    data.password)
    return RecoveryCodesOut(recovery_codes=codes)


@get("/api/v1/workspace/security", **requires("workspace.settings"))
async def workspace_security(request: Request[Any, Any, Any]) -> WorkspaceSecurity:
    actor = actor_of(request)
    found = await asyncio.to_thread(mfa.status, services_of(request), actor.user_id, actor.workspace_id)
    return WorkspaceSecurity(require_mfa=found.required)


@put("/api/v1/workspace/security", **requires("workspace.settings"))
async def update_workspace_security(request: Request[Any, Any, Any], data: WorkspaceSecurity) -> WorkspaceSecurity:
    """Requiring two-factor: members without it are sent to set it up at their next console sign-in, and the API
    login answers ``mfa_enrollment_required`` until they have."""
    await asyncio.to_thread(mfa.set_required, services_of(request), actor_of(request), data.require_mfa)
    return data


ROUTES = [mfa_status, mfa_setup, mfa_confirm, mfa_disable, mfa_recovery_codes, workspace_security,
          update_workspace_security]
