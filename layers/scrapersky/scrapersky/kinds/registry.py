"""Which kinds this deployment serves: one registry, asked by create, scrape and the worker alike."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from scrapersky.errors import InvalidInput
from scrapersky.kinds.base import KindProcessor


class KindRegistry:
    """Processors by kind, each given or built on first use (a kind's processor and its parsers, e.g. selectolax
    and re2 for profiles, protego and defusedxml for sitemaps, load only in a container that meets that kind)."""

    def __init__(
        self,
        processors: Mapping[str, KindProcessor] | None = None,
        factories: Mapping[str, Callable[[], KindProcessor]] | None = None,
    ) -> None:
        self._processors = dict(processors or {})
        self._factories = dict(factories or {})

    @property
    def served(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys([*self._processors, *self._factories]))

    def get(self, kind: str) -> KindProcessor:
        """The kind's processor; a kind this deployment does not serve is a 422, before anything is created."""
        processor = self._processors.get(kind)
        if processor is None:
            factory = self._factories.get(kind)
            if factory is None:
                message = f"kind '{kind}' is not served by this deployment (served: {', '.join(self.served)})"
                raise InvalidInput(message, [{"field": "kind", "message": message}])
            processor = self._processors[kind] = factory()
        return processor


def _page() -> KindProcessor:
    from scrapersky.kinds.page import PageProcessor

    return PageProcessor()


def _sitemap() -> KindProcessor:
    from scrapersky.kinds.sitemap import SitemapProcessor

    return SitemapProcessor()


def _profile() -> KindProcessor:
    from scrapersky.kinds.profile import ProfileProcessor

    return ProfileProcessor()


def default_registry() -> KindRegistry:
    return KindRegistry(factories={"page": _page, "sitemap": _sitemap, "profile": _profile})
