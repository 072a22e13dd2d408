"""CIFAR-10 readers: the JPEG pack (a tiny one made here), torchvision's folder, corrupt files."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from suites.training.data import (
    LABEL_JPEG_COPY,
    LABEL_ORIGINAL,
    DatasetError,
    load_cifar10,
    load_jpeg_pack,
    load_torchvision_folder,
)


def _images(count: int, seed: int) -> np.ndarray:
    """Smooth random images (JPEG keeps them close): uint8 (N, 32, 32, 3)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (count, 4, 4, 3)).astype(np.uint8)
    return coarse.repeat(8, 1).repeat(8, 2)


def _jpeg_split(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    files = []
    for image in images:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=95)
        files.append(np.frombuffer(buffer.getvalue(), dtype=np.uint8))
    offsets = np.concatenate([[0], np.cumsum([len(f) for f in files])]).astype(np.int64)
    return np.concatenate(files), offsets


def make_pack(path: Path, train: np.ndarray, test: np.ndarray, **replace: np.ndarray) -> Path:
    train_jpeg, train_offsets = _jpeg_split(train)
    test_jpeg, test_offsets = _jpeg_split(test)
    arrays = {
        "train_jpeg": train_jpeg,
        "train_offsets": train_offsets,
        "train_labels": np.arange(len(train), dtype=np.uint8) % 10,
        "test_jpeg": test_jpeg,
        "test_offsets": test_offsets,
        "test_labels": (np.arange(len(test), dtype=np.uint8) * 3) % 10,
        "classes": np.array(["c"] * 10),
    }
    arrays.update(replace)
    np.savez(path, **arrays)
    return path


def test_jpeg_pack_decodes_to_uint8_nchw_and_caches(tmp_path: Path) -> None:
    train, test = _images(6, 0), _images(3, 1)
    pack = make_pack(tmp_path / "tiny.npz", train, test)
    data = load_jpeg_pack(pack, workers=1)
    assert data.label == LABEL_JPEG_COPY
    assert data.train.images.shape == (6, 3, 32, 32) and data.train.images.dtype == torch.uint8
    assert data.test.images.shape == (3, 3, 32, 32)
    assert (
        data.train.labels.tolist() == [0, 1, 2, 3, 4, 5] and data.train.labels.dtype == torch.int64
    )
    arrays = np.load(pack)
    offsets = arrays["train_offsets"]
    for index in range(6):  # each image is exactly Pillow's decoding of its byte range
        raw = arrays["train_jpeg"][offsets[index] : offsets[index + 1]].tobytes()
        expected = np.asarray(Image.open(io.BytesIO(raw)).convert("RGB"))
        assert np.array_equal(data.train.images[index].permute(1, 2, 0).numpy(), expected)
    cache = tmp_path / "tiny.npz.decoded.npz"
    assert cache.is_file()
    again = load_jpeg_pack(pack)  # from the cache
    assert torch.equal(again.train.images, data.train.images)


def test_torchvision_folder_layout(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for index, name in enumerate([*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]):
        images = _images(2, index).transpose(0, 3, 1, 2).reshape(2, -1)
        with open(folder / name, "wb") as handle:
            pickle.dump({"data": images, "labels": [index % 10, (index + 1) % 10]}, handle)
    data = load_torchvision_folder(tmp_path)
    assert data.label == LABEL_ORIGINAL
    assert data.train.images.shape == (10, 3, 32, 32) and data.test.images.shape == (2, 3, 32, 32)
    assert data.train.labels.tolist() == [0, 1, 1, 2, 2, 3, 3, 4, 4, 5]
    first = _images(2, 0)[0]
    assert np.array_equal(data.train.images[0].permute(1, 2, 0).numpy(), first)
    assert load_cifar10(folder).train.images.shape == (10, 3, 32, 32)  # the batches folder itself


def test_missing_folder_says_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="download=True"):
        load_cifar10(tmp_path / "nowhere")


@pytest.mark.parametrize(
    ("corruption", "message"),
    [
        ("missing_key", "lacks keys"),
        ("offsets", "must rise strictly"),
        ("labels", "must lie in 0..9"),
        ("garbage", "not a readable .npz"),
    ],
)
def test_corrupt_pack_gives_a_clear_error(tmp_path: Path, corruption: str, message: str) -> None:
    path = tmp_path / "bad.npz"
    train, test = _images(3, 0), _images(2, 1)
    if corruption == "missing_key":
        make_pack(path, train, test)
        arrays = dict(np.load(path))
        del arrays["test_labels"]
        np.savez(path, **arrays)
    elif corruption == "offsets":
        make_pack(path, train, test, train_offsets=np.array([0, 5, 3, 10], dtype=np.int64))
    elif corruption == "labels":
        make_pack(path, train, test, train_labels=np.array([0, 12, 1], dtype=np.uint8))
    else:
        path.write_bytes(b"not a zip file at all")
    with pytest.raises(DatasetError, match=message) as error:
        load_jpeg_pack(path, cache=False)
    assert "\n" not in str(error.value) and "bad.npz" in str(error.value)


def test_missing_pack_is_named(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        load_cifar10(tmp_path / "absent.npz")


def test_random_subset_draws_from_every_class() -> None:
    from suites.training.data import ImageSplit

    labels = torch.arange(100) // 10  # sorted by class, as the JPEG pack is
    split = ImageSplit(torch.zeros(100, 3, 2, 2, dtype=torch.uint8), labels)
    subset = split.subset(30, seed=1)
    assert len(subset) == 30 and len(set(subset.labels.tolist())) > 5
