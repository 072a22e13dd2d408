"""Data-parallel training (gloo, 2 CPU processes) ends with the weights of one process."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import torch
import torch.multiprocessing as mp
from torch import nn

from suites.training.augment import AugmentConfig
from suites.training.data import synthetic_cifar10
from suites.training.loop import TrainConfig, train

CONFIG = TrainConfig(
    epochs=2,
    batch_size=16,  # global: 8 per rank with two ranks
    lr=1e-2,
    warmup_epochs=0,
    img_size=8,
    ema_decay=0.0,
    eval_batch_size=32,
    progress=False,
    augment=AugmentConfig(img_size=8, crop="none", hflip=0.0, randaugment="", erase_prob=0.0),
)


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.GELU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 10),
    )


def _data():
    return synthetic_cifar10(64, 32, seed=2, img_size=8)


def _rank_main(rank: int, world_size: int, port: int, out: str) -> None:
    os.environ.update(
        WORLD_SIZE=str(world_size),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    torch.set_num_threads(1)
    import torch.distributed as dist

    try:
        result = train(_model(), _data(), CONFIG, "cpu", Path(out) / "run")
        if rank == 0:
            torch.save(
                {"state": result.model.state_dict(), "summary": result.summary},
                Path(out) / "ddp.pt",
            )
        dist.barrier()  # leave together: tearing gloo down while the peer still works can abort
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_gloo_ranks_match_one_process(tmp_path: Path) -> None:
    mp.spawn(_rank_main, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    ddp = torch.load(tmp_path / "ddp.pt", weights_only=True)
    single = train(_model(), _data(), CONFIG, "cpu")
    assert ddp["summary"]["world_size"] == 2
    for name, tensor in single.model.state_dict().items():
        torch.testing.assert_close(ddp["state"][name], tensor, rtol=1e-5, atol=1e-6)
    assert (
        ddp["summary"]["top1"] == single.summary["top1"]
    )  # sharded evaluation sums to the same count
    assert (tmp_path / "run" / "checkpoint.pt").is_file()  # rank 0 wrote it
