"""The accuracy suite: train on CIFAR-10 and report the final-epoch top-1 (``--suite accuracy``).

Recipes (overridable as axes, e.g. ``--set epochs=5 --set lr=5e-4``; ``-`` keeps the recipe's value;
the ``extra`` axis sets the rest, e.g. ``--set extra=mixup_alpha:0.8+cutmix_alpha:1``):

- ``seed``: the seed's published recipe (``docs/SUBJECT.md``): images upsampled to 224 by
  timm's RandomResizedCrop (bicubic, scale 0.08-1) + flip, RandAugment ``rand-m9-mstd0.5-inc1``,
  random erasing 0.25 (pixel mode), ImageNet mean/std; batch 128; AdamW 1e-3, wd 0.05; 30 epochs,
  5 warmup then cosine per epoch; label smoothing 0.1; no Mixup/CutMix; EMA 0.999; test images
  resized to 224 and normalised. The seed passes ``color_jitter=0.4`` to timm's
  ``create_transform``, which ignores it when ``auto_augment`` is set, so jitter is 0 here.
- ``native32``: 32x32 inputs, a recipe for small images: batch 512 and lr 2e-3 (1e-3 at 128,
  scaled by the square root of the batch ratio), wd 0.05, 30 epochs with 3 warmup, random crop
  with 4 px zero padding + flip, light RandAugment ``rand-m6-n1-mstd0.5-inc1``, no erasing, label
  smoothing 0.1, EMA 0.996 (about 2.6 epochs of steps, as the seed recipe's EMA).

Seeds: the ``seed`` axis trains one cell per seed into one run folder (``--set seed=0,1,2``); its
default ``-`` trains with the run's ``--seed``. Each row's ``train_seed`` names the seed it trained
with (model initialisation, data order, augmentation and ProbSparse sampling all follow it).

Options (``--option``): ``download=on`` fetches torchvision's CIFAR-10 folder when it is missing;
``side_stream=off`` augments on the training stream instead of a side CUDA stream (the batches are
the same; the row's ``augment_side_stream`` says which ran).

The quick profile (``--quick``) is a smoke run: favit_b0 at 32 px, 256 training and 128 test
images, 1 epoch, on synthetic images (``--set data=PATH`` for CIFAR-10's). Its rows say
``smoke_run=True``; its accuracies mean nothing. Rows trained on synthetic images say so in
``dataset``, and so do the report's caption and figures.

Every value is checked before a run starts (each axis's kind, then ``check_cell`` on each cell):
a data path that does not exist, a size, count or rate out of its range, a malformed ``extra``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import torch

from suites.engine.compiling import COMPILE_MODES
from suites.engine.suite import (
    Axis,
    Cell,
    CellContext,
    CellSkipped,
    Row,
    Suite,
    model_axis,
    square_image_size,
)
from suites.training.augment import AugmentConfig, RandAugmentSpec
from suites.training.data import SYNTHETIC
from suites.training.loop import AMP_CHOICES, EPOCHS_CSV, TrainConfig, train

DEFAULT_DATA = "data/cifar10-jpeg.npz"
FROM_RECIPE = "-"  # an override axis at this value keeps the recipe's setting
QUICK_TRAIN_IMAGES = 256
QUICK_TEST_IMAGES = 128

RECIPES: dict[str, TrainConfig] = {
    "seed": TrainConfig(
        epochs=30,
        batch_size=128,
        lr=1e-3,
        weight_decay=0.05,
        warmup_epochs=5,
        label_smoothing=0.1,
        ema_decay=0.999,
        img_size=224,
        augment=AugmentConfig(
            img_size=224,
            crop="rrc",
            interpolation="bicubic",
            randaugment="rand-m9-mstd0.5-inc1",
            color_jitter=0.0,
            erase_prob=0.25,
        ),
    ),
    "native32": TrainConfig(
        epochs=30,
        batch_size=512,
        lr=2e-3,
        weight_decay=0.05,
        warmup_epochs=3,
        label_smoothing=0.1,
        # the EMA averages over about 1 / (1 - decay) steps: 250 here, 2.6 epochs of 97 steps, as
        # the seed recipe's 0.999 spans 2.6 epochs of 390 steps (0.999 here would span 10 of the
        # 30 epochs: an EMA that lags the raw weights by points)
        ema_decay=0.996,
        img_size=32,
        augment=AugmentConfig(
            img_size=32,
            crop="pad",
            crop_padding=4,
            randaugment="rand-m6-n1-mstd0.5-inc1",
            color_jitter=0.0,
            erase_prob=0.0,
        ),
    ),
}


@dataclasses.dataclass(frozen=True)
class Setting:
    """A recipe setting that an axis or the ``extra`` axis may change: how its text is read
    (``kind``: int, float, text...) and the values that are valid, as a test and in words."""

    kind: str
    convert: Callable[[str], Any]
    rule: str
    valid: Callable[[Any], bool] = lambda value: True

    def parse(self, name: str, text: str) -> Any:
        """The value ``text`` gives ``name``; ``ValueError`` naming both and what is valid."""
        try:
            value = self.convert(text)
        except ValueError:
            raise ValueError(
                f"{name}={text!r} is not a valid {self.kind}; valid: {self.rule}"
            ) from None
        if not self.valid(value):
            raise ValueError(f"{name}={text!r} is not valid; valid: {self.rule}")
        return value


def _randaugment(text: str) -> str:
    """timm's RandAugment string (``rand-m9-mstd0.5-inc1``), or ``off`` (none)."""
    if text == "off":
        return ""
    RandAugmentSpec.parse(text)
    return text


def _amp(text: str) -> str:
    if text not in AMP_CHOICES:
        raise ValueError(text)
    return text


def _finite(value: float) -> bool:
    return math.isfinite(value)


# override axes (one value each by default: FROM_RECIPE)
OVERRIDES: dict[str, Setting] = {
    "epochs": Setting("int", int, "an integer >= 1", lambda v: v >= 1),
    "batch_size": Setting("int", int, "an integer >= 1 (the global batch)", lambda v: v >= 1),
    "lr": Setting("float", float, "a number > 0", lambda v: _finite(v) and v > 0),
    "weight_decay": Setting("float", float, "a number >= 0", lambda v: _finite(v) and v >= 0),
    "warmup_epochs": Setting("int", int, "an integer >= 0, below epochs", lambda v: v >= 0),
    "img_size": Setting("image size", square_image_size, "a positive integer (pixels per side)"),
    "ema_decay": Setting(
        "float", float, "a number from 0 (no EMA) to below 1", lambda v: 0 <= v < 1
    ),
}
# settings the ``extra`` axis may change, as ``name:value+name:value`` -> (setting, config part)
EXTRA_FIELDS: dict[str, tuple[Setting, str]] = {
    "label_smoothing": (
        Setting("float", float, "a number from 0 to below 1", lambda v: 0 <= v < 1),
        "train",
    ),
    "amp": (Setting("choice", _amp, ", ".join(AMP_CHOICES)), "train"),
    "randaugment": (
        Setting("RandAugment string", _randaugment, "off or e.g. rand-m9-mstd0.5-inc1"),
        "augment",
    ),
    "color_jitter": (
        Setting("float", float, "a number >= 0", lambda v: _finite(v) and v >= 0),
        "augment",
    ),
    "erase_prob": (
        Setting("float", float, "a number from 0 to 1", lambda v: 0 <= v <= 1),
        "augment",
    ),
    "mixup_alpha": (
        Setting("float", float, "a number >= 0 (0: off)", lambda v: _finite(v) and v >= 0),
        "augment",
    ),
    "cutmix_alpha": (
        Setting("float", float, "a number >= 0 (0: off)", lambda v: _finite(v) and v >= 0),
        "augment",
    ),
}
SUBSET_SIZE = Setting("int", int, "an integer >= 0 (0: all)", lambda v: v >= 0)
QUICK_VALUES = {"epochs": "1", "batch_size": "64", "warmup_epochs": "0"}


def _parse_bool(text: str) -> bool:
    lowered = str(text).lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{text!r} is not a boolean; valid: on, off, true, false, 1, 0")


def parse_extra(text: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``"mixup_alpha:0.8+cutmix_alpha:1"`` -> (train changes, augment changes); FROM_RECIPE: none."""
    train_changes: dict[str, Any] = {}
    augment_changes: dict[str, Any] = {}
    if text in (FROM_RECIPE, ""):
        return train_changes, augment_changes
    for item in text.split("+"):
        name, _, value = item.partition(":")
        if name not in EXTRA_FIELDS or not value:
            raise ValueError(
                f"extra item {item!r} is not valid; use name:value joined by '+', names: {', '.join(EXTRA_FIELDS)}"
            )
        setting, target = EXTRA_FIELDS[name]
        (train_changes if target == "train" else augment_changes)[name] = setting.parse(name, value)
    return train_changes, augment_changes


def seed_axis_value(text: str) -> str:
    """An ``Axis.kind`` for the ``seed`` axis: ``-`` (the run's ``--seed``) or an integer >= 0."""
    text = str(text).strip()
    if text == FROM_RECIPE or (text.isdigit() and int(text) >= 0):
        return text
    raise ValueError(
        f"seed {text!r} is not valid; use an integer >= 0, or '{FROM_RECIPE}' for --seed"
    )


def cell_seed(cell: Cell, run_seed: int) -> int:
    """The seed a cell trains with: its ``seed`` axis, or the run's ``--seed`` at ``-``."""
    text = str(cell.get("seed", FROM_RECIPE))
    return run_seed if text == FROM_RECIPE else int(seed_axis_value(text))


# ---- the axes' kinds: each checks a command-line value and keeps its text (the cell ids) --------


def override_value(name: str, text: str) -> str:
    """The kind of the override axis ``name``: FROM_RECIPE or a valid value, as given."""
    if text != FROM_RECIPE:
        OVERRIDES[name].parse(name, text)
    return text


def extra_value(text: str) -> str:
    """The kind of the ``extra`` axis: FROM_RECIPE or valid ``name:value+name:value`` items."""
    parse_extra(text)
    return text


def subset_size(name: str, text: str) -> str:
    """The kind of ``train_images`` and ``test_images``: an integer >= 0, as given."""
    SUBSET_SIZE.parse(name, text)
    return text


VALID_DATA = (
    "valid: a CIFAR-10 JPEG pack (.npz) that exists, torchvision's CIFAR-10 folder "
    "(cifar-10-batches-py, the folder holding it, or the one download=on fetches it into), or "
    f"{SYNTHETIC!r}"
)


def data_source(text: str) -> str:
    """The kind of the ``data`` axis: ``synthetic``, a ``.npz`` JPEG pack that exists, or a
    folder that exists (``cifar-10-batches-py``, the folder holding it, or the folder that
    ``--option download=on`` fetches it into)."""
    if text == SYNTHETIC:
        return text
    path = Path(text)
    if path.suffix == ".npz" and not path.is_file():
        raise ValueError(f"no such file; {VALID_DATA}")
    if path.suffix != ".npz" and not path.is_dir():
        raise ValueError(f"no such folder; {VALID_DATA}")
    return text


def check_cell(cell: Cell) -> None:
    """A cell's values together: a warm-up shorter than the training, a batch within the subset."""
    config = build_config(cell)
    train_images = int(cell.get("train_images", "0"))
    if 0 < train_images < config.batch_size:
        raise ValueError(
            f"batch_size {config.batch_size} exceeds train_images={train_images}; valid: a batch "
            "of at most the training images"
        )


def build_config(cell: Cell, quick: bool = False, seed: int = 0) -> TrainConfig:
    """The recipe named by ``cell['recipe']`` with the override axes (not FROM_RECIPE) applied."""
    recipe_name = cell.get("recipe", "seed")
    if recipe_name not in RECIPES:
        raise ValueError(f"recipe {recipe_name!r} is not valid; choices: {', '.join(RECIPES)}")
    recipe = RECIPES[recipe_name]
    train_changes, augment_changes = parse_extra(str(cell.get("extra", FROM_RECIPE)))
    train_changes.update(seed=seed, compile=str(cell.get("compile", "eager")))
    for name, setting in OVERRIDES.items():
        text = str(cell.get(name, FROM_RECIPE))
        if text != FROM_RECIPE:
            train_changes[name] = setting.parse(name, text)
    epochs = train_changes.get("epochs", recipe.epochs)
    if "warmup_epochs" not in train_changes and recipe.warmup_epochs >= epochs:
        # a shortened run (``--set epochs=1``) keeps the recipe's warm-up only where it fits
        train_changes["warmup_epochs"] = max(0, epochs - 1)
    for name in ("img_size", "label_smoothing"):
        if name in train_changes:
            augment_changes[name] = train_changes[name]
    augment = dataclasses.replace(recipe.augment, **augment_changes)
    config = dataclasses.replace(recipe, augment=augment, **train_changes)
    if quick:
        config = dataclasses.replace(config, progress=False)
    return config


def _count_gmacs(model: torch.nn.Module, img_size: int, device: str) -> float:
    """Multiply-accumulates per image at ``img_size`` (torch.utils.flop_counter counts 2 per MAC)."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.zeros(1, 3, img_size, img_size, device=device))
    model.train(was_training)
    return counter.get_total_flops() / 2 / 1e9


def measure(cell: Cell, ctx: CellContext) -> Row:
    import baselines
    from suites.engine.runner import seed_everything
    from suites.training.data import load_cifar10

    seed = cell_seed(cell, ctx.seed)
    seed_everything(seed)  # the model's initial weights follow the cell's seed
    config = build_config(cell, quick=ctx.quick, seed=seed)
    config = dataclasses.replace(
        config,
        progress=config.progress and ctx.progress,
        side_stream=_parse_bool(ctx.options.get("side_stream", "on")),
    )
    data = load_cifar10(
        str(cell.get("data", DEFAULT_DATA)),
        download=_parse_bool(ctx.options.get("download", "off")),
    )
    train_images = int(cell.get("train_images", "0"))
    test_images = int(cell.get("test_images", "0"))
    data = dataclasses.replace(
        data,
        train=data.train.subset(train_images, seed),
        test=data.test.subset(test_images, seed),
    )
    try:
        model = baselines.create(cell["model"], num_classes=10, img_size=config.img_size)
    except baselines.UnsupportedInput as error:
        raise CellSkipped(str(error)) from error
    device = ctx.device
    model = model.to(device)
    gmacs = _count_gmacs(model, config.img_size, device)
    model_generator = None
    # compiled, ProbSparse draws from the global RNG (re-seeded every epoch all the same): an
    # explicit generator would cost one graph break per ProbSparse block
    if baselines.is_favit(cell["model"]) and config.compile == "eager":
        import favit

        model_generator = torch.Generator(device=device)
        favit.set_generator(model, model_generator)
    result = train(model, data, config, device, ctx.artifact_dir, model_generator=model_generator)
    row = dict(result.summary)
    row.update(
        {
            "infer_gmacs": gmacs,
            "dataset": data.label,
            "train_images": len(data.train),
            "test_images": len(data.test),
            "smoke_run": bool(ctx.quick),
            "train_seed": seed,
        }
    )
    return row


def _learning_curves(table, run_dir: Path):
    import pandas as pd

    frames = []
    for _, row in table.iterrows():
        path = run_dir / "cells" / str(row["cell_id"]) / EPOCHS_CSV
        if path.is_file():
            frame = pd.read_csv(path)
            frame["run"] = f"{row['model']} ({row['recipe']})"
            frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else None


REPORT_COLUMNS = (
    "model", "recipe", "dataset", "epochs_trained", "train_img_size", "compile", "top1",
    "top1_ema", "train_ema_decay", "top1_best_optimistic", "best_epoch", "train_wall_h",
    "train_samples_per_sec", "steady_samples_per_sec", "infer_gmacs", "param_count",
    "peak_mem_mib",
)  # fmt: skip
SMOKE_WARNING = "SMOKE RUN (quick profile: tiny subset, 1 epoch) - these accuracies mean nothing."
SYNTHETIC_WARNING = "SYNTHETIC IMAGES (data=synthetic), not CIFAR-10."


def report(table, run_dir: Path) -> None:
    """accuracy.md/.tex, accuracy-vs-gmacs, accuracy-vs-time and learning-curves figures."""
    run_dir = Path(run_dir)
    done = table[table["status"] == "ok"].copy()
    if done.empty:
        return
    smoke = bool(done.get("smoke_run", False).astype(str).str.lower().eq("true").any())
    synthetic = "dataset" in done and done["dataset"].astype(str).str.startswith(SYNTHETIC).any()
    warning = " ".join(t for f, t in ((smoke, SMOKE_WARNING), (synthetic, SYNTHETIC_WARNING)) if f)
    title = " - ".join(t for f, t in ((smoke, "SMOKE RUN"), (synthetic, "SYNTHETIC DATA")) if f)
    done["train_wall_h"] = done["train_wall_s"].astype(float) / 3600
    _accuracy_table(done, run_dir, warning)
    _accuracy_scatters(done, run_dir, title)
    _learning_curves_figure(done, run_dir, title)


def _accuracy_table(done, run_dir: Path, warning: str) -> None:
    from suites.engine.render import write_table

    caption = (
        "CIFAR-10 top-1 (%) after the final epoch (top1, top1_ema: the result); "
        "top1_best_optimistic is the best epoch chosen on the test set. train_samples_per_sec: "
        "over the whole run; steady_samples_per_sec: median epoch after the first (which holds "
        "compilation and lazy initialization)."
    )
    write_table(
        done[[c for c in REPORT_COLUMNS if c in done.columns]],
        run_dir / "accuracy",
        caption=f"{warning} {caption}" if warning else caption,
        digits={
            "train_wall_h": 3, "train_ema_decay": 4, "infer_gmacs": 3, "param_count": 2,
            "epochs_trained": 0, "train_img_size": 0, "best_epoch": 0,
        },
    )  # fmt: skip


def _accuracy_scatters(done, run_dir: Path, title: str) -> None:
    """Top-1 against GMACs and against training time, a point per training."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    from suites.engine.render import log_x_if_wide, plot_style, save_figure

    plot_style()
    done = done.assign(label=done["model"].astype(str) + " (" + done["recipe"].astype(str) + ")")
    for x_column, x_label, stem in (
        ("infer_gmacs", "GMACs per image (training size)", "accuracy-vs-gmacs"),
        ("train_wall_h", "training time (h)", "accuracy-vs-time"),
    ):
        fig, ax = plt.subplots(figsize=(6.5, 4.5))
        sns.scatterplot(data=done, x=x_column, y="top1", hue="label", style="recipe", s=80, ax=ax)
        for _, row in done.iterrows():
            if not math.isnan(float(row[x_column])):
                ax.annotate(
                    str(row["model"]),
                    (float(row[x_column]), float(row["top1"])),
                    fontsize=8,
                    xytext=(4, 4),
                    textcoords="offset points",
                )
        ax.set(xlabel=x_label, ylabel="top-1 (%), final epoch", title=title or None)
        log_x_if_wide(ax, done[x_column].dropna())
        ax.legend(fontsize=7, loc="best")
        save_figure(fig, run_dir / stem)


def _learning_curves_figure(done, run_dir: Path, title: str) -> None:
    import matplotlib.pyplot as plt
    import seaborn as sns

    from suites.engine.render import save_figure

    curves = _learning_curves(done, run_dir)
    if curves is None:
        return
    long = curves.melt(
        id_vars=["run", "epoch"],
        value_vars=["test_acc", "test_acc_ema"],
        var_name="weights",
        value_name="top1",
    )
    fig, ax = plt.subplots(figsize=(7, 4.5))
    sns.lineplot(data=long, x="epoch", y="top1", hue="run", style="weights", marker="o", ax=ax)
    ax.set(xlabel="epoch", ylabel="test top-1 (%)", title=title or None)
    ax.legend(fontsize=7, loc="best")
    save_figure(fig, run_dir / "learning-curves")


def _override_axis(name: str) -> Axis:
    return Axis(
        name,
        default=[FROM_RECIPE],
        quick=[QUICK_VALUES[name]] if name in QUICK_VALUES else None,
        kind=partial(override_value, name),
        help=f"override the recipe's {name}: {OVERRIDES[name].rule} ('{FROM_RECIPE}' keeps it)",
    )


SUITE = Suite(
    name="accuracy",
    description="CIFAR-10 training (seed recipe at 224 or native32): final-epoch top-1 of raw and EMA weights, wall time, img/s, GMACs, memory",
    axes=[
        model_axis(["favit_b1"], quick=["favit_b0"]),
        Axis(
            "recipe",
            default=["seed"],
            quick=["native32"],
            choices=list(RECIPES),
            help="training recipe",
        ),
        Axis(
            "data",
            default=[DEFAULT_DATA],
            quick=[SYNTHETIC],
            kind=data_source,
            help=f"a .npz JPEG pack, a torchvision CIFAR-10 folder, or '{SYNTHETIC}'",
        ),
        *[_override_axis(name) for name in OVERRIDES],
        Axis(
            "extra",
            default=[FROM_RECIPE],
            kind=extra_value,
            help=f"more overrides as name:value+name:value; names: {', '.join(EXTRA_FIELDS)}",
        ),
        Axis(
            "compile",
            default=["eager"],
            choices=list(COMPILE_MODES),
            help="eager; compile (torch.compile); cudagraph (inductor with CUDA graphs); "
            "cudagraph_eager (CUDA graphs of the eager kernels); the last two CUDA only",
        ),
        Axis(
            "seed",
            default=[FROM_RECIPE],
            kind=seed_axis_value,
            help=f"training seed, one cell per value ('{FROM_RECIPE}': the run's --seed)",
        ),
        Axis(
            "train_images",
            default=["0"],
            quick=[str(QUICK_TRAIN_IMAGES)],
            kind=partial(subset_size, "train_images"),
            help="random training subset size (0: all)",
        ),
        Axis(
            "test_images",
            default=["0"],
            quick=[str(QUICK_TEST_IMAGES)],
            kind=partial(subset_size, "test_images"),
            help="random test subset size (0: all)",
        ),
    ],
    needs_gpu=True,
    measure=measure,
    check_cell=check_cell,
    option_kinds={"download": _parse_bool, "side_stream": _parse_bool},
    report=report,
    cell_timeout_s=48 * 3600.0,
    examples=(
        "python bench.py --suite accuracy --quick",
        "python bench.py --suite accuracy --models favit_b1:probsparse_seed+seed_compat --set recipe=seed",
        "python bench.py --suite accuracy --models favit_b1:probsparse_seed+seed_compat,favit_b1:sdpa --set recipe=seed --set seed=0,1,2",
        "python bench.py --suite accuracy --models favit_b0,favit_b1,deit_tiny,pvt_v2_b1,swin_t_w4,resnet50 --set recipe=native32",
        "torchrun --nproc_per_node 2 bench.py --suite accuracy --set recipe=native32 --set epochs=5",
    ),
)
