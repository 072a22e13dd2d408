#!/usr/bin/env python
"""favit-bench's command line (also installed as ``favit-bench``) and Python API (``run``).

Examples:
  python bench.py --suite memory                      # quick profile on CPU, full on a GPU
  python bench.py --suite memory --models favit_b1 --img-size 224,384 --batch-size 1,32
  python bench.py --suite latency --models favit_b1,pvt_v2_b1 --batch-size 128 --dtype bf16
  python bench.py --suite latency --models timm:convnext_atto,tv:resnet18,mypkg.nets:MyNet
  python bench.py --suite flops --models 'timm:convnext_*' --img-size 224
  python bench.py --suite flops --models @models.txt  # one model name per line
  python bench.py --suite latency --img-size 224,384 --gpus 0,1
  python bench.py --suite flops --img-size 320x224
  python bench.py --resume results/runs/memory-20250101T000000Z   # finish an interrupted run
  python bench.py --list                              # suites, their axes and defaults; models
  python bench.py compare BASE_RUN NEW_RUN            # regressions between two runs
  python bench.py report RUN                          # rewrite a run's tables and plots
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from suites.engine.plan import DEVICES

if TYPE_CHECKING:
    import pandas as pd

# command-line option -> the suite axis it sets
AXIS_OPTIONS: dict[str, str] = {
    "models": "model",
    "img_size": "img_size",
    "batch_size": "batch_size",
    "dtype": "dtype",
    "mode": "mode",
}


def prog() -> str:
    """The command's name as typed: ``favit-bench`` (the installed command) or ``bench.py``."""
    return "favit-bench" if Path(sys.argv[0]).name == "favit-bench" else "bench.py"


class UsageError(Exception):
    """A bad command-line value; its message is the one line the user sees."""


class OneLineParser(argparse.ArgumentParser):
    """argparse whose errors are one line on stderr and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())}\n")


# ---- the parser ---------------------------------------------------------------------------------


def build_parser() -> OneLineParser:
    parser = OneLineParser(
        prog=prog(),
        description="Run a favit-bench suite over its matrix of cells (results go to "
        "results/runs/<suite>-<UTC time>/), or one of the commands below.",
        epilog=__doc__.split("\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_suite_arguments(parser)
    _add_matrix_arguments(parser)
    _add_run_arguments(parser)
    _add_commands(parser)
    return parser


def _add_suite_arguments(parser: argparse.ArgumentParser) -> None:
    from suites import SUITE_MODULES

    parser.add_argument("--suite", choices=list(SUITE_MODULES), help="the suite to run")
    parser.add_argument("--list", action="store_true", help="list suites (axes, defaults), models")
    profile = parser.add_mutually_exclusive_group()
    profile.add_argument(
        "--quick", dest="quick", action="store_true", default=None, help="the small profile"
    )
    profile.add_argument("--full", dest="quick", action="store_false", help="the full profile")


def _add_matrix_arguments(parser: argparse.ArgumentParser) -> None:
    matrix = parser.add_argument_group(
        "matrix (comma lists; each sets the suite axis of that name)"
    )
    matrix.add_argument(
        "--models",
        help="model names (axis 'model'): favit_b1, favit_b1:dense, pvt_v2_b1, timm:<name>, "
        "tv:<name>, package.module:factory; wildcards (timm:convnext_*); @FILE: a name per line",
    )
    matrix.add_argument("--img-size", help="input sizes, e.g. 224,384 (flops also WxH: 320x224)")
    matrix.add_argument("--batch-size", help="batch sizes, e.g. 1,32,128")
    matrix.add_argument("--dtype", help="precisions, e.g. fp32,bf16")
    matrix.add_argument("--mode", help="train, infer or both (train,infer)")
    matrix.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="AXIS=V1,V2",
        help="any other axis (repeatable)",
    )
    matrix.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a suite setting that is not an axis, e.g. download=on (accuracy), timed_steps=20",
    )


def _add_run_arguments(parser: argparse.ArgumentParser) -> None:
    run = parser.add_argument_group("run")
    run.add_argument(
        "--device", default="auto", choices=DEVICES, help="default: cuda when visible, else cpu"
    )
    run.add_argument(
        "--out", type=Path, help="a new run folder (default results/runs/<suite>-<UTC>)"
    )
    run.add_argument("--resume", type=Path, metavar="DIR", help="continue the run in DIR")
    run.add_argument(
        "--retry-failed", action="store_true", help="with --resume: re-run oom/error cells"
    )
    run.add_argument(
        "--no-isolate", action="store_true", help="measure in this process (debugging)"
    )
    run.add_argument("--timeout", type=float, metavar="SECONDS", help="per-cell time limit")
    run.add_argument(
        "--reuse-workers",
        action=argparse.BooleanOptionalAction,
        help="let the cells a suite allows (eager latency, scaling, profile and memory cells) share "
        "a worker: no process or CUDA start per cell, no fresh CUDA context either (default on "
        "where the suite allows it; a resumed run keeps its own)",
    )
    run.add_argument(
        "--stop-after",
        type=float,
        metavar="SECONDS",
        help="start no cell after this many seconds; the report is written, --resume continues",
    )
    run.add_argument(
        "--gpus", metavar="I,J", help="GPU indices to spread cells over (default: all)"
    )
    run.add_argument("--workers", type=int, help="CPU only: cells run at once (default 1)")
    run.add_argument("--seed", type=int, help="seed of every cell (default 0)")
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="print the cells the run would measure and an estimate of its time, then stop; "
        "needs no GPU; with --resume: the cells it has left",
    )
    run.add_argument("--no-progress", action="store_true", help="no progress bar")


def _add_commands(parser: argparse.ArgumentParser) -> None:
    """The subcommands; each module gives its arguments and its ``main(args)``."""
    from suites.analysis import commands

    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for name, command in commands.COMMANDS.items():
        sub = subparsers.add_parser(name, help=command.help, description=command.help)
        command.add_arguments(sub)
        sub.set_defaults(
            command_prog=sub.prog
        )  # its error lines: "favit-bench compare: error: ..."


# ---- from arguments to a run request ------------------------------------------------------------


def split_list(text: str) -> list[str]:
    return [v.strip() for v in str(text).split(",") if v.strip()]


def axis_arguments(args: argparse.Namespace) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Axis -> its values as given (strings), and axis -> the option that named it."""
    overrides: dict[str, list[str]] = {}
    named: dict[str, str] = {}
    for dest, axis_name in AXIS_OPTIONS.items():
        text = getattr(args, dest)
        if text is not None:
            overrides[axis_name] = split_list(text)
            named[axis_name] = "--" + dest.replace("_", "-")
    for item in args.set:
        name, sep, text = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name:
            raise UsageError(f"--set: bad value {item!r}; expected AXIS=V1,V2")
        overrides[name] = split_list(text)
        named[name] = f"--set {name}"
    return overrides, named


def overrides_from_args(suite: Any, args: argparse.Namespace) -> dict[str, list[Any]] | None:
    """The axis values the arguments give, checked by each axis's kind and choices."""
    from suites.engine.plan import PlanError, parse_overrides

    overrides, named = axis_arguments(args)
    try:
        return parse_overrides(suite, overrides, named) if overrides else None
    except PlanError as exc:
        raise UsageError(str(exc)) from None


def options_from_args(args: argparse.Namespace) -> dict[str, str]:
    """``--option KEY=VALUE`` pairs; a pair without ``=`` is a usage error."""
    options = {}
    for text in args.option:
        key, sep, value = text.partition("=")
        if not sep or not key:
            raise UsageError(f"--option: bad value {text!r}; expected KEY=VALUE, e.g. download=on")
        options[key] = value
    return options


def gpus_from_args(args: argparse.Namespace) -> list[int] | None:
    if args.gpus is None:
        return None
    try:
        gpus = [int(g) for g in split_list(args.gpus)]
    except ValueError:
        raise UsageError(f"--gpus: bad value {args.gpus!r}; expected indices like 0,1") from None
    if not gpus:
        raise UsageError("--gpus: empty value; expected indices like 0,1")
    return gpus


def suite_from_args(args: argparse.Namespace) -> Any:
    """The suite named by ``--suite``, else by the resumed run's ``env.json``."""
    from suites import get_suite
    from suites.engine.run_folder import RunFolderError, check_resumable_run_folder

    name = args.suite
    if name is None and args.resume is not None:
        try:
            name = check_resumable_run_folder(args.resume)["suite"]
        except RunFolderError as exc:
            raise UsageError(f"--resume: {exc}") from None
    if name is None:
        raise UsageError(
            "give --suite NAME (or --list, --resume DIR, or a command: compare, report)"
        )
    try:
        return get_suite(name)
    except KeyError as exc:
        raise UsageError(f"--resume: {exc.args[0]}") from None
    except ImportError as exc:
        raise UsageError(f"--suite: {name!r} cannot be loaded ({exc})") from None


def plan_from_args(args: argparse.Namespace, planning_only: bool) -> Any:
    """The checked plan of the run the arguments ask for (``UsageError`` when it cannot start)."""
    from suites.engine.plan import PlanError, RunRequest, plan_run

    suite = suite_from_args(args)
    try:
        request = RunRequest(
            suite,
            overrides_from_args(suite, args),
            out_dir=args.out,
            resume_dir=args.resume,
            device=args.device,
            quick=args.quick,
            isolate=False if args.no_isolate else None,
            cell_timeout_s=args.timeout,
            stop_after_s=args.stop_after,
            reuse_workers=args.reuse_workers,
            gpus=gpus_from_args(args),
            workers=args.workers,
            seed=args.seed,
            options=options_from_args(args),
            retry_failed=args.retry_failed,
        )
        return plan_run(request, planning_only=planning_only)
    except PlanError as exc:
        raise UsageError(str(exc)) from None


# ---- what the commands print --------------------------------------------------------------------


def print_dry_run(plan: Any) -> None:
    """The cells a run would measure (for a resume: those it has left) and their time."""
    todo = [cell for cell, _ in plan.pending()]
    count = f"{len(plan.cells)} cells"
    if plan.resuming:
        count = f"{len(todo)} of {len(plan.cells)} cells left in {str(plan.run_dir)!r}"
    profile = "quick" if plan.quick else "full"
    print(f"{plan.suite.name}: {count} ({profile} profile, device {plan.device})")
    print(f"  {describe_estimate(plan, todo)}")
    for _, cid in plan.pending():
        print(f"  {cid}")


def describe_estimate(plan: Any, cells: list) -> str:
    """One line: how long the cells should take, from the committed runs under ``results/``."""
    from suites.analysis.results_index import ResultsError, estimate_time

    try:
        estimate = estimate_time(
            "results",
            plan.suite.name,
            cells,
            plan.device == "cuda",
            options=plan.options,
            quick=plan.quick,
            reuse_workers=plan.reuse_workers,
        )
    except ResultsError as exc:
        return f"no time estimate ({exc})"
    if estimate is None:
        where = "a GPU" if plan.device == "cuda" else "a CPU"
        return f"no time estimate: no committed {plan.suite.name} run on {where}"
    return estimate.describe(plan.device == "cuda", plan.reuse_workers)


def list_suites() -> str:
    from suites import SUITE_MODULES, get_suite

    lines = ["Suites (axes: full defaults / quick profile):"]
    for name in SUITE_MODULES:
        suite = get_suite(name)
        lines.append(f"  {name}: {suite.description}")
        for axis in suite.axes:
            quick = f" / quick {list(axis.quick)}" if axis.quick is not None else ""
            choices = f"; choices {list(axis.choices)}" if axis.choices is not None else ""
            lines.append(f"      {axis.name}: {list(axis.default)}{quick}{choices}")
        if suite.option_kinds:
            lines.append(f"      --option keys: {', '.join(sorted(suite.option_kinds))}")
        for key, what in suite.required_options.items():
            lines.append(f"      required: --option {key}=... ({what})")
        lines.extend(f"      e.g. {example}" for example in suite.examples)
    import baselines

    lines.append("Models (favit_bX[:variant][+sr1|+gsr1][+seed_compat][+ref]):")
    lines.append("  " + ", ".join(baselines.names()))
    lines.append(
        "  and timm:<any timm model>, tv:<torchvision classification model>, "
        "package.module:factory (your callable returning an nn.Module); wildcards like "
        "timm:convnext_* and @FILE (a name per line) expand"
    )
    return "\n".join(lines)


# ---- the Python API ------------------------------------------------------------------------------


def run(
    suite: str,
    *,
    models: str | Sequence[str] | None = None,
    img_size: Any = None,
    batch_size: Any = None,
    dtype: str | Sequence[str] | None = None,
    mode: str | Sequence[str] | None = None,
    axes: Mapping[str, Any] | None = None,
    quick: bool | None = None,
    device: str = "auto",
    out: str | Path | None = None,
    resume: str | Path | None = None,
    options: Mapping[str, Any] | None = None,
    progress: bool = True,
    **request: Any,
) -> pd.DataFrame:
    """Run a suite as ``bench.py --suite SUITE`` does and return its rows as a DataFrame.

    Example (a notebook cell, or a script: no ``if __name__ == "__main__":`` guard needed)::

        import bench
        rows = bench.run("latency", models=["timm:convnext_atto", "tv:resnet18"],
                         batch_size=[1, 32], dtype="fp32", mode="infer")
        rows[["model", "model_id", "batch_size", "infer_samples_per_sec"]]
        rows.attrs["run_dir"]  # the run folder: rows.csv, env.json, tables, plots

    ``models``, ``img_size``, ``batch_size``, ``dtype`` and ``mode`` set the axes of those names
    (``--models`` ...), ``axes`` any axis (``--set``): each takes a value, a list, or a comma
    string, checked as the command line checks it (wildcards and ``@FILE`` expand in ``models``).
    ``quick`` None is the quick profile on the CPU and the full one on a GPU; ``out`` a new run
    folder (default ``results/runs/<suite>-<UTC>``); ``resume`` continues that run; ``options``
    are ``--option`` pairs; ``request`` holds the other fields of
    ``suites.engine.plan.RunRequest`` (``seed``, ``workers``, ``gpus``, ``isolate``,
    ``cell_timeout_s``, ``stop_after_s``, ``reuse_workers``, ``retry_failed``). A run that
    cannot start as asked raises ``ValueError`` with the one line the command line prints; the
    cells run in worker processes as on the command line (an error in a cell is a row with
    ``status`` error and its ``reason``).
    """
    from suites import get_suite
    from suites.engine.plan import PlanError, RunRequest, parse_overrides, plan_run
    from suites.engine.run_folder import read_rows
    from suites.engine.runner import execute, in_worker

    if in_worker():
        raise RuntimeError(
            "bench.run was called inside a benchmark worker (importing a model's module ran a "
            'benchmark): put that call under `if __name__ == "__main__":`'
        )
    try:
        chosen = get_suite(suite)
    except KeyError as exc:
        raise ValueError(exc.args[0]) from None
    named = {"model": models, "img_size": img_size, "batch_size": batch_size}
    named |= {"dtype": dtype, "mode": mode}
    given = {k: _as_values(v) for k, v in {**named, **dict(axes or {})}.items() if v is not None}
    # a bad value is named by the argument that gave it: models=, img_size=, axes['recipe']
    arguments = {axis: "models" if axis == "model" else axis for axis in named}
    arguments |= {axis: f"axes[{axis!r}]" for axis in axes or {}}
    try:
        overrides = parse_overrides(chosen, given, arguments) if given else None
        plan = plan_run(
            RunRequest(
                chosen,
                overrides,
                out_dir=None if out is None else Path(out),
                resume_dir=None if resume is None else Path(resume),
                device=device,
                quick=quick,
                options=options,
                **request,
            )
        )
    except PlanError as exc:
        raise ValueError(str(exc)) from None
    rows = read_rows(execute(plan, progress=progress).run_dir)
    rows.attrs["run_dir"] = plan.run_dir
    return rows


def _as_values(value: Any) -> list[Any]:
    """One axis's values from Python: a comma string as on the command line, a value, or a list."""
    if isinstance(value, str):
        return split_list(value)
    if isinstance(value, Sequence):
        return list(value)
    return [value]


# ---- main ---------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run what ``argv`` asks for; returns the exit code (2: a usage error, one line on stderr)."""
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        if args.command is not None:
            from suites.analysis import commands

            return commands.COMMANDS[args.command].main(args)
        if args.list:
            print(list_suites())
            return 0
        plan = plan_from_args(args, planning_only=args.dry_run)
    except UsageError as exc:
        print(f"{prog()}: error: {exc}", file=sys.stderr)
        return 2
    if args.dry_run:
        print_dry_run(plan)
        return 0
    from suites.engine.run_folder import RunFolderError
    from suites.engine.runner import execute

    try:
        result = execute(plan, progress=not args.no_progress)
    except KeyboardInterrupt:
        return 130
    except RunFolderError as exc:
        print(f"{prog()}: error: {exc}", file=sys.stderr)
        return 2
    if result.failure:  # every cell failed, most often for one bad input: the run is an error
        print(f"{prog()}: error: {result.failure}", file=sys.stderr)
        return 2
    return 0


# the exit code of a command a closed pipe stopped (128 + SIGPIPE), as a shell reports it
EXIT_BROKEN_PIPE = 141


def cli() -> NoReturn:
    """The ``favit-bench`` console command and ``python bench.py``: ``main``'s exit code, or
    ``EXIT_BROKEN_PIPE`` when the reader of its output went away (``bench.py compare A B | head``),
    never a code that means something else (compare's 1 is a regression)."""
    try:
        code = main()
        sys.stdout.flush()  # a reader that went away shows here, not at the interpreter's exit
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(EXIT_BROKEN_PIPE)
    sys.exit(code)


if __name__ == "__main__":
    cli()
