"""Shapes shared by every layer: constrained types, API bodies and answers, message bodies."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from scrapersky.sitemaps.options import FollowOptions, SitemapOptions

BATCH_ID = re.compile(r"b_[0-9a-z]{20,40}")  # an id we could have given out (time-sortable)
BatchId = Annotated[str, StringConstraints(pattern=f"^{BATCH_ID.pattern}$")]
TenantId = Annotated[str, StringConstraints(pattern=r"^t_[0-9a-z_-]{1,64}$")]
GroupName = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]
Kind = Literal["page", "sitemap", "profile"]

MAX_ITEMS_PER_BATCH = 10_000
MAX_ITEM_LENGTH = 2048


class _Status(StrEnum):
    """A status word. The terminal ones (TERMINAL_BATCH, TERMINAL_ITEM) never change again."""

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_BATCH or self in TERMINAL_ITEM


class BatchStatus(_Status):
    QUEUED = "queued"
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    PARTIAL = "partial"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL_BATCH = frozenset({BatchStatus.COMPLETED, BatchStatus.PARTIAL, BatchStatus.FAILED, BatchStatus.CANCELLED})
ACTIVE_BATCH = (BatchStatus.PENDING, BatchStatus.PROCESSING)  # started and not ended


class ItemStatus(_Status):
    """Where one item stands; succeeded, failed and cancelled never change again."""

    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL_ITEM = frozenset({ItemStatus.SUCCEEDED, ItemStatus.FAILED, ItemStatus.CANCELLED})


class ProxyState(StrEnum):
    AVAILABLE = "available"
    COOLING = "cooling"  # shown only: an available proxy with a running cooldown for some host
    QUARANTINED = "quarantined"
    DISABLED = "disabled"


class BatchOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_attempts: int = Field(default=3, ge=1, le=10, description="Real attempts (not rate-limit deferrals)")
    timeout_s: float = Field(default=20.0, ge=0.1, le=60, description="Total deadline of one fetch")
    max_bytes: int = Field(default=2_000_000, ge=1024, le=10_000_000, description="Byte cap of one download")
    max_wait_s: float = Field(
        default=3600,
        ge=1,
        le=7 * 86_400,
        description="How long an item may wait for a proxy or a rate-limiting site before it fails"
        " (rate_limited or no_proxy): every batch ends",
    )
    sitemap: SitemapOptions | None = Field(default=None, description="kind sitemap: what one item reads")
    # validated by the profile kind (scrapersky.checks.CheckSpec): 422 and nothing created when invalid
    check: dict[str, Any] | None = Field(default=None, description="kind profile (required): the check spec")
    follow: FollowOptions | None = Field(
        default=None, description="kind sitemap: the discovered URLs become one child page batch (services/follow.py)"
    )
    # ---- events: when a batch stops for its failures (services/tolerance.py) ----
    tolerated_failure_pct: float | None = Field(
        default=None, ge=0, le=100, description="the batch fails once more than this % of its finished items failed"
    )
    tolerated_failure_count: int | None = Field(
        default=None, ge=0, description="the batch fails once more than this many items failed"
    )


KIND_OPTIONS = {"sitemap": "sitemap", "follow": "sitemap", "check": "profile"}  # options only one kind reads


def options_for_kind(kind: str, options: BatchOptions) -> None:
    """An option another kind reads is refused (422), not silently ignored: a user who sent it expected an effect."""
    for name, owner in KIND_OPTIONS.items():
        if getattr(options, name) is not None and kind != owner:
            raise ValueError(f"options.{name} applies to kind '{owner}' only, not '{kind}'")


class CreateBatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Kind = "page"
    items: list[Annotated[str, StringConstraints(max_length=MAX_ITEM_LENGTH)]] = Field(
        min_length=1, max_length=MAX_ITEMS_PER_BATCH
    )
    options: BatchOptions = Field(default_factory=BatchOptions)
    group: GroupName | None = None
    start: bool = True
    client_token: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = None
    callback_url: Annotated[str, StringConstraints(min_length=1, max_length=2048)] | None = Field(
        default=None, description="https URL that gets batch.finished (signed), under the SSRF rules of a target"
    )

    @model_validator(mode="after")
    def _options_of_its_kind(self) -> CreateBatchRequest:
        options_for_kind(self.kind, self.options)
        return self


class ScrapeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Kind = "page"
    item: Annotated[str, StringConstraints(min_length=1, max_length=MAX_ITEM_LENGTH)]
    options: BatchOptions = Field(default_factory=BatchOptions)

    @model_validator(mode="after")
    def _options_of_its_kind(self) -> ScrapeRequest:
        options_for_kind(self.kind, self.options)
        return self


class CreateTenantRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9 ._-]+$")]
    role: Literal["tenant", "admin"] = "tenant"


class CreateProxyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Annotated[str, StringConstraints(min_length=8, max_length=512)]
    labels: dict[str, str] = Field(default_factory=dict)


class HostConfigRequest(BaseModel):
    """PUT /hosts/{host}: replaces the host's pacing configuration ({} clears it)."""

    model_config = ConfigDict(extra="forbid")

    # strict: a number, never `true` or "2" taken for one
    rate: float | None = Field(
        default=None, ge=0.02, le=50, strict=True, description="the site's limit per address (requests/s per proxy)"
    )
    max_rate: float | None = Field(
        default=None, ge=0.02, le=50, strict=True, description="requests/s per proxy never exceeded"
    )
    total_rate: float | None = Field(
        default=None,
        strict=True,
        ge=0.00001,
        le=1000,
        allow_inf_nan=False,
        description="requests/s to the host summed over every proxy, never exceeded (a robots.txt Crawl-delay that "
        "asks for less wins); null: no such cap",
    )

    @model_validator(mode="after")
    def _rate_within_cap(self) -> HostConfigRequest:
        if self.rate is not None and self.max_rate is not None and self.rate > self.max_rate:
            raise ValueError("rate must not exceed max_rate")
        return self


class RejectedItem(BaseModel):
    item: str
    reason: str


class ErrorInfo(BaseModel):
    code: str
    message: str


class ItemView(BaseModel):
    item: str
    status: ItemStatus
    attempts: int = 0
    deferrals: int = 0
    http_status: int | None = None
    error: ErrorInfo | None = None
    started_at: str | None = None
    finished_at: str | None = None
    duration_ms: int | None = None
    result: dict[str, Any] | None = None


class WorkMessage(BaseModel):
    """One item to process; the body of a work-queue message."""

    batch_id: str
    tenant_id: str
    seq: int
    shard: int
    kind: Kind
    item: str
    max_attempts: int = 3
    timeout_s: float = 20.0
    max_bytes: int = 2_000_000
    deferrals: int = 0
    max_wait_s: float = 3600
    waiting_since: float | None = None  # set when a deferred item is re-sent as a fresh message
    ticket: float | None = None  # its place in the host's waiting line, kept over a wait longer than SQS allows
    # a kind whose item spans many units of work (sitemap: one per document) names the unit here; None is the
    # item's first message, from the fan-out
    unit: dict[str, Any] | None = None


class ExportState(BaseModel):
    """Where a results export stands: its open uploads (format -> upload id), the next part to write, and when
    it was asked for (an export waits for a cancelled batch's last running items, up to a bound)."""

    uploads: dict[str, str] = Field(default_factory=dict)
    part: int = 1
    requested_at: float = 0.0
    waits: int = 0


class FollowState(BaseModel):
    """Where following a sitemap batch's URLs into its child stands (services/follow.py): `collect` pages through
    the parent's URLs from the message's cursor, `send` sends the child's kept chunks from `first_seq`."""

    phase: Literal["collect", "send"] = "collect"
    followed: int = 0  # child items assigned so far: the next one's seq
    duplicates: int = 0
    skipped_robots: int = 0
    child_batch_id: str | None = None


class FanoutMessage(BaseModel):
    """A fan-out queue message: write a chunk of items, dispatch a started batch, sweep a cancelled one,
    export an ended batch's results (page by page from `cursor`), or follow a sitemap batch into its child."""

    type: Literal["chunk", "dispatch", "cancel", "export", "follow"]
    batch_id: str
    tenant_id: str
    first_seq: int = 0
    items: list[str] = Field(default_factory=list)
    cursor: str | None = None
    export: ExportState | None = None
    follow: FollowState | None = None


# ---- events (services/events.py, services/event_delivery.py) ----------------------------------------------------
class EventMessage(BaseModel):
    """An events-queue message: one event for its destinations (`webhook`: the callback URL, `bus`: EventBridge).

    `body` is None for a batch.finished not yet rendered: the consumer renders it once the batch's counts are final,
    then keeps it, so every try sends the same event. `attempt` counts webhook tries made; `first_try_at` starts the
    24 h retry window; `next_try_at` holds a wait longer than SQS's 900 s delay."""

    event: str
    event_id: str
    tenant_id: str
    batch_id: str | None = None
    callback_url: str | None = None
    destinations: list[Literal["webhook", "bus"]] = Field(default_factory=list)
    body: dict[str, Any] | None = None
    attempt: int = 0
    first_try_at: float | None = None
    next_try_at: float | None = None
    waits: int = 0  # times rendering waited for a cancelled batch's running items
