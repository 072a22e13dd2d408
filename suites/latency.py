"""Latency and throughput suite (``--suite latency``): inference and training steps of every model.

One cell = (model, img_size, batch_size, dtype, mode, channels_last, compile), measured by the
shared step (``suites.engine.step``: what is timed, metered and counted, and how). The report adds
each row's throughput and memory ratio to PVT v2-B1 at the same settings, plots against batch size,
a Pareto front of img/s against GMACs, and the rows that lose throughput to a smaller batch.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from baselines import RATIO_BASELINE, default_reference_names
from favit import DEFAULT_GLOBAL_ATTN, GLOBAL_ATTN_CHOICES, MODEL_NAMES
from suites.engine.compiling import COMPILE_MODES
from suites.engine.row_flags import FLAG_NOTE, add_flag_legend, add_flags, mark_flagged_points
from suites.engine.step import (
    CHANNELS_LAST,
    DTYPES,
    MAX_BATCH,
    MODES,
    PURE_DTYPES,
    TIMING_OPTION_KINDS,
    StepSpec,
    TimingOptions,
    is_eager_cell,
    measure_step,
    parse_batch_size,
    parse_channels_last,
    parse_compile,
    parse_dtype,
    parse_mode,
)
from suites.engine.suite import Axis, Cell, CellContext, Row, Suite, model_axis, square_image_size
from suites.engine.timing import LAUNCH_BOUND_BUSY_SHARE

FAVIT_VARIANTS = GLOBAL_ATTN_CHOICES
DEFAULT_MODELS = (  # favit_b1 is already the default variant: no favit_b1:<default> twin
    *MODEL_NAMES,
    *(f"favit_b1:{v}" for v in FAVIT_VARIANTS if v != DEFAULT_GLOBAL_ATTN),
    *default_reference_names(),
)


def measure(cell: Cell, ctx: CellContext) -> Row:
    """One latency cell: see the module docstring for what is measured and how."""
    spec = StepSpec.from_cell(cell)
    return measure_step(spec, ctx, TimingOptions.for_device(ctx.device, ctx.quick, ctx.options))


# ----------------------------------------------------------------------------- report


AXIS_COLUMNS = ("img_size", "batch_size", "dtype", "mode", "channels_last", "compile")


def tidy(table: Any) -> Any:
    """The ok rows with mode-independent columns: ``batch`` (found or fixed), ``samples_per_sec``, ``step_ms``."""
    import pandas as pd

    ok = table[table["status"] == "ok"].copy() if "status" in table else table.copy()
    if ok.empty:
        return ok
    for prefix in MODES:
        for column in (f"{prefix}_samples_per_sec", f"{prefix}_step_time", f"{prefix}_batch_size"):
            if column not in ok:
                ok[column] = float("nan")
    is_train = ok["mode"] == "train"
    ok["samples_per_sec"] = (
        ok["train_samples_per_sec"].where(is_train, ok["infer_samples_per_sec"]).astype(float)
    )
    ok["step_ms"] = ok["train_step_time"].where(is_train, ok["infer_step_time"]).astype(float)
    ok["batch"] = pd.to_numeric(
        ok["train_batch_size"].where(is_train, ok["infer_batch_size"]), errors="coerce"
    )
    ok["batch_size"] = ok["batch_size"].astype(str)
    return ok


def add_reference_ratios(ok: Any, reference: str = RATIO_BASELINE) -> Any:
    """``vs_<reference>`` (throughput ratio) and ``mem_vs_<reference>`` (peak-memory ratio) per row,
    against the reference model's row with the same axis values in the same run (NaN where absent)."""
    import pandas as pd

    keys = [c for c in AXIS_COLUMNS if c in ok]
    ref = ok[ok["model"] == reference][[*keys, "samples_per_sec", "peak_mem_mib"]]
    ref = ref.drop_duplicates(subset=keys, keep="last").rename(
        columns={"samples_per_sec": "_ref_samples_per_sec", "peak_mem_mib": "_ref_peak_mem_mib"}
    )
    merged = pd.merge(ok, ref, on=keys, how="left")
    merged[f"vs_{reference}"] = merged["samples_per_sec"] / merged["_ref_samples_per_sec"]
    merged[f"mem_vs_{reference}"] = merged["peak_mem_mib"].astype(float) / merged[
        "_ref_peak_mem_mib"
    ].astype(float)
    return merged.drop(columns=["_ref_samples_per_sec", "_ref_peak_mem_mib"])


def pareto_front(gmacs: list[float], throughput: list[float]) -> list[bool]:
    """True for points no other point beats on both axes (fewer or equal GMACs and more img/s)."""
    points = list(zip(gmacs, throughput, strict=True))
    return [
        not any((g2 <= g and t2 >= t) and (g2, t2) != (g, t) for g2, t2 in points)
        for g, t in points
    ]


THROUGHPUT_DROP_PCT = 5.0
DROP_COLUMNS = (
    "model", "mode", "dtype", "compile", "channels_last", "img_size", "batch", "samples_per_sec",
    "flags", "repeat_spread_pct", "host_op_us", "peak_mem_mib", "best_smaller_batch",
    "best_smaller_samples_per_sec", "drop_pct",
)  # fmt: skip


def throughput_drops(ok: Any, min_drop_pct: float = THROUGHPUT_DROP_PCT) -> Any:
    """Rows that give more than ``min_drop_pct`` % fewer img/s than the best smaller batch of the
    same model and settings, with that batch (``best_smaller_*``) and the drop.

    A batch sweep should not lose throughput as the batch grows (a wider batch only adds work to
    fill the GPU with); where it does, something besides the GPU's width sets the step time.
    """
    import pandas as pd

    keys = ["model", *(c for c in AXIS_COLUMNS if c in ok and c != "batch_size")]
    drops = []
    for _, group in ok.dropna(subset=["batch", "samples_per_sec"]).groupby(keys, dropna=False):
        best = None  # the row of the highest img/s among smaller batches
        for _, row in group.sort_values("batch").iterrows():
            if best is not None and row["batch"] > best["batch"]:
                drop_pct = 100.0 * (1.0 - row["samples_per_sec"] / best["samples_per_sec"])
                if drop_pct > min_drop_pct:
                    drops.append(
                        {
                            **row.to_dict(),
                            "best_smaller_batch": best["batch"],
                            "best_smaller_samples_per_sec": best["samples_per_sec"],
                            "drop_pct": drop_pct,
                        }
                    )
            if best is None or row["samples_per_sec"] > best["samples_per_sec"]:
                best = row
    columns = [c for c in DROP_COLUMNS if c in ok or c.startswith(("best_", "drop_"))]
    return pd.DataFrame(drops, columns=list(DROP_COLUMNS)).reindex(columns=columns)


TABLE_COLUMNS = (
    "model", "mode", "dtype", "compile", "channels_last", "img_size", "batch_size", "batch",
    "batch_failed", "samples_per_sec", "flags",
    "step_ms", "step_p10_ms", "step_p90_ms", "step_cv", "repeat_spread_pct", "peak_mem_mib", "step_mem_mib",
    "mem_source", "infer_gmacs", "achieved_tflops", "mfu", "gpu_busy_share", "launch_bound",
    "host_op_us", f"vs_{RATIO_BASELINE}", f"mem_vs_{RATIO_BASELINE}",
)  # fmt: skip


def _plot_by_batch(ok: Any, y: str, ylabel: str, path_stem: Path) -> None:
    import seaborn as sns

    from suites.engine.render import log_x_at_values, model_palette, save_figure

    data = ok.dropna(subset=["batch", y])
    if data.empty:
        return
    several_compile_modes = data["compile"].nunique() > 1 if "compile" in data else False
    grid = sns.relplot(
        data=data, x="batch", y=y, hue="model", palette=model_palette(data["model"]),
        style="compile" if several_compile_modes else None, col="mode", row="dtype", kind="line",
        marker="o", aspect=1.4, facet_kws={"sharey": False},
    )  # fmt: skip
    # ticks at the swept batch sizes and the largest batch found; `max` rows' own batches
    # (1,664, 1,728, 2,048...) would crowd the last octave
    fixed = data.loc[data["batch_size"].astype(str) != MAX_BATCH, "batch"]
    for ax in grid.axes.flat:
        log_x_at_values(ax, [*fixed, data["batch"].max()])
        ax.set_yscale("log")
    for (dtype, mode), ax in grid.axes_dict.items():
        mark_flagged_points(ax, data[(data["dtype"] == dtype) & (data["mode"] == mode)], "batch", y)
    add_flag_legend(grid.figure, data)
    grid.set_axis_labels("batch size", ylabel)
    save_figure(grid.figure, path_stem)


def _plot_pareto(ok: Any, path_stem: Path) -> None:
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    from suites.engine.render import model_palette, save_figure

    data = ok.dropna(subset=["infer_gmacs", "samples_per_sec"])
    if data.empty:
        return
    # each model's best throughput over batch sizes, per (mode, dtype, compile)
    best = data.loc[data.groupby(["mode", "dtype", "compile", "model"])["samples_per_sec"].idxmax()]
    facets = sorted(best.groupby(["mode", "dtype", "compile"]).groups)
    palette = model_palette(sorted(best["model"].unique()))
    columns = min(2, len(facets))
    rows = math.ceil(len(facets) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(6.5 * columns, 4.5 * rows), squeeze=False)
    for ax, facet in zip(axes.flat, facets, strict=False):  # a last odd panel stays empty
        points = best[(best[["mode", "dtype", "compile"]] == list(facet)).all(axis=1)]
        for model, point in points.groupby("model"):
            ax.scatter(point["infer_gmacs"], point["samples_per_sec"], color=palette[model],
                       label=model, s=45, zorder=3)  # fmt: skip
        front = points[
            pareto_front(points["infer_gmacs"].tolist(), points["samples_per_sec"].tolist())
        ].sort_values("infer_gmacs")
        ax.step(front["infer_gmacs"], front["samples_per_sec"], where="post", color="0.35",
                linestyle="--", label="Pareto front", zorder=2)  # fmt: skip
        mark_flagged_points(ax, points, "infer_gmacs", "samples_per_sec")
        ax.set(xscale="log", yscale="log", xlabel="GMACs per image (flop counter / 2)",
               ylabel="img/s (best batch)", title=" / ".join(facet))  # fmt: skip
        for axis in (ax.xaxis, ax.yaxis):  # ticks at 1, 2, 5 per decade, labelled plainly
            axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,g}"))
            axis.set_minor_formatter(NullFormatter())
    for ax in axes.flat[len(facets) :]:
        ax.set_visible(False)
    legend = {}  # one entry per model (and the front) over every panel
    for ax in axes.flat[: len(facets)]:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            legend.setdefault(label, handle)
    fig.legend(legend.values(), legend.keys(), loc="center left", bbox_to_anchor=(1.0, 0.5))
    add_flag_legend(fig, best)
    fig.tight_layout()
    save_figure(fig, path_stem)


# what peak_mem_mib is, by mem_source (suites.latency._memory_mib)
MEM_SOURCE_NOTE = (
    " mem_source says what peak_mem_mib is: cuda_allocator, the allocator's allocated peak of one "
    "step; cuda_reserved (CUDA-graph rows), its reserved peak, which holds the graphs' private "
    "pool and the allocator's cache, so it is not comparable with an allocated peak; "
    "tensor_accounting (CPU), no peak, step_mem_mib from exact tensor accounting; none, not "
    "measured."
)


def shows_mem_source(ok: Any) -> bool:
    """Whether the table needs ``mem_source``: its rows measure ``peak_mem_mib`` more than one way,
    or all of them as the reserved peak (CUDA graphs), which reads like an allocated peak."""
    if "mem_source" not in ok:
        return False
    sources = set(ok["mem_source"].dropna().astype(str))
    return len(sources) > 1 or "cuda_reserved" in sources


def flag_note(rows: Any) -> str:
    """The caption's sentence on flags (``suites.engine.row_flags``), when a row carries one."""
    flagged = rows["flags"].astype(bool)
    if not flagged.any():
        return ""
    return f" {int(flagged.sum())} of {len(rows)} rows are flagged; {FLAG_NOTE}"


def report(table: Any, run_dir: Path) -> None:
    """Table (.md/.tex) with ratios against PVT v2-B1; plots of throughput and memory against batch
    size and an accuracy-free Pareto of img/s against GMACs."""
    from suites.engine.render import plot_style

    run_dir = Path(run_dir)
    ok = tidy(table)
    if ok.empty:
        return
    ok = add_flags(add_reference_ratios(ok))
    ok = ok.sort_values(["mode", "dtype", "compile", "channels_last", "model", "batch"])
    drops = _write_drops_table(ok, run_dir / "throughput_drops")
    _write_latency_table(ok, run_dir / "latency", drops)
    plot_style()
    _plot_by_batch(ok, "samples_per_sec", "img/s", run_dir / "throughput_vs_batch")
    # the allocator's peak on a GPU; on the CPU, where there is none, the step's exact tensor peak
    if ok["peak_mem_mib"].notna().any():
        _plot_by_batch(ok, "peak_mem_mib", "peak memory (MiB)", run_dir / "memory_vs_batch")
    else:
        memory_label = "step memory above steady state (MiB)"
        _plot_by_batch(ok, "step_mem_mib", memory_label, run_dir / "memory_vs_batch")
    _plot_pareto(ok, run_dir / "pareto_throughput_gmacs")


def _write_drops_table(ok: Any, stem: Path) -> Any:
    """``throughput_drops`` rows as a table (none: no file, an earlier one removed)."""
    from suites.engine.render import write_table

    drops = throughput_drops(ok)
    for stale in (stem.with_suffix(".md"), stem.with_suffix(".tex")):
        stale.unlink(missing_ok=True)
    if drops.empty:
        return drops
    write_table(
        drops,
        stem,
        caption=(
            f"Rows that give more than {THROUGHPUT_DROP_PCT:g}% fewer img/s than a smaller "
            "batch of the same model and settings (best_smaller_*: the smaller batch with the "
            "most img/s; drop_pct: how much fewer). A larger batch should not lose "
            "throughput; where it does, something besides the GPU's width sets the step time."
        ),
        digits={"batch": 0, "best_smaller_batch": 0, "img_size": 0, "drop_pct": 1, "host_op_us": 2},
    )
    return drops


def _write_latency_table(ok: Any, stem: Path, drops: Any) -> None:
    from suites.engine.render import write_table

    has_reference = bool((ok["model"] == RATIO_BASELINE).any())
    ratio_columns = (f"vs_{RATIO_BASELINE}", f"mem_vs_{RATIO_BASELINE}")
    # the axis value and the smallest batch that ran out of memory say what a `max` row's batch is
    has_max = bool((ok["batch_size"] == MAX_BATCH).any())
    show_mem_source = shows_mem_source(ok)
    columns = [
        c
        for c in TABLE_COLUMNS
        if c in ok
        and (has_reference or c not in ratio_columns)
        and (has_max or c not in ("batch_size", "batch_failed"))
        and (show_mem_source or c != "mem_source")
    ]
    ratio_note = (
        f"vs_{RATIO_BASELINE}: img/s ratio to {RATIO_BASELINE} at the same settings; "
        if has_reference
        else ""
    )
    max_note = (
        f" batch_size {MAX_BATCH}: batch is the largest that fits, batch_failed the smallest "
        "tried that ran out of memory (empty: the start batch fitted, so the limit is that or "
        "more)."
    )
    drops_note = (
        f" {len(drops)} rows give more than {THROUGHPUT_DROP_PCT:g}% fewer img/s than a smaller "
        "batch of the same model and settings: throughput_drops.md."
    )
    caption = (
        "Latency and throughput. step_ms: median over the last two timing rounds; "
        "repeat_spread_pct: spread of their medians (rounds run until two agree within "
        "spread_target_pct, 3% by default; timing_rounds in rows.csv); "
        f"{ratio_note}launch_bound: GPU busy share < {LAUNCH_BOUND_BUSY_SHARE}."
        + (max_note if has_max else "")
        + (MEM_SOURCE_NOTE if show_mem_source else "")
        + (drops_note if len(drops) else "")
        + flag_note(ok)
    )
    write_table(
        ok[columns].reset_index(drop=True),
        stem,
        caption=caption,
        digits={
            "host_op_us": 2, "step_cv": 3, "mfu": 3, "gpu_busy_share": 2, "infer_gmacs": 3,
            "batch": 0, "batch_failed": 0, "img_size": 0,
        },
    )  # fmt: skip


SUITE = Suite(
    name="latency",
    description="Inference/training step time, throughput, memory, TFLOP/s and MFU per model and setting.",
    axes=(
        model_axis(DEFAULT_MODELS, quick=("favit_b0", "pvt_v2_b0", "resnet50")),
        Axis("img_size", (224,), quick=(64,), kind=square_image_size, help="input pixels per side"),
        Axis(
            "batch_size",
            (1, 32, 128, 256, MAX_BATCH),
            quick=(1, 2),
            kind=parse_batch_size,
            help="positive integer, or 'max' (largest that fits, CUDA only)",
        ),
        Axis(
            "dtype",
            ("bf16", "fp32"),
            quick=("fp32",),
            choices=(*DTYPES, *PURE_DTYPES),
            kind=parse_dtype,
            help="fp32; bf16/fp16 autocast; bf16_pure (bf16 weights, no autocast; inference only)",
        ),
        Axis(
            "mode",
            MODES,
            quick=MODES,
            choices=MODES,
            kind=parse_mode,
            help="infer: forward; train: forward + cross-entropy + backward + AdamW step",
        ),
        Axis("channels_last", ("off",), choices=CHANNELS_LAST, kind=parse_channels_last),
        Axis(
            "compile",
            ("eager",),
            choices=COMPILE_MODES,
            kind=parse_compile,
            help="eager; compile (inductor); cudagraph (inductor reduce-overhead, CUDA only); "
            "cudagraph_eager (CUDA graphs of the eager kernels, CUDA only)",
        ),
    ),
    needs_gpu=True,
    measure=measure,
    report=report,
    option_kinds=TIMING_OPTION_KINDS,
    reuse_worker=is_eager_cell,
    cell_timeout_s=1800.0,  # a compiled cell with batch 'max' compiles once per tried batch
    examples=(
        "python bench.py --suite latency --quick",
        "python bench.py --suite latency --models favit_b1,pvt_v2_b1 --batch-size 128,256 --dtype bf16 --set compile=eager,compile",
    ),
)
