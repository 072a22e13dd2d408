"""``bench.py report RUN``: rewrite a run's tables, plots and summary from its ``rows.csv``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "rewrite a run's tables, plots and summary from its rows.csv (nothing is measured)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path, metavar="RUN", help="a run folder (rows.csv, env.json)")


def run(args: argparse.Namespace) -> int:
    """The suite's report over the rows already in ``args.run``; lists the files written."""
    from suites import get_suite
    from suites.engine.run_folder import ROWS_FILE, RunFolderError, run_record
    from suites.engine.runner import print_files, write_report

    run_dir = args.run
    try:
        if not (run_dir / ROWS_FILE).is_file():
            raise RunFolderError(f"{str(run_dir)!r} is not a run folder (no {ROWS_FILE})")
        suite = get_suite(run_record(run_dir)["suite"])
    except (RunFolderError, KeyError) as exc:
        print(f"{args.command_prog}: error: {exc.args[0]}", file=sys.stderr)
        return 2
    if not write_report(suite, run_dir):
        return 1
    print(f"{suite.name} report rewritten from {run_dir / ROWS_FILE}:")
    print_files(run_dir)
    return 0
