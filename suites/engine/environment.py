"""The record of where and how a run was made: ``env.json`` beside every ``rows.csv``."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

PACKAGES = ("torch", "torchvision", "timm", "fvcore", "numpy", "pandas", "nvidia-ml-py")
REPO_ROOT = Path(__file__).resolve().parent.parent


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def git_state(root: Path = REPO_ROOT) -> dict[str, Any]:
    """``{"commit", "dirty", "tree"}`` of the checkout holding this code (None where git fails).

    ``tree`` is the git tree hash of the files as they are (tracked and untracked-but-not-ignored,
    which is what travels to a remote machine): it equals ``git rev-parse COMMIT^{tree}`` for the
    commit whose files these are, even when ``commit`` (the checkout's HEAD) is an older one, so
    ``git log --format='%H %T' | grep TREE`` names the code of a run made from a copied tree.
    It is computed through a scratch index, leaving the checkout's own index untouched.
    """

    def git(*args: str, env: Mapping[str, str] | None = None) -> str | None:
        try:
            done = subprocess.run(
                ["git", *args],
                cwd=root,
                capture_output=True,
                text=True,
                timeout=30,
                env=None if env is None else {**os.environ, **env},
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("--no-optional-locks", "status", "--porcelain", "--untracked-files=no")
    return {
        "commit": commit,
        "dirty": None if status is None else bool(status),
        "tree": None if commit is None else working_tree_hash(root, git),
    }


def working_tree_hash(root: Path, git: Callable[..., str | None]) -> str | None:
    """The tree hash of ``root``'s files as they are, through a copy of the index (its stat cache)."""
    index = git("rev-parse", "--path-format=absolute", "--git-path", "index")
    with tempfile.TemporaryDirectory() as scratch:
        env = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
        if index is not None and Path(index).exists():
            # copy2 keeps the index's mtime: git trusts a cached stat only for files older than
            # the index (its "racy git" rule), so a fresh mtime would hide a same-size edit
            shutil.copy2(index, env["GIT_INDEX_FILE"])
        if git("add", "--all", ".", env=env) is None:
            return None
        return git("write-tree", env=env)


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_info() -> list[dict[str, Any]]:
    """Name, driver and memory of each visible GPU (NVML when present, else torch)."""
    import torch

    if not torch.cuda.is_available():
        return []
    gpus = []
    for index in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(index)
        gpus.append(
            {
                "index": index,
                "name": props.name,
                "memory_mib": props.total_memory / 2**20,
                "capability": f"{props.major}.{props.minor}",
            }
        )
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            driver = pynvml.nvmlSystemGetDriverVersion()
            for gpu in gpus:
                gpu["driver"] = driver.decode() if isinstance(driver, bytes) else driver
        finally:
            pynvml.nvmlShutdown()
    except Exception as exc:  # NVML missing or unusable: the torch figures stay
        for gpu in gpus:
            gpu["driver"] = f"unavailable ({type(exc).__name__})"
    return gpus


def collect_environment(run: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Everything needed to interpret a run's numbers; ``run`` is the suite, axes, device, seed, ...."""
    import torch

    return {
        "started_utc": utc_now(),
        "command": [sys.executable, *sys.argv],
        "cwd": os.getcwd(),
        "git": git_state(),
        "hostname": socket.gethostname(),
        "os": platform.platform(),
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "packages": package_versions(),
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "gpus": gpu_info(),
        "run": dict(run or {}),
    }
