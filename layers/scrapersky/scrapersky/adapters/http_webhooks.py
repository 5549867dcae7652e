"""WebhookSender on `requests`: one POST under the fetcher's SSRF guard, no redirect followed, a total deadline.

The host is resolved and checked (scheme, port, every address) right before the POST, as the fetcher checks each
hop; a redirect is an answer that is not 2xx (a try that failed), never followed. No cookies, no proxy from the
environment. The guard and the connection resolve the name separately: a name whose DNS answer changes in between
(rebinding) could still reach a private address; an egress-restricted network closes that gap on AWS."""

from __future__ import annotations

import requests

from scrapersky.adapters.http_deadline import DeadlineAdapter, deadline
from scrapersky.adapters.http_fetcher import USER_AGENT, BadHop, hop_target, resolve
from scrapersky.domain.targets import InvalidTarget, TargetPolicy, guard_hop
from scrapersky.event_ports import WebhookSender


class RequestsWebhookSender(WebhookSender):
    def __init__(self, policy: TargetPolicy, session: requests.Session | None = None) -> None:
        self.policy = policy
        self.session = session or requests.Session()
        self.session.trust_env = False
        adapter = DeadlineAdapter()
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> int | None:
        try:
            scheme, host, port = hop_target(url)
            guard_hop(scheme, host, port, self.policy, resolve)
        except (BadHop, InvalidTarget, OSError, UnicodeError):
            return None  # refused or unresolvable now: a failed try, retried like no answer
        try:
            with deadline(timeout_s):
                resp = self.session.post(
                    url,
                    data=body,
                    headers={"User-Agent": USER_AGENT, **headers},
                    allow_redirects=False,
                    timeout=(min(5.0, timeout_s), timeout_s),
                )
                resp.close()
                return resp.status_code
        except (requests.exceptions.RequestException, ValueError):
            return None
