"""Reading an API Gateway event's body before the resolver does: what no JSON reader should take is a clear 4xx
here (the resolver would raise from inside its own body parsing, a 500), and a body sent without a JSON content
type is read as JSON."""

from __future__ import annotations

import base64
import json
from typing import Any

MAX_BODY_CHARS = 6 * 1024 * 1024  # Lambda's synchronous payload: a deployed function never gets a larger body


class _DuplicatedKey(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """`object_pairs_hook`: an object that names a key twice is refused (readers differ on which one counts)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicatedKey(key)
        out[key] = value
    return out


def unreadable_body(event: dict[str, Any]) -> dict[str, Any] | None:
    """A 4xx for a body no JSON reader should take: past 6 MB (413, as a deployed API answers: Lambda takes no
    more), bytes that are not UTF-8 (a body API Gateway passed base64 encoded), nesting deep enough to exhaust the
    parser's recursion or an integer past Python's digit limit (those raise from inside the resolver's body
    parsing, where they would be a 500: the decoding and the parse here are the same ones, done first), a key named
    twice in one object (400), a top-level array (422: the resolver would take its first element as the body)."""
    body = event.get("body")
    if not body:
        return None
    if len(body) > MAX_BODY_CHARS:
        return _bad_body("the body is larger than this API takes (6 MB)", None, 413)
    try:
        text = base64.b64decode(body.encode()).decode() if event.get("isBase64Encoded") else body
    except ValueError as e:  # binascii.Error, UnicodeDecodeError
        return _bad_body("the body is not UTF-8 text", type(e).__name__)
    try:
        value = json.loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError:
        return None  # plain malformed JSON: the resolver answers it (400) as any other
    except _DuplicatedKey as e:
        key = json.dumps(e.key[:100])
        return _bad_body(f"the body is not JSON this API reads: a duplicated key {key}", "duplicated key")
    except (RecursionError, ValueError) as e:
        nested = ": nested too deeply" if isinstance(e, RecursionError) else ""
        return _bad_body("the body is not JSON this API reads" + nested, type(e).__name__)
    if isinstance(value, list):
        return _bad_body("request is not valid", "the body is a JSON array: an object is expected", 422)
    return None


def _bad_body(message: str, detail: str | None, status: int = 400) -> dict[str, Any]:
    body: dict[str, Any] = {"message": message}
    if detail:
        body["details"] = [{"field": "body", "message": detail}]
    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}


def json_by_default(event: dict[str, Any]) -> dict[str, Any]:
    """The API speaks JSON: a body sent without a JSON content type (curl -d) is read as JSON anyway."""
    headers = event.get("headers") or {}
    ctype = next((v for k, v in headers.items() if k.lower() == "content-type"), "") or ""
    if not event.get("body") or "json" in ctype.lower():
        return event
    return {
        **event,
        "headers": {**_without_content_type(headers), "Content-Type": "application/json"},
        "multiValueHeaders": {
            **_without_content_type(event.get("multiValueHeaders") or {}),
            "Content-Type": ["application/json"],
        },
    }


def _without_content_type(headers: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in headers.items() if k.lower() != "content-type"}
