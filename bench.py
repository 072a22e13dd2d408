#!/usr/bin/env python
"""favit-bench's command line: run a suite's matrix, list suites and models, compare runs.

Examples:
  python bench.py --suite memory                      # quick profile on CPU, full on a GPU
  python bench.py --suite memory --models favit_b1 --img-size 224,384 --batch-size 1,32
  python bench.py --suite memory --set level=model --set variant=probsparse,dense --mode train
  python bench.py --suite latency --img-size 320x224 --dtype bf16 --gpus 0,1
  python bench.py --resume results/runs/memory-20250101T000000Z   # finish an interrupted run
  python bench.py --list                              # suites, their axes and defaults; models
  python bench.py compare BASE_RUN NEW_RUN            # regressions between two runs
  python bench.py report RUN                          # rewrite a run's tables and plots from rows.csv
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

# command-line option -> the suite axis it sets
AXIS_OPTIONS: dict[str, str] = {
    "models": "model",
    "img_size": "img_size",
    "batch_size": "batch_size",
    "dtype": "dtype",
    "mode": "mode",
}


class UsageError(Exception):
    """A bad command-line value; its message is the one line the user sees."""


class OneLineParser(argparse.ArgumentParser):
    """argparse whose errors are one line on stderr and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"bench.py: error: {' '.join(message.split())}\n")


def build_parser() -> OneLineParser:
    from suites import SUITE_MODULES

    parser = OneLineParser(
        prog="bench.py",
        description="Run a favit-bench suite over its matrix of cells; results go to results/runs/<suite>-<UTC time>/.",
        epilog=__doc__.split("\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--suite", choices=list(SUITE_MODULES), help="the suite to run")
    parser.add_argument(
        "--list", action="store_true", help="list suites (axes, defaults) and models"
    )
    matrix = parser.add_argument_group(
        "matrix (comma lists; each sets the suite axis of that name)"
    )
    matrix.add_argument("--models", help="model names, e.g. favit_b1,favit_b1:dense (axis 'model')")
    matrix.add_argument("--img-size", help="input sizes, e.g. 224,384 or 320x224 where allowed")
    matrix.add_argument("--batch-size", help="batch sizes, e.g. 1,32,128")
    matrix.add_argument("--dtype", help="precisions, e.g. fp32,bf16")
    matrix.add_argument("--mode", help="train, infer or both (train,infer)")
    matrix.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="AXIS=V1,V2",
        help="any other axis of the suite (repeatable)",
    )
    profile = parser.add_mutually_exclusive_group()
    profile.add_argument(
        "--quick",
        dest="quick",
        action="store_true",
        default=None,
        help="the small profile (default on CPU)",
    )
    profile.add_argument(
        "--full", dest="quick", action="store_false", help="the full profile (default on CUDA)"
    )
    run = parser.add_argument_group("run")
    run.add_argument(
        "--device",
        default="auto",
        choices=["auto", "cpu", "cuda"],
        help="default: cuda when visible",
    )
    run.add_argument(
        "--out", type=Path, help="run folder (default results/runs/<suite>-<UTC time>)"
    )
    run.add_argument(
        "--resume",
        type=Path,
        metavar="DIR",
        help="continue the run in DIR, skipping finished cells",
    )
    run.add_argument(
        "--retry-failed", action="store_true", help="with --resume: re-run oom/error cells"
    )
    run.add_argument(
        "--no-isolate",
        action="store_true",
        help="measure in this process (debugging; no time limit)",
    )
    run.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="per-cell time limit (default: the suite's)",
    )
    run.add_argument(
        "--reuse-workers",
        action=argparse.BooleanOptionalAction,
        help="let the cells a suite allows (eager latency, scaling and profile cells) share a "
        "worker: no process or CUDA start per cell, but no clean CUDA context either (default "
        "off; a resumed run keeps its own)",
    )
    run.add_argument(
        "--stop-after",
        type=float,
        metavar="SECONDS",
        help="start no cell after this many seconds; cells under way finish, the report is "
        "written and --resume continues (fits a run into a machine's time limit)",
    )
    run.add_argument(
        "--gpus", metavar="I,J", help="GPU indices to spread cells over (default: all visible)"
    )
    run.add_argument("--workers", type=int, help="CPU only: cells run at once (default 1)")
    run.add_argument(
        "--seed", type=int, help="seed of every cell (default 0; a resumed run keeps its own)"
    )
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="print the cells the run would measure, how many, and how long they should take "
        "(from the committed runs), then stop; with --resume: the cells it has left",
    )
    run.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a suite setting that is not an axis, e.g. download=on (accuracy), timed_steps=20 (latency)",
    )
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def split_list(text: str) -> list[str]:
    return [v.strip() for v in str(text).split(",") if v.strip()]


def parse_axis_values(suite: Any, axis_name: str, text: str, option: str) -> list[Any]:
    """Convert ``text`` (comma list) with the axis's ``kind``; check ``choices``. UsageError if bad."""
    axis = suite.axis(axis_name)
    raw = split_list(text)
    if not raw:
        raise UsageError(f"{option}: empty value; give a comma list")
    values = []
    for item in raw:
        try:
            value = axis.kind(item)
        except (ValueError, TypeError) as exc:
            valid = f"; valid: {', '.join(map(str, axis.choices))}" if axis.choices else ""
            raise UsageError(
                f"{option}: bad value {item!r} ({' '.join(str(exc).split())}){valid}"
            ) from None
        if axis.choices is not None and value not in axis.choices:
            raise UsageError(
                f"{option}: bad value {item!r}; valid: {', '.join(map(str, axis.choices))}"
            )
        values.append(value)
    return values


def check_options(suite: Any, options: dict[str, str]) -> None:
    """Every ``--option`` key is one the suite reads, and its value parses."""
    kinds = suite.option_kinds
    for key, value in options.items():
        if key not in kinds:
            valid = ", ".join(sorted(kinds)) or "none"
            raise UsageError(
                f"--option: suite {suite.name!r} has no option {key!r}; its options: {valid}"
            )
        try:
            kinds[key](value)
        except ValueError as exc:
            raise UsageError(
                f"--option: bad value {key}={value!r} ({' '.join(str(exc).split())})"
            ) from None


def options_from_args(args: argparse.Namespace) -> dict[str, str]:
    """``--option KEY=VALUE`` pairs; a pair without ``=`` is a usage error."""
    options = {}
    for text in args.option:
        key, sep, value = text.partition("=")
        if not sep or not key:
            raise UsageError(f"--option: bad value {text!r}; expected KEY=VALUE, e.g. download=on")
        options[key] = value
    return options


def overrides_from_args(suite: Any, args: argparse.Namespace) -> dict[str, list[Any]]:
    overrides: dict[str, list[Any]] = {}
    for dest, axis_name in AXIS_OPTIONS.items():
        text = getattr(args, dest)
        if text is None:
            continue
        option = "--" + dest.replace("_", "-")
        if axis_name not in suite.axis_names:
            raise UsageError(
                f"{option}: suite {suite.name!r} has no axis {axis_name!r}; its axes: {', '.join(suite.axis_names)}"
            )
        overrides[axis_name] = parse_axis_values(suite, axis_name, text, option)
    for item in args.set:
        name, sep, text = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep:
            raise UsageError(
                f"--set: bad value {item!r}; expected AXIS=V1,V2 with AXIS one of {', '.join(suite.axis_names)}"
            )
        if name not in suite.axis_names:
            raise UsageError(
                f"--set: suite {suite.name!r} has no axis {name!r}; its axes: {', '.join(suite.axis_names)}"
            )
        overrides[name] = parse_axis_values(suite, name, text, f"--set {name}")
    return overrides


def print_dry_run(suite: Any, overrides: Any, args: argparse.Namespace, options: Any) -> None:
    """Print the cells a run would measure (for ``--resume``: those it has left) and their time.

    The device is the one asked for (a GPU need not be visible here); ``auto`` is the resumed
    run's own device, or this machine's. A resume the real run would refuse is refused alike.
    """
    from suites.engine.suite import cell_id
    from suites.engine.runner import (
        ROWS_FILE,
        ResumeMismatch,
        RowsFile,
        is_quick_profile,
        pending_cells,
        previous_run_record,
        resolve_device,
        resumed_axes,
        resumed_settings,
    )

    previous = previous_run_record(args.resume) if args.resume is not None else {}
    device = args.device
    if device == "auto":
        device = previous.get("device") or resolve_device("auto")
    if args.resume is not None:
        overrides = resumed_axes(previous, overrides)
        try:
            resumed_settings(previous, device, options, args.seed)
        except ResumeMismatch as exc:
            raise UsageError(f"--resume: {exc}") from None
    quick = is_quick_profile(args.quick, device, previous)
    cells = suite.cells(overrides, quick=quick)
    todo = cells
    count = f"{len(cells)} cells"
    if args.resume is not None:
        rows_file = RowsFile(args.resume / ROWS_FILE)
        todo = [cell for cell, _ in pending_cells(cells, rows_file, args.retry_failed)]
        count = f"{len(todo)} of {len(cells)} cells left in {str(args.resume)!r}"
    profile = "quick" if quick else "full"
    print(f"{suite.name}: {count} ({profile} profile, device {device})")
    print(f"  {describe_estimate(suite.name, todo, on_gpu=device == 'cuda' or not quick)}")
    for cell in todo:
        print(f"  {cell_id(cell)}")


def describe_estimate(suite_name: str, cells: list, on_gpu: bool) -> str:
    """One line: how long the cells should take, from the committed runs' ``wall_s``."""
    from suites.analysis.results_index import ResultsError, estimate_time

    where = "a GPU" if on_gpu else "a CPU"
    try:
        estimate = estimate_time("results", suite_name, cells, on_gpu)
    except ResultsError as exc:
        return f"no time estimate ({exc})"
    if estimate is None:
        return f"no time estimate: no committed {suite_name} run on {where}"
    return (
        f"estimated {estimate.seconds / 60:.1f} min on {where} (from committed runs on "
        f"{', '.join(estimate.machines)}: {estimate.measured} cells measured before, "
        f"{estimate.alike} timed by alike cells (same model, recipe, epochs, compile mode, mode, "
        f"as far as rows match), {estimate.other} at the median cell; cell start-up included, "
        "compile time where measured)"
    )


def list_suites() -> str:
    from suites import SUITE_MODULES, get_suite

    lines = ["Suites (axes: full defaults / quick profile):"]
    for name in SUITE_MODULES:
        try:
            suite = get_suite(name)
        except Exception as exc:  # a suite not written yet, or one whose imports fail here
            lines.append(
                f"  {name}: not available ({type(exc).__name__}: {' '.join(str(exc).split())})"
            )
            continue
        lines.append(f"  {name}: {suite.description}")
        for axis in suite.axes:
            quick = f" / quick {list(axis.quick)}" if axis.quick is not None else ""
            choices = f"; choices {list(axis.choices)}" if axis.choices is not None else ""
            lines.append(f"      {axis.name}: {list(axis.default)}{quick}{choices}")
        if suite.option_kinds:
            lines.append(f"      --option keys: {', '.join(sorted(suite.option_kinds))}")
        lines.extend(f"      e.g. {example}" for example in suite.examples)
    try:
        import baselines

        lines.append("Models (favit_bX[:variant][+sr1][+seed_compat]):")
        lines.append("  " + ", ".join(baselines.names()))
    except Exception as exc:
        lines.append(f"Models: not available ({type(exc).__name__}: {exc})")
    return "\n".join(lines)


def run_compare(argv: Sequence[str]) -> int:
    try:
        from suites.analysis import compare
    except ImportError as exc:
        print(f"bench.py: error: compare is not available ({exc})", file=sys.stderr)
        return 2
    return int(compare.main(list(argv)) or 0)


def run_report(argv: Sequence[str]) -> int:
    """``bench.py report RUN``: the suite's report over the rows already in RUN; nothing is measured."""
    if len(argv) != 1:
        print(
            "bench.py: error: report: give exactly one run folder, e.g. report results/runs/memory-...",
            file=sys.stderr,
        )
        return 2
    run_dir = Path(argv[0])
    env_path = run_dir / "env.json"
    if not (run_dir / "rows.csv").exists() or not env_path.exists():
        print(
            f"bench.py: error: report: {str(run_dir)!r} is not a run folder (needs rows.csv and env.json)",
            file=sys.stderr,
        )
        return 2
    from suites import get_suite
    from suites.engine.runner import write_report

    return (
        0
        if write_report(get_suite(json.loads(env_path.read_text())["run"]["suite"]), run_dir)
        else 1
    )


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "compare":
        return run_compare(argv[1:])
    if argv and argv[0] == "report":
        return run_report(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list:
        print(list_suites())
        return 0
    from suites import get_suite

    try:
        suite_name = args.suite
        if args.resume is not None:
            env_path = args.resume / "env.json"
            if not args.resume.is_dir():
                raise UsageError(f"--resume: no such run folder {str(args.resume)!r}")
            if suite_name is None:
                if not env_path.exists():
                    raise UsageError(f"--resume: {str(env_path)!r} is missing; give --suite too")
                suite_name = json.loads(env_path.read_text())["run"]["suite"]
            if args.out is not None:
                raise UsageError(
                    "--out and --resume both given; a resumed run writes to its own folder"
                )
        elif args.retry_failed:
            raise UsageError("--retry-failed needs --resume DIR")
        if suite_name is None:
            raise UsageError("give --suite NAME (or --list, --resume DIR, compare BASE NEW)")
        try:
            suite = get_suite(suite_name)
        except ImportError as exc:
            raise UsageError(f"--suite: {suite_name!r} cannot be loaded ({exc})") from None
        overrides = overrides_from_args(suite, args) or None
        options = options_from_args(args)
        check_options(suite, options)
        gpus = None
        if args.gpus is not None:
            try:
                gpus = [int(g) for g in split_list(args.gpus)]
            except ValueError:
                raise UsageError(
                    f"--gpus: bad value {args.gpus!r}; expected indices like 0,1"
                ) from None
            if not gpus:
                raise UsageError("--gpus: empty value; expected indices like 0,1")
        if args.timeout is not None and args.timeout <= 0:
            raise UsageError(f"--timeout: bad value {args.timeout:g}; must be > 0 seconds")
        if args.stop_after is not None and args.stop_after <= 0:
            raise UsageError(f"--stop-after: bad value {args.stop_after:g}; must be > 0 seconds")
        if args.workers is not None and args.workers < 1:
            raise UsageError(f"--workers: bad value {args.workers}; must be >= 1")
        from suites.engine.runner import ResumeMismatch, resolve_device, run_suite

        if args.dry_run:  # planning needs no GPU: a resumed run plans for its own device
            print_dry_run(suite, overrides, args, options)
            return 0
        try:
            device = resolve_device(args.device)
        except ValueError as exc:
            raise UsageError(f"--device: {exc}") from None
        if gpus is not None:
            import torch

            visible = torch.cuda.device_count() if device == "cuda" else 0
            bad = [g for g in gpus if not 0 <= g < visible]
            if bad:
                valid = ", ".join(map(str, range(visible))) or "none (no CUDA device)"
                raise UsageError(f"--gpus: bad GPU index {bad[0]}; valid: {valid}")
        if args.workers is not None and device != "cpu":
            raise UsageError("--workers is for CPU runs; on CUDA use --gpus")
    except UsageError as exc:
        print(f"bench.py: error: {exc}", file=sys.stderr)
        return 2
    try:
        run_suite(
            suite,
            overrides,
            out_dir=args.out,
            resume_dir=args.resume,
            device=device,
            quick=args.quick,
            isolate=False if args.no_isolate else None,
            cell_timeout_s=args.timeout,
            stop_after_s=args.stop_after,
            reuse_workers=args.reuse_workers,
            gpus=gpus,
            workers=args.workers,
            seed=args.seed,
            options=options,
            progress=not args.no_progress,
            retry_failed=args.retry_failed,
        )
    except ResumeMismatch as exc:
        print(f"bench.py: error: --resume: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # the reader went away (`bench.py --dry-run | head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
