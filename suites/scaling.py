"""Scaling suite (``--suite scaling``): memory and step time against input size, with growth exponents.

Each cell is one step of the latency suite (``suites.engine.step.measure_step``: same step, same
timer, same meters) at one input size; rows past the largest size that fits are ``oom`` rows,
which mark where a model's curve ends. ``tokens`` is the number of stage-1 tokens of the PVT
layout, ``(H / 4) * (W / 4)``; every model's token count is proportional to the pixel count, so
the fitted exponents do not depend on that choice.

The report fits, per model (and mode, dtype, batch), the least-squares slope of
``log(value)`` against ``log(tokens)`` over the ok rows: ``time_exponent`` for the median step time,
``mem_exponent`` for ``step_mem_mib`` (the step's peak above the memory held between steps:
activations, without the constant weights and optimizer state that would flatten the slope) and
``peak_mem_exponent`` for the absolute allocator peak. Attention over all N tokens grows as N^2
(exponent 2), a kernel whose cost is N log N fits an exponent just above 1; convolutions and
windowed attention are linear (exponent 1). Small sizes underfill a GPU, so time exponents there
read low: compare models over the same sizes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from favit import GLOBAL_ATTN_CHOICES
from suites.engine.row_flags import (
    FLAG_NOTE,
    add_flag_legend,
    add_flags,
    is_launch_bound,
    is_unstable,
    mark_flagged_points,
)
from suites.engine.step import (
    MODES,
    TIMING_OPTION_KINDS,
    StepSpec,
    TimingOptions,
    is_eager_cell,
    measure_step,
    parse_batch_size,
    parse_dtype,
    parse_mode,
)
from suites.engine.suite import Axis, Cell, CellContext, Row, Suite, model_axis, square_image_size
from suites.engine.timing import LAUNCH_BOUND_BUSY_SHARE

PATCH_PX = 4  # stage-1 patch stride of the PVT layout: tokens = (H / 4) * (W / 4)
DEFAULT_MODELS = (
    *(
        f"favit_b1:{variant}{modifier}"
        for variant in GLOBAL_ATTN_CHOICES
        for modifier in ("", "+sr1")
    ),
    "pvt_v2_b1",
    "resnet50",
    "deit_tiny",
    "vit_small",
    "swin_t",
)
QUICK_MODELS = tuple(
    f"favit_b0:{variant}{modifier}" for variant in GLOBAL_ATTN_CHOICES for modifier in ("", "+sr1")
)
GROUP_COLUMNS = ("model", "mode", "dtype", "batch_size")
# the columns a scaling run must have for its exponents to be fitted (``fit_exponents``)
FIT_COLUMNS = (*GROUP_COLUMNS, "img_size")
# multiples of 224 (Swin-T takes no other size), tokens x4 per doubling; the large sizes are where
# an eager FaViT step stops being launch-bound at batch 8, so where its time exponent is measurable
DEFAULT_IMG_SIZES = (224, 448, 672, 896, 1344, 1792)
# lighter than the latency suite's timing (a shorter warm-up): a growth exponent over a 64x range
# of tokens needs a few percent, not a fraction; ``--option`` still overrides it
SCALING_TIMING = {"warmup_steps": 3}


def stage1_tokens(img_size: int) -> int:
    """Tokens of a square input at stage 1 of the PVT layout (stride-4 patch embedding)."""
    return (img_size // PATCH_PX) ** 2


def parse_fixed_batch(value: str | int) -> int:
    """A positive batch size; the scaling suite varies the input, never the batch (no ``max``)."""
    batch = parse_batch_size(value)
    if not isinstance(batch, int):
        raise ValueError(
            f"bad batch_size {value!r}; valid: a positive integer (the scaling suite fixes the batch)"
        )
    return batch


def measure(cell: Cell, ctx: CellContext) -> Row:
    """One input size of one model: the latency suite's step row plus ``tokens``."""
    spec = StepSpec.from_cell({**cell, "batch_size": parse_fixed_batch(cell["batch_size"])})
    options = TimingOptions.for_device(ctx.device, ctx.quick, ctx.options, SCALING_TIMING)
    row = measure_step(spec, ctx, options)
    return {"tokens": stage1_tokens(spec.img_size), **row}


def fit_growth(tokens: Any, values: Any) -> tuple[float, float]:
    """Least-squares slope of log(values) against log(tokens) and its standard error,
    ``sqrt(sum(residual^2) / (n - 2) / sum((x - mean x)^2))`` over the ``n`` fitted points: NaN
    slope with < 2 distinct sizes, NaN error with fewer than 3 points (no residual left)."""
    x, y = np.broadcast_arrays(  # a missing column comes as one NaN
        np.asarray(tokens, dtype=np.float64), np.asarray(values, dtype=np.float64)
    )
    keep = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    x, y = np.log(x[keep]), np.log(y[keep])
    if np.unique(x).size < 2:
        return float("nan"), float("nan")
    slope, intercept = np.polyfit(x, y, 1)
    if x.size < 3:
        return float(slope), float("nan")
    residual = y - (slope * x + intercept)
    spread = np.sum((x - x.mean()) ** 2)
    return float(slope), float(np.sqrt(np.sum(residual**2) / (x.size - 2) / spread))


def fit_growth_exponent(tokens: Any, values: Any) -> float:
    """Least-squares slope of log(values) against log(tokens); NaN with < 2 distinct sizes."""
    return fit_growth(tokens, values)[0]


def _step_ms(table: Any) -> Any:
    is_train = table["mode"] == "train"
    train = table.get("train_step_time", np.nan)
    infer = table.get("infer_step_time", np.nan)
    return table.assign(step_ms=np.where(is_train, train, infer)).astype({"step_ms": float})


def launch_bound_rows(rows: Any) -> Any:
    """True for the rows whose GPU was busy less than ``LAUNCH_BOUND_BUSY_SHARE`` of the step: their
    step time is host time. Rows without a busy share (the CPU) are not launch-bound."""
    return is_launch_bound(rows)


def fit_exponents(table: Any) -> Any:
    """One row per (model, mode, dtype, batch_size): sizes measured, first OOM size, exponents.

    A launch-bound step's time is host time (Python and kernel launches), flat in the input size,
    so ``time_exponent`` fits only the sizes where the GPU is busy at least
    ``LAUNCH_BOUND_BUSY_SHARE`` of the step (NaN when fewer than two are);
    ``time_exponent_all_sizes`` fits every size, and ``launch_bound_sizes`` counts the others;
    ``unstable_sizes`` counts the sizes whose timing rounds never agreed (``suites.engine.row_flags``)
    and ``host_op_us`` is the median host speed of the sizes measured.
    """
    import pandas as pd

    table = table.copy()
    if "tokens" not in table:
        table["tokens"] = [stage1_tokens(int(s)) for s in table["img_size"]]
    status = table["status"] if "status" in table else pd.Series("ok", index=table.index)
    ok = _step_ms(table[status == "ok"])
    launch_bound = launch_bound_rows(ok)
    unstable = is_unstable(ok)
    host_us = pd.to_numeric(ok.get("host_op_us", np.nan), errors="coerce")
    host_us = host_us if isinstance(host_us, pd.Series) else pd.Series(np.nan, index=ok.index)
    records = []
    for key, group in table.groupby(list(GROUP_COLUMNS), sort=True):
        rows = ok.loc[ok.index.intersection(group.index)]
        bound = launch_bound.loc[rows.index]
        oom_sizes = group.loc[status.loc[group.index] == "oom", "img_size"].astype(int)
        record = dict(zip(GROUP_COLUMNS, key, strict=True))
        record.update(
            n_sizes=len(rows),
            min_img_size=int(rows["img_size"].min()) if len(rows) else np.nan,
            max_img_size=int(rows["img_size"].max()) if len(rows) else np.nan,
            first_oom_img_size=int(oom_sizes.min()) if len(oom_sizes) else np.nan,
            launch_bound_sizes=int(bound.sum()),
            unstable_sizes=int(unstable.loc[rows.index].sum()),
            host_op_us=float(host_us.loc[rows.index].median()) if len(rows) else np.nan,
            time_exponent=fit_growth_exponent(
                rows.loc[~bound, "tokens"], rows.loc[~bound, "step_ms"]
            ),
            time_exponent_all_sizes=fit_growth_exponent(rows["tokens"], rows["step_ms"]),
            mem_exponent=fit_growth_exponent(rows["tokens"], rows.get("step_mem_mib", np.nan)),
            peak_mem_exponent=fit_growth_exponent(rows["tokens"], rows.get("peak_mem_mib", np.nan)),
        )
        records.append(record)
    return pd.DataFrame(records)


def _plot_loglog(ok: Any, y: str, ylabel: str, path_stem: Path) -> None:
    import seaborn as sns

    from suites.engine.render import log_x_at_values, model_palette, save_figure

    data = ok.dropna(subset=[y])
    data = data[data[y] > 0]
    if data.empty:
        return
    grid = sns.relplot(
        data=data, x="tokens", y=y, hue="model", palette=model_palette(data["model"]),
        style="model", markers=True, dashes=False, col="mode", row="dtype", kind="line",
        facet_kws={"sharey": False},
    )  # fmt: skip
    grid.set(yscale="log")
    for ax in grid.axes.flat:
        log_x_at_values(ax, data["tokens"])
    for (dtype, mode), ax in grid.axes_dict.items():
        mark_flagged_points(
            ax, data[(data["dtype"] == dtype) & (data["mode"] == mode)], "tokens", y
        )
    add_flag_legend(grid.figure, data)
    grid.set_axis_labels("stage-1 tokens (H/4 x W/4)", ylabel)
    save_figure(grid.figure, path_stem)


def report(table: Any, run_dir: Path) -> None:
    """Exponent table (.md/.tex/.csv) and log-log plots of memory and time against tokens."""
    from suites.engine.render import plot_style, write_table

    run_dir = Path(run_dir)
    exponents = fit_exponents(table)
    if exponents.empty:
        return
    exponents.to_csv(run_dir / "scaling_exponents.csv", index=False, lineterminator="\n")
    write_table(
        exponents,
        run_dir / "scaling_exponents",
        caption=(
            "Growth exponents: least-squares slope of log(step time) and log(step memory above the "
            "between-step baseline) against log(stage-1 tokens). 2 = quadratic in tokens, 1 = linear. "
            f"time_exponent fits only sizes where the GPU is busy >= {LAUNCH_BOUND_BUSY_SHARE} of the "
            "step (a launch-bound step times the host); time_exponent_all_sizes fits every size. "
            "launch_bound_sizes: sizes measured host-bound; unstable_sizes: sizes whose timing "
            "rounds never agreed within the target; host_op_us: the host's median µs per tiny op. "
            + FLAG_NOTE
        ),
        digits={"time_exponent": 2, "time_exponent_all_sizes": 2, "mem_exponent": 2,
                "peak_mem_exponent": 2, "n_sizes": 0, "launch_bound_sizes": 0, "min_img_size": 0,
                "max_img_size": 0, "first_oom_img_size": 0, "unstable_sizes": 0,
                "host_op_us": 2},
    )  # fmt: skip
    ok = _step_ms(table[table["status"] == "ok"] if "status" in table else table)
    if ok.empty:
        return
    ok = add_flags(ok)
    if "tokens" not in ok:
        ok["tokens"] = [stage1_tokens(int(s)) for s in ok["img_size"]]
    plot_style()
    _plot_loglog(ok, "step_ms", "step time (ms, median)", run_dir / "time_vs_tokens")
    _plot_loglog(
        ok, "step_mem_mib", "step memory above baseline (MiB)", run_dir / "memory_vs_tokens"
    )


SUITE = Suite(
    name="scaling",
    description="Memory and step time against input size (tokens) up to the largest that fits; growth exponents.",
    axes=(
        model_axis(DEFAULT_MODELS, quick=QUICK_MODELS),
        Axis(
            "img_size",
            DEFAULT_IMG_SIZES,
            quick=(32, 48, 64, 96),
            kind=square_image_size,
            help="input pixels per side",
        ),
        Axis("batch_size", (8,), quick=(1,), kind=parse_fixed_batch, help="fixed batch size"),
        Axis(
            "dtype", ("bf16",), quick=("fp32",), choices=("fp32", "bf16", "fp16"), kind=parse_dtype
        ),
        Axis(
            "mode",
            ("train",),
            quick=("infer",),
            choices=MODES,
            kind=parse_mode,
            help="train (forward + backward + AdamW) or infer",
        ),
    ),
    needs_gpu=True,
    measure=measure,
    report=report,
    option_kinds=TIMING_OPTION_KINDS,
    reuse_worker=is_eager_cell,
    examples=(
        "python bench.py --suite scaling --quick",
        "python bench.py --suite scaling --models favit_b1:sdpa,favit_b1:sdpa+sr1 --mode train,infer",
    ),
)
