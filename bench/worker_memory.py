"""Peak RSS of the local stack's worker processes above their idle size, read from /proc.

ministack runs each Lambda function's handlers in warm processes of its own (LocalStack.handler_pids). Before a run,
each worker's idle RSS is read and its high-water mark reset (`5` into /proc/<pid>/clear_refs, root or own process);
during the run a thread samples VmRSS every `every_s` and notes new worker processes. After it, a worker's peak is
max(its samples, its VmHWM) minus its idle RSS; a process started during the run is measured against the smallest
idle RSS of the warm ones (its import counts, a conservative figure)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any


def status_kb(pid: int, field: str) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


def reset_peak(pid: int) -> bool:
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


class WorkerMemory:
    """`with WorkerMemory(lambda: stack.handler_pids("WorkerFunction")) as m: ...`, then `m.figures()`."""

    def __init__(self, pids: Callable[[], list[int]], every_s: float = 0.1) -> None:
        self._pids = pids
        self._every = every_s
        self.idle_kb: dict[int, int] = {}
        self.peak_kb: dict[int, int] = {}
        self.hwm_reset = True
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> WorkerMemory:
        for pid in self._pids():
            rss = status_kb(pid, "VmRSS")
            if rss is not None:
                self.idle_kb[pid] = rss
                self.hwm_reset = reset_peak(pid) and self.hwm_reset
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        for pid in list(self.peak_kb):
            hwm = status_kb(pid, "VmHWM")
            if hwm is not None and (self.hwm_reset or pid not in self.idle_kb):
                self.peak_kb[pid] = max(self.peak_kb[pid], hwm)

    def _sample(self) -> None:
        while True:
            for pid in self._pids():
                rss = status_kb(pid, "VmRSS")
                if rss is not None:
                    self.peak_kb[pid] = max(self.peak_kb.get(pid, 0), rss)
            if self._stop.wait(self._every):
                return

    def figures(self) -> dict[str, Any]:
        """MB (10^6 bytes): the largest rise of one worker above its idle size, and the sizes behind it."""
        base = min(self.idle_kb.values(), default=0)
        rises = {pid: peak - self.idle_kb.get(pid, base) for pid, peak in self.peak_kb.items()}
        top = max(rises, key=lambda p: rises[p], default=None)
        mb = 1024 / 1e6
        return {
            "worker_peak_above_idle_mb": round(rises[top] * mb, 1) if top else None,
            "worker_idle_mb": round(self.idle_kb.get(top, base) * mb, 1) if top else None,
            "worker_peak_mb": round(self.peak_kb[top] * mb, 1) if top else None,
            "workers_seen": len(self.peak_kb),
            "workers_started_during_run": len(set(self.peak_kb) - set(self.idle_kb)),
        }
