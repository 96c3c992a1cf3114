"""The process's metrics, rendered in the Prometheus text format (version 0.0.4) at ``/metrics``.

A hand-written registry rather than ``prometheus_client``: three metric kinds, fixed buckets and one lock per
metric are all an appliance needs, and an update costs a dict lookup and a few additions under a lock. Label
values must come from small closed sets (route templates, provider names, task names), never from ids.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Iterator, Sequence

LabelValues = tuple[str, ...]
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SLOW_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class Metric:
    kind = ""

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        self.name, self.help_text, self.labels = name, help_text, tuple(labels)
        self._lock = threading.Lock()

    def _key(self, values: Sequence[str]) -> LabelValues:
        if len(values) != len(self.labels):
            raise ValueError(f"{self.name} takes labels {self.labels}, got {tuple(values)}")
        return tuple(str(v) for v in values)

    def _label_text(self, values: LabelValues, extra: str = "") -> str:
        pairs = [f'{name}="{_escape(value)}"' for name, value in zip(self.labels, values)]
        if extra:
            pairs.append(extra)
        return "{" + ",".join(pairs) + "}" if pairs else ""

    def samples(self) -> Iterator[str]:
        raise NotImplementedError

    def render(self) -> str:
        head = f"# HELP {self.name} {self.help_text}\n# TYPE {self.name} {self.kind}\n"
        return head + "".join(line + "\n" for line in self.samples())


class Counter(Metric):
    kind = "counter"

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        super().__init__(name, help_text, labels)
        self._values: dict[LabelValues, float] = {}

    def inc(self, *values: str, amount: float = 1.0) -> None:
        key = self._key(values)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, *values: str) -> float:
        with self._lock:
            return self._values.get(self._key(values), 0.0)

    def samples(self) -> Iterator[str]:
        with self._lock:
            items = sorted(self._values.items())
        for key, value in items:
            yield f"{self.name}{self._label_text(key)} {_number(value)}"


class Gauge(Counter):
    kind = "gauge"

    def set(self, *values: str, value: float) -> None:
        key = self._key(values)
        with self._lock:
            self._values[key] = value

    def dec(self, *values: str, amount: float = 1.0) -> None:
        self.inc(*values, amount=-amount)

    def clear(self) -> None:
        """Drop every series: a value that cannot be known is better absent than a made-up zero."""
        with self._lock:
            self._values.clear()


class Histogram(Metric):
    """Cumulative buckets are computed at render time; an observation touches one bucket only."""

    kind = "histogram"

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = (),
                 buckets: Sequence[float] = LATENCY_BUCKETS) -> None:
        super().__init__(name, help_text, labels)
        self.buckets = tuple(sorted(buckets))
        self._series: dict[LabelValues, list[float]] = {}  # per-bucket counts, +Inf count, then the sum

    def observe(self, *values: str, seconds: float) -> None:
        key = self._key(values)
        index = bisect.bisect_left(self.buckets, seconds)
        with self._lock:
            series = self._series.get(key)
            if series is None:
                series = self._series[key] = [0.0] * (len(self.buckets) + 2)
            series[index] += 1
            series[-1] += seconds

    def count(self, *values: str) -> int:
        with self._lock:
            series = self._series.get(self._key(values))
            return int(sum(series[:-1])) if series else 0

    def samples(self) -> Iterator[str]:
        with self._lock:
            items = sorted((key, list(series)) for key, series in self._series.items())
        for key, series in items:
            running = 0.0
            for bound, hits in zip((*self.buckets, math.inf), series[:-1]):
                running += hits
                le = 'le="' + _number(bound) + '"'
                yield f"{self.name}_bucket{self._label_text(key, le)} {_number(running)}"
            yield f"{self.name}_sum{self._label_text(key)} {_number(series[-1])}"
            yield f"{self.name}_count{self._label_text(key)} {_number(running)}"


class Registry:
    def __init__(self) -> None:
        self._metrics: dict[str, Metric] = {}

    def add(self, metric: Metric) -> Metric:
        if metric.name in self._metrics:
            raise ValueError(f"metric {metric.name} is already registered")
        self._metrics[metric.name] = metric
        return metric

    def render(self) -> str:
        return "".join(metric.render() for metric in self._metrics.values())


REGISTRY = Registry()


def _counter(name: str, help_text: str, labels: Sequence[str] = ()) -> Counter:
    return REGISTRY.add(Counter(name, help_text, labels))  # type: ignore[return-value]


def _gauge(name: str, help_text: str, labels: Sequence[str] = ()) -> Gauge:
    return REGISTRY.add(Gauge(name, help_text, labels))  # type: ignore[return-value]


def _histogram(name: str, help_text: str, labels: Sequence[str] = (),
               buckets: Sequence[float] = LATENCY_BUCKETS) -> Histogram:
    return REGISTRY.add(Histogram(name, help_text, labels, buckets))  # type: ignore[return-value]


HTTP_REQUESTS = _counter("chatsupport_http_requests_total", "HTTP requests by route template and status class.",
                         ("method", "route", "status"))
HTTP_LATENCY = _histogram("chatsupport_http_request_duration_seconds",
                          "HTTP request latency by route template, until the response is fully sent.",
                          ("method", "route"))
WIDGET_SOCKETS = _gauge("chatsupport_widget_websockets_open", "Widget WebSocket connections open now.")
QUEUE_DEPTH = _gauge("chatsupport_queue_pending_jobs", "Background jobs waiting in the queue.")
JOBS = _counter("chatsupport_jobs_total", "Background jobs run, by task and outcome.", ("task", "outcome"))
JOB_DURATION = _histogram("chatsupport_job_duration_seconds", "Background job run time by task.", ("task",),
                          SLOW_BUCKETS)
RETRIEVAL_LATENCY = _histogram("chatsupport_retrieval_duration_seconds",
                               "Knowledge search latency (keyword + vector + fusion).", ("mode",))
LLM_LATENCY = _histogram("chatsupport_llm_duration_seconds", "LLM answer latency by provider, until the last token.",
                         ("provider", "outcome"), SLOW_BUCKETS)
LLM_TOKENS = _counter("chatsupport_llm_tokens_total", "LLM tokens by provider and direction.",
                      ("provider", "direction"))
DOCUMENTS = _counter("chatsupport_ingest_documents_total", "Documents ingested, by outcome.", ("outcome",))
CHUNKS = _counter("chatsupport_ingest_chunks_total", "Chunks indexed from ingested documents.")
BACKUP_AGE = _gauge("chatsupport_backup_age_seconds",
                    "Seconds since the newest backup archive was written (absent when there is none).")
BACKUPS = _gauge("chatsupport_backups", "Backup archives kept in the backups folder.")
PROCESS_RSS = _gauge("process_resident_memory_bytes", "Resident memory of the server process.")
SQLITE_CONNECTIONS = _gauge("chatsupport_sqlite_connections",
                            "Open connections to the database (the writer and one reader per live worker thread).")
SQLITE_PAGE_CACHE = _gauge("chatsupport_sqlite_page_cache_bytes",
                           "Bytes in those connections' page caches (one busy at scrape time counts 0).")


def observe_llm(provider: str, seconds: float, tokens_in: int, tokens_out: int) -> None:
    LLM_LATENCY.observe(provider, "answered", seconds=seconds)
    LLM_TOKENS.inc(provider, "in", amount=tokens_in)
    LLM_TOKENS.inc(provider, "out", amount=tokens_out)


def render() -> str:
    return REGISTRY.render()
