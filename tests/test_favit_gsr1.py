"""``+gsr1``: the global branch attends over every token while the channel split, and so the local
and dilated branches, stay the published ones for each stage's sr."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import baselines
import favit

EVERY_PATCH = (1, 1, 1, 1)
PUBLISHED_SR = (8, 4, 2, 1)


class SoftmaxShapes(TorchDispatchMode):
    """Records the shape of every softmax output computed under it."""

    def __init__(self) -> None:
        super().__init__()
        self.shapes: list[tuple[int, ...]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func.__name__.startswith("_softmax."):
            self.shapes.append(tuple(out.shape))
        return out


@pytest.mark.parametrize("size", [64, 224])
@pytest.mark.parametrize("global_attn", favit.GLOBAL_ATTN_CHOICES)
@pytest.mark.parametrize("model_name", ["favit_b0", "favit_b1"])
def test_gsr1_forward_and_backward(model_name: str, global_attn: str, size: int) -> None:
    torch.manual_seed(0)
    model = baselines.create(f"{model_name}:{global_attn}+gsr1", num_classes=7, img_size=size)
    logits = model.train()(torch.randn(1, 3, size, size))
    assert logits.shape == (1, 7) and torch.isfinite(logits).all()
    logits.sum().backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name
    for stage, sr in zip(model.stages, PUBLISHED_SR, strict=True):
        attn = stage.blocks[0].attn
        assert attn.global_attn.sr.kernel_size == (1, 1)
        assert [branch.dilation for branch in attn.windows] == [1, sr][: len(attn.windows)]


def test_gsr1_keeps_the_published_channel_split_and_parameter_names() -> None:
    gsr1 = favit.create_model("favit_b1", global_sr_ratios=EVERY_PATCH)
    published = favit.create_model("favit_b1")
    assert gsr1.config.effective_global_sr_ratios == EVERY_PATCH
    assert gsr1.config.sr_ratios == published.config.sr_ratios == PUBLISHED_SR
    for ours, theirs in zip(gsr1.stages, published.stages, strict=True):
        attn, reference = ours.blocks[0].attn, theirs.blocks[0].attn
        assert attn.groups == reference.groups
        assert [b.dilation for b in attn.windows] == [b.dilation for b in reference.windows]
    assert [len(stage.blocks[0].attn.windows) for stage in gsr1.stages] == [2, 2, 2, 1]
    # same names (checkpoint mapping included); only the reduction conv's kernel shrinks to 1x1
    ours = favit.original_state_dict(gsr1)
    theirs = favit.original_state_dict(published)
    assert list(ours) == list(theirs)
    differing = {key for key in ours if ours[key].shape != theirs[key].shape}
    assert differing == {
        f"block{stage}.{block}.attn.sr.weight"
        for stage, depth in zip((1, 2, 3), (2, 2, 6), strict=True)
        for block in range(depth)
    }


def test_gsr1_geometry_has_every_token_as_a_global_key() -> None:
    published = favit.stage_geometry("favit_b1", 224)
    gsr1 = favit.stage_geometry("favit_b1", 224, global_sr_ratios=EVERY_PATCH)
    assert [s.global_keys for s in gsr1] == [s.N for s in gsr1] == [3136, 784, 196, 49]
    assert (gsr1[0].global_H, gsr1[0].global_W, gsr1[0].global_sr_ratio) == (56, 56, 1)
    assert [s.has_dilated for s in gsr1] == [True, True, True, False]
    for ours, theirs in zip(gsr1, published, strict=True):
        # everything but the global branch's reduction is the published geometry
        assert ours == replace(
            theirs,
            global_sr_ratio=1,
            global_H=theirs.H,
            global_W=theirs.W,
            global_keys=theirs.N,
        )
    # the config option and the stage_geometry argument agree
    config = replace(favit.model_config("favit_b1"), global_sr_ratios=EVERY_PATCH)
    assert favit.stage_geometry(config, 224) == gsr1


def test_gsr1_analytic_counts_at_224_stage_1() -> None:
    s1 = favit.stage_geometry("favit_b1", 224, global_sr_ratios=EVERY_PATCH)[0]
    window = 1 * 3136 * 49  # one head
    dense = favit.attention_score_elements(s1, "dense")
    assert dense == {
        "global": 3136 * 3136,
        "global_sample": 0,
        "global_topu": 0,
        "local": window,
        "dilated": window,
    }
    assert favit.attention_score_elements(s1, "sdpa") == dense
    seed = favit.attention_score_elements(s1, "probsparse_seed")
    assert seed["global_sample"] == 3136 * 25 and seed["global_topu"] == 40 * 3136
    macs = favit.attention_macs(s1, "dense")
    assert macs["global_qk"] == macs["global_av"] == 3136 * 3136 * 8
    assert macs["dilated_qk"] == window * 28


def test_dense_gsr1_name_scores_3136_by_3136_in_the_stage_1_global_branch() -> None:
    """The name's analytic count and the score matrix the built model's global branch computes."""
    name = "favit_b1:dense+gsr1"
    parsed = baselines.parse_favit_name(name)
    s1 = favit.stage_geometry(
        parsed.model, 224, sr_ratios=parsed.sr_ratios, global_sr_ratios=parsed.global_sr_ratios
    )[0]
    assert favit.attention_score_elements(s1, parsed.global_attn)["global"] == 3136 * 3136
    model = baselines.create(name, num_classes=10, img_size=224)
    global_attn = model.stages[0].blocks[0].attn.global_attn
    q, x = torch.randn(1, 3136, 8), torch.randn(1, 3136, 8)
    for forward in (global_attn.forward, global_attn.forward_fast):
        with torch.no_grad(), SoftmaxShapes() as softmax:
            forward(q, x, 56, 56)
        assert softmax.shapes == [(1, 1, 3136, 3136)]


def test_gsr1_geometry_matches_the_forward_pass() -> None:
    config = favit.FaViTConfig(
        embed_dims=(16, 32, 64, 64), depths=(1, 1, 1, 1), global_sr_ratios=EVERY_PATCH
    )
    model = favit.FaViT(config)
    x = torch.randn(1, 3, 96, 128)
    with torch.no_grad():
        for stage, geo in zip(model.stages, favit.stage_geometry(config, (96, 128)), strict=True):
            tokens, height, width = stage.downsample(x)
            attn = stage.blocks[0].attn
            k, v = attn.global_attn.keys_values(tokens[..., : attn.global_width], height, width)
            assert k.shape[2] == v.shape[2] == geo.global_keys == geo.N
            x = stage(x)


def test_gsr1_name_parsing() -> None:
    parsed = baselines.parse_favit_name("favit_b1:probsparse_seed+gsr1+seed_compat+ref")
    assert parsed == baselines.parse_favit_name("favit_b1:probsparse_seed+ref+seed_compat+gsr1")
    assert parsed.gsr1 and not parsed.sr1
    assert parsed.create_options() == {
        "global_attn": "probsparse_seed",
        "global_sr_ratios": EVERY_PATCH,
        "seed_compat": True,
        "impl": "reference",
    }
    model = baselines.create("favit_b0:sdpa+gsr1+ref", num_classes=3, img_size=64)
    assert model.config.global_sr_ratios == EVERY_PATCH and model.config.impl == "reference"
    assert model.config.sr_ratios == PUBLISHED_SR
    assert baselines.info("favit_b1:dense+gsr1").options == {
        "global_attn": "dense",
        "global_sr_ratios": EVERY_PATCH,
    }
    names = baselines.names()
    assert "favit_b1:dense+gsr1" in names and "favit_b1:sdpa+gsr1" in names


@pytest.mark.parametrize("name", ["favit_b1:dense+sr1+gsr1", "favit_b1+gsr1+sr1"])
def test_sr1_and_gsr1_together_are_an_error(name: str) -> None:
    with pytest.raises(ValueError, match=r"'\+sr1' and '\+gsr1' exclude each other"):
        baselines.validate_name(name)
    with pytest.raises(ValueError, match="exclude each other"):
        baselines.create(name)


def test_gsr1_takes_inputs_below_the_published_minimum() -> None:
    """No reduction conv wider than 1, so no map is too small for the global branch."""
    with pytest.raises(baselines.UnsupportedInput):
        baselines.check_input("favit_b0:dense", 28)
    assert baselines.check_input("favit_b0:dense+gsr1", 28) == (28, 28)
    model = baselines.create("favit_b0:dense+gsr1", num_classes=3, img_size=28).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 28, 28)).shape == (1, 3)


@pytest.mark.parametrize(
    ("global_sr_ratios", "needle"),
    [((1, 1, 1), "global_sr_ratios .* must have 4 entries"), ((1, 0, 1, 1), ">= 1")],
)
def test_bad_global_sr_ratios_raise(global_sr_ratios: tuple[int, ...], needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        favit.create_model("favit_b0", global_sr_ratios=global_sr_ratios)
    with pytest.raises(ValueError, match=needle):
        favit.stage_geometry("favit_b0", 224, global_sr_ratios=global_sr_ratios)
