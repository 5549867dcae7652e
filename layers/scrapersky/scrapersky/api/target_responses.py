"""What the target routes answer (GET /checks/{name}/targets[/{target}]), documented as responses.py does."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from scrapersky.api.responses import AUTH, DocModel, responses


class TargetErrorView(DocModel):
    code: str
    message: str
    at: str | None


class TargetView(DocModel):
    """One target's history under one check."""

    target: str
    check: str
    active: bool | None = Field(description="null until the first present/absent/not_found")
    active_since: str | None = Field(description="checked_at of the first present of the current streak")
    last_detected_at: str | None
    last_checked_at: str | None = Field(description="of the newest succeeded check")
    last_state: str | None = Field(description="present | absent | not_found, of the newest succeeded check")
    checks: int = Field(description="finished items, failed ones included")
    detections: int
    consecutive_errors: int
    last_error: TargetErrorView | None
    last_batch_id: str | None


class TargetList(DocModel):
    targets: list[TargetView]
    next_cursor: str | None = Field(description="null at the end; a page may be short and still have one")


_DOCS: dict[str, dict[str, Any]] = {
    "list_targets": {
        "summary": "A check's targets and their history, ordered by target",
        "responses": responses(200, TargetList, "A page of targets", (*AUTH, 404)),
    },
    "get_target": {
        "summary": "One target's history",
        "responses": responses(200, TargetView, "The target", (*AUTH, 404)),
    },
}


def target_doc(route: str) -> dict[str, Any]:
    return _DOCS[route]
