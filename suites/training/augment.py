"""Batched augmentation on the training device, every random draw from one ``torch.Generator``.

The pipeline reproduces what ``timm.data.create_transform(is_training=True, ...)`` does per image
in PIL (the seed's training transform), as tensor ops over a whole batch:

1. crop + resize to the recipe's size: timm's ``RandomResizedCrop`` (scale 0.08-1, ratio 3/4-4/3,
   bicubic), or a random crop with zero padding (``pad``, the usual CIFAR crop), plus a horizontal flip;
2. RandAugment in timm's ``rand-m<M>-n<N>-mstd<S>-inc1`` semantics: per image, ``n`` ops drawn
   uniformly with replacement from the 15 "increasing" ops, each applied with probability ``p``
   (0.5), magnitude ``N(M, S)`` clipped to [0, 10], its sign flipped at random. All 15 ops of
   ``timm.data.auto_augment._RAND_INCREASING_TRANSFORMS`` are implemented: AutoContrast, Equalize,
   Invert, Rotate, PosterizeIncreasing, SolarizeIncreasing, SolarizeAdd, ColorIncreasing,
   ContrastIncreasing, BrightnessIncreasing, SharpnessIncreasing, ShearX, ShearY, TranslateXRel,
   TranslateYRel. The samples that drew one op are gathered and transformed together. Pixel values
   stay in [0, 255] and are rounded after each op, as PIL's uint8 images are;
3. colour jitter (brightness, contrast, saturation factors in [1-j, 1+j], in that order);
4. normalisation with ImageNet mean/std;
5. random erasing in timm's "pixel" mode (one box, area 2-33 %, per-pixel normal noise);
6. Mixup/CutMix in timm's ``mode='batch'`` (one lambda per batch, pairs ``i`` and ``B-1-i``),
   returning smoothed soft targets that sum to 1.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CROP_MODES = ("rrc", "pad", "none")
RAND_INCREASING_OPS = (
    "AutoContrast",
    "Equalize",
    "Invert",
    "Rotate",
    "PosterizeIncreasing",
    "SolarizeIncreasing",
    "SolarizeAdd",
    "ColorIncreasing",
    "ContrastIncreasing",
    "BrightnessIncreasing",
    "SharpnessIncreasing",
    "ShearX",
    "ShearY",
    "TranslateXRel",
    "TranslateYRel",
)
MAGNITUDE_MAX = 10.0  # timm's _LEVEL_DENOM
# the ops that only move pixels: one affine warp each, so rand_augment warps them as one group
GEOMETRIC_OPS = ("Rotate", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel")


@dataclass(frozen=True)
class RandAugmentSpec:
    """timm's RandAugment string, parsed: ``rand-m9-mstd0.5-inc1`` -> m=9, n=2, mstd=0.5, p=0.5."""

    magnitude: float = 9.0
    num_ops: int = 2
    magnitude_std: float = 0.5
    prob: float = 0.5

    @staticmethod
    def parse(text: str) -> RandAugmentSpec:
        parts = text.split("-")
        if parts[0] != "rand":
            raise ValueError(
                f"RandAugment spec {text!r} must start with 'rand-' (e.g. 'rand-m9-mstd0.5-inc1')"
            )
        values = {"m": 10.0, "n": 2, "mstd": 0.0, "p": 0.5, "inc": 0}
        for part in parts[1:]:
            match = re.fullmatch(r"(mstd|inc|m|n|p)([\d.]+)", part)
            if match is None:
                raise ValueError(
                    f"RandAugment spec {text!r}: unknown part {part!r}; valid: m<float>, n<int>, mstd<float>, p<float>, inc1"
                )
            values[match[1]] = float(match[2])
        if int(values["inc"]) != 1:
            raise ValueError(
                f"RandAugment spec {text!r}: only the 'increasing' op set (inc1) is implemented"
            )
        return RandAugmentSpec(values["m"], int(values["n"]), values["mstd"], values["p"])


@dataclass(frozen=True)
class AugmentConfig:
    """One recipe's training augmentation; defaults are the seed's (timm create_transform)."""

    img_size: int = 224
    crop: str = "rrc"  # one of CROP_MODES
    crop_padding: int = 4  # for crop="pad", in source pixels
    rrc_scale: tuple[float, float] = (0.08, 1.0)
    rrc_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    hflip: float = 0.5
    interpolation: str = "bicubic"  # "bicubic" | "bilinear"
    randaugment: str = "rand-m9-mstd0.5-inc1"  # "" turns it off
    color_jitter: float = 0.0
    erase_prob: float = 0.25
    mixup_alpha: float = 0.0
    cutmix_alpha: float = 0.0
    mix_prob: float = 1.0
    mix_switch_prob: float = 0.5
    label_smoothing: float = 0.1  # folded into the soft targets when Mixup/CutMix is on
    num_classes: int = 10
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD

    def __post_init__(self) -> None:
        if self.crop not in CROP_MODES:
            raise ValueError(f"crop {self.crop!r} is not valid; choices: {', '.join(CROP_MODES)}")
        if self.interpolation not in ("bicubic", "bilinear"):
            raise ValueError(
                f"interpolation {self.interpolation!r} is not valid; choices: bicubic, bilinear"
            )
        if self.randaugment:
            RandAugmentSpec.parse(self.randaugment)

    @property
    def mixing(self) -> bool:
        return self.mix_prob > 0 and (self.mixup_alpha > 0 or self.cutmix_alpha > 0)


def _uniform(
    generator: torch.Generator, shape: tuple[int, ...], low: float = 0.0, high: float = 1.0
) -> torch.Tensor:
    return torch.rand(shape, generator=generator, device=generator.device) * (high - low) + low


@functools.lru_cache(maxsize=64)
def device_constant(values: tuple, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """A small constant tensor, copied to ``device`` once and reused (never modify it): each
    ``torch.tensor(..., device="cuda")`` is a blocking host-to-device copy, a stream sync."""
    return torch.tensor(values, dtype=dtype).to(device)


def _bcast(values: torch.Tensor) -> torch.Tensor:
    """(B,) -> (B, 1, 1, 1), to scale a batch of images per sample."""
    return values.view(-1, 1, 1, 1)


def _normalized_affine_grid(
    matrix_px: torch.Tensor, height: int, width: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sampling grid for grid_sample from per-sample pixel-space affine maps.

    ``matrix_px`` (B, 2, 3) maps an output point (x, y) to its input point, pixel centres at
    ``i + 0.5`` (PIL's ``Image.transform`` convention). Returns the grid (B, H, W, 2) in
    ``align_corners=False`` coordinates and a mask (B, 1, H, W) of points that land inside.
    """
    device = matrix_px.device
    ys = torch.arange(height, device=device, dtype=torch.float32) + 0.5
    xs = torch.arange(width, device=device, dtype=torch.float32) + 0.5
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    points = torch.stack([grid_x, grid_y, torch.ones_like(grid_x)], -1)  # (H, W, 3)
    source = torch.einsum("hwk,bjk->bhwj", points, matrix_px)  # (B, H, W, 2) in pixels
    inside = (
        (source[..., 0] >= 0)
        & (source[..., 0] < width)
        & (source[..., 1] >= 0)
        & (source[..., 1] < height)
    )
    scale = device_constant((2.0 / width, 2.0 / height), device, torch.float32)
    return source * scale - 1.0, inside.unsqueeze(1)


def _warp(
    images: torch.Tensor, matrix_px: torch.Tensor, fill: torch.Tensor, mode: str
) -> torch.Tensor:
    """Apply per-sample affine maps; points from outside the image take ``fill`` (3,)."""
    grid, inside = _normalized_affine_grid(matrix_px, images.shape[-2], images.shape[-1])
    warped = F.grid_sample(images, grid, mode=mode, padding_mode="border", align_corners=False)
    return torch.where(inside, warped, fill.view(1, -1, 1, 1)).clamp(0, 255).round()


def _grayscale(images: torch.Tensor) -> torch.Tensor:
    """PIL's ``convert('L')`` weights: (B, 3, H, W) -> (B, 1, H, W)."""
    weights = device_constant((0.299, 0.587, 0.114), images.device, torch.float32)
    weights = weights.view(1, 3, 1, 1)
    return (images * weights).sum(1, keepdim=True)


def _blend(degenerate: torch.Tensor, images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """PIL ImageEnhance: ``degenerate + factor * (image - degenerate)``, factor (B,)."""
    return (degenerate + _bcast(factor) * (images - degenerate)).clamp(0, 255).round()


def _equalize(images: torch.Tensor) -> torch.Tensor:
    """PIL's ``ImageOps.equalize`` per image and channel: (B, 3, H, W) values 0..255."""
    batch, channels = images.shape[:2]
    values = images.long().flatten(2)  # (B, C, HW)
    histogram = torch.zeros(batch, channels, 256, device=images.device, dtype=torch.long)
    histogram.scatter_add_(2, values, torch.ones_like(values))
    top_count = histogram.gather(2, values.amax(2, keepdim=True))  # count of the last non-empty bin
    step = (values.shape[2] - top_count) // 255  # (B, C, 1)
    before = histogram.cumsum(2) - histogram  # pixels strictly below each bin
    lut = ((before + step // 2) // step.clamp(min=1)).clamp(max=255)
    lut = torch.where(step > 0, lut, torch.arange(256, device=images.device).view(1, 1, 256))
    return lut.gather(2, values).view_as(images).to(images.dtype)


def _sharpen_degenerate(images: torch.Tensor) -> torch.Tensor:
    """PIL's SMOOTH filter (3x3 kernel 1,1,1/1,5,1/1,1,1 over 13), border pixels kept."""
    smooth = ((1.0, 1.0, 1.0), (1.0, 5.0, 1.0), (1.0, 1.0, 1.0))
    kernel = device_constant(smooth, images.device, torch.float32) / 13
    kernel = kernel.expand(images.shape[1], 1, 3, 3)
    smooth = F.conv2d(images, kernel, groups=images.shape[1]).round()
    out = images.clone()
    out[..., 1:-1, 1:-1] = smooth
    return out


def apply_rand_op(
    name: str,
    images: torch.Tensor,
    magnitude: torch.Tensor,
    sign: torch.Tensor,
    fill: torch.Tensor,
    mode: str,
) -> torch.Tensor:
    """One RandAugment op over a group: images (b, 3, H, W) in [0, 255], magnitude and sign (b,)."""
    level = magnitude / MAGNITUDE_MAX
    height, width = images.shape[-2:]
    batch = images.shape[0]
    if name == "AutoContrast":
        low = images.amin((2, 3), keepdim=True)
        high = images.amax((2, 3), keepdim=True)
        scaled = ((images - low) * 255 / (high - low).clamp(min=1)).clamp(0, 255).round()
        return torch.where(high > low, scaled, images)
    if name == "Equalize":
        return _equalize(images)
    if name == "Invert":
        return 255 - images
    if name == "PosterizeIncreasing":
        bits = 4 - (level * 4).long()  # keep 4 down to 0 most significant bits
        mask = (255 - (2 ** (8 - bits) - 1)).view(-1, 1, 1, 1)
        return (images.long() & mask).to(images.dtype)
    if name == "SolarizeIncreasing":
        threshold = 256 - (level * 256).long().clamp(max=256)
        return torch.where(images >= _bcast(threshold), 255 - images, images)
    if name == "SolarizeAdd":
        added = (level * 110).long().clamp(max=128)
        return torch.where(images < 128, (images + _bcast(added)).clamp(max=255), images)
    enhance = (1.0 + sign * level * 0.9).clamp(min=0.1)
    if name == "ColorIncreasing":
        return _blend(_grayscale(images).round(), images, enhance)
    if name == "ContrastIncreasing":
        mean = _grayscale(images).round().mean((1, 2, 3), keepdim=True).add(0.5).floor()
        return _blend(mean, images, enhance)
    if name == "BrightnessIncreasing":
        return _blend(torch.zeros_like(images), images, enhance)
    if name == "SharpnessIncreasing":
        return _blend(_sharpen_degenerate(images), images, enhance)
    if name not in GEOMETRIC_OPS:
        raise ValueError(
            f"RandAugment op {name!r} is unknown; valid: {', '.join(RAND_INCREASING_OPS)}"
        )
    kind = torch.full((batch,), GEOMETRIC_OPS.index(name), device=images.device)
    return _warp(images, affine_matrices(kind, level, sign, height, width), fill, mode)


def affine_matrices(
    kind: torch.Tensor, level: torch.Tensor, sign: torch.Tensor, height: int, width: int
) -> torch.Tensor:
    """Pixel-space maps (b, 2, 3) of the geometric ops, per sample: ``kind`` (b,) indexes
    ``GEOMETRIC_OPS``, ``level`` in [0, 1] and ``sign`` (b,) as ``apply_rand_op`` draws them."""
    signed = sign * level
    angle = torch.deg2rad(-signed * 30)  # PIL rotates counter-clockwise, about the centre
    cos, sin = torch.cos(angle), torch.sin(angle)
    center_x, center_y = width / 2, height / 2
    rotate = torch.stack(
        (
            cos,
            sin,
            center_x - cos * center_x - sin * center_y,
            -sin,
            cos,
            center_y + sin * center_x - cos * center_y,
        ),
        dim=-1,
    )  # (b, 6): the map's rows, flattened
    # the other four are the identity plus one entry, (signed * factor) * extent: ShearX and
    # ShearY 0.3 at (0, 1) and (1, 0); TranslateXRel and TranslateYRel 0.45 of the width or
    # height at (0, 2) and (1, 2)
    identity = device_constant(((1.0, 0.0, 0.0, 0.0, 1.0, 0.0),) * 4, sign.device, torch.float32)
    factor = device_constant(
        (
            (0.0, 0.3, 0.0, 0.0, 0.0, 0.0),
            (0.0, 0.0, 0.0, 0.3, 0.0, 0.0),
            (0.0, 0.0, 0.45, 0.0, 0.0, 0.0),
            (0.0, 0.0, 0.0, 0.0, 0.0, 0.45),
        ),
        sign.device,
        torch.float32,
    )
    extent = device_constant(
        ((1.0,) * 6, (1.0,) * 6, (float(width),) * 6, (float(height),) * 6),
        sign.device,
        torch.float32,
    )
    others = identity + signed.view(-1, 1, 1) * factor * extent  # (b, 4, 6)
    candidates = torch.cat((rotate.unsqueeze(1), others), dim=1)  # (b, 5, 6), GEOMETRIC_OPS order
    chosen = candidates.gather(1, kind.view(-1, 1, 1).expand(-1, 1, 6))
    return chosen.view(-1, 2, 3)


def rand_augment(
    images: torch.Tensor,
    spec: RandAugmentSpec,
    generator: torch.Generator,
    fill: torch.Tensor,
    mode: str = "bicubic",
) -> torch.Tensor:
    """RandAugment over a batch (B, 3, H, W) in [0, 255]; returns the same shape and dtype."""
    batch, height, width = images.shape[0], images.shape[-2], images.shape[-1]
    n_ops = len(RAND_INCREASING_OPS)
    # one group per op, but the geometric ops share one (they differ only in their affine map, so
    # one warp serves them all); the group after the last holds the images left alone
    groups = (*(name for name in RAND_INCREASING_OPS if name not in GEOMETRIC_OPS), "geometric")
    device = images.device
    group_of_op = device_constant(
        tuple(groups.index(n) if n in groups else len(groups) - 1 for n in RAND_INCREASING_OPS),
        device,
        torch.long,
    )
    kind_of_op = device_constant(
        tuple(GEOMETRIC_OPS.index(n) if n in GEOMETRIC_OPS else -1 for n in RAND_INCREASING_OPS),
        device,
        torch.long,
    )
    images = images.clone()
    for _ in range(spec.num_ops):
        op_index = torch.randint(0, n_ops, (batch,), generator=generator, device=generator.device)
        applied = _uniform(generator, (batch,)) < spec.prob
        magnitude = (
            spec.magnitude
            + spec.magnitude_std * torch.randn(batch, generator=generator, device=generator.device)
        ).clamp(0, MAGNITUDE_MAX)
        sign = torch.where(_uniform(generator, (batch,)) > 0.5, -1.0, 1.0)
        # a stable sort puts each group's images together in index order, and one host read of
        # the group sizes (one sync per round, not one per op) cuts the groups
        group = torch.where(applied, group_of_op[op_index], len(groups))
        order = torch.argsort(group, stable=True)
        sizes = torch.bincount(group, minlength=len(groups) + 1).tolist()
        start = 0
        for name, size in zip(groups, sizes, strict=False):
            chosen = order[start : start + size]
            start += size
            if not size:
                continue
            if name == "geometric":
                level = magnitude[chosen] / MAGNITUDE_MAX
                kind = kind_of_op[op_index[chosen]]
                matrices = affine_matrices(kind, level, sign[chosen], height, width)
                images[chosen] = _warp(images[chosen], matrices, fill, mode)
            else:
                images[chosen] = apply_rand_op(
                    name, images[chosen], magnitude[chosen], sign[chosen], fill, mode
                )
    return images


def random_resized_crop(
    images: torch.Tensor,
    size: int,
    scale: tuple[float, float],
    ratio: tuple[float, float],
    hflip: float,
    generator: torch.Generator,
    mode: str,
) -> torch.Tensor:
    """timm's RandomResizedCrop (10 attempts, then the whole image ratio-clamped) + flip, batched."""
    batch, _, height, width = images.shape
    attempts = 10
    area = height * width * _uniform(generator, (batch, attempts), *scale)
    aspect = torch.exp(
        _uniform(generator, (batch, attempts), math.log(ratio[0]), math.log(ratio[1]))
    )
    crop_w = torch.sqrt(area * aspect).round()
    crop_h = torch.sqrt(area / aspect).round()
    valid = (crop_w > 0) & (crop_w <= width) & (crop_h > 0) & (crop_h <= height)
    first = valid.float().argmax(1, keepdim=True)
    found = valid.any(1)
    crop_w = torch.where(
        found,
        crop_w.gather(1, first).squeeze(1),
        torch.full((batch,), float(min(width, round(height * ratio[1]))), device=images.device),
    )
    crop_h = torch.where(
        found,
        crop_h.gather(1, first).squeeze(1),
        torch.full((batch,), float(min(height, round(width / ratio[0]))), device=images.device),
    )
    top = (_uniform(generator, (batch,)) * (height - crop_h + 1)).floor()
    left = (_uniform(generator, (batch,)) * (width - crop_w + 1)).floor()
    fallback_top, fallback_left = ((height - crop_h) / 2).round(), ((width - crop_w) / 2).round()
    top, left = torch.where(found, top, fallback_top), torch.where(found, left, fallback_left)
    flip = _uniform(generator, (batch,)) < hflip
    theta = torch.zeros(batch, 2, 3, device=images.device)
    theta[:, 0, 0] = torch.where(flip, -1.0, 1.0) * crop_w / width
    theta[:, 0, 2] = (2 * left + crop_w) / width - 1
    theta[:, 1, 1] = crop_h / height
    theta[:, 1, 2] = (2 * top + crop_h) / height - 1
    grid = F.affine_grid(theta, [batch, images.shape[1], size, size], align_corners=False)
    return (
        F.grid_sample(images, grid, mode=mode, padding_mode="border", align_corners=False)
        .clamp(0, 255)
        .round()
    )


def random_crop_flip(
    images: torch.Tensor, padding: int, hflip: float, generator: torch.Generator
) -> torch.Tensor:
    """Random crop of the original size from the zero-padded image, and a horizontal flip."""
    batch, channels, height, width = images.shape
    padded = F.pad(images, (padding, padding, padding, padding))
    top = torch.randint(0, 2 * padding + 1, (batch,), generator=generator, device=generator.device)
    left = torch.randint(0, 2 * padding + 1, (batch,), generator=generator, device=generator.device)
    flip = _uniform(generator, (batch,)) < hflip
    rows = top[:, None] + torch.arange(height, device=images.device)  # (B, H)
    cols = torch.arange(width, device=images.device).expand(batch, width)
    cols = left[:, None] + torch.where(flip[:, None], cols.flip(1), cols)  # (B, W)
    b = torch.arange(batch, device=images.device).view(-1, 1, 1, 1)
    c = torch.arange(channels, device=images.device).view(1, -1, 1, 1)
    return padded[b, c, rows[:, None, :, None], cols[:, None, None, :]]


def color_jitter(images: torch.Tensor, strength: float, generator: torch.Generator) -> torch.Tensor:
    """Brightness, contrast, saturation factors drawn in [1-s, 1+s] per sample: (B, 3, H, W) 0..255."""
    batch = images.shape[0]
    low, high = max(0.0, 1 - strength), 1 + strength
    brightness, contrast, saturation = (_uniform(generator, (batch,), low, high) for _ in range(3))
    images = _blend(torch.zeros_like(images), images, brightness)
    images = _blend(_grayscale(images).mean((1, 2, 3), keepdim=True), images, contrast)
    return _blend(_grayscale(images), images, saturation)


def random_erasing(
    images: torch.Tensor,
    prob: float,
    generator: torch.Generator,
    area: tuple[float, float] = (0.02, 1 / 3),
    aspect: tuple[float, float] = (0.3, 1 / 0.3),
) -> torch.Tensor:
    """timm's RandomErasing(mode='pixel', max_count=1): one box of N(0, 1) noise per chosen image."""
    batch, _, height, width = images.shape
    attempts = 10
    applied = _uniform(generator, (batch,)) < prob
    target = _uniform(generator, (batch, attempts), *area) * height * width
    ratio = torch.exp(
        _uniform(generator, (batch, attempts), math.log(aspect[0]), math.log(aspect[1]))
    )
    box_h = torch.sqrt(target * ratio).round()
    box_w = torch.sqrt(target / ratio).round()
    valid = (box_w < width) & (box_h < height)
    first = valid.float().argmax(1, keepdim=True)
    box_h, box_w = box_h.gather(1, first).squeeze(1), box_w.gather(1, first).squeeze(1)
    top = (_uniform(generator, (batch,)) * (height - box_h + 1)).floor()
    left = (_uniform(generator, (batch,)) * (width - box_w + 1)).floor()
    noise = torch.randn(
        images.shape, generator=generator, device=generator.device, dtype=images.dtype
    )
    rows = torch.arange(height, device=images.device).view(1, 1, -1, 1)
    cols = torch.arange(width, device=images.device).view(1, 1, 1, -1)
    inside = (
        (rows >= _bcast(top))
        & (rows < _bcast(top + box_h))
        & (cols >= _bcast(left))
        & (cols < _bcast(left + box_w))
    )
    erase = inside & _bcast(applied & valid.any(1))
    return torch.where(erase, noise, images)


def smoothed_one_hot(labels: torch.Tensor, num_classes: int, smoothing: float) -> torch.Tensor:
    """(B,) -> (B, K): ``1 - s + s/K`` on the label, ``s/K`` elsewhere (each row sums to 1)."""
    off = smoothing / num_classes
    return torch.full((labels.shape[0], num_classes), off, device=labels.device).scatter_(
        1, labels.view(-1, 1), 1 - smoothing + off
    )


def mixup_cutmix(
    images: torch.Tensor, labels: torch.Tensor, config: AugmentConfig, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """timm's Mixup(mode='batch'): images (B, 3, H, W), labels (B,) -> images, soft targets (B, K)."""
    height, width = images.shape[-2:]
    draws = torch.rand(4, generator=generator, device=generator.device).tolist()
    beta = np.random.default_rng(
        int(draws[3] * 2**31)
    )  # Beta draws seeded from the torch generator
    lam = 1.0
    if draws[0] < config.mix_prob:
        use_cutmix = config.cutmix_alpha > 0 and (
            config.mixup_alpha <= 0 or draws[1] < config.mix_switch_prob
        )
        alpha = config.cutmix_alpha if use_cutmix else config.mixup_alpha
        lam = float(beta.beta(alpha, alpha))
        partner = images.flip(0)
        if use_cutmix:
            cut_h, cut_w = int(height * math.sqrt(1 - lam)), int(width * math.sqrt(1 - lam))
            center_y, center_x = int(beta.integers(0, height)), int(beta.integers(0, width))
            y0, y1 = max(0, center_y - cut_h // 2), min(height, center_y + cut_h // 2)
            x0, x1 = max(0, center_x - cut_w // 2), min(width, center_x + cut_w // 2)
            images = images.clone()
            images[..., y0:y1, x0:x1] = partner[..., y0:y1, x0:x1]
            lam = 1 - (y1 - y0) * (x1 - x0) / (height * width)
        else:
            images = images * lam + partner * (1 - lam)
    targets = smoothed_one_hot(labels, config.num_classes, config.label_smoothing)
    return images, targets * lam + targets.flip(0) * (1 - lam)


def normalize(
    images: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]
) -> torch.Tensor:
    """(B, 3, H, W) in [0, 255] -> float32 normalised."""
    mean_t = device_constant(tuple(mean), images.device, torch.float32).view(1, -1, 1, 1) * 255
    std_t = device_constant(tuple(std), images.device, torch.float32).view(1, -1, 1, 1) * 255
    return (images.float() - mean_t) / std_t


def train_batch(
    images: torch.Tensor, labels: torch.Tensor, config: AugmentConfig, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Augment one training batch on its device.

    images: uint8 (B, 3, h, w); labels: int64 (B,). Returns float32 (B, 3, S, S) normalised, and
    labels (B,) unchanged, or soft targets (B, K) summing to 1 when Mixup/CutMix is on.
    """
    mode = config.interpolation
    size = config.img_size
    x = images.float()
    if config.crop == "rrc":
        x = random_resized_crop(
            x, size, config.rrc_scale, config.rrc_ratio, config.hflip, generator, mode
        )
    else:
        if config.crop == "pad":
            x = random_crop_flip(x, config.crop_padding, config.hflip, generator)
        else:
            flip = _uniform(generator, (x.shape[0],)) < config.hflip
            x = torch.where(_bcast(flip), x.flip(3), x)
        if x.shape[-1] != size or x.shape[-2] != size:
            x = (
                F.interpolate(
                    x,
                    size=(size, size),
                    mode=mode,
                    align_corners=False,
                    antialias=size < x.shape[-1],
                )
                .clamp(0, 255)
                .round()
            )
    if config.randaugment:
        fill = device_constant(
            tuple(min(255, round(255 * m)) for m in config.mean), x.device, x.dtype
        )
        x = rand_augment(x, RandAugmentSpec.parse(config.randaugment), generator, fill, mode)
    if config.color_jitter > 0:
        x = color_jitter(x, config.color_jitter, generator)
    x = normalize(x, config.mean, config.std)
    if config.erase_prob > 0:
        x = random_erasing(x, config.erase_prob, generator)
    if config.mixing:
        return mixup_cutmix(x, labels, config, generator)
    return x, labels


def eval_batch(
    images: torch.Tensor,
    img_size: int,
    mean: tuple[float, ...] = IMAGENET_MEAN,
    std: tuple[float, ...] = IMAGENET_STD,
) -> torch.Tensor:
    """Test transform: uint8 (B, 3, h, w) -> resized (bilinear, as torchvision's Resize) and normalised float32 (B, 3, S, S)."""
    x = images.float()
    if x.shape[-1] != img_size or x.shape[-2] != img_size:
        x = (
            F.interpolate(
                x,
                size=(img_size, img_size),
                mode="bilinear",
                align_corners=False,
                antialias=img_size < x.shape[-1],
            )
            .clamp(0, 255)
            .round()
        )
    return normalize(x, mean, std)
