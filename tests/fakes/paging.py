"""Opaque cursors for the fakes: random strings naming a position we gave out, valid for one listing only."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from typing import TypeVar

from scrapersky.errors import InvalidCursor

T = TypeVar("T")


class Cursors:
    def __init__(self) -> None:
        self._given: dict[str, tuple[str, str]] = {}  # cursor -> (listing it was given for, key of its last row)

    def page(
        self,
        scope: str,
        rows: Sequence[T],
        key: Callable[[T], str],
        limit: int,
        cursor: str | None,
        descending: bool = False,
    ) -> tuple[list[T], str | None]:
        """The rows (sorted by `key`) after the cursor's position, like an exclusive start key: rows that came
        or went since the last page do not shift it. A cursor is given only when more rows remain."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        if cursor is not None:
            given = self._given.get(cursor)
            if given is None or given[0] != scope:
                raise InvalidCursor("cursor is not valid")
            last = given[1]
            rows = [r for r in rows if (key(r) < last if descending else key(r) > last)]
        taken = list(rows[:limit])
        if len(rows) <= limit:
            return taken, None
        token = secrets.token_urlsafe(16)
        self._given[token] = (scope, key(taken[-1]))
        return taken, token
