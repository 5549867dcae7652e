"""`profile`: does the target's page carry the marker right now? One check, one unit of work, through the leased
proxy with a session bound to (tenant, proxy, host): opened on first use by fetching `warmup_url` through that
proxy, its cookies sent through that proxy only, retired after `max_uses` checks, `max_age_s` or a block.

The outcome is checks.classify_check's: present, absent and not_found end the item; a 429 defers (the session is
kept); a block retires the session and cools the proxy for the host, and the check retries elsewhere."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from pydantic import ValidationError

from scrapersky.checks import (
    CheckFetch,
    CheckOutcome,
    CheckSpec,
    InvalidTargetName,
    check_target,
    classify_check,
    target_url,
)
from scrapersky.domain.outcomes import FetchFailure, FetchResponse, Outcome, OutcomeKind, classify
from scrapersky.domain.progress import iso_at
from scrapersky.domain.targets import InvalidTarget, NormalisedItems, TargetPolicy, normalise_each, normalise_page
from scrapersky.errors import InvalidInput
from scrapersky.kinds.base import KindProcessor, Processed, Unit
from scrapersky.models import BatchOptions, WorkMessage
from scrapersky.ports import Fetcher, Lease
from scrapersky.profile_ports import CheckFetcher, Jar, Session, SessionKey, SessionStore
from scrapersky.records import BatchRecord

CHECKED_AT = "_checked_at"  # the epoch time of the fetch the state was read from (kept out of the shown result)


def check_spec(options: dict[str, Any] | BatchOptions) -> CheckSpec:
    """The batch's check spec. Raises InvalidInput (422) when it is missing or invalid."""
    raw = options.check if isinstance(options, BatchOptions) else options.get("check")
    if raw is None:
        message = "options.check is required for kind profile"
        raise InvalidInput(message, [{"field": "options.check", "message": message}])
    try:
        return CheckSpec.model_validate(raw)
    except ValidationError as e:
        details = [
            {"field": ".".join(("options", "check", *map(str, err["loc"]))), "message": err["msg"]}
            for err in e.errors(include_url=False)
        ]
        raise InvalidInput(f"options.check is invalid: {details[0]['message']}", details) from None


@dataclass(frozen=True)
class CheckJob:
    """One check's view of what it runs with: the spec, the target and, once bound (services/profile_items.py
    and the lease), the session store, the fetcher and the proxy the session belongs to."""

    spec: CheckSpec
    target: str
    tenant_id: str
    sessions: SessionStore | None = None
    fetcher: CheckFetcher | None = None
    proxy_id: str | None = None
    pace_gap_s: float = 0.0  # the proxy's interval for the host: a warm-up and its check are two paced requests
    sleep: Callable[[float], None] | None = None


class ProfileProcessor(KindProcessor):
    kind = "profile"

    def normalise(self, raw_items: Iterable[str], options: BatchOptions, policy: TargetPolicy) -> NormalisedItems:
        spec = check_spec(options)
        urls = {"options.check.url": target_url(spec, "t"), "options.check.session.warmup_url": spec.session.warmup_url}
        for name, url in urls.items():
            try:
                if url:
                    normalise_page(url, policy)  # the SSRF rules, before anything is created
            except InvalidTarget as e:
                message = f"{name}: {e}"
                raise InvalidInput(message, [{"field": name, "message": str(e)}]) from None
        return normalise_each(raw_items, _target_name)

    def unit_for(self, msg: WorkMessage, batch: BatchRecord) -> Unit:
        spec = check_spec(batch.options)
        job = CheckJob(spec, msg.item, batch.tenant_id)
        return Unit(target_url(spec, msg.item), msg.timeout_s, msg.max_bytes, job=job)

    def through(self, unit: Unit, held: Lease) -> Unit:
        gap = 1.0 / held.pace.rate if held.pace is not None and held.pace.rate > 0 else 0.0
        return replace(unit, job=replace(unit.job, proxy_id=held.proxy_id, pace_gap_s=gap))

    def process(self, unit: Unit, fetcher: Fetcher, proxy_url: str, now: Callable[[], float]) -> Processed:
        job: CheckJob = unit.job
        check = _Check(unit, job, proxy_url, now)
        return Processed(check.run(), sent_at=check.sent_at)

    def render(self, result: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if result is None else {k: v for k, v in result.items() if k != CHECKED_AT}


def _target_name(raw: str) -> str:
    try:
        return check_target(raw)
    except InvalidTargetName as e:
        raise InvalidTarget(str(e)) from None


class _Check:
    """One check through one proxy: its session found or opened, the page fetched, the session kept or retired."""

    def __init__(self, unit: Unit, job: CheckJob, proxy_url: str, now: Callable[[], float]) -> None:
        assert job.sessions is not None and job.fetcher is not None and job.proxy_id is not None
        self.unit, self.job, self.spec = unit, job, job.spec
        self.sessions, self.fetcher = job.sessions, job.fetcher
        self.proxy_url, self.now = proxy_url, now
        self.key = SessionKey(job.tenant_id, job.proxy_id, unit.host)
        self.deadline = now() + unit.timeout_s
        self.sent_at: float | None = None  # set when a warm-up went first: when the profile request left

    def run(self) -> Outcome:
        session = self._session()
        if isinstance(session, Outcome):
            return session
        got = self.fetcher.fetch_check(
            self.unit.url, self.proxy_url, self._left(), self.unit.max_bytes, session.cookies
        )
        at = self.now()
        o = classify_check(self.spec, got.fetched, at)
        if o.block:
            self.sessions.retire(self.key)
        elif not isinstance(got.fetched, FetchFailure):
            self._keep(replace(session, cookies=got.cookies, uses=session.uses + 1))
        return _outcome(o, self.key.proxy_id, at)

    def _left(self) -> float:
        return max(1.0, self.deadline - self.now())

    def _session(self) -> Session | Outcome:
        """The proxy's usable session for the host, else a new one (warmed up when the spec says how)."""
        now = self.now()
        found = self.sessions.get(self.key, now)
        if found is not None and found.usable(now, self.spec.session.max_uses):
            return found
        if found is not None:
            self.sessions.retire(self.key)
        cookies: Jar = ()
        warmup = self.spec.session.warmup_url
        if warmup:
            got = self.fetcher.fetch_check(warmup, self.proxy_url, self._left(), self.unit.max_bytes, ())
            refused = _warmup_refused(got.fetched, self.now())
            if refused is not None:
                return refused
            cookies = got.cookies
            self._space_after_warmup()
        return Session(cookies, 0, now, now + self.spec.session.max_age_s)

    def _space_after_warmup(self) -> None:
        """The warm-up took the lease's paced slot: the profile request waits one interval of the proxy's pace (a
        site counts both; back to back, the second was a 429 that taught the pool a pace below the site's)."""
        if self.job.sleep is not None and self.job.pace_gap_s > 0:
            self.job.sleep(min(self.job.pace_gap_s, max(0.0, self.deadline - self.now() - 1.0)))
        self.sent_at = self.now()

    def _keep(self, session: Session) -> None:
        if session.usable(self.now(), self.spec.session.max_uses):
            self.sessions.put(self.key, session)
        else:
            self.sessions.retire(self.key)


def _warmup_refused(fetched: CheckFetch | FetchFailure, now: float) -> Outcome | None:
    """A warm-up that did not open a session: a rate limit defers, anything else retries as an attempt."""
    if isinstance(fetched, FetchFailure):
        return classify(fetched, now)
    status = fetched.status_code
    if status == 429 or (status == 503 and fetched.retry_after):
        answer = FetchResponse(status, fetched.final_url, fetched.content_type, 0, 0, retry_after=fetched.retry_after)
        return replace(classify(answer, now), result=None)
    if status >= 400:
        return Outcome(OutcomeKind.TRANSIENT, code="warmup_failed", message=f"the warm-up page answered {status}")
    return None


def _outcome(o: CheckOutcome, proxy_id: str, at: float) -> Outcome:
    result = None
    if o.succeeded and o.state is not None:
        result = {
            "state": o.state.value,
            "status_code": o.status_code,
            "final_url": o.final_url,
            "evidence": o.evidence,
            "proxy_id": proxy_id,
            "checked_at": iso_at(at),
            CHECKED_AT: at,
        }
    return Outcome(
        o.kind,
        proxy_fault=o.proxy_fault,
        code=o.code,
        message=o.message,
        http_status=o.status_code,
        retry_after_s=o.retry_after_s,
        result=result,
    )
