"""`options.sitemap` and `options.follow` (API.md, `kind: "sitemap"`), validated at the boundary: invalid → 422 and
nothing created. To be wired into models.BatchOptions; `follow.options` is checked against BatchOptions itself,
imported when validating so that models.py can import this module."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_URLS_PER_ITEM = 1_000_000
MAX_CHILD_ITEMS = 1_000_000  # a child batch's own limit


class SitemapOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_urls: int = Field(default=50_000, ge=1, le=MAX_URLS_PER_ITEM, description="URLs found per item")
    max_depth: int = Field(default=5, ge=1, le=10, description="Depth of the documents read (first ones: 1)")
    max_documents: int = Field(default=1_000, ge=1, le=100_000, description="Documents fetched per item, ok or not")
    same_host: bool = Field(default=True, description="Entries on another host are skipped_foreign")


class FollowOptions(BaseModel):
    """Turns the discovered URLs, unique across the batch, into one child batch of `kind` with `options`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["page"] = "page"
    options: dict[str, Any] = Field(default_factory=dict, description="The child batch's options (page options)")
    limit: int = Field(default=MAX_CHILD_ITEMS, ge=1, le=MAX_CHILD_ITEMS, description="At most this many child items")
    robots: Literal["obey", "ignore"] = Field(default="obey", description="Skip URLs robots.txt disallows")

    @field_validator("options")
    @classmethod
    def _page_options(cls, value: dict[str, Any]) -> dict[str, Any]:
        from scrapersky.models import BatchOptions  # here: models.py will import this module

        BatchOptions.model_validate(value)
        return value
