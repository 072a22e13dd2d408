"""FLOP counting: counters against hand-computed MACs, analytic attention against counted, the suite's row."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import baselines
import favit
from suites.engine.flop_count import flop_counter_count, format_ops, fvcore_count, sdpa_macs
from suites.engine.suite import CellContext, CellSkipped, cell_id
from suites.flops import (
    SUITE,
    comparison_table,
    counter_gap_by_kind,
    difference_notes,
    fast_path_dense_select_stages,
    favit_attention_macs_per_stage,
    measure,
    parse_counts,
    report,
    rounding_half_unit,
    sources_table,
)


def test_linear_macs_and_flops_match_hand_count() -> None:
    layer = nn.Linear(64, 32)
    x = torch.randn(2, 10, 64)
    macs = 2 * 10 * 64 * 32  # tokens x in x out; the bias add is not a MAC
    assert fvcore_count(layer, (x,)).total_macs == macs
    assert flop_counter_count(layer, (x,)).total_flops == 2 * macs


@pytest.mark.parametrize("groups", [1, 8])
def test_conv_macs_and_flops_match_hand_count(groups: int) -> None:
    conv = nn.Conv2d(8, 16, kernel_size=3, stride=2, padding=1, groups=groups)
    x = torch.randn(1, 8, 16, 16)
    macs = 16 * 8 * 8 * (8 // groups) * 3 * 3  # out channels x out map x in channels/group x kernel
    assert fvcore_count(conv, (x,)).total_macs == macs
    assert flop_counter_count(conv, (x,)).total_flops == 2 * macs


class FusedAttention(nn.Module):
    def forward(self, q, k, v):
        return F.scaled_dot_product_attention(q, k, v)


class ExplicitAttention(nn.Module):
    def forward(self, q, k, v):
        return (q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5).softmax(-1) @ v


def test_sdpa_is_counted_and_agrees_with_explicit_attention() -> None:
    q, k, v = torch.randn(2, 3, 10, 8), torch.randn(2, 3, 6, 8), torch.randn(2, 3, 6, 4)
    macs = 2 * 3 * 10 * 6 * (8 + 4)
    assert sdpa_macs(q.shape, k.shape, v.shape) == macs
    for module in (FusedAttention(), ExplicitAttention()):
        fv = fvcore_count(module, (q, k, v))
        assert fv.total_macs == macs
        assert "aten::scaled_dot_product_attention" not in fv.skipped_ops
        assert flop_counter_count(module, (q, k, v)).total_flops == 2 * macs


def test_uncounted_ops_list_arithmetic_but_not_views() -> None:
    class NormSoftmax(nn.Module):
        def forward(self, x):
            return F.layer_norm(x, x.shape[-1:]).softmax(-1).transpose(0, 1).reshape(-1)

    counted = flop_counter_count(NormSoftmax(), (torch.randn(4, 5),))
    assert counted.total_flops == 0
    names = set(counted.uncounted_ops)
    assert "aten.native_layer_norm" in names
    assert names & {"aten._softmax", "aten._safe_softmax"}
    assert not names & {"aten.transpose", "aten.view", "aten._unsafe_view", "aten.clone"}


def test_format_ops_sorts_by_count() -> None:
    assert (
        format_ops(Counter({"aten::topk": 4, "aten::unfold": 12}))
        == "aten::unfold x12; aten::topk x4"
    )
    assert format_ops(Counter()) == ""


@pytest.mark.parametrize("global_attn", ["dense", "probsparse_seed"])
def test_analytic_attention_macs_equal_counted_matmuls(global_attn: str) -> None:
    """favit.attention_macs (Q K^T + A V, all branches) against flop_counter's bmm count, one block.

    The analytic count is the reference implementation's matmuls (the fast path runs them through
    SDPA and, for ProbSparse over few keys, scores every key instead of gathering samples).
    """
    img = 64
    model = favit.create_model("favit_b0", global_attn=global_attn, impl="reference").eval()
    geometry = favit.stage_geometry("favit_b0", img)[0]
    attn = model.stages[0].blocks[0].attn
    x = torch.randn(1, geometry.N, geometry.dim)
    with torch.no_grad():
        counted = flop_counter_count(lambda t: attn(t, geometry.H, geometry.W), (x,))
    analytic = favit.attention_macs(geometry, global_attn)
    expected = sum(v for key, v in analytic.items() if key != "global_sample_qk")
    assert counted.by_op_flops.get("aten.bmm", 0) == 2 * expected


@pytest.fixture(scope="module")
def favit_row(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    run_dir = tmp_path_factory.mktemp("flops")
    cell = {"model": "favit_b0:sdpa", "img_size": 32}
    ctx = CellContext(device="cpu", run_dir=run_dir, cell_id=cell_id(cell))
    return {**cell, **measure(cell, ctx)}, run_dir


DOCUMENTED = [
    "param_count",
    "fvcore_gmacs",
    "fvcore_skipped_ops",
    "flop_counter_gflops",
    "flop_counter_gmacs",
    "flop_counter_attn_gmacs",
    "flop_counter_uncounted_ops",
    "fvcore_macs_by_op",
    "flop_counter_flops_by_op",
    "flop_counter_fast_gmacs",
    "depthwise_conv_gmacs",
    "published_gmacs",
    "gmacs_vs_published",
    "attn_analytic_gmacs",
    "official_attn_formula_gmacs",
    *(f"stage{i}_gmacs" for i in range(1, 5)),
    *(f"stage{i}_attn_analytic_gmacs" for i in range(1, 5)),
]


def test_measure_returns_documented_columns(favit_row: tuple[dict, Path]) -> None:
    row, run_dir = favit_row
    assert set(DOCUMENTED) <= set(row)
    model = favit.create_model("favit_b0", global_attn="sdpa")
    # one column per quantity: parameters in millions (timm's param_count), exact to the parameter
    assert "params" not in row
    assert round(row["param_count"] * 1e6) == sum(p.numel() for p in model.parameters())
    assert row["flop_counter_gflops"] == pytest.approx(2 * row["flop_counter_gmacs"])
    assert math.isnan(row["gmacs_vs_published"])  # published figures are at 224
    assert row["flop_counter_attn_gmacs"] == pytest.approx(row["attn_analytic_gmacs"])
    assert sum(row[f"stage{i}_attn_analytic_gmacs"] for i in range(1, 5)) == pytest.approx(
        row["attn_analytic_gmacs"]
    )
    assert sum(row[f"stage{i}_gmacs"] for i in range(1, 5)) < row["fvcore_gmacs"]
    assert "aten::scaled_dot_product_attention" not in row["fvcore_skipped_ops"]
    modules = pd.read_csv(
        run_dir / "cells" / cell_id({"model": "favit_b0:sdpa", "img_size": 32}) / "modules.csv"
    )
    assert modules.loc[modules["module"].isna() | (modules["module"] == ""), "fvcore_macs"].iloc[
        0
    ] == round(row["fvcore_gmacs"] * 1e9)


def test_measure_skips_unsupported_size(tmp_path: Path) -> None:
    cell = {"model": "swin_t", "img_size": 64}
    with pytest.raises(CellSkipped, match="window 7"):
        measure(cell, CellContext(device="cpu", run_dir=tmp_path, cell_id=cell_id(cell)))


def test_report_writes_tables_and_chart(favit_row: tuple[dict, Path], tmp_path: Path) -> None:
    row, _ = favit_row
    at_224 = {
        **row,
        "img_size": 224,
        "img_h": 224,
        "img_w": 224,
        "gmacs_vs_published": row["fvcore_gmacs"] / 0.6,
    }
    table = pd.DataFrame(
        [{**row, "status": "ok"}, {**at_224, "model": "favit_b0:sdpa", "status": "ok"}]
    )
    report(table, tmp_path)
    for stem in ("flops", "flops_stages", "flops_sources"):
        assert (tmp_path / f"{stem}.md").exists() and (tmp_path / f"{stem}.tex").exists()
    assert (tmp_path / "gmacs_vs_published.png").exists()
    text = (tmp_path / "flops.md").read_text()
    assert "measured at 32x32, published at 224x224" in text
    assert "attention matmuls: analytic" in text


def test_suite_axes_validate_model_names() -> None:
    axis = SUITE.axis("model")
    assert axis.kind("favit_b1:dense+sr1") == "favit_b1:dense+sr1"
    with pytest.raises(ValueError, match="valid"):
        axis.kind("favit_b1:nope")
    for name in axis.values(quick=False) + axis.values(quick=True):
        axis.kind(name)


# --- published figures: their printed precision ------------------------------------------------


def test_rounding_half_unit_reads_the_figure_as_printed() -> None:
    assert rounding_half_unit("4.0") == pytest.approx(0.05)  # the float 4.0 would print as "4"
    assert rounding_half_unit("0.6") == pytest.approx(0.05)
    assert rounding_half_unit("4.09") == pytest.approx(0.005)
    assert rounding_half_unit("25") == pytest.approx(0.5)
    assert baselines.PUBLISHED["pvt_v2_b2"].gmacs_printed == "4.0"
    for figures in baselines.PUBLISHED.values():
        assert figures.gmacs == float(figures.gmacs_printed)
        assert figures.params_m == float(figures.params_printed)
    with pytest.raises(ValueError, match="printed decimal"):
        baselines.PublishedFigures(25.4, 4.0, "source", "MACs")  # type: ignore[arg-type]


def _reference_row(model: str, **values: object) -> dict:
    """A comparison-table row of a non-FaViT model at 224 (the columns difference_notes reads)."""
    published = baselines.info(model).published
    row = {
        "model": model,
        "img_size": 224,
        "img_h": 224,
        "img_w": 224,
        "status": "ok",
        "family": baselines.info(model).family,
        "param_count": published.params_m,
        "published_params_m": published.params_m,
        "published_gmacs": published.gmacs,
        "params_vs_published": 1.0,
        "fvcore_gmacs": published.gmacs,
        "flop_counter_gmacs": published.gmacs,
        "fvcore_skipped_ops": "",
        "flop_counter_uncounted_ops": "",
        "depthwise_conv_gmacs": 0.0,
    }
    row.update(values)
    row["gmacs_vs_published"] = row["fvcore_gmacs"] / published.gmacs
    return row


def test_rounding_note_uses_the_printed_precision() -> None:
    """pvt_v2_b2's 4.0 GMACs is rounded to +-0.05, not +-0.5: 4.3 is outside, 4.046 inside."""
    inside = _reference_row("pvt_v2_b2", fvcore_gmacs=4.046, flop_counter_gmacs=4.046)
    outside = _reference_row("pvt_v2_b2", fvcore_gmacs=4.3, flop_counter_gmacs=4.3)
    table = pd.DataFrame([inside])
    assert "within the published figure's rounding (4.0 +-0.05)" in difference_notes(
        pd.Series(inside), table
    )
    note = difference_notes(pd.Series(outside), table)
    assert "within the published figure's rounding" not in note and "+-0.5" not in note


def test_pvt_v2_b0_params_gap_is_explained() -> None:
    note = baselines.PUBLISHED["pvt_v2_b0"].note
    assert "3.4M" in note and "3.7M" in note and "not a different model" in note
    row = _reference_row("pvt_v2_b0", params_vs_published=1.078)
    text = difference_notes(pd.Series(row), pd.DataFrame([row]))
    assert f"params 1.078x published ({note})" in text
    sources = sources_table(pd.DataFrame([row]))
    assert sources.loc[0, "note"] == note
    assert sources.loc[0, "published_gmacs"] == "0.6"  # as printed


# --- fvcore against flop_counter, per operator -------------------------------------------------


@pytest.fixture(scope="module")
def resnet_row(tmp_path_factory: pytest.TempPathFactory) -> dict:
    cell = {"model": "resnet50", "img_size": 64}
    ctx = CellContext(
        device="cpu", run_dir=tmp_path_factory.mktemp("resnet"), cell_id=cell_id(cell)
    )
    return {**cell, **measure(cell, ctx), "status": "ok"}


def test_counter_gap_is_fvcore_layer_norm_for_favit(favit_row: tuple[dict, Path]) -> None:
    """FaViT: the whole gap between the counters is fvcore's layer_norm count."""
    row = {**favit_row[0], "status": "ok"}
    fv_ops = parse_counts(row["fvcore_macs_by_op"])
    fc_ops = parse_counts(row["flop_counter_flops_by_op"])
    assert sum(fv_ops.values()) == round(row["fvcore_gmacs"] * 1e9)
    assert sum(fc_ops.values()) == round(row["flop_counter_gflops"] * 1e9)
    gaps = counter_gap_by_kind(fv_ops, fc_ops)
    assert gaps["conv"][0] == gaps["conv"][1] and gaps["matmul"][0] == gaps["matmul"][1]
    assert set(gaps) == {"conv", "matmul", "layer_norm"} and gaps["layer_norm"][1] == 0
    assert round((row["fvcore_gmacs"] - row["flop_counter_gmacs"]) * 1e9) == fv_ops["layer_norm"]
    note = difference_notes(pd.Series(row), pd.DataFrame([row]))
    assert "layer_norm" in note and "(fvcore only: flop_counter has no formula for it)" in note
    assert "the ops both count (conv, matmul) agree" in note
    assert "pooling" not in note and "batch_norm" not in note


def test_counter_gap_is_batch_norm_and_pooling_for_resnet(resnet_row: dict) -> None:
    gaps = counter_gap_by_kind(
        parse_counts(resnet_row["fvcore_macs_by_op"]),
        parse_counts(resnet_row["flop_counter_flops_by_op"]),
    )
    only_fvcore = {kind for kind, (fv, fc) in gaps.items() if fc == 0}
    assert only_fvcore == {"batch_norm", "adaptive_avg_pool2d"}
    note = difference_notes(pd.Series(resnet_row), pd.DataFrame([resnet_row]))
    assert "batch_norm" in note and "adaptive_avg_pool2d" in note and "layer_norm" not in note


def test_counter_gap_note_without_per_operator_columns(
    favit_row: tuple[dict, Path], resnet_row: dict
) -> None:
    """A run that predates the per-operator columns: the note says only what its rows show."""
    for full, handled in ((favit_row[0], "layer_norm"), (resnet_row, "batch_norm")):
        row = {
            k: v
            for k, v in full.items()
            if k not in ("fvcore_macs_by_op", "flop_counter_flops_by_op")
        }
        row["status"] = "ok"
        # at 32 px FaViT-B0's gap is below the 0.0005 GMACs the notes show; make it 224's size
        row["fvcore_gmacs"] = max(row["fvcore_gmacs"], row["flop_counter_gmacs"] + 0.007)
        note = difference_notes(pd.Series(row), pd.DataFrame([row]))
        assert "no per-operator counts in this run" in note
        assert f"fvcore has handles for {handled})" in note
        assert "pooling it has handles for" not in note


def test_flop_counter_uncounted_ops_are_in_the_notes(favit_row: tuple[dict, Path]) -> None:
    row = {**favit_row[0], "status": "ok"}
    assert "aten.native_layer_norm" in row["flop_counter_uncounted_ops"]
    notes = comparison_table(pd.DataFrame([row]))["notes"].iloc[0]
    assert "flop_counter uncounted: " in notes and "native_layer_norm" in notes


def test_fvcore_handled_uncounted_names_are_fvcore_handles() -> None:
    from fvcore.nn.flop_count import _DEFAULT_SUPPORTED_OPS

    from suites.flops import _FVCORE_HANDLED_UNCOUNTED

    assert {f"aten::{name}" for name in _FVCORE_HANDLED_UNCOUNTED.values()} <= set(
        _DEFAULT_SUPPORTED_OPS
    )


# --- the fast path (the default impl) -------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [f"favit_b0:{a}" for a in favit.GLOBAL_ATTN_CHOICES]
    + [f"favit_b0:{a}+sr1" for a in ("probsparse", "probsparse_seed")],
)
def test_fast_path_analytic_attention_matches_its_count(name: str) -> None:
    """The fast path's flop_counter count = the reference's, its attention swapped for the fast
    path's analytic attention (what the notes use for runs without flop_counter_fast_gmacs)."""
    hw = (64, 64)  # dense-then-select in every ProbSparse stage; seed's only where N > 25
    images = torch.randn(1, 3, *hw)
    counts = {}
    for impl_name in (name, name + "+ref"):
        model = baselines.create(impl_name, num_classes=1000, img_size=hw).eval()
        with torch.no_grad():
            counts[impl_name] = flop_counter_count(model, (images,)).total_flops // 2
    derived = (
        counts[name + "+ref"]
        - sum(favit_attention_macs_per_stage(name, hw))
        + sum(favit_attention_macs_per_stage(name, hw, impl="fast"))
    )
    assert counts[name] == derived


def test_fast_probsparse_costs_more_than_dense_at_224() -> None:
    """At 224 (L_K = 49 <= 4 x n_sample in every stage) the fast ProbSparse scores every key and
    costs more than dense; the reference, which samples keys, costs less."""
    hw = (224, 224)
    dense = sum(favit_attention_macs_per_stage("favit_b1:dense", hw))
    for attn in ("probsparse", "probsparse_seed"):
        name = f"favit_b1:{attn}"
        assert fast_path_dense_select_stages(name, hw) == [1, 2, 3, 4]
        assert sum(favit_attention_macs_per_stage(name, hw)) < dense
        assert sum(favit_attention_macs_per_stage(name, hw, impl="fast")) > dense
    assert favit_attention_macs_per_stage("favit_b1:dense", hw, impl="fast") == (
        favit_attention_macs_per_stage("favit_b1:dense", hw)
    )
    assert fast_path_dense_select_stages("favit_b1:probsparse+sr1", hw) == [4]
    # +gsr1: the global branch attends over every token (L_K = N) in every stage, so only the
    # last stage (7x7 at 224) has few enough keys for dense-then-select
    assert fast_path_dense_select_stages("favit_b1:probsparse+gsr1", hw) == [4]


def test_fast_path_is_counted_and_noted(tmp_path: Path) -> None:
    rows = []
    for model in ("favit_b0:probsparse", "favit_b0:dense"):
        cell = {"model": model, "img_size": 64}
        ctx = CellContext(device="cpu", run_dir=tmp_path, cell_id=cell_id(cell))
        rows.append({**cell, **measure(cell, ctx), "status": "ok"})
    probsparse, dense = rows
    assert probsparse["flop_counter_fast_gmacs"] > dense["flop_counter_fast_gmacs"]
    assert dense["flop_counter_fast_gmacs"] == pytest.approx(dense["flop_counter_gmacs"])
    assert probsparse["flop_counter_gmacs"] < dense["flop_counter_gmacs"]  # the reference samples
    table = pd.DataFrame(rows)
    note = difference_notes(table.iloc[0], table)
    assert "fast path (impl=fast, the default; latency's infer_gmacs)" in note
    assert "scores every key in every stage" in note and "GMACs by flop_counter)" in note
    assert "fast path" not in difference_notes(table.iloc[1], table)
    # a run from before the column: the same figure, derived from the analytic attention
    older = table.drop(columns="flop_counter_fast_gmacs")
    old_note = difference_notes(older.iloc[0], older)
    assert "this run predates its column" in old_note
    assert (
        old_note.split("fast path")[1].split("(")[1].split(" GMACs")[0]
        == (note.split("fast path")[1].split("(")[1].split(" GMACs")[0])
    )
