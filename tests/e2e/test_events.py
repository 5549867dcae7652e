"""Events on the local stack: a real loopback receiver that fails the first delivery (500) and then accepts gets
batch.finished with a valid signature and the same event_id on both tries, the later try signed with the secret
rotated in between; a batch over failing targets that tolerates no failure ends failed, its leftovers cancelled."""

from __future__ import annotations

import json
import time

import pytest
from scrapersky.domain.events import SIGNATURE_HEADER, verify

from tests.loopback import WebhookReceiver

pytestmark = pytest.mark.e2e

WAIT_S = 300  # a bound for a busy machine: every wait returns as soon as its condition holds


def wait_for(condition, what: str) -> None:
    end = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < end, f"{what} within {WAIT_S}s"
        time.sleep(0.5)


def test_a_receiver_that_fails_the_first_try_gets_batch_finished_signed_with_the_secret_of_each_try(
    client, proxies, site
):
    old = client.rotate_webhook_secret()
    assert client.tenant()["webhook_secret"] == "****" + old[-4:]
    with WebhookReceiver(script=[500]) as receiver:
        items = [f"{site.base_url}/page/{i}" for i in range(3)] + [f"{site.base_url}/missing/1"]
        created = client.submit(items, callback_url=receiver.url)
        wait_for(lambda: len(receiver.got) >= 1, "a first try")
        new = client.rotate_webhook_secret()  # the retry (30 s later) is signed with the new secret
        wait_for(lambda: len(receiver.got) >= 2, "a second try")
        time.sleep(2)
        got = list(receiver.got)

    assert [status for _, _, status in got] == [500, 200]  # a 2xx ends it: no third try
    (raw1, headers1, _), (raw2, headers2, _) = got
    first, second = json.loads(raw1), json.loads(raw2)
    assert first["event_id"] == second["event_id"] and first == second
    assert verify(old, headers1[SIGNATURE_HEADER], raw1, time.time(), tolerance_s=WAIT_S)
    assert verify(new, headers2[SIGNATURE_HEADER], raw2, time.time(), tolerance_s=WAIT_S)
    assert not verify(old, headers2[SIGNATURE_HEADER], raw2, time.time(), tolerance_s=WAIT_S)
    view = client.status(created["batch_id"])
    assert (second["event"], second["batch_id"], second["status"], second["reason"]) == (
        "batch.finished", created["batch_id"], "partial", None,
    )  # fmt: skip
    assert {k: second[k] for k in ("total_items", "succeeded", "failed", "cancelled")} == {
        "total_items": 4, "succeeded": 3, "failed": 1, "cancelled": 0,
    }  # fmt: skip
    assert second["results_url"] and view["status"] == "partial"


def test_a_batch_over_failing_targets_that_tolerates_no_failure_ends_failed_with_cancelled_leftovers(
    client, proxies, site
):
    items = [f"{site.base_url}/missing/{i}" for i in range(30)] + [f"{site.base_url}/page/{i}" for i in range(70)]
    created = client.submit(items, options={"tolerated_failure_count": 0, "max_attempts": 1})
    final = client.wait(created["batch_id"], timeout=WAIT_S, interval=0.5)
    assert (final["status"], final["reason"]) == ("failed", "tolerated_failure_exceeded"), final
    assert final["cancelled"] > 0 and final["failed"] >= 1
    assert final["succeeded"] + final["failed"] + final["cancelled"] == 100
    assert final["in_progress"] == final["pending"] == 0  # the counts are final when it turns failed
    cancelled = [i for i in client.items(created["batch_id"], status="cancelled")]
    assert len(cancelled) == final["cancelled"] and all(i["attempts"] == 0 for i in cancelled)  # never fetched
