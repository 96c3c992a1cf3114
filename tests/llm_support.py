"""Test peers for the LLM providers: a tiny random-weight GGUF written with the ``gguf`` package, and small
HTTP servers on 127.0.0.1 that speak the Anthropic Messages streaming protocol or fail on purpose, recording what
they received so a test can assert on the wire (PII masking)."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any, Callable

import gguf
import numpy as np

CHATML = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + "
          "'<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def _byte_tokens() -> list[str]:
    """GPT-2's byte-to-unicode table: every byte is one printable token, so any text tokenizes."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    table = dict(zip(printable, chars))
    return [chr(table[b]) for b in range(256)]


def write_tiny_gguf(path: Path, layers: int = 2, width: int = 64, seed: int = 0) -> Path:
    """A llama-architecture model with random weights: ~0.5 MB, loads in milliseconds, produces gibberish."""
    rng = np.random.default_rng(seed)
    tokens = _byte_tokens()
    merges = ["Ġ t", "Ġ a", "h e", "i n", "r e", "o n"]
    tokens += [m.replace(" ", "") for m in merges] + SPECIALS
    types = [gguf.TokenType.NORMAL] * (len(tokens) - len(SPECIALS)) + [gguf.TokenType.CONTROL] * len(SPECIALS)
    vocab, heads, ffn = len(tokens), 4, width * 2
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("tiny-random-chatml")
    writer.add_block_count(layers)
    writer.add_context_length(2048)
    writer.add_embedding_length(width)
    writer.add_feed_forward_length(ffn)
    writer.add_head_count(heads)
    writer.add_head_count_kv(heads)
    writer.add_rope_dimension_count(width // heads)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    writer.add_bos_token_id(tokens.index("<|im_start|>"))
    writer.add_eos_token_id(tokens.index("<|im_end|>"))
    writer.add_add_bos_token(False)
    writer.add_chat_template(CHATML)

    def tensor(name: str, *shape: int, scale: float = 0.1) -> None:
        writer.add_tensor(name, (rng.standard_normal(shape) * scale).astype(np.float32))

    # Dimension 0 of every embedding is a large constant that survives the small random layers, and the output
    # rows of letters and space score high on it while specials score low: the model babbles ASCII words and
    # never ends early, so every generation has text (its content is still random).
    embedding = (rng.standard_normal((vocab, width)) * 0.1).astype(np.float32)
    embedding[:, 0] = 10.0
    writer.add_tensor("token_embd.weight", embedding)
    writer.add_tensor("output_norm.weight", np.ones(width, dtype=np.float32))
    output = (rng.standard_normal((vocab, width)) * 0.1).astype(np.float32)
    wordy = [ord(c) for c in "abcdefghijklmnopqrstuvwxyz "]
    output[:, 0] = -2.0
    output[wordy, 0] = 2.0
    writer.add_tensor("output.weight", output)
    for i in range(layers):
        writer.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(width, dtype=np.float32))
        writer.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(width, dtype=np.float32))
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            tensor(f"blk.{i}.{name}.weight", width, width)
        tensor(f"blk.{i}.ffn_gate.weight", ffn, width)
        tensor(f"blk.{i}.ffn_up.weight", ffn, width)
        tensor(f"blk.{i}.ffn_down.weight", width, ffn)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


class Peer:
    """An HTTP/1.1 server on 127.0.0.1 (its own thread and event loop) that records every request and answers in
    the configured ``mode``:

    - ``openai``: a Chat Completions SSE stream of ``words``;
    - ``anthropic``: a Messages API SSE stream (message_start, content_block_*, message_delta, message_stop);
    - ``error``: HTTP ``status`` with a JSON error body;
    - ``hang``: accepts the request and never answers (a provider that times out);
    - ``break``: streams two OpenAI deltas, then closes the connection mid-answer.
    """

    def __init__(self, mode: str = "openai", words: tuple[str, ...] = ("Hello", " from", " the", " peer."),
                 status: int = 500):
        self.mode, self.words, self.status = mode, words, status
        self.received: list[dict[str, Any]] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._server = server
        self._ready.set()
        self._loop.run_forever()

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    async def _shutdown(self) -> None:
        self._server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:] if ":" in l)}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.received.append({"method": method, "path": path, "headers": headers, "body": body.decode()})
            await getattr(self, f"_{self.mode}")(writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    @staticmethod
    async def _start_sse(writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n")
        await writer.drain()

    @staticmethod
    async def _send(writer: asyncio.StreamWriter, data: Any, event: str | None = None) -> None:
        text = (f"event: {event}\n" if event else "") + f"data: {json.dumps(data) if not isinstance(data, str) else data}\n\n"
        writer.write(text.encode())
        await writer.drain()
        await asyncio.sleep(0.01)

    async def _openai(self, writer: asyncio.StreamWriter) -> None:
        await self._start_sse(writer)
        for word in self.words:
            await self._send(writer, {"model": "peer-model", "choices": [{"index": 0, "delta": {"content": word}}]})
        await self._send(writer, {"model": "peer-model", "choices": [],
                                  "usage": {"prompt_tokens": 40, "completion_tokens": len(self.words)}})
        await self._send(writer, "[DONE]")

    async def _anthropic(self, writer: asyncio.StreamWriter) -> None:
        await self._start_sse(writer)
        await self._send(writer, {"type": "message_start", "message": {
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-peer", "content": [],
            "usage": {"input_tokens": 42, "output_tokens": 1}}}, "message_start")
        await self._send(writer, {"type": "content_block_start", "index": 0,
                                  "content_block": {"type": "text", "text": ""}}, "content_block_start")
        await self._send(writer, {"type": "ping"}, "ping")
        for word in self.words:
            await self._send(writer, {"type": "content_block_delta", "index": 0,
                                      "delta": {"type": "text_delta", "text": word}}, "content_block_delta")
        await self._send(writer, {"type": "content_block_stop", "index": 0}, "content_block_stop")
        await self._send(writer, {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                                  "usage": {"output_tokens": 7}}, "message_delta")
        await self._send(writer, {"type": "message_stop"}, "message_stop")

    async def _error(self, writer: asyncio.StreamWriter) -> None:
        body = json.dumps({"error": {"message": "boom", "type": "server_error"}}).encode()
        writer.write(f"HTTP/1.1 {self.status} Oops\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
                     "\r\nConnection: close\r\n\r\n".encode() + body)
        await writer.drain()

    async def _hang(self, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(60)

    async def _break(self, writer: asyncio.StreamWriter) -> None:
        await self._start_sse(writer)
        for word in self.words[:2]:
            await self._send(writer, {"model": "peer-model", "choices": [{"index": 0, "delta": {"content": word}}]})
        writer.transport.abort()


def body_of(peer: Peer, index: int = -1) -> dict[str, Any]:
    return json.loads(peer.received[index]["body"])


def run(coro_fn: Callable[[], Any]) -> Any:
    return asyncio.run(coro_fn())
