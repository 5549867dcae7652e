"""ItemDocuments on the batches table: each sitemap item in a partition of its own, so a big site's documents do not
all write to the batch's partition.

Keys (pk, sk):
  S#<batch>#<seq>  A        the item's progress row: open, planned, granted, the counts, truncated (a string set)
  S#<batch>#<seq>  D#<key>  one unit (robots.txt, a probe, a document; or `alias`: a redirect hop of `parent`)
A unit's row is put once (attribute_not_exists), so each document is read at most once per item; every change of
it is conditional on its status and claim, and its end writes its counts to the progress row in one transaction."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from scrapersky.adapters import batch_table as bt
from scrapersky.adapters.ddb import (
    cancellation_codes,
    cancellation_items,
    conditional,
    de_item,
    is_condition_failure,
    put_new,
    put_new_op,
    query_all,
    raise_translated,
)
from scrapersky.adapters.expressions import Update
from scrapersky.ports import Claim, ClaimRefused
from scrapersky.records import ItemError
from scrapersky.sitemap_ports import (
    ALIAS,
    DONE,
    IN_PROGRESS,
    PENDING,
    ROBOTS,
    DocRef,
    DocumentEnd,
    DocumentPlan,
    DocumentRecord,
    ItemDocuments,
    ItemProgress,
    Planned,
)

PROGRESS_SK, DOC_PREFIX = "A", "D#"
_COUNTS = (
    "open",
    "planned",
    "granted",
    "urls_found",
    "duplicates",
    "skipped_foreign",
    "documents_ok",
    "documents_failed",
)
_FAILED = "ConditionalCheckFailed"
_GRANT_TRIES = 5


def item_pk(batch_id: str, seq: int) -> str:
    return f"S#{batch_id}#{seq:07d}"


def _key(batch_id: str, seq: int, sk: str) -> dict[str, Any]:
    return bt.key(item_pk(batch_id, seq), sk)


def _doc_key(ref: DocRef) -> dict[str, Any]:
    return _key(ref.batch_id, ref.seq, DOC_PREFIX + ref.key)


def _record(row: dict[str, Any]) -> DocumentRecord:
    _s, batch_id, seq = row["pk"].split("#")
    ref = DocRef(batch_id, int(seq), row["sk"].removeprefix(DOC_PREFIX))
    fields = ("parent", "claim", "claim_until", "last_proxy", "summary", "finished_at", "resume")
    return DocumentRecord(
        ref,
        row["url"],
        int(row.get("depth", 0)),
        row.get("role", "document"),
        row["status"],
        attempts=int(row.get("attempts", 0)),
        deferrals=int(row.get("deferrals", 0)),
        got=int(row.get("got", 0)),
        **{f: row.get(f) for f in fields},
    )


def _counted(end: DocumentEnd, got: int) -> Update:
    """What a unit's end adds to its item's progress row: one unit less open, its counts, its unused budget back."""
    c = end.count
    urls = 0 if c is None else c.urls
    counts = {"open": -1, "planned": -int(end.release), "granted": urls - got}
    if c is not None:
        counts |= {"urls_found": urls, "duplicates": c.duplicates, "skipped_foreign": c.skipped_foreign}
        counts["documents_ok" if c.failure is None else "documents_failed"] = 1
    u = Update().add(**counts)
    if c is not None and c.truncated:
        u.add(truncated={c.truncated})  # type: ignore[arg-type]
    return u


class DynamoItemDocuments(ItemDocuments):
    def __init__(self, table_name: str, client: Any, retention_s: float = bt.DEFAULT_RETENTION_S) -> None:
        self.table = table_name
        self.ddb = client
        self.retention_s = retention_s

    def _row(self, batch_id: str, seq: int, doc: DocumentPlan, now: float, status: str = PENDING) -> dict[str, Any]:
        return {
            "pk": item_pk(batch_id, seq),
            "sk": DOC_PREFIX + doc.key,
            "url": doc.url,
            "depth": doc.depth,
            "role": doc.role,
            "status": status,
            "parent": doc.parent,
            "attempts": 0,
            "deferrals": 0,
            "got": 0,
            "created_at": now,
            bt.EXPIRES_AT: bt.expires_at(now, self.retention_s),
        }

    def _put_new(self, row: dict[str, Any]) -> dict[str, Any]:
        return put_new_op(self.table, row)

    def begin(self, batch_id: str, seq: int, first: DocumentPlan, now: float) -> None:
        progress = {"pk": item_pk(batch_id, seq), "sk": PROGRESS_SK, **dict.fromkeys(_COUNTS, 0)}
        progress |= {
            "open": 1,
            "planned": int(first.role != ROBOTS),
            bt.EXPIRES_AT: bt.expires_at(now, self.retention_s),
        }
        try:
            self.ddb.transact_write_items(
                TransactItems=[
                    {"Put": self._put_new(progress)},
                    {"Put": self._put_new(self._row(batch_id, seq, first, now))},
                ]
            )
        except ClientError as e:
            if _FAILED not in cancellation_codes(e):
                raise_translated(e)
                raise  # begun before: a redelivered first message

    def plan(self, batch_id: str, seq: int, doc: DocumentPlan, max_documents: int | None, now: float) -> Planned:
        counted = Update().add(open=1, planned=int(max_documents is not None)).when("attribute_exists(pk)")
        if max_documents is not None:
            counted.when("#planned < :max", max=max_documents)
        put = {**self._put_new(self._row(batch_id, seq, doc, now)), "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}
        update = {"TableName": self.table, "Key": _key(batch_id, seq, PROGRESS_SK), **counted.kwargs()}
        try:
            self.ddb.transact_write_items(TransactItems=[{"Put": put}, {"Update": update}])
            return Planned.NEW
        except ClientError as e:
            codes = cancellation_codes(e)
            if codes and codes[0] == _FAILED:
                old = cancellation_items(e)[0] or {}
                ours = old.get("parent") == doc.parent and old.get("status") != ALIAS
                return Planned.OURS if ours else Planned.READ
            if len(codes) > 1 and codes[1] == _FAILED:
                return Planned.FULL
            raise_translated(e)
            raise

    def alias(self, ref: DocRef, url: str, now: float) -> bool:
        row = self._row(ref.batch_id, ref.seq, DocumentPlan(url, 0, parent=ref.key), now, status=ALIAS)
        old = put_new(self.ddb, self.table, row)
        return old is None or (old.get("status") == ALIAS and old.get("parent") == ref.key)

    def truncate(self, batch_id: str, seq: int, reason: str) -> None:
        u = Update().add(truncated={reason}).when("attribute_exists(pk)")  # type: ignore[arg-type]
        conditional(self.ddb.update_item, TableName=self.table, Key=_key(batch_id, seq, PROGRESS_SK), **u.kwargs())

    def get(self, ref: DocRef) -> DocumentRecord | None:
        row = de_item(self.ddb.get_item(TableName=self.table, Key=_doc_key(ref), ConsistentRead=True).get("Item"))
        return _record(row) if row else None

    def progress(self, batch_id: str, seq: int) -> ItemProgress | None:
        got = self.ddb.get_item(TableName=self.table, Key=_key(batch_id, seq, PROGRESS_SK), ConsistentRead=True)
        row = de_item(got.get("Item"))
        if row is None:
            return None
        return ItemProgress(**{c: int(row.get(c, 0)) for c in _COUNTS}, truncated=frozenset(row.get("truncated", ())))

    def claim(self, ref: DocRef, token: str, until: float, now: float) -> Claim | ClaimRefused:
        u = Update().set(status=IN_PROGRESS, claim=token, claim_until=until, updated_at=now)
        u.when("#status = :p OR (#status = :ip AND #claim_until < :now)", p=PENDING, ip=IN_PROGRESS, now=now)
        try:
            got = self.ddb.update_item(
                TableName=self.table,
                Key=_doc_key(ref),
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **u.kwargs(),
            )
        except ClientError as e:
            if not is_condition_failure(e):
                raise_translated(e)
                raise
            old = de_item(e.response.get("Item"))
            if old is None or old.get("status") != IN_PROGRESS:
                return ClaimRefused(terminal=True)
            return ClaimRefused(terminal=False, busy_until=float(old.get("claim_until") or now))
        rec = _record(de_item(got["Attributes"]) or {})
        return Claim(token, rec.attempts, rec.deferrals, rec.last_proxy)

    def _held(self, u: Update, token: str) -> Update:
        return u.when("#status = :ip AND #claim = :t", ip=IN_PROGRESS, t=token)

    def requeue(
        self, ref: DocRef, token: str, now: float, *, attempt_spent: bool, proxy_id: str | None, error: ItemError | None
    ) -> bool:
        u = Update().set(status=PENDING, updated_at=now).remove("claim", "claim_until")
        u.add(**({"attempts": 1} if attempt_spent else {"deferrals": 1}))
        if proxy_id:
            u.set(last_proxy=proxy_id)
        if error is not None:
            u.set(last_error={"code": error.code, "message": error.message[:300]})
        return conditional(
            self.ddb.update_item, TableName=self.table, Key=_doc_key(ref), **self._held(u, token).kwargs()
        )

    def checkpoint(self, ref: DocRef, token: str, resume: dict[str, Any], now: float) -> bool:
        u = Update().set(status=PENDING, resume=resume, updated_at=now).remove("claim", "claim_until")
        return conditional(
            self.ddb.update_item, TableName=self.table, Key=_doc_key(ref), **self._held(u, token).kwargs()
        )

    def grant(self, ref: DocRef, token: str, want: int, max_urls: int) -> int:
        for _ in range(_GRANT_TRIES):
            progress = self.progress(ref.batch_id, ref.seq)
            got = min(want, max_urls - (progress.granted if progress else max_urls))
            if got <= 0:
                return 0
            budget = Update().add(granted=got).when("#granted <= :lim", lim=max_urls - got)
            doc = self._held(Update().add(got=got), token)
            try:
                self.ddb.transact_write_items(
                    TransactItems=[
                        {
                            "Update": {
                                "TableName": self.table,
                                "Key": _key(ref.batch_id, ref.seq, PROGRESS_SK),
                                **budget.kwargs(),
                            }
                        },
                        {"Update": {"TableName": self.table, "Key": _doc_key(ref), **doc.kwargs()}},
                    ]
                )
                return got
            except ClientError as e:
                codes = cancellation_codes(e)
                if len(codes) > 1 and codes[1] == _FAILED:
                    return 0  # the claim is gone: another delivery runs this document now
                if not codes or codes[0] != _FAILED:
                    raise_translated(e)
                    raise
        return 0

    def finish(self, ref: DocRef, token: str, end: DocumentEnd, now: float) -> ItemProgress | None:
        rec = self.get(ref)
        if rec is None or rec.status != IN_PROGRESS or rec.claim != token:
            return None
        doc = Update().set(status=DONE, finished_at=now, summary=end.summary).remove("claim", "claim_until")
        progress_key = _key(ref.batch_id, ref.seq, PROGRESS_SK)
        try:
            self.ddb.transact_write_items(
                TransactItems=[
                    {"Update": {"TableName": self.table, "Key": _doc_key(ref), **self._held(doc, token).kwargs()}},
                    {"Update": {"TableName": self.table, "Key": progress_key, **_counted(end, rec.got).kwargs()}},
                ]
            )
        except ClientError as e:
            if _FAILED in cancellation_codes(e):
                return None
            raise_translated(e)
            raise
        return self.progress(ref.batch_id, ref.seq)

    def summaries(self, batch_id: str, seq: int, limit: int) -> list[dict[str, Any]]:
        rows = query_all(
            self.ddb,
            TableName=self.table,
            KeyConditionExpression="pk = :p AND begins_with(sk, :d)",
            FilterExpression="attribute_exists(summary)",
            ExpressionAttributeValues={":p": {"S": item_pk(batch_id, seq)}, ":d": {"S": DOC_PREFIX}},
            ConsistentRead=True,
        )
        done = sorted(
            (r for r in rows if r.get("status") == DONE), key=lambda r: (r.get("depth", 0), r.get("finished_at", 0))
        )
        return [dict(r["summary"]) for r in done[:limit] if r.get("summary") is not None]
