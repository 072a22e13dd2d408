"""Checkpoints: load files written by the seed's or the official FaViT's training code.

The original code names parameters ``patch_embed{i}.*``, ``block{i}.{j}.*``, ``norm{i}.*`` and
``head.*`` (stage i in 1..4; ``docs/SUBJECT.md``, "Checkpoints"); this package keeps them in
``stages.{i-1}.*`` and renames a few attention modules. ``original_to_ours`` /
``ours_to_original`` map one key name either way.
"""

from __future__ import annotations

import argparse
import contextlib
import re
from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import Any

import torch
from torch import nn

# (original, ours) prefixes inside a block, after "block{i}.{j}." / "stages.{i-1}.blocks.{j}."
_BLOCK_RENAMES: tuple[tuple[str, str], ...] = (
    ("attn.kv_g.", "attn.global_attn.kv."),
    ("attn.sr.", "attn.global_attn.sr."),
    ("attn.norm.", "attn.global_attn.norm."),
    ("attn.local_conv_g.", "attn.global_attn.v_conv."),
    ("attn.kv_l.depth_conv.", "attn.kv_depthwise."),
    ("attn.kv_l.point_conv.", "attn.kv_pointwise."),
    ("mlp.dwconv.dwconv.", "mlp.dwconv."),
)
# window-branch module lists: original "attn.<list>.{k}." <-> ours "attn.windows.{k}.<name>."
_BRANCH_RENAMES: tuple[tuple[str, str], ...] = (
    ("fcs", "fc"),
    ("single_heads", "kv"),
    ("local_convs", "v_conv"),
)
_ORIGINAL_KEY = re.compile(r"^(patch_embed|block|norm)\d+\.")
_SHOWN_KEYS = 5  # how many offending keys an error message lists


def _rename_in_block(rest: str, to_ours: bool) -> str:
    for original, ours in _BLOCK_RENAMES:
        source, target = (original, ours) if to_ours else (ours, original)
        if rest.startswith(source):
            return target + rest[len(source) :]
    for original, ours in _BRANCH_RENAMES:
        if to_ours:
            match = re.match(rf"^attn\.{original}\.(\d+)\.(.*)$", rest)
            if match:
                return f"attn.windows.{match[1]}.{ours}.{match[2]}"
        else:
            match = re.match(rf"^attn\.windows\.(\d+)\.{ours}\.(.*)$", rest)
            if match:
                return f"attn.{original}.{match[1]}.{match[2]}"
    return rest


def original_to_ours(key: str) -> str:
    """Map an original FaViT/seed parameter name to this package's (unknown names pass through)."""
    if match := re.match(r"^patch_embed(\d+)\.(.*)$", key):
        return f"stages.{int(match[1]) - 1}.downsample.{match[2]}"
    if match := re.match(r"^norm(\d+)\.(.*)$", key):
        return f"stages.{int(match[1]) - 1}.norm.{match[2]}"
    if match := re.match(r"^block(\d+)\.(\d+)\.(.*)$", key):
        rest = _rename_in_block(match[3], to_ours=True)
        return f"stages.{int(match[1]) - 1}.blocks.{match[2]}.{rest}"
    return key


def ours_to_original(key: str) -> str:
    """Map this package's parameter name to the original FaViT/seed name."""
    if match := re.match(r"^stages\.(\d+)\.downsample\.(.*)$", key):
        return f"patch_embed{int(match[1]) + 1}.{match[2]}"
    if match := re.match(r"^stages\.(\d+)\.norm\.(.*)$", key):
        return f"norm{int(match[1]) + 1}.{match[2]}"
    if match := re.match(r"^stages\.(\d+)\.blocks\.(\d+)\.(.*)$", key):
        rest = _rename_in_block(match[3], to_ours=False)
        return f"block{int(match[1]) + 1}.{match[2]}.{rest}"
    return key


def original_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's weights under the original FaViT/seed key names (tensors shared, not copied)."""
    return {ours_to_original(key): value for key, value in model.state_dict().items()}


def _read_file(path: Path) -> Any:
    # DeiT-style training scripts (the official FaViT's) also save their argparse.Namespace
    safe_globals = getattr(torch.serialization, "safe_globals", None)
    context = safe_globals([argparse.Namespace]) if safe_globals else contextlib.nullcontext()
    try:
        with context:
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ValueError(
            f"{path}: not a readable PyTorch checkpoint ({type(exc).__name__}: {reason[:200]})"
        ) from exc


def _extract_state_dict(obj: Any, path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(state dict, metadata) from the seed's, the official FaViT's or a bare state dict."""
    if not isinstance(obj, Mapping):
        raise ValueError(f"{path}: expected a dict, found {type(obj).__name__}")
    for container in ("model_state_dict", "model", "state_dict"):
        if container in obj and isinstance(obj[container], Mapping):
            metadata = {
                key: value
                for key, value in obj.items()
                if key != container and not isinstance(value, Mapping | torch.Tensor)
            }
            state = obj[container]
            break
    else:
        state, metadata = obj, {}
    bad = [key for key, value in state.items() if not isinstance(value, torch.Tensor)]
    if bad or not state:
        raise ValueError(
            f"{path}: no model weights found; expected {{'model_state_dict': ...}} (seed), "
            f"{{'model': ...}} (official FaViT) or a bare state dict of tensors; "
            f"top-level keys: {list(obj)[:_SHOWN_KEYS]}"
        )
    return dict(state), metadata


def load_checkpoint(model: nn.Module, path: str | PathLike[str]) -> dict[str, Any]:
    """Load weights into ``model`` (strictly) and return the file's metadata (epoch, best_acc...).

    Accepts the seed's ``{'epoch', 'model_state_dict', 'optimizer_state_dict', 'best_acc'}``, the
    official FaViT's ``{'model': ...}`` or a bare state dict, under the original key names (mapped
    here) or this package's own; a ``module.`` prefix (DataParallel) is stripped. Reads through
    ``torch.load(weights_only=True)``. A file that is not a checkpoint, or whose keys or shapes do
    not match the model, raises ``ValueError`` naming the file and what is wrong.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    state, metadata = _extract_state_dict(_read_file(path), path)
    file_keys = {key.removeprefix("module."): key for key in state}  # ours -> as in the file
    original_names = any(_ORIGINAL_KEY.match(key) for key in file_keys)
    if original_names:
        file_keys = {original_to_ours(key): file_key for key, file_key in file_keys.items()}
    state = {key: state[file_key] for key, file_key in file_keys.items()}
    expected = model.state_dict()
    # report keys in the file's naming scheme
    missing = [ours_to_original(k) if original_names else k for k in expected if k not in state]
    unexpected = [file_keys[key] for key in state if key not in expected]
    mismatched = [
        f"{file_keys[key]}: file {tuple(state[key].shape)} vs model {tuple(value.shape)}"
        for key, value in expected.items()
        if key in state and state[key].shape != value.shape
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys (first: {missing[:_SHOWN_KEYS]})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys (first: {unexpected[:_SHOWN_KEYS]})")
    if mismatched:
        problems.append(
            f"{len(mismatched)} shape mismatches ({'; '.join(mismatched[:_SHOWN_KEYS])})"
        )
    if problems:
        raise ValueError(f"{path}: checkpoint does not match the model: {'; '.join(problems)}")
    model.load_state_dict(state, strict=True)
    return metadata
