"""The chatbot settings forms, declared once: each tab is a list of fields named by their dotted path in the API
shape (``ai_settings.temperature``). The path is the form field's name, the key of its error message, and where
its value lives in the update, so one template renders every tab and one function reads every form.

Reading a form only converts text to the field's type; the rules (ranges, lengths, patterns) are
``chatbot_schema``'s, checked by ``parse_update`` — the same ones the API applies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from chatsupport.domain.chatbot_schema import ChatbotUpdate, parse_update, rule_for
from chatsupport.errors import AppError

DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
CUSTOM_FIELD_TYPES = ("text", "email", "phone", "number")
BLANK_CUSTOM_ROWS = 2
MAX_CUSTOM_ROWS = 20


@dataclass(frozen=True)
class Field:
    path: str
    label: str
    kind: str = "text"          # text, textarea, int, decimal, check, select, color, lines, optional
    options: tuple[str, ...] = ()
    step: str = ""

    @property
    def hint(self) -> str:
        """The field's rule in words; a checkbox or a list of choices needs none."""
        if self.kind in ("check", "select"):
            return ""
        return rule_for(self.path) or ""

    @property
    def id(self) -> str:
        return "f-" + self.path.replace(".", "-")


@dataclass(frozen=True)
class Section:
    slug: str
    title: str
    intro: str
    fields: tuple[Field, ...]
    permission: str = "chatbot.update"


_THEME = tuple(Field(f"widget_settings.theme.{key}", label, "color") for key, label in (
    ("primary_color", "Main colour (launcher and your messages)"), ("secondary_color", "Second colour"),
    ("text_color", "Text on the main colour"), ("background_color", "Chat background")))

SECTIONS: dict[str, Section] = {s.slug: s for s in (
    Section("general", "General", "The name your team sees, the greeting customers see first, and whether the bot "
            "is live.", (
                Field("name", "Name"), Field("description", "Description", "optional"),
                Field("status", "Status", "select", ("active", "inactive")),
                Field("personality", "Personality", "select", ("professional", "friendly", "casual")),
                Field("greeting_message", "Greeting", "textarea"))),
    Section("hours", "Business hours", "Outside these hours customers can leave a message for your team.", (
        Field("business_hours.enabled", "Use business hours (off: the team is always shown as available)", "check"),
        Field("business_hours.timezone", "Time zone"),
        Field("business_hours.offline_message", "Offline message", "textarea"))),
    Section("ai", "AI", "Which models answer and how. The provider chain is tried in order; the extractive "
            "answer (quotes from your knowledge base) always comes last.", (
                Field("ai_settings.model", "Provider chain"),
                Field("ai_settings.temperature", "Temperature", "decimal", step="0.1"),
                Field("ai_settings.max_tokens", "Maximum answer length (tokens)", "int"),
                Field("ai_settings.custom_instructions", "Extra instructions for the AI", "textarea"),
                Field("ai_settings.enable_fallback_responses", "Use fallback responses when no answer is found",
                      "check"),
                Field("ai_settings.fallback_responses", "Fallback responses", "lines"))),
    Section("escalation", "Escalation", "When the AI hands a conversation to a person.", (
        Field("ai_settings.enable_escalation", "Hand over to a person when a trigger fires", "check"),
        Field("ai_settings.escalation_triggers.low_confidence_threshold", "Hand over below this confidence",
              "decimal", step="0.05"),
        Field("ai_settings.escalation_triggers.frustration_detection", "Hand over when the customer is frustrated",
              "check"),
        Field("ai_settings.escalation_triggers.explicit_request", "Hand over when the customer asks for a person",
              "check"),
        Field("ai_settings.escalation_triggers.max_failed_responses", "Hand over after this many unanswered "
              "questions", "int"))),
    Section("widget", "Widget look", "How the chat looks on your site. Open widgets update within seconds.", (
        Field("widget_settings.position", "Position", "select", ("bottom-right", "bottom-left")),
        Field("widget_settings.size", "Size", "select", ("small", "medium", "large")),
        Field("widget_settings.button_text", "Button text"), *_THEME,
        Field("widget_settings.avatar_url", "Avatar image address", "optional"))),
    Section("origins", "Allowed sites", "The websites allowed to show this chat.", (
        Field("allowed_origins", "Allowed origins", "lines"),)),
    Section("data", "Data collection", "What customers are asked before the chat starts.", (
        Field("data_collection.collect_name", "Ask for the customer's name", "check"),
        Field("data_collection.collect_email", "Ask for the customer's email", "check"))),
    Section("behaviour", "Behaviour", "Timing and limits of a conversation.", (
        Field("behavior_settings.response_delay", "Typing delay before an answer (ms)", "int"),
        Field("behavior_settings.show_typing_indicator", "Show the typing indicator", "check"),
        Field("behavior_settings.enable_rich_responses", "Format answers (links, lists, bold)", "check"),
        Field("behavior_settings.max_conversation_length", "Most messages in one conversation", "int"),
        Field("behavior_settings.inactivity_timeout", "Close an idle chat after (ms)", "int"))),
)}


def value_at(data: Mapping[str, Any], path: str) -> Any:
    for key in path.split("."):
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)  # type: ignore[assignment]
    return data


def _put(target: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for key in parents:
        target = target.setdefault(key, {})
    target[last] = value


def _number(raw: str, kind: type) -> int | float | str:
    """The number typed, or the text itself when it is not one (shown again, with the error)."""
    try:
        return kind(raw.strip())
    except ValueError:
        return raw


def _read(field: Field, form: Mapping[str, Any]) -> Any:
    raw = str(form.get(field.path) or "")
    if field.kind == "check":
        return field.path in form
    if field.kind in ("int", "decimal"):
        return _number(raw, int if field.kind == "int" else float)
    if field.kind == "lines":
        return [line.strip() for line in raw.splitlines() if line.strip()]
    if field.kind == "optional":
        return raw.strip() or None
    if field.kind == "color":
        return raw.strip().upper()  # colour pickers say #3b82f6; the same colour must not count as a change
    return raw if field.kind == "textarea" else raw.strip()


def _schedule(form: Mapping[str, Any]) -> dict[str, Any]:
    """A day unticked is closed (null); a ticked one needs its opening and closing times."""
    return {day: {"start": str(form.get(f"business_hours.schedule.{day}.start") or "").strip(),
                  "end": str(form.get(f"business_hours.schedule.{day}.end") or "").strip()}
            if f"business_hours.schedule.{day}.open" in form else None for day in DAYS}


def _custom_fields(form: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Rows with a name or a label are kept; empty rows are the blanks offered for new fields."""
    rows = []
    for i in range(MAX_CUSTOM_ROWS + BLANK_CUSTOM_ROWS):
        prefix = f"data_collection.custom_fields.{i}."
        name, label = (str(form.get(prefix + key) or "").strip() for key in ("name", "label"))
        if name or label:
            rows.append({"name": name, "label": label, "type": str(form.get(prefix + "type") or "text"),
                         "required": prefix + "required" in form})
    return rows


def read_section(section: Section, form: Mapping[str, Any]) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """The update a tab's form asks for (nested, API shape), and the fields whose text is not the number they
    need. The update keeps such text as typed, so the form can show it again."""
    patch: dict[str, Any] = {}
    problems = []
    for field in section.fields:
        value = _read(field, form)
        if field.kind in ("int", "decimal") and isinstance(value, str):
            word = "a whole number" if field.kind == "int" else "a number"
            problems.append({"field": field.path, "message": f"Enter {word}. {rule_for(field.path) or ''}".strip()})
        _put(patch, field.path, value)
    if section.slug == "hours":
        _put(patch, "business_hours.schedule", _schedule(form))
    if section.slug == "data":
        _put(patch, "data_collection.custom_fields", _custom_fields(form))
    return patch, problems


EXTRA_PATHS = {"hours": ("business_hours.schedule",), "data": ("data_collection.custom_fields",)}


def check_section(section: Section, form: Mapping[str, Any]) -> ChatbotUpdate:
    """The tab's update, checked field by field so every refused value is named at once (a whole-document check
    stops at the first)."""
    patch, problems = read_section(section, form)
    typed = {p["field"] for p in problems}
    for path in (*(f.path for f in section.fields), *EXTRA_PATHS.get(section.slug, ())):
        if path in typed:
            continue
        single: dict[str, Any] = {}
        _put(single, path, value_at(patch, path))
        try:
            parse_update(single)
        except AppError as exc:
            problems.extend(exc.details)
    if problems:
        raise AppError("validation_error", details=problems)
    return parse_update(patch)
