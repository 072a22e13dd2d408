"""CIFAR-10 readers: the JPEG pack (``data/cifar10-jpeg.npz``), torchvision's folder, synthetic.

Every reader returns a :class:`Cifar10` whose splits hold uint8 images ``(N, 3, 32, 32)`` and int64
labels ``(N,)``; ``Cifar10.to(device)`` moves both splits to the training device once, so the whole
set (150 MB for the training split) lives there and augmentation never touches the CPU (airbench's
layout). Nothing in a data file is executed: the pack is read with ``allow_pickle=False`` and
torchvision's pickled batches by ``plain_pickle``, which builds plain values and numpy arrays only.
A file that cannot be read raises :class:`DatasetError`, one line naming it and what is wrong.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from suites.training.plain_pickle import PickleRefused, load_plain_pickle

JPEG_PACK_SHA256 = "b1091c5ea41ae05745b054dfe78e169e8ec1f4dc2df004961759ace1b182b15c"
JPEG_PACK_BYTES = 55_793_123
JPEG_PACK_KEYS = (
    "train_jpeg",
    "train_offsets",
    "train_labels",
    "test_jpeg",
    "test_offsets",
    "test_labels",
)
TORCHVISION_FOLDER = "cifar-10-batches-py"
CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
LABEL_JPEG_COPY = "CIFAR-10 (JPEG q75 copy)"
LABEL_ORIGINAL = "CIFAR-10"
LABEL_SYNTHETIC = "synthetic (smoke run, not CIFAR-10)"
SYNTHETIC = "synthetic"  # the ``data`` value that asks for synthetic images


class DatasetError(ValueError):
    """A data file or folder that cannot be read; the message says what is wrong with it."""


@dataclass(frozen=True)
class ImageSplit:
    """One split: ``images`` uint8 ``(N, 3, H, W)``, ``labels`` int64 ``(N,)``."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def to(self, device: torch.device | str) -> ImageSplit:
        return ImageSplit(self.images.to(device), self.labels.to(device))

    def subset(self, count: int, seed: int = 0) -> ImageSplit:
        """``count`` images drawn at random without replacement (all when 0 or too large).

        Drawn at random because the JPEG pack stores each split sorted by class.
        """
        if count <= 0 or count >= len(self):
            return self
        generator = torch.Generator().manual_seed(seed)
        chosen = (
            torch.randperm(len(self), generator=generator)[:count]
            .sort()
            .values.to(self.labels.device)
        )
        return ImageSplit(self.images[chosen], self.labels[chosen])


@dataclass(frozen=True)
class Cifar10:
    train: ImageSplit
    test: ImageSplit
    label: str  # how rows name the dataset, e.g. "CIFAR-10 (JPEG q75 copy)"
    classes: tuple[str, ...] = CIFAR10_CLASSES

    def to(self, device: torch.device | str) -> Cifar10:
        return Cifar10(self.train.to(device), self.test.to(device), self.label, self.classes)


def sha256_of(path: Path, chunk_bytes: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def check_jpeg_pack(path: Path) -> dict[str, np.ndarray]:
    """Open the pack and check it; returns its arrays or raises a one-line :class:`DatasetError`."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"CIFAR-10 JPEG pack {str(path)!r} does not exist")
    size = path.stat().st_size
    if size == JPEG_PACK_BYTES and sha256_of(path) != JPEG_PACK_SHA256:
        raise DatasetError(
            f"CIFAR-10 JPEG pack {str(path)!r} has the known size but a wrong sha256 (expected {JPEG_PACK_SHA256}): the file is corrupt"
        )
    try:
        with np.load(path, allow_pickle=False) as pack:
            missing = [key for key in JPEG_PACK_KEYS if key not in pack.files]
            if missing:
                raise DatasetError(
                    f"CIFAR-10 JPEG pack {str(path)!r} lacks keys {missing}; expected {list(JPEG_PACK_KEYS)}"
                )
            arrays = {key: pack[key] for key in JPEG_PACK_KEYS}
    except DatasetError:
        raise
    except Exception as error:  # zip/npy format errors: say so in one line
        raise DatasetError(
            f"CIFAR-10 JPEG pack {str(path)!r} is not a readable .npz ({type(error).__name__}: {error})"
        ) from error
    for split in ("train", "test"):
        jpeg, offsets, labels = (
            arrays[f"{split}_jpeg"],
            arrays[f"{split}_offsets"],
            arrays[f"{split}_labels"],
        )
        if jpeg.ndim != 1 or jpeg.dtype != np.uint8:
            raise DatasetError(
                f"{split}_jpeg in {str(path)!r} must be a 1-D uint8 array, got {jpeg.dtype} {jpeg.shape}"
            )
        if offsets.ndim != 1 or offsets.shape[0] != labels.shape[0] + 1:
            raise DatasetError(
                f"{split}_offsets in {str(path)!r} must have len({split}_labels)+1 = {labels.shape[0] + 1} entries, got shape {offsets.shape}"
            )
        if offsets[0] != 0 or offsets[-1] != jpeg.shape[0] or np.any(np.diff(offsets) <= 0):
            raise DatasetError(
                f"{split}_offsets in {str(path)!r} must rise strictly from 0 to len({split}_jpeg) = {jpeg.shape[0]}"
            )
        if labels.size and (labels.min() < 0 or labels.max() > 9):
            raise DatasetError(
                f"{split}_labels in {str(path)!r} must lie in 0..9, got {labels.min()}..{labels.max()}"
            )
    return arrays


def _decode_jpegs(job: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Decode concatenated JPEG files (``offsets``: N+1 byte offsets) to uint8 ``(N, 32, 32, 3)``."""
    from PIL import Image

    jpeg, offsets = job
    images = []
    for start, end in itertools.pairwise(offsets):
        with Image.open(io.BytesIO(jpeg[start:end].tobytes())) as image:
            images.append(np.asarray(image.convert("RGB"), dtype=np.uint8))
    return np.stack(images)


def _decode_split(jpeg: np.ndarray, offsets: np.ndarray, workers: int) -> np.ndarray:
    """All images of one split as uint8 ``(N, 3, 32, 32)``, decoded in ``workers`` processes."""
    count = offsets.shape[0] - 1
    chunk = max(1, -(-count // (workers * 4)))
    jobs = []
    for first in range(0, count, chunk):
        last = min(count, first + chunk)
        jobs.append(
            (jpeg[offsets[first] : offsets[last]], offsets[first : last + 1] - offsets[first])
        )
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            parts = list(pool.map(_decode_jpegs, jobs))
    else:
        parts = [_decode_jpegs(job) for job in jobs]
    return np.ascontiguousarray(np.concatenate(parts).transpose(0, 3, 1, 2))


def load_jpeg_pack(path: str | Path, cache: bool = True, workers: int | None = None) -> Cifar10:
    """Read the JPEG pack, decoding it once; the decoded arrays are cached at ``<pack>.decoded.npz``.

    The cache records the pack's sha256 and is rebuilt when the pack changes. ``workers`` defaults
    to the usable cores (up to 16).
    """
    path = Path(path)
    arrays = check_jpeg_pack(path)
    pack_sha256 = sha256_of(path)
    cache_path = path.with_name(path.name + ".decoded.npz")
    if cache and cache_path.is_file():
        try:
            with np.load(cache_path, allow_pickle=False) as cached:
                if str(cached["pack_sha256"]) == pack_sha256:
                    return _cifar_from_arrays(
                        cached["train_images"],
                        arrays["train_labels"],
                        cached["test_images"],
                        arrays["test_labels"],
                        LABEL_JPEG_COPY,
                    )
        except (OSError, KeyError, ValueError):
            pass  # unreadable cache: decode again and overwrite it
    workers = workers or min(
        16,
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1,
    )
    train_images = _decode_split(arrays["train_jpeg"], arrays["train_offsets"], workers)
    test_images = _decode_split(arrays["test_jpeg"], arrays["test_offsets"], workers)
    if cache:
        temporary = cache_path.with_name(cache_path.name + f".tmp{os.getpid()}.npz")
        try:
            np.savez(
                temporary,
                pack_sha256=np.array(pack_sha256),
                train_images=train_images,
                test_images=test_images,
            )
            os.replace(temporary, cache_path)
        except OSError:
            temporary.unlink(missing_ok=True)  # a read-only folder: run without a cache
    return _cifar_from_arrays(
        train_images, arrays["train_labels"], test_images, arrays["test_labels"], LABEL_JPEG_COPY
    )


def _cifar_from_arrays(
    train_images: np.ndarray,
    train_labels: np.ndarray,
    test_images: np.ndarray,
    test_labels: np.ndarray,
    label: str,
) -> Cifar10:
    def split(images: np.ndarray, labels: np.ndarray) -> ImageSplit:
        if (
            images.dtype != np.uint8
            or images.ndim != 4
            or images.shape[1] != 3
            or images.shape[0] != labels.shape[0]
        ):
            raise DatasetError(
                f"decoded images must be uint8 (N, 3, H, W) with N = {labels.shape[0]}, got {images.dtype} {images.shape}"
            )
        return ImageSplit(
            torch.from_numpy(np.ascontiguousarray(images)),
            torch.from_numpy(labels.astype(np.int64)),
        )

    return Cifar10(split(train_images, train_labels), split(test_images, test_labels), label)


def _read_pickle(path: Path, what: str) -> dict[str, Any]:
    """A dict pickled in CIFAR-10's python format, read without running anything in the file;
    its keys as text (the original files' keys are Python 2 strings, read as bytes)."""
    try:
        entry = load_plain_pickle(path)
    except PickleRefused as error:
        raise DatasetError(f"{what} {str(path)!r} is refused: {error}") from None
    except OSError as error:
        raise DatasetError(f"{what} {str(path)!r} cannot be read ({error.strerror})") from None
    if not isinstance(entry, dict):
        raise DatasetError(f"{what} {str(path)!r} holds a {type(entry).__name__}, not a dict")
    return {key.decode("latin-1") if isinstance(key, bytes) else key: v for key, v in entry.items()}


def _read_batch_file(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 batch of the original python format: images ``(N, 3, 32, 32)``, labels."""
    if not path.is_file():
        raise DatasetError(f"CIFAR-10 folder lacks {str(path)!r}")
    entry = _read_pickle(path, "CIFAR-10 batch")
    if "data" not in entry or "labels" not in entry:
        raise DatasetError(
            f"CIFAR-10 batch {str(path)!r} lacks 'data' or 'labels'; its keys: {sorted(map(str, entry))}"
        )
    try:
        data = np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(entry["labels"], dtype=np.int64).reshape(-1)
    except (TypeError, ValueError) as error:
        raise DatasetError(
            f"CIFAR-10 batch {str(path)!r} does not hold uint8 images of 3x32x32 and int labels ({error})"
        ) from None
    if labels.shape[0] != data.shape[0] or (labels.size and (labels.min() < 0 or labels.max() > 9)):
        raise DatasetError(
            f"CIFAR-10 batch {str(path)!r} has {data.shape[0]} images but labels {labels.shape} outside 0..9 or of another count"
        )
    return data, labels


def _read_class_names(path: Path) -> tuple[str, ...]:
    """``batches.meta``'s ``label_names`` (the standard ten when the file is absent)."""
    if not path.is_file():
        return CIFAR10_CLASSES
    names = _read_pickle(path, "CIFAR-10 batches.meta").get("label_names", CIFAR10_CLASSES)
    if not isinstance(names, list | tuple) or len(names) != 10:
        raise DatasetError(f"CIFAR-10 batches.meta {str(path)!r}: label_names is not ten names")
    return tuple(n.decode("latin-1") if isinstance(n, bytes) else str(n) for n in names)


def load_torchvision_folder(root: str | Path, download: bool = False) -> Cifar10:
    """torchvision's CIFAR-10 layout: ``root/cifar-10-batches-py/{data_batch_1..5,test_batch}``.

    ``root`` may also be the ``cifar-10-batches-py`` folder itself. With ``download=True`` a
    missing folder is fetched (and md5-checked) by ``torchvision.datasets.CIFAR10``; that needs
    a network connection.
    """
    root = Path(root)
    if root.name == TORCHVISION_FOLDER:
        root = root.parent
    folder = root / TORCHVISION_FOLDER
    if download and not folder.is_dir():
        import torchvision

        torchvision.datasets.CIFAR10(str(root), train=True, download=True)
    if not folder.is_dir():
        raise DatasetError(
            f"no CIFAR-10 folder at {str(folder)!r}; fetch it with download=True (--option download=on, online) or give a .npz JPEG pack"
        )
    train = [_read_batch_file(folder / f"data_batch_{i}") for i in range(1, 6)]
    test_images, test_labels = _read_batch_file(folder / "test_batch")
    classes = _read_class_names(folder / "batches.meta")
    data = _cifar_from_arrays(
        np.concatenate([images for images, _ in train]),
        np.concatenate([labels for _, labels in train]),
        test_images,
        test_labels,
        LABEL_ORIGINAL,
    )
    return Cifar10(data.train, data.test, data.label, classes)


def synthetic_cifar10(
    train_count: int = 512, test_count: int = 256, seed: int = 0, img_size: int = 32
) -> Cifar10:
    """Random images whose class sets a colour bias, so a model can learn it (smoke runs, tests)."""
    generator = torch.Generator().manual_seed(seed)

    def split(count: int) -> ImageSplit:
        labels = torch.randint(0, 10, (count,), generator=generator)
        noise = torch.randint(0, 96, (count, 3, img_size, img_size), generator=generator)
        palette = torch.linspace(0, 159, 10).round().long()
        bias = torch.stack(
            [palette[labels], palette[(labels * 3) % 10], palette[(labels * 7) % 10]], 1
        )
        return ImageSplit((noise + bias[:, :, None, None]).to(torch.uint8), labels)

    return Cifar10(split(train_count), split(test_count), LABEL_SYNTHETIC)


def load_cifar10(data: str | Path, download: bool = False) -> Cifar10:
    """Dispatch on ``data``: a ``.npz`` JPEG pack, a torchvision folder, or ``"synthetic"``."""
    text = str(data)
    if text == SYNTHETIC:
        return synthetic_cifar10()
    path = Path(text)
    if path.suffix == ".npz":
        return load_jpeg_pack(path)
    if path.is_dir() or download:
        return load_torchvision_folder(path, download=download)
    raise DatasetError(
        f"data {text!r} is neither a .npz JPEG pack, an existing CIFAR-10 folder (cifar-10-batches-py) nor 'synthetic' (a torchvision folder is fetched with download=True when online)"
    )
