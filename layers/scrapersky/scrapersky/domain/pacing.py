"""Pacing per (proxy, host): how fast one proxy may hit one host, learnt from the host's answers.

As TCP does with its window: until the first 429 the rate grows fast (slow start); a 429 cuts it
sharply, honours Retry-After, and remembers a ceiling just below the rate that was refused (TCP's
ssthresh), so the pace settles right under what the site allows instead of knocking on its limit again
and again. After a cut the rate climbs back to the ceiling in a few successes (the ceiling is already
below the refused rate; a slow climb only wastes the site's allowance). The ceiling creeps up slowly so
a site that relaxes is noticed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Protocol


class HostTerms(Protocol):
    """What the pool was told of a host and what it learnt of it as a whole (a HostRecord is one)."""

    @property
    def rate(self) -> float | None: ...  # the site's known limit per address (requests/s per proxy)

    @property
    def max_rate(self) -> float | None: ...  # requests/s per proxy never exceeded

    @property
    def ceiling(self) -> float | None: ...  # learnt by one proxy, shared with the ones new to the host


@dataclass(frozen=True)
class PacingPolicy:
    default_rate: float = 1.0  # requests/s per proxy for a host we know nothing about
    min_rate: float = 0.02
    max_rate: float = 50.0
    slow_start: float = 1.5  # until the first 429 the rate grows by this factor per success (TCP slow start)
    recovery: float = 1.25  # afterwards, the rate grows by this factor per success, up to the ceiling
    decrease: float = 0.7  # the rate is multiplied by this after a 429
    ceiling_margin: float = 0.85  # the ceiling is set this far below a refused rate
    ceiling_step: float = 0.97  # a refusal at (or under) the ceiling lowers it this much
    ceiling_creep: float = 1.0003  # the ceiling rises this much with each success
    # A refusal this few successes after the previous one: the ceiling was an overshoot (a site with a burst lets
    # slow start run far past its rate), so the rate the site admitted between the two refusals bounds it instead.
    overshoot_successes: int = 12
    way_back_s: float = 0.005  # the least time an answer is assumed to take on its way back
    answer_smoothing: float = 0.2  # weight of the latest answer time in the usual one (moving average)
    same_slot_s: float = 0.05  # slots this close together are the same; a wait beyond the pace plus this is a cooldown
    keep_s: float = 6 * 3600.0  # what a proxy learnt of a host it has not asked for this long is forgotten

    def interval(self, rate: float) -> float:
        return 1.0 / max(self.min_rate, rate)

    def under_known_limit(self, limit: float) -> HostPace:
        """The pace for a site whose limit per address is known (configured): a step under it, since no
        request reaches the site exactly on time and at the limit itself every late-early pair is a 429."""
        rate = max(self.min_rate, min(self.max_rate, limit * self.ceiling_step))
        return HostPace(rate=rate, ceiling=rate)

    def pace_of(
        self, learnt: HostPace | None, host: HostTerms | None = None, leader: HostPace | None = None
    ) -> HostPace:
        """The proxy's own learnt pace for the host; a proxy new to the host starts from what the pool
        learnt of it (the host's ceiling), else from the host's configured rate, else from the default
        rate. Never faster than the host's configured `max_rate`. `leader`: the pace of the proxy that probes
        the host for the pool while nothing is known of it (see `following`)."""
        if learnt is not None:
            pace = self.following(self.with_pool_ceiling(learnt, host), host, leader)
        elif host is not None and host.ceiling is not None:
            pace = HostPace(rate=host.ceiling, ceiling=host.ceiling)
        elif host is not None and host.rate is not None:
            pace = self.under_known_limit(host.rate)
        else:
            pace = HostPace(rate=self.default_rate)
        return self.capped(pace, host)

    def following(self, pace: HostPace, host: HostTerms | None, leader: HostPace | None) -> HostPace:
        """While the pool knows no limit for the host, one proxy (the leader) probes it in slow start and the others
        follow a step behind: when the leader overshoots, the others have not, and they take the ceiling it learnt
        (the pool's) instead of each paying a 429 of its own. Never slower than the default rate."""
        if leader is None or pace.ceiling is not None or (host is not None and host.ceiling is not None):
            return pace
        # the pace a lease reads grows once more when its answer comes (after_answer): two steps here, one there
        behind = leader.rate / self.slow_start**2 if leader.ceiling is None else leader.ceiling
        return replace(pace, rate=min(pace.rate, max(self.default_rate, behind)))

    def with_pool_ceiling(self, pace: HostPace, host: HostTerms | None) -> HostPace:
        """What one proxy learnt of the host slows the others down before they overshoot too: a proxy still in slow
        start, or whose own ceiling lies well above the pool's (an overshoot, not a slow creep), takes the pool's.
        A proxy whose ceiling crept a little past the pool's keeps its own: the site may have relaxed."""
        shared = None if host is None else host.ceiling
        if shared is None or (pace.ceiling is not None and pace.ceiling * self.ceiling_margin <= shared):
            return pace
        return replace(pace, rate=min(pace.rate, shared), ceiling=shared)

    def capped(self, pace: HostPace, host: HostTerms | None) -> HostPace:
        """Never faster than the host's `max_rate`, nor above a step under its configured limit (`rate`):
        the ceiling does not creep past what the operator said the site allows."""
        if host is None:
            return pace
        if host.rate is not None:
            limit = self.under_known_limit(host.rate).rate
            ceiling = limit if pace.ceiling is None else min(pace.ceiling, limit)
            pace = replace(pace, rate=min(pace.rate, limit), ceiling=ceiling)
        if host.max_rate is not None and pace.rate > host.max_rate:
            pace = replace(pace, rate=host.max_rate)
        return pace

    # ---- slots: when a proxy may next send the host a request ------------------------------------------------
    @staticmethod
    def opens_at(next_at: float | None, now: float) -> float:
        """When the proxy's slot for the host opens: its booked next start, or now if that has passed."""
        return max(now, next_at or 0.0)

    def slot_after(self, start: float, pace: HostPace) -> float:
        """The slot a lease books for the request after the one starting at `start`."""
        return start + self.interval(pace.rate)

    def is_cooldown(self, next_at: float, pace: HostPace, now: float) -> bool:
        """A next slot further off than the pace alone would put it: the site pushed back (Retry-After)."""
        return next_at - now > self.interval(pace.rate) + self.same_slot_s

    def forget_at(self, now: float, next_at: float | None) -> float:
        """When an unused (proxy, host) pace may be forgotten: `keep_s` after its last use, and never before a
        running cooldown (the site's Retry-After) has ended."""
        return max(now, next_at or 0.0) + self.keep_s

    def capacity(self, paces: Iterable[HostPace]) -> float:
        """Requests/s a set of proxies can send one host at these paces (the default rate if there are none)."""
        return sum(p.rate for p in paces) or self.default_rate

    # ---- what a released lease teaches ------------------------------------------------------------------------
    def after_answer(self, pace: HostPace, host: HostTerms | None, sent: float, answered: float) -> Learnt:
        """A useful answer: a little faster (capped), the usual answer time updated.

        The slot booked at lease time used a container's snapshot of the pace, which may be stale; only the
        lease holder writes the pace, so here it is exact: the next slot is fixed with it, counted from when
        the request reached the site (`sent` is when it really left the worker)."""
        new = self.capped(pace.after_success(self), host).with_answer_time(self, max(0.0, answered - sent))
        return Learnt(new, pace.reached_at(self, sent, answered) + self.interval(new.rate))

    def after_failure(self, pace: HostPace, sent: float, answered: float, cool_s: float | None = None) -> Learnt:
        """A request went out and failed: the pace stays, the next slot still counts from its arrival. A block
        (a profile check refused: that proxy, not the pool, is unwelcome) cools the proxy for `cool_s` too."""
        next_at = pace.reached_at(self, sent, answered) + self.interval(pace.rate)
        return Learnt(pace, max(next_at, answered + (cool_s or 0.0)))

    def after_refusal(self, pace: HostPace, now: float, retry_after_s: float | None) -> Learnt:
        """The site pushed back: much slower, Retry-After honoured, and the new ceiling shared with the pool
        (sites limit each client address by the same rule, so the pool learns the limit once)."""
        new = pace.after_rate_limit(self, now)
        return Learnt(new, new.next_allowed(self, now, retry_after_s), shared_ceiling=new.ceiling)


@dataclass(frozen=True)
class HostPace:
    rate: float
    ceiling: float | None = None
    answer_s: float | None = None  # the usual time from sending a request to its answer (moving average)
    refused_at: float | None = None  # when the host last refused this proxy
    since_refusal: int = 0  # the answers the host gave this proxy since

    def after_success(self, policy: PacingPolicy) -> HostPace:
        since = self.since_refusal + 1
        if self.ceiling is None:  # nothing refused yet: probe fast
            return replace(self, rate=min(policy.max_rate, self.rate * policy.slow_start), since_refusal=since)
        ceiling = min(policy.max_rate, self.ceiling * policy.ceiling_creep)
        rate = min(self.rate * policy.recovery, ceiling)
        return replace(self, rate=rate, ceiling=ceiling, since_refusal=since)

    def after_rate_limit(self, policy: PacingPolicy, now: float | None = None) -> HostPace:
        if self.ceiling is None:  # overshoot in slow start: the limit lies somewhere below, keep a margin
            ceiling = self.rate * policy.ceiling_margin
        else:  # refused at the learnt limit (often timing jitter): the limit is just below, step down a little
            ceiling = min(self.ceiling, self.rate) * policy.ceiling_step
            admitted = self.admitted_rate(policy, now)
            if admitted is not None:
                ceiling = min(ceiling, admitted)
        return replace(
            self,
            rate=max(policy.min_rate, self.rate * policy.decrease),
            ceiling=max(policy.min_rate, ceiling),
            refused_at=now,
            since_refusal=0,
        )

    def admitted_rate(self, policy: PacingPolicy, now: float | None) -> float | None:
        """Refused again soon after a refusal: what the host let through in between, per second. A limiter that
        refuses when a client's budget is spent had spent it at both refusals, so what it admitted in between
        (this request's share counted) is what it allows: a far better bound than a ceiling an overshoot set.
        None when the refusals are too far apart to say (a refusal at a well-tried ceiling is jitter)."""
        if now is None or self.refused_at is None or self.since_refusal >= policy.overshoot_successes:
            return None
        return (self.since_refusal + 1) / max(policy.same_slot_s, now - self.refused_at)

    def reached_at(self, policy: PacingPolicy, sent: float, answered: float) -> float:
        """When the request most likely reached the site, which counts its pace from then. The usual answer
        time is the site thinking and the way back; what a request took beyond it was spent on the way in
        (a cold connection, a busy proxy), so the next request counts from later. A site that always takes
        long to answer therefore does not slow the pace, and a hiccup on the way in does not bring a 429."""
        usual = max(policy.way_back_s, self.answer_s or 0.0)
        return max(sent, answered - usual)

    def with_answer_time(self, policy: PacingPolicy, took_s: float) -> HostPace:
        if self.answer_s is None:
            return replace(self, answer_s=took_s)
        a = policy.answer_smoothing
        return replace(self, answer_s=(1 - a) * self.answer_s + a * took_s)

    def next_allowed(self, policy: PacingPolicy, now: float, retry_after_s: float | None) -> float:
        """When this proxy may hit the host again after a 429: never inside the site's Retry-After window."""
        return now + max(policy.interval(self.rate), retry_after_s or 0.0)


@dataclass(frozen=True)
class Learnt:
    """What a release stores of one (proxy, host): the pace and when the proxy may next send the host a request;
    after a refusal, also the ceiling every proxy new to the host should start from."""

    pace: HostPace
    next_at: float
    shared_ceiling: float | None = None
