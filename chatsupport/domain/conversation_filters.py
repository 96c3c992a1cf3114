"""The one definition of "which conversations": the filters of the inbox list, search (PRD §5.3.4), saved
filters and bulk exports (PRD §5.6.3) all parse into ``Filters`` here and become SQL in one place
(``chatsupport.store.conversation_search.filter_where``).

Two spellings come in: the PRD's JSON object (search, saved filters, exports) and flat query parameters
(``GET /api/v1/conversations?status=active,escalated&tags=billing&…``). Both give the same ``Filters``;
``as_dict`` gives the JSON spelling back (what a saved filter stores).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime, timezone
from typing import Any, Mapping

from chatsupport.domain.conversations import STATUSES
from chatsupport.errors import AppError
from chatsupport.store.conversation_search import DATE_COLUMNS

DATE_FIELDS = DATE_COLUMNS
SORT_FIELDS = ("updated_at", "created_at", "resolved_at")
MAX_TAGS = 20
MAX_QUERY_CHARS = 200


@dataclass(frozen=True)
class DateRange:
    field: str = "created_at"
    start: str | None = None   # UTC ISO-8601 with Z, inclusive
    end: str | None = None     # inclusive


@dataclass(frozen=True)
class Filters:
    """Every field optional; empty means "no condition". ``status`` None = every status but archived."""
    status: tuple[str, ...] | None = None
    chatbot_id: str | None = None
    assigned_agent: str | None = None          # a user id, "unassigned", or "me" (whoever applies the filter)
    tags: tuple[str, ...] = ()                  # the conversation carries every one of them (case-insensitive)
    date_range: DateRange | None = None
    rating_min: int | None = None
    rating_max: int | None = None
    customer_email: str | None = None          # exact, case-insensitive
    has_internal_notes: bool | None = None

    def as_dict(self) -> dict[str, Any]:
        """The PRD JSON spelling, without empty conditions."""
        out: dict[str, Any] = {}
        if self.status is not None:
            out["status"] = list(self.status)
        for name in ("chatbot_id", "assigned_agent", "customer_email", "has_internal_notes"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        if self.tags:
            out["tags"] = list(self.tags)
        if self.date_range is not None:
            out["date_range"] = {k: v for k, v in asdict(self.date_range).items() if v is not None}
        if self.rating_min is not None or self.rating_max is not None:
            out["satisfaction_rating"] = {k: v for k, v in (("min", self.rating_min), ("max", self.rating_max))
                                          if v is not None}
        return out

    def as_query(self) -> dict[str, str]:
        """The flat spelling ``from_query`` reads back (what the console's filter form and links carry); a
        whole-day range comes back as bare dates, which a date input can show."""
        out: dict[str, str] = {}
        if self.status is not None:
            out["status"] = ",".join(self.status)
        for name in ("chatbot_id", "assigned_agent", "customer_email"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        if self.tags:
            out["tags"] = ", ".join(self.tags)
        if self.date_range is not None:
            if self.date_range.field != "created_at":
                out["date_field"] = self.date_range.field
            if self.date_range.start is not None:
                out["start"] = self.date_range.start.removesuffix("T00:00:00.000Z")
            if self.date_range.end is not None:
                out["end"] = self.date_range.end.removesuffix("T23:59:59.999Z")
        for name, value in (("rating_min", self.rating_min), ("rating_max", self.rating_max)):
            if value is not None:
                out[name] = str(value)
        if self.has_internal_notes is not None:
            out["has_notes"] = "true" if self.has_internal_notes else "false"
        return out


def overlay(base: Filters, top: Filters) -> Filters:
    """``base`` (a saved filter) with every condition ``top`` sets put over it."""
    empty = Filters()
    return replace(base, **{f.name: getattr(top, f.name) for f in fields(Filters)
                            if getattr(top, f.name) != getattr(empty, f.name)})


def _invalid(field_name: str, message: str) -> AppError:
    return AppError("validation_error", details=[{"field": field_name, "message": message}])


def _statuses(raw: Any, where: str) -> tuple[str, ...] | None:
    if raw is None or raw == "" or raw == []:
        return None
    items = [part.strip() for part in raw.split(",")] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not all(isinstance(s, str) and s in STATUSES for s in items if s):
        raise _invalid(where, f"One or more of {', '.join(STATUSES)}.")
    statuses = tuple(sorted({s for s in items if s}))
    return statuses or None


def _tags(raw: Any, where: str) -> tuple[str, ...]:
    if raw is None or raw == "":
        return ()
    items = [part for part in raw.split(",")] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not all(isinstance(t, str) for t in items):
        raise _invalid(where, "A list of tags.")
    tags = tuple(dict.fromkeys(" ".join(t.split()).lower() for t in items if t.strip()))
    if len(tags) > MAX_TAGS:
        raise _invalid(where, f"At most {MAX_TAGS} tags.")
    return tags


def _stamp(raw: Any, where: str, end: bool = False) -> str | None:
    """ISO-8601 date or date-time → UTC ``YYYY-MM-DDTHH:MM:SS.fffZ``; a bare date as an end means the whole day."""
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raise _invalid(where, "An ISO-8601 date or date-time, e.g. 2025-10-01 or 2025-10-01T00:00:00Z.")
    text = raw.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            moment = datetime.fromisoformat(text).replace(tzinfo=timezone.utc)
            if end:
                return moment.strftime("%Y-%m-%dT23:59:59.999Z")
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            moment = moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
    except ValueError:
        raise _invalid(where, "An ISO-8601 date or date-time, e.g. 2025-10-01 or 2025-10-01T00:00:00Z.") from None
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _rating(raw: Any, where: str) -> int | None:
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise _invalid(where, "A whole number from 1 to 5.") from None
    if isinstance(raw, bool) or not 1 <= value <= 5 or str(value) != str(raw).strip():
        raise _invalid(where, "A whole number from 1 to 5.")
    return value


def _flag(raw: Any, where: str) -> bool | None:
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.lower() in ("true", "1", "yes", "false", "0", "no"):
        return raw.lower() in ("true", "1", "yes")
    raise _invalid(where, "true or false.")


def _text(raw: Any, where: str, limit: int = 200) -> str | None:
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str) or len(raw) > limit:
        raise _invalid(where, f"Text of at most {limit} characters.")
    return raw.strip() or None


def _build(*, prefix: str, status: Any, chatbot_id: Any, assigned_agent: Any, tags: Any, date_field: Any,
           start: Any, end: Any, rating_min: Any, rating_max: Any, customer_email: Any,
           has_internal_notes: Any) -> Filters:
    date_range = None
    if start not in (None, "") or end not in (None, ""):
        field_name = date_field or "created_at"
        if field_name not in DATE_FIELDS:
            raise _invalid(f"{prefix}date_range.field", f"One of {', '.join(DATE_FIELDS)}.")
        date_range = DateRange(field_name, _stamp(start, f"{prefix}date_range.start"),
                               _stamp(end, f"{prefix}date_range.end", end=True))
        if date_range.start and date_range.end and date_range.start > date_range.end:
            raise _invalid(f"{prefix}date_range", "The start is after the end.")
    low, high = _rating(rating_min, f"{prefix}satisfaction_rating.min"), \
        _rating(rating_max, f"{prefix}satisfaction_rating.max")
    if low is not None and high is not None and low > high:
        raise _invalid(f"{prefix}satisfaction_rating", "min is greater than max.")
    return Filters(status=_statuses(status, f"{prefix}status"),
                   chatbot_id=_text(chatbot_id, f"{prefix}chatbot_id", 100),
                   assigned_agent=_text(assigned_agent, f"{prefix}assigned_agent", 100),
                   tags=_tags(tags, f"{prefix}tags"), date_range=date_range, rating_min=low, rating_max=high,
                   customer_email=_text(customer_email, f"{prefix}customer_email", 254),
                   has_internal_notes=_flag(has_internal_notes, f"{prefix}has_internal_notes"))


def parse_filters(raw: Any, prefix: str = "filters.") -> Filters:
    """The PRD JSON object (``{"status": [...], "date_range": {...}, "satisfaction_rating": {...}, ...}``)."""
    if raw is None:
        return Filters()
    if not isinstance(raw, Mapping):
        raise _invalid(prefix.rstrip("."), "An object of filters.")
    known = {"status", "chatbot_id", "assigned_agent", "tags", "date_range", "satisfaction_rating",
             "customer_email", "has_internal_notes"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise _invalid(f"{prefix}{unknown[0]}", f"Unknown filter; known: {', '.join(sorted(known))}.")
    dates = raw.get("date_range") or {}
    rating = raw.get("satisfaction_rating") or {}
    if not isinstance(dates, Mapping):
        raise _invalid(f"{prefix}date_range", "An object with field, start and end.")
    if not isinstance(rating, Mapping):
        raise _invalid(f"{prefix}satisfaction_rating", "An object with min and max.")
    return _build(prefix=prefix, status=raw.get("status"), chatbot_id=raw.get("chatbot_id"),
                  assigned_agent=raw.get("assigned_agent"), tags=raw.get("tags"), date_field=dates.get("field"),
                  start=dates.get("start"), end=dates.get("end"), rating_min=rating.get("min"),
                  rating_max=rating.get("max"), customer_email=raw.get("customer_email"),
                  has_internal_notes=raw.get("has_internal_notes"))


def from_query(params: Mapping[str, Any]) -> Filters:
    """Flat query parameters: ``status``, ``chatbot_id``, ``assigned_agent``, ``tags`` (comma-separated),
    ``date_field``, ``start``, ``end``, ``rating_min``, ``rating_max``, ``customer_email``, ``has_notes``."""
    return _build(prefix="", status=params.get("status"), chatbot_id=params.get("chatbot_id"),
                  assigned_agent=params.get("assigned_agent"), tags=params.get("tags"),
                  date_field=params.get("date_field"), start=params.get("start"), end=params.get("end"),
                  rating_min=params.get("rating_min"), rating_max=params.get("rating_max"),
                  customer_email=params.get("customer_email"), has_internal_notes=params.get("has_notes"))
