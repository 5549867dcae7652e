"""options.follow on the fakes: a sitemap batch's URLs, unique across the batch, at most `limit`, robots.txt obeyed
or not, become one child page batch, exactly once whatever is redelivered."""

from __future__ import annotations

from typing import Any

from scrapersky.models import BatchStatus
from scrapersky.records import BatchRecord
from scrapersky.services import batches, dead_letters, fanout, worker

from tests.fakes import FakeDeps, Streamed, make_deps
from tests.unit.seeding import drain, seed_batch
from tests.unit.sitemap_site import ROOT, Site, run, urlset

ROBOTS = b"User-agent: *\nDisallow: /private\n\nUser-agent: Other\nDisallow: /\n\nSitemap: https://s.test/a.xml\n"
PAGES = {
    "/robots.txt": Streamed(ROBOTS),
    "/a.xml": Streamed(urlset("/1", "/2", "/private/3")),
    "/b.xml": Streamed(urlset("/2", "/4", "/private/5")),  # a second item: /2 again, another disallowed URL
}
ITEMS = [ROOT, "https://s.test/b.xml"]


def following(deps: FakeDeps, items: list[str] | None = None, **follow: Any) -> BatchRecord:
    Site(deps, PAGES)
    options = {"max_attempts": 2, "timeout_s": 5.0, "follow": {"options": {"max_attempts": 1}, **follow}}
    return seed_batch(deps, items or ITEMS, kind="sitemap", options=options)


def discover(deps: FakeDeps, batch: BatchRecord) -> None:
    """Runs the batch's discovery to its end: its last item leaves the follow's first message on the queue."""
    run(deps, batch)
    assert deps.batches.batches[batch.batch_id].status in (BatchStatus.PENDING, BatchStatus.PROCESSING)


def child_of(deps: FakeDeps, batch: BatchRecord) -> BatchRecord:
    parent = deps.batches.batches[batch.batch_id]
    assert parent.child_batch_id is not None
    return deps.batches.batches[parent.child_batch_id]


def child_urls(deps: FakeDeps, child: BatchRecord) -> list[str]:
    return [deps.items.record(child.batch_id, seq).item for seq in range(child.total_items)]


def view(deps: FakeDeps, batch: BatchRecord) -> dict[str, Any]:
    return batches.get_batch(deps, batch.tenant_id, batch.batch_id)


def test_the_urls_unique_across_the_batch_and_allowed_by_robots_become_one_child_page_batch():
    deps = make_deps(proxies=2, default_host_rate=50.0)
    batch = following(deps)

    discover(deps, batch)
    drain(deps)

    child = child_of(deps, batch)
    assert sorted(child_urls(deps, child)) == ["https://s.test/1", "https://s.test/2", "https://s.test/4"]
    assert (child.kind, child.tenant_id, child.parent_batch_id) == ("page", batch.tenant_id, batch.batch_id)
    assert child.options == {"max_attempts": 1}
    parent = view(deps, batch)
    assert parent["status"] == "completed" and parent["child_batch_id"] == child.batch_id
    assert parent["skipped_robots"] == 2
    assert parent["follow"] | {} == {
        "state": "done",
        "urls": 3,
        "duplicates": 1,
        "skipped_robots": 2,
        "limit": 1_000_000,
        "limit_reached": False,
        "robots": "obey",
    }
    got = view(deps, child)
    assert got["parent_batch_id"] == batch.batch_id and got["status"] in ("completed", "partial", "failed")
    assert got["succeeded"] + got["failed"] == 3


def test_robots_ignore_follows_what_robots_txt_disallows():
    deps = make_deps(proxies=2, default_host_rate=50.0)
    batch = following(deps, robots="ignore")

    discover(deps, batch)
    drain(deps)

    urls = sorted(child_urls(deps, child_of(deps, batch)))
    assert urls == [f"https://s.test/{p}" for p in ("1", "2", "4", "private/3", "private/5")]
    assert view(deps, batch)["skipped_robots"] == 0
    assert deps.follow.kept == {}  # nothing to obey: no robots.txt kept


def test_the_child_stops_at_limit():
    deps = make_deps(proxies=2, default_host_rate=50.0)
    batch = following(deps, limit=2)

    discover(deps, batch)
    drain(deps)

    child = child_of(deps, batch)
    assert child.total_items == 2 and len(set(child_urls(deps, child))) == 2
    follow = view(deps, batch)["follow"]
    assert (follow["urls"], follow["limit_reached"]) == (2, True)


def test_a_redelivered_follow_page_assigns_the_same_seqs_and_makes_no_second_child_or_item():
    deps = make_deps(proxies=2, default_host_rate=50.0)
    batch = following(deps)
    discover(deps, batch)

    outcomes: list[str] = []
    while deps.queue.fanout:
        for msg in deps.queue.pop_fanout():
            outcomes.append(fanout.handle(deps, msg))
            if msg.type in ("follow", "chunk"):
                outcomes.append(fanout.handle(deps, msg))  # every follow step and child chunk delivered twice
        drain_work_only(deps)

    children = [b for b in deps.batches.batches.values() if b.parent_batch_id == batch.batch_id]
    assert len(children) == 1 and children[0].total_items == 3
    assert sorted(child_urls(deps, children[0])) == ["https://s.test/1", "https://s.test/2", "https://s.test/4"]
    assert len([k for k in deps.items.items if k[0] == children[0].batch_id]) == 3
    assert view(deps, batch)["follow"]["duplicates"] == 1
    assert outcomes.count("follow_done") >= 1


def drain_work_only(deps: FakeDeps) -> None:
    for msg in deps.queue.pop_work():
        worker.process(deps, msg, worker.InvocationCache())


def test_a_parent_cancelled_before_its_follow_creates_no_child():
    deps = make_deps(proxies=2, default_host_rate=50.0)
    batch = following(deps)
    discover(deps, batch)

    batches.cancel_batch(deps, batch.tenant_id, batch.batch_id)
    drain(deps)

    parent = deps.batches.batches[batch.batch_id]
    assert parent.status is BatchStatus.CANCELLED and parent.child_batch_id is None
    assert [b for b in deps.batches.batches.values() if b.kind == "page"] == []


def test_a_parent_cancelled_while_collecting_says_so_and_creates_no_child():
    deps = make_deps(proxies=2, default_host_rate=50.0)
    batch = following(deps)
    discover(deps, batch)
    first = deliver_until(deps, lambda m: m.type == "follow")

    batches.cancel_batch(deps, batch.tenant_id, batch.batch_id)
    assert fanout.handle(deps, first) == "not_followed"
    drain(deps)

    got = view(deps, batch)
    assert (got["status"], got["child_batch_id"], got["follow"]["state"]) == ("cancelled", None, "cancelled")
    assert [b for b in deps.batches.batches.values() if b.kind == "page"] == []


def test_a_parent_cancelled_once_its_child_exists_still_gives_the_child_every_item():
    deps = make_deps(proxies=2, default_host_rate=50.0, chunk_items=1)
    batch = following(deps)
    discover(deps, batch)
    sending = deliver_until(deps, lambda m: m.type == "follow" and m.follow.phase == "send")

    batches.cancel_batch(deps, batch.tenant_id, batch.batch_id)
    fanout.handle(deps, sending)
    drain(deps)

    assert view(deps, batch)["status"] == "cancelled"
    child = view(deps, child_of(deps, batch))
    assert child["status"] in ("completed", "partial", "failed") and child["total_items"] == 3
    assert child["succeeded"] + child["failed"] == 3 and child["cancelled"] == 0  # every item written and fetched


def test_no_url_to_follow_ends_the_parent_without_a_child():
    deps = make_deps(proxies=2, default_host_rate=50.0)
    batch = following(deps, items=["https://s.test/empty.xml"])
    deps.fetcher.default.pages["/empty.xml"] = Streamed(urlset())

    discover(deps, batch)
    drain(deps)

    got = view(deps, batch)
    assert got["status"] == "completed" and got["child_batch_id"] is None
    assert got["follow"]["state"] == "done" and got["follow"]["urls"] == 0
    assert [b for b in deps.batches.batches.values() if b.kind == "page"] == []


def deliver_until(deps: FakeDeps, stop: Any) -> Any:
    """Runs the fan-out and work queues until a fan-out message matches `stop`: it is returned, not handled."""
    while deps.queue.fanout or deps.queue.work:
        for msg in deps.queue.pop_fanout():
            if stop(msg):
                return msg
            fanout.handle(deps, msg)
        drain_work_only(deps)
    raise AssertionError("no such message")


def test_a_dead_lettered_follow_step_fails_the_follow_and_both_batches_still_end():
    deps = make_deps(proxies=2, default_host_rate=50.0, chunk_items=1)
    batch = following(deps)
    discover(deps, batch)
    poison = deliver_until(deps, lambda m: m.type == "follow" and m.follow.phase == "send" and m.first_seq == 0)

    assert dead_letters.handle(deps, poison.model_dump_json()) == "follow_abandoned"
    drain(deps)

    parent = view(deps, batch)
    assert parent["status"] == "completed" and parent["follow"]["state"] == "failed"
    child = view(deps, child_of(deps, batch))
    assert child["status"] == "failed" and child["failed"] == 3 and child["total_items"] == 3


def test_a_batch_without_follow_shows_no_follow_fields():
    deps = make_deps(proxies=2, default_host_rate=50.0)
    Site(deps, PAGES)
    batch = seed_batch(deps, [ROOT], kind="sitemap", options={"max_attempts": 2, "timeout_s": 5.0})

    run(deps, batch)

    got = view(deps, batch)
    assert got["status"] == "completed"
    assert (got["child_batch_id"], got["parent_batch_id"], got["skipped_robots"], got["follow"]) == (None,) * 4
    assert all(m.type != "follow" for m in deps.queue.fanout)  # no follow begun
    assert deps.follow.kept == {}


MANY = {
    "/robots.txt": Streamed(b"User-agent: *\nDisallow: /private\nSitemap: https://s.test/a.xml\n"),
    "/a.xml": Streamed(urlset(*[f"/p/{i}" for i in range(30)], "/private/1")),
    "/b.xml": Streamed(urlset(*[f"/p/{i}" for i in range(20, 40)], "/private/2")),
}


def test_a_follow_over_many_pages_and_chunks_is_exact_and_stops_at_limit_across_pages():
    deps = make_deps(proxies=2, default_host_rate=50.0, follow_page_urls=4, follow_send_chunks=2, chunk_items=3)
    Site(deps, MANY)
    options = {"max_attempts": 2, "timeout_s": 5.0, "follow": {"limit": 35}}
    batch = seed_batch(deps, ITEMS, kind="sitemap", options=options)
    discover(deps, batch)

    outcomes: list[str] = []
    while deps.queue.fanout or deps.queue.work:
        for msg in deps.queue.pop_fanout():
            outcomes.append(fanout.handle(deps, msg))
            if msg.type == "follow" and msg.follow.followed % 2:
                outcomes.append(fanout.handle(deps, msg))  # some steps redelivered, in the middle of the chain
        drain_work_only(deps)

    child = child_of(deps, batch)
    urls = child_urls(deps, child)
    assert len(urls) == len(set(urls)) == child.total_items == 35  # 40 unique allowed URLs, stopped at 35
    assert set(urls) <= {f"https://s.test/p/{i}" for i in range(40)}
    follow = view(deps, batch)["follow"]
    assert (follow["urls"], follow["limit_reached"], follow["state"]) == (35, True, "done")
    assert outcomes.count("follow_collected") >= 10 and outcomes.count("follow_sent") >= 5
    assert len([k for k in deps.items.items if k[0] == child.batch_id]) == 35  # every item written, once


def test_a_late_redelivered_step_after_the_follow_ended_changes_nothing():
    deps = make_deps(proxies=2, default_host_rate=50.0)
    batch = following(deps)
    discover(deps, batch)
    late = deliver_until(deps, lambda m: m.type == "follow")
    fanout.handle(deps, late)
    drain(deps)
    before = view(deps, batch)

    assert fanout.handle(deps, late) == "not_followed"

    assert view(deps, batch)["follow"] == before["follow"] and before["follow"]["state"] == "done"
    assert len([b for b in deps.batches.batches.values() if b.parent_batch_id == batch.batch_id]) == 1
    assert deps.queue.fanout == []
