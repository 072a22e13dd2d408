"""pytest-benchmark micro-benchmarks of FaViT's factorized attention, one per global kernel (CPU).

Disabled by default (``--benchmark-disable`` in pyproject); run them with
``python -m pytest tests/test_bench_attention.py --benchmark-enable``. Stage-1-like shape of
FaViT-B0 at 64 px: C = 32, 16 x 16 tokens, sr 8 (global, local and dilated branches).
"""

from __future__ import annotations

import pytest
import torch

from favit import GLOBAL_ATTN_CHOICES, FactorizedAttention

DIM, HEADS, SR, SIDE, BATCH = 32, 1, 8, 16, 2


@pytest.mark.parametrize("global_attn", GLOBAL_ATTN_CHOICES)
def test_factorized_attention_forward(benchmark, global_attn):
    torch.manual_seed(0)
    attention = FactorizedAttention(DIM, HEADS, SR, global_attn=global_attn).eval()
    x = torch.randn(BATCH, SIDE * SIDE, DIM)

    def forward() -> torch.Tensor:
        with torch.no_grad():
            return attention(x, SIDE, SIDE)

    out = benchmark(forward)
    assert out.shape == (BATCH, SIDE * SIDE, DIM)
    assert torch.isfinite(out).all()
