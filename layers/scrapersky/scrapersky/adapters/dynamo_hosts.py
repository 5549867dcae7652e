"""HostBook on DynamoDB: the `host#<h>` rows of the proxies table, beside the proxy rows whose paces they start.

A host row holds what the operator said of the site (`start_rate`: its limit per address, `max_rate`: a hard
cap), the ceiling one proxy learnt and shared with the others (`ceiling`), and the host's waiting line (`t`:
the last ticket given out). What each proxy learnt of the host is in its own pacing row (proxy_paces).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from scrapersky.adapters.ddb import de_item
from scrapersky.adapters.expressions import Update
from scrapersky.adapters.proxy_paces import PaceRows
from scrapersky.adapters.proxy_rows import (
    delete,
    host_records,
    host_row_id,
    is_proxy,
    learnt_pace,
    next_at,
    pace_rows_by_proxy,
    proxy_ids,
    scan,
    update,
)
from scrapersky.ports import HostBook
from scrapersky.records import HostProxyPace, HostRecord


def _proxy_pace(row: dict[str, Any]) -> HostProxyPace | None:
    pace = learnt_pace(row)
    if pace is None:
        return None
    return HostProxyPace(rate=pace.rate, ceiling=pace.ceiling, answer_s=pace.answer_s, next_at=next_at(row))


class DynamoHostBook(HostBook):
    """`on_change` callbacks run after a host's configuration changed or was forgotten: a pool in the same
    container drops its snapshot then, so the change counts at once (other containers see it within their
    snapshot's lifetime)."""

    def __init__(self, table_name: str, client: Any, on_change: list[Callable[[], None]] | None = None) -> None:
        self.table = table_name
        self.ddb = client
        self.on_change = on_change if on_change is not None else []

    def _changed(self) -> None:
        for callback in self.on_change:
            callback()

    def hosts(self) -> dict[str, HostRecord]:
        # An admin view: a scan, of the hosts in use (pacing rows expire some hours after their last use).
        rows = scan(self.ddb, self.table)
        out = host_records(rows)
        proxies = {str(r["proxy_id"]) for r in rows if is_proxy(r)}
        learnt: dict[str, dict[str, HostProxyPace]] = {}
        for proxy_id, paces in pace_rows_by_proxy(rows).items():
            for host, row in paces.items():
                if proxy_id in proxies and (pace := _proxy_pace(row)) is not None:
                    learnt.setdefault(host, {})[proxy_id] = pace
        for host, proxies_pace in learnt.items():
            out[host] = replace(out.get(host) or HostRecord(host), proxies=proxies_pace)
        return out

    def configure(self, host: str, rate: float | None, max_rate: float | None, now: float) -> None:
        u = Update().set(configured_at=now)
        for attribute, value in (("start_rate", rate), ("max_rate", max_rate)):
            if value is None:
                u.remove(attribute)
            else:
                u.set(**{attribute: value})
        update(self.ddb, self.table, host_row_id(host), u)
        self._changed()

    def forget(self, host: str) -> bool:
        known = delete(self.ddb, self.table, host_row_id(host))
        # What was learnt goes; a cooldown still running (`n`) stays: the site's Retry-After is not forgotten.
        # The host's pacing rows are read by key, one per proxy: no scan.
        learnt = PaceRows(self.table, self.ddb).forget_learnt(host, proxy_ids(self.ddb, self.table))
        self._changed()
        return known or learnt

    def take_ticket(self, host: str, now: float, earliest: float, gap_s: float) -> float:
        # The first in line since the line last emptied starts it at `earliest`; everyone after queues up
        # `gap_s` behind the last ticket, with one atomic ADD (no read, no race between workers).
        start = max(now, earliest)
        opening = Update().set(t=start).when("attribute_not_exists(#t) OR #t < :s", s=start)
        if update(self.ddb, self.table, host_row_id(host), opening) is not None:
            return start
        got = update(self.ddb, self.table, host_row_id(host), Update().add(t=gap_s), ReturnValues="UPDATED_NEW") or {}
        return max(start, float((de_item(got["Attributes"]) or {})["t"]))

    def share_ceiling(self, host: str, ceiling: float) -> None:
        """What one proxy learnt of a host's limit starts every other proxy that is new to it (sites limit
        each client address by the same rule), so the pool learns the limit once, not once per proxy. Only
        ever lowered here: each proxy still learns a higher limit on its own, slowly."""
        u = Update().set(ceiling=ceiling).when("attribute_not_exists(#ceiling) OR #ceiling > :c", c=ceiling)
        update(self.ddb, self.table, host_row_id(host), u)
