"""Package facades that import a submodule only when one of its names is asked for (PEP 562), so a function's
cold start loads the parsers of the kinds it meets, not of every kind (bench.cold_start measures it)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def exports(namespace: dict[str, Any], where: Mapping[str, tuple[str, ...]]) -> Callable[[str], Any]:
    """A `__getattr__` for the package whose globals() is `namespace`: `where` maps a submodule to its names."""
    module_of = {name: module for module, names in where.items() for name in names}
    package = namespace["__name__"]

    def __getattr__(name: str) -> Any:
        module = module_of.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        namespace[name] = value
        return value

    return __getattr__
