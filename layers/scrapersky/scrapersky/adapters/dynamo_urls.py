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
WAVE = 8  # partitions queried at once by a page
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


def _places(seq: int, bucket: int, seqs: range, n: int) -> list[tuple[int, int]]:
    """The next `n` partitions (seq, bucket) from (seq, bucket), in listing order, within `seqs`."""
    out: list[tuple[int, int]] = []
    while len(out) < n and seq < seqs.stop:
        out.append((seq, bucket))
        seq, bucket = (seq, bucket + 1) if bucket + 1 < BUCKETS else (seq + 1, 0)
    return out


def _next_cursor(place: tuple[int, int], seqs: range) -> str | None:
    """The cursor of the partition after `place` (None when `place` was the last)."""
    seq, bucket = place
    seq, bucket = (seq, bucket + 1) if bucket + 1 < BUCKETS else (seq + 1, 0)
    return None if seq >= seqs.stop else _encode(seq, bucket, "")


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
        """Partitions are read in waves of WAVE queries at once (an export of many small items reads mostly empty
        partitions: one after another it would outlast its invocation), consumed in order; a wave's partitions past
        the one that filled the page are read again by the next page."""
        seq, bucket, after = _decode(cursor, seqs)
        found: list[DiscoveredUrl] = []
        places = _places(seq, bucket, seqs, MAX_QUERIES)
        for start in range(0, len(places), WAVE):
            wave = places[start : start + WAVE]
            answers = self._wave(batch_id, wave, (seq, bucket, after), limit - len(found))
            for place, (rows, more) in zip(wave, answers, strict=True):
                taken = rows[: limit - len(found)]
                found += taken
                if more or len(taken) < len(rows):  # the page is full inside this partition
                    return found, _encode(*place, url_hash(found[-1].url))
                if len(found) >= limit:
                    return found, _next_cursor(place, seqs)
        return found, _next_cursor(places[-1], seqs) if places else None

    def _wave(
        self, batch_id: str, wave: list[tuple[int, int]], start: tuple[int, int, str], want: int
    ) -> list[tuple[list[DiscoveredUrl], bool]]:
        """Each partition of the wave queried at once; the cursor's own partition from after its last URL."""

        def read(place: tuple[int, int]) -> tuple[list[DiscoveredUrl], bool]:
            after = start[2] if place == start[:2] else ""
            return self._query(partition(batch_id, *place), after, want)

        return list(self._pool.map(read, wave))

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
