"""DiscoveredUrls on the batches table: one row per URL and item, unique by its key.

Keys (pk, sk):
  U#<batch>#<seq>#<bucket>  <hash of the URL>   one discovered URL (url, lastmod, changefreq, priority, sitemap,
                                                 item, and the document and place that listed it)
The bucket is the URL hash's first hex digit modulo BUCKETS: an item's writes spread over BUCKETS partitions and a
batch's over BUCKETS per item, so no single partition key takes all writes of a big batch; the batch's status rows
are untouched (its status read stays one query). Uniqueness per item is the put's condition. The listing order is
(seq, bucket, hash): stable, so a cursor (the last row's key) pages exactly, no duplicate and no gap."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from scrapersky.adapters import batch_table as bt
from scrapersky.adapters.ddb import de_item, put_new, ser
from scrapersky.errors import InvalidCursor
from scrapersky.sitemap_ports import DiscoveredUrl, DiscoveredUrls

BUCKETS = 4
MAX_QUERIES = 48  # partitions read by one page at most: a page over many empty items may be short, never wrong
_FIELDS = ("url", "sitemap", "item", "doc", "pos", "lastmod", "changefreq", "priority")


def url_hash(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:32]


def partition(batch_id: str, seq: int, bucket: int) -> str:
    return f"U#{batch_id}#{seq:07d}#{bucket}"


def bucket_of(url: str) -> int:
    return int(url_hash(url)[0], 16) % BUCKETS


def _encode(seq: int, bucket: int, after: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([seq, bucket, after]).encode()).decode()


def _decode(cursor: str | None, seqs: range) -> tuple[int, int, str]:
    if not cursor:
        return seqs.start, 0, ""
    try:
        seq, bucket, after = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, TypeError) as e:
        raise InvalidCursor("cursor is not valid") from e
    if not (_position(seq, bucket, seqs) and _hash_prefix(after)):
        raise InvalidCursor("cursor is not valid")
    return seq, bucket, after


def _position(seq: object, bucket: object, seqs: range) -> bool:
    return isinstance(seq, int) and seq in seqs and isinstance(bucket, int) and 0 <= bucket < BUCKETS


def _hash_prefix(after: object) -> bool:
    return isinstance(after, str) and len(after) <= 32 and all(c in "0123456789abcdef" for c in after)


class DynamoDiscoveredUrls(DiscoveredUrls):
    """`concurrency` bounds the parallel conditional puts of one chunk of a document's URLs."""

    def __init__(
        self, table_name: str, client: Any, retention_s: float = bt.DEFAULT_RETENTION_S, concurrency: int = 16
    ):
        self.table, self.ddb, self.retention_s = table_name, client, retention_s
        self._pool = ThreadPoolExecutor(max_workers=concurrency)  # shared by the container's invocations

    def add(self, batch_id: str, seq: int, urls: list[DiscoveredUrl]) -> list[bool]:
        expires = bt.expires_at(time.time(), self.retention_s)
        return list(self._pool.map(lambda u: self._put(batch_id, seq, u, expires), urls))

    def _put(self, batch_id: str, seq: int, u: DiscoveredUrl, expires: int) -> bool:
        row = {"pk": partition(batch_id, seq, bucket_of(u.url)), "sk": url_hash(u.url), bt.EXPIRES_AT: expires}
        row |= {f: getattr(u, f) for f in _FIELDS}
        old = put_new(self.ddb, self.table, row)
        return old is None or (old.get("doc"), old.get("pos")) == (u.doc, u.pos)  # stored by this document: ours

    def listed(self, batch_id: str, seq: int, url: str) -> bool:
        key = bt.key(partition(batch_id, seq, bucket_of(url)), url_hash(url))
        return "Item" in self.ddb.get_item(
            TableName=self.table, Key=key, ConsistentRead=True, ProjectionExpression="pk"
        )

    def page(
        self, batch_id: str, seqs: range, limit: int, cursor: str | None
    ) -> tuple[list[DiscoveredUrl], str | None]:
        seq, bucket, after = _decode(cursor, seqs)
        found: list[DiscoveredUrl] = []
        for _ in range(MAX_QUERIES):
            if seq >= seqs.stop:
                return found, None
            rows, more = self._query(partition(batch_id, seq, bucket), after, limit - len(found))
            found += rows
            if more:  # the page is full inside this partition
                return found, _encode(seq, bucket, url_hash(found[-1].url))
            seq, bucket, after = (seq, bucket + 1, "") if bucket + 1 < BUCKETS else (seq + 1, 0, "")
            if len(found) >= limit:
                return found, None if seq >= seqs.stop else _encode(seq, bucket, "")
        return found, None if seq >= seqs.stop else _encode(seq, bucket, "")

    def _query(self, pk: str, after: str, limit: int) -> tuple[list[DiscoveredUrl], bool]:
        """Up to `limit` rows of a partition after `after`, and whether it holds more."""
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :p AND sk > :a" if after else "pk = :p",
            "ExpressionAttributeValues": {":p": ser(pk), **({":a": ser(after)} if after else {})},
            "Limit": limit + 1,
        }
        rows: list[dict[str, Any]] = []
        while len(rows) <= limit:
            page = self.ddb.query(**kwargs)
            rows += [de_item(i) or {} for i in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return [_url(r) for r in rows[:limit]], len(rows) > limit


def _url(row: dict[str, Any]) -> DiscoveredUrl:
    fields: dict[str, Any] = {f: row.get(f) for f in _FIELDS}
    return DiscoveredUrl(**fields)
