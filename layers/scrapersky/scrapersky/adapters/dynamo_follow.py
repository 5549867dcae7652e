"""FollowStore on the batches table: what options.follow keeps while following a sitemap batch into its child.

Keys (pk, sk), all under the parent batch:
  FL#<batch>#S#<bucket>  <hash of the URL>   the URL's claim (url, the item that claimed it); the bucket spreads a
                                            page's parallel conditional puts over BUCKETS partitions
  FL#<batch>#R           <host>              a robots.txt as read (url, status_code, rules: compacted, compressed)
  FL#<batch>#C           <first seq, 7 digits>  a chunk of the child's items
The parent's follow state and child id are attributes of its batch record (`follow`, `child_batch_id`, read back
as BatchRecord fields). Every row expires with the batch's other rows."""

from __future__ import annotations

import hashlib
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from scrapersky.adapters import batch_table as bt
from scrapersky.adapters.ddb import conditional, de_item, put_new, ser_item
from scrapersky.adapters.expressions import Update
from scrapersky.follow_ports import CANCELLED, DONE, FAILED, FollowStore, KeptRobots

BUCKETS = 16


def _hash(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:32]


def claim_key(batch_id: str, url: str) -> tuple[str, str]:
    h = _hash(url)
    return f"FL#{batch_id}#S#{int(h[:2], 16) % BUCKETS}", h


def _robots_pk(batch_id: str) -> str:
    return f"FL#{batch_id}#R"


def _chunk_key(batch_id: str, first_seq: int) -> dict[str, Any]:
    return bt.key(f"FL#{batch_id}#C", f"{first_seq:07d}")


def _bytes(value: Any) -> bytes:
    return bytes(getattr(value, "value", value) or b"")  # boto3 gives Binary; moto and the local stack alike


class DynamoFollowStore(FollowStore):
    """`concurrency` bounds the parallel conditional puts of one page's claims."""

    def __init__(
        self, table_name: str, client: Any, retention_s: float = bt.DEFAULT_RETENTION_S, concurrency: int = 16
    ) -> None:
        self.table, self.ddb, self.retention_s = table_name, client, retention_s
        self._pool = ThreadPoolExecutor(max_workers=concurrency)  # shared by the container's invocations

    def _expires(self) -> int:
        return bt.expires_at(time.time(), self.retention_s)

    def keep_robots(self, batch_id: str, host: str, robots: KeptRobots, now: float) -> None:
        row: dict[str, Any] = {"pk": _robots_pk(batch_id), "sk": host, "url": robots.url, "rules": robots.rules}
        row |= {"status_code": robots.status_code, bt.EXPIRES_AT: bt.expires_at(now, self.retention_s)}
        put_new(self.ddb, self.table, {k: v for k, v in row.items() if v != b""})

    def robots(self, batch_id: str, hosts: list[str]) -> dict[str, KeptRobots]:
        out: dict[str, KeptRobots] = {}
        for host in dict.fromkeys(hosts):  # a page's URLs are on a few hosts: one read each
            got = self.ddb.get_item(TableName=self.table, Key=bt.key(_robots_pk(batch_id), host), ConsistentRead=True)
            row = de_item(got.get("Item"))
            if row is not None:
                status = row.get("status_code")
                out[host] = KeptRobots(row["url"], None if status is None else int(status), _bytes(row.get("rules")))
        return out

    def claim(self, batch_id: str, urls: list[tuple[str, str]]) -> list[bool]:
        expires = self._expires()
        return list(self._pool.map(lambda pair: self._claim(batch_id, pair[0], pair[1], expires), urls))

    def _claim(self, batch_id: str, url: str, item: str, expires: int) -> bool:
        pk, sk = claim_key(batch_id, url)
        old = put_new(self.ddb, self.table, {"pk": pk, "sk": sk, "url": url, "item": item, bt.EXPIRES_AT: expires})
        return old is None or old.get("item") == item  # claimed by this same listing before: a redelivered page

    def save_chunk(self, batch_id: str, first_seq: int, items: list[str], now: float) -> None:
        row = {**_chunk_key(batch_id, first_seq), "items": {"L": [{"S": i} for i in items]}}
        row[bt.EXPIRES_AT] = ser_item({"e": bt.expires_at(now, self.retention_s)})["e"]
        self.ddb.put_item(TableName=self.table, Item=row)

    def chunk(self, batch_id: str, first_seq: int) -> list[str]:
        got = self.ddb.get_item(TableName=self.table, Key=_chunk_key(batch_id, first_seq), ConsistentRead=True)
        row = de_item(got.get("Item")) or {}
        return [str(i) for i in row.get("items", [])]

    def begin(self, batch_id: str, state: dict[str, Any]) -> bool:
        u = Update().set(follow=state).when("attribute_exists(pk) AND attribute_not_exists(#follow)")
        return conditional(self.ddb.update_item, TableName=self.table, Key=bt.meta_key(batch_id), **u.kwargs())

    def record(self, batch_id: str, state: dict[str, Any], child_batch_id: str | None) -> bool:
        u = Update().set(follow=state, child_batch_id=child_batch_id).when("attribute_exists(pk)")
        u.when(
            "attribute_not_exists(#follow.#state) OR NOT (#follow.#state IN (:d, :f, :c))",
            d=DONE,
            f=FAILED,
            c=CANCELLED,
        )
        return conditional(self.ddb.update_item, TableName=self.table, Key=bt.meta_key(batch_id), **u.kwargs())
