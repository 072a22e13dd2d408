"""The memory suite: does ProbSparse global attention cut memory by 98%, and compared with what?

Four levels, every variant measured in one run so each ratio compares like with like:

1. ``analytic``: attention-score elements each variant materializes (``favit.attention_score_elements``),
   per stage, per block and per image (the README's 3,136 x 3,136 is stage 1 without reduction);
2. ``global``: the global-attention branch alone (``favit.GlobalAttention``), forward + backward,
   one block of each stage at that stage's geometry;
3. ``attention``: the whole ``favit.FactorizedAttention`` of one block per stage, forward + backward;
4. ``model``: the whole model, the step the latency and scaling suites time
   (``suites.engine.step.build_step``: a training step is zero_grad, forward, cross-entropy on
   fp32 logits, backward, fused AdamW lr 1e-3 weight decay 0.05; or inference), metered as they
   meter it (``suites.engine.step.step_memory``): its ``step_mem_mib`` is theirs for the same
   model, implementation, size, batch, dtype and mode.

Levels 1-3 are per image (batch 1), measure FaViT's reference implementation and give one row per
stage; level 4 runs each batch size and mode, both implementations (``impl``: ``reference``, the
readable one that materializes what the seed's code does, and ``fast``, the one a user runs), and
any model ``baselines`` knows (``variant=as_named``: the model as its name says; the variants
apply to the FaViT sizes ``favit_b0``..``favit_b3``). Memory: the model level's ``step_mem_mib``
is the allocator's peak during a steady-state step above the memory allocated just before it
(weights, optimizer state, inputs and the last step's gradients; ``mem_source=cuda_allocator``),
on the CPU exact tensor accounting with the gradients as its baseline (``tensor_accounting``);
the stage levels' is the allocator's peak above the pre-step baseline on a GPU and the exact
accounting on the CPU. The measured levels also report the exact accounting (``acct_*``
columns; at the model level from one more step, with ``acct_over_allocator`` on a GPU).
``dtype``: at the model level the step's (fp32 weights, bf16/fp16 under autocast); at the other
levels the modules' and inputs' dtype.

Variants (``VARIANTS``), each a global kernel with a spatial-reduction modifier:
``probsparse_seed`` and ``probsparse`` against ``dense`` and ``sdpa`` (fused) at the published
reduction; ``+gsr1`` (``favit_bX:<kernel>+gsr1``: no spatial reduction in the global branch only,
the published channel split kept), the same keys for every kernel (3,136 at stage 1 of 224 px);
``+sr1`` (no reduction anywhere, the channel split following it, as the official code's sr 1).
``reduction_table`` pairs them by ``READINGS``: ``published``, ``every_patch`` (the +gsr1 forms:
like for like over every patch) and ``every_patch_sr1`` (published ProbSparse against
``dense+sr1``/``sdpa+sr1``: the seed README's 3,136^2 framing, confounded by the channel split).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from suites.engine.suite import (
    Axis,
    Cell,
    CellContext,
    CellSkipped,
    Row,
    Suite,
    model_axis,
    positive_int,
    square_image_size,
)

LEVELS = ("analytic", "global", "attention", "model")
STAGE_LEVELS = ("analytic", "global", "attention")
PROBSPARSE = ("probsparse_seed", "probsparse")
KERNELS = ("probsparse_seed", "probsparse", "dense", "sdpa")
# the FaViT variants: every kernel at the published reduction and with the global branch's
# reduction 1 (+gsr1); full attention also with reduction 1 everywhere (+sr1)
VARIANTS = (
    *KERNELS,
    *(f"{kernel}+gsr1" for kernel in KERNELS),
    "dense+sr1",
    "sdpa+sr1",
)
# the quick profile's (a CPU's): each reading once with the seed's ProbSparse against dense
QUICK_VARIANTS = ("probsparse_seed", "probsparse", "dense", "dense+sr1", "sdpa")
QUICK_VARIANTS += ("probsparse_seed+gsr1", "dense+gsr1")
AS_NAMED = "as_named"  # the model as its name says: any baselines model, no FaViT variant
IMPLS = ("reference", "fast")  # favit.IMPL_CHOICES; a model outside FaViT has one, called fast
UNNAMED_IMPL = "reference"  # what a run without the impl axis measured
DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
CLAIMED_REDUCTION = 0.98
# reading -> (ProbSparse variant, comparison) pairs that reduction_table compares
READINGS: dict[str, tuple[tuple[str, str], ...]] = {
    "published": tuple((ps, comp) for ps in PROBSPARSE for comp in ("dense", "sdpa")),
    "every_patch": tuple(
        (f"{ps}+gsr1", f"{comp}+gsr1") for ps in PROBSPARSE for comp in ("dense", "sdpa")
    ),
    "every_patch_sr1": tuple((ps, comp) for ps in PROBSPARSE for comp in ("dense+sr1", "sdpa+sr1")),
}
MIB = 1024.0**2

if TYPE_CHECKING:  # pandas is imported where the report runs, not in every cell's worker
    import pandas as pd


def parse_variant(variant: str) -> tuple[str, str]:
    """``"dense+sr1"`` -> ``("dense", "sr1")``: the global kernel and its reduction modifier
    (``""`` published, ``sr1`` every stage at 1, ``gsr1`` the global branch at 1)."""
    kernel, _, modifier = variant.partition("+")
    return kernel, modifier


def is_favit_size(model: str) -> bool:
    """A bare FaViT size (``favit_b0``..``favit_b3``): the names the variants apply to."""
    import baselines

    return model in baselines.FAVIT_MODELS


def applies(cell: Cell) -> bool:
    """Levels 1-3: a FaViT size's variants, per image and forward + backward (batch 1, mode
    train), the reference implementation. The model level: a FaViT size's variants, or any other
    model as named (``as_named``; outside FaViT its one implementation, ``fast``; a name with
    ``+ref`` is the reference)."""
    import baselines

    model, variant, impl = cell["model"], cell["variant"], cell["impl"]
    if is_favit_size(model) != (variant != AS_NAMED):
        return False
    if cell["level"] in STAGE_LEVELS:
        staged = cell["batch_size"] == 1 and cell["mode"] == "train"
        return staged and impl == "reference" and is_favit_size(model)
    if not baselines.is_favit(model):
        return impl == "fast"
    return impl == "reference" or "+ref" not in model


def shares_a_worker(cell: Cell) -> bool:
    """Every cell may share a worker (``--reuse-workers``): the allocator's peak above the memory
    held before the step does not depend on what an earlier cell left cached, and the runner frees
    that between cells."""
    return True


def runs_in_process(cell: Cell) -> bool:
    return cell["level"] == "analytic"  # arithmetic only: no worker needed


def _torch_dtype(name: str):
    import torch

    return getattr(torch, DTYPES[name])


def _stage_geometries(cell: Cell) -> list[Any]:
    import favit

    _, modifier = parse_variant(cell["variant"])
    stages = len(favit.model_config(cell["model"]).depths)
    ones = (1,) * stages
    try:
        return favit.stage_geometry(
            cell["model"],
            int(cell["img_size"]),
            sr_ratios=ones if modifier == "sr1" else None,
            global_sr_ratios=ones if modifier == "gsr1" else None,
        )
    except ValueError as exc:
        raise CellSkipped(str(exc)) from None


def metered(step: Callable[[], Any], device: str, baseline=()) -> Row:
    """Run ``step`` once under the tensor accountant (``baseline``: tensors alive before it that
    it may free) and, on CUDA, the allocator meter: the stage levels' meters, and the model
    level's accounting."""
    from contextlib import nullcontext

    from suites.engine.meters import GpuMemoryMeter, TensorAccountant

    cuda = device.startswith("cuda")
    gpu_meter = GpuMemoryMeter(device) if cuda else nullcontext()
    accountant = TensorAccountant(baseline=baseline)
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
                "global_sr_ratio": geo.global_sr_ratio,
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


def _stage_module(cell: Cell, geo: Any, kernel: str):
    """The level's module for one block of a stage, and the width of its input."""
    import favit

    if cell["level"] == "global":
        module = favit.GlobalAttention(geo.global_width, geo.global_sr_ratio, global_attn=kernel)
        return module, geo.global_width
    module = favit.FactorizedAttention(
        geo.dim,
        geo.num_heads,
        geo.sr_ratio,
        global_sr_ratio=geo.global_sr_ratio,
        global_attn=kernel,
        impl="reference",
    )
    return module, geo.dim


def _branch_rows(cell: Cell, ctx: CellContext) -> list[Row]:
    """Levels ``global`` and ``attention``: one block of each stage, forward + backward."""
    import torch

    kernel, _ = parse_variant(cell["variant"])
    dtype = _torch_dtype(cell["dtype"])
    rows = []
    for geo in _stage_geometries(cell):
        module, width = _stage_module(cell, geo, kernel)
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
        row = metered(step, ctx.device)
        row.update(
            stage=geo.stage + 1,
            global_attn=kernel,
            sr_ratio=geo.sr_ratio,
            global_sr_ratio=geo.global_sr_ratio,
            queries=geo.N,
            global_keys=geo.global_keys,
        )
        rows.append(row)
        del module, x, q
    return rows


def model_name(cell: Cell) -> str:
    """The ``baselines`` name a model-level cell measures: ``favit_b1:dense+gsr1+ref`` for
    (favit_b1, dense+gsr1, reference); the model as named for ``as_named``."""
    import baselines

    model, variant = cell["model"], cell["variant"]
    name = model if variant == AS_NAMED else f"{model}:{variant}"
    reference = cell["impl"] == "reference" and baselines.is_favit(model)
    return name + "+ref" if reference and "+ref" not in name else name


def _model_row(cell: Cell, ctx: CellContext) -> Row:
    """The whole model: the step the latency and scaling suites time, metered as they meter it
    (``step_memory`` on a steady-state step), then one more step under the exact accounting."""
    from suites.engine import step as engine

    name = model_name(cell)
    spec = engine.StepSpec(
        model=name,
        img_size=int(cell["img_size"]),
        batch_size=int(cell["batch_size"]),
        dtype=cell["dtype"],
        mode=cell["mode"],
    )
    # built once for its cells at each batch and dtype in a reused worker, restored to as built
    model, restore, _ = engine.cell_model(spec, ctx.seed)
    model = engine.prepare_model(model, spec, ctx.device, engine.TimingOptions())
    restore()
    step = engine.build_step(model, spec, spec.batch_size, ctx.device, seed=ctx.seed)
    step()  # a full step: the optimizer's state and the first gradients then live between steps
    row: Row = engine.step_memory(step, ctx.device, "eager", model)
    acct = metered(step, ctx.device, baseline=(p.grad for p in model.parameters()))
    row.update({k: v for k, v in acct.items() if k.startswith("acct_")})
    if ctx.device.startswith("cuda"):
        allocator = row["step_mem_mib"]
        row["acct_over_allocator"] = acct["acct_peak_live_mib"] / allocator if allocator else None
    kernel = parse_variant(cell["variant"])[0] if cell["variant"] != AS_NAMED else None
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
    "global": [("step_mem_mib", "peak memory in MiB, global branch fwd+bwd")],
    "attention": [("step_mem_mib", "peak memory in MiB, attention module fwd+bwd")],
    "model": [("step_mem_mib", "peak memory in MiB, whole model")],
}
KEYS = ["level", "model", "impl", "img_size", "batch_size", "mode", "dtype", "stage"]
VERDICT_GROUP = ["reading", "level", "metric", "probsparse", "comparison", "impl", "dtype"]


def _comparable(table: pd.DataFrame) -> pd.DataFrame:
    table = table.copy()
    # a failed cell's row names no stage; at the model level its stage is the whole model's
    table["stage"] = table["stage"].fillna("all").astype(str) if "stage" in table else "all"
    # runs before the impl axis measured FaViT's reference implementation only
    table["impl"] = table["impl"].fillna(UNNAMED_IMPL) if "impl" in table else UNNAMED_IMPL
    return table


def reduction_table(table: pd.DataFrame) -> pd.DataFrame:
    """One row per (level, metric, setting, reading, ProbSparse variant, comparison), the pairs of
    ``READINGS``: both values, the reduction ``1 - probsparse / comparison``, and whether the
    comparison ran out of memory. A setting is (model, impl, img_size, batch_size, mode, dtype,
    stage): only rows measured alike are compared."""
    import pandas as pd

    records = []
    table = _comparable(table)
    for level, metrics in LEVEL_METRICS.items():
        sub = table[table["level"] == level]
        for metric, label in metrics if not sub.empty else ():
            if metric not in sub:
                continue
            for key, group in sub.groupby(KEYS, dropna=False):
                by_variant = {v: g.iloc[0] for v, g in group.groupby("variant")}
                setting = {**dict(zip(KEYS, key, strict=True)), "metric": metric}
                setting["metric_label"] = label
                records += _pairs(by_variant, setting, metric)
    columns = [*KEYS, "reading", "metric", "metric_label", "probsparse", "comparison"]
    columns += ["probsparse_value", "comparison_value", "comparison_status", "reduction"]
    return pd.DataFrame.from_records(records, columns=columns)


def _pairs(by_variant: dict[str, Any], setting: dict[str, Any], metric: str) -> list[Row]:
    """The ``READINGS`` pairs of one setting whose ProbSparse row finished."""
    records = []
    for reading, pairs in READINGS.items():
        for ps, comp in pairs:
            if ps not in by_variant or by_variant[ps]["status"] != "ok" or comp not in by_variant:
                continue
            ps_value = float(by_variant[ps][metric])
            comp_row = by_variant[comp]
            ok = comp_row["status"] == "ok"
            comp_value = float(comp_row[metric]) if ok else float("nan")
            records.append(
                {
                    **setting,
                    "reading": reading,
                    "probsparse": ps,
                    "comparison": comp,
                    "probsparse_value": ps_value,
                    "comparison_value": comp_value,
                    "comparison_status": comp_row["status"],
                    "reduction": 1 - ps_value / comp_value if ok and comp_value else float("nan"),
                }
            )
    return records


def _setting(row: pd.Series) -> str:
    text = f"{row['model']} {row['img_size']}px batch {row['batch_size']}"
    if row["level"] == "model":
        text += f" {row['mode']}"
    else:
        text += f" stage {row['stage']}"
    return text


def _covered(group: pd.DataFrame) -> str:
    """The sizes and batches a verdict line's settings span."""
    sizes = ", ".join(str(v) for v in sorted(set(group["img_size"]), key=float))
    batches = ", ".join(str(v) for v in sorted(set(group["batch_size"]), key=float))
    return f"sizes {sizes} px, batch {batches}"


def verdict_lines(ratios: pd.DataFrame) -> list[str]:
    """Plain sentences: per reading, level, metric, ProbSparse variant, comparison, implementation
    and dtype, whether >= 98% holds, over which sizes and batches, best and worst setting. Groups
    with the same sentence share a line (the analytic counts are the same in every dtype, and for
    dense and SDPA): first their dtypes, then their comparisons."""
    by_dtype: dict[tuple, list[str]] = {}
    for (reading, level, _, ps, comp, impl, dtype), group in ratios.groupby(
        VERDICT_GROUP, sort=False
    ):
        label = group["metric_label"].iloc[0]
        key = (level, label, reading, ps, comp, impl, _covered(group), _verdict_text(group))
        by_dtype.setdefault(key, []).append(dtype)
    by_comparison: dict[tuple, list[str]] = {}
    for (level, label, reading, ps, comp, impl, covered, text), dtypes in by_dtype.items():
        key = (level, label, reading, ps, impl, " and ".join(dtypes), covered, text)
        by_comparison.setdefault(key, []).append(comp)
    lines = []
    for (level, label, reading, ps, impl, dtypes, covered, text), comps in by_comparison.items():
        against = " and ".join(f"`{c}`" for c in comps)
        where = f"{impl} implementation, {dtypes}, {covered}"
        lines.append(
            f"- **{level}** ({label}), reading `{reading}`, `{ps}` vs {against} ({where}): {text}."
        )
    return lines


def _verdict_text(group: pd.DataFrame) -> str:
    """Whether >= 98% holds in a verdict group's settings, its best and worst, and the OOMs."""
    measured = group.dropna(subset=["reduction"])
    oom = group[group["comparison_status"] == "oom"]
    holds = measured[measured["reduction"] >= CLAIMED_REDUCTION]
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
    return text


def reduction_summary(ratios: pd.DataFrame, by: Sequence[str] = VERDICT_GROUP) -> pd.DataFrame:
    """Per group of ``by`` (``VERDICT_GROUP`` by default; the groups in the table's order):
    settings, least and most reduction, settings that reach 98%."""
    ratios = ratios.assign(holds_98=ratios["reduction"] >= CLAIMED_REDUCTION)
    return (
        ratios.groupby(list(by), sort=False)
        .agg(
            settings=("reduction", "count"),
            min_reduction=("reduction", "min"),
            max_reduction=("reduction", "max"),
            holds_98=("holds_98", "sum"),
        )
        .reset_index()
        .astype({"holds_98": int})
    )


def report(table: pd.DataFrame, run_dir: Path) -> None:
    """Ratios table, plots (memory vs input size per variant; reductions per level), summary.md."""
    from suites.engine.render import markdown_table, write_table

    run_dir = Path(run_dir)
    ratios = reduction_table(table)
    lines = ["# Memory suite: does ProbSparse cut memory by 98%?", ""]
    status_counts = table.drop_duplicates("cell_id").groupby("status").size().to_dict()
    lines.append("Cells: " + ", ".join(f"{n} {s}" for s, n in status_counts.items()) + ".")
    if "device_name" in table:
        devices = ", ".join(sorted({str(v) for v in table["device_name"].dropna()}))
        lines.append(f"Measured on: {devices or 'no device (analytic counts only)'}.")
    source = table.get("mem_source")
    if source is not None and source.notna().any():
        lines.append(
            f"Memory source: {', '.join(sorted(source.dropna().unique()))} (cuda_allocator = CUDA peak above the pre-step baseline; tensor_accounting = exact live tensor bytes)."
        )
    lines.append(
        "Readings: `published` compares at the published spatial reduction; `every_patch` with "
        "the global branch's reduction 1 for every kernel (`+gsr1`, the published channel split "
        "kept: like for like over every patch); `every_patch_sr1` published ProbSparse against "
        "full attention at reduction 1 everywhere (`+sr1`: the 3,136^2 framing, whose channel "
        "split also changes)."
    )
    lines.append("")
    if ratios.empty:
        lines.append("No ProbSparse row has a finished comparison: no verdict.")
    else:
        ratios.to_csv(run_dir / "reductions.csv", index=False, lineterminator="\n")
        lines += ["## Verdict (reduction = 1 - ProbSparse / comparison, claimed 98%)", ""]
        lines += verdict_lines(ratios)
        summary = reduction_summary(ratios)
        digits = {"min_reduction": 3, "max_reduction": 3}
        write_table(
            summary,
            run_dir / "reductions",
            caption="ProbSparse memory reduction per reading, level and comparison",
            digits=digits,
        )
        lines += ["", "## Reductions per level", "", markdown_table(summary, digits=digits)]
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
        ok = _comparable(ok)
        ok["setting"] = [
            f"{lv} stage {st} {dt}" if lv != "model" else f"model b{bs} {md} {im} {dt}"
            for lv, st, bs, md, im, dt in zip(
                ok["level"], ok["stage"], ok["batch_size"], ok["mode"], ok["impl"], ok["dtype"],
                strict=True,
            )
        ]  # fmt: skip
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
        sns.stripplot(data=data, x="level", y="percent", hue="reading", dodge=True, ax=ax, size=5)
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
    description="ProbSparse's '98% memory reduction' at four levels (analytic, global branch, attention module, model) against dense and sdpa, at the published reduction and over every patch",
    axes=[
        Axis(
            "level",
            default=list(LEVELS),
            choices=list(LEVELS),
            help="analytic, global, attention (per stage, batch 1) or model",
        ),
        model_axis(
            ["favit_b1"],
            quick=["favit_b0"],
            help="a baselines name; the variants apply to favit_b0..favit_b3, any other model is "
            "measured as named (variant as_named) at the model level",
        ),
        Axis(
            "variant",
            default=[*VARIANTS, AS_NAMED],
            quick=[*QUICK_VARIANTS, AS_NAMED],
            choices=[*VARIANTS, AS_NAMED],
            help="global attention and its spatial reduction (+gsr1: the global branch at 1; "
            "+sr1: every stage at 1); as_named: the model as its name says",
        ),
        Axis(
            "impl",
            default=list(IMPLS),
            choices=list(IMPLS),
            help="model level: FaViT's reference or fast implementation (levels 1-3: reference)",
        ),
        Axis(
            "img_size",
            default=[224, 512],
            quick=[128],
            kind=square_image_size,
            help="square input size",
        ),
        Axis(
            "batch_size",
            default=[1, 32],
            quick=[1],
            kind=positive_int,
            help="levels analytic/global/attention use batch 1 only",
        ),
        Axis(
            "mode",
            default=["train"],
            choices=["train", "infer"],
            help="model level: training step or inference",
        ),
        Axis(
            "dtype",
            default=["fp32", "bf16"],
            quick=["fp32"],
            choices=list(DTYPES),
            help="model level: fp32 weights, bf16/fp16 under autocast (the latency suite's step); "
            "levels global/attention: the modules' and inputs' dtype",
        ),
    ],
    needs_gpu=True,
    measure=measure,
    report=report,
    cell_timeout_s=600.0,
    examples=(
        "python bench.py --suite memory --reuse-workers",
        "python bench.py --suite memory --set level=model --img-size 224,512 --batch-size 32 --set mode=train,infer",
        "python bench.py --suite memory --set variant=probsparse_seed+gsr1,dense+gsr1 --set level=analytic,global",
        "python bench.py --suite memory --set level=model --models pvt_v2_b1,favit_b1 --set variant=dense,as_named",
    ),
    cell_filter=applies,
    cell_rule=(
        "levels analytic, global and attention take a FaViT size (favit_b0..favit_b3) at batch 1, "
        "mode train, impl reference; the model level a FaViT size with its variants, or any other "
        "model with variant as_named"
    ),
    in_process=runs_in_process,
    reuse_worker=shares_a_worker,
)
