"""Pacing per (proxy, host): how fast one proxy may hit one host, learnt from the host's answers.

As TCP does with its window: until the first 429 the rate grows fast (slow start); a 429 cuts it
sharply, honours Retry-After, and remembers a ceiling just below the rate that was refused (TCP's
ssthresh), so the pace settles right under what the site allows instead of knocking on its limit again
and again. After a cut the rate climbs back to the ceiling in a few successes (the ceiling is already
below the refused rate; a slow climb only wastes the site's allowance). The ceiling creeps up slowly so
a site that relaxes is noticed.
"""

from __future__ import annotations

from dataclasses import dataclass


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

    def after_success(self, policy: PacingPolicy) -> HostPace:
        if self.ceiling is None:  # nothing refused yet: probe fast
            return HostPace(rate=min(policy.max_rate, self.rate * policy.slow_start))
        ceiling = min(policy.max_rate, self.ceiling * policy.ceiling_creep)
        rate = min(self.rate * policy.recovery, ceiling)
        return HostPace(rate=rate, ceiling=ceiling)

    def after_rate_limit(self, policy: PacingPolicy) -> HostPace:
        if self.ceiling is None:  # overshoot in slow start: the limit lies somewhere below, keep a margin
            ceiling = self.rate * policy.ceiling_margin
        else:  # refused at the learnt limit (often timing jitter): the limit is just below, step down a little
            ceiling = min(self.ceiling, self.rate) * policy.ceiling_step
        return HostPace(rate=max(policy.min_rate, self.rate * policy.decrease), ceiling=max(policy.min_rate, ceiling))

    def next_allowed(self, policy: PacingPolicy, now: float, retry_after_s: float | None) -> float:
        """When this proxy may hit the host again after a 429: never inside the site's Retry-After window."""
        return now + max(policy.interval(self.rate), retry_after_s or 0.0)
