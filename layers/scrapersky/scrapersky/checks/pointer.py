"""JSON Pointer (RFC 6901): parsing a pointer into its reference tokens and resolving it in a parsed document."""

from __future__ import annotations

import re
from typing import Any

_ESCAPE = re.compile(r"~(?![01])")  # a `~` not followed by 0 or 1 is not RFC 6901
_INDEX = re.compile(r"0|[1-9][0-9]*")  # array indexes: no sign, no leading zero ("-" names no element)


class InvalidPointer(ValueError):
    """Text that is not an RFC 6901 JSON pointer; its message says why."""


def parse_pointer(pointer: str) -> tuple[str, ...]:
    """The reference tokens of `pointer`, unescaped (`~1` → `/`, then `~0` → `~`). `""` is the whole document."""
    if pointer == "":
        return ()
    if not pointer.startswith("/"):
        raise InvalidPointer("a JSON pointer is empty or starts with '/'")
    if _ESCAPE.search(pointer):
        raise InvalidPointer("'~' must be followed by 0 or 1 (write '~0' for '~' and '~1' for '/')")
    return tuple(token.replace("~1", "/").replace("~0", "~") for token in pointer[1:].split("/"))


def resolve(document: Any, tokens: tuple[str, ...]) -> tuple[bool, Any]:
    """(True, value) where the pointer leads to a value, else (False, None): a missing member, an index out of
    range or not an index, or a step into a scalar."""
    value = document
    for token in tokens:
        if isinstance(value, dict):
            if token not in value:
                return False, None
            value = value[token]
        elif isinstance(value, list) and _INDEX.fullmatch(token) and int(token) < len(value):
            value = value[int(token)]
        else:
            return False, None
    return True, value
