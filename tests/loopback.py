"""Real servers on loopback shared by integration and e2e tests: the target site and proxy.py proxies."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devstack.proxies import ProxyServer, start_proxies
from devstack.site import Site


@pytest.fixture(scope="session")
def proxy_servers() -> Iterator[list[ProxyServer]]:
    servers = start_proxies(3)
    yield servers
    for s in servers:
        s.stop()


@pytest.fixture
def site() -> Iterator[Site]:
    with Site(rate=2.0, burst=1.0) as s:
        yield s
