"""What a function's cold start loads: only the handler its app.py imports and what that handler serves (the
import time itself is bench.cold_start's, not a test's). Each check runs in a fresh interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

API = {"scrapersky.api.resolver", "aws_lambda_powertools.event_handler.openapi.models"}
BATCH = {"aws_lambda_powertools.utilities.batch"}
PARSERS = {"re2", "selectolax", "protego", "defusedxml"}  # the profile and sitemap kinds' own
XRAY = {"aws_xray_sdk", "wrapt"}  # only with tracing on (the template's Tracing=Active)
EVENT_MODELS = {"aws_lambda_powertools.utilities.parser"}  # Powertools' pydantic models of every event source


def loaded(handler: str, then: str = "", tracing: bool = False) -> set[str]:
    code = (
        f"from scrapersky.entrypoints import {handler}\n{then}\nimport sys, json; print(json.dumps(list(sys.modules)))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(ROOT / p) for p in ("layers/scrapersky", "."))}
    env.update(AWS_DEFAULT_REGION="us-east-1", AWS_LAMBDA_FUNCTION_NAME="cold-start-test")
    env["POWERTOOLS_TRACE_DISABLED"] = "false" if tracing else "true"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.splitlines()[-1]))


@pytest.mark.parametrize("handler", ["worker_handler", "fanout_handler", "events_handler", "dead_letter_handler"])
def test_a_queue_function_loads_neither_the_api_nor_the_kinds_parsers(handler):
    modules = loaded(handler)
    assert modules >= BATCH | {"scrapersky.bootstrap", "pydantic"}  # the composition root still loads at init
    assert not modules & (API | PARSERS | XRAY | EVENT_MODELS)


@pytest.mark.parametrize("handler", ["status_handler", "batches_handler", "scrape_handler", "admin_handler"])
def test_an_api_function_loads_its_resolver_but_not_the_batch_processor(handler):
    modules = loaded(handler)
    assert {"scrapersky.api.resolver", "scrapersky.bootstrap"} <= modules
    assert not modules & (BATCH | PARSERS | XRAY)
    assert "aws_lambda_powertools.event_handler.openapi.models" not in modules  # GET /openapi.json loads them


def test_the_authorizer_and_maintenance_load_neither():
    for handler in ("authorizer_handler", "maintenance_handler"):
        modules = loaded(handler)
        assert "scrapersky.bootstrap" in modules, handler
        assert not modules & (API | BATCH | PARSERS | XRAY), handler


@pytest.mark.parametrize("handler", ["worker_handler", "status_handler"])
def test_the_x_ray_sdk_loads_only_when_tracing_is_on(handler):
    assert loaded(handler, tracing=True) >= XRAY
    assert not loaded(handler) & XRAY


def test_a_kind_loads_its_processor_when_it_is_first_asked_for():
    ask = "from scrapersky.kinds.registry import default_registry; default_registry().get('{}')"
    kinds = {f"scrapersky.kinds.{k}" for k in ("page", "sitemap", "profile")}
    page = loaded("worker_handler", ask.format("page"))
    assert page & kinds == {"scrapersky.kinds.page"}
    assert not page & PARSERS
    assert loaded("worker_handler", ask.format("profile")) & kinds == {"scrapersky.kinds.profile"}


def test_a_parser_loads_when_its_kind_first_reads_with_it():
    robots = "from scrapersky.sitemaps import RobotsFile; RobotsFile.parse('http://a.test/robots.txt', b'')"
    assert "protego" in loaded("worker_handler", robots)
    regex = "from scrapersky.checks.markers import compile_regex; compile_regex('a+')"
    assert "re2" in loaded("worker_handler", regex)


def test_an_unknown_handler_is_an_attribute_error():
    with pytest.raises(subprocess.CalledProcessError):
        loaded("no_such_handler")
