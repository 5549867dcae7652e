"""Pacing per (proxy, host): how fast one proxy may hit one host, learnt from the host's answers.

As TCP does with its window: until the first 429 the rate grows fast (slow start); a 429 cuts it
sharply, honours Retry-After, and remembers a ceiling just below the rate that was refused (TCP's
ssthresh), so the pace settles right under what the site allows instead of knocking on its limit again
and again. After a cut the rate climbs back to the ceiling in a few successes (the ceiling is already
below the refused rate; a slow climb only wastes the site's allowance). The ceiling creeps up slowly so
a site that relaxes is noticed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


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
    way_back_s: float = 0.005  # the least time an answer is assumed to take on its way back
    answer_smoothing: float = 0.2  # weight of the latest answer time in the usual one (moving average)

    def interval(self, rate: float) -> float:
        return 1.0 / max(self.min_rate, rate)

    def under_known_limit(self, limit: float) -> HostPace:
        """The pace for a site whose limit per address is known (configured): a step under it, since no
        request reaches the site exactly on time and at the limit itself every late-early pair is a 429."""
        rate = max(self.min_rate, min(self.max_rate, limit * self.ceiling_step))
        return HostPace(rate=rate, ceiling=rate)


@dataclass(frozen=True)
class HostPace:
    rate: float
    ceiling: float | None = None
    answer_s: float | None = None  # the usual time from sending a request to its answer (moving average)

    def after_success(self, policy: PacingPolicy) -> HostPace:
        if self.ceiling is None:  # nothing refused yet: probe fast
            return replace(self, rate=min(policy.max_rate, self.rate * policy.slow_start))
        ceiling = min(policy.max_rate, self.ceiling * policy.ceiling_creep)
        rate = min(self.rate * policy.recovery, ceiling)
        return replace(self, rate=rate, ceiling=ceiling)

    def after_rate_limit(self, policy: PacingPolicy) -> HostPace:
        if self.ceiling is None:  # overshoot in slow start: the limit lies somewhere below, keep a margin
            ceiling = self.rate * policy.ceiling_margin
        else:  # refused at the learnt limit (often timing jitter): the limit is just below, step down a little
            ceiling = min(self.ceiling, self.rate) * policy.ceiling_step
        return replace(
            self, rate=max(policy.min_rate, self.rate * policy.decrease), ceiling=max(policy.min_rate, ceiling)
        )

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
