"""Reporting periods: presets and custom date ranges, in the workspace's time zone.

A day is a local calendar day: ``today`` in Sydney starts at Sydney's midnight. Every real time zone's midnight
falls on a quarter hour, so a period is an exact run of 15-minute UTC rollup buckets.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from chatsupport.domain.analytics import bucket_of
from chatsupport.errors import AppError

PRESETS = {
    "today": "Today", "yesterday": "Yesterday", "last_7_days": "Last 7 days", "last_30_days": "Last 30 days",
    "this_month": "This month", "last_month": "Last month",
}
# The PRD's short names (§5.2.3) mean the same as the presets above.
ALIASES = {"7d": "last_7_days", "30d": "last_30_days", "1d": "today"}
DEFAULT_PRESET = "last_7_days"
MAX_DAYS = 366


@dataclass(frozen=True)
class Period:
    preset: str                 # a preset name, or "custom"
    first_day: date             # local, inclusive
    last_day: date              # local, inclusive
    zone: ZoneInfo

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first_day, time(), self.zone).astimezone(timezone.utc)

    @property
    def end(self) -> datetime:
        """Exclusive: the next local midnight."""
        return datetime.combine(self.last_day + timedelta(days=1), time(), self.zone).astimezone(timezone.utc)

    @property
    def buckets(self) -> tuple[str, str]:
        return bucket_of(self.start), bucket_of(self.end)

    @property
    def days(self) -> list[date]:
        return [self.first_day + timedelta(days=n) for n in range((self.last_day - self.first_day).days + 1)]

    @property
    def windows(self) -> list[tuple[str, str, str, str]]:
        """(local date, first bucket, end bucket, SQLite modifier from UTC to local time) for every stretch of
        the period with one UTC offset: a day, or two pieces on the day clocks change. SQL groups rollup rows by
        local day and hour with these, so a 90-day period returns 90 rows instead of 8,640 buckets."""
        out = []
        for day in self.days:
            start = datetime.combine(day, time(), self.zone).astimezone(timezone.utc)
            end = datetime.combine(day + timedelta(days=1), time(), self.zone).astimezone(timezone.utc)
            piece, offset = start, start.astimezone(self.zone).utcoffset()
            if _changes(day, self.zone):   # find the quarter hour the clocks moved
                for step in range(int((end - start) / timedelta(minutes=15))):
                    moment = start + timedelta(minutes=15 * step)
                    if moment.astimezone(self.zone).utcoffset() != offset:
                        out.append((day.isoformat(), bucket_of(piece), bucket_of(moment), _modifier(offset)))
                        piece, offset = moment, moment.astimezone(self.zone).utcoffset()
            out.append((day.isoformat(), bucket_of(piece), bucket_of(end), _modifier(offset)))
        return out

    @property
    def label(self) -> str:
        if self.preset in PRESETS:
            return PRESETS[self.preset]
        return f"{self.first_day.isoformat()} – {self.last_day.isoformat()}"

    def as_json(self) -> dict[str, Any]:
        """The PRD's shape: UTC instants, ``end`` being the last second of the last local day."""
        return {"start": _iso(self.start), "end": _iso(self.end - timedelta(seconds=1)), "preset": self.preset,
                "timezone": self.zone.key, "first_day": self.first_day.isoformat(),
                "last_day": self.last_day.isoformat()}


def _changes(day: date, zone: ZoneInfo) -> bool:
    """Whether the zone's UTC offset differs between the start and the end of ``day`` (a DST change)."""
    start = datetime.combine(day, time(), zone)
    end = datetime.combine(day + timedelta(days=1), time(), zone)
    return start.utcoffset() != end.utcoffset()


def _modifier(offset: timedelta | None) -> str:
    return f"{int((offset or timedelta()).total_seconds() // 60):+d} minutes"


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def workspace_zone(settings_json: str | dict[str, Any] | None) -> ZoneInfo:
    """The workspace's reporting time zone: ``settings.timezone`` (set with the brand, ``domain.brand``), else UTC
    (also when the name is unknown to this system's zone database)."""
    settings = json.loads(settings_json) if isinstance(settings_json, str) else (settings_json or {})
    name = settings.get("timezone") or "UTC"
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _invalid(field: str, message: str) -> AppError:
    return AppError("validation_error", details=[{"field": field, "message": message}])


def _date(field: str, value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _invalid(field, "a date as YYYY-MM-DD") from None


def resolve(zone: ZoneInfo, period: str | None = None, start_date: str | None = None,
            end_date: str | None = None, now: datetime | None = None) -> Period:
    """A preset (``period``), or ``start_date``/``end_date`` (local dates, both inclusive) for a custom range."""
    today = (now or datetime.now(timezone.utc)).astimezone(zone).date()
    if start_date or end_date or period == "custom":
        if not (start_date and end_date):
            raise _invalid("start_date" if not start_date else "end_date", "a custom range needs both dates")
        first, last = _date("start_date", start_date), _date("end_date", end_date)
        if last < first:
            raise _invalid("end_date", "must not be before start_date")
        if (last - first).days >= MAX_DAYS:
            raise _invalid("end_date", f"a range covers at most {MAX_DAYS} days")
        return Period("custom", first, last, zone)
    name = ALIASES.get(period or DEFAULT_PRESET, period or DEFAULT_PRESET)
    if name not in PRESETS:
        raise _invalid("period", "one of " + ", ".join([*PRESETS, "custom"]))
    month_start = today.replace(day=1)
    previous_month_end = month_start - timedelta(days=1)
    first, last = {
        "today": (today, today),
        "yesterday": (today - timedelta(days=1), today - timedelta(days=1)),
        "last_7_days": (today - timedelta(days=6), today),
        "last_30_days": (today - timedelta(days=29), today),
        "this_month": (month_start, today),
        "last_month": (previous_month_end.replace(day=1), previous_month_end),
    }[name]
    return Period(name, first, last, zone)


