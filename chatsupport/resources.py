"""Where the files that travel with the code live: in the installed package, or at the top of a checkout."""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
CHECKOUT = PACKAGE.parent


def _locate(name: str) -> Path:
    installed = PACKAGE / name  # `pip install .` maps the top-level folder into the package
    return installed if installed.is_dir() else CHECKOUT / name


def templates_dir() -> Path:
    return _locate("templates")


def widget_dir() -> Path:
    return _locate("widget")


def static_dir() -> Path:
    return PACKAGE / "web" / "static"
