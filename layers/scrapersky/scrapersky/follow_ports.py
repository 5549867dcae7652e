"""The port of `options.follow` (services/follow.py): what following a sitemap batch's URLs into its child page batch
keeps. Adapter: adapters/dynamo_follow.py; fake in tests/fakes.

- The robots.txt each item read, per host, kept compactly (only its rules) so the follow can judge a URL later.
- One "seen" row per URL of the batch: the first item whose URL claims it follows it, the batch's other listings of
  it are duplicates. A claim remembers the item that made it, so a redelivered page finds its own claims again
  (and, following the same order, assigns the same child seqs).
- The child's items in chunks (first seq -> URLs), written while collecting, sent once the child exists.
- The parent's follow state (and child id) on its batch record."""

from __future__ import annotations

import abc
import zlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from scrapersky.sitemaps import RobotsFile

FOLLOWING, DONE, FAILED, CANCELLED = "following", "done", "failed", "cancelled"  # a follow's states
ENDED = (DONE, FAILED, CANCELLED)  # never changed again
MAX_KEPT_RULES = 350_000  # bytes of compressed rules: well inside DynamoDB's 400 KB item limit
_RULE_FIELDS = ("user-agent", "allow", "disallow")


def compact_rules(body: bytes) -> bytes:
    """What the follow needs of a robots.txt (its user-agent, allow and disallow lines, comments dropped), compressed.
    A file whose rules do not fit even so keeps its first rules (a crawler may stop reading at 500 KiB anyway)."""
    text = body.decode("utf-8-sig", errors="replace")
    lines = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        field = line.split(":", 1)[0].strip().lower()
        if ":" in line and field in _RULE_FIELDS:
            lines.append(line)
    rules = "\n".join(lines).encode()
    packed = zlib.compress(rules, 9)
    while len(packed) > MAX_KEPT_RULES:
        rules = rules[: len(rules) * 3 // 4]
        packed = zlib.compress(rules, 9)
    return packed


def robots_host(url: str) -> str:
    """The host a robots.txt speaks for (RFC 9309: one file per host; case does not matter)."""
    return (urlsplit(url).hostname or "").lower()


@dataclass(frozen=True)
class KeptRobots:
    """One host's robots.txt as an item read it: the HTTP status (None: no answer) and its compacted rules."""

    url: str
    status_code: int | None
    rules: bytes = b""

    @classmethod
    def of(cls, url: str, status_code: int | None, body: bytes) -> KeptRobots:
        ok = status_code is not None and 200 <= status_code < 300
        return cls(url, status_code, compact_rules(body) if ok else b"")

    def file(self) -> RobotsFile:
        body = zlib.decompress(self.rules) if self.rules else b""
        return RobotsFile.from_response(self.url, self.status_code, body)


class FollowStore(abc.ABC):
    """What following a sitemap batch into its child keeps, keyed by the parent batch."""

    @abc.abstractmethod
    def keep_robots(self, batch_id: str, host: str, robots: KeptRobots, now: float) -> None:
        """Keeps the robots.txt read for `host` (the first kept wins: the items of a batch read the same file)."""

    @abc.abstractmethod
    def robots(self, batch_id: str, hosts: list[str]) -> dict[str, KeptRobots]:
        """The robots.txt kept for each of these hosts (a host never read is absent)."""

    @abc.abstractmethod
    def claim(self, batch_id: str, urls: list[tuple[str, str]]) -> list[bool]:
        """Claims each (url, item) for the batch's follow: True where the URL was new to the batch or was claimed by
        that same item before (a redelivery), False where another item's listing of it claimed it."""

    @abc.abstractmethod
    def save_chunk(self, batch_id: str, first_seq: int, items: list[str], now: float) -> None:
        """Keeps the child's items first_seq.. (overwriting the same chunk of a redelivered page, unchanged)."""

    @abc.abstractmethod
    def chunk(self, batch_id: str, first_seq: int) -> list[str]:
        """The kept chunk that starts at first_seq (strongly consistent); [] when there is none."""

    @abc.abstractmethod
    def begin(self, batch_id: str, state: dict[str, Any]) -> bool:
        """Sets the parent's follow state if it has none yet; False when following had begun."""

    @abc.abstractmethod
    def record(self, batch_id: str, state: dict[str, Any], child_batch_id: str | None) -> bool:
        """Sets the parent's follow state and its child batch id, unless its follow ended (a state in ENDED): a late
        step of a doubled chain never rolls a finished follow back. False when it had ended."""
