"""Benchmark: PDF extraction speed (pages/s) through ``chatsupport.ingest.extract`` on a PyMuPDF-written PDF.

Usage: PYTHONPATH=. .venv/bin/python bench/pdf_extract.py [--pages 200] [--runs 5]
The PDF is shaped like a manual: a running header and footer on every page (which extraction strips as
repeated margins), a larger-font heading and ~350 words of body text per page. Reports the median and the
slowest of ``--runs`` whole-file extractions, as pages per second.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import pymupdf

from chatsupport.ingest.extract import extract
from quick import add_quick_flag, write_results

WORDS = ("install configure token repository model dataset upload download access private public space "
         "inference endpoint cache branch commit revision license card metadata").split()


def write_pdf(path: Path, pages: int) -> None:
    doc = pymupdf.open()
    for number in range(1, pages + 1):
        page = doc.new_page()
        page.insert_text((72, 40), "Example Product Manual — Internal", fontsize=8)
        page.insert_text((72, 100), f"Section {number}: {WORDS[number % len(WORDS)].title()}", fontsize=16)
        body = " ".join(WORDS[(number * 7 + i * 3) % len(WORDS)] for i in range(350))
        page.insert_textbox(pymupdf.Rect(72, 130, 520, 760), body, fontsize=10)
        page.insert_text((72, 810), f"Page {number}", fontsize=8)
    doc.set_metadata({"title": "Benchmark manual"})
    doc.save(str(path))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    add_quick_flag(parser, "200 pages, 3 runs")
    args = parser.parse_args()
    if args.quick:
        args.pages, args.runs = 200, 3
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "manual.pdf"
        write_pdf(path, args.pages)
        rates = []
        for _ in range(args.runs):
            started = time.perf_counter()
            result = extract(path, "pdf", "manual")
            rates.append(args.pages / (time.perf_counter() - started))
        assert result.page_count == args.pages and result.text_length > 0
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"{args.pages} pages x {args.runs} runs: median {statistics.median(rates):.0f} pages/s, "
          f"slowest run {min(rates):.0f} pages/s (load {load})")
    write_results("pdf_extract", args, {"pages": args.pages, "runs": args.runs, "slowest_pages_per_s": min(rates),
                                        "median_pages_per_s": statistics.median(rates)})


if __name__ == "__main__":
    main()
