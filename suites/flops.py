"""The FLOPs suite: parameters, MACs and FLOPs of every compared model, beside the published figures.

Per cell (one model at one input size, batch 1, fp32, eval mode) it counts one forward pass twice:

- fvcore (``FlopCountAnalysis``, **MACs**): ``fvcore_gmacs``, its MACs per operator
  (``fvcore_macs_by_op``, ``"linear=466617616; conv=..."``), and the ops it skipped with their
  counts (``fvcore_skipped_ops``). fvcore has no handle for ``scaled_dot_product_attention``; we
  register one with the exact formula (``suites.engine.flop_count.sdpa_macs``), so fused attention is
  **counted**, and ``:sdpa`` agrees with ``:dense`` (both count Q K^T and A V; the softmax and the
  scaling multiply are skipped in both).
- torch.utils.flop_counter (``FlopCounterMode``, **FLOPs = 2 x MACs**): ``flop_counter_gflops``,
  and the executed ops it has no formula for (``flop_counter_uncounted_ops``: softmax, norms,
  gather, topk, pooling, elementwise...). ``flop_counter_attn_gmacs`` is its count of attention
  matmuls (bmm and SDPA kernels), in MACs; ``flop_counter_flops_by_op`` its FLOPs per aten op.
  The two totals differ by the ops fvcore has handles for and flop_counter has no formula for
  (layer_norm, batch_norm, adaptive_avg_pool2d); the notes name them from the per-operator
  columns (from flop_counter's uncounted ops where a run predates those columns).

For FaViT it adds the analytic attention count (``favit.attention_macs``: Q K^T and A V of every
branch, ``attn_analytic_gmacs``), the official repository's hand-written attention term
(``official_attn_formula_gmacs``, from its get_flops.py), and a per-stage breakdown
(``stage{i}_gmacs`` from fvcore's ``by_module()``, ``stage{i}_attn_analytic_gmacs``). Every module's
fvcore MACs also go to ``cells/<cell>/modules.csv``.

FaViT is counted through its reference implementation (``impl="reference"``): the counts are those
of the published algorithm (ProbSparse samples keys; windows are unfolded and pooled), and they do
not move when the fast path is refactored. The fast path (``impl="fast"``, the default, which the
latency suite runs and counts in ``infer_gmacs``) computes the same outputs with slightly different
work: ProbSparse over few keys (``favit.scores_every_key``: every stage at 224)
computes the full score matrix for the selection and then lets every query attend, which costs a
little MORE than dense, where the reference's sampling costs a little less.
``flop_counter_fast_gmacs`` is flop_counter's count of the fast path (FaViT rows only);
``favit.attention_macs(..., impl="fast")`` is its analytic attention count, which the notes use for
runs that predate that column.

Published figures (``baselines.info``) are MACs at 224x224 (papers print them as "FLOPs");
``gmacs_vs_published`` = fvcore_gmacs / published_gmacs, only at 224x224. The rounding a note
allows is half the last digit of the figure as printed (``gmacs_printed``: "4.0" -> +-0.05).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

import baselines
import favit
from suites.engine.flop_count import (
    FvcoreCount,
    flop_counter_count,
    format_ops,
    fvcore_count,
    parameter_count,
)
from suites.engine.render import plot_style, save_figure, write_table
from suites.engine.suite import (
    Axis,
    Cell,
    CellContext,
    CellSkipped,
    Row,
    Suite,
    image_hw,
    image_size,
    model_axis,
)

GIGA = 1e9
PUBLISHED_HW = (224, 224)
NUM_STAGES = 4
WINDOW_TOKENS = 49  # the official formula's 7x7 window
ATTENTION_OPS = (
    "aten.bmm",
    "aten.baddbmm",
    "aten._scaled_dot_product_flash_attention",
    "aten._scaled_dot_product_efficient_attention",
    "aten._scaled_dot_product_cudnn_attention",
    "aten._scaled_dot_product_flash_attention_for_cpu",
    "aten._scaled_dot_product_fused_attention_overrideable",
    "aten._flash_attention_forward",
    "aten._efficient_attention_forward",
)
# operator -> kind, to set the two counters' per-operator counts side by side: both count convs
# and matmuls (linear, mm, bmm, einsum, fused attention); any other operator is its own kind.
_FVCORE_KINDS = {
    "conv": "conv",
    "_convolution": "conv",
    **dict.fromkeys(
        ("linear", "matmul", "mm", "addmm", "bmm", "einsum", "scaled_dot_product_attention"),
        "matmul",
    ),
}
_FLOP_COUNTER_KINDS = {
    "aten.convolution": "conv",
    "aten._convolution": "conv",
    **dict.fromkeys(("aten.mm", "aten.addmm", "aten.bmm", "aten.baddbmm", "aten.matmul"), "matmul"),
    **dict.fromkeys(ATTENTION_OPS, "matmul"),
}
# flop_counter's names (after dispatch) of the ops fvcore has a default handle for and
# flop_counter no formula: where a row lacks the per-operator columns, an uncounted op in this
# table is one fvcore counted.
_FVCORE_HANDLED_UNCOUNTED = {
    "aten.native_layer_norm": "layer_norm",
    "aten.native_batch_norm": "batch_norm",
    "aten._native_batch_norm_legit": "batch_norm",
    "aten._native_batch_norm_legit_no_training": "batch_norm",
    "aten.native_group_norm": "group_norm",
    "aten._adaptive_avg_pool2d": "adaptive_avg_pool2d",
    "aten.adaptive_avg_pool2d": "adaptive_avg_pool2d",
    "aten.upsample_nearest2d": "upsample_nearest2d",
    "aten.upsample_bilinear2d": "upsample_bilinear2d",
    "aten.grid_sampler_2d": "grid_sampler",
}
FAVIT_QUICK = ("favit_b0:probsparse_seed", "favit_b0:probsparse", "favit_b0:dense", "favit_b0:sdpa")


def default_models() -> list[str]:
    """Every FaViT B0-B3 in each global-attention variant, B1 also without spatial reduction, baselines."""
    out = [f"{m}:{a}" for m in baselines.FAVIT_MODELS for a in favit.GLOBAL_ATTN_CHOICES]
    out += [f"favit_b1:{a}+sr1" for a in favit.GLOBAL_ATTN_CHOICES]
    return out + baselines.default_reference_names()


def quick_models() -> list[str]:
    """A CPU-friendly subset: FaViT-B0 in each variant and without reduction, three small baselines."""
    return [*FAVIT_QUICK, "favit_b0:dense+sr1", "deit_tiny", "pvt_v2_b0", "resnet50"]


# --- FaViT analytic counts ------------------------------------------------------------------------


def favit_stages(name: str, hw: tuple[int, int]) -> tuple[str, list]:
    """(global attention, per-stage geometry) of a FaViT name at ``hw``, modifiers included."""
    parsed = baselines.parse_favit_name(name)
    attn = parsed.global_attn or favit.DEFAULT_GLOBAL_ATTN
    geometries = favit.stage_geometry(
        parsed.model, hw, sr_ratios=parsed.sr_ratios, global_sr_ratios=parsed.global_sr_ratios
    )
    return attn, list(geometries)


def favit_attention_macs_per_stage(
    name: str, hw: tuple[int, int], impl: str = "reference"
) -> list[int]:
    """Analytic MACs of Q K^T and A V, all branches, all blocks of each stage, for one image, of
    the reference implementation or the fast path (``favit.attention_macs``'s ``impl``)."""
    attn, geometries = favit_stages(name, hw)
    out = []
    for geometry in geometries:
        macs = favit.attention_macs(geometry, attn, impl=impl)
        # global_sample_qk is already part of global_qk
        per_block = sum(v for k, v in macs.items() if k != "global_sample_qk")
        out.append(per_block * geometry.depth)
    return out


def official_attention_formula_macs(name: str, hw: tuple[int, int]) -> int:
    """The attention term FaViT's official get_flops.py adds to mmcv's module count.

    Per block of a stage with map h x w, dim C and reduction r (official code, MACs):
    ``2*h*w*49*(C//16*14)`` for the window branches + ``2*h*w*(h//r)*(w//r)*(C//16*2)`` for the
    global branch, with h = H//4, H//8, ... and the [2, 7, 7] channel split in every stage.
    """
    total = 0
    for i, geometry in enumerate(favit_stages(name, hw)[1]):
        h, w, r, dim = hw[0] // 4 // 2**i, hw[1] // 4 // 2**i, geometry.sr_ratio, geometry.dim
        window = 2 * h * w * WINDOW_TOKENS * (dim // 16 * 14)
        global_ = 2 * h * w * (h // r) * (w // r) * (dim // 16 * 2)
        total += (window + global_) * geometry.depth
    return total


def fast_path_dense_select_stages(name: str, hw: tuple[int, int]) -> list[int]:
    """Stages (1-based) where the fast path's ProbSparse scores every key instead of sampling."""
    attn, geometries = favit_stages(name, hw)
    return [g.stage + 1 for g in geometries if favit.scores_every_key(attn, g.N, g.global_keys)]


def depthwise_conv_macs(model: nn.Module, counted: FvcoreCount) -> int:
    """fvcore MACs of grouped convolutions (depthwise: groups == in_channels)."""
    return sum(
        counted.by_module_macs.get(n, 0)
        for n, m in model.named_modules()
        if isinstance(m, nn.Conv2d) and m.groups > 1
    )


def format_counts(counts: Mapping[str, int]) -> str:
    """``{"conv": 5, "linear": 9}`` -> ``"linear=9; conv=5"`` (largest first)."""
    return "; ".join(
        f"{op}={n}" for op, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    )


def parse_counts(text: Any) -> dict[str, int] | None:
    """``format_counts``'s text back to a dict; None where the row has no such column (NaN)."""
    if not isinstance(text, str):
        return None
    out = {}
    for part in filter(None, text.split("; ")):
        op, _, n = part.rpartition("=")
        out[op] = int(n)
    return out


def counter_gap_by_kind(
    fvcore_macs: Mapping[str, int], flop_counter_flops: Mapping[str, int]
) -> dict[str, tuple[float, float]]:
    """Per operator kind (conv, matmul, or the op's own name): (fvcore MACs, flop_counter MACs)."""
    out: dict[str, list[float]] = {}
    for op, macs in fvcore_macs.items():
        out.setdefault(_FVCORE_KINDS.get(op, op), [0.0, 0.0])[0] += macs
    for op, flops in flop_counter_flops.items():
        kind = _FLOP_COUNTER_KINDS.get(op, op.removeprefix("aten."))
        out.setdefault(kind, [0.0, 0.0])[1] += flops / 2
    return {kind: (fv, fc) for kind, (fv, fc) in out.items()}


# --- one cell -------------------------------------------------------------------------------------


def measure(cell: Cell, ctx: CellContext) -> Row:
    """Count parameters, fvcore MACs and flop_counter FLOPs of one forward pass at batch 1."""
    name = cell["model"]
    hw = image_hw(cell["img_size"])
    model_info = baselines.info(name)
    counted = name + "+ref" if baselines.is_favit(name) and "+ref" not in name else name
    try:
        model = baselines.create(counted, num_classes=1000, img_size=hw)
    except baselines.UnsupportedInput as error:
        raise CellSkipped(str(error)) from error
    model = model.eval().to(ctx.device)
    images = torch.randn(1, 3, *hw, device=ctx.device)
    with torch.no_grad():
        fv = fvcore_count(model, (images,))
        fc = flop_counter_count(model, (images,))
    params = parameter_count(model)
    published = model_info.published
    published_params_m = published.params_m if published else math.nan
    published_gmacs = published.gmacs if published else math.nan
    at_published_size = hw == PUBLISHED_HW
    fvcore_gmacs = fv.total_macs / GIGA
    row: Row = {
        "family": model_info.family,
        "img_h": hw[0],
        "img_w": hw[1],
        "param_count": params / 1e6,
        "fvcore_gmacs": fvcore_gmacs,
        "fvcore_skipped_ops": format_ops(fv.skipped_ops),
        "fvcore_macs_by_op": format_counts(fv.by_operator_macs),
        "flop_counter_gflops": fc.total_flops / GIGA,
        "flop_counter_gmacs": fc.total_flops / 2 / GIGA,
        "flop_counter_attn_gmacs": sum(fc.by_op_flops.get(op, 0) for op in ATTENTION_OPS)
        / 2
        / GIGA,
        "flop_counter_uncounted_ops": format_ops(fc.uncounted_ops),
        "flop_counter_flops_by_op": format_counts(fc.by_op_flops),
        "depthwise_conv_gmacs": depthwise_conv_macs(model, fv) / GIGA,
        "published_params_m": published_params_m,
        "published_gmacs": published_gmacs,
        "params_vs_published": params / 1e6 / published_params_m,
        "gmacs_vs_published": fvcore_gmacs / published_gmacs if at_published_size else math.nan,
    }
    if model_info.family == "favit":
        attn = favit_attention_macs_per_stage(name, hw)
        row["attn_analytic_gmacs"] = sum(attn) / GIGA
        row["official_attn_formula_gmacs"] = official_attention_formula_macs(name, hw) / GIGA
        # the fast path (the default impl, what latency runs): flop_counter only, one more forward
        fast_name = "+".join(p for p in name.split("+") if p != "ref")
        fast = baselines.create(fast_name, num_classes=1000, img_size=hw).eval().to(ctx.device)
        with torch.no_grad():
            row["flop_counter_fast_gmacs"] = (
                flop_counter_count(fast, (images,)).total_flops / 2 / GIGA
            )
        for i in range(NUM_STAGES):
            row[f"stage{i + 1}_gmacs"] = fv.by_module_macs.get(f"stages.{i}", 0) / GIGA
            row[f"stage{i + 1}_attn_analytic_gmacs"] = attn[i] / GIGA
    modules = pd.DataFrame(
        {"module": list(fv.by_module_macs), "fvcore_macs": list(fv.by_module_macs.values())}
    )
    modules.to_csv(ctx.artifact_dir / "modules.csv", index=False, lineterminator="\n")
    return row


# --- report ---------------------------------------------------------------------------------------


def _gm(value: float) -> str:
    return f"{value:.3f}"


def _op_names(ops_text: Any) -> list[str]:
    if not isinstance(ops_text, str) or not ops_text:
        return []
    return [
        part.split(" x")[0].replace("aten::", "").replace("aten.", "")
        for part in ops_text.split("; ")
    ]


def _reference_row(table: pd.DataFrame, row: pd.Series, attn: str) -> pd.Series | None:
    """The same FaViT size, input and reduction with global attention ``attn`` (e.g. dense)."""
    parsed = baselines.parse_favit_name(row["model"])
    wanted = f"{parsed.model}:{attn}" + ("+sr1" if parsed.sr1 else "")
    match = table[(table["model"] == wanted) & (table["img_size"] == row["img_size"])]
    return None if match.empty else match.iloc[0]


def rounding_half_unit(printed: str) -> float:
    """Half of the last printed digit of a published figure as printed: "0.6" -> 0.05, "4.0" -> 0.05,
    "4.09" -> 0.005, "25" -> 0.5. Takes the text: a float has lost its trailing zeros."""
    decimals = len(printed.split(".")[1]) if "." in printed else 0
    return 0.5 * 10.0**-decimals


def _published(row: pd.Series) -> baselines.PublishedFigures | None:
    """The registry's published figures for this row's model, if they are the ones the row holds."""
    try:
        published = baselines.info(row["model"]).published
    except ValueError:
        return None
    if published is None or not math.isclose(published.gmacs, row["published_gmacs"]):
        return None
    return published


def _gm4(value: float) -> str:
    return f"{value:.4f}"


def counter_gap_note(row: pd.Series) -> str | None:
    """Why fvcore's total exceeds flop_counter's, from the per-operator columns where the row has
    them, else from the ops flop_counter left uncounted that fvcore has handles for."""
    extra = row["fvcore_gmacs"] - row["flop_counter_gmacs"]
    fv_ops = parse_counts(row.get("fvcore_macs_by_op"))
    fc_ops = parse_counts(row.get("flop_counter_flops_by_op"))
    if fv_ops is not None and fc_ops is not None:
        gaps = counter_gap_by_kind(fv_ops, fc_ops)
        only = {k: fv for k, (fv, fc) in gaps.items() if fc == 0 and fv != 0}
        shared = {k: fv - fc for k, (fv, fc) in gaps.items() if fc != 0 and abs(fv - fc) >= 0.5}
        if abs(extra) < 5e-4 and not only and not shared:
            return None
        parts = [f"fvcore counts {_gm(extra)} GMACs more than flop_counter"]
        if only:
            ops = sorted(only.items(), key=lambda kv: -kv[1])
            parts.append(
                ", ".join(f"{k} {_gm4(v / GIGA)}" for k, v in ops)
                + " (fvcore only: flop_counter has no formula for "
                + ("it" if len(ops) == 1 else "them")
                + ")"
            )
        if shared:
            ops = sorted(shared.items(), key=lambda kv: -abs(kv[1]))
            parts.append("in ops both count: " + ", ".join(f"{k} {v / GIGA:+.4f}" for k, v in ops))
        else:
            parts.append("the ops both count (conv, matmul) agree")
        return parts[0] + ": " + "; ".join(parts[1:])
    if abs(extra) < 5e-4:
        return None
    handled = sorted(
        {
            _FVCORE_HANDLED_UNCOUNTED[op]
            for op in _op_names_full(row["flop_counter_uncounted_ops"])
            if op in _FVCORE_HANDLED_UNCOUNTED
        }
    )
    text = f"fvcore counts {_gm(extra)} GMACs more than flop_counter (no per-operator counts in this run"
    if handled:
        text += "; of the ops flop_counter left uncounted, fvcore has handles for " + ", ".join(
            handled
        )
    return text + ")"


def _op_names_full(ops_text: Any) -> list[str]:
    """``"aten.add x70; aten.mean x35"`` -> ``["aten.add", "aten.mean"]``."""
    if not isinstance(ops_text, str) or not ops_text:
        return []
    return [part.split(" x")[0] for part in ops_text.split("; ")]


def fast_path_note(row: pd.Series, table: pd.DataFrame) -> str | None:
    """FaViT: the fast path's (the default impl, latency's) cost against dense, where it differs
    from the reference path counted here: counted (``flop_counter_fast_gmacs``) where the row has
    it, else this row's flop_counter count with the fast path's analytic attention in place of
    the reference's."""

    hw = (int(row["img_h"]), int(row["img_w"]))
    parsed = baselines.parse_favit_name(row["model"])
    attn = parsed.global_attn or favit.DEFAULT_GLOBAL_ATTN
    stages = fast_path_dense_select_stages(row["model"], hw)

    def fast_gmacs(r: pd.Series) -> tuple[float, bool]:
        value = r.get("flop_counter_fast_gmacs", math.nan)
        if isinstance(value, float) and not math.isnan(value):
            return value, True
        analytic = favit_attention_macs_per_stage(r["model"], hw, impl="fast")
        return r["flop_counter_gmacs"] - r["attn_analytic_gmacs"] + sum(analytic) / GIGA, False

    fast, counted = fast_gmacs(row)
    if not stages and abs(fast - row["flop_counter_gmacs"]) < 5e-4:
        return None
    source = "by flop_counter" + (
        "" if counted else ", with the fast path's attention analytic: this run predates its column"
    )
    text = "fast path (impl=fast, the default; latency's infer_gmacs): "
    if stages:
        where = (
            "every stage" if len(stages) == NUM_STAGES else "stage " + ", ".join(map(str, stages))
        )
        text += (
            f"scores every key in {where} (L_K <= {favit.attention.DENSE_SELECT_KEY_RATIO} x "
            "n_sample), then keeps the top-u rows"
        )
    else:
        text += "other work than the reference"
    dense = _reference_row(table, row, "dense") if attn != "dense" else None
    if dense is not None:
        dense_fast, _ = fast_gmacs(dense)
        text += (
            f", {fast - dense_fast:+.3f} GMACs vs :dense "
            f"({_gm(fast)} vs {_gm(dense_fast)} GMACs {source})"
        )
    else:
        text += f", {_gm(fast)} GMACs {source}"
    return text


def difference_notes(row: pd.Series, table: pd.DataFrame) -> str:
    """Why our count differs from the published one, from this row's measured columns only."""
    notes = []
    published = _published(row)
    if math.isnan(row["published_gmacs"]):
        pass  # a model without published figures: nothing to compare with
    elif (row["img_h"], row["img_w"]) != PUBLISHED_HW:
        notes.append(
            f"measured at {int(row['img_h'])}x{int(row['img_w'])}, published at 224x224: no ratio"
        )
    elif not math.isnan(row["gmacs_vs_published"]):
        notes.append(f"ours/published {row['gmacs_vs_published']:.2f}")
        if published is not None:
            half_unit = rounding_half_unit(published.gmacs_printed)
            if abs(row["fvcore_gmacs"] - row["published_gmacs"]) <= half_unit:
                notes.append(
                    f"within the published figure's rounding ({published.gmacs_printed} +-{half_unit:g})"
                )
    gap = counter_gap_note(row)
    if gap:
        notes.append(gap)
    skipped = _op_names(row["fvcore_skipped_ops"])
    if skipped:
        notes.append("fvcore skipped: " + ", ".join(skipped))
    uncounted = _op_names(row["flop_counter_uncounted_ops"])
    if uncounted:
        notes.append("flop_counter uncounted: " + ", ".join(uncounted))
    if row["depthwise_conv_gmacs"] > 0:
        share = row["depthwise_conv_gmacs"] / row["fvcore_gmacs"]
        notes.append(
            f"depthwise/grouped convs {_gm(row['depthwise_conv_gmacs'])} GMACs ({share:.1%}), counted"
        )
    if abs(row["params_vs_published"] - 1) > 0.02:
        params = f"params {row['params_vs_published']:.3f}x published"
        if published is not None and published.note:
            params += f" ({published.note})"
        notes.append(params)
    elif published is not None and published.note:
        notes.append(f"published figures: {published.note}")
    if row["family"] == "favit":
        parsed = baselines.parse_favit_name(row["model"])
        if parsed.sr1:
            notes.append("sr=1: global branch attends over all tokens, not the published design")
        notes.append(
            f"attention matmuls: analytic {_gm(row['attn_analytic_gmacs'])}, counted "
            f"{_gm(row['flop_counter_attn_gmacs'])}, official formula {_gm(row['official_attn_formula_gmacs'])} GMACs"
        )
        attn = parsed.global_attn or favit.DEFAULT_GLOBAL_ATTN
        dense = _reference_row(table, row, "dense") if attn != "dense" else None
        if dense is not None:
            delta = row["fvcore_gmacs"] - dense["fvcore_gmacs"]
            notes.append(f"reference path {delta:+.3f} GMACs vs :dense (fvcore)")
        fast = fast_path_note(row, table)
        if fast:
            notes.append(fast)
    return "; ".join(notes)


def comparison_table(table: pd.DataFrame) -> pd.DataFrame:
    """Our figures beside the published ones, one row per model and size, with the notes."""
    ok = table[table["status"] == "ok"].copy()
    ok["notes"] = [difference_notes(row, ok) for _, row in ok.iterrows()]
    columns = {
        "model": "model",
        "img_size": "img_size",
        "param_count": "params_m",
        "published_params_m": "published_params_m",
        "fvcore_gmacs": "fvcore_gmacs",
        "flop_counter_gmacs": "flop_counter_gmacs",
        "published_gmacs": "published_gmacs",
        "gmacs_vs_published": "gmacs_vs_published",
        "notes": "notes",
    }
    return ok[list(columns)].rename(columns=columns).reset_index(drop=True)


def stage_table(table: pd.DataFrame) -> pd.DataFrame:
    """FaViT per stage: fvcore MACs of the stage and the analytic attention MACs within it."""
    ok = table[(table["status"] == "ok") & (table["family"] == "favit")]
    columns = ["model", "img_size"]
    for i in range(1, NUM_STAGES + 1):
        columns += [f"stage{i}_gmacs", f"stage{i}_attn_analytic_gmacs"]
    return ok[[c for c in columns if c in ok.columns]].reset_index(drop=True)


def sources_table(table: pd.DataFrame) -> pd.DataFrame:
    """Where each published figure comes from (as printed there), what it counts, known gaps."""
    rows = []
    seen = set()
    for name in table["model"]:
        try:
            model_info = baselines.info(name)
        except ValueError:
            continue
        key = model_info.model_id
        if key in seen or model_info.published is None:
            continue
        seen.add(key)
        rows.append(
            {
                "model": key,
                "published_params_m": model_info.published.params_printed,
                "published_gmacs": model_info.published.gmacs_printed,
                "source": model_info.published.source,
                "convention": model_info.published.convention,
                "note": model_info.published.note,
            }
        )
    out = pd.DataFrame(rows)
    if not out.empty and not out["note"].astype(bool).any():
        out = out.drop(columns="note")
    return out


def gmacs_bar_chart(table: pd.DataFrame, run_dir: Path) -> list[Path]:
    """Bars of GMACs at 224x224 per model: fvcore, flop_counter / 2, published."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    ok = table[(table["status"] == "ok") & (table["img_h"] == 224) & (table["img_w"] == 224)]
    if ok.empty:
        return []
    long = ok.melt(
        id_vars="model",
        value_vars=["fvcore_gmacs", "flop_counter_gmacs", "published_gmacs"],
        var_name="count",
        value_name="GMACs",
    )
    long["count"] = long["count"].map(
        {
            "fvcore_gmacs": "ours: fvcore",
            "flop_counter_gmacs": "ours: flop_counter / 2",
            "published_gmacs": "published",
        }
    )
    plot_style()
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(ok) * 1.5 + 1.5))
    sns.barplot(data=long, y="model", x="GMACs", hue="count", ax=ax, orient="h")
    ax.set_xlabel("GMACs per image at 224x224 (multiply-accumulates)")
    ax.set_ylabel("")
    ax.legend(title="", loc="lower right")
    return save_figure(fig, run_dir / "gmacs_vs_published")


def report(table: pd.DataFrame, run_dir: Path) -> None:
    """``flops.md/.tex`` (ours vs published, with notes), ``flops_stages``, ``flops_sources``, bar chart."""
    run_dir = Path(run_dir)
    if "status" not in table.columns or not (table["status"] == "ok").any():
        return
    caption = (
        "Parameters and compute per image, batch 1. fvcore and the published figures count MACs "
        "(papers print them as FLOPs); flop_counter counts FLOPs = 2 x MACs and is shown / 2. "
        "fused attention (SDPA) is counted with an exact handle in both counters. FaViT rows count "
        "the reference implementation (impl=reference); where the default fast path does other "
        "work, the notes give its count too."
    )
    digits = {"params_m": 2, "published_params_m": 1, "published_gmacs": 1}
    default = 3
    comp = comparison_table(table)
    write_table(
        comp,
        run_dir / "flops",
        caption=caption,
        digits={c: digits.get(c, default) for c in comp.columns},
    )
    stages = stage_table(table)
    if not stages.empty:
        write_table(
            stages,
            run_dir / "flops_stages",
            caption="FaViT per stage: fvcore GMACs and analytic attention GMACs",
            digits=3,
        )
    write_table(
        sources_table(table),
        run_dir / "flops_sources",
        caption="Published figures: source and counting convention",
        digits=1,
    )
    gmacs_bar_chart(table, run_dir)


SUITE = Suite(
    name="flops",
    description="parameters, fvcore MACs and flop_counter FLOPs (with the ops each skipped), analytic attention and per-stage counts, beside the published figures",
    axes=[
        model_axis(default_models(), quick=quick_models()),
        Axis(
            "img_size",
            default=[224],
            quick=[224],
            kind=image_size,
            help="input size, 224 or WxH like 320x224; published figures are at 224",
        ),
    ],
    measure=measure,
    report=report,
    cell_timeout_s=600.0,
    examples=(
        "python bench.py --suite flops",
        "python bench.py --suite flops --quick",
        "python bench.py --suite flops --set model=favit_b1:dense,favit_b1:sdpa --set img_size=224,384",
    ),
)
