"""Real forward proxies on loopback (proxy.py, with basic auth), one subprocess each."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 20.0, host: str = "127.0.0.1") -> None:
    end = time.time() + timeout
    while time.time() < end:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {host}:{port} after {timeout}s")


@dataclass
class ProxyServer:
    port: int
    user: str
    password: str
    source_ip: str
    process: subprocess.Popen

    @property
    def url(self) -> str:
        return f"http://{self.user}:{self.password}@127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()


def start_proxies(
    count: int, user: str = "sky", password: str = "secret", python: str | None = None, log_dir: Path | None = None
) -> list[ProxyServer]:
    servers = []
    for i in range(count):
        port = free_port()
        source_ip = f"127.0.0.{i + 2}"
        env = {
            **os.environ,
            "SCRAPERSKY_PROXY_SOURCE_IP": source_ip,
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        }
        log = open(log_dir / f"proxy-{i}.log", "w") if log_dir else subprocess.DEVNULL  # noqa: SIM115
        proc = subprocess.Popen(
            [
                python or sys.executable,
                "-m",
                "proxy",
                "--hostname",
                "127.0.0.1",
                "--port",
                str(port),
                "--basic-auth",
                f"{user}:{password}",
                "--num-acceptors",
                "1",
                "--num-workers",
                "2",
                "--plugins",
                "devstack.proxy_plugins.SourceAddressPlugin",
                "--log-level",
                "WARNING",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        servers.append(ProxyServer(port, user, password, source_ip, proc))
    for s in servers:
        wait_port(s.port)
    return servers
