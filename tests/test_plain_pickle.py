"""CIFAR-10's python batches are read without running anything in them: real-format files load,
a file that names anything but plain values and numpy arrays is refused in one line."""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from suites.training.data import DatasetError, load_torchvision_folder
from suites.training.plain_pickle import PickleRefused, load_plain_pickle

BATCH_NAMES = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch")


# ---- a writer of Python 2's protocol-2 pickles: the byte layout of the CIFAR-10 files ---------


def _py2_str(data: bytes) -> bytes:
    """A Python 2 ``str`` (bytes): SHORT_BINSTRING, or BINSTRING when 256 bytes or longer."""
    if len(data) < 256:
        return b"U" + bytes([len(data)]) + data
    return b"T" + struct.pack("<i", len(data)) + data


def _py2_int(value: int) -> bytes:
    if 0 <= value < 256:
        return b"K" + bytes([value])
    if 0 <= value < 65536:
        return b"M" + struct.pack("<H", value)
    return b"J" + struct.pack("<i", value)


def _py2_uint8_array(array: np.ndarray) -> bytes:
    """How numpy under Python 2 pickled a C-ordered uint8 array (protocol 2)."""
    shape = b"".join(_py2_int(n) for n in array.shape)
    return (
        b"cnumpy.core.multiarray\n_reconstruct\nq\x02cnumpy\nndarray\nq\x03"
        b"K\x00\x85U\x01b\x87Rq\x04(K\x01(" + shape + b"tcnumpy\ndtype\nq\x05"
        b"U\x02u1K\x00K\x01\x87Rq\x06(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
        b"\x89" + _py2_str(array.tobytes()) + b"tb"
    )


def _py2_list(items: list[bytes]) -> bytes:
    return b"](" + b"".join(items) + b"e"


def py2_batch(images: np.ndarray, labels: list[int], name: bytes) -> bytes:
    """A CIFAR-10 python batch as the original files hold it: a dict of Python 2 strings to
    ``data`` (uint8 (N, 3072)), ``labels``, ``batch_label`` and ``filenames``."""
    files = [_py2_str(b"image_%d.png" % i) for i in range(len(labels))]
    return (
        b"\x80\x02}q\x01("
        + _py2_str(b"data")
        + _py2_uint8_array(images.reshape(len(labels), 3072))
        + _py2_str(b"labels")
        + _py2_list([_py2_int(label) for label in labels])
        + _py2_str(b"batch_label")
        + _py2_str(name)
        + _py2_str(b"filenames")
        + _py2_list(files)
        + b"u."
    )


def py2_meta() -> bytes:
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer"]
    names += [b"dog", b"frog", b"horse", b"ship", b"truck"]
    return (
        b"\x80\x02}q\x01("
        + _py2_str(b"num_cases_per_batch")
        + _py2_int(10000)
        + _py2_str(b"label_names")
        + _py2_list([_py2_str(n) for n in names])
        + _py2_str(b"num_vis")
        + _py2_int(3072)
        + b"u."
    )


def _images(count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, 3072), dtype=np.uint8)


def write_cifar_folder(root: Path, count: int = 3) -> Path:
    """``root/cifar-10-batches-py`` in the original format; returns the batches folder."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for index, name in enumerate(BATCH_NAMES):
        labels = [(index + i) % 10 for i in range(count)]
        (folder / name).write_bytes(py2_batch(_images(count, index), labels, name.encode()))
    (folder / "batches.meta").write_bytes(py2_meta())
    return folder


class WritesAFile:
    """Unpickling this calls ``open(path, "w")``: a pickle that would create a file."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def crafted_batch(target: Path) -> bytes:
    """A batch with real data whose unpickling would also create ``target``."""
    return pickle.dumps(
        {b"data": _images(3, 0), b"labels": [0, 1, 2], b"extra": WritesAFile(target)}, protocol=2
    )


# ---- the tests ---------------------------------------------------------------------------------


def test_the_original_format_reads_as_pickle_reads_it(tmp_path: Path) -> None:
    images = _images(4, 7)
    blob = py2_batch(images, [3, 1, 4, 1], b"training batch 1 of 5")
    (tmp_path / "batch").write_bytes(blob)
    expected = pickle.loads(blob, encoding="bytes")  # a valid pickle of the original layout
    read = load_plain_pickle(tmp_path / "batch")
    assert set(read) == {b"data", b"labels", b"batch_label", b"filenames"} == set(expected)
    assert read[b"data"].dtype == np.uint8 and np.array_equal(read[b"data"], expected[b"data"])
    assert read[b"labels"] == [3, 1, 4, 1] and read[b"filenames"] == expected[b"filenames"]
    assert read[b"batch_label"] == b"training batch 1 of 5"


def test_a_cifar_folder_in_the_original_format_loads(tmp_path: Path) -> None:
    write_cifar_folder(tmp_path)
    data = load_torchvision_folder(tmp_path)
    assert data.train.images.shape == (15, 3, 32, 32) and data.test.images.shape == (3, 3, 32, 32)
    assert data.train.labels[:3].tolist() == [0, 1, 2]
    assert data.train.images[0].reshape(-1).numpy().tolist() == _images(3, 0)[0].tolist()
    assert data.classes[0] == "airplane" and data.classes[9] == "truck"


@pytest.mark.parametrize("protocol", range(6))
def test_python3_pickles_of_every_protocol_load(tmp_path: Path, protocol: int) -> None:
    array = np.arange(24, dtype=">i4").reshape(2, 3, 4)
    value = {b"data": array, "labels": [1, 2], "t": (1.5, None, True), "f": array.T.copy()}
    (tmp_path / "p").write_bytes(pickle.dumps(value, protocol=protocol))
    read = load_plain_pickle(tmp_path / "p")
    assert np.array_equal(read[b"data"], array) and read[b"data"].dtype == array.dtype
    assert np.array_equal(read["f"], array.T) and read["t"] == (1.5, None, True)


def test_a_pickle_that_would_create_a_file_is_refused_and_creates_none(tmp_path: Path) -> None:
    target = tmp_path / "created"
    blob = crafted_batch(target)
    pickle.loads(blob)  # what pickle.load would do: the file appears
    assert target.exists()
    target.unlink()
    (tmp_path / "batch").write_bytes(blob)
    with pytest.raises(PickleRefused, match=r"it names (builtins|io)\.open"):
        load_plain_pickle(tmp_path / "batch")
    assert not target.exists()


def _global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


RECONSTRUCT = _global("numpy.core.multiarray", "_reconstruct")
NDARRAY = _global("numpy", "ndarray")
U1 = _global("numpy", "dtype") + b"U\x02u1K\x00K\x01\x87R"
U1_STATE = b"(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        # _reconstruct of a class other than ndarray (the allowed dtype global in its place)
        (
            b"\x80\x02" + RECONSTRUCT + _global("numpy", "dtype") + b"K\x00\x85U\x01b\x87R.",
            "never use",
        ),
        # _reconstruct with another base shape
        (b"\x80\x02" + RECONSTRUCT + NDARRAY + b"K\x05\x85U\x01b\x87R.", "never use"),
        # an object dtype: its items would be pickled objects
        (
            b"\x80\x02" + _global("numpy", "dtype") + b"U\x02O8K\x00K\x01\x87R.",
            "not a plain number",
        ),
        # a dtype state of a structured type
        (
            b"\x80\x02" + U1 + b"(K\x03U\x01|(U\x01atNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb.",
            "state",
        ),
        # an array state whose bytes do not fill its shape
        (
            b"\x80\x02"
            + RECONSTRUCT
            + NDARRAY
            + b"K\x00\x85U\x01b\x87R(K\x01K\x05\x85"
            + U1
            + U1_STATE
            + b"\x89U\x02abtb.",
            "needs 5 bytes, the file gives 2",
        ),
        # an array state whose data is a list (an object array's items)
        (
            b"\x80\x02"
            + RECONSTRUCT
            + NDARRAY
            + b"K\x00\x85U\x01b\x87R(K\x01K\x01\x85"
            + U1
            + U1_STATE
            + b"\x89]K\x01atb.",
            "raw bytes",
        ),
        # BUILD on a dict: a state set on something that is not an array
        (b"\x80\x02}}b.", "not a numpy array"),
        # _codecs.encode with another codec
        (
            b"\x80\x02"
            + _global("_codecs", "encode")
            + b"X\x01\x00\x00\x00aX\x05\x00\x00\x00rot13\x86R.",
            "never use",
        ),
        # object opcodes
        (b"\x80\x02" + NDARRAY + b")\x81.", "opcode NEWOBJ"),
        (b"(i__builtin__\nobject\n.", "opcode INST"),
        (b"\x80\x02X\x01\x00\x00\x00x\x94Q.", "opcode BINPERSID"),
        # a global outside the list
        (
            b"\x80\x02" + _global("os", "system") + b"X\x04\x00\x00\x00true\x85R.",
            "it names os.system",
        ),
        (b"", "empty"),
        (b"\x80\x02}q\x01(X\x04\x00", "not a complete pickle"),
        (b"\x80\x02]q\x01(K\x01", "not a complete pickle"),
    ],
)
def test_anything_but_plain_values_is_refused(tmp_path: Path, blob: bytes, message: str) -> None:
    (tmp_path / "p").write_bytes(blob)
    with pytest.raises(PickleRefused, match=message) as error:
        load_plain_pickle(tmp_path / "p")
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("name", ["data_batch_1", "test_batch", "batches.meta"])
def test_a_crafted_file_in_a_cifar_folder_is_named(tmp_path: Path, name: str) -> None:
    folder = write_cifar_folder(tmp_path)
    target = tmp_path / "created"
    (folder / name).write_bytes(crafted_batch(target))
    with pytest.raises(DatasetError, match=f"{name}' is refused: it names") as error:
        load_torchvision_folder(tmp_path)
    assert "\n" not in str(error.value) and not target.exists()


@pytest.mark.parametrize(
    ("cut", "message"),
    [(0, "is empty"), (9, "not a complete pickle"), (500, "not a complete pickle")],
)
def test_a_truncated_batch_is_named(tmp_path: Path, cut: int, message: str) -> None:
    folder = write_cifar_folder(tmp_path)
    blob = (folder / "data_batch_3").read_bytes()
    (folder / "data_batch_3").write_bytes(blob[:cut])
    with pytest.raises(DatasetError, match=f"data_batch_3' is refused: .*{message}"):
        load_torchvision_folder(tmp_path)


def test_a_batch_without_images_is_named(tmp_path: Path) -> None:
    folder = write_cifar_folder(tmp_path)
    (folder / "data_batch_2").write_bytes(pickle.dumps({b"labels": [1]}, protocol=2))
    with pytest.raises(DatasetError, match="data_batch_2' lacks 'data' or 'labels'"):
        load_torchvision_folder(tmp_path)
