"""A workspace's LLM provider settings: validate, encrypt keys, store, audit — and show them without secrets.

The whole list is replaced at once (its order is the chain order). A provider's ``api_key`` in an update: absent
keeps the stored key, ``""`` removes it, a value replaces it. What is shown never contains a key: only whether one
is set and its last four characters. Base URLs are checked against the outbound guard when saved (a loopback
Ollama needs ``OUTBOUND_ALLOWLIST``), and checked again on every call.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import apsw
import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from chatsupport.config import Settings
from chatsupport.domain import audit
from chatsupport.domain.audit import Actor
from chatsupport.errors import AppError
from chatsupport.llm.providers.local import llama_status, resolve_model
from chatsupport.llm.secrets import encrypt_key, key_hint
from chatsupport.net.errors import OutboundRefused
from chatsupport.net.outbound import client_for
from chatsupport.store import llm_usage
from chatsupport.store.db import Database

Seconds = Annotated[float, Meta(gt=0, le=600)]


class ProviderIn(Struct, forbid_unknown_fields=True, kw_only=True):
    kind: Literal["local", "openai", "anthropic"]
    enabled: bool = True
    base_url: Annotated[str, Meta(max_length=500)] | None = None
    model: Annotated[str, Meta(max_length=200)] | None = None
    api_key: Annotated[str, Meta(max_length=500)] | UnsetType = UNSET
    first_token_timeout_s: Seconds | None = None
    total_timeout_s: Seconds | None = None


class ProvidersIn(Struct, forbid_unknown_fields=True, kw_only=True):
    providers: Annotated[list[ProviderIn], Meta(max_length=3)]
    daily_token_cap: Annotated[int, Meta(ge=0)] | None | UnsetType = UNSET


def _show(row: dict[str, Any]) -> dict[str, Any]:
    hint = row.get("api_key_hint") or ""
    return {"kind": row["kind"], "enabled": bool(row["enabled"]), "base_url": row.get("base_url"),
            "model": row.get("model"), "api_key_set": bool(row.get("api_key_encrypted")),
            "api_key_hint": f"…{hint}" if hint else None, "first_token_timeout_s": row.get("first_token_timeout_s"),
            "total_timeout_s": row.get("total_timeout_s")}


def view(db: Database, settings: Settings, workspace_id: str) -> dict[str, Any]:
    """What ``GET /api/v1/llm-providers`` shows: providers in chain order, the cap, today's usage, the local model."""
    cap = llm_usage.get_cap(db, workspace_id)
    day = llm_usage.today()
    ok, detail = llama_status()
    model = resolve_model(settings)
    return {
        "providers": [_show(row) for row in llm_usage.list_providers(db, workspace_id)],
        "daily_token_cap": cap,
        "effective_daily_token_cap": settings.LLM_DAILY_TOKEN_CAP if cap is None else cap,
        "usage_today": {"day": day, "cloud_tokens": llm_usage.cloud_tokens_on(db, workspace_id, day),
                        "by_provider": llm_usage.usage_on(db, workspace_id, day)},
        "local": {"llama_cpp": detail if ok else None, "available": ok and model is not None,
                  "model": model.name if model else None},
        "mask_pii": settings.LLM_MASK_PII,
    }


def _check(settings: Settings, data: ProvidersIn) -> None:
    kinds = [p.kind for p in data.providers]
    problems = [{"field": "providers", "message": "each kind may appear once"}] if len(set(kinds)) != len(kinds) else []
    guard = client_for(settings)
    for i, provider in enumerate(data.providers):
        if provider.base_url and provider.kind != "local":
            try:
                guard.check_url(provider.base_url)
            except OutboundRefused as exc:
                raise AppError("url_not_allowed", details=[{"field": f"providers[{i}].base_url",
                                                            "message": str(exc)}]) from exc
        if provider.kind == "local" and (provider.base_url or provider.model or provider.api_key):
            problems.append({"field": f"providers[{i}]", "message": "the local model is set by the instance "
                             "(CHATSUPPORT_LLM_MODEL); it takes no base_url, model or api_key"})
    guard.close()
    if problems:
        raise AppError("validation_error", details=problems)


def update(db: Database, settings: Settings, secret: str, actor: Actor, data: ProvidersIn) -> dict[str, Any]:
    _check(settings, data)
    workspace_id = actor.workspace_id
    stored = {row["kind"]: row for row in llm_usage.list_providers(db, workspace_id)}
    rows = []
    for position, provider in enumerate(data.providers):
        row = {**msgspec.to_builtins(provider), "position": position, "enabled": int(provider.enabled)}
        old = stored.get(provider.kind, {})
        if provider.api_key is UNSET:
            row["api_key_encrypted"], row["api_key_hint"] = old.get("api_key_encrypted"), old.get("api_key_hint")
        elif provider.api_key:
            row["api_key_encrypted"] = encrypt_key(secret, workspace_id, provider.kind, provider.api_key)
            row["api_key_hint"] = key_hint(provider.api_key)
        rows.append(row)
    changes = {"providers": [{k: v for k, v in r.items() if k not in ("api_key", "api_key_encrypted")}
                             | {"api_key_changed": r["kind"] in {p.kind for p in data.providers
                                                                 if p.api_key is not UNSET}} for r in rows]}

    def write(conn: apsw.Connection) -> None:
        llm_usage.replace_providers(conn, workspace_id, rows)
        if data.daily_token_cap is not UNSET:
            llm_usage.set_cap(conn, workspace_id, data.daily_token_cap)
            changes["daily_token_cap"] = data.daily_token_cap
        audit.record(conn, "llm_providers.updated", actor=actor, resource_type="workspace",
                     resource_id=workspace_id, changes=changes)

    db.write(write)
    return view(db, settings, workspace_id)
