"""Profile checks, pure: the check spec, markers and page guards, the classification of one check's fetch, and
the rules of a target's history. No I/O here: the profile kind's processor fetches, the stores write."""

from typing import TYPE_CHECKING

from scrapersky.lazy import exports

if TYPE_CHECKING:
    from scrapersky.checks.history import (
        Applied,
        FinishedCheck,
        TargetError,
        TargetEvent,
        TargetEventType,
        TargetRecord,
        apply_check,
    )
    from scrapersky.checks.markers import Document, Found, Marker, NotJson, find
    from scrapersky.checks.outcome import (
        BLOCK_COOL_S,
        CheckFailure,
        CheckFetch,
        CheckOutcome,
        CheckState,
        classify_check,
    )
    from scrapersky.checks.pointer import InvalidPointer, parse_pointer, resolve
    from scrapersky.checks.spec import CheckSpec, InvalidTargetName, SessionSpec, check_target, target_url

__getattr__ = exports(
    globals(),
    {
        "history": (
            "Applied",
            "FinishedCheck",
            "TargetError",
            "TargetEvent",
            "TargetEventType",
            "TargetRecord",
            "apply_check",
        ),
        "markers": ("Document", "Found", "Marker", "NotJson", "find"),
        "outcome": ("BLOCK_COOL_S", "CheckFailure", "CheckFetch", "CheckOutcome", "CheckState", "classify_check"),
        "pointer": ("InvalidPointer", "parse_pointer", "resolve"),
        "spec": ("CheckSpec", "InvalidTargetName", "SessionSpec", "check_target", "target_url"),
    },
)

__all__ = [
    "BLOCK_COOL_S",
    "Applied",
    "CheckFailure",
    "CheckFetch",
    "CheckOutcome",
    "CheckSpec",
    "CheckState",
    "Document",
    "FinishedCheck",
    "Found",
    "InvalidPointer",
    "InvalidTargetName",
    "Marker",
    "NotJson",
    "SessionSpec",
    "TargetError",
    "TargetEvent",
    "TargetEventType",
    "TargetRecord",
    "apply_check",
    "check_target",
    "classify_check",
    "find",
    "parse_pointer",
    "resolve",
    "target_url",
]
