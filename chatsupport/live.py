"""Fan-out of conversation events inside the one process: Litestar channels with the memory backend.

Channels: ``conversation:<id>`` (every widget tab of that visitor, and console tabs that have the conversation
open), ``workspace:<id>`` (every console tab of the workspace: the live inbox), ``user:<id>`` (one console user's
notifications) and ``chatbot:<id>`` (config pushes to that bot's widgets). Every event is
the widget protocol's frame, ``{"event": NAME, "data": {...}}`` (docs/widget-protocol.md), published only after
the change it reports is committed.

``publish`` may be called from the event loop or from any thread (Huey jobs run in worker threads of this
process); outside a running server (CLI, ``chatsupport worker``) it does nothing, since no one can listen.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

from litestar.channels import ChannelsPlugin
from litestar.channels.backends.memory import MemoryChannelsBackend
from litestar.channels.subscriber import Subscriber

log = logging.getLogger(__name__)


def conversation_channel(conversation_id: str) -> str:
    return f"conversation:{conversation_id}"


def workspace_channel(workspace_id: str) -> str:
    return f"workspace:{workspace_id}"


def user_channel(user_id: str) -> str:
    """One console user's own events (``notification:new``): every console tab that user has open."""
    return f"user:{user_id}"


def chatbot_channel(chatbot_id: str) -> str:
    """Every open widget of one chatbot listens here for ``config:updated``."""
    return f"chatbot:{chatbot_id}"


def frame(event: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"event": event, "data": data}


class Hub:
    """One per app. ``plugin`` goes into the Litestar app's plugins; ``bind_loop`` is called at start-up."""

    def __init__(self) -> None:
        # backlog: a slow console tab loses its oldest events rather than growing without bound
        self.plugin = ChannelsPlugin(backend=MemoryChannelsBackend(), arbitrary_channels_allowed=True,
                                     subscriber_max_backlog=1000, subscriber_backlog_strategy="dropleft")
        self.loop: asyncio.AbstractEventLoop | None = None

    def bind_loop(self, loop: asyncio.AbstractEventLoop | None) -> None:
        self.loop = loop

    def publish(self, event: str, data: dict[str, Any], *, conversation_id: str | None = None,
                workspace_id: str | None = None, channel: str | None = None) -> None:
        """``channel``: one more channel by name (e.g. ``chatbot_channel``)."""
        channels = [*([conversation_channel(conversation_id)] if conversation_id else []),
                    *([workspace_channel(workspace_id)] if workspace_id else []), *([channel] if channel else [])]
        if not channels or self.loop is None or self.loop.is_closed():
            return
        message = frame(event, data)
        if _on_loop(self.loop):
            self.plugin.publish(message, channels)
        else:
            self.loop.call_soon_threadsafe(self.plugin.publish, message, channels)

    @asynccontextmanager
    async def subscribe(self, channels: Iterable[str]) -> AsyncIterator[Subscriber]:
        """``async with hub.subscribe([...]) as sub: async for raw in sub.iter_events()`` — raw is JSON bytes."""
        async with self.plugin.start_subscription(list(channels)) as subscriber:
            yield subscriber


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:  # a worker thread
        return False


# The running server's hub; jobs reach it through here (``None`` in the CLI and the standalone worker).
_current: Hub | None = None


def use(hub: Hub | None) -> None:
    global _current
    _current = hub


def publish(event: str, data: dict[str, Any], *, conversation_id: str | None = None,
            workspace_id: str | None = None, channel: str | None = None) -> None:
    if _current is not None:
        _current.publish(event, data, conversation_id=conversation_id, workspace_id=workspace_id, channel=channel)


# AI answers being generated right now, by conversation: a takeover cancels the one still streaming, so the AI
# never talks over the agent. Only touched on the event loop.
_answering: dict[str, asyncio.Task[Any]] = {}


def answering(conversation_id: str, task: asyncio.Task[Any]) -> None:
    """Register the task generating ``conversation_id``'s answer; it is forgotten when it finishes."""
    _answering[conversation_id] = task
    task.add_done_callback(lambda done: _answering.pop(conversation_id, None) if _answering.get(
        conversation_id) is done else None)


def answer_in_progress(conversation_id: str) -> asyncio.Task[Any] | None:
    return _answering.get(conversation_id)


def cancel_answer(conversation_id: str) -> bool:
    """Stop the AI answer streaming in ``conversation_id``, if any. True when one was cancelled."""
    task = _answering.pop(conversation_id, None)
    if task is None or task.done():
        return False
    task.cancel()
    return True
