"""How a route declares who may call it. Every handler sets ``opt["permission"]``; a test enumerates the routes
and fails on any that does not. ``PUBLIC`` routes need no login (health checks, docs, the widget)."""

from __future__ import annotations

from typing import Any

PUBLIC = "public"


def public() -> dict[str, Any]:
    return {"opt": {"permission": PUBLIC}}
