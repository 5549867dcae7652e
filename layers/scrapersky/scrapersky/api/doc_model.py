"""The base of every response body model (api/responses.py, pool_responses.py, target_responses.py)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class DocModel(BaseModel):
    """A response body as the OpenAPI document shows it: its schema is built when /openapi.json is first served
    (pydantic's defer_build), not at every API function's cold start."""

    model_config = ConfigDict(defer_build=True)
