"""Planning a run: what the user asked for, checked, turned into the cells to measure and where.

``plan_run`` is the one place that decides a run's folder, device, profile, GPU slots, seed,
options and cells, for a new run and for a resumed one; the runner executes its plan and
``--dry-run`` prints it. Every value a run could never measure (an unknown axis, a bad value, an
option the suite does not read, a folder that already holds a run) is refused here with one line
(``PlanError``), before any cell starts.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from suites.engine.run_folder import (
    ROWS_FILE,
    RowsFile,
    RunFolderError,
    check_new_run_folder,
    check_resumable_run_folder,
)
from suites.engine.suite import Axis, Cell, Suite, cell_id

STATUSES = ("ok", "oom", "error", "skipped")
FAILED = ("oom", "error")
DEVICES = ("auto", "cpu", "cuda")


class PlanError(ValueError):
    """A run that cannot start as asked; the message is the one line the user sees."""


class ResumeMismatch(PlanError):
    """A resumed run was asked to measure with another device, seed or options than its rows."""


@dataclass(frozen=True)
class RunRequest:
    """What was asked for. ``overrides`` maps an axis to its values (strings from a command line
    or values from Python; each is checked by the axis's ``kind`` and ``choices``)."""

    suite: Suite
    overrides: Mapping[str, Sequence[Any]] | None = None
    out_dir: Path | None = None
    resume_dir: Path | None = None
    device: str = "auto"
    quick: bool | None = None  # None: quick on the CPU, full on a GPU (a resumed run: its own)
    isolate: bool | None = None  # None: the suite's own choice
    cell_timeout_s: float | None = None
    stop_after_s: float | None = None
    # None: on where the suite lets cells share a worker (a resumed run: its own)
    reuse_workers: bool | None = None
    gpus: Sequence[int] | None = None
    workers: int | None = None
    seed: int | None = None  # None: 0 (a resumed run: its own)
    options: Mapping[str, Any] | None = None
    retry_failed: bool = False


@dataclass
class RunPlan:
    """A checked request: everything the runner needs, and what ``--dry-run`` prints."""

    suite: Suite
    run_dir: Path
    resuming: bool
    device: str  # "cpu" or "cuda"
    quick: bool
    isolate: bool
    timeout_s: float
    stop_after_s: float | None
    reuse_workers: bool
    slots: list[int | None]  # a GPU index per parallel worker, or None per CPU worker
    seed: int
    options: dict[str, Any]
    axes: dict[str, list[Any]]  # every axis's values: the profile's, or the ones given
    cells: list[Cell]
    retry_failed: bool = False
    rows_file: RowsFile | None = field(default=None, repr=False)  # a resumed run's rows

    def pending(self) -> list[tuple[Cell, str]]:
        """``(cell, cell_id)`` of the cells without a row yet (with failed ones, when retrying)."""
        return pending_cells(self.cells, self.rows_file, self.retry_failed)

    def record(self) -> dict[str, Any]:
        """The ``run`` record of ``env.json``."""
        return {
            "suite": self.suite.name,
            "axes": self.axes,
            "quick": self.quick,
            "device": self.device,
            "seed": self.seed,
            "isolate": self.isolate,
            "reuse_workers": self.reuse_workers,
            "gpus": [s for s in self.slots if s is not None],
            "workers": len(self.slots),
            "cell_timeout_s": self.timeout_s,
            "options": dict(self.options),
            "num_cells": len(self.cells),
        }


def failed_cells(rows_file: RowsFile) -> set[str]:
    """Cells whose every row failed (``oom``/``error``): what ``--retry-failed`` measures again."""
    return rows_file.finished(FAILED) - rows_file.finished(("ok", "skipped"))


def pending_cells(
    cells: Sequence[Cell], rows_file: RowsFile | None, retry_failed: bool = False
) -> list[tuple[Cell, str]]:
    """``(cell, cell_id)`` of the cells without a row yet (or with failed ones, when retrying)."""
    done: set[str] = set()
    if rows_file is not None:
        done = rows_file.finished(STATUSES)
        if retry_failed:
            done -= failed_cells(rows_file)
    return [(cell, cid) for cell in cells if (cid := cell_id(cell)) not in done]


# ---- values -----------------------------------------------------------------------------------


def parse_axis_values(suite: Suite, axis_name: str, values: Sequence[Any], where: str) -> list[Any]:
    """Each value checked by the axis's ``kind`` and ``choices``; ``PlanError`` naming ``where``
    (the option) and the valid values. A string (from a command line) becomes what the ``kind``
    makes of it; any other value (from Python, or a resumed run's record) stays as given."""
    axis = suite.axis(axis_name)
    if axis.expand is not None:
        values = expand_values(axis, values, where)
    if not values:
        raise PlanError(f"{where}: empty value; give a comma list")
    parsed = []
    for value in values:
        try:
            converted = axis.kind(value.strip()) if isinstance(value, str) else value
            axis.kind(str(converted))
        except (ValueError, TypeError) as exc:
            raise PlanError(bad_value(where, value, str(exc), axis.choices)) from None
        if axis.choices is not None and converted not in axis.choices:
            raise PlanError(
                f"{where}: bad value {value!r}; valid: {', '.join(map(str, axis.choices))}"
            )
        parsed.append(converted)
    return parsed


def bad_value(where: str, value: Any, reason: str, choices: Sequence[Any] | None) -> str:
    """The one line for a value an axis's kind refused, naming the value and the valid values
    once: the kind's "bad dtype 'fp33'; valid: ..." becomes "bad value 'fp33'; valid: ..."; a
    reason that lists no valid values gets the axis's choices."""
    reason = " ".join(reason.split())
    head, _, tail = reason.partition("; ")
    if head.startswith("bad ") and head.endswith(repr(str(value).strip())) and tail:
        reason = tail
    if reason.startswith("valid:"):
        return f"{where}: bad value {value!r}; {reason}"
    valid = f"; valid: {', '.join(map(str, choices))}" if choices and "valid:" not in reason else ""
    return f"{where}: bad value {value!r} ({reason}){valid}"


def expand_values(axis: Axis, values: Sequence[Any], where: str) -> list[Any]:
    """Each string through ``axis.expand`` (a wildcard or ``@FILE`` becomes its values), in
    order, each value once; ``PlanError`` naming ``where`` when one expands to nothing valid."""
    out: list[Any] = []
    for value in values:
        try:
            out += axis.expand(value) if isinstance(value, str) else [value]
        except ValueError as exc:
            raise PlanError(f"{where}: {' '.join(str(exc).split())}") from None
    return list(dict.fromkeys(out))


def parse_overrides(
    suite: Suite, overrides: Mapping[str, Sequence[Any]] | None, option_names: Mapping[str, str]
) -> dict[str, list[Any]] | None:
    """Checked axis values; ``option_names`` maps an axis to how the user named it (``--models``)."""
    if overrides is None:
        return None
    parsed = {}
    for name, values in overrides.items():
        where = option_names.get(name, f"--set {name}")
        if name not in suite.axis_names:
            raise PlanError(
                f"{where.split()[0]}: suite {suite.name!r} has no axis {name!r}; "
                f"its axes: {', '.join(suite.axis_names)}"
            )
        parsed[name] = parse_axis_values(suite, name, list(values), where)
    return parsed


def checked_axes(
    suite: Suite, overrides: Mapping[str, list[Any]], quick: bool
) -> dict[str, list[Any]]:
    """Every axis's values: the ones given (checked already), else the profile's, which its kind
    checks too (a default can name what this machine lacks: the accuracy suite's data)."""
    profile = "quick" if quick else "full"
    axes = {}
    for axis in suite.axes:
        if axis.name in overrides:
            axes[axis.name] = list(overrides[axis.name])
        else:
            axes[axis.name] = axis.values(quick)
            where = f"{axis.name}, the {profile} profile's (choose with --set {axis.name}=...)"
            parse_axis_values(suite, axis.name, axes[axis.name], where)
    return axes


def check_values_give_cells(
    suite: Suite, asked: Mapping[str, Sequence[Any]] | None, cells: Sequence[Cell]
) -> None:
    """The matrix has a cell, and each value asked for is in one: a suite's ``cell_filter`` may
    leave every combination of a value out (the memory suite's levels take FaViT sizes only)."""
    rule = f" ({suite.cell_rule})" if suite.cell_rule else ""
    if not cells:
        raise PlanError(f"{suite.name}: no combination of the values asked for is measured{rule}")
    for name, values in (asked or {}).items():
        present = {cell[name] for cell in cells}
        missing = [value for value in values if value not in present]
        if missing:
            raise PlanError(
                f"{suite.name}: {name} {missing[0]!r} gives no cell with the other values asked "
                f"for{rule}"
            )


def check_cells(suite: Suite, cells: Sequence[Cell]) -> None:
    """``suite.check_cell`` on every cell: values each valid alone but never together."""
    if suite.check_cell is None:
        return
    for cell in cells:
        try:
            suite.check_cell(cell)
        except ValueError as exc:
            raise PlanError(f"{' '.join(str(exc).split())} (cell {cell_id(cell)})") from None


def check_options(suite: Suite, options: Mapping[str, Any]) -> dict[str, Any]:
    """Every option key is one the suite reads, and its value parses."""
    kinds = suite.option_kinds
    for key, value in options.items():
        if key not in kinds:
            valid = ", ".join(sorted(kinds)) or "none"
            raise PlanError(
                f"--option: suite {suite.name!r} has no option {key!r}; its options: {valid}"
            )
        try:
            kinds[key](str(value))
        except ValueError as exc:
            raise PlanError(
                f"--option: bad value {key}={value!r} ({' '.join(str(exc).split())})"
            ) from None
    return dict(options)


def check_required_options(suite: Suite, options: Mapping[str, Any]) -> None:
    """Every option the suite requires is given (a resumed run's own options count)."""
    for key, what in suite.required_options.items():
        if key not in options:
            raise PlanError(
                f"--option: suite {suite.name!r} needs {key}=VALUE ({what}); none was given"
            )


# ---- devices ----------------------------------------------------------------------------------


def resolve_device(device: str, planning_only: bool = False) -> str:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``. ``cuda`` without one is an error,
    unless only planning (a dry run plans a GPU run anywhere)."""
    import torch

    if device not in DEVICES:
        raise PlanError(f"--device: bad value {device!r}; valid: {', '.join(DEVICES)}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not planning_only and not torch.cuda.is_available():
        raise PlanError(
            "--device: 'cuda' requested but no CUDA GPU is visible; valid here: auto, cpu"
        )
    return device


def worker_slots(
    device: str,
    gpus: Sequence[int] | None,
    workers: int | None,
    isolate: bool,
    planning_only: bool = False,
) -> list[int | None]:
    """A GPU index per parallel worker on CUDA (default: every visible GPU), else ``workers``
    CPU slots (default 1); one slot when measuring in this process."""
    if workers is not None and workers < 1:
        raise PlanError(f"--workers: bad value {workers}; must be >= 1")
    if device == "cuda":
        if workers is not None:
            raise PlanError("--workers is for CPU runs; on CUDA use --gpus")
        visible = _visible_gpus()
        slots: list[int | None] = list(gpus) if gpus else list(range(max(1, visible)))
        bad = [g for g in slots if g is None or g < 0 or (not planning_only and g >= visible)]
        if bad:
            valid = ", ".join(map(str, range(visible))) or "none (no CUDA device)"
            raise PlanError(f"--gpus: bad GPU index {bad[0]}; valid: {valid}")
    else:
        if gpus:
            raise PlanError(
                f"--gpus: bad GPU index {gpus[0]}; valid: none (this run is on the CPU)"
            )
        slots = [None] * (workers or 1)
    return slots if isolate else slots[:1]


def _visible_gpus() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


# ---- the plan ---------------------------------------------------------------------------------


def default_run_dir(suite_name: str, root: Path = Path("results") / "runs") -> Path:
    """``results/runs/<suite>-<UTC time>``, with ``-2``, ``-3``... when that exists."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    path = root / f"{suite_name}-{stamp}"
    n = 1
    while path.exists():
        n += 1
        path = root / f"{suite_name}-{stamp}-{n}"
    return path


def resumed_settings(
    previous_run: Mapping[str, Any],
    device: str,
    options: Mapping[str, Any] | None,
    seed: int | None,
) -> tuple[dict[str, Any], int | None]:
    """The options and seed a resumed run measures with: its own, from ``env.json``'s ``run``.

    Giving none keeps them; giving the same is fine; giving others, or resuming on another device,
    raises ``ResumeMismatch`` (one line): the new rows would not be comparable with the old.
    """
    kept_options = dict(previous_run.get("options") or {})
    kept_seed = previous_run.get("seed", seed)
    ran_on = previous_run.get("device", device)
    if ran_on != device:
        raise ResumeMismatch(
            f"--resume: the run was measured on {ran_on}; cannot resume it on {device}"
        )
    if options and dict(options) != kept_options:
        raise ResumeMismatch(
            f"--resume: --option {dict(options)} differs from the run's own "
            f"{kept_options or 'none'}; a resumed run keeps its options (leave --option out)"
        )
    if seed is not None and kept_seed is not None and seed != kept_seed:
        raise ResumeMismatch(
            f"--resume: --seed {seed} differs from the run's own {kept_seed}; "
            "a resumed run keeps its seed"
        )
    return kept_options, kept_seed


def run_folder(request: RunRequest) -> tuple[Path, dict[str, Any]]:
    """The run's folder, and the run record of the run it resumes (empty for a new run)."""
    suite = request.suite
    if request.resume_dir is None:
        if request.retry_failed:
            raise PlanError("--retry-failed needs --resume DIR")
        run_dir = Path(request.out_dir) if request.out_dir else default_run_dir(suite.name)
        try:
            check_new_run_folder(run_dir)
        except RunFolderError as exc:
            raise PlanError(f"--out: {exc}") from None
        return run_dir, {}
    if request.out_dir is not None:
        raise PlanError("--out and --resume both given; a resumed run writes to its own folder")
    try:
        previous = check_resumable_run_folder(request.resume_dir)
    except RunFolderError as exc:
        raise PlanError(f"--resume: {exc}") from None
    if previous["suite"] != suite.name:
        raise PlanError(
            f"--resume: {str(request.resume_dir)!r} is a {previous['suite']} run, not {suite.name}"
        )
    return Path(request.resume_dir), previous


def plan_run(request: RunRequest, planning_only: bool = False) -> RunPlan:
    """Check ``request`` and decide everything about the run; ``PlanError`` (one line) if it
    cannot start. ``planning_only`` (``--dry-run``) needs no GPU and writes nothing."""
    suite = request.suite
    run_dir, previous = run_folder(request)
    for name, value in (
        ("--timeout", request.cell_timeout_s),
        ("--stop-after", request.stop_after_s),
    ):
        if value is not None and value <= 0:
            raise PlanError(f"{name}: bad value {value:g}; must be > 0 seconds")

    device = request.device
    if device == "auto" and previous.get("device"):
        device = previous["device"]
    device = resolve_device(device, planning_only)
    options = check_options(suite, dict(request.options or {}))
    seed = request.seed
    reuse_workers = request.reuse_workers
    overrides = asked = parse_overrides(suite, request.overrides, {})
    if previous:
        options, seed = resumed_settings(previous, device, options, seed)
        if overrides is None and previous.get("axes"):
            overrides = parse_overrides(suite, previous["axes"], {})
        if reuse_workers is None:
            reuse_workers = bool(previous.get("reuse_workers", False))
    if reuse_workers is None:
        reuse_workers = suite.reuse_worker is not None
    check_required_options(suite, options)
    quick = request.quick
    if quick is None and "quick" in previous:
        quick = bool(previous["quick"])
    quick = (device == "cpu") if quick is None else quick
    isolate = suite.isolate if request.isolate is None else request.isolate
    timeout = request.cell_timeout_s if request.cell_timeout_s is not None else suite.cell_timeout_s
    rows_file = RowsFile(run_dir / ROWS_FILE) if previous else None
    axes = checked_axes(suite, overrides or {}, quick)
    cells = suite.cells(axes)
    check_values_give_cells(suite, asked, cells)
    check_cells(suite, cells)
    return RunPlan(
        suite=suite,
        run_dir=run_dir,
        resuming=bool(previous),
        device=device,
        quick=quick,
        isolate=isolate,
        timeout_s=float(timeout),
        stop_after_s=request.stop_after_s,
        reuse_workers=bool(reuse_workers),
        slots=worker_slots(device, request.gpus, request.workers, isolate, planning_only),
        seed=0 if seed is None else int(seed),
        options=options,
        axes=axes,
        cells=cells,
        retry_failed=request.retry_failed,
        rows_file=rows_file,
    )
