"""A run folder: ``rows.csv`` (one row per cell) and ``env.json`` (where and how it ran).

This module is the only one that writes and reads those two files. The runner's process is the
only writer of a run: it appends each cell's rows the moment the cell ends (one write and a flush
per cell), so an interrupted run keeps every finished row. A run folder holds one run: a new run
never writes into a folder that already holds one (``--resume`` continues it instead).
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

ROWS_FILE = "rows.csv"
ENV_FILE = "env.json"
ERRORS_DIR = "errors"
# columns that runs written before the column schema named otherwise: old name -> name now
RENAMED_COLUMNS = {
    "peak_mib": "step_mem_mib",
    "memory_source": "mem_source",
    # the memory suite's allocator readings, under the names the step suites use
    "gpu_peak_allocated_mib": "peak_mem_mib",
    "gpu_baseline_allocated_mib": "steady_mem_mib",
    "gpu_peak_reserved_mib": "reserved_mem_mib",
    "gpu_nvml_used_mib": "nvml_used_mib",
    "gpu_nvml_source": "nvml_source",
}
# values of columns that were spelled otherwise: column -> {old value: value now}
RENAMED_VALUES = {
    "mem_source": {"allocator": "cuda_allocator", "accounting": "tensor_accounting"},
    "model_id": {"torchvision:resnet50": "tv:resnet50"},  # torchvision's prefix is tv:
}
# columns of older runs that repeated another column's quantity in another unit: dropped on
# reading where that column is present (old name -> the column that holds the quantity)
REPEATED_COLUMNS = {
    "params": "param_count",  # flops: parameters, exact; param_count in millions
    "gpu_peak_above_baseline_mib": "step_mem_mib",  # memory: the same reading twice
}


class RunFolderError(ValueError):
    """A folder that is not the run it should be, or a run file that cannot be read; one line."""


def is_run_folder(path: Path) -> bool:
    """Whether ``path`` holds a run (its ``rows.csv`` or ``env.json``)."""
    return (path / ROWS_FILE).exists() or (path / ENV_FILE).exists()


def read_env(run_dir: Path) -> dict[str, Any]:
    """``env.json`` of ``run_dir`` as a dict; ``RunFolderError`` when missing or malformed."""
    path = Path(run_dir) / ENV_FILE
    if not path.is_file():
        raise RunFolderError(f"{path}: missing (every run folder has one)")
    try:
        env = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RunFolderError(f"{path}: malformed JSON ({err})") from None
    if not isinstance(env, dict):
        raise RunFolderError(f"{path}: not a JSON object")
    return env


def write_env(env: Mapping[str, Any], run_dir: Path) -> None:
    """Write ``env.json`` atomically (temp file + rename): a reader never sees half a file."""
    path = Path(run_dir) / ENV_FILE
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(env, indent=2, default=str) + "\n")
    os.replace(tmp, path)


def run_record(run_dir: Path) -> dict[str, Any]:
    """The ``run`` record of ``env.json``: suite, axes, profile, device, seed, options..."""
    record = read_env(run_dir).get("run")
    if not isinstance(record, dict) or "suite" not in record:
        raise RunFolderError(f"{Path(run_dir) / ENV_FILE}: no 'run' record naming its suite")
    return record


def read_rows(run_dir: Path) -> pd.DataFrame:
    """``rows.csv`` of a run folder as a DataFrame: see ``read_rows_csv``."""
    return read_rows_csv(Path(run_dir) / ROWS_FILE)


def read_rows_csv(path: Path) -> pd.DataFrame:
    """A ``rows.csv`` as a DataFrame (pandas' own NaN rules; ``cell_id`` and ``status`` as text),
    with the columns of older runs under today's names (``RENAMED_COLUMNS``, ``RENAMED_VALUES``)
    and without the ones that repeated another's quantity (``REPEATED_COLUMNS``). Raises pandas'
    ``EmptyDataError`` or ``ParserError`` on a file that is not CSV."""
    import pandas as pd

    rows = pd.read_csv(path, dtype={"cell_id": str, "status": str}, keep_default_na=True)
    renames = {old: new for old, new in RENAMED_COLUMNS.items() if old in rows and new not in rows}
    rows = rows.rename(columns=renames)
    rows = rows.drop(
        columns=[old for old, new in REPEATED_COLUMNS.items() if old in rows and new in rows]
    )
    for column, values in RENAMED_VALUES.items():
        if column in rows:
            rows[column] = rows[column].replace(values)
    return rows


def write_error(run_dir: Path, name: str, text: str) -> Path:
    """A traceback or other detail of a failure, as ``errors/<name>.txt``."""
    folder = Path(run_dir) / ERRORS_DIR
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.txt"
    path.write_text(text)
    return path


def _format_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


class RowsFile:
    """``rows.csv`` of one run, written by one process.

    Rows are appended while their columns stay the same, with one write and a flush per call; a
    row that brings new columns rewrites the file atomically (temp file + ``os.replace``). Reading
    an existing file drops a torn last line (a crash in the middle of a write) and says so in
    ``dropped_torn_line``; it is gone from the file at the next write.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.columns: list[str] = []
        self.rows: list[dict[str, str]] = []
        self.dropped_torn_line = ""
        if self.path.exists():
            self._read()

    def _read(self) -> None:
        with self.path.open(newline="") as f:
            text = f.read()
        torn = bool(text) and not text.endswith("\n")
        if torn:
            text, _, self.dropped_torn_line = text.rpartition("\n")
            text += "\n" if text else ""
        reader = csv.DictReader(io.StringIO(text, newline=""))
        self.columns = list(reader.fieldnames or [])
        self.rows = [dict(r) for r in reader]

    def finished(self, statuses: Iterable[str]) -> set[str]:
        """Cell ids with a row of one of these statuses."""
        wanted = set(statuses)
        return {r["cell_id"] for r in self.rows if r.get("status") in wanted}

    def add(self, rows: Sequence[Mapping[str, Any]]) -> None:
        text_rows = [{k: _format_value(v) for k, v in row.items()} for row in rows]
        new_columns = [c for r in text_rows for c in r if c not in self.columns]
        self.rows.extend(text_rows)
        if new_columns or self.dropped_torn_line or not self.path.exists():
            self.dropped_torn_line = ""
            self.columns.extend(dict.fromkeys(new_columns))
            self._rewrite()
            return
        buffer = io.StringIO(newline="")
        csv.DictWriter(buffer, fieldnames=self.columns, restval="", lineterminator="\n").writerows(
            text_rows
        )
        with self.path.open("a", newline="") as f:
            f.write(buffer.getvalue())
            f.flush()
            os.fsync(f.fileno())

    def drop(self, cell_ids: set[str]) -> None:
        self.rows = [r for r in self.rows if r.get("cell_id") not in cell_ids]
        self._rewrite()

    def _rewrite(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.columns, restval="", lineterminator="\n")
            writer.writeheader()
            writer.writerows(self.rows)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)


def check_new_run_folder(path: Path) -> None:
    """``RunFolderError`` (one line) unless a new run can be written into ``path``: a folder
    that does not exist yet (its parents made), or an empty one, writable."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise RunFolderError(f"{str(path)!r} is a file, not a folder; name a new folder")
    if path.is_dir() and is_run_folder(path):
        raise RunFolderError(
            f"{str(path)!r} already holds a run; continue it with --resume {path}, "
            "or name a new folder"
        )
    if path.is_dir() and any(path.iterdir()):
        raise RunFolderError(f"{str(path)!r} is a folder with other files in it; name a new one")
    blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise RunFolderError(f"{str(path)!r} lies under {str(blocker)!r}, which is a file")
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not os.access(existing, os.W_OK | os.X_OK):
        raise RunFolderError(f"cannot write under {str(existing)!r} (permission denied)")


def check_resumable_run_folder(path: Path) -> dict[str, Any]:
    """The ``run`` record of the run in ``path``; ``RunFolderError`` when ``path`` holds none."""
    path = Path(path)
    if not path.is_dir():
        raise RunFolderError(f"no such run folder {str(path)!r}")
    if not (path / ENV_FILE).is_file():
        raise RunFolderError(
            f"{str(path)!r} is not a run folder (no {ENV_FILE}); start a new run with --out"
        )
    return run_record(path)
