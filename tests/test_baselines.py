"""baselines: every compared model builds and runs at its supported sizes; bad names and sizes fail clearly."""

from __future__ import annotations

import pytest
import torch

import baselines
import favit

# (name, sizes): the smallest sizes that exercise each model's paths; ViT/Swin once at 224.
SUPPORTED = [
    ("deit_tiny", [224, (32, 48)]),
    ("vit_small", [32]),
    ("swin_t", [224]),
    ("swin_t_w4", [32, 64]),
    ("pvt_v2_b0", [32, (32, 64)]),
    ("pvt_v2_b1", [32]),
    ("pvt_v2_b2", [32]),
    ("resnet50", [32]),
    ("favit_b0", [32]),
    ("favit_b0:dense+sr1", [32]),
    ("favit_b0:sdpa+seed_compat", [(32, 48)]),
    ("favit_b0:probsparse_seed+seed_compat+sr1", [32]),
]

UNSUPPORTED = [
    ("swin_t", 64, "window 7"),
    ("swin_t", 100, "divisible by 32"),
    ("swin_t_w4", 224, "window 4: 14x14, 7x7"),
    ("deit_tiny", 100, "patch size 16"),
    ("pvt_v2_b0", 28, "spatial-reduction kernel 8x8"),
    ("favit_b0", 28, "favit_b0 at 28x28"),
]


@pytest.mark.parametrize(("name", "sizes"), SUPPORTED)
def test_builds_and_runs_forward(name: str, sizes: list) -> None:
    for size in sizes:
        height, width = baselines.as_hw(size)
        model = baselines.create(name, num_classes=7, img_size=size).eval()
        with torch.no_grad():
            logits = model(torch.randn(1, 3, height, width))
        assert logits.shape == (1, 7)
        assert torch.isfinite(logits).all()


def test_favit_options_reach_the_model() -> None:
    model = baselines.create("favit_b0:dense+sr1", num_classes=3, img_size=32)
    reference = favit.create_model(
        "favit_b0", num_classes=3, global_attn="dense", sr_ratios=(1, 1, 1, 1)
    )
    assert [tuple(p.shape) for p in model.parameters()] == [
        tuple(p.shape) for p in reference.parameters()
    ]
    # sr1 drops the spatial-reduction conv, so the parameter shapes differ from the published design
    default = favit.create_model("favit_b0", num_classes=3, global_attn="dense")
    assert [tuple(p.shape) for p in model.parameters()] != [
        tuple(p.shape) for p in default.parameters()
    ]


@pytest.mark.parametrize(("name", "size", "reason"), UNSUPPORTED)
def test_unsupported_size_raises_with_reason(name: str, size: int, reason: str) -> None:
    with pytest.raises(baselines.UnsupportedInput, match=reason):
        baselines.create(name, img_size=size)


def test_unsupported_size_is_refused_before_building(monkeypatch: pytest.MonkeyPatch) -> None:
    import timm

    def must_not_build(*args, **kwargs):
        raise AssertionError("model built for an unsupported size")

    monkeypatch.setattr(timm, "create_model", must_not_build)
    with pytest.raises(baselines.UnsupportedInput):
        baselines.create("swin_t", img_size=256)


@pytest.mark.parametrize(
    ("name", "listed"),
    [
        ("vit", "deit_tiny"),
        ("favit_b9", "favit_b3"),
        ("favit_b1:flash", "probsparse_seed, probsparse, dense, sdpa"),
        ("favit_b1:dense+sr2", "+sr1, +gsr1, +seed_compat, +ref"),
        ("favit_b1:dense+sr1+sr1", "repeated"),
    ],
)
def test_bad_names_raise_value_error_listing_choices(name: str, listed: str) -> None:
    with pytest.raises(ValueError, match=repr(name)[1:-1].replace("+", r"\+")) as error:
        baselines.validate_name(name)
    assert listed in str(error.value)
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError):
        baselines.create(name)


def test_bad_img_size_raises_value_error() -> None:
    with pytest.raises(ValueError, match="img_size"):
        baselines.create("resnet50", img_size=(0, 32))


def test_names_cover_every_variant_and_baseline() -> None:
    names = baselines.names()
    assert len(names) == len(set(names))
    for model in favit.MODEL_NAMES:
        assert model in names
        for attn in favit.GLOBAL_ATTN_CHOICES:
            assert f"{model}:{attn}" in names
        assert f"{model}:dense+sr1" in names and f"{model}:sdpa+sr1" in names
    for reference in (
        "deit_tiny",
        "vit_small",
        "swin_t",
        "pvt_v2_b0",
        "pvt_v2_b1",
        "pvt_v2_b2",
        "resnet50",
    ):
        assert reference in names
    for name in names:
        baselines.validate_name(name)


def test_modifier_order_does_not_matter() -> None:
    a = baselines.parse_favit_name("favit_b2:probsparse+sr1+seed_compat")
    b = baselines.parse_favit_name("favit_b2:probsparse+seed_compat+sr1")
    assert a == b
    assert a.create_options() == {
        "global_attn": "probsparse",
        "sr_ratios": (1, 1, 1, 1),
        "seed_compat": True,
    }
    assert baselines.parse_favit_name("favit_b2").create_options() == {}


def test_info_names_source_and_published_figures() -> None:
    swin = baselines.info("swin_t")
    assert (swin.family, swin.library, swin.model_id) == (
        "swin",
        "timm",
        "timm:swin_tiny_patch4_window7_224",
    )
    variant = baselines.info("favit_b3:sdpa+sr1")
    assert variant.model_id == "favit:favit_b3"
    assert variant.published == baselines.info("favit_b3").published
    for name in baselines.names():
        published = baselines.info(name).published
        if name in ("swin_t_w4", "vit_tiny_p4"):  # configured models, never published
            assert published is None
            continue
        assert published.params_m > 0 and published.gmacs > 0
        assert published.source and "MACs" in published.convention


def test_swin_t_w4_is_swin_t_with_4x4_windows() -> None:
    adapted = baselines.info("swin_t_w4")
    assert adapted.model_id == "timm:swin_tiny_patch4_window7_224(window_size=4)"
    model = baselines.create("swin_t_w4", num_classes=10, img_size=32)
    # windows as timm sizes them: 4x4 on the 8x8 and 4x4 maps, the whole map below that
    windows = [block.window_size for stage in model.layers for block in stage.blocks]
    assert windows == [(4, 4)] * 4 + [(2, 2)] * 6 + [(1, 1)] * 2
    # same weights as Swin-T but the relative-position tables, which shrink with the window
    swin = baselines.create("swin_t", num_classes=10, img_size=224)
    shapes = {n: p.shape for n, p in swin.named_parameters() if "relative_position" not in n}
    assert shapes == {
        n: p.shape for n, p in model.named_parameters() if "relative_position" not in n
    }


def test_resnet50_published_figures_match_torchvision_card() -> None:
    from torchvision.models import ResNet50_Weights

    meta = ResNet50_Weights.IMAGENET1K_V1.meta
    published = baselines.info("resnet50").published
    assert round(meta["num_params"] / 1e6, 1) == published.params_m
    assert round(meta["_ops"], 1) == published.gmacs
    model = baselines.create("resnet50")
    assert sum(p.numel() for p in model.parameters()) == meta["num_params"]
