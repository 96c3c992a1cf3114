"""The events one widget connection receives: its chatbot's channel (``config:updated``) plus each conversation it
started or resumed, merged into one queue with the direct answers to its own frames, so a single writer sends
everything in order."""

from __future__ import annotations

import asyncio
import json
from contextlib import AsyncExitStack
from typing import Any

from chatsupport.live import Hub

BACKLOG = 1000  # a connection that stops reading loses its oldest events rather than growing without bound


class Feed:
    def __init__(self, hub: Hub):
        self.hub = hub
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._stack = AsyncExitStack()
        self._pumps: dict[str, asyncio.Task[None]] = {}

    async def add(self, channel: str) -> None:
        if channel in self._pumps:
            return
        subscriber = await self._stack.enter_async_context(self.hub.subscribe([channel]))
        self._pumps[channel] = asyncio.create_task(self._pump(subscriber))

    async def _pump(self, subscriber: Any) -> None:
        async for raw in subscriber.iter_events():
            self.put(raw)

    def put(self, raw: bytes) -> None:
        if self.queue.qsize() >= BACKLOG:
            self.queue.get_nowait()
        self.queue.put_nowait(raw)

    def send(self, event: dict[str, Any]) -> None:
        self.put(json.dumps(event, separators=(",", ":")).encode())

    async def close(self) -> None:
        for task in self._pumps.values():
            task.cancel()
        await self._stack.aclose()
