import json
import time

import pytest
from scrapersky.checks import Document, Marker, NotJson, find, parse_pointer, resolve
from scrapersky.checks.markers import EVIDENCE_CHARS, around

PAGE = """<!doctype html><html><head><title>alice</title></head><body>
<header class="profile" data-user="alice">alice</header>
<section class="stories"><div class="story-ring" data-active="1">Story</div></section>
</body></html>"""


def marker(**form):
    return Marker.model_validate(form)


@pytest.mark.parametrize(
    ("form", "present"),
    [
        ({"css": "div.story-ring[data-active='1']"}, True),
        ({"css": "section.stories > div"}, True),
        ({"css": "div.story-ring[data-active='0']"}, False),
        ({"css": "video"}, False),
        ({"regex": r'class="story-ring"\s+data-active="1"'}, True),
        ({"regex": r"(?i)STORY-RING"}, True),
        ({"regex": r"story-ring.*data-active=\"0\""}, False),
    ],
)
def test_css_and_regex_markers_on_html(form, present):
    found = find(marker(**form), Document(PAGE))
    assert found.present is present
    assert (found.evidence is not None) is present


def test_css_evidence_is_the_first_match_cut_to_200_characters():
    found = find(marker(css="div.story-ring"), Document(PAGE))
    assert found.evidence == '<div class="story-ring" data-active="1">Story</div>'
    long = "<div class='x'>" + "y" * 1000 + "</div>"
    assert len(find(marker(css="div.x"), Document(long)).evidence or "") == EVIDENCE_CHARS


def test_regex_evidence_surrounds_the_first_match():
    text = "a" * 500 + "MARK" + "b" * 500 + "MARK"
    evidence = find(marker(regex="MARK"), Document(text)).evidence or ""
    assert len(evidence) == EVIDENCE_CHARS
    assert evidence == "a" * 98 + "MARK" + "b" * 98


def test_evidence_near_the_edges_stays_within_the_text():
    assert around("MARKxyz", 0, 4) == "MARKxyz"
    assert around("x" * 300 + "MARK", 300, 304) == "x" * 196 + "MARK"
    assert around("m" * 500, 0, 500) == "m" * 200


def test_regex_match_offsets_count_characters_not_utf8_bytes():
    text = "é" * 300 + "story"
    assert (find(marker(regex="story"), Document(text)).evidence or "").endswith("story")


def test_catastrophic_backtracking_pattern_finishes_fast():
    body = "a" * 200_000 + "b"
    start = time.perf_counter()
    found = find(marker(regex="(a+)+$"), Document(body))
    nested = find(marker(regex=r"(\w+\s?)*$x"), Document(body))
    assert not found.present and not nested.present
    assert time.perf_counter() - start < 1.0


API = {"data": {"user": {"has_story": True, "stories": [], "count": 0, "name": "a/b~c", "reels": [{"id": 7}]}}}


@pytest.mark.parametrize(
    ("pointer", "present", "evidence"),
    [
        ("/data/user/has_story", True, "true"),
        ("/data/user/reels/0", True, '{"id": 7}'),
        ("/data/user/reels/0/id", True, "7"),
        ("/data/user/stories", False, None),  # [] is not truthy
        ("/data/user/count", False, None),
        ("/data/user/missing", False, None),
        ("/data/user/reels/1", False, None),
        ("/data/user/reels/-", False, None),
        ("/data/user/reels/01", False, None),
        ("/data/user/has_story/deeper", False, None),
        ("", True, json.dumps(API)),
    ],
)
def test_json_pointer_marker_is_present_when_truthy(pointer, present, evidence):
    found = find(marker(json_pointer=pointer), Document(json.dumps(API)))
    assert (found.present, found.evidence) == (present, evidence)


def test_json_pointer_unescapes_tilde_and_slash():
    doc = {"a/b": {"m~n": "yes"}}
    assert parse_pointer("/a~1b/m~0n") == ("a/b", "m~n")
    assert parse_pointer("/~01") == ("~1",)  # ~0 is unescaped last: "~01" is "~1", not "/"
    assert resolve(doc, parse_pointer("/a~1b/m~0n")) == (True, "yes")
    assert resolve({"": 1}, parse_pointer("/")) == (True, 1)


def test_json_evidence_of_a_large_value_is_capped():
    body = json.dumps({"stories": list(range(2000))})
    assert len(find(marker(json_pointer="/stories"), Document(body)).evidence or "") == 1000


@pytest.mark.parametrize("body", ["<html>captcha</html>", "", "[" * 100_000])
def test_json_pointer_on_a_body_that_is_not_json_raises(body):
    with pytest.raises(NotJson):
        find(marker(json_pointer="/data"), Document(body))


def test_a_document_is_parsed_once_for_marker_and_guard():
    document = Document(PAGE)
    assert find(marker(css="header.profile"), document).present
    tree = document.html
    assert find(marker(css="div.story-ring"), document).present
    assert document.html is tree
