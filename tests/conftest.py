"""Shared fixtures: the repository root on sys.path (worker processes inherit it); one intra-op
thread per test."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(autouse=True)
def _one_intra_op_thread():
    """Tiny ops on a shared 2-core box run ~10x faster on one thread than with OpenMP spinning."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def stand_in_model(monkeypatch):
    """``baselines`` builds a tiny convolutional model for any name (CPU seconds to train), and no
    name is FaViT."""
    from torch import nn

    import baselines

    def stand_in(name: str, num_classes: int = 1000, img_size: int = 224) -> nn.Module:
        torch.manual_seed(0)
        return nn.Sequential(
            nn.Conv2d(3, 8, 3, stride=2, padding=1),
            nn.GELU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(8, num_classes),
        )

    monkeypatch.setattr(baselines, "create", stand_in)
    monkeypatch.setattr(baselines, "is_favit", lambda name: False)
