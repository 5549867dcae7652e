"""DiscoveredUrls on the batches table: one row per URL and item, unique by its key.

Keys (pk, sk):
  U#<batch>#<seq>#<bucket>  <hash of the URL>   one discovered URL (url, lastmod, changefreq, priority, sitemap,
                                                 item, and the document and place that listed it)
The bucket is the URL hash's first hex digit modulo BUCKETS: an item's writes spread over BUCKETS partitions and a
batch's over BUCKETS per item, so no single partition key takes all writes of a big batch; the batch's status rows
are untouched (its status read stays one query). The listing order is (seq, bucket, hash): stable, so a cursor (the
last row's key) pages exactly, no duplicate and no gap.

Uniqueness per item is each put's condition: the row is new, or it is this document's own at the same place (a
redelivery). A document's URLs are written TX_MAX to a TransactWriteItems (one PutItem each was ~8x slower per URL
on the local stack, which read one batch of 50,000 URLs in ~70 s); a transaction whose conditions fail for some
entries is cancelled as a whole, its CancellationReasons name them (duplicates: another document's rows), and the
rest is written again. DynamoDB bills a transactional write 2 WCU per row (a PutItem: 1)."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import ClientError

from scrapersky.adapters import batch_table as bt
from scrapersky.adapters.ddb import cancellation_codes, de_item, error_code, raise_translated, ser, ser_item
from scrapersky.errors import InvalidCursor, RetryableStoreError
from scrapersky.sitemap_ports import DiscoveredUrl, DiscoveredUrls

BUCKETS = 4
MAX_QUERIES = 48  # partitions read by one page at most: a page over many empty items may be short, never wrong
WAVE = 8  # partitions queried at once by a page
TX_MAX = 100  # TransactWriteItems' limit
TX_STALLS = 6  # transactions in a row that wrote nothing and found no duplicate (conflicts, throttling)
FAILED_CONDITION = "ConditionalCheckFailed"
RETRIED = frozenset({"None", "TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"})
NEW_OR_OURS = "attribute_not_exists(pk) OR (doc = :doc AND pos = :pos)"
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
    """`concurrency` bounds the transactions of one chunk of a document's URLs run at once."""

    def __init__(
        self, table_name: str, client: Any, retention_s: float = bt.DEFAULT_RETENTION_S, concurrency: int = 16
    ):
        self.table, self.ddb, self.retention_s = table_name, client, retention_s
        self._pool = ThreadPoolExecutor(max_workers=concurrency)  # shared by the container's invocations

    def add(self, batch_id: str, seq: int, urls: list[DiscoveredUrl]) -> list[bool]:
        """A URL listed twice in `urls` is written after its first (a transaction takes each row once)."""
        seen: set[str] = set()
        first: list[int] = []
        again: list[int] = []
        for i, u in enumerate(urls):
            (again if u.url in seen else first).append(i)
            seen.add(u.url)
        new = dict(zip(first, self._add_unique(batch_id, seq, [urls[i] for i in first]), strict=True))
        if again:
            new |= dict(zip(again, self.add(batch_id, seq, [urls[i] for i in again]), strict=True))
        return [new[i] for i in range(len(urls))]

    def _add_unique(self, batch_id: str, seq: int, urls: list[DiscoveredUrl]) -> list[bool]:
        expires = bt.expires_at(time.time(), self.retention_s)
        groups = [urls[i : i + TX_MAX] for i in range(0, len(urls), TX_MAX)]
        done = self._pool.map(lambda group: self._put_group(batch_id, seq, group, expires), groups)
        return [new for group in done for new in group]

    def _put_group(self, batch_id: str, seq: int, group: list[DiscoveredUrl], expires: int) -> list[bool]:
        """One transaction for the group; when cancelled, the entries whose condition failed are duplicates and the
        others are written again (each round drops at least one entry, or counts as a stall)."""
        new = [True] * len(group)
        todo = list(range(len(group)))
        stalls = 0
        while todo:
            codes = self._transact([self._op(batch_id, seq, group[i], expires) for i in todo])
            dropped = [i for i, code in zip(todo, codes, strict=True) if code == FAILED_CONDITION]
            for i in dropped:
                new[i] = False
            todo = [i for i, code in zip(todo, codes, strict=True) if code in RETRIED]
            stalls = 0 if dropped else stalls + 1
            if todo:
                _pause(stalls, codes)
        return new

    def _transact(self, ops: list[dict[str, Any]]) -> list[str]:
        """Writes the puts at once: each entry's cancellation code ("Written" for all when the transaction was)."""
        try:
            self.ddb.transact_write_items(TransactItems=ops)
            return ["Written"] * len(ops)
        except ClientError as e:
            codes = cancellation_codes(e) if error_code(e) == "TransactionCanceledException" else []
            if len(codes) != len(ops) or not set(codes) <= RETRIED | {FAILED_CONDITION}:
                raise_translated(e)
                raise
            return codes

    def _op(self, batch_id: str, seq: int, u: DiscoveredUrl, expires: int) -> dict[str, Any]:
        row = {"pk": partition(batch_id, seq, bucket_of(u.url)), "sk": url_hash(u.url), bt.EXPIRES_AT: expires}
        row |= {f: getattr(u, f) for f in _FIELDS}
        put = {"TableName": self.table, "Item": ser_item(row), "ConditionExpression": NEW_OR_OURS}
        return {"Put": put | {"ExpressionAttributeValues": {":doc": ser(u.doc), ":pos": ser(u.pos)}}}

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


def _pause(stalls: int, codes: list[str]) -> None:
    """Before writing again what a cancelled transaction held: at once after it found duplicates, else (conflicts,
    throttling) a growing pause, up to TX_STALLS of them."""
    if stalls >= TX_STALLS:
        raise RetryableStoreError(f"discovered URLs not stored: {sorted(set(codes))}")
    if stalls:
        time.sleep(min(1.0, 0.05 * 2**stalls))


def _url(row: dict[str, Any]) -> DiscoveredUrl:
    fields: dict[str, Any] = {f: row.get(f) for f in _FIELDS}
    return DiscoveredUrl(**fields)
