"""Typed client of the ScraperSky API, on `requests`. Base URL and key from arguments or environment
(SCRAPERSKY_URL, SCRAPERSKY_API_KEY)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote, urljoin

import requests

DEFAULT_URL = "http://127.0.0.1:3000"
TERMINAL = frozenset({"completed", "partial", "failed", "cancelled"})  # batch statuses that never change again


class ApiError(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"HTTP {status}: {body.get('message', body)}")
        self.status = status
        self.body = body


class Client:
    def __init__(self, base_url: str | None = None, api_key: str | None = None, timeout: float = 60.0) -> None:
        self.base_url = (base_url or os.environ.get("SCRAPERSKY_URL") or DEFAULT_URL).rstrip("/")
        self.api_key = api_key or os.environ.get("SCRAPERSKY_API_KEY") or "local-dev-key"
        self.timeout = timeout
        self.session = requests.Session()
        self.session.trust_env = False

    def _call(self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None) -> Any:
        r = self.session.request(
            method,
            self.base_url + path,
            json=body,
            timeout=self.timeout,
            params={k: v for k, v in (params or {}).items() if v is not None},
            headers={"Authorization": f"Bearer {self.api_key}"},
        )
        data = r.json() if r.content else {}
        if r.status_code >= 400:
            raise ApiError(r.status_code, data if isinstance(data, dict) else {"message": str(data)})
        return data

    # batches
    def submit(
        self,
        items: list[str],
        kind: str = "page",
        options: dict[str, Any] | None = None,
        group: str | None = None,
        start: bool = True,
        client_token: str | None = None,
        callback_url: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"kind": kind, "items": items, "start": start}
        if callback_url:
            body["callback_url"] = callback_url
        if options:
            body["options"] = options
        if group:
            body["group"] = group
        if client_token:
            body["client_token"] = client_token
        return self._call("POST", "/batches", body)

    def start(self, batch_id: str) -> dict[str, Any]:
        return self._call("POST", f"/batches/{batch_id}/start")

    def cancel(self, batch_id: str) -> dict[str, Any]:
        return self._call("POST", f"/batches/{batch_id}/cancel")

    def status(self, batch_id: str) -> dict[str, Any]:
        return self._call("GET", f"/batches/{batch_id}")

    def batches(
        self, status: str | None = None, group: str | None = None, limit: int = 20, cursor: str | None = None
    ) -> dict[str, Any]:
        return self._call(
            "GET", "/batches", params={"status": status, "group": group, "limit": limit, "cursor": cursor}
        )

    def items_page(
        self, batch_id: str, status: str | None = None, limit: int = 100, cursor: str | None = None
    ) -> dict[str, Any]:
        return self._call(
            "GET", f"/batches/{batch_id}/items", params={"status": status, "limit": limit, "cursor": cursor}
        )

    def items(self, batch_id: str, status: str | None = None, page_size: int = 500) -> Iterator[dict[str, Any]]:
        return _each(lambda cursor: self.items_page(batch_id, status, page_size, cursor), "items")

    def urls(self, batch_id: str, item: str | None = None, page_size: int = 1000) -> Iterator[dict[str, Any]]:
        """The URLs a sitemap batch discovered, page by page (GET /batches/{id}/urls)."""
        path = f"/batches/{batch_id}/urls"
        return _each(
            lambda cursor: self._call("GET", path, params={"item": item, "limit": page_size, "cursor": cursor}), "urls"
        )

    def wait(
        self,
        batch_id: str,
        timeout: float = 600.0,
        interval: float = 1.0,
        on_update: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        end = time.monotonic() + timeout
        while True:
            st = self.status(batch_id)
            if on_update:
                on_update(st)
            if st["status"] in TERMINAL and st["in_progress"] == 0 and st["pending"] == 0:
                return st
            if time.monotonic() > end:
                raise TimeoutError(f"batch {batch_id} still {st['status']} after {timeout}s")
            time.sleep(interval)

    # profile targets
    def targets_page(
        self, check: str, active: bool | None = None, limit: int = 100, cursor: str | None = None
    ) -> dict[str, Any]:
        flag = None if active is None else str(active).lower()
        params = {"active": flag, "limit": limit, "cursor": cursor}
        return self._call("GET", f"/checks/{quote(check, safe='')}/targets", params=params)

    def targets(self, check: str, active: bool | None = None, page_size: int = 100) -> Iterator[dict[str, Any]]:
        """Each target's history under a profile check, ordered by target (GET /checks/{name}/targets)."""
        return _each(lambda cursor: self.targets_page(check, active, page_size, cursor), "targets")

    def target(self, check: str, target: str) -> dict[str, Any]:
        return self._call("GET", f"/checks/{quote(check, safe='')}/targets/{quote(target, safe='')}")

    # single item, admin, health
    def results_url(self, batch_id: str, fmt: str = "jsonl", wait_s: float = 60.0) -> str:
        """The URL of the batch's results file (`jsonl` or `csv`), absolute; waits up to `wait_s` for the export
        that follows the batch's end. Raises TimeoutError when there is none by then (or the batch runs on)."""
        field = {"jsonl": "results_url", "csv": "results_csv_url"}[fmt]
        end = time.monotonic() + wait_s
        while True:
            url = self.status(batch_id).get(field)
            if url:
                return urljoin(self.base_url + "/", url)  # relative on the local stack
            if time.monotonic() >= end:
                raise TimeoutError(f"batch {batch_id} has no {field} after {wait_s:.0f}s (still running?)")
            time.sleep(1.0)

    def results(self, batch_id: str, fmt: str = "jsonl", wait_s: float = 60.0) -> Iterator[bytes]:
        """Streams the batch's results file (JSON Lines: one line per item with its `seq`; or CSV) by following
        its results URL, which needs no Authorization header (a presigned S3 URL refuses one)."""
        url = self.results_url(batch_id, fmt, wait_s)
        with requests.get(url, stream=True, timeout=self.timeout) as r:
            if r.status_code >= 400:
                raise ApiError(r.status_code, {"message": r.text[:500]})
            yield from r.iter_content(chunk_size=1 << 16)

    def scrape(self, item: str, kind: str = "page", options: dict[str, Any] | None = None) -> dict[str, Any]:
        return self._call("POST", "/scrape", {"kind": kind, "item": item, "options": options or {}})

    def tenant(self) -> dict[str, Any]:
        """The calling tenant, its webhook secret masked."""
        return self._call("GET", "/tenant")

    def rotate_webhook_secret(self) -> str:
        """A new webhook secret (every webhook try from now on is signed with it)."""
        return str(self._call("POST", "/tenant/webhook-secret")["webhook_secret"])

    def create_tenant(self, name: str) -> dict[str, Any]:
        return self._call("POST", "/tenants", {"name": name})

    def add_proxy(self, url: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
        return self._call("POST", "/proxies", {"url": url, "labels": labels or {}})

    def proxies(self) -> dict[str, Any]:
        return self._call("GET", "/proxies")

    def delete_proxy(self, proxy_id: str) -> None:
        self._call("DELETE", f"/proxies/{proxy_id}")

    def hosts(self) -> dict[str, Any]:
        return self._call("GET", "/hosts")

    def configure_host(
        self, host: str, rate: float | None = None, max_rate: float | None = None, total_rate: float | None = None
    ) -> dict[str, Any]:
        """Replaces the host's pacing configuration: per proxy `rate` and `max_rate`, `total_rate` over the pool."""
        given = {"rate": rate, "max_rate": max_rate, "total_rate": total_rate}
        body = {k: v for k, v in given.items() if v is not None}
        return self._call("PUT", f"/hosts/{quote(host, safe='')}", body)

    def forget_host(self, host: str) -> None:
        self._call("DELETE", f"/hosts/{quote(host, safe='')}")

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/health")


def _each(page_of: Callable[[str | None], dict[str, Any]], key: str) -> Iterator[dict[str, Any]]:
    """Every entry of a cursor-paged listing, page after page until `next_cursor` is null."""
    cursor = None
    while True:
        page = page_of(cursor)
        yield from page[key]
        cursor = page.get("next_cursor")
        if not cursor:
            return
