"""End-to-end fixtures: the docker-less local stack (ministack running the built template), the real
target site and real proxy servers on loopback, and clients that know only API.md."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from scrapersky_client import Client

from devstack.proxies import free_port, start_proxies
from devstack.site import Site
from devstack.stack import BUILD, MINISTACK, LocalStack, aws_client

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="package")
def stack() -> Iterator[LocalStack]:
    if not (BUILD / "template.yaml").exists() or not MINISTACK.exists():
        pytest.skip("run through `make test`: it builds the app and installs the local stack")
    with LocalStack(api_port=free_port(), api_key="e2e-tenant-key", admin_key="e2e-admin-key") as s:
        yield s


@pytest.fixture(scope="package")
def site() -> Iterator[Site]:
    with Site(rate=2.0, burst=1.0) as s:
        yield s


@pytest.fixture(scope="package")
def admin(stack) -> Client:
    return Client(stack.api_url, stack.admin_key)


@pytest.fixture(scope="package")
def client(stack) -> Client:
    return Client(stack.api_url, stack.api_key)


@pytest.fixture(scope="package")
def proxies(admin) -> Iterator[list[str]]:
    servers = start_proxies(3)
    ids = [admin.add_proxy(p.url, {"source": p.source_ip})["proxy_id"] for p in servers]
    yield ids
    for p in servers:
        p.stop()


@pytest.fixture(scope="package")
def sqs(stack):
    return aws_client("sqs", stack.endpoint)


def adds_up(st: dict) -> bool:
    return st["succeeded"] + st["failed"] + st["cancelled"] + st["in_progress"] + st["pending"] == st["total_items"]


def dump(x: object) -> str:
    return json.dumps(x, indent=1)[:3000]
