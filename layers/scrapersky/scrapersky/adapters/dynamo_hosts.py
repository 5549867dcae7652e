"""HostBook on DynamoDB: the `host#<h>` rows of the proxies table, beside the proxy rows whose paces they start.

A host row holds what the operator said of the site (`start_rate`: its limit per address, `max_rate`: a hard
cap), the ceiling one proxy learnt and shared with the others (`ceiling`), and the host's waiting line (`t`:
the last ticket given out). What each proxy learnt of the host stays on the proxy's own row (proxy_rows).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from scrapersky.adapters.ddb import de_item
from scrapersky.adapters.expressions import Update
from scrapersky.adapters.proxy_rows import (
    HOST_PREFIX,
    HostKeys,
    delete,
    is_proxy,
    learnt_hosts,
    learnt_pace,
    next_at,
    scan,
    update,
)
from scrapersky.ports import HostBook
from scrapersky.records import HostProxyPace, HostRecord


def _num(v: Any) -> float | None:
    return None if v is None else float(v)


def host_record(row: dict[str, Any]) -> HostRecord | None:
    """A `host#<h>` row as a HostRecord (without its proxies); None for any other row."""
    rid = str(row.get("proxy_id", ""))
    if not rid.startswith(HOST_PREFIX):
        return None
    return HostRecord(
        host=rid[len(HOST_PREFIX) :],
        rate=_num(row.get("start_rate")),
        max_rate=_num(row.get("max_rate")),
        ceiling=_num(row.get("ceiling")),
    )


def host_records(rows: list[dict[str, Any]]) -> dict[str, HostRecord]:
    """The hosts among a scan's rows, by name."""
    return {rec.host: rec for rec in map(host_record, rows) if rec is not None}


def _proxy_pace(row: dict[str, Any], host: str) -> HostProxyPace:
    pace = learnt_pace(row, host)
    assert pace is not None  # only asked for hosts the row learnt a pace for
    return HostProxyPace(rate=pace.rate, ceiling=pace.ceiling, answer_s=pace.answer_s, next_at=next_at(row, host))


class DynamoHostBook(HostBook):
    """`on_change` callbacks run after a host's configuration changed or was forgotten: a pool in the same
    container drops its snapshot then, so the change counts at once (other containers see it within their
    snapshot's lifetime)."""

    def __init__(self, table_name: str, client: Any, on_change: list[Callable[[], None]] | None = None) -> None:
        self.table = table_name
        self.ddb = client
        self.on_change = on_change if on_change is not None else []

    def _row(self, host: str) -> str:
        return f"{HOST_PREFIX}{host}"

    def _changed(self) -> None:
        for callback in self.on_change:
            callback()

    def hosts(self) -> dict[str, HostRecord]:
        rows = scan(self.ddb, self.table)
        out = host_records(rows)
        learnt: dict[str, dict[str, HostProxyPace]] = {}
        for row in filter(is_proxy, rows):
            for host in learnt_hosts(row):
                learnt.setdefault(host, {})[str(row["proxy_id"])] = _proxy_pace(row, host)
        for host, proxies in learnt.items():
            out[host] = replace(out.get(host) or HostRecord(host), proxies=proxies)
        return out

    def configure(self, host: str, rate: float | None, max_rate: float | None, now: float) -> None:
        u = Update().set(configured_at=now)
        for attribute, value in (("start_rate", rate), ("max_rate", max_rate)):
            if value is None:
                u.remove(attribute)
            else:
                u.set(**{attribute: value})
        update(self.ddb, self.table, self._row(host), u)
        self._changed()

    def forget(self, host: str) -> bool:
        known = delete(self.ddb, self.table, self._row(host))
        # What was learnt goes; a cooldown still running (`n#`) stays: the site's Retry-After is not forgotten.
        keys = HostKeys.of(host).learnt
        for row in filter(is_proxy, scan(self.ddb, self.table)):
            if any(k in row for k in keys):
                known = True  # unless a proxy was deleted meanwhile:
                update(self.ddb, self.table, row["proxy_id"], Update().remove(*keys).when("attribute_exists(proxy_id)"))
        self._changed()
        return known

    def take_ticket(self, host: str, now: float, earliest: float, gap_s: float) -> float:
        # The first in line since the line last emptied starts it at `earliest`; everyone after queues up
        # `gap_s` behind the last ticket, with one atomic ADD (no read, no race between workers).
        start = max(now, earliest)
        opening = Update().set(t=start).when("attribute_not_exists(#t) OR #t < :s", s=start)
        if update(self.ddb, self.table, self._row(host), opening) is not None:
            return start
        got = update(self.ddb, self.table, self._row(host), Update().add(t=gap_s), ReturnValues="UPDATED_NEW") or {}
        return max(start, float((de_item(got["Attributes"]) or {})["t"]))

    def share_ceiling(self, host: str, ceiling: float) -> None:
        """What one proxy learnt of a host's limit starts every other proxy that is new to it (sites limit
        each client address by the same rule), so the pool learns the limit once, not once per proxy. Only
        ever lowered here: each proxy still learns a higher limit on its own, slowly."""
        u = Update().set(ceiling=ceiling).when("attribute_not_exists(#ceiling) OR #ceiling > :c", c=ceiling)
        update(self.ddb, self.table, self._row(host), u)
