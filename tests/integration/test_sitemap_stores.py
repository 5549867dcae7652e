"""The sitemap kind's adapters on moto: an item's documents (each once, each change conditional, counted once) and
its discovered URLs (unique per item, paged exactly across partitions)."""

from __future__ import annotations

import pytest
from scrapersky.adapters.dynamo_documents import DynamoItemDocuments
from scrapersky.adapters.dynamo_urls import BUCKETS, TX_MAX, DynamoDiscoveredUrls
from scrapersky.errors import InvalidCursor
from scrapersky.ports import Claim, ClaimRefused
from scrapersky.sitemap_ports import ROBOTS, DiscoveredUrl, DocRef, DocumentEnd, DocumentPlan, Planned
from scrapersky.sitemaps import DocumentCount, Failure

NOW = 1_900_000_000.0
B = "b_00000000000000000001"
ROBOTS_URL = "https://s.test/robots.txt"


def ref(url: str, seq: int = 0) -> DocRef:
    return DocRef(B, seq, DocumentPlan(url).key)


def test_each_document_is_planned_once_per_item_within_max_documents(ddb):
    docs = DynamoItemDocuments("batches", ddb)
    root = DocumentPlan(ROBOTS_URL, 0, ROBOTS)
    docs.begin(B, 0, root, NOW)
    docs.begin(B, 0, root, NOW)  # a redelivered first message changes nothing
    child = DocumentPlan("https://s.test/a.xml", 1, parent=root.key)

    assert docs.plan(B, 0, child, 2, NOW) is Planned.NEW
    assert docs.plan(B, 0, child, 2, NOW) is Planned.OURS  # the same parent again: its unit is sent again
    assert docs.plan(B, 0, DocumentPlan("HTTPS://S.test:443/a.xml#x", 2, parent="other"), 2, NOW) is Planned.READ
    assert docs.plan(B, 0, DocumentPlan("https://s.test/b.xml", 1, parent=root.key), 2, NOW) is Planned.NEW
    assert docs.plan(B, 0, DocumentPlan("https://s.test/c.xml", 1, parent=root.key), 2, NOW) is Planned.FULL
    progress = docs.progress(B, 0)
    assert progress is not None and (progress.open, progress.planned) == (3, 2)


def test_a_document_claimed_finished_and_redelivered_counts_once(ddb):
    docs = DynamoItemDocuments("batches", ddb)
    first = DocumentPlan("https://s.test/a.xml")
    docs.begin(B, 0, first, NOW)
    r = ref(first.url)
    claim = docs.claim(r, "w1", NOW + 90, NOW)
    assert isinstance(claim, Claim) and claim.attempts == 0
    assert docs.claim(r, "w2", NOW + 90, NOW) == ClaimRefused(terminal=False, busy_until=NOW + 90)
    assert docs.requeue(r, "w1", NOW, attempt_spent=True, proxy_id="p_1", error=None)
    claim = docs.claim(r, "w2", NOW + 90, NOW)
    assert isinstance(claim, Claim) and (claim.attempts, claim.last_proxy) == (1, "p_1")

    assert docs.grant(r, "w2", 5, max_urls=3) == 3
    assert docs.grant(r, "w2", 5, max_urls=3) == 0
    count = DocumentCount(first.url, 1, type="urlset", status_code=200, urls=2, duplicates=1)
    progress = docs.finish(r, "w2", DocumentEnd(count), NOW)
    assert progress is not None
    assert (progress.open, progress.urls_found, progress.duplicates, progress.granted) == (0, 2, 1, 2)
    assert progress.documents_ok == 1
    assert docs.finish(r, "w2", DocumentEnd(count), NOW) is None  # counted once
    assert docs.claim(r, "w3", NOW + 90, NOW + 1000) == ClaimRefused(terminal=True)
    assert docs.summaries(B, 0, 10) == [count.summary()]


def test_a_checkpoint_keeps_where_a_document_goes_on_and_spends_no_attempt(ddb):
    docs = DynamoItemDocuments("batches", ddb)
    first = DocumentPlan("https://s.test/big.xml")
    docs.begin(B, 0, first, NOW)
    r = ref(first.url)
    assert isinstance(docs.claim(r, "w1", NOW + 90, NOW), Claim)
    resume = {"pos": 1600, "parts": 1, "count": DocumentCount(first.url, 1, type="urlset", urls=1590).to_dict()}
    assert not docs.checkpoint(r, "w2", resume, NOW)  # not the claim's holder
    assert docs.checkpoint(r, "w1", resume, NOW)
    assert not docs.checkpoint(r, "w1", resume, NOW)  # the claim is given back with it

    rec = docs.get(r)
    assert rec is not None and (rec.status, rec.resume, rec.attempts, rec.deferrals) == ("pending", resume, 0, 0)
    claim = docs.claim(r, "w2", NOW + 90, NOW)  # the next delivery takes it, and finds the checkpoint
    assert isinstance(claim, Claim) and claim.attempts == 0


def test_a_lapsed_claim_is_taken_over_and_a_failed_document_counts_as_failed(ddb):
    docs = DynamoItemDocuments("batches", ddb)
    first = DocumentPlan("https://s.test/a.xml")
    docs.begin(B, 0, first, NOW)
    r = ref(first.url)
    assert isinstance(docs.claim(r, "w1", NOW + 90, NOW), Claim)
    assert isinstance(docs.claim(r, "w2", NOW + 300, NOW + 100), Claim)
    count = DocumentCount(first.url, 1)
    count.finish(404, None, Failure("http_404", "HTTP 404"))
    assert docs.finish(r, "w1", DocumentEnd(count), NOW) is None  # the crashed delivery's claim is gone
    progress = docs.finish(r, "w2", DocumentEnd(count), NOW)
    assert progress is not None and (progress.documents_failed, progress.open) == (1, 0)


def test_a_redirect_hop_to_a_document_the_item_has_is_refused(ddb):
    docs = DynamoItemDocuments("batches", ddb)
    docs.begin(B, 0, DocumentPlan("https://s.test/a.xml"), NOW)
    moved = ref("https://s.test/moved.xml")
    assert not docs.alias(moved, "https://s.test/a.xml", NOW)
    assert docs.alias(moved, "https://s.test/new.xml", NOW)
    assert docs.alias(moved, "https://s.test/new.xml", NOW)  # ours: a redelivery follows it again
    assert not docs.alias(ref("https://s.test/other.xml"), "https://s.test/new.xml", NOW)
    docs.truncate(B, 0, "max_depth")
    docs.truncate(B, 0, "max_depth")
    progress = docs.progress(B, 0)
    assert progress is not None and progress.truncated == {"max_depth"}


def found(url: str, doc: str = "d1", pos: int = 0, seq: int = 0) -> DiscoveredUrl:
    return DiscoveredUrl(url, "https://s.test/a.xml", "s.test", doc, pos, "2024-05", "daily", 0.5)


def test_urls_are_unique_per_item_and_a_redelivered_document_finds_its_own(ddb):
    urls = DynamoDiscoveredUrls("batches", ddb, concurrency=1)  # moto: one transaction at a time
    assert urls.add(B, 0, [found("https://s.test/1", pos=0), found("https://s.test/2", pos=1)]) == [True, True]
    assert urls.add(B, 0, [found("https://s.test/1", pos=0), found("https://s.test/1", pos=5)]) == [True, False]
    assert urls.add(B, 0, [found("https://s.test/2", doc="d2", pos=1)]) == [False]
    assert urls.add(B, 1, [found("https://s.test/2", doc="d2", pos=1)]) == [True]  # another item
    assert urls.listed(B, 0, "https://s.test/1") and not urls.listed(B, 0, "https://s.test/3")


def test_a_document_stored_in_transactions_finds_another_documents_rows_in_any_of_them(ddb):
    """250 URLs (three transactions of at most TX_MAX), of which 7 spread over all three were listed by another
    document first: exactly those are duplicates, their rows stay the other document's, the rest is stored; the
    same document redelivered finds all its own rows again (counted once more, by the caller's single end)."""
    urls = DynamoDiscoveredUrls("batches", ddb, concurrency=1)  # moto: one transaction at a time
    taken = [3, 99, 100, 101, 180, 248, 249]
    assert urls.add(B, 0, [found(f"https://s.test/{i}", doc="other", pos=i) for i in taken]) == [True] * len(taken)
    doc = [found(f"https://s.test/{i}", doc="d1", pos=i) for i in range(250)]
    assert len(doc) > 2 * TX_MAX

    expected = [i not in taken for i in range(250)]
    assert urls.add(B, 0, doc) == expected
    assert urls.add(B, 0, doc) == expected  # a redelivery: its own rows are "ours", the other's still duplicates
    listed, cursor = urls.page(B, range(0, 1), 1000, None)
    assert cursor is None and len(listed) == 250
    owners = {u.url: u.doc for u in listed}
    assert {u for u, d in owners.items() if d == "other"} == {f"https://s.test/{i}" for i in taken}


def test_a_url_listed_twice_in_one_call_is_stored_once(ddb):
    urls = DynamoDiscoveredUrls("batches", ddb, concurrency=1)  # moto: one transaction at a time
    rows = [found(f"https://s.test/{i % 150}", pos=i) for i in range(300)]  # every URL twice, 150 apart
    assert urls.add(B, 0, rows) == [True] * 150 + [False] * 150
    assert urls.add(B, 0, rows) == [True] * 150 + [False] * 150  # redelivered: the same answer


def test_urls_page_exactly_across_buckets_and_items(ddb):
    urls = DynamoDiscoveredUrls("batches", ddb, concurrency=1)  # moto: one transaction at a time
    expected = set()
    for seq in (0, 2):
        rows = [found(f"https://s.test/{seq}/{i}", pos=i) for i in range(23)]
        urls.add(B, seq, rows)
        expected |= {(seq, r.url) for r in rows}
    seen: list[tuple[int, str]] = []
    cursor = None
    for _ in range(100):
        page, cursor = urls.page(B, range(0, 3), 5, cursor)
        assert len(page) <= 5
        seen += [(int(u.url.split("/")[3]), u.url) for u in page]
        if cursor is None:
            break
    assert len(seen) == len(expected) and set(seen) == expected
    assert seen == sorted(seen, key=lambda s: s[0])  # item by item
    one, _ = urls.page(B, range(2, 3), 1000, None)
    assert {u.url for u in one} == {u for s, u in expected if s == 2}
    assert (one[0].lastmod, one[0].changefreq, one[0].priority) == ("2024-05", "daily", 0.5)
    assert BUCKETS > 1
    with pytest.raises(InvalidCursor):
        urls.page(B, range(0, 3), 5, "bm90IGpzb24")


def test_a_batch_of_many_small_items_pages_exactly_whatever_the_page_size(ddb):
    """Most partitions are empty (items of 0 to 2 URLs, 4 buckets each): every page size lists each URL once, in
    order, and a page that read its partitions in waves resumes at the right one."""
    urls = DynamoDiscoveredUrls("batches", ddb, concurrency=1)  # moto: one transaction at a time
    expected: list[tuple[int, str]] = []
    for seq in range(60):
        rows = [found(f"https://s.test/{seq}/{i}", pos=i) for i in range(seq % 3)]
        if rows:
            urls.add(B, seq, rows)
        expected += [(seq, r.url) for r in rows]
    for limit in (1, 2, 3, 7, 1000):
        seen: list[tuple[int, str]] = []
        cursor = None
        for _ in range(500):
            page, cursor = urls.page(B, range(0, 60), limit, cursor)
            assert len(page) <= limit
            seen += [(int(u.url.split("/")[3]), u.url) for u in page]
            if cursor is None:
                break
        assert cursor is None, limit
        assert sorted(seen) == sorted(expected) and len(seen) == len(expected), limit
        assert [s for s, _ in seen] == sorted(s for s, _ in seen), limit  # item by item
