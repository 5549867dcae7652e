"""HostBook on DynamoDB: the `host#<h>` rows of the proxies table, beside the proxy rows whose paces they start.

A host row holds what the operator said of the site (`start_rate`: its limit per address, `max_rate`: a hard
cap, `total_rate`: a cap summed over every proxy), the ceiling one proxy learnt and shared with the others
(`ceiling`), the Crawl-delay its robots.txt asked (`crawl_delay_s`, learnt at `crawl_delay_at`, in force until
`crawl_delay_until`), the host's next slot across the pool when a total limit holds (`n`, host_slots) and its
waiting line (`t`: the last ticket given out). What each proxy learnt of the host is in its own pacing row
(proxy_paces).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from scrapersky.adapters.ddb import de_item
from scrapersky.adapters.expressions import Update
from scrapersky.adapters.host_slots import book_again
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
from scrapersky.domain.host_limits import CRAWL_DELAY_KEEP_S
from scrapersky.host_ports import HostConfig, HostLimitBook
from scrapersky.records import HostProxyPace, HostRecord

CRAWL_DELAY = ("crawl_delay_s", "crawl_delay_at", "crawl_delay_until")
ROW_KEEP_S = 3600.0


def _proxy_pace(row: dict[str, Any]) -> HostProxyPace | None:
    pace = learnt_pace(row)
    if pace is None:
        return None
    return HostProxyPace(rate=pace.rate, ceiling=pace.ceiling, answer_s=pace.answer_s, next_at=next_at(row))


class DynamoHostBook(HostLimitBook):
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

    def configure(self, host: str, config: HostConfig, now: float) -> None:
        u = Update().set(configured_at=now).remove("expires_at")  # a configured host is kept until forgotten
        for attribute, value in (
            ("start_rate", config.rate),
            ("max_rate", config.max_rate),
            ("total_rate", config.total_rate),
        ):
            if value is None:
                u.remove(attribute)
            else:
                u.set(**{attribute: value})
        update(self.ddb, self.table, host_row_id(host), u)
        self._changed()

    def learn_crawl_delay(self, host: str, delay_s: float | None, now: float, read_at: float) -> None:
        row = host_row_id(host)
        if delay_s is None:  # dropped if there was one; no row is created for the many sites that ask nothing
            u = Update().remove(*CRAWL_DELAY).when("attribute_exists(#crawl_delay_s)")
            if update(self.ddb, self.table, row, u) is not None:
                self._changed()
            return
        until = now + CRAWL_DELAY_KEEP_S
        learnt = dict(zip(CRAWL_DELAY, (delay_s, now, until), strict=True))
        # A row only learnt (never configured) goes by itself (TTL) after its delay ran out, with its waiting line.
        expiring = (
            Update().set(**learnt, expires_at=int(until + ROW_KEEP_S)).when("attribute_not_exists(#configured_at)")
        )
        if update(self.ddb, self.table, row, expiring) is None:
            update(self.ddb, self.table, row, Update().set(**learnt))
        # The delay counts from the request that read it: the host's next slot is no sooner (never moved back).
        later = Update().set(n=read_at + delay_s).when("attribute_not_exists(#n) OR #n < :next", next=read_at + delay_s)
        update(self.ddb, self.table, row, later)
        self._changed()

    def book_again(self, host: str, gap_s: float, now: float) -> float:
        return book_again(self.ddb, self.table, host, gap_s, now)

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
