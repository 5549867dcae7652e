"""The follow's adapter on moto: a URL is claimed once per batch (a redelivered claim by the same item finds its
own), robots.txt kept compactly and judged the same after the round trip, the child's chunks kept and read back,
and the parent's follow state set once and never rolled back once ended."""

from __future__ import annotations

import base64
import random
import zlib

from scrapersky.adapters.dynamo_batches import DynamoBatchStore
from scrapersky.adapters.dynamo_follow import DynamoFollowStore
from scrapersky.follow_ports import MAX_KEPT_RULES, KeptRobots
from scrapersky.models import BatchStatus
from scrapersky.records import BatchRecord

NOW = 1_900_000_000.0
B = "b_00000000000000000001"


def test_a_url_is_claimed_once_per_batch_and_a_redelivered_claim_finds_its_own(ddb):
    store = DynamoFollowStore("batches", ddb)
    urls = [f"https://s.test/{i}" for i in range(40)]
    assert store.claim(B, [(u, "https://s.test/") for u in urls]) == [True] * 40
    assert store.claim(B, [(u, "https://s.test/") for u in urls[:5]]) == [True] * 5  # the same listing again
    assert store.claim(B, [(urls[0], "https://s.test/a.xml"), ("https://s.test/new", "https://s.test/a.xml")]) == [
        False,
        True,
    ]
    assert store.claim("b_00000000000000000002", [(urls[0], "x")]) == [True]  # another batch's follow


def test_robots_txt_is_kept_compactly_and_judges_the_same_after_the_round_trip(ddb):
    store = DynamoFollowStore("batches", ddb)
    body = b"\xef\xbb\xbfUser-agent: ScraperSky # us\nDisallow: /c/\n\nUser-agent: *\nDisallow: /\nSitemap: /s.xml\n"
    store.keep_robots(B, "s.test", KeptRobots.of("https://s.test/robots.txt", 200, body), NOW)
    store.keep_robots(B, "s.test", KeptRobots.of("https://s.test/robots.txt", 500, b""), NOW)  # the first kept wins
    store.keep_robots(B, "down.test", KeptRobots.of("https://down.test/robots.txt", None, b""), NOW)
    kept = store.robots(B, ["s.test", "down.test", "never.test"])
    assert set(kept) == {"s.test", "down.test"}
    robots = kept["s.test"].file()
    assert not robots.allowed("https://s.test/c/1", "ScraperSky")
    assert robots.allowed("https://s.test/a/1", "ScraperSky")
    assert not robots.allowed("https://s.test/a/1", "OtherBot")
    assert not kept["down.test"].file().allowed("https://down.test/a", "ScraperSky")  # unreachable: disallow all


def test_a_huge_robots_txt_keeps_its_first_rules_within_the_item_limit(ddb):
    store = DynamoFollowStore("batches", ddb)
    rng = random.Random(7)
    lines = [f"Disallow: /{base64.urlsafe_b64encode(rng.randbytes(24)).decode()}" for _ in range(16_000)]
    assert len(zlib.compress("\n".join(lines).encode(), 9)) > MAX_KEPT_RULES  # rules that do not compress enough
    body = ("User-agent: *\nDisallow: /first\n" + "\n".join(lines)).encode()
    kept = KeptRobots.of("https://big.test/robots.txt", 200, body)
    assert len(kept.rules) <= MAX_KEPT_RULES
    store.keep_robots(B, "big.test", kept, NOW)
    assert not store.robots(B, ["big.test"])["big.test"].file().allowed("https://big.test/first", "x")


def test_chunks_are_kept_and_the_parent_follow_state_is_set_once(ddb):
    store = DynamoFollowStore("batches", ddb)
    store.save_chunk(B, 0, ["https://s.test/1", "https://s.test/2"], NOW)
    store.save_chunk(B, 0, ["https://s.test/1", "https://s.test/2"], NOW)  # a redelivered page: unchanged
    assert store.chunk(B, 0) == ["https://s.test/1", "https://s.test/2"]
    assert store.chunk(B, 2) == []

    batches = DynamoBatchStore("batches", ddb)
    parent = BatchRecord(B, "t_a", "sitemap", BatchStatus.PROCESSING, 1, 1, NOW, NOW, options={"follow": {}})
    batches.create(parent, [1], None, take_group=False)
    assert store.begin(B, {"state": "following"}) and not store.begin(B, {"state": "following"})
    assert store.record(B, {"state": "following", "urls": 1}, None)
    assert store.record(B, {"state": "done", "urls": 2}, "b_00000000000000000009")
    assert not store.record(B, {"state": "following", "urls": 1}, None)  # a doubled chain's late step
    got = batches.get(B)
    assert got is not None and (got.follow, got.child_batch_id) == (
        {"state": "done", "urls": 2},
        "b_00000000000000000009",
    )
    assert not store.begin("b_00000000000000000003", {"state": "following"})  # no such batch: nothing written
