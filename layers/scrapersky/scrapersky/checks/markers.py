"""Markers and page guards: what is looked for in a fetched body (a CSS selector, a regex or a JSON pointer),
validated when the check is created and evaluated on each body.

CSS runs on selectolax (Lexbor): a parse and a select of a 500 KB page take ~5 ms and its import ~8 ms (lxml +
cssselect: ~12 ms and ~19 ms). Regexes run on RE2, whose matching is linear in the body's length whatever the
pattern, so no pattern can hang a worker (there is no per-document timeout to enforce, hence no
`regex_timeout`); RE2 refuses what it cannot do in linear time (backreferences, look-arounds): a 422."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationInfo, field_validator, model_validator

if TYPE_CHECKING:  # re2 and selectolax load when a profile check first needs them (a cold start of any other kind
    from selectolax.lexbor import LexborHTMLParser  # does not pay for them)

from scrapersky.checks.pointer import parse_pointer, resolve

MAX_REGEX_LENGTH = 1000
EVIDENCE_CHARS = 200
# The contract gives a json_pointer's evidence as the value's JSON text; a cap keeps a large value (a whole
# array of stories) from swelling the item's record.
MAX_JSON_EVIDENCE = 1000

Selector = Annotated[str, StringConstraints(min_length=1)]
Pattern = Annotated[str, StringConstraints(min_length=1, max_length=MAX_REGEX_LENGTH)]


class NotJson(ValueError):
    """The body is not a JSON document, so a json_pointer marker or guard cannot be read on it."""


@functools.lru_cache(maxsize=256)
def compile_regex(pattern: str) -> Any:
    """The RE2 program for `pattern` (cached: every check of a batch runs the same one). Raises ValueError."""
    import re2

    options = re2.Options()
    options.log_errors = False  # RE2 would print every refused pattern to stderr
    try:
        return re2.compile(pattern, options)
    except re2.error as e:
        raise ValueError(f"the regex does not compile on RE2 (linear-time): {_reason(e)}") from None


def check_selector(selector: str) -> None:
    """Raises ValueError when Lexbor cannot parse `selector`."""
    from selectolax.lexbor import LexborHTMLParser, SelectolaxError

    try:
        LexborHTMLParser("").css_first(selector)
    except SelectolaxError:
        raise ValueError("the CSS selector does not parse") from None


_VALIDATORS: dict[str, Callable[[str], object]] = {
    "css": check_selector,
    "regex": compile_regex,
    "json_pointer": parse_pointer,
}


def _reason(error: Exception) -> str:
    reason = error.args[0] if error.args else ""
    return reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)


class Marker(BaseModel):
    """Exactly one of `css`, `regex` or `json_pointer`: the marker of a check, or its page guard."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    css: Selector | None = None
    regex: Pattern | None = None
    json_pointer: str | None = None

    @field_validator("css", "regex", "json_pointer")
    @classmethod
    def _expression_is_valid(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None:
            _VALIDATORS[info.field_name or ""](value)  # each raises a ValueError saying what is wrong
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> Marker:
        if len(self.forms()) != 1:
            raise ValueError("give exactly one of css, regex or json_pointer")
        return self

    def forms(self) -> list[tuple[str, str]]:
        """The (form, expression) pairs given: exactly one on a valid marker."""
        given = {"css": self.css, "regex": self.regex, "json_pointer": self.json_pointer}
        return [(form, expression) for form, expression in given.items() if expression is not None]


class Document:
    """One fetched body, parsed at most once per form whatever the marker and the guard look for."""

    def __init__(self, text: str) -> None:
        self.text = text

    @functools.cached_property
    def html(self) -> LexborHTMLParser:
        from selectolax.lexbor import LexborHTMLParser

        return LexborHTMLParser(self.text)

    @functools.cached_property
    def json(self) -> Any:
        try:
            return json.loads(self.text)
        except (ValueError, RecursionError):  # RecursionError: a document nested deeper than the parser goes
            raise NotJson("the body is not a JSON document") from None


@dataclass(frozen=True)
class Found:
    """Whether a marker is on a document, and the evidence (null unless present)."""

    present: bool
    evidence: str | None = None


ABSENT = Found(False)


def find(marker: Marker, document: Document) -> Found:
    """Evaluates `marker` on `document`. Raises NotJson for a json_pointer on a body that is not JSON."""
    form, expression = marker.forms()[0]
    return _FINDERS[form](expression, document)


def _find_css(selector: str, document: Document) -> Found:
    node = document.html.css_first(selector)
    if node is None:
        return ABSENT
    return Found(True, (node.html or "")[:EVIDENCE_CHARS])


def _find_regex(pattern: str, document: Document) -> Found:
    match = compile_regex(pattern).search(document.text)
    if match is None:
        return ABSENT
    return Found(True, around(document.text, match.start(), match.end()))


def _find_json(pointer: str, document: Document) -> Found:
    found, value = resolve(document.json, parse_pointer(pointer))
    if not (found and value):  # present when truthy: false, null, 0, "", [] and {} are absent
        return ABSENT
    return Found(True, json.dumps(value, ensure_ascii=False)[:MAX_JSON_EVIDENCE])


_FINDERS: dict[str, Callable[[str, Document], Found]] = {
    "css": _find_css,
    "regex": _find_regex,
    "json_pointer": _find_json,
}


def around(text: str, start: int, end: int, width: int = EVIDENCE_CHARS) -> str:
    """At most `width` characters of `text` around the match `text[start:end]`, the match centred (its start
    kept when it is itself longer than `width`)."""
    if end - start >= width:
        return text[start : start + width]
    low = max(0, start - (width - (end - start)) // 2)
    high = min(len(text), low + width)
    return text[max(0, high - width) : high]
