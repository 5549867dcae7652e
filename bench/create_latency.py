"""Benchmark (not a test): how fast POST /batches answers with 10,000 items, and how long the fan-out
takes to write every item record, on the local stack. Prints figures.

    make bench        # or: python -m bench.create_latency --items 10000 --runs 3
"""

from __future__ import annotations

import argparse
import statistics
import time

from scrapersky_client import Client

from devstack.proxies import free_port
from devstack.stack import LocalStack


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    with LocalStack(api_port=free_port()) as stack:
        client = Client(stack.api_url, stack.api_key, timeout=120)
        client.submit(["https://warm.example.com/"], start=False)  # cold starts out of the way
        latencies, fanouts = [], []
        for run in range(args.runs):
            items = [f"https://site{i}.example.com/r{run}" for i in range(args.items)]
            t0 = time.perf_counter()
            created = client.submit(items, start=False)
            latencies.append(time.perf_counter() - t0)
            while True:
                page = client.items_page(created["batch_id"], limit=1000)
                count = len(page["items"])
                cursor = page.get("next_cursor")
                while cursor:
                    page = client.items_page(created["batch_id"], limit=1000, cursor=cursor)
                    count += len(page["items"])
                    cursor = page.get("next_cursor")
                if count >= args.items:
                    break
                time.sleep(0.5)
            fanouts.append(time.perf_counter() - t0)
            client.cancel(created["batch_id"])
            print(
                f"run {run + 1}: POST /batches with {args.items} items answered in {latencies[-1]:.2f}s; "
                f"all item records written after {fanouts[-1]:.1f}s",
                flush=True,
            )
        print(
            f"create latency for {args.items} items: median {statistics.median(latencies):.2f}s "
            f"(min {min(latencies):.2f}s, max {max(latencies):.2f}s) over {args.runs} runs"
        )
        print(
            f"fan-out to item records: median {statistics.median(fanouts):.1f}s "
            f"({args.items / statistics.median(fanouts):.0f} items/s) on the local stack"
        )


if __name__ == "__main__":
    main()
