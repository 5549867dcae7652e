"""Domain and application errors. The API layer maps them to HTTP in one place."""

from __future__ import annotations

from typing import Any


class ScraperSkyError(Exception):
    status_code = 400

    def __init__(self, message: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []


class InvalidInput(ScraperSkyError):
    status_code = 422


class NotFound(ScraperSkyError):
    status_code = 404


class Conflict(ScraperSkyError):
    status_code = 409


class Forbidden(ScraperSkyError):
    status_code = 403


class NoProxyAvailable(ScraperSkyError):
    """No proxy can take this host now; `retry_at` is the earliest moment one could (epoch seconds)."""

    status_code = 503

    def __init__(self, message: str, retry_at: float) -> None:
        super().__init__(message)
        self.retry_at = retry_at


class LeaseConflict(Exception):
    """Another worker won the conditional write on this proxy first."""


class TransitionLost(Exception):
    """The item was not in the state this transition expected (another delivery won)."""


class RetryableStoreError(Exception):
    """The store throttled or a transaction conflicted; the caller may retry."""


class UploadGone(Exception):
    """A results upload that is no longer open: completed by another delivery of the same export, or aborted."""


class InvalidCursor(ValueError):
    """A pagination cursor we did not give out (or one for another batch or tenant)."""
