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
