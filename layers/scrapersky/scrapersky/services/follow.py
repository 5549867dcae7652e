"""`options.follow`: once discovery of a sitemap batch ends, its URLs become one child `page` batch.

The parent does not end when its last item does (lifecycle.finish_if_done asks `holds`): a chain of fan-out messages
`follow` takes over, one page of the parent's URLs at a time (`follow_page_urls`), so no invocation holds more than
a page:
1. `collect` reads a page of the parent's URLs in listing order. Each is claimed for the batch (FollowStore.claim: a
   URL another item's listing claimed is a duplicate), judged by the robots.txt the batch read for its host (unless
   `robots: ignore`), and the rest get the next child seqs, up to `limit`. A redelivered page finds its own claims
   again and, in the same order, assigns the same seqs. The page's child items are kept as chunks.
2. The last `collect` creates the child (exact total, one client token: a replay gets the same batch) and records
   `child_batch_id` on the parent; `send` then sends the kept chunks as the child's ordinary fan-out `chunk`s, a few
   per message (the child is pending: its items go to work as they are written).
3. Then the follow is `done` and the parent ends through finish_if_done as any batch. No URL: no child.
A parent cancelled meanwhile stops the chain: no child is created after that."""

from __future__ import annotations

from typing import Any

from scrapersky.follow_ports import CANCELLED, DONE, ENDED, FAILED, FOLLOWING, KeptRobots, robots_host
from scrapersky.models import ACTIVE_BATCH, BatchStatus, FanoutMessage, FollowState
from scrapersky.records import BatchRecord, ItemError, ItemRef
from scrapersky.services import lifecycle
from scrapersky.services.batches import chunk_items, new_batch_id, shard_totals
from scrapersky.services.context import Deps
from scrapersky.sitemap_ports import DiscoveredUrl
from scrapersky.sitemaps import FollowOptions, RobotsFile

NOT_FOLLOWED = ItemError(
    "poison_message", "the follow could not store this item and was moved to the dead-letter queue"
)


def options_of(batch: BatchRecord) -> FollowOptions | None:
    raw = batch.options.get("follow") if batch.kind == "sitemap" else None
    return None if raw is None else FollowOptions.model_validate(raw)


def holds(deps: Deps, batch: BatchRecord) -> bool:
    """Every item of `batch` is finished: True while its follow keeps it open (the follow is begun here, once)."""
    if options_of(batch) is None or _ended(batch):
        return False
    if batch.follow is None:
        # sent before it is marked: a crash in between leaves no parent that never ends (a second chain is harmless)
        _send(deps, batch, FollowState(), None)
        deps.follow.begin(batch.batch_id, {"state": FOLLOWING})
    return True


def _ended(batch: BatchRecord) -> bool:
    return (batch.follow or {}).get("state") in ENDED


def _send(deps: Deps, batch: BatchRecord, state: FollowState, cursor: str | None, first_seq: int = 0) -> None:
    msg = FanoutMessage(
        type="follow", batch_id=batch.batch_id, tenant_id=batch.tenant_id, cursor=cursor, first_seq=first_seq
    )
    deps.queue.send_fanout([msg.model_copy(update={"follow": state})])


def handle(deps: Deps, msg: FanoutMessage, batch: BatchRecord) -> str:
    opts = options_of(batch)
    state = msg.follow.model_copy() if msg.follow else FollowState()  # counted on a copy: the message is as received
    if opts is None or _ended(batch):
        return "not_followed"  # a chain that already ended (a redelivered or doubled step)
    if state.phase == "send":
        return _send_chunks(deps, msg, batch, state)  # the child exists: it gets every item, whatever the parent does
    if batch.status not in ACTIVE_BATCH:
        return _stopped(deps, batch, state, opts)  # cancelled: a batch that follows ends only once its follow did
    return _collect(deps, msg, batch, state, opts)


def _stopped(deps: Deps, batch: BatchRecord, state: FollowState, opts: FollowOptions) -> str:
    """The parent was cancelled while its URLs were collected: no child, and its view says so."""
    deps.follow.record(batch.batch_id, _view(state, CANCELLED, opts), None)
    return "not_followed"


def _collect(deps: Deps, msg: FanoutMessage, batch: BatchRecord, state: FollowState, opts: FollowOptions) -> str:
    page = deps.settings.follow_page_urls
    urls, cursor = deps.urls.page(batch.batch_id, range(batch.total_items), page, msg.cursor)
    taken = _judge(deps, batch, state, opts, urls)
    now = deps.clock.now()
    for first, part in chunk_items(taken, deps.settings.chunk_items):
        deps.follow.save_chunk(batch.batch_id, state.followed + first, part, now)
    state.followed += len(taken)
    if cursor and state.followed < opts.limit:
        _send(deps, batch, state, cursor)
        return "follow_collected"
    return _seal(deps, batch, state, opts)


def _judge(
    deps: Deps, batch: BatchRecord, state: FollowState, opts: FollowOptions, urls: list[DiscoveredUrl]
) -> list[str]:
    """The page's URLs that become child items, in order, within `limit`; duplicates and disallowed ones counted.
    Claims go in waves no larger than the room left, so no URL past `limit` is claimed."""
    robots = _Robots(deps, batch.batch_id) if opts.robots == "obey" else None
    taken: list[str] = []
    rest = urls
    while rest and state.followed + len(taken) < opts.limit:
        room = opts.limit - state.followed - len(taken)
        wave, rest = rest[:room], rest[room:]
        for u, new in zip(wave, deps.follow.claim(batch.batch_id, [(u.url, u.item) for u in wave]), strict=True):
            if not new:
                state.duplicates += 1
            elif robots is not None and not robots.allowed(u):
                state.skipped_robots += 1
            else:
                taken.append(u.url)
    return taken


def _seal(deps: Deps, batch: BatchRecord, state: FollowState, opts: FollowOptions) -> str:
    """Every URL judged: the child is created with its exact total (or none at all), then its chunks go out."""
    if state.followed == 0:
        return _done(deps, batch, state)
    now = deps.clock.now()
    current = deps.batches.get(batch.batch_id)
    if current is None or _ended(current):
        return "not_followed"  # a doubled chain's step: the other one ended the follow
    if current.status not in ACTIVE_BATCH:
        return _stopped(deps, current, state, opts)  # cancelled while this page was collected
    totals = shard_totals(state.followed, deps.settings.counter_shards_max, deps.settings.counter_shard_items)
    child = BatchRecord(
        batch_id=new_batch_id(now),
        tenant_id=batch.tenant_id,
        kind=opts.kind,
        status=BatchStatus.PENDING,
        total_items=state.followed,
        shards=len(totals),
        created_at=now,
        updated_at=now,
        options=opts.options,
        fanout_sent=True,  # its chunks are kept and sent by this chain, not by the sweeper
        parent_batch_id=batch.batch_id,
    )
    child, _ = deps.batches.create(child, totals, f"follow:{batch.batch_id}", take_group=False)
    if child.parent_batch_id != batch.batch_id:  # the tenant used this token for a batch of its own
        raise RuntimeError(f"client token follow:{batch.batch_id} names batch {child.batch_id}, not a child")
    state.child_batch_id = child.batch_id
    state.phase = "send"
    deps.follow.record(batch.batch_id, _view(state, FOLLOWING, opts), child.batch_id)
    _send(deps, batch, state, None, first_seq=0)
    return "follow_sealed"


def _send_chunks(deps: Deps, msg: FanoutMessage, batch: BatchRecord, state: FollowState) -> str:
    child_id = state.child_batch_id or ""
    first = msg.first_seq
    out: list[FanoutMessage] = []
    while first < state.followed and len(out) < deps.settings.follow_send_chunks:
        items = deps.follow.chunk(batch.batch_id, first)
        if not items:
            raise RuntimeError(f"follow of {batch.batch_id}: no kept chunk at {first}")  # retried, then dead-lettered
        out.append(
            FanoutMessage(type="chunk", batch_id=child_id, tenant_id=batch.tenant_id, first_seq=first, items=items)
        )
        first += len(items)
    deps.queue.send_fanout(out)
    if first < state.followed:
        _send(deps, batch, state, None, first_seq=first)
        return "follow_sent"
    return _done(deps, batch, state)


def _done(deps: Deps, batch: BatchRecord, state: FollowState) -> str:
    opts = options_of(batch)
    assert opts is not None
    deps.follow.record(batch.batch_id, _view(state, DONE, opts), state.child_batch_id)
    lifecycle.finish_if_done(deps, batch.batch_id)
    return "follow_done"


def abandon(deps: Deps, batch: BatchRecord, msg: FanoutMessage) -> str:
    """A follow message that went to the dead-letter queue: the follow fails (the parent then ends); a child whose
    chunks were not all sent gets the rest of its items failed, so it ends too."""
    state, opts = msg.follow.model_copy() if msg.follow else FollowState(), options_of(batch)
    if opts is None or _ended(batch):
        return "follow_settled"
    child = deps.batches.get(state.child_batch_id) if state.child_batch_id else None
    if child is not None:
        _fail_unsent(deps, batch, child, msg.first_seq if state.phase == "send" else 0, state.followed)
    view = _view(state, FAILED, opts) | {"error": "a follow step could not be processed (dead-letter queue)"}
    deps.follow.record(batch.batch_id, view, state.child_batch_id)
    return "follow_abandoned"


def _fail_unsent(deps: Deps, parent: BatchRecord, child: BatchRecord, first: int, end: int) -> None:
    while first < end:
        items = deps.follow.chunk(parent.batch_id, first) or [""]  # a chunk never kept: its items one by one
        for seq, item in enumerate(items, start=first):
            ref = ItemRef(child.batch_id, seq, child.shard_of(seq))
            deps.items.fail_from_dead_letter(ref, item, NOT_FOLLOWED, deps.clock.now())
        first += len(items)
    lifecycle.finish_if_done(deps, child.batch_id)


def _view(state: FollowState, where: str, opts: FollowOptions) -> dict[str, Any]:
    """The parent's `follow` block: where it stands and its counts (exact once done)."""
    return {
        "state": where,
        "urls": state.followed,
        "duplicates": state.duplicates,
        "skipped_robots": state.skipped_robots,
        "limit": opts.limit,
        "limit_reached": state.followed >= opts.limit,
        "robots": opts.robots,
    }


class _Robots:
    """The robots.txt the batch read for each host, read once per message; a host never read allows everything."""

    def __init__(self, deps: Deps, batch_id: str) -> None:
        self.deps, self.batch_id = deps, batch_id
        self.files: dict[str, RobotsFile | None] = {}

    def allowed(self, url: DiscoveredUrl) -> bool:
        host = robots_host(url.url)
        if host not in self.files:
            kept: KeptRobots | None = self.deps.follow.robots(self.batch_id, [host]).get(host)
            self.files[host] = kept.file() if kept else None
        robots = self.files[host]
        return robots is None or robots.allowed(url.url, self.deps.settings.robots_user_agent)
