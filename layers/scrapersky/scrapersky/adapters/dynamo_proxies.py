"""ProxyPool on DynamoDB: one record per proxy (never one hot pool item), leased by conditional writes.

A lease sets lease_owner/lease_until, bumps a fencing counter and books the proxy's next pacing slot for
the host, all in one conditional UpdateItem; release is conditional on owner and fence, so a crashed
worker's lease simply lapses and a late release cannot undo a newer lease. Since only the lease holder
writes a proxy's pace, the learnt rates need no further locking.

Per host h a proxy record carries `n#h` (earliest start of the next request), `r#h` (learnt rate, req/s)
and `c#h` (ceiling: just below a rate the host refused). Records `host#<h>` hold the host's waiting line.
"""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

from botocore.exceptions import ClientError

from scrapersky.adapters.ddb import de_item, is_condition_failure, raise_if_retryable, ser, ser_item, values
from scrapersky.domain.pacing import HostPace, PacingPolicy
from scrapersky.errors import LeaseConflict, NoProxyAvailable
from scrapersky.ports import Lease, ProxyPool

SNAPSHOT_TTL_S = 2.0
MAX_CLAIM_TRIES = 4
BEST_FEW = 3
SAME_SLOT_S = 0.05  # proxies whose slots open this close together are equally good picks
FRESH_S = 0.5
BUSY_RETRY_S = 1.0
MIN_SNAPSHOT_AGE_S = 0.2  # a snapshot this fresh is trusted about leases
WAIT_WORTH_A_LOOK_S = 0.1  # a wait for a slot this long is worth one key read of a proxy likely free
LIKELY_RELEASED_S = 0.5  # a lease that started this long ago has most likely been released
PROXY_PREFIX = "p_"
TICKET_PREFIX = "host#"


def next_key(host: str) -> str:
    return f"n#{host}"


def rate_key(host: str) -> str:
    return f"r#{host}"


def ceiling_key(host: str) -> str:
    return f"c#{host}"


def answer_key(host: str) -> str:
    return f"a#{host}"


class DynamoProxyPool(ProxyPool):
    def __init__(
        self,
        table_name: str,
        client: Any,
        quarantine_after: int = 3,
        rng: random.Random | None = None,
        no_proxy_retry_s: float = 30.0,
        pacing: PacingPolicy | None = None,
    ) -> None:
        self.table = table_name
        self.ddb = client
        self.quarantine_after = quarantine_after
        self.no_proxy_retry_s = no_proxy_retry_s
        self.pacing = pacing or PacingPolicy()
        self.rng = rng or random.Random()
        self._snapshot: list[dict[str, Any]] = []
        self._snapshot_at = -1e18
        self._hosts: dict[str, dict[str, Any]] = {}
        self._seen: dict[str, float] = {}  # when this container last saw a proxy's true state
        self.stats = {"leases": 0, "conflicts": 0}

    # ---- records -----------------------------------------------------------------------------------------
    def add(self, proxy_id: str, url: str, endpoint: str, labels: dict[str, str], now: float) -> None:
        self.ddb.put_item(
            TableName=self.table,
            Item=ser_item(
                {
                    "proxy_id": proxy_id,
                    "url": url,
                    "endpoint": endpoint,
                    "labels": labels,
                    "state": "available",
                    "lease_until": 0,
                    "fence": 0,
                    "succeeded": 0,
                    "failed": 0,
                    "rate_limited": 0,
                    "consecutive_errors": 0,
                    "created_at": now,
                }
            ),
            ConditionExpression="attribute_not_exists(proxy_id)",
        )
        self._snapshot_at = -1e18

    def delete(self, proxy_id: str) -> bool:
        try:
            self.ddb.delete_item(
                TableName=self.table, Key={"proxy_id": ser(proxy_id)}, ConditionExpression="attribute_exists(proxy_id)"
            )
            return True
        except ClientError as e:
            if is_condition_failure(e):
                return False
            raise

    def list_all(self) -> list[dict[str, Any]]:
        return [r for r in self._scan() if str(r.get("proxy_id", "")).startswith(PROXY_PREFIX)]

    def _scan(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"TableName": self.table, "ConsistentRead": True}
        while True:
            page = self.ddb.scan(**kwargs)
            out.extend(de_item(i) or {} for i in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return out
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _proxies(self, now: float, refresh: bool = False) -> list[dict[str, Any]]:
        if refresh or now - self._snapshot_at > SNAPSHOT_TTL_S:
            rows = self._scan()
            self._snapshot = [r for r in rows if str(r.get("proxy_id", "")).startswith(PROXY_PREFIX)]
            self._hosts = {
                str(r["proxy_id"])[len(TICKET_PREFIX) :]: r
                for r in rows
                if str(r.get("proxy_id", "")).startswith(TICKET_PREFIX)
            }
            self._snapshot_at = now
        return self._snapshot

    def pace_of(self, p: dict[str, Any], host: str) -> HostPace:
        """The proxy's own learnt pace for the host; a proxy new to the host starts from what the pool
        learnt of it (the host's ceiling), else from the host's configured rate, else from the default
        rate. Never faster than the host's configured `max_rate`."""
        cfg = self._hosts.get(host) or {}
        answer = p.get(answer_key(host))
        if p.get(rate_key(host)) is not None:
            ceiling = p.get(ceiling_key(host))
            pace = HostPace(
                rate=float(p[rate_key(host)]),
                ceiling=None if ceiling is None else float(ceiling),
                answer_s=None if answer is None else float(answer),
            )
        elif cfg.get("ceiling") is not None:
            pace = HostPace(rate=float(cfg["ceiling"]), ceiling=float(cfg["ceiling"]))
        elif cfg.get("start_rate") is not None:
            pace = self.pacing.under_known_limit(float(cfg["start_rate"]))
        else:
            pace = HostPace(rate=self.pacing.default_rate)
        return self._capped(pace, host)

    def _capped(self, pace: HostPace, host: str) -> HostPace:
        """Never faster than the host's `max_rate`, nor above a step under its configured limit (`start_rate`):
        the ceiling does not creep past what the operator said the site allows."""
        cfg = self._hosts.get(host) or {}
        if cfg.get("start_rate") is not None:
            limit = self.pacing.under_known_limit(float(cfg["start_rate"])).rate
            pace = replace(
                pace, rate=min(pace.rate, limit), ceiling=limit if pace.ceiling is None else min(pace.ceiling, limit)
            )
        cap = cfg.get("max_rate")
        return pace if cap is None or pace.rate <= float(cap) else replace(pace, rate=float(cap))

    @staticmethod
    def _open_at(p: dict[str, Any], host: str, now: float) -> float:
        return max(now, float(p.get(next_key(host), 0)))

    # ---- leasing -----------------------------------------------------------------------------------------
    def lease(
        self, host: str, owner: str, now: float, lease_s: float, avoid: str | None = None, max_wait_s: float = 0.0
    ) -> Lease:
        for refresh in (False, True):
            ready = self._ready(host, now, max_wait_s, refresh)
            if not ready:
                continue
            likely = [] if refresh else self._likely_released(ready, host, now, lease_s)
            if likely:  # one key read tells whether the soonest of them is free by now
                self._reread(min(likely, key=lambda p: self._open_at(p, host, now)), now)
                ready = self._ready(host, now, max_wait_s, False)
            # A proxy this container itself just saw free (it released it, or a refusal told its state) is
            # almost surely still free: try it first. Then random among the few that open soonest, so
            # workers sharing a stale snapshot spread out instead of all fighting for the first.
            self.rng.shuffle(ready)
            ready.sort(
                key=lambda p: (
                    p.get("proxy_id") == avoid,
                    self._open_at(p, host, now),
                    now - self._seen.get(str(p.get("proxy_id")), -1e18) > FRESH_S,
                )
            )
            soonest = self._open_at(ready[0], host, now)
            best = [
                p
                for p in ready[:BEST_FEW]
                if self._open_at(p, host, now) <= soonest + SAME_SLOT_S
                and (p.get("proxy_id") == avoid) == (ready[0].get("proxy_id") == avoid)
            ]
            if now - self._seen.get(str(best[0].get("proxy_id")), -1e18) > FRESH_S:
                self.rng.shuffle(best)
            for p in (best + ready[len(best) :])[:MAX_CLAIM_TRIES]:
                try:
                    return self._claim(p, host, owner, now, lease_s)
                except LeaseConflict:
                    self.stats["conflicts"] += 1
        usable = [p for p in self._snapshot if p.get("state") == "available"]
        if not usable:
            raise NoProxyAvailable(f"no usable proxy for {host}", retry_at=now + self.no_proxy_retry_s)
        retry_at = min(
            max(self._open_at(p, host, now), now + BUSY_RETRY_S if float(p.get("lease_until", 0)) >= now else now)
            for p in usable
        )
        raise NoProxyAvailable(f"no proxy can take {host} now", retry_at=max(retry_at, now + 0.2))

    def _ready(self, host: str, now: float, max_wait_s: float, refresh: bool) -> list[dict[str, Any]]:
        """Free proxies whose slot for the host opens within max_wait_s, as this container's snapshot sees them."""
        return [
            p
            for p in self._proxies(now, refresh)
            if p.get("state") == "available"
            and float(p.get("lease_until", 0)) < now
            and self._open_at(p, host, now) <= now + max_wait_s
        ]

    def _reread(self, p: dict[str, Any], now: float) -> None:
        got = self.ddb.get_item(TableName=self.table, Key={"proxy_id": ser(p["proxy_id"])}, ConsistentRead=True)
        rec = de_item(got.get("Item"))
        if rec:
            self._remember(rec, now)

    def _likely_released(
        self, ready: list[dict[str, Any]], host: str, now: float, lease_s: float
    ) -> list[dict[str, Any]]:
        """Before waiting for a slot, look again at the proxies the snapshot shows leased long enough ago that
        they are most likely free by now and open sooner: otherwise a worker keeps waiting for the proxy it
        just released while others sit idle (at the end of a batch, when fewer items than proxies are left)."""
        if now - self._snapshot_at < MIN_SNAPSHOT_AGE_S:
            return []
        soonest = min(self._open_at(p, host, now) for p in ready)
        if soonest <= now + WAIT_WORTH_A_LOOK_S:
            return []
        return [
            p
            for p in self._snapshot
            if p.get("state") == "available"
            and float(p.get("lease_until", 0)) >= now  # shown leased...
            and now > float(p.get("lease_until", 0)) - lease_s + LIKELY_RELEASED_S  # ...since long enough
            and self._open_at(p, host, now) < soonest
        ]

    def _claim(self, p: dict[str, Any], host: str, owner: str, now: float, lease_s: float) -> Lease:
        pace = self.pace_of(p, host)
        start = self._open_at(p, host, now)
        try:
            got = self.ddb.update_item(
                TableName=self.table,
                Key={"proxy_id": ser(p["proxy_id"])},
                UpdateExpression="SET lease_owner = :o, lease_until = :u, #n = :next ADD fence :one",
                ConditionExpression=(
                    "attribute_exists(proxy_id) AND #st = :avail AND lease_until < :now"
                    " AND (attribute_not_exists(#n) OR #n <= :start)"
                ),
                ExpressionAttributeNames={"#st": "state", "#n": next_key(host)},
                ExpressionAttributeValues=values(
                    o=owner,
                    u=start + lease_s,
                    one=1,
                    avail="available",
                    now=now,
                    start=start,
                    next=start + self.pacing.interval(pace.rate),
                ),
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as e:
            if is_condition_failure(e):
                # the refusal carries the proxy's current state: the next pick in this container is better informed
                current = de_item(e.response.get("Item"))
                if current:
                    self._remember(current, now)
                raise LeaseConflict(p["proxy_id"]) from e
            raise_if_retryable(e)
            raise
        rec = de_item(got["Attributes"]) or {}
        self._remember(rec, now)
        self.stats["leases"] += 1
        return Lease(
            proxy_id=rec["proxy_id"],
            url=rec["url"],
            fence=int(rec["fence"]),
            owner=owner,
            host=host,
            start_at=start,
            pace=self.pace_of(rec, host),
            last_success_at=rec.get("last_success_at"),
        )

    def _remember(self, rec: dict[str, Any], now: float) -> None:
        """Keep this container's snapshot honest about what it changed itself."""
        self._seen[str(rec.get("proxy_id"))] = now
        for p in self._snapshot:
            if p.get("proxy_id") == rec.get("proxy_id"):
                p.clear()
                p.update(rec)

    def release(
        self, lease: Lease, host: str, now: float, outcome: str, retry_after_s: float | None, proxy_fault: bool
    ) -> None:
        counter = {"success": "succeeded", "rate_limited": "rate_limited", "unused": None}.get(outcome, "failed")
        names: dict[str, str] = {}
        vals: dict[str, Any] = {"zero": 0, "me": lease.owner, "f": lease.fence}
        sets = ["lease_until = :zero"]
        adds = []
        if counter:
            names["#c"] = counter
            vals.update(one=1, now=now)
            adds.append("#c :one")
            sets.append("last_used_at = :now")
        pace = lease.pace or HostPace(self.pacing.default_rate)
        if outcome in ("success", "failed"):  # a request went out
            new = pace
            if outcome == "success":
                new = self._capped(pace.after_success(self.pacing), host)
                new = new.with_answer_time(self.pacing, max(0.0, now - lease.start_at))
                sets.append("consecutive_errors = :zero")
                sets.append("last_success_at = :now")
                names["#a"] = answer_key(host)
                vals["answer"] = round(new.answer_s or 0.0, 4)
                sets.append("#a = :answer")
            # The slot booked at lease time used this container's snapshot of the pace, which may be stale;
            # only the lease holder writes the pace, so here it is exact: fix the next slot with it, counted
            # from when the request reached the site (`start_at` is when it really left the worker).
            names["#n"] = next_key(host)
            vals["next"] = pace.reached_at(self.pacing, lease.start_at, now) + self.pacing.interval(new.rate)
            sets.append("#n = :next")
        elif outcome == "rate_limited":
            new = pace.after_rate_limit(self.pacing)
            names["#n"] = next_key(host)
            vals["next"] = new.next_allowed(self.pacing, now, retry_after_s)
            sets.append("#n = :next")
        else:
            new = pace
        if outcome in ("success", "rate_limited"):
            names["#r"] = rate_key(host)
            vals["rate"] = new.rate
            sets.append("#r = :rate")
            if new.ceiling is not None:
                names["#cl"] = ceiling_key(host)
                vals["ceil"] = new.ceiling
                sets.append("#cl = :ceil")
        if proxy_fault:
            vals.setdefault("one", 1)
            adds.append("consecutive_errors :one")
        update = "SET " + ", ".join(sets) + " REMOVE lease_owner" + (" ADD " + ", ".join(adds) if adds else "")
        try:
            got = self.ddb.update_item(
                TableName=self.table,
                Key={"proxy_id": ser(lease.proxy_id)},
                UpdateExpression=update,
                ConditionExpression="lease_owner = :me AND fence = :f",
                ExpressionAttributeValues=values(**vals),
                ReturnValues="ALL_NEW",
                **({"ExpressionAttributeNames": names} if names else {}),
            )
        except ClientError as e:
            if is_condition_failure(e):
                return  # our lease lapsed and someone else holds the proxy: leave their lease alone
            raise
        rec = de_item(got["Attributes"]) or {}
        self._remember(rec, now)
        if outcome == "rate_limited" and new.ceiling is not None:
            self._share_ceiling(host, new.ceiling)
        if proxy_fault and int(rec.get("consecutive_errors", 0)) >= self.quarantine_after:
            self.set_state(lease.proxy_id, "quarantined", now, {"quarantined_at": now, "checks": 0})

    def _share_ceiling(self, host: str, ceiling: float) -> None:
        """What one proxy learnt of a host's limit starts every other proxy that is new to it (sites limit
        each client address by the same rule), so the pool learns the limit once, not once per proxy."""
        try:
            self.ddb.update_item(
                TableName=self.table,
                Key={"proxy_id": ser(f"{TICKET_PREFIX}{host}")},
                UpdateExpression="SET ceiling = :c",
                ConditionExpression="attribute_not_exists(ceiling) OR ceiling > :c",
                ExpressionAttributeValues=values(c=ceiling),
            )
        except ClientError as e:
            if not is_condition_failure(e):
                raise
        self._hosts.setdefault(host, {})["ceiling"] = ceiling

    # ---- hosts: configuration and what the pool learnt ------------------------------------------------------
    def paces(self, rec: dict[str, Any]) -> dict[str, float]:
        prefix = rate_key("")
        return {k[len(prefix) :]: float(v) for k, v in rec.items() if k.startswith(prefix)}

    def cooldowns(self, rec: dict[str, Any], now: float) -> dict[str, float]:
        prefix, out = next_key(""), {}
        for key, value in rec.items():
            if key.startswith(prefix) and float(value) > now:
                host = key[len(prefix) :]
                normal_wait = self.pacing.interval(self.pace_of(rec, host).rate) + SAME_SLOT_S
                if float(value) - now > normal_wait:
                    out[host] = float(value)
        return out

    def hosts(self) -> dict[str, dict[str, Any]]:
        rows = self._scan()
        out: dict[str, dict[str, Any]] = {}
        for r in rows:
            rid = str(r.get("proxy_id", ""))
            if rid.startswith(TICKET_PREFIX):
                out.setdefault(rid[len(TICKET_PREFIX) :], {"proxies": {}}).update(
                    {k: r[k] for k in ("start_rate", "max_rate", "ceiling", "t") if k in r}
                )
        for r in rows:
            if not str(r.get("proxy_id", "")).startswith(PROXY_PREFIX):
                continue
            for host, rate in self.paces(r).items():
                out.setdefault(host, {"proxies": {}})["proxies"][r["proxy_id"]] = {
                    "rate": rate,
                    "ceiling": r.get(ceiling_key(host)),
                    "next_at": r.get(next_key(host)),
                    "answer_s": r.get(answer_key(host)),
                }
        return out

    def configure_host(self, host: str, start_rate: float | None, max_rate: float | None, now: float) -> None:
        config = {"start_rate": start_rate, "max_rate": max_rate}
        sets = ["configured_at = :now"] + [f"{k} = :{k}" for k, v in config.items() if v is not None]
        removes = [k for k, v in config.items() if v is None]
        self.ddb.update_item(
            TableName=self.table,
            Key={"proxy_id": ser(f"{TICKET_PREFIX}{host}")},
            UpdateExpression="SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else ""),
            ExpressionAttributeValues=values(now=now, **{k: v for k, v in config.items() if v is not None}),
        )
        self._snapshot_at = -1e18

    def forget_host(self, host: str) -> bool:
        known = False
        try:
            self.ddb.delete_item(
                TableName=self.table,
                Key={"proxy_id": ser(f"{TICKET_PREFIX}{host}")},
                ConditionExpression="attribute_exists(proxy_id)",
            )
            known = True
        except ClientError as e:
            if not is_condition_failure(e):
                raise
        # What was learnt goes; a cooldown still running (`n#`) stays: the site's Retry-After is not forgotten.
        keys = (rate_key(host), ceiling_key(host), answer_key(host))
        for p in self.list_all():
            if any(k in p for k in keys):
                known = True
                try:
                    self.ddb.update_item(
                        TableName=self.table,
                        Key={"proxy_id": ser(p["proxy_id"])},
                        UpdateExpression="REMOVE #r, #c, #a",
                        ConditionExpression="attribute_exists(proxy_id)",
                        ExpressionAttributeNames=dict(zip(("#r", "#c", "#a"), keys, strict=True)),
                    )
                except ClientError as e:
                    if not is_condition_failure(e):
                        raise
        self._snapshot_at = -1e18
        return known

    # ---- the host's waiting line ---------------------------------------------------------------------------
    def take_ticket(self, host: str, now: float, earliest: float) -> float:
        usable = [p for p in self._proxies(now) if p.get("state") == "available"]
        capacity = sum(self.pace_of(p, host).rate for p in usable) or self.pacing.default_rate
        gap = 1.0 / capacity
        start = max(now, earliest)
        key = {"proxy_id": ser(f"{TICKET_PREFIX}{host}")}
        try:
            self.ddb.update_item(
                TableName=self.table,
                Key=key,
                UpdateExpression="SET t = :s",
                ConditionExpression="attribute_not_exists(t) OR t < :s",
                ExpressionAttributeValues=values(s=start),
            )
            return start
        except ClientError as e:
            if not is_condition_failure(e):
                raise
        got = self.ddb.update_item(
            TableName=self.table,
            Key=key,
            UpdateExpression="ADD t :g",
            ExpressionAttributeValues=values(g=gap),
            ReturnValues="UPDATED_NEW",
        )
        return max(start, float(de_item(got["Attributes"])["t"]))  # type: ignore[index]

    def set_state(self, proxy_id: str, state: str, now: float, extra: dict[str, Any] | None = None) -> None:
        names = {"#st": "state"}
        vals: dict[str, Any] = {"st": state, "now": now}
        sets = ["#st = :st", "state_changed_at = :now"]
        for i, (k, v) in enumerate((extra or {}).items()):
            names[f"#x{i}"] = k
            vals[f"x{i}"] = v
            sets.append(f"#x{i} = :x{i}")
        try:
            self.ddb.update_item(
                TableName=self.table,
                Key={"proxy_id": ser(proxy_id)},
                UpdateExpression="SET " + ", ".join(sets),
                ConditionExpression="attribute_exists(proxy_id)",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values(**vals),
            )
        except ClientError as e:
            if not is_condition_failure(e):
                raise
        self._snapshot_at = -1e18
