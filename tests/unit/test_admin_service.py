"""The admin use cases on the fakes: tenants and keys, proxies and their states, hosts' pacing configuration."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from scrapersky.errors import InvalidInput, NotFound
from scrapersky.models import CreateProxyRequest, CreateTenantRequest, HostConfigRequest
from scrapersky.ports import Release
from scrapersky.services import admin

from tests.fakes import EPOCH, FakeDeps, make_deps


# ---- tenants ---------------------------------------------------------------------------------------------------
def test_a_new_tenants_key_is_answered_once_and_authenticates_it_as_a_bearer_token():
    deps = make_deps()
    got = admin.create_tenant(deps, CreateTenantRequest(name="Acme", role="tenant"))

    assert got["api_key"].startswith("sk_") and got["tenant_id"].startswith("t_")
    assert got["api_key"] not in repr(deps.tenants.tenants) + repr(deps.tenants.by_hash)  # only its hash is kept
    tenant = admin.authenticate(deps, f"Bearer {got['api_key']}")
    assert tenant is not None and (tenant.tenant_id, tenant.name, tenant.is_admin) == (got["tenant_id"], "Acme", False)
    assert admin.authenticate(deps, f"bearer   {got['api_key']}  ") == tenant


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer  ", "Basic sk_x", "Bearer sk_wrong", "sk_x"])
def test_a_missing_malformed_or_unknown_key_authenticates_nobody(header):
    deps = make_deps()
    admin.create_tenant(deps, CreateTenantRequest(name="Acme"), api_key="sk_x")
    assert admin.authenticate(deps, header) is None


def test_an_admin_tenant_authenticates_as_admin():
    deps = make_deps()
    got = admin.create_tenant(deps, CreateTenantRequest(name="Ops", role="admin"), api_key="sk_ops", tenant_id="t_ops")
    assert got == {
        "tenant_id": "t_ops",
        "name": "Ops",
        "role": "admin",
        "api_key": "sk_ops",
        "webhook_secret": deps.events.secrets.secrets["t_ops"],
    }
    tenant = admin.authenticate(deps, "Bearer sk_ops")
    assert tenant is not None and tenant.is_admin


# ---- proxies ---------------------------------------------------------------------------------------------------
def view_of(deps: FakeDeps, proxy_id: str) -> dict:
    (view,) = [p for p in admin.list_proxies(deps)["proxies"] if p["proxy_id"] == proxy_id]
    return view


def test_an_added_proxy_is_listed_available_with_its_credentials_masked():
    deps = make_deps()
    got = admin.add_proxy(deps, CreateProxyRequest(url="http://scott:tiger@proxy.test:3128", labels={"pool": "eu"}))

    assert got["endpoint"] == "http://sc***@proxy.test:3128"
    view = view_of(deps, got["proxy_id"])
    assert (view["state"], view["leased"], view["labels"], view["endpoint"]) == (
        "available",
        False,
        {"pool": "eu"},
        "http://sc***@proxy.test:3128",
    )
    assert "tiger" not in repr(admin.list_proxies(deps))


@pytest.mark.parametrize("url", ["socks5://proxy.test:1080", "http://proxy.test", "http://:8080", "http://p:99999"])
def test_a_proxy_url_without_an_http_scheme_a_host_and_a_port_is_a_422(url):
    deps = make_deps()
    with pytest.raises(InvalidInput) as e:
        admin.add_proxy(deps, CreateProxyRequest(url=url))
    assert e.value.details[0]["field"] == "url"
    assert deps.pool.proxies == {}


def test_the_proxy_view_shows_leased_cooling_and_quarantined_proxies():
    deps = make_deps(proxies=3, quarantine_after=1)
    now = deps.clock.now()
    faulty = deps.pool.lease("b.test", "w", now, 90)
    deps.pool.release(faulty, now, Release.FAILED, proxy_fault=True)  # p_1 quarantined
    cooled = deps.pool.lease("a.test", "w", now, 90)
    deps.pool.release(cooled, now, Release.RATE_LIMITED, retry_after_s=30)  # p_2 cooling for a.test
    deps.pool.lease("a.test", "w", now, 90)  # p_3 leased

    views = {p["proxy_id"]: p for p in admin.list_proxies(deps)["proxies"]}

    assert [(v["state"], v["leased"]) for v in views.values()] == [
        ("quarantined", False),
        ("cooling", False),
        ("available", True),
    ]
    assert views["p_2"]["cooldowns"] == {"a.test": "2026-01-01T00:00:30.000Z"}
    assert (views["p_2"]["rate_limited"], views["p_1"]["failed"], views["p_1"]["consecutive_errors"]) == (1, 1, 1)
    assert views["p_3"]["pace"] == {"a.test": 1.0}
    deps.clock.advance(31)
    assert view_of(deps, "p_2")["state"] == "available"  # the cooldown ran out


def test_deleting_a_proxy_removes_it_and_deleting_an_unknown_one_is_a_404():
    deps = make_deps(proxies=1)
    admin.delete_proxy(deps, "p_1")
    assert admin.list_proxies(deps) == {"proxies": []}
    with pytest.raises(NotFound):
        admin.delete_proxy(deps, "p_1")


# ---- hosts -----------------------------------------------------------------------------------------------------
NO_TOTAL_LIMIT = {
    "total_rate": None,
    "crawl_delay_s": None,
    "crawl_delay_learnt_at": None,
    "crawl_delay_expires_at": None,
    "total_limit": None,
    "total_limit_source": None,
    "next_slot_at": None,
}


def test_a_configured_host_is_answered_and_listed_under_its_key_and_paces_the_pool():
    deps = make_deps(proxies=2)

    got = admin.configure_host(deps, "Shop.Example.COM", HostConfigRequest(rate=0.5, max_rate=2))

    assert got == {
        "host": "shop.example.com",
        "rate": 0.5,
        "max_rate": 2.0,
        "learnt_ceiling": None,
        **NO_TOTAL_LIMIT,
        "proxies": {},
    }
    assert admin.list_hosts(deps)["hosts"] == [got]
    assert deps.pool.capacity("shop.example.com", EPOCH) == 1.0  # two proxies at 0.5 requests/s each


def test_the_host_view_shows_each_proxys_pace_for_it():
    deps = make_deps(proxies=1)
    admin.configure_host(deps, "a.test", HostConfigRequest(rate=2))
    deps.pool.lease("a.test", "w", deps.clock.now(), 90)
    (host,) = admin.list_hosts(deps)["hosts"]
    assert host["proxies"] == {
        "p_1": {"rate": 2.0, "ceiling": None, "answer_s": None, "next_at": "2026-01-01T00:00:00.500Z"}
    }


def test_forgetting_a_host_drops_it_and_forgetting_an_unknown_host_is_a_404():
    deps = make_deps()
    admin.configure_host(deps, "a.test", HostConfigRequest(rate=2))
    admin.forget_host(deps, "A.TEST")
    assert admin.list_hosts(deps) == {"hosts": []}
    with pytest.raises(NotFound):
        admin.forget_host(deps, "a.test")


@pytest.mark.parametrize("raw", ["https://a.test/", "a.test:8080", "a.test/path", "exa_mple.com", ""])
def test_a_host_that_is_not_a_bare_name_or_address_is_a_422(raw):
    deps = make_deps()
    with pytest.raises(InvalidInput) as e:
        admin.configure_host(deps, raw, HostConfigRequest(rate=1))
    assert e.value.details[0]["field"] == "host"
    assert deps.hosts.config == {}


def test_a_percent_encoded_bracketed_ipv6_host_is_keyed_without_its_brackets():
    deps = make_deps()
    assert admin.configure_host(deps, "%5B2001:db8::1%5D", HostConfigRequest())["host"] == "2001:db8::1"


# ---- a total rate per host, summed over the pool -----------------------------------------------------------------
def test_a_total_rate_caps_the_whole_pool_and_is_shown_beside_the_per_proxy_pacing():
    deps = make_deps(proxies=3)

    got = admin.configure_host(deps, "a.test", HostConfigRequest(rate=2, total_rate=0.5))

    assert (got["rate"], got["total_rate"], got["total_limit"], got["total_limit_source"]) == (
        2.0,
        0.5,
        0.5,
        "total_rate",
    )
    assert deps.pool.capacity("a.test", EPOCH) == 0.5  # three proxies at 2/s each, but 0.5/s in all
    starts = [deps.pool.lease("a.test", f"w{i}", EPOCH, 90, max_wait_s=10).start_at - EPOCH for i in range(3)]
    assert starts == [0.0, 2.0, 4.0]  # one proxy each, two seconds apart in total
    (host,) = admin.list_hosts(deps)["hosts"]
    assert host["next_slot_at"] == "2026-01-01T00:00:06.000Z"


def test_a_put_without_total_rate_clears_it_as_it_replaces_the_whole_configuration():
    deps = make_deps(proxies=2)
    admin.configure_host(deps, "a.test", HostConfigRequest(total_rate=0.5))

    cleared = admin.configure_host(deps, "a.test", HostConfigRequest.model_validate({"total_rate": None}))

    assert {k: cleared[k] for k in NO_TOTAL_LIMIT} == NO_TOTAL_LIMIT
    assert deps.pool.capacity("a.test", EPOCH) == 2.0  # two proxies at the default 1/s
    starts = [deps.pool.lease("a.test", f"w{i}", EPOCH, 90).start_at for i in range(2)]
    assert starts == [EPOCH, EPOCH]  # both proxies at once again


def test_a_tiny_total_rate_is_kept_with_its_digits_not_rounded_to_zero():
    deps = make_deps()
    got = admin.configure_host(deps, "a.test", HostConfigRequest(total_rate=0.00025))
    assert (got["total_rate"], got["total_limit"]) == (0.00025, 0.00025)


@pytest.mark.parametrize(
    "body",
    [
        {"total_rate": 0},
        {"total_rate": -1},
        {"total_rate": 1e-9},
        {"total_rate": 1001},
        {"total_rate": True},
        {"total_rate": "2"},
        {"total_rate": float("nan")},
        {"total_rate": float("inf")},
        {"total_rates": 2},
    ],
)
def test_an_invalid_total_rate_is_refused_before_anything_changes(body):
    with pytest.raises(ValidationError) as e:
        HostConfigRequest.model_validate(body)
    assert e.value.errors()[0]["loc"][0] in ("total_rate", "total_rates")


def test_a_learnt_crawl_delay_is_shown_with_when_it_was_learnt_and_the_stricter_limit_wins():
    deps = make_deps(proxies=2)
    admin.configure_host(deps, "a.test", HostConfigRequest(total_rate=1))
    deps.hosts.learn_crawl_delay("a.test", 4.0, EPOCH, EPOCH)

    (host,) = admin.list_hosts(deps)["hosts"]

    assert (host["total_rate"], host["crawl_delay_s"], host["total_limit"], host["total_limit_source"]) == (
        1.0,
        4.0,
        0.25,
        "crawl_delay",
    )
    assert (host["crawl_delay_learnt_at"], host["crawl_delay_expires_at"]) == (
        "2026-01-01T00:00:00.000Z",
        "2026-01-02T00:00:00.000Z",
    )
    deps.hosts.learn_crawl_delay("b.test", 0.5, EPOCH, EPOCH)  # laxer than the operator's: the operator's 1/s wins...
    admin.configure_host(deps, "b.test", HostConfigRequest(total_rate=1))
    b = admin.list_hosts(deps)["hosts"][1]
    assert (b["total_limit"], b["total_limit_source"]) == (1.0, "total_rate")
    deps.clock.advance(86_401)  # ...and a day after the last robots.txt read the learnt delay no longer holds
    (a, _) = admin.list_hosts(deps)["hosts"]
    assert (a["crawl_delay_s"], a["total_limit"], a["total_limit_source"]) == (None, 1.0, "total_rate")
