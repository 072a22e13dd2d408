"""Per-stage geometry and analytic attention counts match docs/SUBJECT.md and the forward pass."""

from __future__ import annotations

import math

import pytest
import torch

import favit
from favit.attention import reflect_pad_right_bottom, window_geometry


def test_stage_geometry_at_224_matches_the_notes() -> None:
    s1, s2, s3, s4 = favit.stage_geometry("favit_b1", 224)
    assert (s1.H, s1.W, s1.N, s1.global_keys) == (56, 56, 3136, 49)
    assert (s1.global_width, s1.local_width, s1.dilated_width) == (8, 28, 28)
    assert (s1.local_stride, s1.local_pad_right, s1.local_windows) == (7, 0, 64)
    assert (s1.dilated_stride, s1.dilated_pad_right, s1.dilated_windows) == (49, 42, 4)
    assert (s2.N, s2.global_keys, s2.local_windows) == (784, 49, 16)
    assert (s2.dilated_stride, s2.dilated_pad_bottom, s2.dilated_windows) == (25, 22, 4)
    assert (s3.N, s3.global_keys, s3.local_windows) == (196, 49, 4)
    assert (s3.dilated_stride, s3.dilated_pad_bottom, s3.dilated_windows) == (13, 12, 4)
    assert (s4.N, s4.global_keys, s4.local_windows, s4.dilated_windows) == (49, 49, 1, 0)
    assert not s4.has_dilated and s4.global_width == 64 and s4.head_width == 56
    assert all(s.window_tokens == 49 for s in (s1, s2, s3, s4))


def test_stage_geometry_non_square_and_override() -> None:
    stages = favit.stage_geometry("favit_b0", (96, 128), sr_ratios=(1, 1, 1, 1))
    assert [(s.H, s.W) for s in stages] == [(24, 32), (12, 16), (6, 8), (3, 4)]
    assert stages[0].global_keys == stages[0].N == 768
    assert all(not s.has_dilated for s in stages)
    with pytest.raises(ValueError, match="too small"):
        favit.stage_geometry("favit_b0", 16)


def test_score_elements_at_224_stage_1() -> None:
    s1 = favit.stage_geometry("favit_b1", 224)[0]
    dense = favit.attention_score_elements(s1, "dense")
    assert dense == {
        "global": 3136 * 49,
        "global_sample": 0,
        "global_topu": 0,
        "local": 3136 * 49,
        "dilated": 3136 * 49,
    }
    assert favit.attention_score_elements(s1, "sdpa") == dense
    seed = favit.attention_score_elements(s1, "probsparse_seed")
    assert int(5 * math.log(3136)) == 40  # the seed's "Top-40"
    assert seed["global_sample"] == 3136 * 25 and seed["global_topu"] == 40 * 49
    assert seed["global"] == 3136 * 25 + 40 * 49
    informer = favit.attention_score_elements(s1, "probsparse")
    assert informer["global_sample"] == 3136 * 5 * math.ceil(math.log(49))
    assert informer["global_topu"] == 5 * math.ceil(math.log(3136)) * 49


def test_macs_follow_the_elements() -> None:
    s2 = favit.stage_geometry("favit_b0", 224)[1]  # C=64, 2 heads: 8 global, 14 per head
    macs = favit.attention_macs(s2, "probsparse_seed")
    assert macs["local_qk"] == macs["local_av"] == 2 * 784 * 49 * 14
    assert macs["global_sample_qk"] == 784 * 25 * 8
    assert macs["global_qk"] == (784 * 25 + int(5 * math.log(784)) * 49) * 8
    assert macs["global_av"] == int(5 * math.log(784)) * 49 * 8
    assert favit.attention_macs(s2, "dense")["global_av"] == 784 * 49 * 8


@pytest.mark.parametrize("size", [(32, 32), (48, 48), (96, 128), (224, 224)])
def test_geometry_matches_the_forward_pass(size: tuple[int, int]) -> None:
    """Window counts and key counts agree with what the modules compute on real tensors."""
    config = favit.FaViTConfig(embed_dims=(16, 32, 64, 64), depths=(1, 1, 1, 1))
    model = favit.FaViT(config)
    geometry = favit.stage_geometry(config, size)
    x = torch.randn(1, 3, *size)
    with torch.no_grad():
        for stage, geo in zip(model.stages, geometry, strict=True):
            tokens, height, width = stage.downsample(x)
            assert (height, width) == (geo.H, geo.W)
            attn = stage.blocks[0].attn
            g = attn.global_width
            k, _ = attn.global_attn.keys_values(tokens[..., :g], height, width)
            assert k.shape[2] == geo.global_keys
            for branch, windows in zip(
                attn.windows, (geo.local_windows, geo.dilated_windows), strict=False
            ):
                stride, pad_b, pad_r, count = window_geometry(height, width, branch.dilation)
                padded = reflect_pad_right_bottom(torch.zeros(1, 1, height, width), pad_b, pad_r)
                unfolded = torch.nn.functional.unfold(
                    padded, 7, dilation=branch.dilation, stride=stride
                )
                assert unfolded.shape[-1] == count == windows
            x = stage(x)
