"""FaViT model: parameter counts, output shapes at every input size, gradients, option errors."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

import favit

SIZES = [(32, 32), (48, 48), (64, 64), (96, 128), (224, 224), (384, 384), (512, 512)]


# a tiny FaViT with B0's structure (4 stages, every branch), cheap enough for every size
TINY = favit.FaViTConfig(
    embed_dims=(16, 32, 64, 64), depths=(1, 1, 1, 1), mlp_ratios=(2, 2, 2, 2), num_classes=10
)


def tiny(**options) -> favit.FaViT:
    return favit.FaViT(replace(TINY, **options))


@pytest.mark.parametrize(
    ("name", "params_m"),
    [("favit_b0", 3.43), ("favit_b1", 12.96), ("favit_b2", 24.92), ("favit_b3", 48.75)],
)
def test_param_count_within_one_percent_of_official(name: str, params_m: float) -> None:
    with torch.device("meta"):  # shapes only: no weight init cost
        model = favit.create_model(name)
    count_m = sum(p.numel() for p in model.parameters()) / 1e6
    assert abs(count_m - params_m) / params_m < 0.01, count_m


@pytest.mark.parametrize("global_attn", favit.GLOBAL_ATTN_CHOICES)
def test_output_shape_at_every_input_size(global_attn: str) -> None:
    model = tiny(global_attn=global_attn).eval()
    with torch.no_grad():
        for height, width in SIZES:
            logits = model(torch.randn(1, 3, height, width))
            assert logits.shape == (1, 10), (height, width)
            assert torch.isfinite(logits).all(), (height, width)


@pytest.mark.parametrize("global_attn", favit.GLOBAL_ATTN_CHOICES)
def test_b0_output_shape_at_small_sizes(global_attn: str) -> None:
    model = favit.create_model("favit_b0", num_classes=10, global_attn=global_attn).eval()
    with torch.no_grad():
        for height, width in [(32, 32), (48, 64)]:
            assert model(torch.randn(2, 3, height, width)).shape == (2, 10)
            assert model.forward_features(torch.randn(2, 3, height, width)).shape == (2, 256)


def test_b1_forward_at_224() -> None:
    model = favit.create_model("favit_b1", num_classes=10).eval()
    with torch.no_grad():
        logits = model(torch.randn(1, 3, 224, 224))
    assert logits.shape == (1, 10) and torch.isfinite(logits).all()


def test_b0_structure() -> None:
    model = favit.create_model("favit_b0", num_classes=10)
    assert isinstance(model.stages, torch.nn.ModuleList) and len(model.stages) == 4
    stage = model.stages[1]
    assert isinstance(stage, favit.Stage)
    assert len(stage.blocks) == 2
    attn = stage.blocks[0].attn
    assert isinstance(attn, favit.FactorizedAttention)
    assert isinstance(attn.global_attn, favit.GlobalAttention)
    # docs/SUBJECT.md: C=64, sr=4 -> 8 global, 28 local, 28 dilated channels
    assert attn.groups == (8, 28, 28)
    assert [b.dilation for b in attn.windows] == [1, 4]
    assert isinstance(model.forward_head(torch.zeros(3, 256)), torch.Tensor)


def test_sr_ratio_override_gives_global_attention_over_all_tokens() -> None:
    model = favit.create_model("favit_b0", num_classes=10, sr_ratios=(1, 1, 1, 1))
    attn = model.stages[0].blocks[0].attn
    assert model.config.sr_ratios == (1, 1, 1, 1)
    assert len(attn.windows) == 1  # no dilated branch when sr == 1
    assert attn.global_attn.sr.kernel_size == (1, 1)
    with torch.no_grad():
        assert model(torch.randn(1, 3, 32, 32)).shape == (1, 10)


@pytest.mark.parametrize("global_attn", favit.GLOBAL_ATTN_CHOICES)
def test_gradient_reaches_every_parameter(global_attn: str) -> None:
    torch.manual_seed(0)
    model = tiny(global_attn=global_attn, drop_path_rate=0.1).train()
    model(torch.randn(2, 3, 64, 64)).sum().backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, name
        assert torch.isfinite(param.grad).all(), name
    # the global branch learns through the selected queries even where others get zeros
    global_kv = model.stages[0].blocks[0].attn.global_attn.kv.weight
    assert global_kv.grad.abs().sum() > 0


def test_seed_compat_and_factor_reach_every_block() -> None:
    model = favit.create_model(
        "favit_b0", global_attn="probsparse_seed", probsparse_factor=3, seed_compat=True
    )
    globals_ = [m for m in model.modules() if isinstance(m, favit.GlobalAttention)]
    assert len(globals_) == 12
    assert all(g.seed_compat and g.probsparse_factor == 3 for g in globals_)
    assert all(g.global_attn == "probsparse_seed" for g in globals_)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"name": "favit_b9"}, "favit_b0, favit_b1, favit_b2, favit_b3"),
        ({"name": "favit_b0", "global_attn": "flash"}, "probsparse_seed, probsparse, dense, sdpa"),
        ({"name": "favit_b0", "sr_ratios": (8, 4, 2)}, "4 entries"),
        ({"name": "favit_b0", "sr_ratios": (8, 4, 0, 1)}, "sr_ratios must be >= 1"),
        ({"name": "favit_b0", "probsparse_factor": 0}, "probsparse_factor"),
    ],
)
def test_bad_options_raise_with_valid_choices(kwargs: dict, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        favit.create_model(**kwargs)


def test_bad_global_attn_in_attention_module() -> None:
    with pytest.raises(ValueError, match="valid choices: probsparse_seed"):
        favit.FactorizedAttention(64, 1, 8, global_attn="linear")


def test_too_small_input_raises_clear_error() -> None:
    model = favit.create_model("favit_b0", num_classes=10)
    with pytest.raises(ValueError, match="smaller than sr_ratio 8"):
        model(torch.randn(1, 3, 16, 16))
