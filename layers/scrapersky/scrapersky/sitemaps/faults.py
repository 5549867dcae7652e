"""Why a sitemap document failed: the codes a document's `error` carries, and the fault that carries them out of
the reader. A fault ends the document, never the worker: what was parsed before it is kept."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TOO_LARGE = "too_large"  # past the byte cap, raw or after a decompression layer
BAD_GZIP = "bad_gzip"  # corrupt or truncated gzip, or more layers than MAX_GZIP_LAYERS
XML_DTD_FORBIDDEN = "xml_dtd_forbidden"  # a DOCTYPE: where billion laughs and external entities live
XML_ENTITIES_FORBIDDEN = "xml_entities_forbidden"  # an entity declaration or external reference outside a DTD
MALFORMED_XML = "malformed_xml"  # not well-formed, including a document cut short
NOT_SITEMAP = "not_sitemap"  # empty, HTML, or an XML root that is none of urlset/sitemapindex/rss/feed

NO_SITEMAP = "no_sitemap"  # the item's code (not a document's) when discovery found no sitemap at all

DOCUMENT_CODES = frozenset({TOO_LARGE, BAD_GZIP, XML_DTD_FORBIDDEN, XML_ENTITIES_FORBIDDEN, MALFORMED_XML, NOT_SITEMAP})


@dataclass(frozen=True)
class Failure:
    """A document's `error`: a code from DOCUMENT_CODES (or the fetch's own) and a message for people."""

    code: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Failure:
        return cls(data["code"], data["message"])


class DocumentFault(Exception):
    """Raised inside the reader's stages; the reader turns it into the document's Failure."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.failure = Failure(code, message)
