"""A fake of the ResultStore: multipart uploads in memory, with S3's rules (a part below the minimum size must be
the last one; a completed upload is closed) and URLs that say what they point at."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import quote

from scrapersky.errors import UploadGone
from scrapersky.result_ports import ResultStore

from tests.fakes.recording import Recorder, recorded


@dataclass
class Upload:
    key: str
    content_type: str
    parts: dict[int, bytes] = field(default_factory=dict)


class FakeResultStore(Recorder, ResultStore):
    """`files` holds the published files; `min_part_bytes` is S3's 5 MiB, scaled down for tests."""

    def __init__(self, min_part_bytes: int = 0) -> None:
        super().__init__()
        self.min_part_bytes = min_part_bytes
        self.uploads: dict[str, Upload] = {}
        self.files: dict[str, bytes] = {}
        self.content_types: dict[str, str] = {}
        self.largest_part = 0

    @recorded
    def begin(self, key: str, content_type: str) -> str:
        upload_id = f"u{len(self.calls_to('begin'))}"
        self.uploads[upload_id] = Upload(key, content_type)
        return upload_id

    @recorded
    def write_part(self, key: str, upload_id: str, part: int, data: bytes) -> None:
        upload = self.uploads.get(upload_id)
        if upload is None or upload.key != key:
            raise UploadGone(upload_id)
        upload.parts[part] = bytes(data)
        self.largest_part = max(self.largest_part, len(data))

    @recorded
    def complete(self, key: str, upload_id: str) -> None:
        upload = self.uploads.pop(upload_id, None)
        if upload is None:
            if key in self.files:
                return
            raise UploadGone(upload_id)
        numbers = sorted(upload.parts)
        assert numbers == list(range(1, len(numbers) + 1)), f"parts missing: {numbers}"
        small = [n for n in numbers[:-1] if len(upload.parts[n]) < self.min_part_bytes]
        assert not small, f"parts {small} are below the minimum part size and not the last"
        self.files[key] = b"".join(upload.parts[n] for n in numbers)
        self.content_types[key] = upload.content_type

    @recorded
    def url(self, key: str, expires_s: int, filename: str) -> str:
        return f"https://results.example/{quote(key)}?expires={expires_s}&filename={quote(filename)}"

    # ---- for tests --------------------------------------------------------------------------------------------
    def file(self, key: str) -> bytes:
        return self.files[key]
