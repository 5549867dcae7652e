"""A limit on one host summed over the whole pool, whichever proxy sends the request.

Per-(proxy, host) pacing (pacing.py) keeps each proxy under what the site allows one address; a site that counts
every request it gets (or asks so in robots.txt, `Crawl-delay`) is not fooled by rotating proxies. Its limit is
kept on the host's row: what the operator set (`total_rate`, requests/s across the pool) and what its robots.txt
asked (`Crawl-delay`: seconds between two requests, kept for a day and refreshed at each read), the stricter
winning. Every lease for such a host books the host's next slot, `next = max(start, next) + 1/rate`, in one
conditional write beside the proxy's own booking; a host without a limit costs nothing more.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

ADMIN = "total_rate"
ROBOTS = "crawl_delay"
MAX_CRAWL_DELAY_S = 86_400.0  # a longer Crawl-delay is read as a day
CRAWL_DELAY_KEEP_S = 24 * 3600.0  # a learnt Crawl-delay holds this long after the robots.txt was last read


@dataclass(frozen=True)
class TotalLimit:
    """The limit in force for a host: requests/s across the pool, and where it comes from."""

    rate: float
    source: str  # ADMIN | ROBOTS

    @property
    def gap_s(self) -> float:
        return 1.0 / self.rate


@dataclass(frozen=True)
class CrawlDelay:
    """What a robots.txt read said of the delay between two requests for our user agent: `seconds`, or None
    when it says nothing (then a delay learnt before no longer holds)."""

    seconds: float | None

    @classmethod
    def of(cls, seconds: float | None) -> CrawlDelay:
        """A Crawl-delay as robots.txt wrote it: 0 (or nonsense) is no delay; past a day it is a day."""
        if seconds is None or not math.isfinite(seconds) or seconds <= 0:
            return cls(None)
        return cls(min(seconds, MAX_CRAWL_DELAY_S))


def total_limit(
    total_rate: float | None, crawl_delay_s: float | None, crawl_delay_until: float | None, now: float
) -> TotalLimit | None:
    """The stricter of the operator's `total_rate` and a learnt Crawl-delay still in force; None: no limit."""
    limits = []
    if total_rate is not None and total_rate > 0:
        limits.append(TotalLimit(total_rate, ADMIN))
    if crawl_delay_s is not None and crawl_delay_s > 0 and (crawl_delay_until or 0.0) > now:
        limits.append(TotalLimit(1.0 / crawl_delay_s, ROBOTS))
    return min(limits, key=lambda limit: limit.rate, default=None)


def host_slot(next_at: float | None, start: float, gap_s: float) -> tuple[float, float]:
    """The host-wide slot a request ready at `start` gets, and the host's next slot after it:
    `max(start, next) + 1/rate` (`gap_s` = 1/rate)."""
    begins = max(start, next_at or 0.0)
    return begins, begins + gap_s


def opens_at(next_at: float | None, now: float, limit: TotalLimit | None) -> float:
    """When the host's next request may start across the pool (now, without a limit)."""
    return now if limit is None else max(now, next_at or 0.0)
