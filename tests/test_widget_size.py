"""The widget's byte budgets (issue 6): loader ≤ 5 KB gzipped, whole widget ≤ 30 KB gzipped, measured by the same
code as ``bench/widget_size.py``."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_bench():  # noqa: ANN201 - the bench module
    if str(ROOT / "bench") not in sys.path:   # as when run as a script: its neighbours (bench/quick.py) import
        sys.path.insert(0, str(ROOT / "bench"))
    spec = importlib.util.spec_from_file_location("widget_size", ROOT / "bench" / "widget_size.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_loader_and_widget_fit_their_budgets() -> None:
    sizes = load_bench().measure()
    assert sizes["loader.js"]["gzip"] <= 5 * 1024, sizes
    assert sizes["total"]["gzip"] <= 30 * 1024, sizes
    assert set(sizes) == {"loader.js", "frame.js", "frame.css", "frame.html", "total"}
    assert all(size["gzip"] > 0 for size in sizes.values())


def test_bench_script_reports_and_exits_zero_within_budget() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "widget_size.py")], capture_output=True,
                            text=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert "loader.js" in result.stdout and "total" in result.stdout


def test_frame_page_keeps_config_as_json_and_no_inline_code() -> None:
    """The frame runs under script-src/style-src 'self': the only inline script is the JSON config, and a
    hostile chatbot name cannot break out of it or of the markup."""
    from html.parser import HTMLParser

    bench = load_bench()
    bench.SAMPLE_CONFIG["chatbot"]["name"] = "</script><script>alert(1)</script>"
    page = bench.render_frame().decode()

    class Collect(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.scripts: list[dict[str, str | None]] = []
            self.styles = 0
            self.inline_attrs: list[str] = []

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            names = dict(attrs)
            if tag == "script":
                self.scripts.append(names)
            if tag == "style":
                self.styles += 1
            self.inline_attrs += [n for n in names if n == "style" or n.startswith("on")]

    parser = Collect()
    parser.feed(page)
    assert parser.styles == 0 and parser.inline_attrs == []
    assert [s.get("type") for s in parser.scripts if "src" not in s] == ["application/json"]
    assert page.count("<script") == 2
