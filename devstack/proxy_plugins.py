"""proxy.py plugin: each local proxy connects upstream from its own loopback address, so a target site
sees one client address per proxy (as it would with real proxies on distinct IPs)."""

from __future__ import annotations

import os

from proxy.http.proxy import HttpProxyBasePlugin


class SourceAddressPlugin(HttpProxyBasePlugin):
    def resolve_dns(self, host: str, port: int):  # type: ignore[no-untyped-def]
        source = os.environ.get("SCRAPERSKY_PROXY_SOURCE_IP")
        return None, ((source, 0) if source else None)

    def before_upstream_connection(self, request):  # type: ignore[no-untyped-def]
        return request

    def handle_client_request(self, request):  # type: ignore[no-untyped-def]
        return request

    def handle_upstream_chunk(self, chunk):  # type: ignore[no-untyped-def]
        return chunk

    def on_upstream_connection_close(self) -> None:
        pass
