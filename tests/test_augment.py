"""Batched GPU-style augmentation: shapes, dtypes, determinism, op semantics against PIL."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from suites.training.augment import (
    RAND_INCREASING_OPS,
    AugmentConfig,
    RandAugmentSpec,
    apply_rand_op,
    device_constant,
    eval_batch,
    mixup_cutmix,
    random_erasing,
    train_batch,
)


def _batch(count: int = 8, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return torch.randint(
        0, 256, (count, 3, size, size), generator=generator, dtype=torch.uint8
    ), torch.arange(count) % 10


SEED_LIKE = AugmentConfig(img_size=48)  # the seed's pipeline at a small size
SMALL = AugmentConfig(
    img_size=32, crop="pad", randaugment="rand-m6-n1-mstd0.5-inc1", color_jitter=0.4, erase_prob=0.5
)


@pytest.mark.parametrize("config", [SEED_LIKE, SMALL])
def test_train_batch_shapes_dtypes_and_determinism(config: AugmentConfig) -> None:
    images, labels = _batch()
    first, first_labels = train_batch(images, labels, config, torch.Generator().manual_seed(3))
    again, _ = train_batch(images, labels, config, torch.Generator().manual_seed(3))
    other, _ = train_batch(images, labels, config, torch.Generator().manual_seed(4))
    assert first.shape == (8, 3, config.img_size, config.img_size) and first.dtype == torch.float32
    assert torch.equal(first_labels, labels)
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_every_rand_op_keeps_shape_and_dtype_and_changes_something() -> None:
    images = _batch(4)[0].float() * 0.6 + 30  # not full range, so AutoContrast has work to do
    fill = torch.tensor([124.0, 116.0, 104.0])
    for name in RAND_INCREASING_OPS:
        out = apply_rand_op(
            name,
            images,
            torch.full((4,), 9.0),
            torch.tensor([1.0, -1.0, 1.0, -1.0]),
            fill,
            "bilinear",
        )
        assert out.shape == images.shape and out.dtype == images.dtype, name
        assert out.min() >= 0 and out.max() <= 255, name
        assert not torch.equal(out, images), name


def test_point_ops_match_pil() -> None:
    images = _batch(3)[0]
    magnitude = torch.full(
        (3,), 9.0
    )  # posterize keeps 4 - int(3.6) = 1 bit, solarize threshold 256 - 230
    sign = torch.ones(3)
    fill = torch.zeros(3)
    cases = {
        "Equalize": ImageOps.equalize,
        "PosterizeIncreasing": lambda image: ImageOps.posterize(image, 1),
        "SolarizeIncreasing": lambda image: ImageOps.solarize(image, 26),
        "Invert": ImageOps.invert,
    }
    for name, pil_op in cases.items():
        ours = apply_rand_op(name, images.float(), magnitude, sign, fill, "bilinear")
        reference = np.stack(
            [
                np.asarray(pil_op(Image.fromarray(image.permute(1, 2, 0).numpy())))
                for image in images
            ]
        )
        assert torch.equal(ours, torch.from_numpy(reference).permute(0, 3, 1, 2).float()), name


def test_randaugment_spec_parsing() -> None:
    assert RandAugmentSpec.parse("rand-m9-mstd0.5-inc1") == RandAugmentSpec(9.0, 2, 0.5, 0.5)
    with pytest.raises(ValueError, match="inc1"):
        RandAugmentSpec.parse("rand-m9")
    with pytest.raises(ValueError, match="unknown part"):
        RandAugmentSpec.parse("rand-m9-x3-inc1")


def test_mixup_cutmix_targets_sum_to_one_and_mix_pairs() -> None:
    images, labels = _batch(6)
    config = AugmentConfig(mixup_alpha=0.8, cutmix_alpha=1.0, label_smoothing=0.1)
    for seed in range(6):  # both branches (switch prob 0.5) get exercised
        mixed, targets = mixup_cutmix(
            images.float(), labels, config, torch.Generator().manual_seed(seed)
        )
        assert mixed.shape == images.shape and targets.shape == (6, 10)
        torch.testing.assert_close(targets.sum(1), torch.ones(6))
        own = targets.gather(1, labels.view(-1, 1)).squeeze(1)
        partner = targets.gather(1, labels.flip(0).view(-1, 1)).squeeze(1)
        assert torch.all(
            own + partner > 0.9
        )  # the mass sits on the image's label and its partner's


def test_train_batch_with_mixing_returns_soft_targets() -> None:
    images, labels = _batch(4)
    x, targets = train_batch(
        images,
        labels,
        AugmentConfig(img_size=32, crop="none", randaugment="", erase_prob=0, cutmix_alpha=1.0),
        torch.Generator().manual_seed(0),
    )
    assert x.shape == (4, 3, 32, 32) and targets.shape == (4, 10)
    torch.testing.assert_close(targets.sum(1), torch.ones(4))


def test_random_erasing_fills_one_box_with_noise() -> None:
    images = torch.full((16, 3, 32, 32), 7.0)
    erased = random_erasing(images, 1.0, torch.Generator().manual_seed(0))
    changed = (erased != 7.0).any(1)  # (B, H, W)
    assert changed.any(dim=(1, 2)).sum() >= 14  # nearly every image finds a box in 10 attempts
    for mask in changed:
        rows, cols = mask.any(1).nonzero(), mask.any(0).nonzero()
        if rows.numel():
            area = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
            assert (
                0.02 * 1024 * 0.5 <= area <= 1024 / 3 * 1.2
            )  # one rectangle of 2-33 % of the image


def test_eval_batch_resizes_and_normalises() -> None:
    images = torch.full((2, 3, 32, 32), 255, dtype=torch.uint8)
    x = eval_batch(images, 64)
    assert x.shape == (2, 3, 64, 64) and x.dtype == torch.float32
    torch.testing.assert_close(
        x[0, :, 0, 0], torch.tensor([(1 - 0.485) / 0.229, (1 - 0.456) / 0.224, (1 - 0.406) / 0.225])
    )


def test_bad_crop_mode_is_named() -> None:
    with pytest.raises(ValueError, match="crop 'zoom' is not valid; choices: rrc, pad, none"):
        AugmentConfig(crop="zoom")


def test_rand_augment_groups_images_by_op_without_a_sync_per_op() -> None:
    """The same images, bit for bit, as selecting each op's group with ``nonzero`` (a device sync
    per op); the grouping calls no ``nonzero`` (its one host read per round is a ``tolist``)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    from suites.training.augment import MAGNITUDE_MAX, _uniform, rand_augment

    spec = RandAugmentSpec(9.0, 2, 0.5, 0.5)
    images = torch.randint(0, 256, (64, 3, 16, 16), generator=torch.Generator().manual_seed(1))
    images = images.float()
    fill = torch.tensor([124.0, 116.0, 104.0])

    def per_op_reference(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        images, batch = images.clone(), images.shape[0]
        for _ in range(spec.num_ops):
            op_index = torch.randint(0, len(RAND_INCREASING_OPS), (batch,), generator=generator)
            applied = _uniform(generator, (batch,)) < spec.prob
            magnitude = (
                spec.magnitude + spec.magnitude_std * torch.randn(batch, generator=generator)
            ).clamp(0, MAGNITUDE_MAX)
            sign = torch.where(_uniform(generator, (batch,)) > 0.5, -1.0, 1.0)
            for index, name in enumerate(RAND_INCREASING_OPS):
                chosen = ((op_index == index) & applied).nonzero().squeeze(1)
                if chosen.numel():
                    images[chosen] = apply_rand_op(
                        name, images[chosen], magnitude[chosen], sign[chosen], fill, "bicubic"
                    )
        return images

    class HostReads(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.names: list[str] = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            name = func.__name__
            if name.startswith("nonzero"):
                self.names.append(name)
            return func(*args, **(kwargs or {}))

    expected = per_op_reference(images, torch.Generator().manual_seed(5))
    with HostReads() as reads:
        grouped = rand_augment(images, spec, torch.Generator().manual_seed(5), fill)
    assert torch.equal(grouped, expected)
    assert reads.names == []


def test_affine_matrices_are_each_geometric_ops_map() -> None:
    """Per sample, the map each op's own formula gives (PIL's conventions: pixel centres at
    i + 0.5, counter-clockwise rotation about the centre), bit for bit."""
    from suites.training.augment import GEOMETRIC_OPS, affine_matrices

    height, width = 20, 30
    level = torch.tensor([0.9, 0.3, 0.6, 0.45, 0.75])
    sign = torch.tensor([-1.0, 1.0, -1.0, 1.0, -1.0])
    kind = torch.arange(len(GEOMETRIC_OPS))
    got = affine_matrices(kind, level, sign, height, width)
    for i, name in enumerate(GEOMETRIC_OPS):
        s = sign[i : i + 1] * level[i : i + 1]
        expected = torch.zeros(1, 2, 3)
        expected[:, 0, 0] = expected[:, 1, 1] = 1
        if name == "Rotate":
            angle = torch.deg2rad(-s * 30)
            cos, sin = torch.cos(angle), torch.sin(angle)
            expected[:, 0, 0], expected[:, 0, 1] = cos, sin
            expected[:, 1, 0], expected[:, 1, 1] = -sin, cos
            center_x, center_y = width / 2, height / 2
            expected[:, 0, 2] = center_x - cos * center_x - sin * center_y
            expected[:, 1, 2] = center_y + sin * center_x - cos * center_y
        elif name == "ShearX":
            expected[:, 0, 1] = s * 0.3
        elif name == "ShearY":
            expected[:, 1, 0] = s * 0.3
        elif name == "TranslateXRel":
            expected[:, 0, 2] = s * 0.45 * width
        else:
            expected[:, 1, 2] = s * 0.45 * height
        assert torch.equal(got[i : i + 1], expected), name


def test_constants_are_copied_to_the_device_once() -> None:
    """A batch's constants (normalisation, grayscale weights, fill) are made once per device, not
    per batch: on CUDA each fresh copy would be a blocking host-to-device transfer."""
    images, labels = _batch()
    config = AugmentConfig(img_size=32, crop="pad", randaugment="rand-m9-mstd0.5-inc1")
    device_constant.cache_clear()
    train_batch(images, labels, config, torch.Generator().manual_seed(0))
    made = device_constant.cache_info().misses
    for seed in range(1, 4):
        train_batch(images, labels, config, torch.Generator().manual_seed(seed))
    assert device_constant.cache_info().misses == made
    mean = device_constant((0.5, 0.25), torch.device("cpu"), torch.float32)
    assert mean is device_constant((0.5, 0.25), torch.device("cpu"), torch.float32)
    assert mean.tolist() == [0.5, 0.25]
