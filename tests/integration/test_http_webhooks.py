"""The webhook sender against real loopback servers: a redirect is an answer (never followed), the SSRF guard
refuses before connecting, a receiver that does not answer in time is no answer."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from scrapersky.adapters.http_webhooks import RequestsWebhookSender
from scrapersky.domain.targets import TargetPolicy

from tests.loopback import WebhookReceiver

LOCAL = TargetPolicy(allow_private=True, any_port=True)


def test_a_2xx_is_returned_and_the_body_and_headers_arrive_as_sent():
    with WebhookReceiver() as receiver:
        status = RequestsWebhookSender(LOCAL).post(receiver.url, b'{"a":1}', {"X-ScraperSky-Signature": "t=1,v1=x"}, 10)
    assert status == 200
    ((raw, headers, _),) = receiver.got
    assert raw == b'{"a":1}' and headers["X-ScraperSky-Signature"] == "t=1,v1=x"


def test_a_redirect_is_not_followed():
    hits: list[str] = []

    class Redirect(BaseHTTPRequestHandler):
        def log_message(self, *a: object) -> None:
            pass

        def do_POST(self) -> None:
            hits.append(self.path)
            self.send_response(307)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        assert RequestsWebhookSender(LOCAL).post(url, b"{}", {}, 10) == 307
    finally:
        server.shutdown()
        server.server_close()
    assert hits == ["/hook"]


def test_the_deployed_guard_refuses_a_private_address_without_connecting():
    with WebhookReceiver() as receiver:
        assert RequestsWebhookSender(TargetPolicy()).post(receiver.url, b"{}", {}, 10) is None
    assert receiver.got == []


def test_a_receiver_that_does_not_answer_within_the_deadline_is_no_answer():
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts the connection, never answers
    try:
        start = time.monotonic()
        got = RequestsWebhookSender(LOCAL).post(f"http://127.0.0.1:{silent.getsockname()[1]}/", b"{}", {}, 1.0)
        assert got is None and time.monotonic() - start < 5
    finally:
        silent.close()
