"""Markdown/MDX cleaning and structure-following chunking, measured with the real tokenizer."""

from __future__ import annotations

import pytest

from chatsupport.ingest.chunking import Chunker, chunk_document, readable
from chatsupport.ingest.markdown_clean import clean_markdown, html_to_markdown

MDX = """---
title: "Billing & invoices"
description: How charges, invoices and refunds work.
tags:
  - billing
---
import { Tip } from "@/components/Tip";
export const meta = { hidden: true };

# Billing & invoices

Intro paragraph with a [link to pricing](https://example.com/pricing) and an ![diagram](img/x.png) image.

<Tip warning={true}>
Invoices are emailed on the 1st of each month.
</Tip>

<div class="flex justify-center">
  <img class="block" src="https://example.com/a.png"/>
</div>

<!-- an editor's note nobody should see -->

Set the cache folder with `HF_HOME`; files land in <CACHE_DIR>/hub.

## Payment methods

- Credit cards issued in most countries
- AWS Marketplace for organizations

### Cards from India

Not yet supported because of RBI directives.

```python
# <Tip> inside code stays as written
print("<b>hello</b>")
```

| plan | storage |
| --- | --- |
| Free | 100GB |
| PRO | 1TB |
"""


@pytest.fixture(scope="module")
def chunker(embedder) -> Chunker:  # noqa: ANN001 - session fixture from conftest
    return Chunker(embedder.count_tokens, max_tokens=embedder.max_tokens)


def test_front_matter_and_mdx_are_cleaned() -> None:
    doc = clean_markdown(MDX, "fallback")
    assert doc.title == "Billing & invoices"
    assert doc.description == "How charges, invoices and refunds work."
    assert "import {" not in doc.text and "export const" not in doc.text
    assert "Invoices are emailed on the 1st of each month." in doc.text  # component text kept
    assert "<Tip" not in doc.text.split("```")[0] and "<img" not in doc.text and "<div" not in doc.text
    assert "editor's note" not in doc.text
    assert "[link to pricing](https://example.com/pricing)" in doc.text  # an absolute link keeps its target
    assert "diagram" not in doc.text
    assert "<CACHE_DIR>/hub" in doc.text  # a placeholder is not a tag
    assert '# <Tip> inside code stays as written\nprint("<b>hello</b>")' in doc.text  # code untouched


def test_absolute_link_targets_are_kept_but_not_embedded(chunker: Chunker) -> None:
    page = ('See your [notification settings](https://hub.example/settings/notifications "Settings") page, '
            'the [pricing guide](./pricing) and <a href="https://hub.example/billing" target="_blank">Billing</a>.')
    doc = clean_markdown(page, "Notifications")
    assert "[notification settings](https://hub.example/settings/notifications)" in doc.text  # title dropped
    assert "the pricing guide and" in doc.text  # a relative target only resolves on the original site
    assert "[Billing](https://hub.example/billing)" in doc.text
    chunk = chunker.chunk(doc.text, doc.title)[0]
    assert "https://hub.example/settings/notifications" in chunk.content  # what an answer can quote and link
    assert "https://" not in chunk.embed_text and "notification settings page" in chunk.embed_text
    assert readable("a [b](https://x.example/p(1)) c") == "a b c"


def test_title_falls_back_to_first_heading_then_file_name() -> None:
    assert clean_markdown("# Rate limits\n\nText.", "x").title == "Rate limits"
    assert clean_markdown("Just text.", "storage limits").title == "storage limits"


def test_headings_become_heading_paths(chunker: Chunker) -> None:
    doc = clean_markdown(MDX, "fallback")
    chunks = chunk_document(chunker, doc.title, doc.text, doc.description, url="https://example.com/billing")
    by_heading = {c.heading: c for c in chunks}
    assert any(h.startswith("Payment methods") for h in by_heading), by_heading.keys()
    cards = next(c for c in chunks if "RBI directives" in c.content)
    assert cards.heading in ("Payment methods > Cards from India", "Payment methods")
    assert chunks[0].content.startswith("How charges, invoices and refunds work.")
    assert all(c.title == "Billing & invoices" and c.url == "https://example.com/billing" for c in chunks)
    assert [c.position for c in chunks] == list(range(len(chunks)))
    assert cards.embed_text.startswith("Billing & invoices > Payment methods")


def _long_document() -> str:
    sentence = "The subscription renews automatically and the invoice lists every seat of the organization. "
    rows = "\n".join(f"| plan {i} | {i * 10} GB | ${i}.00 per month for extra private storage |" for i in range(80))
    code = "\n".join(f"huggingface-cli upload my-org/my-model ./weights/shard-{i}.safetensors" for i in range(120))
    items = "\n".join(f"- item {i}: enable the setting in your profile then save the form again" for i in range(60))
    return (f"# Big page\n\n## Prose\n\n{sentence * 60}\n\n## Table\n\n| plan | size | price |\n| --- | --- | --- |\n"
            f"{rows}\n\n## Code\n\n```bash\n{code}\n```\n\n## List\n\n{items}\n\n## Blob\n\n{'x' * 5000}\n\n"
            "## Tiny\n\nOne line.\n\n## Also tiny\n\nAnother line.\n")


def test_no_chunk_exceeds_the_models_word_pieces(chunker: Chunker, embedder) -> None:  # noqa: ANN001
    chunks = chunker.chunk(_long_document(), "Big page " + "very long title " * 5)
    sizes = embedder.count_tokens([c.embed_text for c in chunks])
    assert len(chunks) > 20
    assert max(sizes) <= 256, max(sizes)
    # the H1 differs from the title here, so it stays at the head of the path
    assert {c.heading for c in chunks} >= {f"Big page > {h}" for h in ("Prose", "Table", "Code", "List", "Blob")}


def test_tables_repeat_their_header_and_code_keeps_lines(chunker: Chunker) -> None:
    chunks = chunker.chunk(_long_document(), "Big page")
    table = [c for c in chunks if c.heading == "Table"]
    assert len(table) > 1 and all(c.content.startswith("| plan | size | price |") for c in table)
    code = [c for c in chunks if c.heading == "Code"]
    assert all("huggingface-cli upload" in line for c in code for line in c.content.splitlines()
               if line and not line.startswith("```"))


def test_consecutive_chunks_overlap(chunker: Chunker) -> None:
    text = "## Steps\n\n" + "\n\n".join(f"Paragraph {i} explains step {i} of the setup in a few words." for i in
                                        range(80))
    chunks = chunker.chunk(text, "Guide")
    assert len(chunks) > 2
    for first, second in zip(chunks, chunks[1:]):
        assert first.content.splitlines()[-1] in second.content


def test_tiny_sections_merge_into_the_previous_chunk(chunker: Chunker) -> None:
    chunks = chunker.chunk("## A\n\nShort.\n\n## B\n\nAlso short.\n\n## C\n\nStill short.", "Doc")
    assert len(chunks) == 1 and "B\nAlso short." in chunks[0].content and chunks[0].heading == "A"


def test_html_files_keep_structure_and_drop_chrome(chunker: Chunker) -> None:
    page = ("<html><head><title>Refund policy</title><style>p{}</style></head><body><nav>Home | Docs</nav>"
            "<h1>Refund policy</h1><p>Refunds are issued within <b>14 days</b>.</p><h2>Exceptions</h2>"
            "<ul><li>Custom plans</li><li>Credits</li></ul><script>track()</script><footer>(c) Acme</footer>"
            "</body></html>")
    doc = html_to_markdown(page, "fallback")
    assert doc.title == "Refund policy"
    assert "## Exceptions" in doc.text and "- Custom plans" in doc.text and "14 days" in doc.text
    assert "track()" not in doc.text and "Home | Docs" not in doc.text and "(c) Acme" not in doc.text
    chunks = chunker.chunk(doc.text, doc.title)
    assert any(c.heading == "Exceptions" for c in chunks) or "Exceptions" in chunks[0].content


def test_empty_input_gives_no_chunks(chunker: Chunker) -> None:
    assert chunker.chunk("", "Empty") == [] and chunker.chunk("\n\n   \n", "Empty") == []
