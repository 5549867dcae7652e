"""The host book's part that sets a host's limits: what an operator configures and what a robots.txt asked
(ports.py holds the rest of the book: its hosts, forgetting one, the waiting line)."""

from __future__ import annotations

import abc
from dataclasses import dataclass

from scrapersky.ports import HostBook


@dataclass(frozen=True)
class HostConfig:
    """What an operator tells the pool of a host (PUT /hosts/{host}), all in requests/s."""

    rate: float | None = None  # the site's limit per address: proxies new to the host start a step under it
    max_rate: float | None = None  # per proxy, never exceeded
    total_rate: float | None = None  # summed over every proxy, never exceeded


class HostLimitBook(HostBook):
    @abc.abstractmethod
    def configure(self, host: str, config: HostConfig, now: float) -> None:
        """Replaces the host's configuration: proxies that have learnt nothing of it start at `rate` (the site's
        limit per address); no proxy goes faster than `max_rate`, nor the whole pool faster than `total_rate`."""

    @abc.abstractmethod
    def learn_crawl_delay(self, host: str, delay_s: float | None, now: float, read_at: float) -> None:
        """What the host's robots.txt, just read by a request that started at `read_at`, asks: `delay_s` seconds
        between two requests across the pool, counted from that request, in force for CRAWL_DELAY_KEEP_S from now;
        None (it asks nothing) drops a delay learnt before."""

    @abc.abstractmethod
    def book_again(self, host: str, gap_s: float, now: float) -> float:
        """A new slot on the host's line across the pool (`gap_s` apart), for a lease whose slot passed before its
        request could leave (its claim took long, its container woke late): when the request may start."""
