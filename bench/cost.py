"""Cost report (not a test): what page items, sitemap documents and profile checks cost on AWS, measured on the
local stack, priced at us-east-1 list prices (bench/prices.py), beside a naive Step Functions design.

    python -m bench.cost --items 1000           # in make bench; --sitemaps / --profiles for the other kinds

One local stack with SCRAPERSKY_COST_LOG set (devstack/costhook: each handler process records every AWS call it
makes, DynamoDB calls with ReturnConsumedCapacity=TOTAL), a loopback page site, sitemap site and social site, and
loopback proxies. Each kind runs as one batch, one after another; the calls and Lambda invocations (ministack's
REPORT lines: duration, configured memory) between a batch's create and the quiet after its end are its own.
The scheduled MaintenanceFunction is a fixed cost, not counted per item. The last line is the JSON summary.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from scrapersky_client.client import Client

from bench import cost_model
from bench.prices import AS_OF
from devstack.cfn_yaml import load_template
from devstack.proxies import free_port, start_proxies
from devstack.site import Site
from devstack.sitemap_site import SitemapSite, urlset
from devstack.social_site import SocialSite, check_spec
from devstack.stack import ROOT, LocalStack, aws_client, log

TERMINAL = {"completed", "partial", "failed", "cancelled"}
FIXED_COST = ("MaintenanceFunction",)  # scheduled: runs whether there are items or not
URLS_PER_DOCUMENT = 20
REPORT_RE = re.compile(r"REPORT RequestId: \S+\s+Duration: ([\d.]+) ms.*Memory Size: (\d+) MB")


class CostSitemaps(SitemapSite):
    """The sitemap site, plus /sm/<n>.xml: a urlset of URLS_PER_DOCUMENT pages, one document per item."""

    def answer(self, path: str) -> tuple[int, bytes, dict[str, str]]:
        if path.startswith("/sm/") and path.endswith(".xml"):
            doc = path[len("/sm/") : -len(".xml")]
            return 200, urlset(self.base_url, *(f"/p/{doc}/{j}" for j in range(URLS_PER_DOCUMENT))), {}
        return super().answer(path)


def template_functions() -> dict[str, dict[str, Any]]:
    """Logical id -> {memory (MB), sqs (triggered by an SQS event source), arch} from template.yaml."""
    template = load_template((ROOT / "template.yaml").read_text())
    glob = template.get("Globals", {}).get("Function", {})
    out = {}
    for name, res in template["Resources"].items():
        if res["Type"] != "AWS::Serverless::Function":
            continue
        props = res.get("Properties") or {}
        events = (props.get("Events") or {}).values()
        out[name] = {
            "memory": int(props.get("MemorySize", glob.get("MemorySize", 128))),
            "sqs": any(e.get("Type") == "SQS" for e in events),
            "arch": (props.get("Architectures") or glob.get("Architectures") or ["x86_64"])[0],
        }
    return out


class CostRun:
    """The stack with the call counter armed, its sites and proxies, and the run's per-kind usage."""

    def __init__(self, proxies: int) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="scrapersky-cost-"))
        self.calls_dir = self.dir / "calls"
        self.calls_dir.mkdir()
        self.stack = LocalStack(
            api_port=free_port(),
            api_key="cost-tenant-key",
            admin_key="cost-admin-key",
            handler_env={"SCRAPERSKY_COST_LOG": str(self.calls_dir)},
            state_dir=self.dir,
        )
        self.n_proxies = proxies
        self.functions = template_functions()

    def __enter__(self) -> CostRun:
        self.exits = contextlib.ExitStack()
        try:
            self.stack.start()
            self.exits.callback(self.stack.stop)
            self.site = self.exits.enter_context(Site(rate=10_000.0, burst=10_000.0))
            self.sitemaps = self.exits.enter_context(CostSitemaps())
            self.social = self.exits.enter_context(SocialSite(profiles=()))
            for p in start_proxies(self.n_proxies, log_dir=None):
                self.exits.callback(p.stop)
                self.admin_client().add_proxy(p.url, {"source": p.source_ip})
            for host in ("localhost", "127.0.0.1"):
                self.admin_client().configure_host(host, rate=50.0, max_rate=50.0)
        except BaseException:
            self.exits.close()
            raise
        self.client = Client(self.stack.api_url, self.stack.api_key)
        self.logs = aws_client("logs", self.stack.endpoint)
        self.names = {
            f["FunctionName"]: next((k for k in self.functions if k in f["FunctionName"]), f["FunctionName"])
            for f in aws_client("lambda", self.stack.endpoint).list_functions()["Functions"]
        }
        return self

    def __exit__(self, *exc: object) -> None:
        self.exits.close()

    def admin_client(self) -> Client:
        return Client(self.stack.api_url, self.stack.admin_key)

    # ---- one kind ----------------------------------------------------------------------------------------
    def run_kind(self, submit: Callable[[], dict[str, Any]], timeout_s: float) -> tuple[cost_model.Usage, float]:
        self.quiet()
        t0 = time.time()
        created = submit()
        polls, final = self.wait_terminal(created["batch_id"], timeout_s)
        elapsed = time.time() - t0
        self.quiet()
        t1 = time.time()
        outcome = ", ".join(f"{final[k]} {k}" for k in ("succeeded", "failed", "cancelled"))
        usage = cost_model.Usage(items=created["total_items"], api_requests=1 + polls, outcome=outcome)
        for rec in self.call_records(t0, t1):
            if rec["fn"] and not any(f in rec["fn"] for f in FIXED_COST):
                cost_model.add_call(usage, rec)
        for function, duration_ms, memory_mb in self.invocations(t0, t1):
            if function not in FIXED_COST:
                sqs = self.functions.get(function, {}).get("sqs", False)
                cost_model.add_invocation(usage, function, duration_ms, memory_mb, sqs)
        return usage, elapsed

    def wait_terminal(self, batch_id: str, timeout_s: float) -> tuple[int, dict[str, Any]]:
        """Polls the status every 2 s until the batch ended; returns the status requests made and the last status."""
        polls, end = 0, time.time() + timeout_s
        while time.time() < end:
            st = self.client.status(batch_id)
            polls += 1
            if st["status"] in TERMINAL and st["in_progress"] == 0 and st["pending"] == 0:
                return polls, st
            time.sleep(2.0)
        raise SystemExit(f"batch {batch_id} did not end within {timeout_s:.0f} s")

    def quiet(self, still_s: float = 4.0, limit_s: float = 60.0) -> None:
        """Waits until no handler made an AWS call for `still_s` (events, batch-end work), `limit_s` at most."""
        end, last, last_change = time.time() + limit_s, -1, time.time()
        while time.time() < end:
            size = sum(p.stat().st_size for p in self.calls_dir.glob("*.jsonl"))
            if size != last:
                last, last_change = size, time.time()
            elif time.time() - last_change >= still_s:
                return
            time.sleep(0.5)

    def call_records(self, t0: float, t1: float) -> Iterator[dict[str, Any]]:
        for path in self.calls_dir.glob("*.jsonl"):
            for line in path.read_text().splitlines():
                with contextlib.suppress(ValueError):
                    rec = json.loads(line)
                    if t0 <= rec["t"] <= t1:
                        yield rec

    def invocations(self, t0: float, t1: float) -> Iterator[tuple[str, float, int]]:
        """(logical id, duration ms, memory MB) of each invocation ministack logged between t0 and t1."""
        for name, logical in self.names.items():
            kwargs: dict[str, Any] = {
                "logGroupName": f"/aws/lambda/{name}",
                "startTime": int(t0 * 1000),
                "endTime": int(t1 * 1000) + 1,
            }
            while True:
                try:
                    page = self.logs.filter_log_events(**kwargs)
                except self.logs.exceptions.ResourceNotFoundException:
                    break
                for event in page.get("events", []):
                    m = REPORT_RE.search(event["message"])
                    if m:
                        yield logical, float(m.group(1)), int(m.group(2))
                if not page.get("nextToken"):
                    break
                kwargs["nextToken"] = page["nextToken"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--items", type=int, default=1000, help="page items")
    ap.add_argument("--sitemaps", type=int, default=100, help=f"sitemap documents ({URLS_PER_DOCUMENT} URLs each)")
    ap.add_argument("--profiles", type=int, default=200, help="profile checks")
    ap.add_argument("--proxies", type=int, default=6)
    ap.add_argument("--timeout", type=float, default=1800)
    args = ap.parse_args()
    figures: dict[str, Any] = {}
    lines: list[str] = []
    with CostRun(args.proxies) as run:
        arch = next(iter(run.functions.values()))["arch"]
        kinds: dict[str, Callable[[], dict[str, Any]]] = {
            "page": lambda: run.client.submit([f"{run.site.base_url}/page/cost-{i}" for i in range(args.items)]),
            "sitemap": lambda: run.client.submit(
                [f"{run.sitemaps.base_url}/sm/{i}.xml" for i in range(args.sitemaps)], kind="sitemap"
            ),
            "profile": lambda: profile_batch(run, args.profiles),
        }
        counts = {"page": args.items, "sitemap": args.sitemaps, "profile": args.profiles}
        for kind, submit in kinds.items():
            if counts[kind] <= 0:
                continue
            log(f"cost run: {kind}, {counts[kind]} items")
            usage, elapsed = run.run_kind(submit, args.timeout)
            lines += cost_model.report(kind, usage, elapsed)
            figures[kind] = cost_model.summary(usage)
    log(f"the handlers' call records are in {run.calls_dir}, ministack's log in {run.dir}")
    print(f"cost report: local stack (ministack), template architecture {arch}; prices {AS_OF} (bench/prices.py)")
    print("\n".join(lines))
    print(json.dumps({**figures, "architecture": arch, "prices_as_of": AS_OF}), flush=True)


def profile_batch(run: CostRun, n: int) -> dict[str, Any]:
    targets = [f"user{i}" for i in range(n)]
    run.social.profiles.update(targets)
    for i, target in enumerate(targets):
        run.social.set_story(target, i % 2 == 0)  # half of them with a story
    spec = check_spec(run.social.base_url, name="cost")
    return run.client.submit(targets, kind="profile", options={"check": spec})


if __name__ == "__main__":
    main()
