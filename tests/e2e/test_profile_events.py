"""A story flipped between profile batches (off -> on -> on -> off), each batch with a callback_url on a real
loopback receiver that answers 500 to the first delivery of every event and 200 afterwards: the receiver ends up
with exactly one target.became_active, one target.became_inactive and one batch.finished per batch (de-duplicated
by event_id; the retry carries the same event_id and body), every try signed with the tenant's webhook secret
(checked here with our own HMAC-SHA256, not the service's code)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest

from devstack.social_site import SocialSite, check_spec
from tests.e2e.conftest import dump
from tests.loopback import WebhookReceiver

pytestmark = pytest.mark.e2e

WAIT_S = 300  # the first retry comes ~30 s after a failed try; a bound for a busy machine
FLIPS = (False, True, True, False)


@pytest.fixture(scope="module")
def social() -> Iterator[SocialSite]:
    with SocialSite(profiles=("gina", "hank")) as s:
        yield s


def signed_by(secret: str, header: str, raw: bytes, tolerance_s: float = WAIT_S) -> bool:
    """What an independent receiver checks: `t=<unix s>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`, recent."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    t = parts.get("t", "")
    if not t.isdigit() or abs(time.time() - int(t)) > tolerance_s:
        return False
    expected = hmac.new(secret.encode(), t.encode() + b"." + raw, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts.get("v1", ""))


def by_event_id(receiver: WebhookReceiver) -> dict[str, list[tuple[dict[str, Any], bytes, dict[str, str], int]]]:
    grouped: dict[str, list[tuple[dict[str, Any], bytes, dict[str, str], int]]] = {}
    for got in receiver.events():
        grouped.setdefault(got[0]["event_id"], []).append(got)
    return grouped


def all_accepted(receiver: WebhookReceiver, expected: int) -> bool:
    grouped = by_event_id(receiver)
    return len(grouped) >= expected and all(any(g[3] == 200 for g in tries) for tries in grouped.values())


def test_flips_reach_a_receiver_that_fails_each_first_try_once_each_with_valid_signatures(client, proxies, social):
    secret = client.rotate_webhook_secret()  # a secret this test knows (the stack's tenant may have rotated it)
    check = check_spec(social.base_url, name=f"hooks-{secrets.token_hex(3)}")
    batch_ids = []
    with WebhookReceiver(fail_first_of_each=500) as receiver:
        for on in FLIPS:
            social.set_story("gina", on)
            created = client.submit(
                ["gina", "hank"], kind="profile", options={"check": check}, callback_url=receiver.url
            )
            final = client.wait(created["batch_id"], timeout=WAIT_S, interval=0.5)
            assert final["status"] == "completed", dump(final)
            batch_ids.append(created["batch_id"])
        end = time.monotonic() + WAIT_S
        while not all_accepted(receiver, len(FLIPS) + 2):  # a batch.finished per batch and two flips
            assert time.monotonic() < end, f"every event accepted within {WAIT_S}s: {dump(receiver.events())}"
            time.sleep(0.5)
        time.sleep(3)  # anything sent after a 2xx would show up now
        grouped = by_event_id(receiver)

    for tries in grouped.values():
        assert [status for *_, status in tries][:2] == [500, 200], dump([t[0] for t in tries])
        assert len({raw for _, raw, _, _ in tries}) == 1  # every try of an event sends the same bytes
        assert all(signed_by(secret, headers["X-ScraperSky-Signature"], raw) for _, raw, headers, _ in tries)
        assert not signed_by("another-secret", tries[0][2]["X-ScraperSky-Signature"], tries[0][1])
    bodies = [tries[0][0] for tries in grouped.values()]
    finished = sorted(b["batch_id"] for b in bodies if b["event"] == "batch.finished")
    assert finished == sorted(batch_ids)
    flips = sorted(
        (b["event"], b["check"], b["target"], b["previous_state"], b["state"], b["batch_id"])
        for b in bodies
        if b["event"].startswith("target.")
    )
    assert flips == [
        ("target.became_active", check["name"], "gina", "absent", "present", batch_ids[1]),
        ("target.became_inactive", check["name"], "gina", "present", "absent", batch_ids[3]),
    ], dump(bodies)
    assert len(bodies) == len(FLIPS) + 2  # nothing else: hank never flipped, a first observation is no event
