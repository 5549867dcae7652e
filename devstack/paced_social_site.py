"""The loopback social site (devstack/social_site.py) with a rate limit per client address, as a real site has:
every request of an address (warm-ups and profiles alike, unless `free_warmups`) draws from its token bucket
(devstack/site.RateLimiter); over budget it answers 429 + Retry-After, counted in `refused`. Each proxy of the
local stack connects from its own 127.0.0.N, so "per client address" is "per proxy". What the site served, and
when, is kept for a benchmark."""

from __future__ import annotations

import math
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler

from devstack.site import RateLimiter
from devstack.social_site import SocialSite


class PacedSocialSite(SocialSite):
    def __init__(self, profiles: tuple[str, ...], rate: float, burst: float = 1.0, free_warmups: bool = False) -> None:
        super().__init__(profiles=profiles)
        self.limiter = RateLimiter(rate, burst)
        self.free_warmups = free_warmups  # True: the warm-up page `/` is never refused nor counted
        self.rate_limited: Counter[str] = Counter()  # client -> 429s of the rate limit (also counted in `refused`)
        self.checked: Counter[str] = Counter()  # target -> profile pages served with the guard
        self.first_request = 0.0
        self.last_served = 0.0

    def handle(self, req: BaseHTTPRequestHandler) -> None:
        now = time.time()
        client = req.client_address[0]
        with self._lock:
            self.first_request = self.first_request or now
        free = self.free_warmups and req.path.split("?", 1)[0] == "/"
        wait = None if free else self.limiter.admit(client, now)
        if wait is not None:
            with self._lock:
                self.refused[client] += 1
                self.rate_limited[client] += 1
            self._send(req, 429, "<h1>Too many requests</h1>", {"Retry-After": str(max(1, math.ceil(wait)))})
            return
        super().handle(req)

    def _answer(self, req: BaseHTTPRequestHandler, client: str, target: str) -> None:
        with self._lock:
            self.checked[target] += 1
            self.last_served = time.time()
        super()._answer(req, client, target)
