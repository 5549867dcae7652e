"""A total deadline for one HTTP exchange, whatever the other side does.

`requests`' timeouts bound each socket operation, not the exchange: a target that drips one byte every half
second never trips a read timeout and can hold a worker until its Lambda times out. Here every connection
registers its socket with the exchange running in its thread before it waits for the answer, and a timer shuts
those sockets down when the deadline passes, so the blocked read (headers or body) fails at once.

The same connections keep their word on `Connection: close`: urllib3 pools a connection unless the *answer* says
close, so a request that told the other side to close (every plain-http request through a proxy) went back to the
pool, and the next request (a redirect's next hop, sent at once after an empty 302) went out on a connection the
proxy was closing: it was dropped unanswered, a RemoteDisconnected that urllib3 reports as a ProxyError. Here such
a connection is closed when it is handed back, so the next request opens its own (RFC 9112 §9.6)."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.poolmanager import PoolManager

_current = threading.local()


class _Exchange:
    """The sockets one exchange waits on, and whether its deadline passed."""

    def __init__(self) -> None:
        self.sockets: list[socket.socket] = []
        self.expired = False
        self.lock = threading.Lock()

    def watch(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self.lock:
            self.sockets.append(sock)
            expired = self.expired
        if expired:
            _shut(sock)

    def expire(self) -> None:
        with self.lock:
            self.expired = True
            sockets = list(self.sockets)
        for sock in sockets:
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def _watch(conn: HTTPConnection) -> None:
    exchange: _Exchange | None = getattr(_current, "exchange", None)
    if exchange is not None:
        exchange.watch(conn.sock)


def _says_close(headers: Any) -> bool:
    return any(k.lower() == "connection" and "close" in str(v).lower() for k, v in dict(headers or {}).items())


class _WatchedHTTPConnection(HTTPConnection):
    closing = False  # the last request on it asked the other side to close the connection

    def request(self, method: str, url: str, body: Any = None, headers: Any = None, **kwargs: Any) -> None:
        self.closing = _says_close(headers)
        super().request(method, url, body, headers, **kwargs)

    def getresponse(self) -> Any:  # type: ignore[override]
        _watch(self)
        return super().getresponse()


class _WatchedHTTPSConnection(HTTPSConnection):
    def getresponse(self) -> Any:  # type: ignore[override]
        _watch(self)
        return super().getresponse()


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection

    def _put_conn(self, conn: Any) -> None:
        if getattr(conn, "closing", False):
            conn.close()  # told the other side to close: never sent on again (the pool reconnects it when reused)
        super()._put_conn(conn)


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


def _watched(manager: PoolManager) -> PoolManager:
    manager.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}
    return manager


class DeadlineAdapter(HTTPAdapter):
    """An HTTPAdapter whose connections (direct and through proxies) take part in `deadline()`."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        _watched(self.poolmanager)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        known = proxy in self.proxy_manager
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        return manager if known else _watched(manager)


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[_Exchange]:
    """Within this block, requests sent through a DeadlineAdapter in this thread fail once `seconds` passed:
    their sockets are shut down, so a read blocked on a dripping target raises at once."""
    exchange = _Exchange()
    previous = getattr(_current, "exchange", None)
    _current.exchange = exchange
    timer = threading.Timer(max(0.0, seconds), exchange.expire)
    timer.daemon = True
    timer.start()
    try:
        yield exchange
    finally:
        timer.cancel()
        _current.exchange = previous
