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


# --- any model by name: timm:, tv:, package.module:factory, wildcards, @FILE -------------------


def test_favit_names_come_from_the_model_configs() -> None:
    assert tuple(favit.MODEL_NAMES) == baselines.FAVIT_MODELS
    assert set(baselines.FAVIT_PUBLISHED) == set(favit.MODEL_NAMES)


def test_a_registry_entry_holds_its_published_figures() -> None:
    """Adding a baseline is one entry: PUBLISHED is derived from the entries and FaViT's."""
    expected = {**baselines.FAVIT_PUBLISHED}
    expected |= {n: r.published for n, r in baselines.REFERENCE_MODELS.items() if r.published}
    assert expected == baselines.PUBLISHED
    assert (
        baselines.info("pvt_v2_b2").published is baselines.REFERENCE_MODELS["pvt_v2_b2"].published
    )


def test_vit_tiny_p4_is_vit_tiny_with_4x4_patches_for_32px() -> None:
    adapted = baselines.info("vit_tiny_p4")
    assert (adapted.family, adapted.published) == ("vit", None)
    assert adapted.model_id == "timm:vit_tiny_patch16_224(patch_size=4)"
    assert "vit_tiny_p4" not in baselines.default_reference_names()
    model = baselines.create("vit_tiny_p4", num_classes=10, img_size=32)
    assert model.patch_embed.proj.kernel_size == (4, 4)
    assert model.patch_embed.num_patches == 64  # 8x8 patches of a 32-px image
    assert (model.embed_dim, len(model.blocks), model.blocks[0].attn.num_heads) == (192, 12, 3)
    with pytest.raises(baselines.UnsupportedInput, match="patch size 4"):
        baselines.create("vit_tiny_p4", img_size=30)


@pytest.mark.parametrize(
    ("name", "family", "library", "model_id"),
    [
        ("timm:convnext_atto", "convnext", "timm", "timm:convnext_atto"),
        (
            "timm:vit_tiny_patch16_224.augreg_in21k",
            "vision_transformer",
            "timm",
            "timm:vit_tiny_patch16_224.augreg_in21k",
        ),
        ("tv:mobilenet_v3_small", "mobilenetv3", "torchvision", "tv:mobilenet_v3_small"),
        ("resnet50", "resnet", "torchvision", "tv:resnet50"),
        ("favit_b1:sdpa", "favit", "favit", "favit:favit_b1"),
    ],
)
def test_info_of_library_names(name: str, family: str, library: str, model_id: str) -> None:
    model_info = baselines.info(name)
    assert (model_info.family, model_info.library, model_info.model_id) == (
        family,
        library,
        model_id,
    )
    if name.startswith(("timm:", "tv:")):  # no published figures: absent
        assert model_info.published is None


def test_wildcards_expand_to_the_matching_names() -> None:
    import timm

    assert baselines.expand_name("timm:convnext_atto*") == [
        "timm:" + n for n in timm.list_models("convnext_atto*")
    ]
    assert "timm:convnext_atto_ols" in baselines.expand_name("timm:convnext_atto*")
    assert baselines.expand_name("tv:resnet1?") == ["tv:resnet18"]
    assert baselines.expand_name("pvt_v2_b[01]") == ["pvt_v2_b0", "pvt_v2_b1"]
    assert baselines.expand_name(" favit_b1:sdpa ") == ["favit_b1:sdpa"]
    with pytest.raises(ValueError, match="'timm:zz_no_such_\\*' matches no model"):
        baselines.expand_name("timm:zz_no_such_*")


def test_a_names_file_lists_one_name_per_line(tmp_path) -> None:
    names = tmp_path / "models.txt"
    names.write_text("# compared models\npvt_v2_b1\n\n  tv:resnet1?  # torchvision\nfavit_b0\n")
    assert baselines.expand_name(f"@{names}") == ["pvt_v2_b1", "tv:resnet18", "favit_b0"]
    (tmp_path / "nested.txt").write_text(f"@{names}\n")
    with pytest.raises(ValueError, match=r"line 1: .* a names file holds names, not @FILE"):
        baselines.expand_name(f"@{tmp_path / 'nested.txt'}")
    (tmp_path / "empty.txt").write_text("# nothing\n")
    with pytest.raises(ValueError, match="no model names in it"):
        baselines.expand_name(f"@{tmp_path / 'empty.txt'}")


def test_library_models_build_at_the_size_asked_for() -> None:
    vit = baselines.create("timm:vit_tiny_patch16_224", num_classes=5, img_size=(32, 48))
    assert vit.patch_embed.img_size == (32, 48) and vit.head.out_features == 5
    tv_vit = baselines.create("tv:vit_b_16", num_classes=4, img_size=64)
    assert tv_vit.image_size == 64
    # torchvision's GoogLeNet and Inception v3 give the main logits only, in training too
    googlenet = baselines.create("tv:googlenet", num_classes=3, img_size=64)
    assert googlenet.training and googlenet(torch.randn(2, 3, 64, 64)).shape == (2, 3)


@pytest.mark.parametrize(
    ("name", "size", "reason"),
    [
        ("timm:efficientformer_l1", 32, "at 32x32: its forward pass fails"),
        ("tv:maxvit_t", 32, "at 32x32: cannot be built at that size"),
        ("tv:inception_v3", 64, "at 64x64: its forward pass fails"),
    ],
)
def test_a_size_a_library_model_cannot_take_is_unsupported(name: str, size: int, reason: str):
    with pytest.raises(baselines.UnsupportedInput, match=reason):
        baselines.create(name, img_size=size)


USER_FACTORIES = """
from torch import nn

def plain(num_classes, img_size):
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * img_size[0] * img_size[1], num_classes))

def no_arguments():
    return nn.Sequential(nn.Flatten(), nn.LazyLinear(10))

def not_a_module(num_classes):
    return "a string"

IMPORTED = True
"""


@pytest.fixture
def factories(tmp_path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "user_factories.py").write_text(USER_FACTORIES)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(__import__("sys").modules, "user_factories", raising=False)
    return "user_factories"


def test_a_factory_gets_num_classes_and_img_size_where_it_names_them(factories: str) -> None:
    model = baselines.create(f"{factories}:plain", num_classes=6, img_size=(8, 4))
    assert model[1].in_features == 3 * 8 * 4 and model[1].out_features == 6
    assert baselines.info(f"{factories}:plain").model_id == f"{factories}:plain"
    # a factory without num_classes: its logits must still be what the suites feed the loss
    with pytest.raises(baselines.UnsupportedInput, match=r"returns \(1, 10\) for one image"):
        baselines.create(f"{factories}:no_arguments", num_classes=1000, img_size=8)
    fits = baselines.create(f"{factories}:no_arguments", num_classes=10, img_size=8)
    assert fits(torch.zeros(2, 3, 8, 8)).shape == (2, 10)
    with pytest.raises(TypeError, match=r"returned a str, not an nn\.Module"):
        baselines.create(f"{factories}:not_a_module", img_size=8)
    with pytest.raises(ValueError, match="'IMPORTED' is a bool, not a callable"):
        baselines.validate_name(f"{factories}:IMPORTED")
