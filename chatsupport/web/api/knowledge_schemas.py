"""Response bodies of ``/api/v1/knowledge-base`` (documents, FAQs, test queries), typed so
/schema/openapi.json describes them and the API fuzz test can hold every response to its schema."""

from __future__ import annotations

from typing import Any, Literal

from msgspec import Struct

from chatsupport.web.api.schemas import Pagination


class DocumentOut(Struct):
    id: str
    chatbot_id: str
    status: Literal["pending", "processing", "completed", "failed"]
    created_at: str
    updated_at: str
    title: str | None = None
    filename: str | None = None
    size_bytes: int | None = None
    mime_type: str | None = None
    stage: str | None = None
    progress: int = 0
    error_code: str | None = None
    error_message: str | None = None
    chunk_count: int | None = None
    page_count: int | None = None
    text_length: int | None = None
    metadata: dict[str, Any] = {}
    replaces_document_id: str | None = None
    processing_started_at: str | None = None
    processing_completed_at: str | None = None


class DocumentPage(Struct):
    data: list[DocumentOut]
    pagination: Pagination


class FaqOut(Struct):
    id: str
    chatbot_id: str
    question: str
    answer: str
    priority: str
    status: str
    created_at: str
    updated_at: str
    category: str | None = None
    tags: list[str] = []
    metadata: dict[str, Any] = {}
    embedding_generated: bool = False
    usage_count: int = 0


class FaqPage(Struct):
    data: list[FaqOut]
    pagination: Pagination


class ImportProblem(Struct):
    row: int
    error: str


class FaqImportReport(Struct):
    imported: int
    skipped: int
    errors: list[ImportProblem]


class Passage(Struct):
    rank: int
    score: float
    source_type: Literal["document", "url", "faq"]
    source_id: str
    content: str
    metadata: dict[str, Any] = {}


class KnowledgeTestResult(Struct):
    query: str
    results: list[Passage]
    confidence_score: float
    suggested_answer: str | None = None


class UrlSourceOut(Struct):
    id: str
    chatbot_id: str
    url: str
    domain: str
    status: str
    crawl_settings: dict[str, Any]
    schedule: dict[str, Any]  # frequency, enabled, and day_of_week/time for a custom one
    created_at: str
    updated_at: str
    crawl_job_id: str | None = None
    pages_found: int | None = None
    pages_processed: int | None = None
    pages_skipped: int | None = None
    pages_failed: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    last_crawl_at: str | None = None
    next_crawl_at: str | None = None
    chunks_created: int | None = None


class UrlSourcePage(Struct):
    data: list[UrlSourceOut]
    pagination: Pagination


class CrawledPage(Struct):
    id: str
    url: str
    status: str
    canonical_url: str | None = None
    depth: int | None = None
    reason: str | None = None
    http_status: int | None = None
    title: str | None = None
    document_id: str | None = None
    chunk_count: int | None = None
    error_message: str | None = None
    fetched_at: str | None = None


class CrawledPageList(Struct):
    data: list[CrawledPage]
    pagination: Pagination


class Period(Struct):
    start: str
    end: str


class KnowledgeGap(Struct):
    query_pattern: str
    count: int
    avg_confidence: float
    declined: int
    thumbs_down: int
    sample_queries: list[str]
    suggested_action: str


class GapReport(Struct):
    period: Period
    total_queries: int
    low_confidence_queries: int
    no_result_queries: int
    thumbs_down: int
    gaps: list[KnowledgeGap]
