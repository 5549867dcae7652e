"""ProxyPool on DynamoDB: one record per proxy (never one hot pool item), leased by conditional writes.

A lease sets lease_owner/lease_until and bumps a fencing counter in one conditional UpdateItem; release is
conditional on owner and fence, so a crashed worker's lease simply lapses and a late release cannot undo a
newer lease. Per-host cooldowns live in the `cooldowns` map ({host: epoch seconds}); the lease condition
checks the host's slot in the same write.
"""

from __future__ import annotations

import random
from typing import Any

from botocore.exceptions import ClientError

from scrapersky.adapters.ddb import de_item, is_condition_failure, raise_if_retryable, ser, ser_item, values
from scrapersky.errors import LeaseConflict, NoProxyAvailable
from scrapersky.ports import Lease, ProxyPool

SNAPSHOT_TTL_S = 2.0
MAX_CLAIM_TRIES = 4
BUSY_RETRY_S = 1.0


class DynamoProxyPool(ProxyPool):
    def __init__(
        self,
        table_name: str,
        client: Any,
        quarantine_after: int = 3,
        rng: random.Random | None = None,
        no_proxy_retry_s: float = 30.0,
    ) -> None:
        self.no_proxy_retry_s = no_proxy_retry_s
        self.table = table_name
        self.ddb = client
        self.quarantine_after = quarantine_after
        self.rng = rng or random.Random()
        self._snapshot: list[dict[str, Any]] = []
        self._snapshot_at = -1e18
        self.conflicts = 0

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
                    "cooldowns": {},
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
            self._snapshot = self.list_all()
            self._snapshot_at = now
        return self._snapshot

    @staticmethod
    def _free_at(p: dict[str, Any], host: str) -> float:
        return max(float(p.get("lease_until", 0)), float((p.get("cooldowns") or {}).get(host, 0)))

    @staticmethod
    def _expected_free_at(p: dict[str, Any], host: str, now: float) -> float:
        """When this proxy can probably take the host: its cooldown is exact; a lease usually ends long
        before its expiry (which only guards against crashed workers), so a busy proxy is worth a look soon."""
        cooldown = float((p.get("cooldowns") or {}).get(host, 0))
        busy = float(p.get("lease_until", 0)) > now
        return max(cooldown, now + BUSY_RETRY_S) if busy else cooldown

    def lease(self, host: str, owner: str, now: float, lease_s: float, avoid: str | None = None) -> Lease:
        for refresh in (False, True):
            usable = [p for p in self._proxies(now, refresh) if p.get("state") == "available"]
            if not usable:
                continue
            open_now = [p for p in usable if self._free_at(p, host) <= now]
            self.rng.shuffle(open_now)
            open_now.sort(key=lambda p: p.get("proxy_id") == avoid)  # another proxy first, if there is one
            for p in open_now[:MAX_CLAIM_TRIES]:
                try:
                    return self._claim(p["proxy_id"], host, owner, now, lease_s)
                except LeaseConflict:
                    self.conflicts += 1
                    continue
        usable = [p for p in self._snapshot if p.get("state") == "available"]
        retry_at = min((self._expected_free_at(p, host, now) for p in usable), default=now + self.no_proxy_retry_s)
        raise NoProxyAvailable(f"no proxy can take {host} now", retry_at=max(retry_at, now + 0.5))

    def _claim(self, proxy_id: str, host: str, owner: str, now: float, lease_s: float) -> Lease:
        try:
            got = self.ddb.update_item(
                TableName=self.table,
                Key={"proxy_id": ser(proxy_id)},
                UpdateExpression="SET lease_owner = :o, lease_until = :u ADD fence :one",
                ConditionExpression=(
                    "attribute_exists(proxy_id) AND #st = :avail AND lease_until < :now"
                    " AND (attribute_not_exists(cooldowns.#h) OR cooldowns.#h <= :now)"
                ),
                ExpressionAttributeNames={"#st": "state", "#h": host},
                ExpressionAttributeValues=values(o=owner, u=now + lease_s, one=1, avail="available", now=now),
                ReturnValues="ALL_NEW",
            )
        except ClientError as e:
            if is_condition_failure(e):
                raise LeaseConflict(proxy_id) from e
            raise_if_retryable(e)
            raise
        rec = de_item(got["Attributes"]) or {}
        # keep the snapshot honest so the next pick in this container skips a proxy we hold
        for p in self._snapshot:
            if p.get("proxy_id") == proxy_id:
                p.update(rec)
        return Lease(proxy_id=proxy_id, url=rec["url"], fence=int(rec["fence"]), owner=owner)

    def release(
        self, lease: Lease, host: str, now: float, outcome: str, cooldown_s: float | None, proxy_fault: bool
    ) -> None:
        counter = {"success": "succeeded", "rate_limited": "rate_limited", "unused": None}.get(outcome, "failed")
        sets = ["lease_until = :zero"]
        vals: dict[str, Any] = {"zero": 0, "now": now, "one": 1}
        names: dict[str, str] = {}
        adds = []
        if counter:
            names["#c"] = counter
            adds.append("#c :one")
            sets.append("last_used_at = :now")
        if cooldown_s:
            names["#h"] = host
            sets.append("cooldowns.#h = :cool")
            vals["cool"] = now + cooldown_s
        if proxy_fault:
            adds.append("consecutive_errors :one")
        elif outcome == "success":
            sets.append("consecutive_errors = :zero")
            sets.append("last_success_at = :now")
        update = "SET " + ", ".join(sets) + " REMOVE lease_owner" + (" ADD " + ", ".join(adds) if adds else "")
        if "now" not in update:
            vals.pop("now")
        if "one" not in update:
            vals.pop("one")
        try:
            got = self.ddb.update_item(
                TableName=self.table,
                Key={"proxy_id": ser(lease.proxy_id)},
                UpdateExpression=update,
                ConditionExpression="lease_owner = :me AND fence = :f",
                ExpressionAttributeValues=values(**vals, me=lease.owner, f=lease.fence),
                ReturnValues="ALL_NEW",
                **({"ExpressionAttributeNames": names} if names else {}),
            )
        except ClientError as e:
            if is_condition_failure(e):
                return  # our lease lapsed and someone else holds the proxy: leave their lease alone
            raise
        rec = de_item(got["Attributes"]) or {}
        for p in self._snapshot:
            if p.get("proxy_id") == lease.proxy_id:
                p.update(rec)
        if proxy_fault and int(rec.get("consecutive_errors", 0)) >= self.quarantine_after:
            self.set_state(lease.proxy_id, "quarantined", now, {"quarantined_at": now, "checks": 0})

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
