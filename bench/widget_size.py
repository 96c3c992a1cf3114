"""Benchmark: bytes the chat widget costs a visitor, raw and gzipped, against the issue's budgets.

Usage:
  PYTHONPATH=. .venv/bin/python bench/widget_size.py [--json]

The loader (``widget/loader.js``, served as /widget.js) must stay ≤ 5 KB gzipped: every page of the customer's site
loads it. The whole widget (loader + frame.js + frame.css + the frame page rendered with a typical start-up
configuration) must stay ≤ 30 KB gzipped. Each file travels as its own response, so each is gzipped on its own
(level 9, what a compressing proxy or the server's gzip middleware sends at most) and the sizes are summed.
Exits 1 when over budget.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from quick import add_quick_flag, write_results

ROOT = Path(__file__).resolve().parents[1]
LOADER_BUDGET = 5 * 1024
TOTAL_BUDGET = 30 * 1024
SAMPLE_CONFIG = {
    "token": "x" * 180, "token_expires_at": "2026-01-01T00:00:00.000Z",
    "ws_url": "wss://support.example.com/ws/widget", "api_base": "https://support.example.com/widget/api",
    "host_origin": "https://shop.example.com", "visitor_id": "v_" + "a" * 22, "conversation_id": None,
    "chatbot": {"name": "Support Bot", "status": "active", "greeting_message": "Hi! How can I help you today?",
                "personality": "professional",
                "widget_settings": {"position": "bottom-right", "theme": {
                    "primary_color": "#3B82F6", "secondary_color": "#1E40AF", "text_color": "#FFFFFF",
                    "background_color": "#FFFFFF"}, "avatar_url": None, "button_text": "Chat with us",
                    "size": "medium"},
                "data_collection": {"collect_email": True, "collect_name": True, "custom_fields": []},
                "business_open": True, "offline_message": "We're currently offline. Leave a message!",
                "show_typing_indicator": True},
    "limits": {"max_message_length": 4000, "max_attachment_bytes": 10485760,
               "attachment_types": ["image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf"]},
    "source_url": "https://support.example.com/source",
}


def render_frame() -> bytes:
    env = Environment(loader=FileSystemLoader(ROOT / "templates"), autoescape=select_autoescape(["html"]))
    page = env.get_template("widget/frame.html").render(
        config=SAMPLE_CONFIG, frame_js_url="/widget/frame.js?v=0123456789ab",
        frame_css_url="/widget/frame.css?v=0123456789ab", chatbot_name="Support Bot", theme={})
    return page.encode()


def measure() -> dict[str, dict[str, int]]:
    """{name: {"raw": bytes, "gzip": bytes}} for each piece and the total."""
    pieces = {name: (ROOT / "widget" / name).read_bytes() for name in ("loader.js", "frame.js", "frame.css")}
    pieces["frame.html"] = render_frame()
    sizes = {name: {"raw": len(body), "gzip": len(gzip.compress(body, 9, mtime=0))} for name, body in pieces.items()}
    sizes["total"] = {key: sum(s[key] for s in sizes.values()) for key in ("raw", "gzip")}
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the sizes as JSON")
    add_quick_flag(parser, "the same measurement (it takes a second)")
    args = parser.parse_args(argv)
    sizes = measure()
    over = []
    if sizes["loader.js"]["gzip"] > LOADER_BUDGET:
        over.append(f"loader.js is {sizes['loader.js']['gzip']} B gzipped (budget {LOADER_BUDGET})")
    if sizes["total"]["gzip"] > TOTAL_BUDGET:
        over.append(f"the widget is {sizes['total']['gzip']} B gzipped (budget {TOTAL_BUDGET})")
    if args.json:
        print(json.dumps({"sizes": sizes, "budgets": {"loader_gzip": LOADER_BUDGET, "total_gzip": TOTAL_BUDGET},
                          "over": over}, indent=2))
    else:
        print(f"{'file':<12} {'raw':>8} {'gzip':>8}")
        for name, size in sizes.items():
            print(f"{name:<12} {size['raw']:>8} {size['gzip']:>8}")
        print(f"budgets: loader ≤ {LOADER_BUDGET} B gzipped, whole widget ≤ {TOTAL_BUDGET} B gzipped")
        for line in over:
            print("OVER BUDGET:", line, file=sys.stderr)
    write_results("widget_size", args, {"sizes": sizes, "over": over,
                                        "budgets": {"loader_gzip": LOADER_BUDGET, "total_gzip": TOTAL_BUDGET}})
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
