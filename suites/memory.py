"""The memory suite: does ProbSparse global attention cut memory by 98%, and compared with what?

Four levels, every variant measured in one run so each ratio compares like with like:

1. ``analytic``: attention-score elements each variant materializes (``favit.attention_score_elements``),
   per stage, per block and per image (the README's 3,136 x 3,136 is stage 1 without reduction);
2. ``global``: the global-attention branch alone (``favit.GlobalAttention``), forward + backward,
   one block of each stage at that stage's geometry;
3. ``attention``: the whole ``favit.FactorizedAttention`` of one block per stage, forward + backward;
4. ``model``: the whole model, a training step (forward, backward, AdamW step) or inference.

Levels 1-3 are per image (batch 1) and give one row per stage; level 4 runs each batch size and
mode. Memory is the CUDA allocator's peak above the pre-step baseline on a GPU (``step_mem_mib``,
``mem_source=cuda_allocator``) and the exact tensor accounting everywhere (``acct_*`` columns; on the
CPU ``step_mem_mib`` is ``acct_peak_live_mib``, ``mem_source=tensor_accounting``).
Variants: ``probsparse_seed`` and ``probsparse`` against ``dense`` (published spatial reduction),
``dense+sr1`` (no reduction: every patch with every patch), ``sdpa`` and ``sdpa+sr1`` (fused).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from suites.engine.suite import (
    Axis,
    Cell,
    CellContext,
    CellSkipped,
    Row,
    Suite,
    positive_int,
    square_image_size,
)

LEVELS = ("analytic", "global", "attention", "model")
STAGE_LEVELS = ("analytic", "global", "attention")
PROBSPARSE = ("probsparse_seed", "probsparse")
COMPARISONS = ("dense", "dense+sr1", "sdpa", "sdpa+sr1")
VARIANTS = PROBSPARSE + COMPARISONS
DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
CLAIMED_REDUCTION = 0.98
# The claim is about the ProbSparse algorithm, so every level measures FaViT's reference
# implementation: it materializes what the seed's code does (gathered sampled keys, top-u rows
# scattered into a fill). The fast path (``impl="fast"``) computes the same outputs another way
# (ProbSparse over few keys as dense-then-select), which is a speed choice, not the algorithm.
IMPL = "reference"
MIB = 1024.0**2

if TYPE_CHECKING:  # pandas is imported where the report runs, not in every cell's worker
    import pandas as pd


def parse_variant(variant: str) -> tuple[str, bool]:
    """``"dense+sr1"`` -> ``("dense", True)``: the global kernel and whether sr_ratios are all 1."""
    kernel, _, suffix = variant.partition("+")
    return kernel, suffix == "sr1"


def model_names() -> list[str]:
    import favit

    return list(favit.MODEL_NAMES)


def applies(cell: Cell) -> bool:
    """Levels 1-3 are per image and forward + backward: batch 1, mode train only."""
    if cell["level"] in STAGE_LEVELS:
        return cell["batch_size"] == 1 and cell["mode"] == "train"
    return True


def runs_in_process(cell: Cell) -> bool:
    return cell["level"] == "analytic"  # arithmetic only: no worker needed


def _torch_dtype(name: str):
    import torch

    return getattr(torch, DTYPES[name])


def _stage_geometries(cell: Cell) -> list[Any]:
    import favit

    _, sr1 = parse_variant(cell["variant"])
    config = favit.model_config(cell["model"])
    sr_ratios = (1,) * len(config.depths) if sr1 else None
    try:
        return favit.stage_geometry(cell["model"], int(cell["img_size"]), sr_ratios=sr_ratios)
    except ValueError as exc:
        raise CellSkipped(str(exc)) from None


def measure_step(step: Callable[[], Any], device: str) -> Row:
    """Run ``step`` once under the tensor accountant (and the allocator meter on CUDA)."""
    from contextlib import nullcontext

    from suites.engine.meters import GpuMemoryMeter, TensorAccountant

    cuda = device.startswith("cuda")
    gpu_meter = GpuMemoryMeter(device) if cuda else nullcontext()
    accountant = TensorAccountant()
    with gpu_meter, accountant:
        step()
    acct = accountant.result()
    accountant.detach()
    row: Row = acct.as_row()
    if cuda:
        gpu = gpu_meter.result
        row.update(gpu.as_row())
        row["acct_over_allocator"] = (
            acct.peak_live_bytes / MIB / gpu.peak_above_baseline_mib
            if gpu.peak_above_baseline_mib
            else float("nan")
        )
    else:
        row["step_mem_mib"] = acct.peak_live_bytes / MIB
        row["mem_source"] = "tensor_accounting"
    return row


def _analytic_rows(cell: Cell) -> list[Row]:
    import favit

    kernel, _ = parse_variant(cell["variant"])
    bytes_per_element = _torch_dtype(cell["dtype"]).itemsize
    rows = []
    for geo in _stage_geometries(cell):
        elements = favit.attention_score_elements(geo, kernel)
        window = elements["local"] + elements["dilated"]
        per_stage = (elements["global"] + window) * geo.depth * cell["batch_size"]
        rows.append(
            {
                "stage": geo.stage + 1,
                "global_attn": kernel,
                "sr_ratio": geo.sr_ratio,
                "queries": geo.N,
                "global_keys": geo.global_keys,
                "global_score_elements": elements["global"],  # one block, one image
                "global_sample_elements": elements["global_sample"],
                "global_topu_elements": elements["global_topu"],
                "window_score_elements": window,
                "stage_score_elements": per_stage,  # all branches, every block of the stage
                "stage_score_mib": per_stage * bytes_per_element / MIB,
            }
        )
    return rows


def _branch_rows(cell: Cell, ctx: CellContext) -> list[Row]:
    """Levels ``global`` and ``attention``: one block of each stage, forward + backward."""
    import torch

    import favit

    kernel, _ = parse_variant(cell["variant"])
    dtype = _torch_dtype(cell["dtype"])
    rows = []
    for geo in _stage_geometries(cell):
        if cell["level"] == "global":
            module = favit.GlobalAttention(geo.global_width, geo.sr_ratio, global_attn=kernel)
            width = geo.global_width
        else:
            module = favit.FactorizedAttention(
                geo.dim, geo.num_heads, geo.sr_ratio, global_attn=kernel, impl=IMPL
            )
            width = geo.dim
        module = module.to(ctx.device, dtype).train()
        x = torch.randn(
            cell["batch_size"], geo.N, width, device=ctx.device, dtype=dtype, requires_grad=True
        )
        q = torch.randn_like(x, requires_grad=True) if cell["level"] == "global" else None

        def step(module=module, x=x, q=q, geo=geo) -> None:
            out = module(q, x, geo.H, geo.W) if q is not None else module(x, geo.H, geo.W)
            out.float().sum().backward()

        if ctx.device.startswith("cuda"):
            step()  # warm-up: cuBLAS/cuDNN workspaces and kernel choice stay out of the peak
        module.zero_grad(set_to_none=True)
        x.grad = None
        if q is not None:
            q.grad = None
        row = measure_step(step, ctx.device)
        row.update(
            stage=geo.stage + 1,
            global_attn=kernel,
            sr_ratio=geo.sr_ratio,
            queries=geo.N,
            global_keys=geo.global_keys,
        )
        rows.append(row)
        del module, x, q
    return rows


def _model_row(cell: Cell, ctx: CellContext) -> Row:
    import torch

    import baselines

    kernel, _ = parse_variant(cell["variant"])
    name = f"{cell['model']}:{cell['variant']}" + ("+ref" if IMPL == "reference" else "")
    size = int(cell["img_size"])
    try:
        model = baselines.create(name, num_classes=1000, img_size=size)
    except baselines.UnsupportedInput as exc:
        raise CellSkipped(str(exc)) from None
    dtype = _torch_dtype(cell["dtype"])
    model = model.to(ctx.device, dtype)
    images = torch.randn(cell["batch_size"], 3, size, size, device=ctx.device, dtype=dtype)
    labels = torch.randint(0, 1000, (cell["batch_size"],), device=ctx.device)
    if cell["mode"] == "train":
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

        def step() -> None:
            loss = torch.nn.functional.cross_entropy(model(images).float(), labels)
            loss.backward()
            optimizer.step()

        step()  # warm-up: creates the optimizer state, which then counts as baseline
        optimizer.zero_grad(set_to_none=True)
    else:
        model.eval()

        def step() -> None:
            with torch.no_grad():
                model(images)

        step()
    row = measure_step(step, ctx.device)
    row.update(
        stage="all",
        global_attn=kernel,
        param_count=sum(p.numel() for p in model.parameters()) / 1e6,
    )
    return row


def measure(cell: Cell, ctx: CellContext) -> Row | list[Row]:
    if cell["level"] == "analytic":
        return _analytic_rows(cell)
    if cell["level"] in ("global", "attention"):
        return _branch_rows(cell, ctx)
    return _model_row(cell, ctx)


# ---- report -------------------------------------------------------------------------------

# level -> (column compared, what it is)
LEVEL_METRICS: dict[str, list[tuple[str, str]]] = {
    "analytic": [
        ("global_score_elements", "global-branch score elements, one block"),
        ("stage_score_elements", "score elements of all branches, whole stage"),
    ],
    "global": [("step_mem_mib", "peak memory, global branch fwd+bwd")],
    "attention": [("step_mem_mib", "peak memory, attention module fwd+bwd")],
    "model": [("step_mem_mib", "peak memory, whole model")],
}
KEYS = ["level", "model", "img_size", "batch_size", "mode", "dtype", "stage"]


def reduction_table(table: pd.DataFrame) -> pd.DataFrame:
    """One row per (level, metric, setting, ProbSparse variant, comparison): both values, the
    reduction ``1 - probsparse / comparison``, and whether the comparison ran out of memory."""
    import pandas as pd

    records = []
    table = table.copy()
    # a failed cell's row names no stage; at the model level its stage is the whole model's
    table["stage"] = table["stage"].fillna("all").astype(str) if "stage" in table else "all"
    for level, metrics in LEVEL_METRICS.items():
        sub = table[table["level"] == level]
        if sub.empty:
            continue
        for metric, label in metrics:
            if metric not in sub:
                continue
            for key, group in sub.groupby(KEYS, dropna=False):
                by_variant = {v: g.iloc[0] for v, g in group.groupby("variant")}
                for ps in PROBSPARSE:
                    if ps not in by_variant or by_variant[ps]["status"] != "ok":
                        continue
                    for comp in COMPARISONS:
                        if comp not in by_variant:
                            continue
                        ps_value = float(by_variant[ps][metric])
                        comp_row = by_variant[comp]
                        ok = comp_row["status"] == "ok"
                        comp_value = float(comp_row[metric]) if ok else float("nan")
                        records.append(
                            {
                                **dict(zip(KEYS, key, strict=True)),
                                "metric": metric,
                                "metric_label": label,
                                "probsparse": ps,
                                "comparison": comp,
                                "probsparse_value": ps_value,
                                "comparison_value": comp_value,
                                "comparison_status": comp_row["status"],
                                "reduction": 1 - ps_value / comp_value
                                if ok and comp_value
                                else float("nan"),
                            }
                        )
    return pd.DataFrame.from_records(records)


def _setting(row: pd.Series) -> str:
    text = f"{row['model']} {row['img_size']}px"
    if row["level"] == "model":
        text += f" batch {row['batch_size']} {row['mode']}"
    else:
        text += f" stage {row['stage']}"
    return text


def verdict_lines(ratios: pd.DataFrame) -> list[str]:
    """Plain sentences: per level, metric, ProbSparse variant and comparison, whether >= 98% holds."""
    lines = []
    for (level, _, ps, comp), group in ratios.groupby(
        ["level", "metric", "probsparse", "comparison"], sort=False
    ):
        measured = group.dropna(subset=["reduction"])
        oom = group[group["comparison_status"] == "oom"]
        holds = measured[measured["reduction"] >= CLAIMED_REDUCTION]
        label = group["metric_label"].iloc[0]
        if measured.empty:
            text = f"no measured comparison ({len(oom)} out of memory)"
        else:
            best = measured.loc[measured["reduction"].idxmax()]
            worst = measured.loc[measured["reduction"].idxmin()]
            if len(holds) == len(measured):
                head = "HOLDS everywhere"
            elif holds.empty:
                head = "does NOT hold anywhere"
            else:
                head = "holds only in part"
            text = (
                f"{head}: >= 98% in {len(holds)} of {len(measured)} settings; "
                f"best {best['reduction']:.1%} ({_setting(best)}: {best['probsparse_value']:,.4g} vs {best['comparison_value']:,.4g}), "
                f"worst {worst['reduction']:.1%} ({_setting(worst)}: {worst['probsparse_value']:,.4g} vs {worst['comparison_value']:,.4g})"
            )
            if not holds.empty and len(holds) < len(measured):
                text += "; holds at " + "; ".join(_setting(r) for _, r in holds.iterrows())
        if not oom.empty:
            text += (
                f"; the comparison ran out of memory in {len(oom)} settings ("
                + "; ".join(_setting(r) for _, r in oom.iterrows())
                + ") while ProbSparse fit"
            )
        lines.append(f"- **{level}** ({label}), `{ps}` vs `{comp}`: {text}.")
    return lines


def report(table: pd.DataFrame, run_dir: Path) -> None:
    """Ratios table, plots (memory vs input size per variant; reductions per level), summary.md."""
    from suites.engine.render import markdown_table, write_table

    run_dir = Path(run_dir)
    ratios = reduction_table(table)
    lines = ["# Memory suite: does ProbSparse cut memory by 98%?", ""]
    status_counts = table.drop_duplicates("cell_id").groupby("status").size().to_dict()
    lines.append("Cells: " + ", ".join(f"{n} {s}" for s, n in status_counts.items()) + ".")
    source = table.get("mem_source")
    if source is not None and source.notna().any():
        lines.append(
            f"Memory source: {', '.join(sorted(source.dropna().unique()))} (cuda_allocator = CUDA peak above the pre-step baseline; tensor_accounting = exact live tensor bytes)."
        )
    lines.append("")
    if ratios.empty:
        lines.append("No ProbSparse row has a finished comparison: no verdict.")
    else:
        ratios.to_csv(run_dir / "reductions.csv", index=False, lineterminator="\n")
        lines += ["## Verdict (reduction = 1 - ProbSparse / comparison, claimed 98%)", ""]
        lines += verdict_lines(ratios)
        summary = (
            ratios.groupby(["level", "metric", "probsparse", "comparison"], sort=False)["reduction"]
            .agg(settings="count", min_reduction="min", max_reduction="max")
            .reset_index()
        )
        summary["holds_98"] = [
            int(
                (
                    ratios[
                        (ratios["level"] == r.level)
                        & (ratios["metric"] == r.metric)
                        & (ratios["probsparse"] == r.probsparse)
                        & (ratios["comparison"] == r.comparison)
                    ]["reduction"]
                    >= CLAIMED_REDUCTION
                ).sum()
            )
            for r in summary.itertuples()
        ]
        write_table(
            summary,
            run_dir / "reductions",
            caption="ProbSparse memory reduction per level and comparison",
            digits={"min_reduction": 3, "max_reduction": 3},
        )
        lines += [
            "",
            "## Reductions per level",
            "",
            markdown_table(summary, digits={"min_reduction": 3, "max_reduction": 3}),
        ]
    failed = table[table["status"].isin(["oom", "error"])]
    if not failed.empty:
        lines += ["## Cells that did not finish", ""]
        lines += [f"- `{r.cell_id}`: {r.status} ({r.reason})" for r in failed.itertuples()]
    (run_dir / "summary.md").write_text("\n".join(lines) + "\n")
    _plots(table, ratios, run_dir)


def _plots(table: pd.DataFrame, ratios: pd.DataFrame, run_dir: Path) -> None:
    from suites.engine.render import plot_style, save_figure

    plot_style()
    import matplotlib.pyplot as plt
    import seaborn as sns

    ok = table[
        (table["status"] == "ok") & table["level"].isin(["global", "attention", "model"])
    ].copy()
    if not ok.empty:
        ok["setting"] = [
            f"{lv} stage {st}" if lv != "model" else f"model b{bs} {md}"
            for lv, st, bs, md in zip(
                ok["level"], ok["stage"].astype(str), ok["batch_size"], ok["mode"], strict=True
            )
        ]
        ok = ok[ok["setting"].isin(ok["setting"].unique()[:12])]
        grid = sns.relplot(
            data=ok,
            x="img_size",
            y="step_mem_mib",
            hue="variant",
            col="setting",
            col_wrap=4,
            kind="line",
            marker="o",
            facet_kws={"sharey": False},
            height=2.6,
        )
        grid.set(yscale="log")
        grid.set_axis_labels("input size (px)", "peak memory (MiB)")
        save_figure(grid.figure, run_dir / "memory_vs_input_size")
    if not ratios.empty:
        data = ratios.dropna(subset=["reduction"]).copy()
        data["percent"] = 100 * data["reduction"]
        clipped = int((data["percent"] < -100).sum())
        data["percent"] = data["percent"].clip(lower=-100)
        fig, ax = plt.subplots(figsize=(8, 4))
        sns.stripplot(
            data=data, x="level", y="percent", hue="comparison", dodge=True, ax=ax, size=5
        )
        ax.axhline(100 * CLAIMED_REDUCTION, color="black", linestyle="--", label="claimed 98%")
        ax.set_ylim(-105, 105)
        ax.set_ylabel("memory reduction by ProbSparse (%)")
        ax.set_title(
            "one point per setting"
            + (f"; {clipped} below -100% drawn at -100%" if clipped else ""),
            fontsize=9,
        )
        ax.legend(fontsize=8)
        save_figure(fig, run_dir / "reduction_per_level")
    plt.close("all")


SUITE = Suite(
    name="memory",
    description="ProbSparse's '98% memory reduction' at four levels (analytic, global branch, attention module, model) against dense, dense+sr1, sdpa",
    axes=[
        Axis(
            "level",
            default=list(LEVELS),
            choices=list(LEVELS),
            help="analytic, global, attention (per stage, batch 1) or model",
        ),
        Axis(
            "model",
            default=["favit_b1"],
            quick=["favit_b0"],
            choices=model_names(),
            help="FaViT size",
        ),
        Axis(
            "variant",
            default=list(VARIANTS),
            quick=["probsparse_seed", "probsparse", "dense", "dense+sr1", "sdpa"],
            choices=list(VARIANTS),
            help="global attention variant",
        ),
        Axis(
            "img_size",
            default=[224, 384, 512],
            quick=[128],
            kind=square_image_size,
            help="square input size",
        ),
        Axis(
            "batch_size",
            default=[1, 32, 128],
            quick=[1],
            kind=positive_int,
            help="levels analytic/global/attention use batch 1 only",
        ),
        Axis(
            "mode",
            default=["train", "infer"],
            quick=["train"],
            choices=["train", "infer"],
            help="model level: training step or inference",
        ),
        Axis(
            "dtype",
            default=["fp32"],
            choices=list(DTYPES),
            help="parameter and activation precision",
        ),
    ],
    needs_gpu=True,
    measure=measure,
    report=report,
    cell_timeout_s=600.0,
    examples=(
        "python bench.py --suite memory",
        "python bench.py --suite memory --set level=model --img-size 224,512 --batch-size 32",
        "python bench.py --suite memory --set variant=probsparse_seed,dense+sr1 --set level=analytic,global",
    ),
    cell_filter=applies,
    in_process=runs_in_process,
)
