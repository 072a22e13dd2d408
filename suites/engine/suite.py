"""The contract every suite fulfils: a name, its axes, one function per cell, one report.

A suite module (``suites/<name>.py``) defines one module-level ``SUITE = Suite(...)``. The matrix
runner (``suites.engine.runner``) expands the axes into cells, calls ``measure(cell, ctx)`` once per
cell (by default in a fresh worker process), appends the returned row to ``rows.csv`` and, when
every cell is done, calls ``report(table, run_dir)`` on the finished table.

Row conventions (every column is in ``suites.engine.columns``, which generates docs/COLUMNS.md):
- column names carry units: ``_ms``, ``_mib``, ``_gmacs``, ``_img_s``, ``_bytes``, ``_s``;
- one quantity has one name in every suite (``step_mem_mib``, ``param_count``...);
- where a column means what a column of timm's ``benchmark.py`` CSV means, it uses timm's name
  (``model``, ``param_count`` in millions, ``infer_samples_per_sec``, ``infer_step_time`` in ms,
  ``infer_batch_size``, ``infer_img_size``, ``infer_gmacs``, ``train_samples_per_sec``,
  ``train_step_time``, ``train_batch_size``, ``train_img_size``);
- the runner adds ``status`` (ok | oom | error | skipped), ``reason``, ``cell_id``, the axis values,
  ``model_id`` (a cell with a ``model``), ``device_name``, ``gpu_index``, ``wall_s`` and
  ``finished_utc``; ``measure`` returns only what it measured.
- ``measure`` may return a list of rows when one cell measures several things at once (the four
  stages of a model, say); each row gets the runner's columns and the cell's ``cell_id``;
- ``measure`` raises ``CellSkipped(reason)`` for a cell that does not apply (a model that cannot
  take an input size, say); an out-of-memory error becomes ``status=oom``, any other exception
  ``status=error`` with the exception as ``reason``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Cell = dict[str, Any]
Row = dict[str, Any]


class CellSkipped(Exception):
    """Raised by ``measure`` when a cell does not apply; its message is the row's ``reason``."""


@dataclass(frozen=True)
class Axis:
    """One dimension of a suite's matrix.

    ``default`` is the full profile (a GPU run), ``quick`` the profile that fits a CPU in about a
    minute. ``choices``, when given, is the closed set of valid values (checked on the command
    line); ``kind`` converts a command-line string to a value (``int`` for batch sizes, say);
    ``expand``, when given, turns one given string into the values it stands for (a wildcard or
    ``@FILE`` of model names) before ``kind`` checks each.
    """

    name: str
    default: Sequence[Any]
    quick: Sequence[Any] | None = None
    choices: Sequence[Any] | None = None
    kind: Callable[[str], Any] = str
    help: str = ""
    expand: Callable[[str], list[Any]] | None = None

    def values(self, quick: bool) -> list[Any]:
        return list(self.quick if quick and self.quick is not None else self.default)


@dataclass
class CellContext:
    """What the runner hands ``measure`` besides the cell's axis values."""

    device: str  # "cpu" or "cuda:<index>"
    run_dir: Path  # the run's folder; a cell may write artifacts under run_dir / "cells" / cell_id
    cell_id: str
    quick: bool = False
    seed: int = 0
    options: Mapping[str, Any] = field(default_factory=dict)  # suite-specific command-line options
    progress: bool = True  # a cell may show its own progress bar (off with --no-progress)

    @property
    def artifact_dir(self) -> Path:
        path = self.run_dir / "cells" / self.cell_id
        path.mkdir(parents=True, exist_ok=True)
        return path


@dataclass(frozen=True)
class Suite:
    """A declarative benchmark: axes, one measurement per cell, one report over the table."""

    name: str
    description: str
    axes: Sequence[Axis]
    measure: Callable[[Cell, CellContext], Row]
    report: Callable[[Any, Path], None] | None = None  # (pandas.DataFrame, run_dir) -> files
    isolate: bool = True  # run each cell in its own worker process
    # its figures depend on the accelerator: committed results count only from a GPU run
    needs_gpu: bool = False
    cell_timeout_s: float = 900.0
    examples: Sequence[str] = ()  # command lines shown by --help and --list
    # a cell for which this returns False is left out of the matrix (an axis that does not apply),
    # and ``cell_rule`` says which combinations it keeps (for the line a run that asks for a value
    # it leaves out gets)
    cell_filter: Callable[[Cell], bool] | None = None
    cell_rule: str = ""
    # a cell for which this returns True runs in the parent even when isolating (pure arithmetic)
    in_process: Callable[[Cell], bool] | None = None
    # with --reuse-workers, a cell for which this returns True may run in a worker that measured
    # other such cells (saving it a process and a CUDA start); every other cell gets its own
    reuse_worker: Callable[[Cell], bool] | None = None
    # the ``--option KEY=VALUE`` keys the suite reads, each with a parser that raises ValueError
    # on a bad value (the command line checks both before any cell runs)
    option_kinds: Mapping[str, Callable[[str], Any]] = field(default_factory=dict)
    # the option keys a run cannot start without, each with what to give (for the error line)
    required_options: Mapping[str, str] = field(default_factory=dict)
    # raises ValueError for a cell whose values can never be measured together (a warm-up as long
    # as the training, say); checked for every cell before any runs. Each value alone is checked
    # by its axis's ``kind``; a limit of one model is a skipped row (``CellSkipped``) instead
    check_cell: Callable[[Cell], None] | None = None

    def axis(self, name: str) -> Axis:
        for axis in self.axes:
            if axis.name == name:
                return axis
        raise KeyError(f"suite {self.name!r} has no axis {name!r}; axes: {self.axis_names}")

    @property
    def axis_names(self) -> list[str]:
        return [axis.name for axis in self.axes]

    def cells(
        self, overrides: Mapping[str, Sequence[Any]] | None = None, quick: bool = False
    ) -> list[Cell]:
        """The cartesian product of the axes, in axis order; ``overrides`` replaces an axis's values."""
        overrides = overrides or {}
        unknown = set(overrides) - set(self.axis_names)
        if unknown:
            raise KeyError(
                f"suite {self.name!r} has no axis {sorted(unknown)}; axes: {self.axis_names}"
            )
        values = [list(overrides.get(a.name, a.values(quick))) for a in self.axes]
        cells = [
            dict(zip(self.axis_names, combo, strict=True)) for combo in itertools.product(*values)
        ]
        return [c for c in cells if self.cell_filter is None or self.cell_filter(c)]


MODEL_AXIS_HELP = (
    "favit_bX[:attn][+mods], a registry name (pvt_v2_b1...), timm:<name>, tv:<name> or "
    "package.module:factory; wildcards (timm:convnext_*) and @FILE (one name per line) expand"
)


def model_axis(
    default: Sequence[str], quick: Sequence[str] | None = None, help: str = MODEL_AXIS_HELP
) -> Axis:
    """The ``model`` axis of a suite that measures any model ``baselines`` builds by name."""
    import baselines

    return Axis(
        "model",
        default,
        quick,
        kind=baselines.validate_name,
        help=help,
        expand=baselines.expand_name,
    )


def _positive(text: str) -> int | None:
    """``"224"`` -> 224; anything but the digits of a positive integer -> None."""
    return int(text) if text.isascii() and text.isdigit() and int(text) > 0 else None


def image_size(text: str | int) -> int | str:
    """An ``Axis.kind`` for input sizes: ``"224"`` -> 224, ``"320x224"`` -> ``"320x224"`` (W x H),
    ``"224x224"`` -> 224. Zero, negative and malformed sizes raise ``ValueError``."""
    text = str(text).strip().lower()
    width, sep, height = text.partition("x")
    side, w, h = _positive(text), _positive(width), _positive(height)
    if side is not None:
        return side
    if sep and w is not None and h is not None:
        return w if w == h else f"{w}x{h}"
    raise ValueError(
        f"bad img_size {text!r}; valid: a positive integer (pixels per side) or W x H like 320x224"
    )


def square_image_size(text: str | int) -> int:
    """An ``Axis.kind`` for suites whose inputs are square: a positive integer (pixels per side)."""
    side = _positive(str(text).strip())
    if side is None:
        raise ValueError(
            f"bad img_size {str(text).strip()!r}; valid: a positive integer (pixels per side)"
        )
    return side


def positive_int(text: str | int) -> int:
    """An ``Axis.kind`` for counts such as batch sizes: a positive integer."""
    value = _positive(str(text).strip())
    if value is None:
        raise ValueError(f"{str(text).strip()!r} is not valid; valid: a positive integer")
    return value


def image_hw(size: int | str) -> tuple[int, int]:
    """``(H, W)`` of an ``image_size`` value: 224 -> (224, 224), ``"320x224"`` -> (224, 320)."""
    if isinstance(size, int):
        return size, size
    width, _, height = str(size).partition("x")
    return (int(height), int(width)) if height else (int(width), int(width))


def cell_id(cell: Mapping[str, Any]) -> str:
    """A stable, filesystem-safe key for a cell: ``model=favit_b1,img_size=224,...``."""
    text = ",".join(f"{k}={v}" for k, v in cell.items())
    return "".join(c if c.isalnum() or c in "=,._-+:" else "_" for c in text)
