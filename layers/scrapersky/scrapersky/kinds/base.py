"""What a kind of item is to the service: how its items and options are validated, how one unit of its work
runs through a leased proxy, and how its result is shown.

Every unit of work, whatever the kind, takes the same path (services/leasing.py): lease with the pacing slot
booked, claim, fetch through the proxy, classify, record, release. A processor only knows its own part: it
never leases, claims or writes, so a new kind cannot get the accounting or the pacing wrong. A kind whose item
spans many units (`sub_units`: a sitemap's documents) is handed its item's ledgers in `Unit.job`, bound by the
service to the unit's claim: it reads and writes its item's documents and URLs through them only."""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from scrapersky.domain.host_limits import CrawlDelay
from scrapersky.domain.outcomes import Outcome
from scrapersky.domain.targets import NormalisedItems, TargetPolicy
from scrapersky.models import BatchOptions, WorkMessage
from scrapersky.ports import Fetcher, Lease
from scrapersky.records import BatchRecord


@dataclass(frozen=True)
class Unit:
    """One unit of work: what one leased request fetches, under which caps."""

    url: str
    timeout_s: float
    max_bytes: int
    job: Any = field(default=None, compare=False)  # a sub-unit kind's ledgers, bound to the unit's claim

    @property
    def host(self) -> str:
        """The host the request goes to: what the proxy's pacing slot is booked for."""
        return urlsplit(self.url).hostname or ""


@dataclass(frozen=True)
class Processed:
    """What one unit of work came to: the classified outcome (with the kind's result), any further units of work it
    found (a sitemap index's documents), to be queued before the unit is recorded, and what it learnt of the host."""

    outcome: Outcome
    follow_up: tuple[WorkMessage, ...] = ()
    crawl_delay: CrawlDelay | None = None  # a robots.txt was read: the host's Crawl-delay for us (services/leasing)
    sent_at: float | None = None  # the unit sent the host more than one request: when the last one left (pacing)


class KindProcessor(abc.ABC):
    """One kind of item. Implementations are stateless and shared by every invocation of a container."""

    kind: str
    sub_units: bool = False  # True: an item spans many units of work, each a work message of its own (`unit`)

    @abc.abstractmethod
    def normalise(self, raw_items: Iterable[str], options: BatchOptions, policy: TargetPolicy) -> NormalisedItems:
        """Normalises and validates the items (duplicates dropped, invalid ones rejected with a reason). Raises
        InvalidInput when the options do not suit the kind: then nothing is created."""

    def unit_of(self, msg: WorkMessage) -> Unit:
        """The unit of work a work message stands for."""
        return Unit(msg.item, msg.timeout_s, msg.max_bytes)

    def unit_for(self, msg: WorkMessage, batch: BatchRecord) -> Unit:
        """The unit of work a work message of this batch stands for (a kind whose unit needs the batch's options:
        a profile check's URL)."""
        return self.unit_of(msg)

    def through(self, unit: Unit, held: Lease) -> Unit:
        """The unit as it runs through the held lease (a profile check's session is the proxy's)."""
        return unit

    @abc.abstractmethod
    def process(self, unit: Unit, fetcher: Fetcher, proxy_url: str, now: Callable[[], float]) -> Processed:
        """Runs the unit through the leased proxy and classifies what came back. Never raises for anything the
        target does: a hostile answer is an outcome."""

    def render(self, result: dict[str, Any] | None) -> dict[str, Any] | None:
        """The result as an item shows it (in /batches/{id}/items and POST /scrape)."""
        return result
