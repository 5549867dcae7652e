"""The port of batch exports (results files), beside ports.py: adapters/s3_results.py implements it."""

from __future__ import annotations

import abc


class ResultStore(abc.ABC):
    """Exports of ended batches (S3): written part by part (never whole in memory), read through keyless URLs."""

    @abc.abstractmethod
    def begin(self, key: str, content_type: str) -> str:
        """Opens an upload of the file at `key`; returns its upload id."""

    @abc.abstractmethod
    def write_part(self, key: str, upload_id: str, part: int, data: bytes) -> None:
        """Writes part `part` (1, 2, ...; all but the last at least the store's minimum size), replacing an earlier
        write of it (a redelivered message). Raises UploadGone when the upload is closed."""

    @abc.abstractmethod
    def complete(self, key: str, upload_id: str) -> None:
        """Publishes the file from its parts in order; one another delivery completed stays (else UploadGone)."""

    @abc.abstractmethod
    def url(self, key: str, expires_s: int, filename: str) -> str:
        """A GET URL of the file, valid `expires_s`, that needs no Authorization header (local computation)."""
