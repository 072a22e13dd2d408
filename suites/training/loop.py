"""CIFAR-10 training: the seed's loop made fast, repeatable, resumable and data-parallel.

What one epoch does (the seed's ``New_WN_PY.py`` ``main``, with the fixes docs/SUBJECT.md lists for its defects):
AdamW; the learning rate set per epoch by the seed's ``LambdaLR`` (``epoch / warmup`` for the first
``warmup`` epochs, then ``0.5 (1 + cos(pi (epoch - warmup) / (epochs - warmup)))``), stepped after
each epoch, so epoch 0 trains at lr 0 exactly as the seed's did; label-smoothed cross-entropy
(soft-target cross-entropy when Mixup/CutMix is on); an EMA of the weights (timm's ``ModelEmaV3``,
updated after every step) evaluated beside the raw model after every epoch; drop_last batches.
Added: bf16 autocast on CUDA, augmentation on the device, a checkpoint after every epoch, and DDP.

Repeatability: the data order, the augmentation generator, torch's global RNG (dropout, drop
path) and an optional model generator (ProbSparse sampling) are all re-seeded at the start of each
epoch from ``(seed, epoch, rank)``, so a run stopped after any epoch and resumed from its checkpoint
ends with the same weights as an unbroken run. The checkpoint also records those RNG states.
"""

from __future__ import annotations

import csv
import math
import os
import pickle
import statistics
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from suites.engine.compiling import COMPILE_MODES, CUDA_GRAPH_MODES, compile_model, step_mark
from suites.training.augment import AugmentConfig, eval_batch, train_batch
from suites.training.data import Cifar10

CHECKPOINT_NAME = "checkpoint.pt"
EPOCHS_CSV = "epochs.csv"
EPOCH_COLUMNS = (
    "epoch",
    "lr",
    "train_loss",
    "train_acc",
    "test_acc",
    "test_acc_ema",
    "epoch_s",
    "eval_s",
    "train_img_s",
    "peak_mem_mib",
)
AMP_CHOICES = ("bf16", "fp32")
# what every checkpoint holds
CHECKPOINT_KEYS = ("epoch", "model", "ema", "optimizer", "scheduler", "scaler", "history", "config")
# config fields that must match for a checkpoint to be resumed
RESUME_KEYS = (
    "epochs",
    "batch_size",
    "lr",
    "weight_decay",
    "warmup_epochs",
    "seed",
    "img_size",
    "ema_decay",
    "label_smoothing",
    "compile",  # compiled runs draw ProbSparse samples from the global RNG, eager ones do not
)


@dataclass(frozen=True)
class TrainConfig:
    """One training run. ``batch_size`` is the global batch (split over DDP ranks)."""

    epochs: int = 30
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_epochs: int = 5
    label_smoothing: float = 0.1
    ema_decay: float = 0.999  # 0 turns the EMA off
    eval_batch_size: int = 500
    img_size: int = 224
    amp: str = "bf16"  # bf16 autocast on CUDA; always fp32 on the CPU
    compile: str = "eager"  # one of suites.engine.compiling.COMPILE_MODES
    seed: int = 0
    progress: bool = True
    side_stream: bool = True  # CUDA: augment each batch on a side stream (augmented_batches)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self) -> None:
        if self.amp not in AMP_CHOICES:
            raise ValueError(f"amp {self.amp!r} is not valid; choices: {', '.join(AMP_CHOICES)}")
        if self.compile not in COMPILE_MODES:
            raise ValueError(
                f"compile {self.compile!r} is not valid; choices: {', '.join(COMPILE_MODES)}"
            )
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(
                f"epochs ({self.epochs}) and batch_size ({self.batch_size}) must be >= 1"
            )
        if not 0 <= self.warmup_epochs < self.epochs:
            raise ValueError(
                f"warmup_epochs {self.warmup_epochs} must lie in 0..epochs-1 = {self.epochs - 1}"
            )


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in a torchrun launch (world_size 1 when not launched by torchrun)."""

    world_size: int = 1
    rank: int = 0
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


@dataclass
class TrainResult:
    summary: dict[str, Any]  # the run's final row
    history: list[dict[str, float]]  # one row per epoch
    model: nn.Module  # the raw (unwrapped) model
    ema_model: nn.Module | None


def seed_lr_factor(epoch: int, warmup_epochs: int, total_epochs: int) -> float:
    """The seed's LambdaLR factor for ``epoch`` (0-based): linear warmup from 0, then cosine."""
    if epoch < warmup_epochs:
        return epoch / warmup_epochs
    return 0.5 * (1 + math.cos(math.pi * (epoch - warmup_epochs) / (total_epochs - warmup_epochs)))


def derive_seed(seed: int, epoch: int, stream: int, rank: int = 0) -> int:
    """A distinct, reproducible seed per (run seed, epoch, random stream, rank)."""
    return (((seed * 1_000_003 + epoch) * 101 + stream) * 8191 + rank) % (2**62)


def distributed_from_env() -> DistInfo:
    """Read torchrun's ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``."""
    return DistInfo(
        int(os.environ.get("WORLD_SIZE", "1")),
        int(os.environ.get("RANK", "0")),
        int(os.environ.get("LOCAL_RANK", "0")),
    )


def init_distributed(device: str) -> tuple[DistInfo, torch.device]:
    """Join the process group when launched by torchrun (nccl on CUDA, gloo on the CPU).

    Returns the rank layout and this rank's device (``cuda:<LOCAL_RANK>`` on CUDA).
    """
    info = distributed_from_env()
    torch_device = torch.device(device)
    if not info.enabled:
        return info, torch_device
    import torch.distributed as dist

    if torch_device.type == "cuda":
        # one GPU per rank; when a launcher already pinned this process to one GPU, use that one
        index = (
            info.local_rank
            if info.local_rank < torch.cuda.device_count()
            else (torch_device.index or 0)
        )
        torch_device = torch.device("cuda", index)
        torch.cuda.set_device(torch_device)
    if not dist.is_initialized():
        dist.init_process_group(
            "nccl" if torch_device.type == "cuda" else "gloo",
            rank=info.rank,
            world_size=info.world_size,
        )
    return info, torch_device


def _all_reduce_sum(values: torch.Tensor, dist_info: DistInfo) -> torch.Tensor:
    if dist_info.enabled:
        import torch.distributed as dist

        values = values.clone()
        dist.all_reduce(values)
    return values


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _autocast(device: torch.device, amp: str):
    enabled = device.type == "cuda" and amp == "bf16"
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled)


def augmented_batches(
    data: Cifar10,
    order: torch.Tensor,
    steps: int,
    batch_size: int,
    offset: int,
    local_batch: int,
    augment: AugmentConfig,
    generator: torch.Generator,
    side: torch.cuda.Stream | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One epoch's training batches in ``order``, augmented on the device (this rank's slice).

    With a CUDA stream ``side`` each batch is made on it. Its host reads (RandAugment's group
    sizes) and host-to-device constants then wait for that stream's few kernels only, not for the
    training step queued before them on the main stream, so the host prepares batch s+1 while the
    GPU runs step s. The calls and their order are those of a one-stream loop: the images are bit
    for bit the same. Without ``side`` they are made on the current stream, as the plain loop does.
    Pass the same stream every epoch: PyTorch keeps a cuBLAS workspace per stream for the life of
    the process (32 MiB on an H200), so a new stream per epoch grows memory by that much an epoch.
    """
    main = None
    if side is not None:
        main = torch.cuda.current_stream(order.device)
        side.wait_stream(main)  # `order` was made on the main stream
    for step in range(steps):
        first = step * batch_size + offset
        with torch.cuda.stream(side) if side is not None else nullcontext():
            index = order[first : first + local_batch]
            x, targets = train_batch(
                data.train.images[index], data.train.labels[index], augment, generator
            )
        if side is not None:
            main.wait_stream(side)
            # made on the side stream, read on the main one: keep their memory until main is done
            x.record_stream(main)
            targets.record_stream(main)
        yield x, targets


@torch.no_grad()
def evaluate(
    model: nn.Module, data: Cifar10, config: TrainConfig, device: torch.device, dist_info: DistInfo
) -> float:
    """Top-1 accuracy in % on the test split; each rank scores its shard, counts are summed."""
    model.eval()
    images, labels = data.test.images, data.test.labels
    shard = torch.arange(dist_info.rank, len(data.test), dist_info.world_size, device=labels.device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    for start in range(0, shard.numel(), config.eval_batch_size):
        index = shard[start : start + config.eval_batch_size]
        x = eval_batch(
            images[index].to(device), config.img_size, config.augment.mean, config.augment.std
        )
        with _autocast(device, config.amp):
            logits = model(x)
        correct += (logits.argmax(1) == labels[index].to(device)).sum()
    correct = _all_reduce_sum(correct, dist_info)
    return 100.0 * correct.item() / len(data.test)


def _loss(logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float) -> torch.Tensor:
    logits = logits.float()
    if targets.ndim == 2:  # soft targets from Mixup/CutMix, smoothing already folded in
        return F.cross_entropy(logits, targets)
    return F.cross_entropy(logits, targets, label_smoothing=label_smoothing)


def _atomic_save(obj: Any, path: Path) -> None:
    temporary = path.with_name(path.name + f".tmp{os.getpid()}")
    torch.save(obj, temporary)
    os.replace(temporary, path)


def _write_epochs_csv(path: Path, history: list[dict[str, float]]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=EPOCH_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(history)


def _append_epoch_row(path: Path, row: dict[str, float]) -> None:
    new_file = not path.exists()
    with open(path, "a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=EPOCH_COLUMNS, lineterminator="\n")
        if new_file:
            writer.writeheader()
        writer.writerow(row)
        handle.flush()


def find_checkpoint(artifact_dir: Path | None) -> Path | None:
    if artifact_dir is None:
        return None
    path = Path(artifact_dir) / CHECKPOINT_NAME
    return path if path.is_file() else None


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed; the message names the file and what is wrong."""


def load_checkpoint(path: Path, device: torch.device) -> dict[str, Any]:
    """A checkpoint written by ``train``, read as tensors and plain values only (nothing in it
    is executed); ``CheckpointError`` (one line) when it is empty, cut short or another file."""
    start_over = "delete it to train this cell from the start"
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(
            f"checkpoint {str(path)!r} is empty (a write cut short); {start_over}"
        )
    if not zipfile.is_zipfile(path):
        raise CheckpointError(
            f"checkpoint {str(path)!r} ({size} bytes) is not a whole torch.save archive "
            f"(cut short, or another kind of file); {start_over}"
        )
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(
            f"checkpoint {str(path)!r} holds objects other than tensors and plain values, "
            f"which are never loaded; {start_over}"
        ) from None
    except Exception as error:
        first_line = (str(error).strip().splitlines() or [""])[0]
        raise CheckpointError(
            f"checkpoint {str(path)!r} cannot be read ({type(error).__name__}: {first_line}); "
            f"{start_over}"
        ) from None
    missing = [key for key in CHECKPOINT_KEYS if not isinstance(state, dict) or key not in state]
    if missing:
        raise CheckpointError(
            f"checkpoint {str(path)!r} lacks {', '.join(missing)}: not one train wrote; {start_over}"
        )
    return state


@dataclass
class _Run:
    """What one training run updates: the model and its EMA, the optimizer, the schedule, the
    epochs so far and the generators re-seeded every epoch."""

    config: TrainConfig
    device: torch.device
    dist_info: DistInfo
    raw_model: nn.Module
    ema: Any  # timm's ModelEmaV3, or None
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    augment_generator: torch.Generator
    order_generator: torch.Generator
    model_generator: torch.Generator | None
    local_batch: int  # this rank's share of the global batch
    steps_per_epoch: int
    history: list[dict[str, float]] = field(default_factory=list)
    start_epoch: int = 0


def _start_run(
    model: nn.Module,
    config: TrainConfig,
    device: torch.device,
    dist_info: DistInfo,
    model_generator: torch.Generator | None,
    layout: tuple[int, int],
) -> _Run:
    """A fresh run: the model on ``device``, its EMA, AdamW, the seed's schedule, generators;
    ``layout`` is ``(local batch, steps per epoch)``."""
    from timm.utils import ModelEmaV3

    raw_model = model.to(device)
    optimizer = torch.optim.AdamW(  # fused on CUDA: a few kernels per step for all parameters
        raw_model.parameters(),
        lr=config.lr,
        weight_decay=config.weight_decay,
        fused=device.type == "cuda" or None,
    )
    return _Run(
        config=config,
        device=device,
        dist_info=dist_info,
        raw_model=raw_model,
        ema=ModelEmaV3(raw_model, decay=config.ema_decay) if config.ema_decay > 0 else None,
        optimizer=optimizer,
        scheduler=torch.optim.lr_scheduler.LambdaLR(
            optimizer,
            partial(seed_lr_factor, warmup_epochs=config.warmup_epochs, total_epochs=config.epochs),
        ),
        # bf16 and fp32 need no loss scaling; kept for fp16 checkpoints
        scaler=torch.amp.GradScaler(device.type, enabled=False),
        augment_generator=torch.Generator(device=device),
        order_generator=torch.Generator(),
        model_generator=model_generator,
        local_batch=layout[0],
        steps_per_epoch=layout[1],
    )


def _batch_layout(config: TrainConfig, train_count: int, dist_info: DistInfo) -> tuple[int, int]:
    """``(local batch, steps per epoch)``: the global batch split over the ranks, drop_last."""
    if config.batch_size % dist_info.world_size:
        raise ValueError(
            f"batch_size {config.batch_size} must be divisible by the world size {dist_info.world_size}"
        )
    steps_per_epoch = train_count // config.batch_size  # drop_last, as the seed's loader
    if steps_per_epoch < 1:
        raise ValueError(
            f"batch_size {config.batch_size} exceeds the {train_count} training images"
        )
    return config.batch_size // dist_info.world_size, steps_per_epoch


def _shared_checkpoint(artifact_dir: Path | None, dist_info: DistInfo) -> Path | None:
    """The checkpoint rank 0 finds in ``artifact_dir``; every rank resumes from it."""
    checkpoint_path = find_checkpoint(artifact_dir) if dist_info.is_main else None
    if dist_info.enabled:
        import torch.distributed as dist

        shared = [str(checkpoint_path) if checkpoint_path else ""]
        dist.broadcast_object_list(shared, src=0)
        checkpoint_path = Path(shared[0]) if shared[0] else None
    return checkpoint_path


def _resume(run: _Run, checkpoint_path: Path, artifact_dir: Path | None) -> None:
    """Continue ``run`` from its checkpoint, written with the same settings (``RESUME_KEYS``)."""
    state = load_checkpoint(checkpoint_path, run.device)
    saved, config = state["config"], run.config
    mismatched = {
        key: (saved.get(key), getattr(config, key))
        for key in RESUME_KEYS
        if saved.get(key) != getattr(config, key)
    }
    if mismatched:
        raise ValueError(
            f"checkpoint {str(checkpoint_path)!r} was written with other settings (saved, now): {mismatched}"
        )
    run.raw_model.load_state_dict(state["model"])
    if run.ema is not None:
        run.ema.module.load_state_dict(state["ema"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    run.scaler.load_state_dict(state["scaler"])
    run.history = [dict(row) for row in state["history"]]
    run.start_epoch = int(state["epoch"])
    if artifact_dir is not None and run.dist_info.is_main:
        _write_epochs_csv(artifact_dir / EPOCHS_CSV, run.history)  # drop rows of an epoch cut short


def _training_model(run: _Run) -> nn.Module:
    """The model the steps call: DDP-wrapped across ranks, compiled as ``config.compile`` asks."""
    train_model: nn.Module = run.raw_model
    device = run.device
    if run.dist_info.enabled:
        from torch.nn.parallel import DistributedDataParallel

        train_model = DistributedDataParallel(
            run.raw_model, device_ids=[device.index] if device.type == "cuda" else None
        )
    if run.config.compile in CUDA_GRAPH_MODES and device.type != "cuda":
        raise ValueError(f"compile {run.config.compile!r} needs a CUDA device")
    return compile_model(train_model, run.config.compile)


def _seed_epoch(run: _Run, epoch: int) -> None:
    """Every random stream of ``epoch`` from ``(seed, epoch, rank)``: a resumed run repeats it."""
    seed, rank = run.config.seed, run.dist_info.rank
    run.order_generator.manual_seed(derive_seed(seed, epoch, 0))
    run.augment_generator.manual_seed(derive_seed(seed, epoch, 1, rank))
    torch.manual_seed(derive_seed(seed, epoch, 2, rank))
    if run.model_generator is not None:
        run.model_generator.manual_seed(derive_seed(seed, epoch, 3, rank))


def _train_steps(
    run: _Run,
    train_model: nn.Module,
    batches: Iterator[tuple[torch.Tensor, torch.Tensor]],
    epoch: int,
    progress: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One epoch of optimizer steps; returns the summed loss and the count of correct guesses."""
    config, device = run.config, run.device
    mark_step = step_mark(config.compile)
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    for step, (x, targets) in enumerate(batches):
        mark_step()  # cudagraph: the last step's outputs are dead before the next replay
        with _autocast(device, config.amp):
            logits = train_model(x)
        loss = _loss(logits, targets, config.label_smoothing)
        run.optimizer.zero_grad(set_to_none=True)
        run.scaler.scale(loss).backward()
        run.scaler.step(run.optimizer)
        run.scaler.update()
        if run.ema is not None:
            run.ema.update(run.raw_model)
        loss_sum += loss.detach() * x.shape[0]
        hard = targets.argmax(1) if targets.ndim == 2 else targets
        correct += (logits.detach().argmax(1) == hard).sum()
        progress.update(1)
        if progress.disable is False and (step % 50 == 0 or step == run.steps_per_epoch - 1):
            progress.set_postfix(
                epoch=f"{epoch + 1}/{config.epochs}",
                loss=f"{loss.item():.3f}",
                test_acc=f"{run.history[-1]['test_acc']:.2f}" if run.history else "-",
            )
    return loss_sum, correct


def _epoch_row(
    run: _Run, data: Cifar10, epoch: int, lr: float, sums: torch.Tensor, train_s: float
) -> dict[str, float]:
    """Evaluate the raw and EMA weights after ``epoch``; the epoch's row of ``epochs.csv``.
    ``sums``: this rank's summed loss and correct guesses over the epoch."""
    config, device, dist_info = run.config, run.device, run.dist_info
    seen = run.steps_per_epoch * config.batch_size
    totals = _all_reduce_sum(sums, dist_info)
    eval_start = time.perf_counter()
    test_acc = evaluate(run.raw_model, data, config, device, dist_info)
    test_acc_ema = (
        evaluate(run.ema.module, data, config, device, dist_info)
        if run.ema is not None
        else float("nan")
    )
    _synchronize(device)
    return {
        "epoch": epoch + 1,
        "lr": lr,
        "train_loss": totals[0].item() / seen,
        "train_acc": 100.0 * totals[1].item() / seen,
        "test_acc": test_acc,
        "test_acc_ema": test_acc_ema,
        "epoch_s": train_s,
        "eval_s": time.perf_counter() - eval_start,
        "train_img_s": seen / train_s,
        "peak_mem_mib": torch.cuda.max_memory_allocated(device) / 2**20
        if device.type == "cuda"
        else float("nan"),
    }


def _checkpoint(run: _Run, epochs_done: int) -> dict[str, Any]:
    """What ``_resume`` needs to continue after ``epochs_done`` epochs (and the RNG states)."""
    device = run.device
    rng = {
        "torch_cpu": torch.get_rng_state(),
        "torch_cuda": torch.cuda.get_rng_state(device)
        if device.type == "cuda"
        else torch.empty(0, dtype=torch.uint8),
        "augment": run.augment_generator.get_state(),
        "data_order": run.order_generator.get_state(),
    }
    if run.model_generator is not None:
        rng["model"] = run.model_generator.get_state()
    return {
        "epoch": epochs_done,
        "model": run.raw_model.state_dict(),
        "ema": run.ema.module.state_dict() if run.ema is not None else {},
        "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(),
        "scaler": run.scaler.state_dict(),
        "rng": rng,
        "history": run.history,
        "config": {key: value for key, value in asdict(run.config).items() if key != "augment"},
    }


def _progress_bar(run: _Run) -> Any:
    from tqdm import tqdm

    return tqdm(
        total=run.config.epochs * run.steps_per_epoch,
        initial=run.start_epoch * run.steps_per_epoch,
        disable=not (run.config.progress and run.dist_info.is_main),
        desc="train",
        unit="step",
        dynamic_ncols=True,
        mininterval=1.0,
    )


def _train_epoch(
    run: _Run,
    train_model: nn.Module,
    data: Cifar10,
    epoch: int,
    side_stream: torch.cuda.Stream | None,
    progress: Any,
) -> dict[str, float]:
    """Train one epoch (re-seeded from its number) and evaluate; returns its row."""
    config, device, dist_info = run.config, run.device, run.dist_info
    _seed_epoch(run, epoch)
    lr = run.optimizer.param_groups[0]["lr"]
    order = torch.randperm(len(data.train), generator=run.order_generator).to(device)
    train_model.train()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    _synchronize(device)
    epoch_start = time.perf_counter()
    batches = augmented_batches(
        data,
        order,
        run.steps_per_epoch,
        config.batch_size,
        dist_info.rank * run.local_batch,
        run.local_batch,
        config.augment,
        run.augment_generator,
        side_stream,
    )
    loss_sum, correct = _train_steps(run, train_model, batches, epoch, progress)
    _synchronize(device)
    train_s = time.perf_counter() - epoch_start
    sums = torch.stack([loss_sum.float(), correct.float()])
    return _epoch_row(run, data, epoch, lr, sums, train_s)


def train(
    model: nn.Module,
    data: Cifar10,
    config: TrainConfig,
    device: str | torch.device = "cpu",
    artifact_dir: Path | None = None,
    model_generator: torch.Generator | None = None,
    on_epoch_end: Callable[[dict[str, float]], None] | None = None,
) -> TrainResult:
    """Train ``model`` on ``data`` (uint8 tensors, any device) and return the final summary row.

    ``artifact_dir`` receives ``epochs.csv`` and ``checkpoint.pt`` (rank 0 only); when it already
    holds a checkpoint the run continues from it. ``model_generator`` (e.g. the one given to
    ``favit.set_generator``) is re-seeded every epoch. ``on_epoch_end`` sees each epoch's row after
    its checkpoint is on disk (tests use it to stop a run).
    """
    dist_info, device = init_distributed(str(device))
    layout = _batch_layout(config, len(data.train), dist_info)
    data = data.to(device)
    artifact_dir = Path(artifact_dir) if artifact_dir is not None else None
    saving = artifact_dir is not None and dist_info.is_main
    if saving:
        artifact_dir.mkdir(parents=True, exist_ok=True)
    run = _start_run(model, config, device, dist_info, model_generator, layout)
    checkpoint_path = _shared_checkpoint(artifact_dir, dist_info)
    if checkpoint_path is not None:
        _resume(run, checkpoint_path, artifact_dir)
    train_model = _training_model(run)
    # one side stream for the whole run (augmented_batches says why not one per epoch)
    side_stream = (
        torch.cuda.Stream(device) if config.side_stream and device.type == "cuda" else None
    )
    progress = _progress_bar(run)
    for epoch in range(run.start_epoch, config.epochs):
        row = _train_epoch(run, train_model, data, epoch, side_stream, progress)
        run.history.append(row)
        run.scheduler.step()
        if saving:
            _atomic_save(_checkpoint(run, epoch + 1), artifact_dir / CHECKPOINT_NAME)
            _append_epoch_row(artifact_dir / EPOCHS_CSV, row)
        if dist_info.enabled:
            import torch.distributed as dist

            dist.barrier()
        if on_epoch_end is not None:
            on_epoch_end(row)
    progress.close()
    summary = summarize(run.history, config, run.raw_model, dist_info)
    ema_model = run.ema.module if run.ema is not None else None
    return TrainResult(summary, run.history, run.raw_model, ema_model)


def summarize(
    history: list[dict[str, float]], config: TrainConfig, model: nn.Module, dist_info: DistInfo
) -> dict[str, Any]:
    """The final row: the last epoch's accuracy is THE result; the test-picked best is optimistic."""
    last = history[-1]
    best = max(history, key=lambda row: row["test_acc"])
    best_ema = max(
        history,
        key=lambda row: row["test_acc_ema"] if not math.isnan(row["test_acc_ema"]) else -1.0,
    )
    train_s = sum(row["epoch_s"] for row in history)
    peaks = [row["peak_mem_mib"] for row in history if not math.isnan(row["peak_mem_mib"])]
    return {
        "top1": last["test_acc"],
        "top1_ema": last["test_acc_ema"],
        "top1_best_optimistic": best["test_acc"],
        "best_epoch": best["epoch"],
        "top1_ema_best_optimistic": best_ema["test_acc_ema"],
        "best_epoch_ema": best_ema["epoch"],
        "final_train_loss": last["train_loss"],
        "epochs_trained": len(history),  # not "epochs": that is an axis of the suite
        "train_s": train_s,
        "train_wall_s": sum(row["epoch_s"] + row["eval_s"] for row in history),
        "train_samples_per_sec": sum(row["train_img_s"] * row["epoch_s"] for row in history)
        / train_s,
        # the median epoch after the first, whose time holds compilation and lazy initialization
        "steady_samples_per_sec": statistics.median(
            row["train_img_s"] for row in (history[1:] or history)
        ),
        "param_count": sum(p.numel() for p in model.parameters()) / 1e6,
        "peak_mem_mib": max(peaks) if peaks else float("nan"),
        "train_batch_size": config.batch_size,
        "train_img_size": config.img_size,
        "base_lr": config.lr,  # not "lr": that is an axis of the suite
        "train_ema_decay": config.ema_decay,  # not "ema_decay": that is an axis of the suite
        "augment_side_stream": config.side_stream,
        "world_size": dist_info.world_size,
    }
