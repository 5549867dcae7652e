"""Fakes of the profile kind's ports: sessions, the check fetcher and the targets' history (whose item end is the
FakeItemStore's, applied with the record under one lock: as atomic as the real transaction)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from scrapersky.checks import CheckFetch, FinishedCheck, TargetEvent, TargetRecord, apply_check
from scrapersky.domain.outcomes import FetchFailure
from scrapersky.ports import Applied
from scrapersky.profile_ports import (
    CheckFetched,
    CheckFetcher,
    Cookie,
    HistoryEnd,
    Jar,
    Session,
    SessionKey,
    SessionStore,
    TargetHistory,
    TargetKey,
)
from scrapersky.records import ItemEnd, ItemRef

from tests.fakes.items import FakeItemStore
from tests.fakes.paging import Cursors
from tests.fakes.recording import Recorder, recorded


class FakeSessionStore(Recorder, SessionStore):
    def __init__(self) -> None:
        super().__init__()
        self.sessions: dict[SessionKey, Session] = {}
        self.opened: list[SessionKey] = []  # every session put for the first time, in order

    @recorded
    def get(self, key: SessionKey, now: float) -> Session | None:
        found = self.sessions.get(key)
        return found if found is not None and now < found.expires_at else None

    @recorded
    def put(self, key: SessionKey, session: Session) -> None:
        if key not in self.sessions or self.sessions[key].created_at != session.created_at:
            self.opened.append(key)
        self.sessions[key] = session

    @recorded
    def retire(self, key: SessionKey) -> None:
        self.sessions.pop(key, None)

    @recorded
    def open_count(self, proxy_id: str, now: float) -> int:
        return sum(1 for k, s in self.sessions.items() if k.proxy_id == proxy_id and now < s.expires_at)

    @recorded
    def sweep(self, proxy_id: str, now: float) -> int:
        gone = [k for k, s in self.sessions.items() if k.proxy_id == proxy_id and now >= s.expires_at]
        for k in gone:
            del self.sessions[k]
        return len(gone)


@dataclass(frozen=True)
class CheckCall:
    url: str
    proxy_url: str
    cookies: Jar


Answer = Callable[[CheckCall], tuple[CheckFetch | FetchFailure, Jar]]


def answer(status: int = 200, body: str = "", url: str = "", **more: object) -> CheckFetch:
    return CheckFetch(status, url, body=body, **more)  # type: ignore[arg-type]


def cookie(name: str, value: str, domain: str) -> Cookie:
    return Cookie(name, value, domain)


@dataclass
class FakeCheckFetcher(CheckFetcher):
    """Answers each URL with its scripted function of the call (URL, proxy, cookies sent)."""

    answers: dict[str, Answer] = field(default_factory=dict)
    calls: list[CheckCall] = field(default_factory=list)

    def script(self, url: str, fn: Answer) -> None:
        self.answers[url] = fn

    def fetch_check(self, url: str, proxy_url: str, timeout_s: float, max_bytes: int, cookies: Jar) -> CheckFetched:
        call = CheckCall(url, proxy_url, cookies)
        self.calls.append(call)
        fetched, jar = self.answers[url](call)
        if isinstance(fetched, CheckFetch) and not fetched.final_url:
            fetched = CheckFetch(**{**fetched.__dict__, "final_url": url})
        return CheckFetched(fetched, jar)


class FakeTargetHistory(Recorder, TargetHistory):
    def __init__(self, items: FakeItemStore) -> None:
        super().__init__()
        self.items = items
        self.records: dict[TargetKey, TargetRecord] = {}
        self._cursors = Cursors()

    @recorded
    def finish(
        self, ref: ItemRef, token: str, end: ItemEnd, now: float, shard_last: int | None, key: TargetKey,
        finished: FinishedCheck, detected: bool,
    ) -> HistoryEnd:  # fmt: skip
        with self.items._lock:
            won = self.items.finish(ref, token, end, now, shard_last)
            if not won:
                return HistoryEnd(Applied(False))
            applied = apply_check(self.records.get(key) or TargetRecord(key.target, key.check), finished)
            self.records[key] = applied.record
            if detected:
                self.items._shard(ref).count(now, detected=1)
            return HistoryEnd(won, applied.event)

    @recorded
    def record(self, key: TargetKey, finished: FinishedCheck, now: float) -> TargetEvent | None:
        applied = apply_check(self.records.get(key) or TargetRecord(key.target, key.check), finished)
        self.records[key] = applied.record
        return applied.event

    @recorded
    def get(self, key: TargetKey) -> TargetRecord | None:
        return self.records.get(key)

    @recorded
    def list(
        self, tenant_id: str, check: str, active: bool | None, limit: int, cursor: str | None
    ) -> tuple[list[TargetRecord], str | None]:
        rows = sorted(
            (r for k, r in self.records.items() if (k.tenant_id, k.check) == (tenant_id, check)),
            key=lambda r: r.target,
        )
        rows = [r for r in rows if active is None or r.active is active]
        return self._cursors.page(f"{tenant_id}/{check}/{active}", rows, lambda r: r.target, limit, cursor)

    @recorded
    def known_check(self, tenant_id: str, check: str) -> bool:
        return any((k.tenant_id, k.check) == (tenant_id, check) for k in self.records)
