"""The results export of an ended batch: JSON Lines and CSV files in the ResultStore, written page by page.

An export is its own unit of work on the fan-out queue (`type: "export"`): each message reads pages of items in
seq order from its cursor until every file has a part's worth of bytes, writes one part of each file and sends
the next message with the cursor; the last one publishes the files and records their keys on the batch. So a
1,000,000-item export spans as many invocations as it needs and holds one part in memory at a time.

Idempotent: the files hold only terminal items of an ended batch, read in the same pages from the same
cursors, so a redelivered message rewrites the same part, and an export that ran twice publishes the same
files. An export starts once every item is finished (a cancelled batch's running items end soon after it),
waiting at most SETTLE_S; past that it writes the items as they stand.

A sitemap batch's files hold its discovered URLs instead, one line per GET /batches/{id}/urls entry in the same order
(a URL two items found is there twice), paged from the DiscoveredUrls port's cursor the same way; the CSV has the
same columns. Its URLs are final once every unit of work has ended: a cancelled sitemap batch's items end at once
while a document may still be read within its lease, so its export always waits the settle time."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from scrapersky.domain.progress import total
from scrapersky.errors import UploadGone
from scrapersky.models import TERMINAL_BATCH, BatchStatus, ExportState, FanoutMessage
from scrapersky.records import BatchRecord
from scrapersky.services.batches import item_view
from scrapersky.services.context import Deps

PAGE = 1000
WAIT_S = 10  # how soon an export that waits for running items looks again
FORMATS = {"jsonl": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}
BASE_COLUMNS = ("seq", "item", "status", "attempts", "deferrals", "http_status", "error_code", "error_message")
TIME_COLUMNS = ("started_at", "finished_at", "duration_ms")
RESULT_COLUMNS: dict[str, tuple[str, ...]] = {  # a kind's result fields, in CSV order (API.md)
    "page": (
        *("status_code", "final_url", "content_type", "bytes", "elapsed_ms"),
        *("title", "description", "canonical", "h1"),
    ),
}
URL_COLUMNS = ("url", "lastmod", "changefreq", "priority", "sitemap", "item")  # a sitemap batch: its /urls entries
LISTS_URLS = frozenset({"sitemap"})  # kinds whose results files list the discovered URLs, not the items


def keys_of(batch: BatchRecord) -> dict[str, str]:
    return {fmt: f"results/{batch.tenant_id}/{batch.batch_id}/results.{fmt}" for fmt in FORMATS}


def columns(kind: str) -> list[str]:
    """CSV columns: the item's fields, its error flattened, then its result's fields (`result.x`); a kind with
    no declared fields gets its result as one JSON column. A sitemap batch: the fields of its /urls entries."""
    if kind in LISTS_URLS:
        return list(URL_COLUMNS)
    result = [f"result.{f}" for f in RESULT_COLUMNS.get(kind, ())] or ["result"]
    return [*BASE_COLUMNS, *TIME_COLUMNS, *result]


def settle_s(deps: Deps) -> float:
    """How long an export waits for running items: a delivery holding a claim ends it within its lease."""
    return 2 * deps.settings.lease_seconds + 60


def handle(deps: Deps, msg: FanoutMessage, batch: BatchRecord) -> str:
    if batch.result_keys:
        return "already_exported"
    if batch.status not in TERMINAL_BATCH:
        return "not_ended"
    state = msg.export or ExportState(requested_at=deps.clock.now())
    if not state.uploads and _should_wait(deps, batch, state):
        waited = state.model_copy(update={"waits": state.waits + 1})
        deps.queue.send_fanout([msg.model_copy(update={"export": waited})], delay_s=WAIT_S)
        return "export_waiting"
    keys = keys_of(batch)
    if not state.uploads:
        state = state.model_copy(update={"uploads": {f: deps.results.begin(keys[f], t) for f, t in FORMATS.items()}})
    try:
        return _write(deps, msg.model_copy(update={"export": state}), batch, keys)
    except UploadGone:
        return "export_superseded"  # another delivery of this export finished it: it records the keys


def _should_wait(deps: Deps, batch: BatchRecord, state: ExportState) -> bool:
    """Items still running (a cancelled batch's): wait for them, within the time and the number of looks allowed."""
    limit = settle_s(deps)
    if state.waits >= limit / WAIT_S or deps.clock.now() >= state.requested_at + limit:
        return False
    if batch.kind in LISTS_URLS and batch.status is BatchStatus.CANCELLED:
        return True  # documents read when the cancel came may still store URLs, within their lease
    full = deps.batches.get_with_counts(batch.batch_id)
    return full is not None and total(full[1]).finished < batch.total_items


def _write(deps: Deps, msg: FanoutMessage, batch: BatchRecord, keys: dict[str, str]) -> str:
    state = msg.export
    assert state is not None
    files = _Files(batch.kind, header=state.part == 1 and msg.cursor is None)
    cursor = _fill(deps, batch, files, msg.cursor)
    for fmt, data in files.parts().items():
        deps.results.write_part(keys[fmt], state.uploads[fmt], state.part, data)
    if cursor:
        nxt = state.model_copy(update={"part": state.part + 1})
        deps.queue.send_fanout([msg.model_copy(update={"cursor": cursor, "export": nxt})])
        return "export_part"
    for fmt, upload in state.uploads.items():
        deps.results.complete(keys[fmt], upload)
    deps.batches.mark_exported(batch.batch_id, keys)
    return "exported"


def _fill(deps: Deps, batch: BatchRecord, files: _Files, cursor: str | None) -> str | None:
    """Reads pages from the cursor until the part has its size or the batch its end; the cursor after them."""
    read = _urls if batch.kind in LISTS_URLS else _items
    while True:
        lines, cursor = read(deps, batch, cursor)
        for line in lines:
            files.add(line)
        if not cursor or files.smallest() >= deps.settings.export_part_bytes:
            return cursor


def _items(deps: Deps, batch: BatchRecord, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """A page of the batch's items in seq order, each shown as /batches/{id}/items shows it, with its `seq`."""
    render = deps.kinds.get(batch.kind).render
    rows, nxt = deps.items.query(batch.batch_id, None, PAGE, cursor)
    return [{"seq": row.seq, **item_view(row, render)} for row in rows], nxt


def _urls(deps: Deps, batch: BatchRecord, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """A page of the batch's discovered URLs in /batches/{id}/urls order (it may be short and have a next cursor)."""
    rows, nxt = deps.urls.page(batch.batch_id, range(batch.total_items), PAGE, cursor)
    return [row.view() for row in rows], nxt


class _Files:
    """One part of each file, built in memory (a part's worth of bytes at most, plus one page)."""

    def __init__(self, kind: str, header: bool) -> None:
        self.columns = columns(kind)
        self.jsonl = io.BytesIO()
        self.text = io.StringIO()
        self.csv = csv.writer(self.text, lineterminator="\r\n")
        self.csv_bytes = io.BytesIO()
        if header:
            self.csv.writerow(self.columns)

    def add(self, line: dict[str, Any]) -> None:
        self.jsonl.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode() + b"\n")
        self.csv.writerow(csv_row(line, self.columns))
        self.csv_bytes.write(self.text.getvalue().encode())
        self.text.seek(0)
        self.text.truncate()

    def smallest(self) -> int:
        return min(self.jsonl.tell(), self.csv_bytes.tell())

    def parts(self) -> dict[str, bytes]:
        return {"jsonl": self.jsonl.getvalue(), "csv": self.csv_bytes.getvalue()}


def csv_row(line: dict[str, Any], cols: list[str]) -> list[str]:
    error = line.get("error") or {}
    result = line.get("result")
    flat = {**line, "error_code": error.get("code"), "error_message": error.get("message")}
    if "result" not in cols:
        flat |= {f"result.{k}": v for k, v in (result or {}).items()}
    return [_cell(flat.get(c)) for c in cols]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)
