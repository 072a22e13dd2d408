"""Every model the suite compares, by name: FaViT variants, registry entries, any timm or
torchvision model, and the user's own.

Names
-----
- FaViT: ``favit_b0`` .. ``favit_b3`` (``favit.MODEL_NAMES``; the model's default global
  attention), ``favit_bX:<attn>`` for each of ``favit.GLOBAL_ATTN_CHOICES``, and the modifiers
  ``+sr1`` (spatial reduction 1 in every stage: the global branch attends over every token; the
  channel split follows sr, as in the official code, so stages 1-3 also trade the dilated branch
  for a local one twice as wide), ``+gsr1`` (spatial reduction 1 in the global branch only,
  ``global_sr_ratios=(1, 1, 1, 1)``: its keys are all N tokens, through a 1x1 conv and LayerNorm as
  at sr 1, while the channel split and the local and dilated branches stay the published ones;
  ``+sr1`` and ``+gsr1`` exclude each other), ``+seed_compat`` (the seed's v layout) and ``+ref``
  (favit's readable reference implementation instead of its fast one; same math), in any order:
  ``favit_b1:dense+sr1``, ``favit_b1:sdpa+gsr1``, ``favit_b1:probsparse_seed+seed_compat``,
  ``favit_b1+ref``.
- Registry entries (``REFERENCE_MODELS``; one entry each, published figures included), short names
  for models of timm (``pretrained=False``, nothing is downloaded) and torchvision: ``deit_tiny``,
  ``vit_small``, ``swin_t``, ``pvt_v2_b0``, ``pvt_v2_b1``, ``pvt_v2_b2``, ``resnet50``; and the
  configured ones, which have no published figures: ``swin_t_w4``, Swin-T with 4x4 windows
  (``window_size=4``, the usual adaptation to 32-px CIFAR, where Swin-T's 8x8 first map holds no
  whole 7x7 window), and ``vit_tiny_p4``, ViT-Tiny (timm's ``vit_tiny_patch16_224``, the DeiT-Tiny
  architecture) with 4x4 patches (``patch_size=4``), for 32-px inputs: 8x8 = 64 tokens, as 16x16
  patches give a 224 image 14x14 = 196. torchvision's ResNet-50 is the reference definition (v1.5,
  stride in the 3x3 conv) whose published 25.6M params / 4.1 GMACs come with the same code
  (``ResNet50_Weights.IMAGENET1K_V1.meta``), so ours and the published figure count one model.
- ``timm:<name>``, ``tv:<name>``, ``package.module:factory``: see ``baselines.libraries``.
- ``expand_name`` turns a wildcard (``timm:convnext_*``, ``tv:resnet*``, ``pvt_v2_*``) into the
  matching names and ``@FILE`` into the names in FILE, one per line.

Every model has a ``model_id`` (``info``): the library-qualified name it is built from
(``timm:pvt_v2_b1``, ``tv:resnet50``, ``favit:favit_b1``, ``mypkg.nets:MyNet``), with the options
a registry entry sets in parentheses. A size a model cannot take raises ``UnsupportedInput``:
registry entries and FaViT by their rules, before anything is built; other models by a forward
pass at batch 1 right after building (``baselines.libraries``).
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

import favit
from baselines.libraries import (
    TIMM_PREFIX,
    TV_PREFIX,
    UnsupportedInput,
    build_factory,
    build_timm,
    build_tv,
    check_timm,
    check_tv,
    has_wildcard,
    is_factory_name,
    load_factory,
    probe_input,
    timm_family,
    timm_matches,
    tv_family,
    tv_matches,
)

ImgSize = int | tuple[int, int]

FAVIT_MODELS: tuple[str, ...] = tuple(favit.MODEL_NAMES)
FAVIT_MODIFIERS = ("sr1", "gsr1", "seed_compat", "ref")
FAVIT_STAGES = 4  # every FaViT variant has four stages
# a library's name -> the prefix of its models' names and model ids
LIBRARY_PREFIXES = {"timm": TIMM_PREFIX, "torchvision": TV_PREFIX}


@dataclass(frozen=True)
class PublishedFigures:
    """Parameters and compute at 224x224, 1000 classes, as published.

    ``params_printed`` (millions) and ``gmacs_printed`` are the figures exactly as the source
    prints them ("4.0", not 4.0), so their precision survives: "4.0" is a rounding to +-0.05.
    ``params_m`` and ``gmacs`` are their values. ``gmacs`` is in multiply-accumulates (most vision
    papers print MACs under the label "FLOPs"); ``convention`` says what the source counted and
    how; ``note`` (may be empty) explains a known gap between the figure and the model it names.
    """

    params_printed: str
    gmacs_printed: str
    source: str
    convention: str
    note: str = ""

    def __post_init__(self) -> None:
        for printed in (self.params_printed, self.gmacs_printed):
            if not isinstance(printed, str) or not re.fullmatch(r"[0-9]+(\.[0-9]+)?", printed):
                raise ValueError(
                    f"a published figure is a printed decimal like '4.0', got {printed!r}"
                )

    @property
    def params_m(self) -> float:
        return float(self.params_printed)

    @property
    def gmacs(self) -> float:
        return float(self.gmacs_printed)


@dataclass(frozen=True)
class ModelInfo:
    """What a name builds: family, library and exact model id, options, published figures."""

    name: str
    # favit | vit | swin | pvt_v2 | resnet for registry entries; the defining module otherwise
    # (timm's convnext, vision_transformer...; torchvision's mobilenetv3...); user for factories
    family: str
    library: str  # favit | timm | torchvision | user
    model_id: str  # e.g. "timm:swin_tiny_patch4_window7_224", "tv:resnet50", "favit:favit_b1"
    published: PublishedFigures | None  # None: a model with no published figures (swin_t_w4)
    options: dict[str, object] = field(default_factory=dict)  # FaViT create_model options

    @property
    def source(self) -> str:
        return self.model_id


_FAVIT_CONVENTION = (
    "MACs, printed as 'FLOPs (G)': mmcv get_model_complexity_info module hooks (conv, linear, "
    "norms) plus a hand-written attention term 2*h*w*49*(14C/16) + 2*h*w*(h/r)*(w/r)*(2C/16) per "
    "block (official get_flops.py)"
)
_FAVIT_SOURCE = (
    "FaViT official README, q2479036243/FaViT (FaViT/README.md); paper 'Factorization "
    "Transformer: Modeling Long Range Dependency with Local Window Cost'"
)
_PVT_CONVENTION = (
    "MACs, printed as 'FLOPs': mmcv get_model_complexity_info plus a hand-written spatial-"
    "reduction attention term (PVT repo get_flops.py)"
)
_PVT_SOURCE = "PVT v2 paper (Wang et al., arXiv:2106.13797), Table 1 / image classification table"

FAVIT_PUBLISHED: dict[str, PublishedFigures] = {
    "favit_b0": PublishedFigures("3.4", "0.6", _FAVIT_SOURCE, _FAVIT_CONVENTION),
    "favit_b1": PublishedFigures("13", "2.4", _FAVIT_SOURCE, _FAVIT_CONVENTION),
    "favit_b2": PublishedFigures("24", "4.5", _FAVIT_SOURCE, _FAVIT_CONVENTION),
    "favit_b3": PublishedFigures("48", "8.5", _FAVIT_SOURCE, _FAVIT_CONVENTION),
}


def as_hw(img_size: ImgSize) -> tuple[int, int]:
    """``224`` or ``(224, 224)`` -> ``(H, W)``; ValueError for anything else."""
    if isinstance(img_size, int) and not isinstance(img_size, bool):
        img_size = (img_size, img_size)
    if (
        not isinstance(img_size, (tuple, list))
        or len(img_size) != 2
        or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in img_size)
    ):
        raise ValueError(
            f"img_size must be a positive int or (H, W) of positive ints, got {img_size!r}"
        )
    return int(img_size[0]), int(img_size[1])


# --- input-size rules: None when the size is fine, else the reason --------------------------------


def _patch_rule(patch: int) -> Callable[[str, tuple[int, int]], str | None]:
    def rule(name: str, hw: tuple[int, int]) -> str | None:
        if hw[0] % patch or hw[1] % patch:
            return f"{name} needs H and W divisible by its patch size {patch}, got {hw[0]}x{hw[1]}"
        return None

    return rule


def _swin_rule(name: str, hw: tuple[int, int], patch: int = 4, window: int = 7) -> str | None:
    """Swin: patch 4 then three 2x patch merges, ``window`` x ``window`` windows in every stage.

    Every stage's feature map must be a whole number of windows, or no larger than one window
    (timm then shrinks the window to the map). Recent timm pads other maps with zeros (and older
    timm fails): that pads extra work into the count, so such sizes are refused rather than
    measured as a different model.
    """
    if hw[0] % (patch * 8) or hw[1] % (patch * 8):
        return f"{name} needs H and W divisible by {patch * 8} (patch {patch}, three 2x merges), got {hw[0]}x{hw[1]}"
    maps = [(hw[0] // (patch * 2**i), hw[1] // (patch * 2**i)) for i in range(4)]
    bad = [
        f"{h}x{w}" for h, w in maps if (h % window and h > window) or (w % window and w > window)
    ]
    if bad:
        return (
            f"{name} at {hw[0]}x{hw[1]} has stage maps {', '.join(f'{h}x{w}' for h, w in maps)}; "
            f"not multiples of its window {window}: {', '.join(bad)} (sizes that work: multiples of {patch * 8 * window}, or stage maps within one window)"
        )
    return None


def _swin_w4_rule(name: str, hw: tuple[int, int]) -> str | None:
    return _swin_rule(name, hw, window=4)


def _pvt_v2_rule(
    name: str, hw: tuple[int, int], sr_ratios: tuple[int, ...] = (8, 4, 2, 1)
) -> str | None:
    """PVT v2: overlapping patch embeds (k7 s4 p3, then k3 s2 p1) give maps ceil(H/4), ceil(H/8), ...

    Spatial reduction is a conv with kernel = stride = sr, so each stage's map must be >= sr.
    """
    h, w = math.ceil(hw[0] / 4), math.ceil(hw[1] / 4)
    for stage, sr in enumerate(sr_ratios, start=1):
        if h < sr or w < sr:
            return (
                f"{name} at {hw[0]}x{hw[1]}: stage {stage} map {h}x{w} is smaller than its "
                f"spatial-reduction kernel {sr}x{sr} (needs H, W >= {4 * (sr_ratios[0] - 1) + 1})"
            )
        h, w = math.ceil(h / 2), math.ceil(w / 2)
    return None


@dataclass(frozen=True)
class ReferenceModel:
    """A registry entry: a short name for a timm or torchvision model, taken as is or configured.

    ``options`` are further constructor keywords (timm ``create_model`` kwargs); ``size_rule``
    refuses the sizes the model cannot take before anything is built (None: any size its forward
    pass takes, checked after building); ``published`` are its published figures (None: none,
    as for a configured model); ``default_matrix`` says whether the suites' default matrices
    measure it (False for a model configured for another input size than theirs).
    """

    family: str
    library: str  # timm | torchvision
    model_id: str  # the library's own name
    published: PublishedFigures | None = None
    options: dict[str, object] = field(default_factory=dict)
    size_rule: Callable[[str, tuple[int, int]], str | None] | None = None
    default_matrix: bool = True


REFERENCE_MODELS: dict[str, ReferenceModel] = {
    "deit_tiny": ReferenceModel(
        "vit",
        "timm",
        "deit_tiny_patch16_224",
        PublishedFigures(
            "5.7",
            "1.3",
            "DeiT-Ti as tabulated by the Swin and PVT v2 papers (arXiv:2103.14030, "
            "arXiv:2106.13797); timm model card deit_tiny_patch16_224.fb_in1k: 5.7M, 1.3 GMACs",
            "MACs, printed as 'FLOPs'; includes the attention matmuls",
        ),
        size_rule=_patch_rule(16),
    ),
    "vit_small": ReferenceModel(
        "vit",
        "timm",
        "vit_small_patch16_224",
        PublishedFigures(
            "22",
            "4.6",
            "ViT-S/16 = DeiT-S architecture, 22M / 4.6G in the DeiT-S rows of the Swin paper "
            "(arXiv:2103.14030, Table 1a) and PVT v2 paper",
            "MACs, printed as 'FLOPs'; includes the attention matmuls (timm's card, 4.3 GMACs, "
            "leaves them out)",
        ),
        size_rule=_patch_rule(16),
    ),
    "vit_tiny_p4": ReferenceModel(
        "vit",
        "timm",
        "vit_tiny_patch16_224",
        options={"patch_size": 4},
        size_rule=_patch_rule(4),
        default_matrix=False,
    ),
    "swin_t": ReferenceModel(
        "swin",
        "timm",
        "swin_tiny_patch4_window7_224",
        PublishedFigures(
            "28",
            "4.5",
            "Swin Transformer paper (Liu et al., arXiv:2103.14030), Table 1a, Swin-T",
            "MACs, printed as 'FLOPs'; includes the window-attention matmuls",
        ),
        size_rule=_swin_rule,
    ),
    "swin_t_w4": ReferenceModel(
        "swin",
        "timm",
        "swin_tiny_patch4_window7_224",
        options={"window_size": 4},
        size_rule=_swin_w4_rule,
    ),
    "pvt_v2_b0": ReferenceModel(
        "pvt_v2",
        "timm",
        "pvt_v2_b0",
        PublishedFigures(
            "3.4",
            "0.6",
            _PVT_SOURCE,
            _PVT_CONVENTION,
            note=(
                "the PVT v2 paper's table prints 3.4M params for B0, the official repository's "
                "README (whai362/PVT, classification) 3.7M for the released B0, whose definition "
                "timm's pvt_v2_b0 ports; the params ratio is the paper's figure against the "
                "released model, not a different model"
            ),
        ),
        size_rule=_pvt_v2_rule,
    ),
    "pvt_v2_b1": ReferenceModel(
        "pvt_v2",
        "timm",
        "pvt_v2_b1",
        PublishedFigures("14.0", "2.1", _PVT_SOURCE, _PVT_CONVENTION),
        size_rule=_pvt_v2_rule,
    ),
    "pvt_v2_b2": ReferenceModel(
        "pvt_v2",
        "timm",
        "pvt_v2_b2",
        PublishedFigures("25.4", "4.0", _PVT_SOURCE, _PVT_CONVENTION),
        size_rule=_pvt_v2_rule,
    ),
    "resnet50": ReferenceModel(
        "resnet",
        "torchvision",
        "resnet50",
        PublishedFigures(
            "25.6",
            "4.1",
            "torchvision ResNet50_Weights.IMAGENET1K_V1 meta: num_params 25,557,032, _ops 4.089 "
            "('GFLOPS' in the docs)",
            "MACs, printed as 'GFLOPS' (one multiply-add = one op)",
        ),
    ),
}
# every published figure by name (FaViT's and the registry entries'), derived from the above
PUBLISHED: dict[str, PublishedFigures] = {
    **FAVIT_PUBLISHED,
    **{name: ref.published for name, ref in REFERENCE_MODELS.items() if ref.published},
}
# the model every report's ratios are taken to: the PVT v2 FaViT grew from, at FaViT-B1's size
RATIO_BASELINE = "pvt_v2_b1"


# --- FaViT names ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FavitName:
    """A parsed FaViT name: ``favit_b1:dense+sr1`` -> model favit_b1, global_attn dense, sr1."""

    model: str
    global_attn: str | None  # None: the model's default
    sr1: bool = False  # +sr1: sr_ratios 1 in every stage (channel split included)
    seed_compat: bool = False
    reference_impl: bool = False  # +ref: favit's impl="reference"
    gsr1: bool = False  # +gsr1: the global branch's reduction 1 in every stage, split published

    @property
    def sr_ratios(self) -> tuple[int, ...] | None:
        """The ``sr_ratios`` option of ``favit.create_model`` / ``stage_geometry`` (None: published)."""
        return (1,) * FAVIT_STAGES if self.sr1 else None

    @property
    def global_sr_ratios(self) -> tuple[int, ...] | None:
        """The ``global_sr_ratios`` option (None: the global branch follows ``sr_ratios``)."""
        return (1,) * FAVIT_STAGES if self.gsr1 else None

    def create_options(self) -> dict[str, object]:
        """Keyword arguments for ``favit.create_model`` (beside the name and num_classes)."""
        options: dict[str, object] = {}
        if self.global_attn is not None:
            options["global_attn"] = self.global_attn
        if self.sr_ratios is not None:
            options["sr_ratios"] = self.sr_ratios
        if self.global_sr_ratios is not None:
            options["global_sr_ratios"] = self.global_sr_ratios
        if self.seed_compat:
            options["seed_compat"] = True
        if self.reference_impl:
            options["impl"] = "reference"
        return options


_FAVIT_RE = re.compile(r"^(favit_b[0-9]+)(?::([a-z_]+))?((?:\+[a-z_0-9]+)*)$")


def _global_attn_choices() -> tuple[str, ...]:
    return tuple(favit.GLOBAL_ATTN_CHOICES)


def parse_favit_name(name: str) -> FavitName:
    """Parse ``favit_bX[:<global_attn>][+sr1|+gsr1][+seed_compat][+ref]``; ValueError naming the bad part."""
    match = _FAVIT_RE.match(name)
    if match is None or match.group(1) not in FAVIT_MODELS:
        raise ValueError(_unknown(name))
    model, attn, modifier_text = match.groups()
    if attn is not None and attn not in _global_attn_choices():
        raise ValueError(
            f"unknown global attention {attn!r} in model {name!r}; valid: {', '.join(_global_attn_choices())}"
        )
    modifiers = [m for m in modifier_text.split("+") if m]
    for modifier in modifiers:
        if modifier not in FAVIT_MODIFIERS:
            raise ValueError(
                f"unknown modifier '+{modifier}' in model {name!r}; valid: "
                + ", ".join(f"+{m}" for m in FAVIT_MODIFIERS)
            )
    if len(set(modifiers)) != len(modifiers):
        raise ValueError(f"repeated modifier in model {name!r}")
    if "sr1" in modifiers and "gsr1" in modifiers:
        raise ValueError(
            f"'+sr1' and '+gsr1' exclude each other in model {name!r}: +sr1 sets the reduction "
            "(and so the channel split) to 1 in every stage, +gsr1 only the global branch's"
        )
    return FavitName(
        model,
        attn,
        sr1="sr1" in modifiers,
        seed_compat="seed_compat" in modifiers,
        reference_impl="ref" in modifiers,
        gsr1="gsr1" in modifiers,
    )


def is_favit(name: str) -> bool:
    """A FaViT name (``favit_...``, not a dotted ``package.module:factory``)."""
    return name.startswith("favit_") and "." not in name.partition(":")[0]


# --- public API -----------------------------------------------------------------------------------


def names() -> list[str]:
    """Canonical names: bare FaViT models, each ``:variant``, +sr1 and +gsr1 forms of dense/sdpa,
    registry entries. (Any timm or torchvision model and any factory is a name too.)"""
    attn = _global_attn_choices()
    out: list[str] = []
    for model in FAVIT_MODELS:
        out.append(model)
        out += [f"{model}:{a}" for a in attn]
        out += [f"{model}:{a}+{m}" for m in ("sr1", "gsr1") for a in ("dense", "sdpa") if a in attn]
    return out + list(REFERENCE_MODELS)


def default_reference_names() -> list[str]:
    """The registry entries the suites' default matrices measure (``default_matrix``)."""
    return [name for name, ref in REFERENCE_MODELS.items() if ref.default_matrix]


def _unknown(name: object) -> str:
    return (
        f"unknown model {name!r}; valid: {', '.join(list(FAVIT_MODELS) + list(REFERENCE_MODELS))}, "
        f"favit_bX:<{'|'.join(_global_attn_choices())}>[+sr1|+gsr1][+seed_compat][+ref], "
        "timm:<name>, tv:<name>, package.module:factory (wildcards like timm:convnext_*; @FILE "
        "for a file of names)"
    )


def validate_name(name: str) -> str:
    """``name`` when it is buildable, else ValueError (one line, saying what is valid).

    A factory's module is imported to find the factory (its top level runs)."""
    if not isinstance(name, str):
        raise ValueError(_unknown(name))
    if is_favit(name):
        parse_favit_name(name)
    elif name in REFERENCE_MODELS:
        pass
    elif name.startswith(TIMM_PREFIX):
        check_timm(name.removeprefix(TIMM_PREFIX))
    elif name.startswith(TV_PREFIX):
        check_tv(name.removeprefix(TV_PREFIX))
    elif is_factory_name(name):
        load_factory(name)
    else:
        raise ValueError(_unknown(name))
    return name


def expand_name(text: str) -> list[str]:
    """The names one command-line value stands for: ``@FILE`` -> the names in FILE (one per line,
    blank lines and ``#`` comments skipped, each expanded), a wildcard -> the matching names
    (``timm:convnext_*`` over timm's models, ``tv:resnet*`` over torchvision's, ``pvt_v2_*`` over
    ``names()``), anything else -> itself. ValueError (one line) for an unreadable file or a
    wildcard that matches nothing."""
    text = text.strip()
    if text.startswith("@"):
        return _names_file(Path(text[1:]))
    if not has_wildcard(text):
        return [text]
    if text.startswith(TIMM_PREFIX):
        matches = [TIMM_PREFIX + n for n in timm_matches(text.removeprefix(TIMM_PREFIX))]
    elif text.startswith(TV_PREFIX):
        matches = [TV_PREFIX + n for n in tv_matches(text.removeprefix(TV_PREFIX))]
    else:
        matches = [n for n in names() if fnmatch.fnmatchcase(n, text)]
    if not matches:
        raise ValueError(
            f"{text!r} matches no model; wildcards match timm:<pattern> (timm.list_models), "
            "tv:<pattern> (torchvision classification models) or the registry's names"
        )
    return matches


def _names_file(path: Path) -> list[str]:
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"@{path}: cannot read the names file ({error})") from None
    out: list[str] = []
    for number, line in enumerate(lines, start=1):
        name = line.split("#", 1)[0].strip()
        if not name:
            continue
        if name.startswith("@"):
            raise ValueError(
                f"@{path}, line {number}: {name!r}; a names file holds names, not @FILE"
            )
        out += expand_name(name)
    if not out:
        raise ValueError(f"@{path}: no model names in it (one name per line)")
    return out


def info(name: str) -> ModelInfo:
    """Family, library, exact model id, FaViT options and published figures for ``name``."""
    validate_name(name)
    if is_favit(name):
        parsed = parse_favit_name(name)
        return ModelInfo(
            name=name,
            family="favit",
            library="favit",
            model_id=f"favit:{parsed.model}",
            published=FAVIT_PUBLISHED[parsed.model],
            options=parsed.create_options(),
        )
    if name in REFERENCE_MODELS:
        ref = REFERENCE_MODELS[name]
        model_id = LIBRARY_PREFIXES[ref.library] + ref.model_id
        if ref.options:
            model_id += "(" + ", ".join(f"{k}={v}" for k, v in ref.options.items()) + ")"
        return ModelInfo(name, ref.family, ref.library, model_id, ref.published)
    if name.startswith(TIMM_PREFIX):
        return ModelInfo(name, timm_family(name.removeprefix(TIMM_PREFIX)), "timm", name, None)
    if name.startswith(TV_PREFIX):
        return ModelInfo(name, tv_family(name.removeprefix(TV_PREFIX)), "torchvision", name, None)
    return ModelInfo(name, "user", "user", name, None)


def check_input(name: str, img_size: ImgSize) -> tuple[int, int]:
    """``(H, W)`` when ``name`` can take ``img_size`` as far as its rules tell before building
    (FaViT's geometry, a registry entry's ``size_rule``), else ``UnsupportedInput`` with the
    reason. Other models are checked by ``create``, which runs them once."""
    validate_name(name)
    hw = as_hw(img_size)
    if is_favit(name):
        parsed = parse_favit_name(name)
        try:
            favit.stage_geometry(
                parsed.model,
                hw,
                sr_ratios=parsed.sr_ratios,
                global_sr_ratios=parsed.global_sr_ratios,
            )
        except ValueError as error:
            raise UnsupportedInput(f"{name} at {hw[0]}x{hw[1]}: {error}") from error
        return hw
    rule = REFERENCE_MODELS[name].size_rule if name in REFERENCE_MODELS else None
    reason = rule(name, hw) if rule is not None else None
    if reason is not None:
        raise UnsupportedInput(reason)
    return hw


def create(name: str, num_classes: int = 1000, img_size: ImgSize = 224) -> nn.Module:
    """Build ``name`` (random init, nothing downloaded) for ``img_size`` inputs, in train mode.

    Input (B, 3, H, W) -> logits (B, num_classes). Raises ValueError for a bad name and
    UnsupportedInput when the model cannot take ``img_size``: by its rules before building, else
    by one forward pass at batch 1 on the CPU right after (``baselines.libraries.probe_input``).
    """
    hw = check_input(name, img_size)
    if is_favit(name):
        parsed = parse_favit_name(name)
        return favit.create_model(parsed.model, num_classes=num_classes, **parsed.create_options())
    ref = REFERENCE_MODELS.get(name)
    if ref is not None and ref.library == "timm":
        model = build_timm(ref.model_id, num_classes, hw, ref.options)
    elif ref is not None:
        model = build_tv(ref.model_id, num_classes, hw)
    elif name.startswith(TIMM_PREFIX):
        model = build_timm(name.removeprefix(TIMM_PREFIX), num_classes, hw)
    elif name.startswith(TV_PREFIX):
        model = build_tv(name.removeprefix(TV_PREFIX), num_classes, hw)
    else:
        model = build_factory(name, num_classes, hw)
    if ref is None or ref.size_rule is None:
        probe_input(name, model, hw, num_classes)
    return model.train()
