"""Benchmark: a local GGUF model through ChatSupport's local provider (worker thread, queue, chat template).

Usage: PYTHONPATH=. .venv/bin/python bench/llm_local.py MODEL.gguf [--prompt-tokens 100,250,500,1000]
       [--threads 1/2,1/1,2/2] [--gen-tokens 48] [--ctx 2048] [--json]

For each ``n_threads/n_threads_batch`` variant the model is loaded once (load time), then for each prompt size:

- ``cold``: a prompt unlike the previous one from its first token (a fresh nonce opens the system text), so the
  whole prompt is prefilled — what a first question costs;
- ``warm``: the same system text as the run before (kept in the KV cache by the one long-lived ``Llama``) and
  only the passages and question new — what later questions cost when the prompt keeps its fixed part first.
  Here the "fixed" part is the first half of the prompt.

Reported: time to first token (TTFT, from submit to the first streamed delta, as the server would see it),
generation tokens/s (after the first token) and the prompt size actually sent (tokens, through the chat template).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import random
import sys
import time
from pathlib import Path

from chatsupport.llm.base import ChatMessage, ChatRequest
from chatsupport.llm.providers.local import LocalModel, LocalProvider
from quick import add_quick_flag, write_results

WORDS = ("account billing invoice refund password reset email team plan upgrade download export settings "
         "profile security login widget support message customer order delivery subscription cancel renew "
         "payment card address language report dashboard integration webhook token limit storage backup").split()


def filler(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)) + "."


def request(rng: random.Random, prompt_tokens: int, system: str) -> ChatRequest:
    # ~1.3 tokens per filler word for SmolLM2's tokenizer; the real count is reported from the model
    passages = filler(rng, max(1, int(prompt_tokens / 2 / 1.3)))
    question = f"Question {rng.randrange(10**6)}: how do I {rng.choice(WORDS)} my {rng.choice(WORDS)}?"
    return ChatRequest(messages=[ChatMessage("system", system), ChatMessage("user", f"{passages}\n\n{question}")],
                       passages=[], question=question, max_tokens=0, temperature=0.0)


async def measure(provider: LocalProvider, req: ChatRequest, gen_tokens: int) -> dict[str, float]:
    req = ChatRequest(req.messages, req.passages, req.question, max_tokens=gen_tokens, temperature=0.0)
    started = time.perf_counter()
    first = None
    done = None
    async for event in provider.stream(req):
        if event.delta and first is None:
            first = time.perf_counter()
        if event.done:
            done = event
    end = time.perf_counter()
    assert first is not None and done is not None
    generated = max(0, (done.tokens_out or 0) - 1)
    return {"prompt": done.tokens_in or 0, "ttft_s": first - started, "gen_tokens": done.tokens_out or 0,
            "tok_s": generated / (end - first) if end > first and generated else 0.0}


def run_variant(path: Path, threads: int, batch: int, sizes: list[int], gen_tokens: int, ctx: int,
                seed: int) -> list[dict[str, object]]:
    model = LocalModel(path, n_ctx=ctx, n_threads=threads, n_threads_batch=batch)
    provider = LocalProvider(model)
    rng = random.Random(seed)
    rows: list[dict[str, object]] = []
    try:
        asyncio.run(measure(provider, request(rng, 20, "warm-up"), 2))  # loads the model
        load = model.load_seconds or 0.0
        for size in sizes:
            system = f"[{rng.randrange(10**9)}] You are the support assistant. " + filler(rng, int(size / 2 / 1.3))
            cold = asyncio.run(measure(provider, request(rng, size, system), gen_tokens))
            warm = asyncio.run(measure(provider, request(rng, size, system), gen_tokens))
            rows.append({"threads": f"{threads}/{batch}", "load_s": round(load, 2), "target": size,
                         "prompt": cold["prompt"], "cold_ttft_s": round(cold["ttft_s"], 2),
                         "warm_ttft_s": round(warm["ttft_s"], 2), "tok_s": round(cold["tok_s"], 1),
                         "warm_tok_s": round(warm["tok_s"], 1)})
    finally:
        model.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--prompt-tokens", default="100,250,500,1000")
    parser.add_argument("--threads", default="1/2,1/1,2/2", help="n_threads/n_threads_batch variants")
    parser.add_argument("--gen-tokens", type=int, default=48)
    parser.add_argument("--ctx", type=int, default=2048)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    add_quick_flag(parser, "prompts of 100 and 250 tokens, threads 1/1, 32 generated tokens")
    args = parser.parse_args()
    if args.quick:
        args.prompt_tokens, args.threads, args.gen_tokens = "100,250", "1/1", 32
    sizes = [int(s) for s in args.prompt_tokens.split(",")]
    rows = []
    for variant in args.threads.split(","):
        threads, _, batch = variant.partition("/")
        rows += run_variant(args.model, int(threads), int(batch or threads), sizes, args.gen_tokens, args.ctx,
                            args.seed)
    write_results("llm_local", args, {"model": args.model.name, "rows": rows})
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"model {args.model.name}; python {platform.python_version()}; {platform.machine()}; "
          f"generating {args.gen_tokens} tokens", file=sys.stderr)
    header = ("threads", "load_s", "prompt", "cold_ttft_s", "warm_ttft_s", "tok_s", "warm_tok_s")
    print(" ".join(f"{h:>11}" for h in header))
    for row in rows:
        print(" ".join(f"{row[h]!s:>11}" for h in header))


if __name__ == "__main__":
    main()
