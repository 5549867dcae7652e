"""ResultStore on S3: exports are multipart uploads (one part per export message), read through presigned URLs."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from scrapersky.errors import UploadGone
from scrapersky.result_ports import ResultStore

_GONE = frozenset({"NoSuchUpload", "404", "NoSuchKey", "NotFound"})


def _code(e: ClientError) -> str:
    return str(e.response.get("Error", {}).get("Code", ""))


class S3ResultStore(ResultStore):
    """Exports in one bucket (encrypted at rest, no public access, expired by a lifecycle rule: template.yaml).

    `client` is a boto3 S3 client; presigning is local computation (no call), so the status read stays O(1)."""

    def __init__(self, bucket: str, client: Any) -> None:
        self.bucket = bucket
        self.s3 = client

    def begin(self, key: str, content_type: str) -> str:
        got = self.s3.create_multipart_upload(Bucket=self.bucket, Key=key, ContentType=content_type)
        return str(got["UploadId"])

    def write_part(self, key: str, upload_id: str, part: int, data: bytes) -> None:
        try:
            self.s3.upload_part(Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=part, Body=data)
        except ClientError as e:
            if _code(e) in _GONE:
                raise UploadGone(f"upload of {key} is closed") from e
            raise

    def complete(self, key: str, upload_id: str) -> None:
        try:
            parts = self._parts(key, upload_id)
            self.s3.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except ClientError as e:
            if _code(e) not in _GONE:
                raise
            if not self._exists(key):  # completed by another delivery of this export: the same file
                raise UploadGone(f"upload of {key} is closed and {key} does not exist") from e

    def _parts(self, key: str, upload_id: str) -> list[dict[str, Any]]:
        """Every part written, from S3 itself: the messages never carry up to 10,000 ETags."""
        parts: list[dict[str, Any]] = []
        marker = 0
        while True:
            got = self.s3.list_parts(Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumberMarker=marker)
            parts += [{"PartNumber": p["PartNumber"], "ETag": p["ETag"]} for p in got.get("Parts", [])]
            if not got.get("IsTruncated"):
                return parts
            marker = int(got["NextPartNumberMarker"])

    def _exists(self, key: str) -> bool:
        try:
            self.s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as e:
            if _code(e) in _GONE:
                return False
            raise
        return True

    def url(self, key: str, expires_s: int, filename: str) -> str:
        return str(
            self.s3.generate_presigned_url(
                "get_object",
                Params={
                    "Bucket": self.bucket,
                    "Key": key,
                    "ResponseContentDisposition": f'attachment; filename="{filename}"',
                },
                ExpiresIn=expires_s,
            )
        )
