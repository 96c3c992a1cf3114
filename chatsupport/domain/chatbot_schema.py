"""The shape of a chatbot's configuration (PRD §5.2.1–5.2.2) as msgspec types, with the PRD validation rules as
constraints, so a bad value is refused with its field named and the OpenAPI document shows the rules.

Every section field is optional: a create request is merged onto ``DEFAULTS`` and an update onto the stored
settings, so ``{"ai_settings": {"temperature": 0.8}}`` changes that one value.
"""

from __future__ import annotations

import re
import zoneinfo
from functools import lru_cache
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from chatsupport.errors import AppError

Name = Annotated[str, Meta(min_length=3, max_length=50, pattern=r"^[^\W_]+( [^\W_]+)*$",
                           description="3-50 letters, digits and single spaces")]
Hex = Annotated[str, Meta(pattern=r"^#([0-9A-Fa-f]{3}|[0-9A-Fa-f]{6})$", description="hex colour, #RGB or #RRGGBB")]
HHMM = Annotated[str, Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", description="24-hour HH:MM")]
Text500 = Annotated[str, Meta(min_length=1, max_length=500)]
Origin = Annotated[str, Meta(max_length=255, pattern=r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$",
                             description="scheme://host[:port], no path")]


class Section(Struct, forbid_unknown_fields=True, omit_defaults=True, kw_only=True):
    """Base of every settings object: unknown fields are an error, not silently dropped."""


class DayHours(Section):
    start: HHMM
    end: HHMM


class Schedule(Section):
    """A day set to null is closed all day."""

    monday: DayHours | None | UnsetType = UNSET
    tuesday: DayHours | None | UnsetType = UNSET
    wednesday: DayHours | None | UnsetType = UNSET
    thursday: DayHours | None | UnsetType = UNSET
    friday: DayHours | None | UnsetType = UNSET
    saturday: DayHours | None | UnsetType = UNSET
    sunday: DayHours | None | UnsetType = UNSET


class BusinessHours(Section):
    enabled: bool | UnsetType = UNSET
    timezone: Annotated[str, Meta(min_length=1, max_length=64)] | UnsetType = UNSET
    schedule: Schedule | UnsetType = UNSET
    offline_message: Text500 | UnsetType = UNSET


class EscalationTriggers(Section):
    low_confidence_threshold: Annotated[float, Meta(ge=0.0, le=1.0)] | UnsetType = UNSET
    frustration_detection: bool | UnsetType = UNSET
    explicit_request: bool | UnsetType = UNSET
    max_failed_responses: Annotated[int, Meta(ge=1, le=20)] | UnsetType = UNSET


class AISettings(Section):
    model: Annotated[str, Meta(min_length=1, max_length=200)] | UnsetType = UNSET
    temperature: Annotated[float, Meta(ge=0.0, le=2.0)] | UnsetType = UNSET
    max_tokens: Annotated[int, Meta(ge=100, le=2000)] | UnsetType = UNSET
    enable_escalation: bool | UnsetType = UNSET
    escalation_triggers: EscalationTriggers | UnsetType = UNSET
    enable_fallback_responses: bool | UnsetType = UNSET
    fallback_responses: Annotated[list[Text500], Meta(max_length=10)] | UnsetType = UNSET
    custom_instructions: Annotated[str, Meta(max_length=4000)] | UnsetType = UNSET


class Theme(Section):
    primary_color: Hex | UnsetType = UNSET
    secondary_color: Hex | UnsetType = UNSET
    text_color: Hex | UnsetType = UNSET
    background_color: Hex | UnsetType = UNSET


class WidgetSettings(Section):
    position: Literal["bottom-right", "bottom-left"] | UnsetType = UNSET
    theme: Theme | UnsetType = UNSET
    avatar_url: Annotated[str, Meta(max_length=2000, pattern=r"^(https?://|/)\S+$")] | None | UnsetType = UNSET
    button_text: Annotated[str, Meta(min_length=1, max_length=50)] | UnsetType = UNSET
    size: Literal["small", "medium", "large"] | UnsetType = UNSET


class CustomField(Section):
    name: Annotated[str, Meta(pattern=r"^[a-z][a-z0-9_]{0,39}$", description="lower_snake_case, ≤ 40")]
    label: Annotated[str, Meta(min_length=1, max_length=100)]
    type: Literal["text", "email", "phone", "number"] = "text"
    required: bool = False


class DataCollection(Section):
    collect_email: bool | UnsetType = UNSET
    collect_name: bool | UnsetType = UNSET
    custom_fields: Annotated[list[CustomField], Meta(max_length=20)] | UnsetType = UNSET


class BehaviorSettings(Section):
    response_delay: Annotated[int, Meta(ge=0, le=5000, description="milliseconds")] | UnsetType = UNSET
    show_typing_indicator: bool | UnsetType = UNSET
    enable_rich_responses: bool | UnsetType = UNSET
    max_conversation_length: Annotated[int, Meta(ge=1, le=1000)] | UnsetType = UNSET
    inactivity_timeout: Annotated[int, Meta(ge=60000, le=1800000, description="milliseconds")] | UnsetType = UNSET


class ChatbotFields(Section):
    description: Annotated[str, Meta(max_length=500)] | None | UnsetType = UNSET
    status: Literal["active", "inactive"] | UnsetType = UNSET
    personality: Literal["professional", "friendly", "casual"] | UnsetType = UNSET
    greeting_message: Text500 | UnsetType = UNSET
    business_hours: BusinessHours | UnsetType = UNSET
    ai_settings: AISettings | UnsetType = UNSET
    widget_settings: WidgetSettings | UnsetType = UNSET
    data_collection: DataCollection | UnsetType = UNSET
    behavior_settings: BehaviorSettings | UnsetType = UNSET
    allowed_origins: Annotated[list[Origin], Meta(max_length=50)] | UnsetType = UNSET


class ChatbotCreate(ChatbotFields, kw_only=True):
    """Only ``name`` is required; every other value starts at the PRD default."""

    name: Name


class ChatbotUpdate(ChatbotFields, kw_only=True):
    name: Name | UnsetType = UNSET


class ChatbotClone(Section):
    """Without a name the clone is called "<name> copy" (then "copy 2", …)."""

    name: Name | UnsetType = UNSET


_DAY = {"start": "09:00", "end": "17:00"}
SETTINGS_SECTIONS = ("personality", "greeting_message", "business_hours", "ai_settings", "widget_settings",
                     "data_collection", "behavior_settings")
DEFAULTS: dict[str, object] = {
    "personality": "professional",
    "greeting_message": "Hi! How can I help you today?",
    "business_hours": {
        "enabled": False,
        "timezone": "UTC",
        "schedule": {**{day: dict(_DAY) for day in ("monday", "tuesday", "wednesday", "thursday", "friday")},
                     "saturday": None, "sunday": None},
        "offline_message": "We're currently offline. Leave a message!",
    },
    "ai_settings": {
        "model": "auto", "temperature": 0.7, "max_tokens": 500, "enable_escalation": True,
        "escalation_triggers": {"low_confidence_threshold": 0.7, "frustration_detection": True,
                                "explicit_request": True, "max_failed_responses": 3},
        "enable_fallback_responses": False, "fallback_responses": [], "custom_instructions": "",
    },
    "widget_settings": {
        "position": "bottom-right",
        "theme": {"primary_color": "#3B82F6", "secondary_color": "#1E40AF", "text_color": "#FFFFFF",
                  "background_color": "#FFFFFF"},
        "avatar_url": None, "button_text": "Chat with us", "size": "medium",
    },
    "data_collection": {"collect_email": False, "collect_name": False, "custom_fields": []},
    "behavior_settings": {"response_delay": 1000, "show_typing_indicator": True, "enable_rich_responses": True,
                          "max_conversation_length": 50, "inactivity_timeout": 300000},
}

# The rules above in words, by field path: the console shows them as hints and as the message of a refused value.
RULES: dict[str, str] = {
    "name": "3–50 characters: letters, digits and single spaces.",
    "description": "At most 500 characters.",
    "greeting_message": "1–500 characters.",
    "business_hours.timezone": "A time zone name such as Europe/Berlin or America/New_York.",
    "business_hours.offline_message": "1–500 characters.",
    "business_hours.schedule": "Opening and closing times as 24-hour HH:MM, e.g. 09:00.",
    "ai_settings.model": "auto, or providers in order such as local,openai:gpt-4o-mini (1–200 characters).",
    "ai_settings.temperature": "A number from 0 to 2.",
    "ai_settings.max_tokens": "A whole number from 100 to 2000.",
    "ai_settings.custom_instructions": "At most 4000 characters.",
    "ai_settings.fallback_responses": "At most 10 responses, one per line, each up to 500 characters.",
    "ai_settings.escalation_triggers.low_confidence_threshold": "A number from 0 to 1.",
    "ai_settings.escalation_triggers.max_failed_responses": "A whole number from 1 to 20.",
    "widget_settings.theme": "A hex colour such as #3B82F6.",
    "widget_settings.avatar_url": "An http(s):// address or a path starting with /.",
    "widget_settings.button_text": "1–50 characters.",
    "data_collection.custom_fields": "At most 20 fields; each name in lower_snake_case (up to 40 characters), "
                                     "each label 1–100 characters.",
    "behavior_settings.response_delay": "A whole number of milliseconds from 0 to 5000.",
    "behavior_settings.max_conversation_length": "A whole number of messages from 1 to 1000.",
    "behavior_settings.inactivity_timeout": "A whole number of milliseconds from 60000 to 1800000 (1–30 minutes).",
    "allowed_origins": "One site per line as scheme://host[:port] with no path, e.g. https://shop.example.com; "
                       "at most 50.",
}
_AT = re.compile(r" - at `\$\.([^`]*)`$")


def rule_for(path: str) -> str | None:
    """The rule of a field or of the nearest section above it (``widget_settings.theme.primary_color`` → theme)."""
    while path:
        if path in RULES:
            return RULES[path]
        path = path.rpartition(".")[0]
    return None


def parse_update(fields: dict[str, Any]) -> ChatbotUpdate:
    """A console form's values as an update, or 422 naming the field (dotted path) with its rule in words."""
    try:
        return msgspec.convert(fields, ChatbotUpdate)
    except msgspec.ValidationError as exc:
        found = _AT.search(str(exc))
        path = re.sub(r"\[\d+\]", "", found.group(1)) if found else "body"
        raise AppError("validation_error", details=[{"field": path, "message": rule_for(path) or str(exc)}]) from exc


@lru_cache(maxsize=1)
def timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def check_timezone(name: str, field: str) -> None:
    if name not in timezones():
        raise AppError("validation_error", details=[{"field": field, "message": RULES["business_hours.timezone"]}])
