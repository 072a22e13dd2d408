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

import favit
from suites.flop_count import flop_counter_count, format_ops, fvcore_count, sdpa_macs
from suites.flops import SUITE, measure, report
from suites.suite import CellContext, CellSkipped, cell_id


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
    "params",
    "param_count",
    "fvcore_gmacs",
    "fvcore_skipped_ops",
    "flop_counter_gflops",
    "flop_counter_gmacs",
    "flop_counter_attn_gmacs",
    "flop_counter_uncounted_ops",
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
    assert row["params"] == sum(p.numel() for p in model.parameters())
    assert row["param_count"] == pytest.approx(row["params"] / 1e6)
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
