import pytest
from scrapersky.domain.targets import InvalidTarget, TargetPolicy, guard_resolved, normalise_page
from scrapersky.errors import InvalidInput
from scrapersky.kinds.registry import default_registry
from scrapersky.models import BatchOptions

DEPLOYED = TargetPolicy()
LOCAL = TargetPolicy(allow_private=True, any_port=True)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("example.com", "https://example.com/"),
        ("  Example.COM/path?q=1 ", "https://example.com/path?q=1"),
        ("http://example.com:80/a", "http://example.com/a"),
        ("https://example.com:8443/", "https://example.com:8443/"),
        ("https://example.com/a#frag", "https://example.com/a"),
    ],
)
def test_page_items_are_normalised_to_absolute_urls(raw, expected):
    assert normalise_page(raw, DEPLOYED) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("ftp://example.com/", "scheme"),
        ("javascript:alert(1)", "scheme"),
        ("http://127.0.0.1/", "private"),
        ("http://10.1.2.3/", "private"),
        ("http://169.254.169.254/latest/meta-data", "private"),
        ("http://[::1]/", "private"),
        ("http://localhost/", "localhost"),
        ("https://example.com:22/", "port"),
        ("https://user:pw@example.com/", "credentials"),
        ("not a url at all", "whitespace"),
        ("https://exa_mple..com/", "host"),
        ("", "empty"),
    ],
)
def test_unfetchable_items_are_rejected_with_a_reason(raw, reason):
    with pytest.raises(InvalidTarget, match=reason):
        normalise_page(raw, DEPLOYED)


def test_local_policy_allows_loopback_targets_on_any_port():
    assert normalise_page("http://localhost:8701/page/1", LOCAL) == "http://localhost:8701/page/1"


def test_duplicates_after_normalisation_are_dropped_and_counted():
    page = default_registry().get("page")
    out = page.normalise(["example.com", "https://example.com/", "ftp://x", "example.org"], BatchOptions(), DEPLOYED)
    assert out.accepted == ["https://example.com/", "https://example.org/"]
    assert out.duplicates == 1
    assert [r.item for r in out.rejected] == ["ftp://x"]


@pytest.mark.parametrize("kind", ["nonsense", "Page"])
def test_a_kind_this_deployment_does_not_serve_is_a_422_naming_what_is_served(kind):
    with pytest.raises(InvalidInput, match="not served by this deployment") as e:
        default_registry().get(kind)
    assert e.value.status_code == 422
    assert "served: page, sitemap, profile" in e.value.message


def test_redirect_hop_to_a_name_resolving_to_a_private_address_is_refused():
    with pytest.raises(InvalidTarget, match="private"):
        guard_resolved("https://innocent.example/", DEPLOYED, lambda host, port: ["93.184.216.34", "10.0.0.7"])
    guard_resolved("https://innocent.example/", DEPLOYED, lambda host, port: ["93.184.216.34"])
