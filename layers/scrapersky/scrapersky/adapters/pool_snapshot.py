"""What one container knows of the proxy pool: the proxy rows, and for each host it leases for, that host's row
and the proxies' pacing rows for it. Read by key (never a scan), kept for SNAPSHOT_TTL_S, and kept honest
with what the container's own writes and refusals return. Nothing here reads another host's state."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from scrapersky.adapters.ddb import de_item, ser
from scrapersky.adapters.proxy_paces import HostView, PaceRows
from scrapersky.adapters.proxy_rows import batch_get, is_proxy, learnt_pace, next_at, proxy_ids
from scrapersky.domain import host_limits
from scrapersky.domain.host_limits import TotalLimit
from scrapersky.domain.pacing import HostPace, PacingPolicy
from scrapersky.models import ProxyState

SNAPSHOT_TTL_S = 2.0
IDS_TTL_S = 30.0  # the list of proxies changes only when one is added or deleted: read it this often
NEVER = -1e18


def available(p: dict[str, Any]) -> bool:
    return p.get("state") == ProxyState.AVAILABLE


def leased_until(p: dict[str, Any]) -> float:
    return float(p.get("lease_until", 0))


def pid(p: dict[str, Any]) -> str:
    return str(p.get("proxy_id"))


class PoolSnapshot:
    def __init__(self, table_name: str, client: Any, pacing: PacingPolicy) -> None:
        self.table = table_name
        self.ddb = client
        self.pacing = pacing
        self.paces = PaceRows(table_name, client, pacing)
        self.rows: list[dict[str, Any]] = []
        self.at = NEVER
        self.ids: list[str] = []
        self.ids_at = NEVER
        self.views: dict[str, HostView] = {}  # per host leased for since the proxy rows were read
        self.seen: dict[str, float] = {}  # when this container last saw a proxy's true state

    def invalidate(self) -> None:
        """The next look reads the pool again."""
        self.at = self.ids_at = NEVER
        self.views.clear()

    def proxies(self, now: float, refresh: bool = False, host: str | None = None) -> list[dict[str, Any]]:
        """The proxy rows, read by key from the list of proxies; with `host`, its view comes in the same read."""
        if refresh or now - self.at > SNAPSHOT_TTL_S:
            self._read(now, refresh, host)
        return self.rows

    def _read(self, now: float, refresh: bool, host: str | None) -> None:
        if refresh or now - self.ids_at > IDS_TTL_S:
            self.ids, self.ids_at = proxy_ids(self.ddb, self.table), now
        got = batch_get(self.ddb, self.table, self.ids + (self.paces.keys(host, self.ids) if host else []))
        self.rows = [got[i] for i in self.ids if i in got and is_proxy(got[i])]
        self.views.clear()
        if host is not None:
            self.views[host] = self.paces.view_of(host, [pid(p) for p in self.rows if available(p)], got, now)
        self.at = now

    def view(self, host: str, now: float) -> HostView:
        """The host's row and the usable proxies' pacing rows for it (one BatchGetItem per 99 proxies)."""
        proxies = self.proxies(now, host=host)
        view = self.views.get(host)
        if view is None:
            view = self.views[host] = self.paces.view(host, [pid(p) for p in proxies if available(p)], now)
        return view

    def pace_of(self, p: dict[str, Any], host: str, now: float, row: dict[str, Any] | None = None) -> HostPace:
        """The proxy's pace for the host (`row`: its pacing row as a write just returned it, else the view's)."""
        view = self.view(host, now)
        own = view.row(pid(p)) if row is None else row
        return self.pacing.pace_of(learnt_pace(own), view.record, self.leader_pace(view, pid(p)))

    def leader_pace(self, view: HostView, proxy_id: str) -> HostPace | None:
        """The pace of the proxy that probes the host for the pool (the first usable one by id: every container
        picks the same without a write), or None when `proxy_id` is the leader itself."""
        usable = sorted(pid(p) for p in self.rows if available(p))
        if not usable or usable[0] == proxy_id:
            return None
        return learnt_pace(view.row(usable[0])) or self.pacing.pace_of(None, view.record)

    def open_at(self, p: dict[str, Any], host: str, now: float) -> float:
        """When the proxy's slot for the host opens, as this container sees it: its own slot, and with a total
        limit on the host, not before the host's next slot across the pool."""
        view = self.view(host, now)
        return max(self.pacing.opens_at(next_at(view.row(pid(p))), now), self.host_open_at(host, now))

    def limit(self, host: str, now: float) -> TotalLimit | None:
        """The host's total limit across the pool, if it has one (domain/host_limits)."""
        rec = self.view(host, now).record
        return None if rec is None else rec.limit(now)

    def host_next_at(self, host: str, now: float) -> float | None:
        rec = self.view(host, now).record
        return None if rec is None else rec.next_at

    def host_open_at(self, host: str, now: float) -> float:
        """When the host's next request may start through any proxy (now, for a host without a total limit)."""
        return host_limits.opens_at(self.host_next_at(host, now), now, self.limit(host, now))

    def remember_host_slot(self, host: str, next_at: float | None, now: float) -> None:
        """The host's next slot across the pool as this container's own booking returned it."""
        view = self.view(host, now)
        if view.record is not None:
            view.record = replace(view.record, next_at=next_at)

    def is_stale(self, p: dict[str, Any], now: float, fresh_s: float) -> bool:
        return now - self.seen.get(pid(p), NEVER) > fresh_s

    def remember(self, rec: dict[str, Any], now: float) -> None:
        """A proxy row as this container's own write or refusal returned it."""
        self.seen[pid(rec)] = now
        for p in self.rows:
            if pid(p) == pid(rec):
                p.clear()
                p.update(rec)

    def remember_pace(self, host: str, proxy_id: str, row: dict[str, Any] | None) -> None:
        """A pacing row as this container's own write or refusal returned it."""
        view = self.views.get(host)
        if view is not None and row:
            view.rows[proxy_id] = row

    def reread(self, p: dict[str, Any], now: float) -> None:
        """One key read of a proxy row."""
        got = self.ddb.get_item(TableName=self.table, Key={"proxy_id": ser(pid(p))}, ConsistentRead=True)
        rec = de_item(got.get("Item"))
        if rec:
            self.remember(rec, now)
