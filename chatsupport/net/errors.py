"""Why an outbound request did not produce a response. ``code`` is stable: callers store and show it."""

from __future__ import annotations


class OutboundError(Exception):
    """The request failed; ``code`` names the failure (``fetch_failed``, ``timeout``, ``too_large`` …)."""

    code = "fetch_failed"

    def __init__(self, message: str, code: str | None = None):
        super().__init__(message)
        if code is not None:
            self.code = code


class OutboundRefused(OutboundError):
    """The guard refused the destination before any connection was opened."""

    code = "url_not_allowed"

    def __init__(self, message: str, host: str = "", address: str | None = None):
        super().__init__(message)
        self.host = host
        self.address = address


class ResponseTooLarge(OutboundError):
    code = "too_large"


class TooManyRedirects(OutboundError):
    code = "too_many_redirects"


class FetchTimeout(OutboundError):
    code = "timeout"
