"""The commands of ``bench.py`` besides running a suite: name -> its arguments and entry point."""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    """A subcommand whose module defines ``HELP``, ``add_arguments(parser)`` and ``run(args)``."""

    module: str

    def _load(self):
        return importlib.import_module(self.module)

    @property
    def help(self) -> str:
        return self._load().HELP

    @property
    def add_arguments(self) -> Callable[[argparse.ArgumentParser], None]:
        return self._load().add_arguments

    @property
    def main(self) -> Callable[[argparse.Namespace], int]:
        return self._load().run


COMMANDS: dict[str, Command] = {
    "compare": Command("suites.analysis.compare"),
    "report": Command("suites.analysis.report"),
}
