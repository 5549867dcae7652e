"""Which kinds this deployment serves: one registry, asked by create, scrape and the worker alike."""

from __future__ import annotations

from collections.abc import Mapping

from scrapersky.errors import InvalidInput
from scrapersky.kinds.base import KindProcessor
from scrapersky.kinds.page import PageProcessor
from scrapersky.kinds.profile import ProfileProcessor
from scrapersky.kinds.sitemap import SitemapProcessor


class KindRegistry:
    def __init__(self, processors: Mapping[str, KindProcessor]) -> None:
        self._processors = dict(processors)

    @property
    def served(self) -> tuple[str, ...]:
        return tuple(self._processors)

    def get(self, kind: str) -> KindProcessor:
        """The kind's processor; a kind this deployment does not serve is a 422, before anything is created."""
        processor = self._processors.get(kind)
        if processor is None:
            message = f"kind '{kind}' is not served by this deployment (served: {', '.join(self.served)})"
            raise InvalidInput(message, [{"field": "kind", "message": message}])
        return processor


def default_registry() -> KindRegistry:
    return KindRegistry({"page": PageProcessor(), "sitemap": SitemapProcessor(), "profile": ProfileProcessor()})
