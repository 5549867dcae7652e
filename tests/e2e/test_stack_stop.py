"""`make local` stops everything it started within seconds on Ctrl-C or SIGTERM, once or twice, at any moment
(supervisors and `timeout` send a process-group kill plus a direct one)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from devstack.proxies import free_port
from devstack.stack import BUILD, MINISTACK
from tests.conftest import ROOT

pytestmark = pytest.mark.e2e


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _wait(condition, timeout_s: float) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


@pytest.fixture
def spawn():
    if not (BUILD / "template.yaml").exists() or not MINISTACK.exists():
        pytest.skip("run through `make test`: it builds the app and installs the local stack")
    started: list[subprocess.Popen] = []

    def start() -> tuple[subprocess.Popen, int, int]:
        api, ministack = free_port(), free_port()
        env = {**os.environ, "SCRAPERSKY_PORT": str(api), "SCRAPERSKY_MINISTACK_PORT": str(ministack)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "devstack.stack"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        started.append(proc)
        return proc, api, ministack

    yield start
    for proc in started:  # never leave one running, whatever the test did
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def _twice(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    os.kill(proc.pid, signal.SIGTERM)


def test_a_double_sigterm_during_start_up_stops_everything(spawn):
    proc, api, ministack = spawn()
    assert _wait(lambda: _listening(ministack), 120), "ministack never came up"
    _twice(proc)
    proc.wait(timeout=30)
    assert _wait(lambda: not _listening(ministack) and not _listening(api), 15)


def test_a_double_sigterm_once_ready_stops_everything(spawn):
    proc, api, ministack = spawn()
    assert _wait(lambda: _listening(api), 300), "the local stack never became ready"
    started = time.monotonic()
    _twice(proc)
    proc.wait(timeout=30)
    assert time.monotonic() - started < 30
    assert _wait(lambda: not _listening(ministack) and not _listening(api), 15)
    assert "stopped" in (proc.stderr.read() if proc.stderr else "")
