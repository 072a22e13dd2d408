"""Runs the user's copy of timm's ``benchmark.py`` on a model ``baselines`` builds, and reads its results.

timm's ``benchmark.py`` (huggingface/pytorch-image-models) builds models with
``timm.create_model(name)``. ``register`` puts a ``baselines`` name into timm's registry under
``timm_model_name(name)`` (``favit_b1:dense+sr1`` -> ``bench_favit_b1_dense_sr1``: timm reads ':'
as a source prefix and '.' as a pretrained tag), with an entrypoint that returns exactly
``baselines.create(name, num_classes, img_size)``: the model our suites measure, not a timm
look-alike. It takes what ``benchmark.py`` passes by default (``in_chans=3``, ``drop_rate=0``,
timm's pretrained-config arguments, which are empty) and refuses anything that would build another
model (pretrained weights, other channels, dropout, any other keyword).

``python -m suites.engine.timm_benchmark --benchmark-py PATH --model NAME --img-size N --repeats K
--out DIR -- <benchmark.py arguments>`` registers NAME and runs ``benchmark.py`` K times in this
process (``runpy``; a fresh model, warm-up and timed loop each time), writing ``DIR/repeat<i>.csv``
(its ``--results-file``) and ``DIR/repeat<i>.windows.json`` (the mean step time of each fifth of
its timed steps, from its progress lines). The script is read from the user's path and never copied.
Its GMACs count, which runs after the timed loop, is skipped (fvcore and deepspeed are hidden from
it): it is untimed, and the flops suite counts the same models.

``benchmark_args`` is the command line of one cell (bf16 autocast, eager, ``--no-retry``);
``read_repeat`` reads one repeat's results, ``git_blob_sha1`` names the script's version as
``git hash-object`` does.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import logging
import re
import runpy
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from torch import nn

TIMM_NAME_PREFIX = "bench_"
# the benchmark.py version the cross-check was written against (v1.0.23 .. v1.0.28 and main)
KNOWN_BENCHMARK_BLOB = "beaf257a1d06be9240f50bdb522464293a9f9385"
# benchmark.py's --bench value of each of our modes
BENCH_MODES = {"infer": "inference", "train": "train"}
# benchmark.py logs to this logger; its progress lines hold the cumulative mean step time
LOGGER_NAME = "validate"
PROGRESS_LINE = re.compile(r"^(Infer|Train) \[(\d+)/(\d+)\]\..*? ([0-9.]+) ms/step\.?$")
# keywords benchmark.py's create_model call may pass; anything else builds another model
_TIMM_CONFIG_KWARGS = ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir")


def timm_model_name(name: str) -> str:
    """The identifier ``name`` is registered under in timm: ``bench_`` and every character that is
    not a letter, digit or '_' turned into '_' (``favit_b1:dense+sr1`` -> ``bench_favit_b1_dense_sr1``)."""
    return TIMM_NAME_PREFIX + re.sub(r"[^0-9A-Za-z_]", "_", name)


def _entrypoint(name: str, img_size: int) -> Callable[..., nn.Module]:
    """A timm entrypoint that builds ``baselines.create(name, num_classes, img_size)``."""

    def entry(pretrained: bool = False, **kwargs: Any) -> nn.Module:
        import baselines

        if pretrained:
            raise ValueError(f"{name}: no pretrained weights; benchmark.py must not ask for them")
        for key in _TIMM_CONFIG_KWARGS:
            kwargs.pop(key, None)
        num_classes = int(kwargs.pop("num_classes", 1000))
        size = kwargs.pop("img_size", img_size)
        if kwargs.pop("in_chans", 3) != 3 or kwargs.pop("drop_rate", 0.0) != 0.0 or kwargs:
            raise ValueError(
                f"{name}: the shim builds baselines.create({name!r}) as is; it takes "
                f"num_classes, img_size, in_chans=3 and drop_rate=0, got {sorted(kwargs) or 'others'}"
            )
        model = baselines.create(name, num_classes=num_classes, img_size=size)
        if not hasattr(model, "num_classes"):  # benchmark.py reads it (torchvision models lack it)
            model.num_classes = num_classes
        return model

    entry.__name__ = entry.__qualname__ = timm_model_name(name)
    entry.__module__ = __name__
    entry.builds = (name, img_size)  # what it builds: register knows its own entries by it
    return entry


def register(name: str, img_size: int) -> str:
    """Register ``baselines`` model ``name`` with timm (built for ``img_size``); returns its timm
    name. A name timm already knows from another source is refused rather than overwritten."""
    from timm.models import is_model, model_entrypoint, register_model

    import baselines

    baselines.validate_name(name)
    timm_name = timm_model_name(name)
    if is_model(timm_name):
        known = getattr(model_entrypoint(timm_name), "builds", None)
        if known is None or known[0] != name:
            what = f"model {known[0]!r}" if known else "a model of its own"
            raise ValueError(f"timm name {timm_name!r} already stands for {what}; not {name!r}")
        if known == (name, img_size):
            return timm_name
    register_model(_entrypoint(name, img_size))
    return timm_name


def benchmark_args(
    model: str,
    mode: str,
    batch: int,
    img_size: int,
    warmup_steps: int,
    timed_steps: int,
    device: str,
) -> list[str]:
    """``benchmark.py``'s arguments for one (model, mode): bf16 autocast (``--amp --amp-dtype
    bfloat16``: fp32 weights, as our ``bf16``), eager, ``--opt adamw`` for training (timm's
    ``create_optimizer_v2``: lr 1e-4, no weight decay), no batch back-off (``--no-retry``)."""
    args = [
        "--model", timm_model_name(model), "--device", device.split(":")[0],
        "--bench", BENCH_MODES[mode], "--amp", "--amp-dtype", "bfloat16", "-b", str(batch),
        "--img-size", str(img_size), "--num-warm-iter", str(warmup_steps),
        "--num-bench-iter", str(timed_steps), "--no-retry",
    ]  # fmt: skip
    return args + (["--opt", "adamw"] if mode == "train" else [])


def git_blob_sha1(path: str | Path) -> str:
    """``git hash-object PATH``: the sha1 of ``b"blob <size>\\0"`` and the file's bytes."""
    data = Path(path).read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class ProgressLog(logging.Handler):
    """Collects benchmark.py's progress lines (``Infer [k/n]. X samples/sec. Y ms/step.``)."""

    def __init__(self) -> None:
        super().__init__()
        self.points: list[tuple[int, float]] = []

    def emit(self, record: logging.LogRecord) -> None:
        match = PROGRESS_LINE.match(record.getMessage())
        if match:
            self.points.append((int(match.group(2)), float(match.group(4))))


def window_means(points: Sequence[tuple[int, float]]) -> list[float]:
    """The mean step time (ms) of each window between progress lines: a line at step k holds the
    cumulative mean c_k, so the window (j, k] has mean (k c_k - j c_j) / (k - j)."""
    means, last_step, last_total = [], 0, 0.0
    for step, cumulative_ms in points:
        total = step * cumulative_ms
        if step > last_step:
            means.append((total - last_total) / (step - last_step))
        last_step, last_total = step, total
    return means


def _hide_flop_profilers() -> None:
    """benchmark.py counts GMACs with deepspeed or fvcore after its timed loop; hiding both skips
    that untimed count (a ``None`` in ``sys.modules`` makes the import fail)."""
    for module in ("deepspeed", "fvcore", "fvcore.nn"):
        sys.modules[module] = None  # type: ignore[assignment]


def run_repeats(benchmark_py: Path, args: Sequence[str], repeats: int, out_dir: Path) -> int:
    """Run ``benchmark.py args`` ``repeats`` times in this process; returns 0, or the exit code of
    an argument error. Each repeat writes ``repeat<i>.csv`` and ``repeat<i>.windows.json``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    logger = logging.getLogger(LOGGER_NAME)
    for repeat in range(repeats):
        results_file = out_dir / f"repeat{repeat}.csv"
        sys.argv = [str(benchmark_py), *args, "--results-file", str(results_file)]
        progress = ProgressLog()
        logger.addHandler(progress)
        root_handlers = list(logging.root.handlers)  # each run adds its console handler again
        try:
            runpy.run_path(str(benchmark_py), run_name="__main__")
        except SystemExit as stop:  # argparse's errors
            if stop.code:
                return stop.code if isinstance(stop.code, int) else 2
        finally:
            logger.removeHandler(progress)
            logging.root.handlers[:] = root_handlers
        windows = {"window_ms": window_means(progress.points)}
        (out_dir / f"repeat{repeat}.windows.json").write_text(json.dumps(windows))
    return 0


def read_repeat(results_csv: Path, mode: str, batch: int) -> dict[str, Any]:
    """One repeat's figures from benchmark.py's results CSV: ``img_s``, ``step_ms``, ``batch``,
    ``param_count``. ``RuntimeError`` names what went wrong: no file, an ``error`` row (timm's
    own failure, an OOM say), a batch other than the one asked for, or a missing column."""
    if not results_csv.is_file():
        raise RuntimeError(f"timm benchmark.py wrote no results file {results_csv.name}")
    with results_csv.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if len(rows) != 1:
        raise RuntimeError(
            f"timm benchmark.py results {results_csv.name}: {len(rows)} rows, expected 1"
        )
    row = rows[0]
    if row.get("error"):
        raise RuntimeError(f"timm benchmark.py reported an error: {' '.join(row['error'].split())}")
    prefix = mode
    try:
        figures = {
            "img_s": float(row[f"{prefix}_samples_per_sec"]),
            "step_ms": float(row[f"{prefix}_step_time"]),
            "batch": int(row[f"{prefix}_batch_size"]),
            "param_count": float(row["param_count"]) if row.get("param_count") else float("nan"),
        }
    except (KeyError, ValueError) as error:
        raise RuntimeError(
            f"timm benchmark.py results {results_csv.name}: no usable {error} column"
        ) from None
    if figures["batch"] != batch:
        raise RuntimeError(
            f"timm benchmark.py ran batch {figures['batch']}, not the {batch} asked for"
        )
    return figures


def read_windows(path: Path) -> list[float]:
    """A repeat's window means (ms), [] when its progress lines were not seen."""
    if not path.is_file():
        return []
    return [float(v) for v in json.loads(path.read_text()).get("window_ms", [])]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m suites.engine.timm_benchmark")
    parser.add_argument("--benchmark-py", type=Path, required=True)
    parser.add_argument("--model", required=True, help="a baselines name")
    parser.add_argument("--img-size", type=int, required=True)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("args", nargs=argparse.REMAINDER, help="-- then benchmark.py's arguments")
    ours = parser.parse_args(argv)
    args = ours.args[1:] if ours.args[:1] == ["--"] else ours.args
    register(ours.model, ours.img_size)
    _hide_flop_profilers()
    return run_repeats(ours.benchmark_py.resolve(), args, ours.repeats, ours.out)


if __name__ == "__main__":
    sys.exit(main())
