"""GET /batches/{id}/urls: the URLs a sitemap batch discovered, unique per item, paged exactly."""

from __future__ import annotations

from typing import Any

from scrapersky.errors import InvalidCursor, InvalidInput
from scrapersky.services.batches import owned_batch
from scrapersky.services.context import Deps

_ITEM_PAGES = 1000  # items read per query when an item is named by its value


def list_urls(
    deps: Deps, tenant_id: str, batch_id: str, item: str | None, limit: int, cursor: str | None
) -> dict[str, Any]:
    """`item` names one item by its seq (its place in the batch) or by its value as /items shows it."""
    batch = owned_batch(deps, tenant_id, batch_id)
    if batch.kind != "sitemap":
        return {"urls": [], "next_cursor": None}
    seqs = range(batch.total_items) if item is None else _item_range(deps, batch_id, batch.total_items, item)
    try:
        rows, nxt = deps.urls.page(batch_id, seqs, limit, cursor)
    except InvalidCursor as e:
        raise InvalidInput(str(e), [{"field": "cursor", "message": str(e)}]) from e
    return {"urls": [r.view() for r in rows], "next_cursor": nxt}


def _item_range(deps: Deps, batch_id: str, total: int, item: str) -> range:
    if item.isdigit() and int(item) < total:
        return range(int(item), int(item) + 1)
    cursor: str | None = None
    while True:
        rows, cursor = deps.items.query(batch_id, None, _ITEM_PAGES, cursor)
        for rec in rows:
            if item in (rec.item, rec.item.removeprefix("https://").rstrip("/")):
                return range(rec.seq, rec.seq + 1)
        if cursor is None:
            message = f"the batch has no item {item!r}"
            raise InvalidInput(message, [{"field": "item", "message": message}])
