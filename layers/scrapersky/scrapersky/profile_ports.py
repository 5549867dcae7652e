"""Ports of the profile kind: sessions (cookie jars bound to one tenant, proxy and host), the fetch of one check
with such a jar, and the targets' history, written in the same atomic write as the item's end.
Adapters: adapters/dynamo_sessions.py, adapters/http_check.py, adapters/dynamo_targets.py; fakes in tests/fakes."""

from __future__ import annotations

import abc
from dataclasses import dataclass

from scrapersky.checks import CheckFetch, FinishedCheck, TargetEvent, TargetRecord
from scrapersky.domain.outcomes import FetchFailure
from scrapersky.ports import Applied
from scrapersky.records import ItemEnd, ItemRef


@dataclass(frozen=True)
class Cookie:
    """One cookie of a session's jar, as the site set it (its domain and path decide where it is sent)."""

    name: str
    value: str
    domain: str
    path: str = "/"
    secure: bool = False
    expires: int | None = None


Jar = tuple[Cookie, ...]


@dataclass(frozen=True)
class SessionKey:
    """A session belongs to exactly one (tenant, proxy, host): its cookies never go anywhere else."""

    tenant_id: str
    proxy_id: str
    host: str


@dataclass(frozen=True)
class Session:
    """A stored session: its cookies, how many checks used it (not the warm-up) and when it was opened."""

    cookies: Jar
    uses: int
    created_at: float
    expires_at: float  # created_at + max_age_s: retired then (and removed by TTL or the maintenance sweep)

    def usable(self, now: float, max_uses: int) -> bool:
        return self.uses < max_uses and now < self.expires_at


class SessionStore(abc.ABC):
    """Sessions, readable by any worker: the lease of a proxy covers its sessions (only the holder uses them)."""

    @abc.abstractmethod
    def get(self, key: SessionKey, now: float) -> Session | None:
        """The session, or None when there is none or it expired."""

    @abc.abstractmethod
    def put(self, key: SessionKey, session: Session) -> None:
        """Stores the session (replacing the one before), kept until its `expires_at`."""

    @abc.abstractmethod
    def retire(self, key: SessionKey) -> None:
        """Ends the session and drops its cookies (after max_uses or a block); one already gone is no error."""

    @abc.abstractmethod
    def open_count(self, proxy_id: str, now: float) -> int:
        """How many unexpired sessions the proxy holds, over every tenant and host (never their cookies)."""

    @abc.abstractmethod
    def sweep(self, proxy_id: str, now: float) -> int:
        """Drops the cookies of the proxy's expired sessions (TTL removes their rows): how many it found."""


@dataclass(frozen=True)
class CheckFetched:
    """A check's fetch: what came back, and the jar as the site left it (the one passed in, plus what it set)."""

    fetched: CheckFetch | FetchFailure
    cookies: Jar


class CheckFetcher(abc.ABC):
    """The fetch of one check, under the same SSRF guard and caps as a page, with a session's cookies: sent to
    the hosts they belong to, on every redirect hop, through this proxy only."""

    @abc.abstractmethod
    def fetch_check(self, url: str, proxy_url: str, timeout_s: float, max_bytes: int, cookies: Jar) -> CheckFetched:
        """Fetches `url` with `cookies`; the body is decoded to text, every redirect hop listed."""


@dataclass(frozen=True)
class TargetKey:
    tenant_id: str
    check: str
    target: str


@dataclass(frozen=True)
class HistoryEnd:
    """An item's end and what it does to its target's history: both are written together or not at all."""

    applied: Applied
    event: TargetEvent | None = None


class TargetHistory(abc.ABC):
    """Each (tenant, check, target)'s record."""

    @abc.abstractmethod
    def finish(
        self, ref: ItemRef, token: str, end: ItemEnd, now: float, shard_last: int | None, key: TargetKey,
        finished: FinishedCheck, detected: bool,
    ) -> HistoryEnd:  # fmt: skip
        """Ends the item as ItemStore.finish does and, in the same atomic write, applies `finished` to the target's
        record (checks.apply_check; counted in the batch's `detected` when `detected`). A lost item change (a
        redelivery) changes no record and fires no event."""

    @abc.abstractmethod
    def record(self, key: TargetKey, finished: FinishedCheck, now: float) -> TargetEvent | None:
        """Applies a check that is no batch item (POST /scrape) to the target's record: the event it fires."""

    @abc.abstractmethod
    def get(self, key: TargetKey) -> TargetRecord | None: ...

    @abc.abstractmethod
    def list(
        self, tenant_id: str, check: str, active: bool | None, limit: int, cursor: str | None
    ) -> tuple[list[TargetRecord], str | None]:
        """The check's targets ordered by target. Raises InvalidCursor for a cursor we did not give out."""

    @abc.abstractmethod
    def known_check(self, tenant_id: str, check: str) -> bool:
        """Whether the tenant has a target record under this check name."""
