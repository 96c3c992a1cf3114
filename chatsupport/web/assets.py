"""Static asset URLs carry a content hash, so browsers cache them forever and never run a stale copy."""

from __future__ import annotations

import hashlib
from functools import lru_cache

from chatsupport.resources import static_dir


@lru_cache(maxsize=None)
def static_url(name: str) -> str:
    path = (static_dir() / name).resolve()
    if static_dir().resolve() not in path.parents or not path.is_file():
        raise FileNotFoundError(f"no static asset {name!r}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    return f"/static/{name}?v={digest}"
