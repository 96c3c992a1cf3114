"""Request and response bodies of the accounts and chatbot API, typed so /schema/openapi.json describes them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import UNSET, Meta, Struct, UnsetType

from chatsupport.domain.chatbot_schema import AISettings, BehaviorSettings, BusinessHours, DataCollection, \
    WidgetSettings

Email = Annotated[str, Meta(max_length=320)]
Secret = Annotated[str, Meta(max_length=1024)]
Token = Annotated[str, Meta(min_length=1, max_length=512)]


class LoginRequest(Struct):
    email: Email
    password: Secret
    totp: Annotated[str, Meta(max_length=64)] | None = None  # a TOTP or recovery code, when two-factor is on


class RegisterRequest(Struct):
    email: Email
    password: Secret
    workspace_name: Annotated[str, Meta(max_length=300)]
    display_name: Annotated[str, Meta(max_length=300)] | None = None


class RefreshRequest(Struct):
    refresh_token: Token | None = None


class ForgotPasswordRequest(Struct):
    email: Email


class ResetPasswordRequest(Struct):
    token: Token
    password: Secret


class VerifyEmailRequest(Struct):
    token: Token


class ChangePasswordRequest(Struct):
    current_password: Secret
    new_password: Secret


class UserOut(Struct):
    id: str
    email: str
    workspace_id: str
    role: Literal["owner", "admin", "agent", "viewer"]
    display_name: str
    status: str
    email_verified: bool
    created_at: str


class TokenResponse(Struct):
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str
    user: UserOut


class WorkspaceOut(Struct):
    id: str
    name: str
    slug: str


class MeResponse(Struct):
    user: UserOut
    workspace: WorkspaceOut
    permissions: list[str]


class StatusResponse(Struct):
    status: str


class UserUpdate(Struct, forbid_unknown_fields=True):
    role: Literal["owner", "admin", "agent", "viewer"] | None = None
    status: Literal["active", "inactive", "suspended"] | None = None


class UserList(Struct):
    data: list[UserOut]


class LinkOut(Struct):
    user_id: str
    email: str
    url: str
    expires_at: str


class Pagination(Struct):
    page: int
    limit: int
    total: int
    total_pages: int


class AuditEntry(Struct):
    id: str
    workspace_id: str | None
    user_id: str | None
    user_email: str | None
    ip_address: str | None
    user_agent: str | None
    action: str
    resource_type: str | None
    resource_id: str | None
    changes: dict[str, Any] | None
    metadata: dict[str, Any] | None
    created_at: str


class AuditPage(Struct):
    data: list[AuditEntry]
    pagination: Pagination


class WidgetSighting(Struct):
    """A site the chat widget was loaded on (Story 2.1 "widget detected")."""

    origin: str
    first_seen_at: str
    last_seen_at: str


class ChatbotOut(Struct, omit_defaults=True):
    id: str
    workspace_id: str
    name: str
    description: str | None
    status: Literal["active", "inactive", "archived"]
    personality: str
    greeting_message: str
    business_hours: BusinessHours
    ai_settings: AISettings
    widget_settings: WidgetSettings
    data_collection: DataCollection
    behavior_settings: BehaviorSettings
    allowed_origins: list[str]
    public_key: str
    embed_code: str
    version: int
    created_by: str | None
    created_at: str
    updated_at: str
    archived_at: str | None
    widget_detected: list[WidgetSighting]
    identity_secret: str | UnsetType = UNSET


class ChatbotPage(Struct):
    data: list[ChatbotOut]
    pagination: Pagination
