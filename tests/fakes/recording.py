"""What every fake shares: a record of the calls made to it, injected faults, and one lock.

A fake's port methods are wrapped in `recorded`: the call is recorded, a fault queued for it with
`fail_next` is raised (before the change, or after it with `after=True`: a write whose answer was lost),
and the body runs under the fake's lock, so each change is as atomic as the conditional write it stands for.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Concatenate, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S", bound="Recorder")

_RECORDED: set[object] = set()  # the wrapped port methods: only they take faults


@dataclass(frozen=True)
class Call:
    method: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Fault:
    exc: BaseException
    after: bool


class Recorder:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._faults: dict[str, list[_Fault]] = {}
        self._lock = threading.RLock()

    def fail_next(self, method: str, exc: BaseException, *, after: bool = False, times: int = 1) -> None:
        """The next `times` calls of `method` raise `exc`: before changing anything, or once the change is made."""
        if getattr(type(self), method, None) not in _RECORDED:
            raise AttributeError(f"{type(self).__name__} has no port method {method!r}")
        self._faults.setdefault(method, []).extend(_Fault(exc, after) for _ in range(times))

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]


def recorded(fn: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R]:
    @functools.wraps(fn)
    def wrapper(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with self._lock:
            self.calls.append(Call(fn.__name__, args, dict(kwargs)))
            queued = self._faults.get(fn.__name__)
            fault = queued.pop(0) if queued else None
            if fault is not None and not fault.after:
                raise fault.exc
            result = fn(self, *args, **kwargs)
            if fault is not None:
                raise fault.exc
            return result

    _RECORDED.add(wrapper)
    return wrapper
