"""The short chaos run (`make chaos` is the long one): a batch on a local stack of its own, with the fault hook on
for its Lambda processes, while a worker process is killed mid-item, ~5 % of the AWS calls fail (throttles, 500s,
timeouts after the call applied) and work messages are duplicated and redelivered early. Nothing is lost or
counted twice, the batch ends, no proxy stays leased past the lease time, and the counters agree with the items.

It waits for conditions, never for throughput: the bounds are generous for a busy 2-core machine."""

from __future__ import annotations

import pytest

from bench.chaos import ChaosStack, chaos_run
from devstack.stack import BUILD, MINISTACK

pytestmark = pytest.mark.e2e

ITEMS = 150


@pytest.fixture(scope="module")
def chaos():
    if not (BUILD / "template.yaml").exists() or not MINISTACK.exists():
        pytest.skip("run through `make test`: it builds the app and installs the local stack")
    with ChaosStack(proxies=4, fault_rate=0.05, seed=11) as c:  # its own free ports, stopped at the end
        yield c


def test_nothing_is_lost_or_counted_twice_under_kills_failed_calls_and_duplicates(chaos):
    f = chaos_run(chaos, ITEMS, kills=1, stop_at=0.8, dup_share=0.1, seed=11, timeout_s=240, clean_first=False)
    assert f["kills"] == 1, f
    assert sum(f["aws_faults"].values()) > 0 and f["duplicates"] > 0, f  # the faults really happened
    assert f["lost"] == 0, f
    assert f["double_counted"] == 0, f
    assert f["not_terminal"] == 0, f
    assert f["leased_after_lease_time"] == 0, f
    assert f["mismatches"] == 0, f
    assert f["records"] == ITEMS, f
