"""The measurement engine: suites, the matrix runner, meters and reporting.

Suites are looked up by name and imported only when asked for, so ``bench.py --help`` stays fast.
"""

from __future__ import annotations

import importlib

from suites.suite import (
    Axis,
    Cell,
    CellContext,
    CellSkipped,
    Row,
    Suite,
    cell_id,
    image_hw,
    image_size,
)

# name -> module holding ``SUITE``
SUITE_MODULES: dict[str, str] = {
    "memory": "suites.memory",
    "flops": "suites.flops",
    "latency": "suites.latency",
    "scaling": "suites.scaling",
    "accuracy": "suites.accuracy",
    "claims": "suites.claims",
    "paper": "suites.paper",
    "profile": "suites.profile",
}


def get_suite(name: str) -> Suite:
    """The suite called ``name``; ``KeyError`` lists the valid names."""
    if name not in SUITE_MODULES:
        raise KeyError(f"unknown suite {name!r}; valid: {', '.join(SUITE_MODULES)}")
    return importlib.import_module(SUITE_MODULES[name]).SUITE


__all__ = [
    "SUITE_MODULES",
    "Axis",
    "Cell",
    "CellContext",
    "CellSkipped",
    "Row",
    "Suite",
    "cell_id",
    "get_suite",
    "image_hw",
    "image_size",
]
