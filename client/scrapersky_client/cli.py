"""`scrapersky submit | status | watch | items | urls | results | scrape`: the command-line client."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn
from rich.table import Table

from scrapersky_client.client import TERMINAL, ApiError, Client

console = Console(stderr=True)
out = Console()


def _read_items(args: argparse.Namespace) -> list[str]:
    items = list(args.items or [])
    if args.file:
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text()
        items.extend(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))
    return items


def _eta(st: dict[str, Any]) -> str:
    eta = st.get("estimated_completion_time")
    if not eta or st["status"] in TERMINAL:
        return ""
    secs = (datetime.fromisoformat(eta.replace("Z", "+00:00")) - datetime.now().astimezone()).total_seconds()
    return f"ETA {max(0, int(secs))}s"


def watch(client: Client, batch_id: str, timeout: float) -> dict[str, Any]:
    with Progress(
        TextColumn("[bold]{task.fields[state]:<10}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[counts]}"),
        TextColumn("{task.fields[eta]}"),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task("batch", total=100, state="", counts="", eta="")

        def update(st: dict[str, Any]) -> None:
            counts = (
                f"ok {st['succeeded']}  failed {st['failed']}  running {st['in_progress']}  "
                f"waiting {st['pending']}  retries {st['retries']}"
            )
            bar.update(task, completed=st["progress_pct"], state=st["status"], counts=counts, eta=_eta(st))

        return client.wait(batch_id, timeout=timeout, interval=0.5, on_update=update)


def summary_table(st: dict[str, Any]) -> Table:
    t = Table(title=f"Batch {st['batch_id']}")
    t.add_column("field")
    t.add_column("value", justify="right")
    for key in (
        "status",
        "total_items",
        "succeeded",
        "failed",
        "cancelled",
        "retries",
        "progress_pct",
        "duration_s",
        "throughput_per_min",
    ):
        t.add_row(key, str(st.get(key)))
    for code, n in st["errors"]["by_code"].items():
        t.add_row(f"error {code}", str(n))
    return t


def items_table(items: list[dict[str, Any]]) -> Table:
    t = Table(title="Items")
    for col in ("item", "status", "http", "title", "ms", "error"):
        t.add_column(col, overflow="fold")
    for it in items:
        res = it.get("result") or {}
        t.add_row(
            it["item"],
            it["status"],
            str(it.get("http_status") or ""),
            str(res.get("title") or ""),
            str(res.get("elapsed_ms") or ""),
            (it.get("error") or {}).get("code", ""),
        )
    return t


def targets_table(rows: list[dict[str, Any]], check: str) -> Table:
    """A profile check's targets and their history (GET /checks/{name}/targets)."""
    t = Table(title=f"targets of check {check}")
    for col in ("target", "active", "last state", "active since", "last checked", "checks", "detected", "errors"):
        t.add_column(col, justify="right" if col in ("checks", "detected", "errors") else "left")
    for r in rows:
        active = {True: "[green]yes[/green]", False: "no", None: "-"}[r["active"]]
        errors = str(r["consecutive_errors"])
        if r["last_error"]:
            errors += f" ({r['last_error']['code']})"
        t.add_row(
            r["target"],
            active,
            r["last_state"] or "-",
            r["active_since"] or "-",
            r["last_checked_at"] or "-",
            str(r["checks"]),
            str(r["detections"]),
            errors,
        )
    return t


def _check_option(raw: str | None) -> dict[str, Any] | None:
    """--check: the profile check spec as JSON, or @file holding it."""
    if raw is None:
        return None
    text = Path(raw[1:]).read_text() if raw.startswith("@") else raw
    spec = json.loads(text)
    if not isinstance(spec, dict):
        raise ValueError("--check must be a JSON object")
    return spec


def _write_lines(rows: Iterator[dict[str, Any]], path: str | None) -> int:
    """JSON Lines to a file (or standard output), streamed: a big sitemap batch never sits in memory."""
    n = 0
    with open(path, "w", encoding="utf-8") if path else contextlib.nullcontext(sys.stdout) as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n


def _download(client: Client, args: argparse.Namespace) -> None:
    chunks = client.results(args.batch_id, "csv" if args.csv else "jsonl", args.wait)
    if not args.output:
        for chunk in chunks:
            sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.flush()
        return
    size = 0
    with open(args.output, "wb") as f:
        for chunk in chunks:
            f.write(chunk)
            size += len(chunk)
    console.print(f"{size} bytes written to {args.output}")


def _scrape(client: Client, args: argparse.Namespace) -> int:
    opts: dict[str, Any] = {"max_attempts": args.max_attempts} if args.max_attempts else {}
    limits = {"max_urls": args.max_urls, "max_depth": args.max_depth}
    if any(v is not None for v in limits.values()):
        opts["sitemap"] = {k: v for k, v in limits.items() if v is not None}
    answer = client.scrape(args.item, args.kind, opts)
    out.print_json(json.dumps(answer))
    if args.output:
        n = _write_lines(iter(answer.get("urls") or []), args.output)
        more = " (more were found: see result.urls_found)" if answer.get("urls_truncated") else ""
        console.print(f"{n} URLs written to {args.output}{more}")
    return 0 if answer["status"] == "succeeded" else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="scrapersky", description="ScraperSky command-line client")
    ap.add_argument("--url", help="API base URL (env SCRAPERSKY_URL, default http://127.0.0.1:3000)")
    ap.add_argument("--key", help="API key (env SCRAPERSKY_API_KEY)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("submit", help="submit a batch")
    s.add_argument("items", nargs="*")
    s.add_argument("-f", "--file", help="file with one item per line (- for stdin)")
    s.add_argument("--kind", default="page")
    s.add_argument("--group")
    s.add_argument("--max-attempts", type=int)
    s.add_argument("--no-start", action="store_true")
    s.add_argument("--client-token")
    s.add_argument("--check", help="kind profile: the check spec as JSON, or @file.json")
    s.add_argument("--watch", action="store_true", help="then show a live progress bar until it ends")
    s.add_argument("--timeout", type=float, default=900)
    st = sub.add_parser("status", help="show a batch's progress")
    st.add_argument("batch_id")
    w = sub.add_parser("watch", help="live progress bar until the batch ends")
    w.add_argument("batch_id")
    w.add_argument("--timeout", type=float, default=900)
    it = sub.add_parser("items", help="list a batch's items")
    it.add_argument("batch_id")
    it.add_argument("--status")
    it.add_argument("--json", action="store_true")
    u = sub.add_parser("urls", help="the URLs a sitemap batch discovered, as JSON Lines")
    u.add_argument("batch_id")
    u.add_argument("--item", help="only the URLs of this item")
    u.add_argument("-o", "--output", help="write to this file instead of standard output")
    r = sub.add_parser("results", help="download a batch's results (JSON Lines, one line per item; or CSV)")
    r.add_argument("batch_id")
    r.add_argument("-o", "--output", help="file to write (default: stdout)")
    r.add_argument("--csv", action="store_true", help="the CSV file instead of JSON Lines")
    r.add_argument("--wait", type=float, default=60, help="seconds to wait for the export of an ended batch")
    tg = sub.add_parser("targets", help="a profile check's targets and their history")
    tg.add_argument("check", help="the check's name (options.check.name, by default the URL's host)")
    tg.add_argument("--active", choices=("true", "false"), help="only the targets that are (not) active")
    tg.add_argument("--json", action="store_true")
    sc = sub.add_parser(
        "scrape", help="check one item now (POST /scrape), print the answer as JSON; exit 1 when the item failed"
    )
    sc.add_argument("item")
    sc.add_argument("--kind", default="page", choices=["page", "sitemap"])
    sc.add_argument("--max-attempts", type=int)
    sc.add_argument("--max-urls", type=int, help="kind sitemap: URLs found at most")
    sc.add_argument("--max-depth", type=int, help="kind sitemap: depth of the documents read (first ones: 1)")
    sc.add_argument("-o", "--output", help="kind sitemap: also write the URLs it shows here, as JSON Lines")
    args = ap.parse_args(argv)
    client = Client(args.url, args.key)
    try:
        if args.cmd == "submit":
            items = _read_items(args)
            if not items:
                ap.error("no items: give them as arguments or with --file")
            opts: dict[str, Any] = {"max_attempts": args.max_attempts} if args.max_attempts else {}
            check = _check_option(args.check)
            if check is not None:
                opts["check"] = check
            created = client.submit(items, args.kind, opts or None, args.group, not args.no_start, args.client_token)
            out.print_json(json.dumps(created))
            if args.watch:
                final = watch(client, created["batch_id"], args.timeout)
                out.print(summary_table(final))
        elif args.cmd == "status":
            out.print_json(json.dumps(client.status(args.batch_id)))
        elif args.cmd == "watch":
            final = watch(client, args.batch_id, args.timeout)
            out.print(summary_table(final))
        elif args.cmd == "urls":
            n = _write_lines(client.urls(args.batch_id, args.item), args.output)
            console.print(f"{n} URLs")
        elif args.cmd == "results":
            _download(client, args)
        elif args.cmd == "targets":
            active = None if args.active is None else args.active == "true"
            rows = list(client.targets(args.check, active))
            if args.json:
                out.print_json(json.dumps(rows))
            else:
                out.print(targets_table(rows, args.check))
        elif args.cmd == "scrape":
            return _scrape(client, args)
        elif args.cmd == "items":
            rows = list(client.items(args.batch_id, args.status))
            if args.json:
                out.print_json(json.dumps(rows))
            else:
                out.print(items_table(rows))
    except ApiError as e:
        console.print(f"[red]{e}[/red]")
        for d in e.body.get("details", [])[:20]:
            console.print(f"  - {d}")
        return 2
    except TimeoutError as e:
        console.print(f"[red]{e}[/red]")
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
