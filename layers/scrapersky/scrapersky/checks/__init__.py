"""Profile checks, pure: the check spec, markers and page guards, the classification of one check's fetch, and
the rules of a target's history. No I/O here: the profile kind's processor fetches, the stores write."""

from scrapersky.checks.markers import Document, Found, Marker, NotJson, find
from scrapersky.checks.pointer import InvalidPointer, parse_pointer, resolve
from scrapersky.checks.spec import CheckSpec, InvalidTargetName, SessionSpec, check_target, target_url

__all__ = [
    "CheckSpec",
    "Document",
    "Found",
    "InvalidPointer",
    "InvalidTargetName",
    "Marker",
    "NotJson",
    "SessionSpec",
    "check_target",
    "find",
    "parse_pointer",
    "resolve",
    "target_url",
]
