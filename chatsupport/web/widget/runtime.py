"""What the widget endpoints share inside the one process: the answer engine and its tasks, the limits, the open
connection counts, and a few-seconds cache of chatbot rows (every message needs its bot's settings; a settings
change reaches open widgets through ``config:updated`` anyway)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from chatsupport.domain import widget
from chatsupport.domain.visitor_answers import Answers
from chatsupport.llm.answer import AnswerEngine
from chatsupport.domain.widget_limits import Connections, Limiter
from chatsupport.errors import AppError
from chatsupport.live import Hub
from chatsupport.services import Services
from chatsupport.store import widget as store
from chatsupport.store.db import Row

BOT_CACHE_SECONDS = 5.0
SIGHTING_EVERY = 300.0  # seconds between two writes of the same (chatbot, origin) sighting


@dataclass
class WidgetRuntime:
    services: Services
    hub: Hub
    engine: AnswerEngine
    answers: Answers
    limiter: Limiter
    connections: Connections
    _bots: dict[str, tuple[float, Row | None]] = field(default_factory=dict)
    _sightings: dict[tuple[str, str], float] = field(default_factory=dict)

    @classmethod
    def start(cls, services: Services, hub: Hub) -> "WidgetRuntime":
        engine = AnswerEngine(services.db, services.embedder, settings=services.settings)
        return cls(services, hub, engine, Answers(engine), Limiter(),
                   Connections(services.settings.WIDGET_MAX_CONNECTIONS))

    @property
    def secret(self) -> str:
        return self.services.secret_key

    async def bot(self, chatbot_id: str) -> Row | None:
        cached = self._bots.get(chatbot_id)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        row = await asyncio.to_thread(lambda: store.chatbot_by_id(self.services.db.reader(), chatbot_id))
        if len(self._bots) > 10_000:
            self._bots.clear()
        self._bots[chatbot_id] = (time.monotonic() + BOT_CACHE_SECONDS, row)
        return row

    def forget_bot(self, chatbot_id: str) -> None:
        self._bots.pop(chatbot_id, None)

    async def saw(self, chatbot_id: str, origin: str) -> None:
        """Story 2.1 "widget detected": the sighting is written at most every few minutes per site."""
        key = (chatbot_id, origin)
        if self._sightings.get(key, 0.0) > time.monotonic():
            return
        self._sightings[key] = time.monotonic() + SIGHTING_EVERY
        await self.services.db.awrite(lambda conn: store.record_sighting(conn, chatbot_id, origin))

    def usable_bot(self, bot: Row | None, visitor: widget.Visitor) -> Row:
        """The frame's rules again for an open session: archived, inactive, or the site no longer allowed."""
        if bot is None or bot["workspace_id"] != visitor.workspace_id:
            raise AppError("not_found", "This chat does not exist.")
        return widget.check_bot(bot, visitor.origin)


def runtime_of(app: Any) -> WidgetRuntime:
    return app.state.widget
