"""Chaos run (not a test): a batch on the local stack while workers die, AWS calls fail and messages are duplicated
and redelivered early. Prints what must stay zero, and how long recovery takes.

    python -m bench.chaos --items 2000 --kills 5 --fault-rate 0.05      # make chaos

One local stack (ministack running the built template) with SCRAPERSKY_FAULTS set for its Lambda processes, a
loopback site and loopback proxies (hosts configured fast, so throughput is not the bottleneck). First a clean
batch (the fault switch off), then the same size under faults:
(a) WorkerFunction processes killed mid-item (the busiest one, by CPU, SIGKILL) as the batch passes set points;
(b) `fault-rate` of the DynamoDB and SQS calls of every handler fail (scrapersky/faults.py: throttling, 500s, and a
    timeout after the call was applied, which botocore retries);
(c) work messages duplicated (a copy sent straight to the work queue) and redelivered early (received by the run,
    so in flight, then made visible again at once, or after 3 s as a stalled consumer would).
Faults stop once every kill is done and `--stop-at` of the items are terminal; the batch must then end.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import signal
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scrapersky_client.client import Client

from devstack.proxies import free_port, start_proxies
from devstack.site import Site
from devstack.stack import LocalStack, aws_client, log

TERMINAL = {"completed", "partial", "failed", "cancelled"}
LEASE_S = 90.0  # the template's lease time (Settings.lease_seconds): a dead worker's proxy lease lapses by then


@dataclass
class Faults:
    """What was done to the run, and when the last of it happened."""

    kills: list[float] = field(default_factory=list)
    duplicates: int = 0
    early: int = 0
    last_queue_fault: float = 0.0
    aws: Counter = field(default_factory=Counter)
    last_aws_fault: float = 0.0

    @property
    def last(self) -> float:
        return max([self.last_queue_fault, self.last_aws_fault, *self.kills])


class ChaosStack:
    """The local stack with the fault hook armed (inert until the switch file exists), its site and proxies."""

    def __init__(self, proxies: int, fault_rate: float, seed: int, worker_concurrency: int = 4) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="scrapersky-chaos-"))
        self.switch = self.dir / "faults.on"
        self.fault_log = self.dir / "faults.log"
        spec = f"rate={fault_rate},seed={seed},log={self.fault_log},switch={self.switch}"
        self.stack = LocalStack(
            api_port=free_port(),
            api_key="chaos-tenant-key",
            admin_key="chaos-admin-key",
            worker_concurrency=worker_concurrency,
            handler_env={"SCRAPERSKY_FAULTS": spec},
            state_dir=self.dir,
        )
        self.n_proxies = proxies
        self.servers: list[Any] = []
        self.site = Site(rate=10_000.0, burst=10_000.0)

    def __enter__(self) -> ChaosStack:
        try:
            self.stack.start()
            self.site.start()
            self.servers = start_proxies(self.n_proxies, log_dir=None)
            self.admin = Client(self.stack.api_url, self.stack.admin_key)
            self.client = Client(self.stack.api_url, self.stack.api_key)
            for p in self.servers:
                self.admin.add_proxy(p.url, {"source": p.source_ip})
            self.admin.configure_host("localhost", rate=50.0, max_rate=50.0)
        except BaseException:
            self.__exit__()
            raise
        self.sqs = aws_client("sqs", self.stack.endpoint)
        self.ddb = aws_client("dynamodb", self.stack.endpoint)
        self.work_url = self.stack.outputs["WorkQueueUrl"]
        return self

    def __exit__(self, *exc: object) -> None:
        for p in self.servers:
            p.stop()
        with contextlib.suppress(Exception):
            self.site.stop()
        self.stack.stop()

    def urls(self, n: int, tag: str) -> list[str]:
        return [f"{self.site.base_url}/page/{tag}-{i}" for i in range(n)]

    def faults_on(self, on: bool) -> None:
        if on:
            self.switch.touch()
        else:
            self.switch.unlink(missing_ok=True)

    def aws_faults(self, faults: Faults) -> None:
        lines = self.fault_log.read_text().split("\n") if self.fault_log.exists() else []
        rows = [line.split() for line in lines if line.strip()]
        faults.aws = Counter(r[3] for r in rows)
        faults.last_aws_fault = max((float(r[0]) for r in rows), default=0.0)

    def kills_that_hit(self) -> int:
        text = (self.dir / "ministack.log").read_text(errors="replace")
        return text.count("failed processing SQS batch")


def busiest_worker(stack: LocalStack) -> int | None:
    def ticks(pid: int) -> int:
        with contextlib.suppress(OSError, IndexError, ValueError):
            f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            return int(f[11]) + int(f[12])
        return -1

    pids = stack.handler_pids("WorkerFunction")
    before = {p: ticks(p) for p in pids}
    time.sleep(0.3)
    busy = sorted(((ticks(p) - t, p) for p, t in before.items() if t >= 0), reverse=True)
    return busy[0][1] if busy and busy[0][0] > 0 else None


def progress(client: Client, batch_id: str) -> tuple[float, dict[str, Any]]:
    st = client.status(batch_id)
    done = st["succeeded"] + st["failed"] + st["cancelled"]
    return done / max(1, st["total_items"]), st


def run_faults(
    chaos: ChaosStack, batch_id: str, kills: int, stop_at: float, dup_share: float, seed: int
) -> tuple[Faults, float]:
    """Injects faults until every kill is done and `stop_at` of the items are terminal; returns when it stopped."""
    faults, rng = Faults(), random.Random(seed)
    points = [0.05 + (stop_at - 0.15) * i / max(1, kills - 1) for i in range(kills)]
    stop = threading.Event()
    total = progress(chaos.client, batch_id)[1]["total_items"]

    def duplicator() -> None:
        budget = int(total * dup_share)
        while not stop.is_set() and faults.duplicates + faults.early < budget:
            with contextlib.suppress(Exception):
                got = chaos.sqs.receive_message(QueueUrl=chaos.work_url, MaxNumberOfMessages=4, VisibilityTimeout=3)
                for m in got.get("Messages", []):
                    chaos.sqs.send_message(QueueUrl=chaos.work_url, MessageBody=m["Body"])
                    faults.duplicates += 1
                    if rng.random() < 0.5:  # early redelivery of a message in flight; else back after 3 s
                        chaos.sqs.change_message_visibility(
                            QueueUrl=chaos.work_url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0
                        )
                        faults.early += 1
                    faults.last_queue_fault = time.time()
            stop.wait(0.2 + rng.random() * 0.4)

    dup = threading.Thread(target=duplicator, daemon=True)
    chaos.faults_on(True)
    dup.start()
    while True:
        share, st = progress(chaos.client, batch_id)
        if st["status"] in TERMINAL or (len(faults.kills) >= kills and share >= stop_at):
            break
        if len(faults.kills) < kills and share >= points[len(faults.kills)]:
            pid = busiest_worker(chaos.stack)
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                    faults.kills.append(time.time())
                    log(f"killed worker process {pid} at {share:.0%}")
        time.sleep(0.3)
    chaos.faults_on(False)
    stop.set()
    dup.join(10)
    return faults, time.time()


def wait_terminal(client: Client, batch_id: str, timeout_s: float) -> tuple[bool, float]:
    end = time.time() + timeout_s
    while time.time() < end:
        _, st = progress(client, batch_id)
        if st["status"] in TERMINAL and st["in_progress"] == 0 and st["pending"] == 0:
            return True, time.time()
        time.sleep(0.5)
    return False, time.time()


def audit(chaos: ChaosStack, batch_id: str) -> dict[str, int]:
    """Counters against item records: lost (an item with no terminal record), double-counted (counters above the
    terminal records), mismatches (per status, |counter - records|)."""
    st = chaos.client.status(batch_id)
    items = list(chaos.client.items(batch_id))
    by_status = Counter(i["status"] for i in items)
    terminal = sum(by_status[s] for s in ("succeeded", "failed", "cancelled"))
    counted = st["succeeded"] + st["failed"] + st["cancelled"]
    keys = ("succeeded", "failed", "cancelled", "in_progress", "pending")
    return {
        "lost": st["total_items"] - terminal,
        "double_counted": max(0, counted - terminal),
        "mismatches": sum(abs(st[k] - by_status[k]) for k in keys),
        "records": len(items),
        "failed_items": by_status["failed"],
    }


def held_leases(chaos: ChaosStack, at: float, end: float) -> tuple[int, list[str]]:
    """Leases still held at `at` (>= the batch's end and the last kill + the lease time) that were taken before the
    batch ended: a lease the pool would keep past its time. Also lists every lease held then (its owner names the
    item: `token:batch:seq`), e.g. one a late duplicate delivery took after the end, which is no leak."""
    table = chaos.stack.outputs["ProxiesTableName"]
    names = {"#o": "lease_owner", "#u": "lease_until"}
    got = chaos.ddb.scan(TableName=table, ProjectionExpression="proxy_id, #o, #u", ExpressionAttributeNames=names)
    held = [
        (r["lease_owner"]["S"], float(r["lease_until"]["N"]))
        for r in got["Items"]
        if "lease_owner" in r and float(r.get("lease_until", {}).get("N", "0")) > at
    ]
    stale = sum(1 for _owner, until in held if until - LEASE_S <= end)
    return stale, [f"{owner} (taken {until - LEASE_S - end:+.1f} s after the end)" for owner, until in held]


def chaos_run(
    chaos: ChaosStack,
    items: int,
    kills: int,
    stop_at: float,
    dup_share: float,
    seed: int,
    timeout_s: float,
    clean_first: bool = True,
) -> dict[str, Any]:
    """A clean batch (unless not `clean_first`), then one under faults; the figures of both."""
    t0 = time.time()
    clean = chaos.client.submit(chaos.urls(items, "clean"))["batch_id"] if clean_first else None
    clean_ok, clean_end = wait_terminal(chaos.client, clean, timeout_s) if clean else (True, t0)
    t1 = time.time()
    batch = chaos.client.submit(chaos.urls(items, "chaos"))["batch_id"]
    faults, _off = run_faults(chaos, batch, kills, stop_at, dup_share, seed)
    ok, end = wait_terminal(chaos.client, batch, timeout_s)
    chaos.aws_faults(faults)
    last_kill = max(faults.kills, default=end)
    settle = max(end, last_kill + LEASE_S) + 1  # a dead worker's lease lapses within the lease time
    time.sleep(max(0.0, settle - time.time()))
    stale, held = held_leases(chaos, time.time(), end)
    figures = audit(chaos, batch)
    clean_figures = audit(chaos, clean) if clean else {"lost": 0}
    return {
        **figures,
        "not_terminal": int(not ok) + int(not clean_ok),
        "leased_after_lease_time": stale,
        "held_leases": held,
        "clean_lost": clean_figures["lost"],
        "clean_s": clean_end - t0,
        "chaos_s": end - t1,
        "after_last_fault_s": end - faults.last,
        "after_last_kill_s": end - last_kill,
        "kills": len(faults.kills),
        "kills_hit": chaos.kills_that_hit(),
        "aws_faults": dict(faults.aws),
        "duplicates": faults.duplicates,
        "early": faults.early,
    }


def report(items: int, fault_rate: float, f: dict[str, Any]) -> str:
    return "\n".join(
        [
            f"chaos run: {items} items; {f['kills']} worker processes SIGKILLed ({f['kills_hit']} invocations died "
            f"mid-batch); {sum(f['aws_faults'].values())} AWS calls failed at {fault_rate:.0%} {f['aws_faults']}; "
            f"{f['duplicates']} duplicated messages, {f['early']} redelivered early",
            f"  items lost                          {f['lost']}",
            f"  items double-counted                {f['double_counted']}",
            f"  batches not terminal                {f['not_terminal']}",
            f"  proxies leased after the lease time {f['leased_after_lease_time']}  (held then: {f['held_leases']})",
            f"  counter vs item-record mismatches   {f['mismatches']}",
            f"  time to terminal: clean {f['clean_s']:.1f} s, under faults {f['chaos_s']:.1f} s",
            f"  from the last fault to terminal     {f['after_last_fault_s']:.1f} s "
            f"(from the last kill {f['after_last_kill_s']:.1f} s)",
            f"  ({f['failed_items']} items ended failed, {f['records']} item records)",
        ]
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--items", type=int, default=2000)
    ap.add_argument("--kills", type=int, default=5)
    ap.add_argument("--fault-rate", type=float, default=0.05)
    ap.add_argument("--duplicates", type=float, default=0.1, help="share of items duplicated or redelivered early")
    ap.add_argument("--stop-at", type=float, default=0.9, help="faults stop once this share of items is terminal")
    ap.add_argument("--proxies", type=int, default=6)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--timeout", type=float, default=1200)
    args = ap.parse_args()
    with ChaosStack(args.proxies, args.fault_rate, args.seed) as chaos:
        figures = chaos_run(chaos, args.items, args.kills, args.stop_at, args.duplicates, args.seed, args.timeout)
    print(report(args.items, args.fault_rate, figures), flush=True)


if __name__ == "__main__":
    main()
