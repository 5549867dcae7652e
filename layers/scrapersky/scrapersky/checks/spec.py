"""The check spec (`options.check` of a profile batch) and target names: validated when the batch is created, so
an invalid spec is a 422 and nothing is created or fetched."""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from scrapersky.checks.markers import Marker

PLACEHOLDER = "{target}"
MAX_TARGET_LENGTH = 256
_TARGET = re.compile(rf"\S{{1,{MAX_TARGET_LENGTH}}}")
# A check's name is a path segment of /checks/{name}/targets; a host name (the default) always fits.
CheckName = Annotated[str, StringConstraints(min_length=1, max_length=253, pattern=r"^[A-Za-z0-9._~:-]+$")]
Status = Annotated[int, Field(ge=100, le=599)]


class InvalidTargetName(ValueError):
    """A target that is not a target name; its message is the reason shown to the client."""


def check_target(target: str) -> str:
    """`target` when it is a target name (1 to 256 characters, no whitespace; case is kept), else raises."""
    if not _TARGET.fullmatch(target):
        raise InvalidTargetName(f"a target is 1-{MAX_TARGET_LENGTH} characters without whitespace")
    return target


def _http_url(value: str, what: str) -> str:
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{what} must be an absolute http(s) URL")
    if "@" in parts.netloc:
        raise ValueError(f"{what} may not carry credentials")  # the fetcher refuses them on every hop
    parts.port  # noqa: B018 -- raises ValueError for a port that is not one
    return value


def _default_name(template: Any) -> str:
    """The URL's host, the default name. Raises ValueError when the host holds the target (a name per target
    would be no name for the check)."""
    try:
        parts = urlsplit(str(template))
        host = parts.hostname
        ascii_host = host.encode("idna").decode("ascii") if host else None
    except (ValueError, UnicodeError):
        ascii_host = None
    if ascii_host is None:
        return "unnamed"  # a stand-in: the url is invalid and its own error is the one reported
    if PLACEHOLDER in parts.netloc:
        raise ValueError(f"give the check a name: the url's host holds {PLACEHOLDER}")
    return ascii_host


class SessionSpec(BaseModel):
    """A cookie jar per (tenant, proxy, host): warmed up on first use, retired after `max_uses` checks (the
    warm-up is not one), `max_age_s` or a block."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    warmup_url: str | None = None
    max_uses: int = Field(default=50, ge=1)
    max_age_s: float = Field(default=1800, ge=1, le=7 * 86_400)

    @field_validator("warmup_url")
    @classmethod
    def _warmup_is_http(cls, value: str | None) -> str | None:
        return None if value is None else _http_url(value, "warmup_url")


class CheckSpec(BaseModel):
    """`options.check`: where each target's page is, what marks it present, and how the site says no."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: CheckName
    url: str
    marker: Marker
    page_guard: Marker | None = None
    not_found_status: list[Status] = Field(default_factory=lambda: [404])
    blocked_status: list[Status] = Field(default_factory=lambda: [401, 403])
    login_url_prefix: str | None = None
    session: SessionSpec = Field(default_factory=SessionSpec)

    @model_validator(mode="before")
    @classmethod
    def _name_defaults_to_host(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("name") is None:
            data = {**data, "name": _default_name(data.get("url"))}
        return data

    @field_validator("url")
    @classmethod
    def _url_is_a_template(cls, value: str) -> str:
        if PLACEHOLDER not in value:
            raise ValueError(f"url must hold {PLACEHOLDER}")
        _http_url(value.replace(PLACEHOLDER, "t"), "url")
        return value

    @field_validator("login_url_prefix")
    @classmethod
    def _prefix_is_absolute(cls, value: str | None) -> str | None:
        return None if value is None else _http_url(value, "login_url_prefix")

    @model_validator(mode="after")
    def _statuses_do_not_overlap(self) -> CheckSpec:
        both = set(self.not_found_status) & set(self.blocked_status)
        if both:
            raise ValueError(f"a status cannot be both not found and blocked: {sorted(both)}")
        return self


def target_url(spec: CheckSpec, target: str) -> str:
    """The URL of `target`'s page: the target, URL-encoded (a `/` too), in place of every `{target}`."""
    return spec.url.replace(PLACEHOLDER, quote(check_target(target), safe=""))
