"""Logger, Tracer and Metrics, built once; settings come from template.yaml Globals.

Tracing is a deployment choice (template parameter Tracing, off by default): Powertools' Tracer loads the X-Ray
SDK (and with it asyncio, wrapt) even when disabled, ~50 ms of every cold start, so when tracing is off the
handlers get a stand-in whose decorator returns the handler unchanged, and the SDK is never imported.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics

_TRUE = {"1", "true", "yes", "on", "y", "t"}


class Untraced:
    """What the handlers use of Powertools' Tracer, doing nothing (tracing off)."""

    def capture_lambda_handler(self, **_: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        return lambda handler: handler


def tracing_on(env: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    """Powertools' own rule: traced only inside Lambda and unless POWERTOOLS_TRACE_DISABLED is true."""
    disabled = env.get("POWERTOOLS_TRACE_DISABLED", "false").strip().lower() in _TRUE
    return bool(env.get("AWS_LAMBDA_FUNCTION_NAME")) and not disabled


def _tracer() -> Any:
    if not tracing_on():
        return Untraced()
    from aws_lambda_powertools import Tracer

    return Tracer()


logger = Logger()
tracer = _tracer()
metrics = Metrics()
