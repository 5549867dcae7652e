import pytest
from pydantic import ValidationError
from scrapersky.checks import CheckSpec, InvalidTargetName, SessionSpec, check_target, target_url

BASE = {"url": "https://social.example/{target}/", "marker": {"css": "div.story-ring"}}


def spec(**changes):
    return CheckSpec.model_validate({**BASE, **changes})


def test_a_minimal_spec_gets_the_contract_defaults():
    s = spec()
    assert s.name == "social.example"
    assert s.not_found_status == [404]
    assert s.blocked_status == [401, 403]
    assert s.page_guard is None and s.login_url_prefix is None
    assert s.session == SessionSpec(warmup_url=None, max_uses=50, max_age_s=1800)


def test_a_full_spec_is_kept_as_given():
    s = spec(
        name="stories",
        marker={"json_pointer": "/data/user/has_story"},
        page_guard={"regex": r'"username":\s*"'},
        not_found_status=[404, 410],
        blocked_status=[401, 403, 451],
        login_url_prefix="https://social.example/accounts/login",
        session={"warmup_url": "https://social.example/", "max_uses": 1, "max_age_s": 60},
    )
    assert s.name == "stories"
    assert s.marker.json_pointer == "/data/user/has_story"
    assert s.page_guard is not None and s.page_guard.regex is not None
    assert s.session.max_uses == 1


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"url": "https://social.example/profile/"}, id="url without {target}"),
        pytest.param({"url": "ftp://social.example/{target}"}, id="not http(s)"),
        pytest.param({"url": "/{target}"}, id="relative url"),
        pytest.param({"url": "https://social.example:99999/{target}"}, id="not a port"),
        pytest.param({"url": "https://user:pw@social.example/{target}"}, id="credentials in the url"),
        pytest.param({"url": "https://{target}.social.example/"}, id="target in the host and no name"),
        pytest.param({"marker": {"css": "div", "regex": "x"}}, id="two markers"),
        pytest.param({"marker": {}}, id="no marker"),
        pytest.param({"marker": {"xpath": "//div"}}, id="unknown marker form"),
        pytest.param({"marker": {"regex": "a" * 1001}}, id="regex over 1000 characters"),
        pytest.param({"marker": {"regex": "(unclosed"}}, id="regex that does not compile"),
        pytest.param({"marker": {"regex": r"(a)\1"}}, id="backreference: not linear-time"),
        pytest.param({"marker": {"regex": r"a(?=b)"}}, id="look-ahead: not linear-time"),
        pytest.param({"marker": {"css": "div["}}, id="css that does not parse"),
        pytest.param({"marker": {"css": ""}}, id="empty css"),
        pytest.param({"marker": {"json_pointer": "data/user"}}, id="pointer without leading slash"),
        pytest.param({"marker": {"json_pointer": "/a~2b"}}, id="pointer with a bad escape"),
        pytest.param({"marker": {"json_pointer": "/a~"}}, id="pointer ending in ~"),
        pytest.param({"page_guard": {"css": "a", "json_pointer": "/a"}}, id="guard with two forms"),
        pytest.param({"page_guard": {"regex": "[z-a]"}}, id="guard regex that does not compile"),
        pytest.param({"login_url_prefix": "/accounts/login"}, id="login prefix not absolute"),
        pytest.param({"session": {"max_uses": 0}}, id="max_uses below 1"),
        pytest.param({"session": {"warmup_url": "social.example"}}, id="warmup not absolute"),
        pytest.param({"session": {"max_age_s": 0}}, id="max_age_s not positive"),
        pytest.param({"not_found_status": [404], "blocked_status": [404]}, id="status both not found and blocked"),
        pytest.param({"blocked_status": [42]}, id="not an HTTP status"),
        pytest.param({"name": "has space"}, id="name not a path segment"),
        pytest.param({"extra": 1}, id="unknown field"),
    ],
)
def test_an_invalid_spec_is_a_validation_error(changes):
    with pytest.raises(ValidationError):
        spec(**changes)


def test_a_regex_of_exactly_1000_characters_is_accepted():
    assert spec(marker={"regex": "a" * 1000}).marker.regex == "a" * 1000


def test_the_default_name_is_the_ascii_host():
    assert spec(url="https://Bücher.example:8443/{target}").name == "xn--bcher-kva.example"


def test_a_target_in_the_host_is_allowed_with_a_name():
    s = spec(url="https://{target}.blogs.example/", name="blogs")
    assert target_url(s, "bo") == "https://bo.blogs.example/"


def test_an_invalid_url_reports_the_url_not_a_missing_name():
    with pytest.raises(ValidationError) as caught:
        spec(url="nonsense")
    assert [error["loc"] for error in caught.value.errors()] == [("url",)]


def test_a_pointer_to_the_whole_document_and_escapes_are_rfc_6901():
    assert spec(marker={"json_pointer": ""}).marker.json_pointer == ""
    assert spec(marker={"json_pointer": "/a~0b/c~1d/0"}).marker.json_pointer == "/a~0b/c~1d/0"


@pytest.mark.parametrize(
    ("target", "url"),
    [
        ("alice", "https://social.example/alice/"),
        ("Alice", "https://social.example/Alice/"),
        ("a/b?c#d", "https://social.example/a%2Fb%3Fc%23d/"),
        ("zoë", "https://social.example/zo%C3%AB/"),
        ("x" * 256, "https://social.example/" + "x" * 256 + "/"),
    ],
)
def test_the_target_is_substituted_url_encoded_and_case_kept(target, url):
    assert target_url(spec(), target) == url


def test_every_placeholder_is_substituted():
    assert target_url(spec(url="https://s.example/{target}?u={target}"), "bo") == "https://s.example/bo?u=bo"


@pytest.mark.parametrize("target", ["", "a b", "tab\there", "new\nline", "x" * 257, "\u00a0nbsp"])
def test_an_invalid_target_name_is_refused(target):
    with pytest.raises(InvalidTargetName):
        check_target(target)
    with pytest.raises(ValueError):
        target_url(spec(), target)
