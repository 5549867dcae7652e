"""`page`: check or scrape one URL (a bare domain becomes https://domain/): status, final URL, title, meta."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from scrapersky.domain.outcomes import classify
from scrapersky.domain.targets import NormalisedItems, TargetPolicy, normalise_each, normalise_page
from scrapersky.kinds.base import KindProcessor, Processed, Unit
from scrapersky.models import BatchOptions
from scrapersky.ports import Fetcher


class PageProcessor(KindProcessor):
    kind = "page"

    def normalise(self, raw_items: Iterable[str], options: BatchOptions, policy: TargetPolicy) -> NormalisedItems:
        return normalise_each(raw_items, lambda raw: normalise_page(raw, policy))

    def process(self, unit: Unit, fetcher: Fetcher, proxy_url: str, now: Callable[[], float]) -> Processed:
        fetched = fetcher.fetch(unit.url, proxy_url, unit.timeout_s, unit.max_bytes)
        return Processed(classify(fetched, now()))
