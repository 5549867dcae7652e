"""Lease micro-benchmark (not a test): W concurrent workers, each its own container (own snapshot), leasing
from P proxies for one host on the local stack's DynamoDB. Prints conflicts per lease and lease latency.

    python -m bench.leases --workers 20 --proxies 20 --seconds 15
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

from scrapersky.adapters.dynamo_proxies import DynamoProxyPool
from scrapersky.domain.pacing import PacingPolicy
from scrapersky.errors import NoProxyAvailable
from scrapersky.ports import Release

from devstack.proxies import free_port
from devstack.stack import LocalStack, aws_client

FETCH_S = 0.05  # how long a worker holds a proxy: a quick page


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=20)
    ap.add_argument("--proxies", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=15)
    args = ap.parse_args()
    with LocalStack(api_port=free_port()) as stack:
        ddb = aws_client("dynamodb", stack.endpoint)
        table = stack.outputs["ProxiesTableName"]
        pacing = PacingPolicy(default_rate=1000.0)  # measure contention, not pacing
        setup = DynamoProxyPool(table, ddb, pacing=pacing)
        for i in range(args.proxies):
            setup.add(f"p_bench{i:03d}", f"http://127.0.0.1:{9000 + i}", "x", {}, time.time())
        latencies: list[float] = []
        waits = 0
        pools: list[DynamoProxyPool] = []
        lock = threading.Lock()
        end = time.time() + args.seconds

        def worker(n: int) -> None:
            nonlocal waits
            pool = DynamoProxyPool(table, ddb, pacing=pacing)  # one container each: its own snapshot
            with lock:
                pools.append(pool)
            while time.time() < end:
                t0 = time.perf_counter()
                try:
                    lease = pool.lease("bench.example", f"w{n}", time.time(), 30)
                except NoProxyAvailable:
                    with lock:
                        waits += 1
                    time.sleep(0.01)
                    continue
                took = time.perf_counter() - t0
                with lock:
                    latencies.append(took)
                time.sleep(FETCH_S)
                pool.release(lease, time.time(), Release.SUCCESS)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(args.workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        leases = sum(p.stats["leases"] for p in pools)
        conflicts = sum(p.stats["conflicts"] for p in pools)
        q = statistics.quantiles(latencies, n=20)
        print(
            f"W={args.workers} workers, P={args.proxies} proxies, one host, {args.seconds:g}s: {leases} leases, "
            f"{conflicts} conflicts -> {conflicts / max(1, leases):.3f} conflicts per lease; "
            f"lease latency p50 {statistics.median(latencies) * 1000:.1f} ms, p95 {q[18] * 1000:.1f} ms; "
            f"{waits} times no proxy was free"
        )


if __name__ == "__main__":
    main()
