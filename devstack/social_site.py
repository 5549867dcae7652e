"""A loopback "social" site for the profile kind: sessions bound to the proxy they were issued through, profiles
with stories that can be flipped, and every way a real site says no.

- `/` (the warm-up) sets a `sid` cookie bound to the client address it was issued to (each proxy of the local stack
  connects from its own 127.0.0.N, so "per client address" is "per proxy").
- `/<target>/` is the profile: `<div id="profile">`, with `<span class="story-ring">` while the target has a story.
  Without a session cookie it redirects to `/login`; with a cookie issued to another address it answers a 200
  challenge page without the profile (that is the cookie crossing proxies: counted in `crossings`).
- Unknown targets are 404; `private-*` always redirect to `/login`; `captcha-*` answer a 200 captcha page.
- Per client address: `limit(client, n)` answers the next n profile requests 429 + Retry-After: 1;
  `refuse(client, n)` answers them "401 please wait".
"""

from __future__ import annotations

import html
import secrets
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler
from urllib.parse import unquote

from devstack.serving import get_server

PROFILE = '<!doctype html><html><body><div id="profile"><h1>{name}</h1>{ring}</div></body></html>'
RING = '<span class="story-ring">story of {name}</span>'
CHALLENGE = "<!doctype html><html><body><p>Checking your browser...</p></body></html>"
CAPTCHA = '<!doctype html><html><body><form id="captcha">Prove you are human</form></body></html>'


def check_spec(base_url: str, name: str = "stories", max_uses: int = 50) -> dict[str, object]:
    """The check spec that reads this site (options.check)."""
    return {
        "name": name,
        "url": f"{base_url}/{{target}}/",
        "marker": {"css": ".story-ring"},
        "page_guard": {"css": "#profile"},
        "login_url_prefix": f"{base_url}/login",
        "session": {"warmup_url": f"{base_url}/", "max_uses": max_uses, "max_age_s": 1800},
    }


class SocialSite:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, profiles: tuple[str, ...] = ()) -> None:
        self.profiles: set[str] = set(profiles)
        self.stories: set[str] = set()
        self.sessions: dict[str, str] = {}  # sid -> the client address it was issued to
        self.crossings = 0  # requests that presented a cookie issued through another address
        self.warmups: Counter[str] = Counter()  # client -> sessions issued
        self.served: Counter[str] = Counter()  # client -> profile pages served with the guard
        self.refused: Counter[str] = Counter()  # client -> 429 / 401 answers
        self._limits: Counter[str] = Counter()
        self._refusals: Counter[str] = Counter()
        self._lock = threading.Lock()
        site = self

        self.server, self.thread = get_server(site.handle, host, port)

    @property
    def base_url(self) -> str:
        return f"http://localhost:{self.server.server_address[1]}"  # a name: each proxy connects from its address

    def __enter__(self) -> SocialSite:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    # ---- what a test or the demo changes ------------------------------------------------------------------------
    def set_story(self, target: str, on: bool) -> None:
        with self._lock:
            (self.stories.add if on else self.stories.discard)(target)

    def limit(self, client: str, n: int) -> None:
        with self._lock:
            self._limits[client] += n

    def refuse(self, client: str, n: int) -> None:
        with self._lock:
            self._refusals[client] += n

    # ---- serving ------------------------------------------------------------------------------------------------
    def handle(self, req: BaseHTTPRequestHandler) -> None:
        path = req.path.split("?", 1)[0]
        client = req.client_address[0]
        if path == "/":
            self._warmup(req, client)
        elif path.startswith("/login"):
            self._send(req, 200, "<!doctype html><html><body><form id='login'>Log in</form></body></html>")
        else:
            self._profile(req, client, unquote(path.strip("/")))

    def _warmup(self, req: BaseHTTPRequestHandler, client: str) -> None:
        sid = secrets.token_hex(8)
        with self._lock:
            self.sessions[sid] = client
            self.warmups[client] += 1
        self._send(req, 200, "<html><body>welcome</body></html>", {"Set-Cookie": f"sid={sid}; Path=/; HttpOnly"})

    def _profile(self, req: BaseHTTPRequestHandler, client: str, target: str) -> None:
        refusal = self._refusal(client)
        if refusal is not None:
            self._send(req, *refusal)
            return
        if target.startswith("private-"):
            self._send(req, 302, "", {"Location": "/login?next=/" + target})
            return
        sid = _cookie(req.headers.get("Cookie") or "", "sid")
        with self._lock:
            owner = self.sessions.get(sid or "")
        if owner is None:
            self._send(req, 302, "", {"Location": "/login?next=/" + target})
            return
        if owner != client:
            with self._lock:
                self.crossings += 1
            self._send(req, 200, CHALLENGE)
            return
        self._answer(req, client, target)

    def _refusal(self, client: str) -> tuple[int, str, dict[str, str]] | None:
        with self._lock:
            if self._limits[client] > 0:
                self._limits[client] -= 1
                self.refused[client] += 1
                return 429, "<h1>Too many requests</h1>", {"Retry-After": "1"}
            if self._refusals[client] > 0:
                self._refusals[client] -= 1
                self.refused[client] += 1
                return 401, "<h1>Please wait a few minutes before you try again</h1>", {}
        return None

    def _answer(self, req: BaseHTTPRequestHandler, client: str, target: str) -> None:
        if target.startswith("captcha-"):
            self._send(req, 200, CAPTCHA)
            return
        if target not in self.profiles:
            self._send(req, 404, "<html><body>Sorry, this page isn't available.</body></html>")
            return
        name = html.escape(target)
        with self._lock:
            ring = RING.format(name=name) if target in self.stories else ""
            self.served[client] += 1
        self._send(req, 200, PROFILE.format(name=name, ring=ring))

    @staticmethod
    def _send(req: BaseHTTPRequestHandler, status: int, body: str, headers: dict[str, str] | None = None) -> None:
        data = body.encode()
        req.send_response(status)
        for k, v in {"Content-Type": "text/html; charset=utf-8", **(headers or {})}.items():
            req.send_header(k, v)
        req.send_header("Content-Length", str(len(data)))
        req.end_headers()
        req.wfile.write(data)


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None
