"""Global-attention kernels: equivalences, sampling reproducibility, seed_compat, small-map rule."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import favit
from favit.attention import probsparse_sizes, reflect_pad_right_bottom

# a tiny 4-stage FaViT with every branch, a fraction of B0's cost
TINY = favit.FaViTConfig(
    embed_dims=(16, 32, 64, 64), depths=(1, 1, 1, 1), mlp_ratios=(2, 2, 2, 2), num_classes=10
)
HEIGHT, WIDTH = 16, 12  # stage-1-like map: N = 192 > 25 queries, 2x1 reduced keys at sr=8


def _global_pair(kind: str, factor: int, sr_ratio: int = 2) -> tuple:
    torch.manual_seed(0)
    sparse = favit.GlobalAttention(16, sr_ratio, global_attn=kind, probsparse_factor=factor)
    dense = favit.GlobalAttention(16, sr_ratio, global_attn="dense")
    dense.load_state_dict(sparse.state_dict())
    q = torch.randn(2, HEIGHT * WIDTH, 16)
    x = torch.randn(2, HEIGHT * WIDTH, 16)
    return sparse, dense, q, x


@pytest.mark.parametrize("kind", ["probsparse_seed", "probsparse"])
def test_probsparse_selecting_every_query_equals_dense(kind: str) -> None:
    n_queries = HEIGHT * WIDTH
    sparse, dense, q, x = _global_pair(kind, factor=10**4)
    _, n_top = probsparse_sizes(kind, n_queries, (HEIGHT // 2) * (WIDTH // 2), 10**4)
    assert n_top == n_queries
    torch.testing.assert_close(
        sparse(q, x, HEIGHT, WIDTH), dense(q, x, HEIGHT, WIDTH), rtol=0, atol=1e-5
    )


@pytest.mark.parametrize("kind", ["probsparse_seed", "probsparse"])
def test_probsparse_unselected_queries_get_zero_or_mean_of_v(kind: str) -> None:
    sparse, _, q, x = _global_pair(kind, factor=5)
    out = sparse(q, x, HEIGHT, WIDTH)  # (B, N, C)
    _, n_top = probsparse_sizes(kind, HEIGHT * WIDTH, (HEIGHT // 2) * (WIDTH // 2), 5)
    assert n_top == (int(5 * math.log(192)) if kind == "probsparse_seed" else 5 * 6)
    if kind == "probsparse_seed":
        fill = torch.zeros(16)
    else:
        _, v = sparse.keys_values(x, HEIGHT, WIDTH)
        fill = v.mean(dim=2)[:, 0]  # (B, C)
    for b in range(2):
        is_fill = torch.isclose(out[b], fill if fill.dim() == 1 else fill[b], atol=1e-6).all(-1)
        assert int(is_fill.sum()) == HEIGHT * WIDTH - n_top


def test_probsparse_seed_is_dense_for_short_sequences() -> None:
    sparse = favit.GlobalAttention(8, 1, global_attn="probsparse_seed")
    dense = favit.GlobalAttention(8, 1, global_attn="dense")
    dense.load_state_dict(sparse.state_dict())
    q, x = torch.randn(1, 25, 8), torch.randn(1, 25, 8)  # N = 25: the seed runs dense
    torch.testing.assert_close(sparse(q, x, 5, 5), dense(q, x, 5, 5), rtol=0, atol=1e-6)


def test_sdpa_equals_dense() -> None:
    torch.manual_seed(0)
    a = favit.FaViT(replace(TINY, global_attn="sdpa")).eval()
    b = favit.FaViT(replace(TINY, global_attn="dense")).eval()
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 3, 64, 48)
    with torch.no_grad():
        torch.testing.assert_close(a.forward_features(x), b.forward_features(x), rtol=0, atol=1e-5)


@pytest.mark.parametrize("kind", ["probsparse_seed", "probsparse"])
def test_same_generator_seed_repeats_and_another_seed_differs(kind: str) -> None:
    torch.manual_seed(0)
    model = favit.FaViT(replace(TINY, global_attn=kind)).eval()
    x = torch.randn(2, 3, 64, 64)

    def run(seed: int) -> torch.Tensor:
        favit.set_generator(model, torch.Generator().manual_seed(seed))
        with torch.no_grad():
            return model.forward_features(x)

    torch.testing.assert_close(run(1), run(1), rtol=0, atol=0)
    assert not torch.allclose(run(1), run(2), atol=1e-6)


def test_seed_compat_changes_only_the_global_branch() -> None:
    torch.manual_seed(0)
    corrected = favit.FactorizedAttention(64, 1, 8, global_attn="dense")
    seed = favit.FactorizedAttention(64, 1, 8, global_attn="dense", seed_compat=True)
    seed.load_state_dict(corrected.state_dict())
    x = torch.randn(2, 32 * 24, 64)  # 32x24 map -> 4x3 reduced grid
    ours = corrected.branch_outputs(x, 32, 24)
    theirs = seed.branch_outputs(x, 32, 24)
    assert len(ours) == 3
    torch.testing.assert_close(ours[1], theirs[1], rtol=0, atol=0)  # local
    torch.testing.assert_close(ours[2], theirs[2], rtol=0, atol=0)  # dilated
    assert (ours[0] - theirs[0]).abs().max() > 1e-4  # global


def test_window_pooling_is_the_official_channel_mixing_average() -> None:
    """Pooled token t, channel j = mean of entries j*nW .. (j+1)*nW-1 of (window, channel) order."""
    torch.manual_seed(0)
    branch = favit.WindowAttention(8, 2, 1)
    kv_map = torch.randn(1, 8, 14, 21)  # 2x3 = 6 windows, no padding
    pooled = branch.pooled_window_tokens(kv_map)  # (1, 2, 49, 4)
    patches = F.unfold(kv_map, 7, stride=7).reshape(1, 2, 4, 49, 6)  # (B, h, w, 49, nW)
    flat = patches.permute(0, 1, 3, 4, 2).reshape(1, 2, 49, 24)  # window outer, channel inner
    expected = torch.nn.AdaptiveAvgPool2d((None, 4))(flat)
    torch.testing.assert_close(pooled, expected)


@pytest.mark.parametrize(("size", "pad"), [(8, 41), (8, 6), (3, 10), (2, 5), (1, 6), (56, 42)])
def test_reflection_padding_extends_numpy_reflect(size: int, pad: int) -> None:
    x = torch.randn(1, 2, size, size + 1)
    padded = reflect_pad_right_bottom(x, pad, pad)
    expected = np.pad(x.numpy(), ((0, 0), (0, 0), (0, 0), (0, pad)), mode="reflect")
    rows_mode = "reflect" if size > 1 else "edge"  # a single row is replicated
    expected = np.pad(expected, ((0, 0), (0, 0), (0, pad), (0, 0)), mode=rows_mode)
    np.testing.assert_array_equal(padded.numpy(), expected)
    if pad < size:  # where ReflectionPad2d is defined, it is exactly that
        torch.testing.assert_close(padded, torch.nn.ReflectionPad2d((0, pad, 0, pad))(x))
