"""The suites, looked up by name.

Layout (imports run one way, top to bottom):

- ``suites.analysis``: what reads finished runs: the results index, ``compare``, the ``claims`` and
  ``paper`` suites;
- the measuring suites, one module each: ``memory``, ``flops``, ``latency``, ``scaling``,
  ``profile``, ``accuracy``, ``crosscheck``;
- ``suites.training``: CIFAR-10 data, GPU augmentation and the training loop (the accuracy suite);
- ``suites.engine``: the suite contract, run planning and the runner, the run folder, environment
  capture, meters, timing, the shared step, compile modes, FLOP counting, tables and figures.

A suite is imported only when asked for, so ``bench.py --help`` stays fast. Adding a suite is one
module defining ``SUITE`` plus one line in ``SUITE_MODULES``.
"""

from __future__ import annotations

import importlib

from suites.engine.suite import Suite

# name -> module holding ``SUITE``
SUITE_MODULES: dict[str, str] = {
    "memory": "suites.memory",
    "flops": "suites.flops",
    "latency": "suites.latency",
    "scaling": "suites.scaling",
    "profile": "suites.profile",
    "accuracy": "suites.accuracy",
    "crosscheck": "suites.crosscheck",
    "claims": "suites.analysis.claims",
    "paper": "suites.analysis.paper",
}


def get_suite(name: str) -> Suite:
    """The suite called ``name``; ``KeyError`` lists the valid names."""
    if name not in SUITE_MODULES:
        raise KeyError(f"unknown suite {name!r}; valid: {', '.join(SUITE_MODULES)}")
    return importlib.import_module(SUITE_MODULES[name]).SUITE


__all__ = ["SUITE_MODULES", "Suite", "get_suite"]
