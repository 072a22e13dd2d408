"""Checkpoints under the original FaViT/seed key names load strictly; bad files fail clearly."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import favit

# a tiny 4-stage FaViT: the same key names as B0-B3, a fraction of the cost
TINY = favit.FaViTConfig(
    embed_dims=(16, 32, 64, 64),
    depths=(1, 1, 1, 1),
    mlp_ratios=(2, 2, 2, 2),
    num_classes=10,
    global_attn="dense",
)


@pytest.fixture(scope="module")
def source() -> favit.FaViT:
    torch.manual_seed(1)
    return favit.FaViT(TINY).eval()


def _outputs(model: favit.FaViT) -> torch.Tensor:
    torch.manual_seed(3)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        return model(x)


def test_original_key_names() -> None:
    with torch.device("meta"):
        b0 = favit.create_model("favit_b0")
    keys = set(favit.original_state_dict(b0))
    for key in [
        "patch_embed1.proj.weight",
        "patch_embed4.norm.bias",
        "block1.0.norm1.weight",
        "block1.1.attn.q.weight",
        "block1.0.attn.kv_g.weight",
        "block1.0.attn.sr.weight",
        "block1.0.attn.norm.weight",
        "block1.0.attn.local_conv_g.weight",
        "block1.0.attn.kv_l.depth_conv.weight",
        "block1.0.attn.kv_l.point_conv.bias",
        "block1.0.attn.fcs.1.weight",
        "block3.5.attn.single_heads.0.bias",
        "block2.0.attn.local_convs.1.weight",
        "block4.1.attn.proj.weight",
        "block4.0.norm2.weight",
        "block2.1.mlp.fc1.weight",
        "block2.1.mlp.dwconv.dwconv.weight",
        "block2.1.mlp.fc2.bias",
        "norm4.weight",
        "head.weight",
    ]:
        assert key in keys, key
    assert "block4.0.attn.fcs.1.weight" not in keys  # stage 4 has no dilated branch
    assert not any(k.startswith("stages.") for k in keys)


@pytest.mark.parametrize("layout", ["seed", "official", "bare_original", "bare_ours"])
def test_checkpoint_loads_and_reproduces_outputs(
    source: favit.FaViT, tmp_path: Path, layout: str
) -> None:
    original = favit.original_state_dict(source)
    payload = {
        "seed": {
            "epoch": 29,
            "model_state_dict": original,
            "optimizer_state_dict": {"state": {}, "param_groups": [{"lr": 1e-3}]},
            "best_acc": 86.16,
        },
        "official": {"model": original, "epoch": 299, "args": argparse.Namespace(lr=1e-3)},
        "bare_original": original,
        "bare_ours": source.state_dict(),
    }[layout]
    path = tmp_path / "ckpt.pth"
    torch.save(payload, path)
    torch.manual_seed(7)  # a differently initialised target
    target = favit.FaViT(TINY).eval()
    assert not torch.equal(_outputs(target), _outputs(source))
    metadata = favit.load_checkpoint(target, path)
    torch.testing.assert_close(_outputs(target), _outputs(source), rtol=0, atol=0)
    if layout == "seed":
        assert metadata == {"epoch": 29, "best_acc": 86.16}


def test_truncated_file_is_a_clear_error(source: favit.FaViT, tmp_path: Path) -> None:
    path = tmp_path / "truncated.pth"
    torch.save({"model_state_dict": favit.original_state_dict(source)}, path)
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(ValueError, match=r"truncated\.pth: not a readable PyTorch checkpoint"):
        favit.load_checkpoint(source, path)


def test_garbage_file_is_a_clear_error(source: favit.FaViT, tmp_path: Path) -> None:
    path = tmp_path / "garbage.pth"
    path.write_bytes(b"this is not a checkpoint at all" * 10)
    with pytest.raises(ValueError, match=r"garbage\.pth: not a readable PyTorch checkpoint"):
        favit.load_checkpoint(source, path)


def test_non_state_dict_is_a_clear_error(source: favit.FaViT, tmp_path: Path) -> None:
    path = tmp_path / "list.pth"
    torch.save([1, 2, 3], path)
    with pytest.raises(ValueError, match=r"list\.pth: expected a dict"):
        favit.load_checkpoint(source, path)
    torch.save({"epoch": 3, "lr": 0.1}, path)
    with pytest.raises(ValueError, match="no model weights found"):
        favit.load_checkpoint(source, path)


def test_missing_and_unexpected_keys_are_named(source: favit.FaViT, tmp_path: Path) -> None:
    state = favit.original_state_dict(source)
    del state["block1.0.attn.kv_g.weight"]
    state["block1.0.attn.extra.weight"] = torch.zeros(1)
    path = tmp_path / "keys.pth"
    torch.save({"model_state_dict": state}, path)
    with pytest.raises(
        ValueError, match=r"keys\.pth.*1 missing keys.*'block1\.0\.attn\.kv_g\.weight'"
    ) as info:
        favit.load_checkpoint(source, path)
    assert "1 unexpected keys" in str(info.value)
    assert "block1.0.attn.extra.weight" in str(info.value)  # named as in the file


def test_shape_mismatch_is_named(source: favit.FaViT, tmp_path: Path) -> None:
    other = favit.FaViT(replace(TINY, num_classes=100))
    path = tmp_path / "classes.pth"
    torch.save({"model_state_dict": favit.original_state_dict(other)}, path)
    with pytest.raises(
        ValueError, match=r"shape mismatches \(head\.weight: file \(100, 64\) vs model \(10, 64\)"
    ):
        favit.load_checkpoint(source, path)


def test_missing_file(source: favit.FaViT, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.pth"):
        favit.load_checkpoint(source, tmp_path / "nope.pth")
