"""The training loop on CPU with a tiny model: learning, the seed's schedule, exact resume."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from suites.training.augment import AugmentConfig, train_batch
from suites.training.data import synthetic_cifar10
from suites.training.loop import (
    CHECKPOINT_NAME,
    EPOCHS_CSV,
    TrainConfig,
    augmented_batches,
    seed_lr_factor,
    train,
)

PLAIN = AugmentConfig(img_size=16, crop="none", hflip=0.5, randaugment="", erase_prob=0.0)
CONFIG = TrainConfig(
    epochs=2,
    batch_size=32,
    lr=1e-2,
    warmup_epochs=0,
    img_size=16,
    ema_decay=0.9,
    eval_batch_size=64,
    progress=False,
    augment=PLAIN,
)


def tiny_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1),
        nn.GELU(),
        nn.Dropout(0.2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 10),
    )


@pytest.fixture(scope="module")
def data():
    return synthetic_cifar10(128, 64, seed=1, img_size=16)


class Stop(Exception):
    pass


def test_loss_falls_and_rows_are_complete(data, tmp_path: Path) -> None:
    config = dataclasses.replace(CONFIG, epochs=4)
    result = train(tiny_model(), data, config, "cpu", tmp_path)
    losses = [row["train_loss"] for row in result.history]
    assert losses[-1] < losses[0] - 0.1
    lines = (tmp_path / EPOCHS_CSV).read_text().splitlines()
    assert (
        lines[0].split(",")[:5] == ["epoch", "lr", "train_loss", "train_acc", "test_acc"]
        and len(lines) == 5
    )
    summary = result.summary
    assert summary["top1"] == result.history[-1]["test_acc"]  # THE result is the last epoch
    assert summary["top1_best_optimistic"] == max(row["test_acc"] for row in result.history)
    steady = sorted(row["train_img_s"] for row in result.history[1:])[1]  # median of 3
    assert summary["steady_samples_per_sec"] == steady
    assert summary["epochs_trained"] == 4 and summary["param_count"] == pytest.approx(
        sum(p.numel() for p in result.model.parameters()) / 1e6
    )


def test_schedule_is_the_seeds_lambda() -> None:
    assert seed_lr_factor(0, 5, 30) == 0.0  # the first epoch trains at lr 0
    assert seed_lr_factor(4, 5, 30) == pytest.approx(0.8)
    assert seed_lr_factor(5, 5, 30) == 1.0
    assert seed_lr_factor(29, 5, 30) == pytest.approx(0.5 * (1 + math.cos(math.pi * 24 / 25)))


def test_first_epoch_with_warmup_runs_at_lr_zero(data) -> None:
    config = dataclasses.replace(CONFIG, warmup_epochs=1, ema_decay=0.0)
    model = tiny_model()
    before = [p.detach().clone() for p in model.parameters()]
    result = train(model, data, dataclasses.replace(config, epochs=2), "cpu")
    assert [row["lr"] for row in result.history] == [0.0, 1e-2]
    # AdamW at lr 0 leaves weights alone in epoch 1; epoch 2 moves them
    assert not all(
        torch.equal(a, b) for a, b in zip(before, result.model.parameters(), strict=True)
    )


def test_resume_after_an_epoch_gives_identical_weights(data, tmp_path: Path) -> None:
    unbroken = train(tiny_model(), data, CONFIG, "cpu", tmp_path / "unbroken")

    def stop_after_first(row: dict) -> None:
        if row["epoch"] == 1:
            raise Stop

    with pytest.raises(Stop):
        train(tiny_model(), data, CONFIG, "cpu", tmp_path / "cut", on_epoch_end=stop_after_first)
    state = torch.load(tmp_path / "cut" / CHECKPOINT_NAME, weights_only=True)
    assert state["epoch"] == 1 and {
        "model",
        "ema",
        "optimizer",
        "scheduler",
        "scaler",
        "rng",
    } <= set(state)
    resumed = train(tiny_model(), data, CONFIG, "cpu", tmp_path / "cut")
    for name, tensor in unbroken.model.state_dict().items():
        assert torch.equal(tensor, resumed.model.state_dict()[name]), name
    for name, tensor in unbroken.ema_model.state_dict().items():
        assert torch.equal(tensor, resumed.ema_model.state_dict()[name]), name
    assert [row["epoch"] for row in resumed.history] == [1, 2]
    assert len((tmp_path / "cut" / EPOCHS_CSV).read_text().splitlines()) == 3


def test_resume_with_other_settings_is_refused(data, tmp_path: Path) -> None:
    train(tiny_model(), data, dataclasses.replace(CONFIG, epochs=1), "cpu", tmp_path)
    with pytest.raises(ValueError, match=r"other settings.*lr"):
        train(tiny_model(), data, dataclasses.replace(CONFIG, epochs=1, lr=5e-3), "cpu", tmp_path)


def test_bad_settings_are_named() -> None:
    with pytest.raises(ValueError, match="amp 'fp8' is not valid; choices: bf16, fp32"):
        TrainConfig(amp="fp8")
    with pytest.raises(ValueError, match="warmup_epochs 30"):
        TrainConfig(epochs=30, warmup_epochs=30)
    with pytest.raises(
        ValueError,
        match="compile 'jit' is not valid; choices: eager, compile, cudagraph, cudagraph_eager",
    ):
        TrainConfig(compile="jit")


@pytest.mark.parametrize("mode", ["cudagraph", "cudagraph_eager"])
def test_cuda_graph_training_needs_cuda(data, mode: str) -> None:
    with pytest.raises(ValueError, match=f"compile '{mode}' needs a CUDA device"):
        train(tiny_model(), data, dataclasses.replace(CONFIG, compile=mode), "cpu")


def test_compiled_training_follows_eager(data) -> None:
    """One epoch through torch.compile ends at the eager run's weights (a dropout-free model: the
    compiled graph draws its own random streams)."""
    config = dataclasses.replace(CONFIG, epochs=1, ema_decay=0.0)

    def model() -> nn.Module:
        torch.manual_seed(0)
        return nn.Sequential(
            nn.Conv2d(3, 8, 3, stride=2), nn.GELU(), nn.Flatten(), nn.Linear(8 * 7 * 7, 10)
        )

    eager, compiled = model(), model()
    train(eager, data, config, "cpu")
    train(compiled, data, dataclasses.replace(config, compile="compile"), "cpu")
    for a, b in zip(eager.parameters(), compiled.parameters(), strict=True):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_epoch_batches_are_this_ranks_slices_augmented_in_order(data) -> None:
    """The batch stream (a side stream on CUDA) makes exactly the batches of the plain loop."""
    augment = AugmentConfig(img_size=16, crop="pad", randaugment="rand-m9-mstd0.5-inc1")
    order = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(3))
    streamed = list(
        augmented_batches(data, order, 3, 32, 16, 16, augment, torch.Generator().manual_seed(4))
    )
    generator = torch.Generator().manual_seed(4)
    assert len(streamed) == 3
    for step, (x, labels) in enumerate(streamed):
        index = order[step * 32 + 16 : step * 32 + 32]
        expected_x, expected_labels = train_batch(
            data.train.images[index], data.train.labels[index], augment, generator
        )
        assert torch.equal(x, expected_x)
        assert torch.equal(labels, expected_labels)
