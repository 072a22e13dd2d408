"""Cross-check suite (``--suite crosscheck``): our step's throughput against timm's ``benchmark.py``.

One cell = (model, mode) at the settings of the latency suite's main table: bf16 autocast, eager,
224 px, inference at batch 256 and training at batch 128 (the quick profile: 64 px, batch 2).
``--option benchmark_py=PATH`` names the user's copy of timm's ``benchmark.py``
(huggingface/pytorch-image-models); the suite never copies it. Per cell:

1. timm: ``benchmark.py`` in its own process, ``repeats`` times (``suites.engine.timm_benchmark``:
   the model is registered with timm so that ``--model`` builds exactly what ``baselines.create``
   builds; ``--no-retry``, and the batch that ran must be the one asked for). ``timm_img_s`` is
   the mean of the repeats' ``samples_per_sec`` (its samples over the wall time of its timed loop,
   host clock, a synchronize after every step), ``timm_spread_pct`` their range over their mean,
   ``timm_window_spread_pct`` the largest range over mean of one repeat's five window means.
2. ours: the latency suite's step (``suites.engine.step.measure_step``) on the same model and
   settings, with timm's optimizer (``StepSpec.optimizer`` ``timm_adamw``: timm's own
   ``create_optimizer_v2(model, "adamw", lr=1e-4)``), cudnn autotuning and TF32 matmuls on as
   ``benchmark.py`` turns them on, and the same warm-up and step counts per round: CUDA events,
   median of the last two rounds (``repeat_spread_pct``: their spread).
3. ours timed timm's way (``sync_img_s``): the same step after the same warm-up, host clock and
   a synchronize after every step, samples over the loop's wall time. Where ours and timm's
   differ, this tells the clock apart from the step: if it agrees with timm's, the gap is how
   each tool times, not what it runs.

``judge`` holds ours against timm's by the log-ratio rule ``bench.py compare`` judges a throughput
with (``suites.engine.log_ratio``): ``ratio`` = ours / timm; each tool's log spread is the largest
its own spread columns give (``OUR_SPREAD_COLUMNS``, ``TIMM_SPREAD_COLUMNS``); a row agrees when
``ln(ratio)`` lies inside the 5% threshold and a noise band no wider than it, ours is higher or
lower beyond both, and the row is too noisy to judge inside a band wider than the threshold. The report
(``crosscheck.md``/``.tex`` and ``crosscheck.png``) gives the table per row, notes with numbers on
every row that does not agree, the ``benchmark.py`` version (its git blob hash; a warning when it
is not the one this suite was written against) and the host-bound and unstable flags of
``suites.engine.row_flags``.

Options: ``benchmark_py`` (required), ``warmup_steps`` (10; quick 1), ``timed_steps`` (20, at
least 5: ``benchmark.py`` logs every fifth; quick 5), ``repeats`` (3, at least 2; quick 2),
``img_size``, ``infer_batch``, ``train_batch``.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, fields
from functools import partial
from pathlib import Path
from typing import Any

import torch

from suites.engine import timm_benchmark
from suites.engine.log_ratio import (
    DEFAULT_NOISE_K,
    INCONCLUSIVE,
    TIMING_THRESHOLD_PCT,
    judge_log_ratio,
    noise_band,
    row_log_spread,
)
from suites.engine.row_flags import (
    FLAG_NOTE,
    add_flags,
    flag_legend_handles,
    mark_flagged_points,
)
from suites.engine.step import (
    MODES,
    StepSpec,
    TimingOptions,
    build_step,
    create_model,
    measure_step,
    parse_mode,
    prepare_model,
)
from suites.engine.suite import Axis, Cell, CellContext, Row, Suite, model_axis
from suites.engine.timing import free_device_memory, is_cuda, synchronize

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODELS = ("deit_tiny", "vit_small", "swin_t", "pvt_v2_b1", "favit_b1")
# each tool's spread columns: ours from the latency step's timing, timm's from its repeats' logs
OUR_SPREAD_COLUMNS = ("step_cv", "step_p10_ms", "repeat_spread_pct")
TIMM_SPREAD_COLUMNS = ("timm_spread_pct", "timm_window_spread_pct")
# the log-ratio rule's verdict on ours (NEW) against timm's (BASE), for a throughput
VERDICTS = {
    "unchanged": "agree",
    "improvement": "ours higher",
    "regression": "ours lower",
    INCONCLUSIVE: "too noisy to judge",
}
DTYPE = "bf16"
TIMM_TIMEOUT_S = 600.0


# ----------------------------------------------------------------------------- settings


def parse_benchmark_py(text: str) -> Path:
    """The path of the user's ``benchmark.py``: an existing file."""
    path = Path(str(text)).expanduser()
    if not path.is_file():
        what = "a folder" if path.is_dir() else "not found"
        raise ValueError(f"expected the path of timm's benchmark.py (a file); {text!r} is {what}")
    return path


def parse_int_at_least(text: str, minimum: int, why: str = "") -> int:
    """An integer >= ``minimum`` (``why`` says why the bound, in the error)."""
    try:
        value = int(str(text))
    except ValueError:
        raise ValueError("expected an integer") from None
    if value < minimum:
        raise ValueError(f"expected an integer >= {minimum}{why}")
    return value


# picklable (a suite travels to its workers): partials of module-level functions
OPTION_KINDS = {
    "benchmark_py": parse_benchmark_py,
    "warmup_steps": partial(parse_int_at_least, minimum=0),
    "timed_steps": partial(
        parse_int_at_least, minimum=5, why=" (benchmark.py logs every fifth of its steps)"
    ),
    "repeats": partial(parse_int_at_least, minimum=2, why=" (a spread needs two)"),
    "img_size": partial(parse_int_at_least, minimum=1),
    "infer_batch": partial(parse_int_at_least, minimum=1),
    "train_batch": partial(parse_int_at_least, minimum=1),
}


@dataclass(frozen=True)
class Settings:
    """What one run measures; the full profile is the issue's, the quick one fits a CPU."""

    img_size: int = 224
    infer_batch: int = 256
    train_batch: int = 128
    warmup_steps: int = 10
    timed_steps: int = 20
    repeats: int = 3

    @classmethod
    def for_run(cls, quick: bool, options: Mapping[str, Any]) -> Settings:
        base = (
            {"img_size": 64, "infer_batch": 2, "train_batch": 2, "warmup_steps": 1,
             "timed_steps": 5, "repeats": 2}
            if quick
            else {}
        )  # fmt: skip
        names = {f.name for f in fields(cls)}
        given = {k: OPTION_KINDS[k](str(v)) for k, v in options.items() if k in names}
        return cls(**{**base, **given})

    def batch(self, mode: str) -> int:
        return self.infer_batch if mode == "infer" else self.train_batch

    def timing(self, quick: bool) -> TimingOptions:
        """Our rounds: the same warm-up and step count as each of timm's repeats."""
        return TimingOptions(
            warmup_steps=self.warmup_steps,
            max_warmup_s=math.inf,  # all of them, as benchmark.py runs them
            timed_steps=self.timed_steps,
            min_round_s=0.0,
            max_steps=self.timed_steps,
            max_rounds=2 if quick else TimingOptions.max_rounds,
        )


# ----------------------------------------------------------------------------- timm's side


def timm_figures(out_dir: Path, mode: str, batch: int, repeats: int) -> Row:
    """timm's columns from its repeats' files in ``out_dir`` (``timm_benchmark.run_repeats``)."""
    figures = [
        timm_benchmark.read_repeat(out_dir / f"repeat{i}.csv", mode, batch) for i in range(repeats)
    ]
    img_s = [f["img_s"] for f in figures]
    mean = sum(img_s) / len(img_s)
    windows = [
        timm_benchmark.read_windows(out_dir / f"repeat{i}.windows.json") for i in range(repeats)
    ]
    window_spreads = [range_pct(w) for w in windows if len(w) > 1]
    return {
        "timm_img_s": mean,
        "timm_step_ms": sum(f["step_ms"] for f in figures) / len(figures),
        "timm_repeat_img_s": ";".join(f"{v:.2f}" for v in img_s),
        "timm_spread_pct": range_pct(img_s),
        "timm_window_spread_pct": max(window_spreads) if window_spreads else math.nan,
        "timm_param_count": figures[0]["param_count"],
    }


def range_pct(values: list[float]) -> float:
    """``100 * (max - min) / mean``: the spread of a few repeats (NaN with fewer than two)."""
    if len(values) < 2:
        return math.nan
    mean = sum(values) / len(values)
    return 100.0 * (max(values) - min(values)) / mean


def _last_line(path: Path) -> str:
    lines = [line.strip() for line in path.read_text(errors="replace").splitlines()]
    return next((line for line in reversed(lines) if line), "no output")


def run_timm(
    model: str, mode: str, settings: Settings, benchmark_py: Path, device: str, out_dir: Path
) -> Row:
    """timm's ``benchmark.py`` on one (model, mode), ``settings.repeats`` times in one process of
    its own; its log goes to ``out_dir/timm.log``. ``RuntimeError`` when it fails."""
    args = timm_benchmark.benchmark_args(
        model, mode, settings.batch(mode), settings.img_size, settings.warmup_steps,
        settings.timed_steps, device,
    )  # fmt: skip
    command = [
        sys.executable, "-m", "suites.engine.timm_benchmark",
        "--benchmark-py", str(benchmark_py.resolve()), "--model", model,
        "--img-size", str(settings.img_size), "--repeats", str(settings.repeats),
        "--out", str(out_dir), "--", *args,
    ]  # fmt: skip
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    log = out_dir / "timm.log"
    with log.open("w") as handle:
        done = subprocess.run(
            command, cwd=REPO_ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT,
            timeout=TIMM_TIMEOUT_S, check=False,
        )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(
            f"timm benchmark.py exited with code {done.returncode}: {_last_line(log)} ({log})"
        )
    return timm_figures(out_dir, mode, settings.batch(mode), settings.repeats)


# ----------------------------------------------------------------------------- our side


def set_timm_backends(device: str) -> Row:
    """cudnn autotuning and TF32 matmuls, as ``benchmark.py`` sets them at import on a CUDA
    machine; returns them as columns."""
    if is_cuda(device):
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    return {
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
        "tf32_matmul": bool(torch.backends.cuda.matmul.allow_tf32),
    }


def synced_throughput(spec: StepSpec, device: str, settings: Settings, seed: int) -> Row:
    """Our step timed as ``benchmark.py`` times its own: ``warmup_steps`` steps, then
    ``timed_steps`` steps each between two host clock reads with a synchronize before the second;
    ``sync_img_s`` = samples over the wall time of the timed loop, ``sync_step_ms`` = mean step."""
    model = prepare_model(create_model(spec.model, spec.img_size), spec, device, TimingOptions())
    batch = int(spec.batch_size)
    step = build_step(model, spec, batch, device, seed=seed)
    for _ in range(settings.warmup_steps):
        step()
        synchronize(device)
    total_s = 0.0
    loop_start = time.perf_counter()
    for _ in range(settings.timed_steps):
        start = time.perf_counter()
        step()
        synchronize(device)
        total_s += time.perf_counter() - start
    wall_s = time.perf_counter() - loop_start
    del step, model
    free_device_memory(device)
    return {
        "sync_img_s": settings.timed_steps * batch / wall_s,
        "sync_step_ms": 1000.0 * total_s / settings.timed_steps,
    }


# ----------------------------------------------------------------------------- judging


def judge(ours_img_s: float, timm_img_s: float, spreads: Mapping[str, Any]) -> Row:
    """``ratio`` = ours / timm and its verdict by the log-ratio rule (module docstring), each
    tool's log spread read from its columns in ``spreads``: ``combined_spread_pct`` is the two
    combined (``100 * (exp(hypot) - 1)``), ``tolerance_pct`` the move allowed (the ratio agrees
    inside x/÷ ``1 + tolerance_pct / 100``: the threshold, or the noise band when wider)."""
    ours, timm = (
        row_log_spread(spreads, OUR_SPREAD_COLUMNS),
        row_log_spread(spreads, TIMM_SPREAD_COLUMNS),
    )
    threshold, band = math.log1p(TIMING_THRESHOLD_PCT / 100.0), noise_band(timm, ours)
    ratio = ours_img_s / timm_img_s if timm_img_s > 0 else math.nan
    verdict = "no figure"
    if ratio > 0:
        verdict = VERDICTS[judge_log_ratio(math.log(ratio), threshold, band, higher_is_better=True)]
    return {
        "ratio": ratio,
        "diff_pct": 100.0 * (ratio - 1.0),
        "combined_spread_pct": 100.0 * math.expm1(math.hypot(ours, timm)),
        "tolerance_pct": 100.0 * math.expm1(max(threshold, band)),
        "agrees": verdict == "agree",
        "verdict": verdict,
    }


def measure(cell: Cell, ctx: CellContext) -> Row:
    """One (model, mode): timm's repeats, then ours, then ours timed timm's way."""
    import timm

    import baselines

    settings = Settings.for_run(ctx.quick, ctx.options)
    benchmark_py = parse_benchmark_py(ctx.options["benchmark_py"])
    model, mode = cell["model"], parse_mode(cell["mode"])
    batch = settings.batch(mode)
    timm_side = run_timm(model, mode, settings, benchmark_py, ctx.device, ctx.artifact_dir)
    backends = set_timm_backends(ctx.device)
    spec = StepSpec(model, settings.img_size, batch, dtype=DTYPE, mode=mode, optimizer="timm_adamw")
    ours = measure_step(spec, ctx, settings.timing(ctx.quick))
    synced = synced_throughput(spec, ctx.device, settings, ctx.seed)
    verdict = judge(ours[f"{mode}_samples_per_sec"], timm_side["timm_img_s"], {**timm_side, **ours})
    return {
        "model_id": baselines.info(model).model_id,
        "timm_model": timm_benchmark.timm_model_name(model),
        "dtype": DTYPE,
        "optimizer": spec.optimizer if mode == "train" else "",
        **timm_side,
        **ours,
        **synced,
        "sync_ratio": synced["sync_img_s"] / timm_side["timm_img_s"],
        **verdict,
        **backends,
        "benchmark_py_blob": timm_benchmark.git_blob_sha1(benchmark_py),
        "timm_version": timm.__version__,
        "warmup_steps": settings.warmup_steps,
        "timed_steps_per_round": settings.timed_steps,
        "timm_repeats": settings.repeats,
    }


# ----------------------------------------------------------------------------- report


def crosscheck_table(table: Any) -> Any:
    """The ok rows with ``ours_img_s`` and ``ours_step_ms`` (the mode's columns), the verdict
    columns of ``judge`` computed again from the figures, ``sync_ratio`` and the row flags."""
    import pandas as pd

    ok = table[table["status"] == "ok"].copy() if "status" in table else table.copy()
    if ok.empty:
        return ok
    for prefix in MODES:
        for column in (f"{prefix}_samples_per_sec", f"{prefix}_step_time"):
            if column not in ok:
                ok[column] = math.nan
    is_train = ok["mode"] == "train"
    ok["ours_img_s"] = (
        ok["train_samples_per_sec"].where(is_train, ok["infer_samples_per_sec"]).astype(float)
    )
    ok["ours_step_ms"] = ok["train_step_time"].where(is_train, ok["infer_step_time"]).astype(float)
    ok["batch"] = pd.to_numeric(ok.get("train_batch_size", math.nan), errors="coerce").where(
        is_train, pd.to_numeric(ok.get("infer_batch_size", math.nan), errors="coerce")
    )
    numbers = {
        c: pd.to_numeric(ok[c], errors="coerce") if c in ok else pd.Series(math.nan, index=ok.index)
        for c in ("timm_img_s", "sync_img_s")
    }
    verdicts = [
        judge(o, t, row)
        for o, t, row in zip(
            ok["ours_img_s"], numbers["timm_img_s"], ok.to_dict("records"), strict=True
        )
    ]
    for column in verdicts[0]:
        ok[column] = [v[column] for v in verdicts]
    ok["sync_ratio"] = numbers["sync_img_s"] / numbers["timm_img_s"]
    order = {m: i for i, m in enumerate(DEFAULT_MODELS)}
    ok["_order"] = ok["model"].map(lambda m: order.get(m, len(order)))
    ok = ok.sort_values(["_order", "model", "mode"], kind="stable").drop(columns="_order")
    return add_flags(ok).reset_index(drop=True)


def explain(row: Mapping[str, Any]) -> str:
    """Why a row does not agree, in numbers: the noise when it is too noisy to judge, else the
    clock or the step; then its flags."""
    text = (
        f"{row['model']} {row['mode']}: ours {row['ours_img_s']:,.0f} img/s against timm's "
        f"{row['timm_img_s']:,.0f} ({row['diff_pct']:+.1f}%, allowed x/÷ "
        f"{1 + row['tolerance_pct'] / 100:.3f})."
    )
    if row["verdict"] == VERDICTS[INCONCLUSIVE]:
        text += (
            f" The two tools' combined spread ({row['combined_spread_pct']:.1f}%) makes a noise "
            f"band wider than {TIMING_THRESHOLD_PCT:g}%: the figures neither agree nor differ."
        )
    else:
        text += _clock_or_step(row)
    if row.get("launch_bound"):
        text += (
            f" The row is host-bound (GPU busy {row['gpu_busy_share']:.0%} of the step, host "
            f"{row['host_op_us']:.2f} µs/op): every host-side difference shows in full."
        )
    if row.get("unstable"):
        text += (
            f" Our rounds never agreed within the target (spread {row['repeat_spread_pct']:.1f}%)."
        )
    return text


def _clock_or_step(row: Mapping[str, Any]) -> str:
    """Whether our step timed timm's way lands within the row's allowance of timm's figure."""
    sync_ratio = row.get("sync_ratio", math.nan)
    if not sync_ratio > 0:
        return ""
    sync_diff = 100.0 * (sync_ratio - 1.0)
    clocks = (
        f"per step, {row['sync_step_ms']:.2f} ms timed timm's way against our events' median "
        f"of {row['ours_step_ms']:.2f} ms ({row['sync_step_ms'] - row['ours_step_ms']:+.2f} ms)"
    )
    if abs(math.log(sync_ratio)) <= math.log1p(row["tolerance_pct"] / 100.0):
        return (
            f" Our step timed timm's way (host clock, a synchronize after every step) gives "
            f"{row['sync_img_s']:,.0f} img/s, {sync_diff:+.1f}% from timm's: the gap is the "
            f"timing, not the step; {clocks}."
        )
    return (
        f" Timed timm's way our step still gives {row['sync_img_s']:,.0f} img/s "
        f"({sync_diff:+.1f}% from timm's; {clocks}): the steps differ beyond the clock "
        "(timm runs inference under inference_mode, and makes its training targets and "
        "zeroes its gradients around the timed step)."
    )


TABLE_COLUMNS = (
    "model", "mode", "batch", "timm_img_s", "timm_spread_pct", "timm_window_spread_pct",
    "ours_img_s", "repeat_spread_pct", "ratio", "sync_img_s", "sync_ratio", "tolerance_pct",
    "verdict", "flags", "host_op_us", "gpu_busy_share",
)  # fmt: skip
DIGITS = {
    "batch": 0, "timm_img_s": 0, "ours_img_s": 0, "sync_img_s": 0, "ratio": 3, "sync_ratio": 3,
    "timm_spread_pct": 1, "timm_window_spread_pct": 1, "repeat_spread_pct": 1,
    "tolerance_pct": 1, "host_op_us": 2, "gpu_busy_share": 2,
}  # fmt: skip


def model_mismatches(rows: Any) -> list[str]:
    """Rows whose two tools counted different parameters (timm's figure is rounded to 0.01 M):
    they did not run the same model."""
    if "timm_param_count" not in rows or "param_count" not in rows:
        return []
    import pandas as pd

    ours = pd.to_numeric(rows["param_count"], errors="coerce")
    theirs = pd.to_numeric(rows["timm_param_count"], errors="coerce")
    differ = (ours - theirs).abs() > 0.006  # NaN: not compared
    return [
        f"**warning:** {m} {mode}: timm's model has {t:g} M parameters, ours {o:g} M: not the "
        "same model."
        for m, mode, o, t, d in zip(rows["model"], rows["mode"], ours, theirs, differ, strict=True)
        if d
    ]


def version_notes(table: Any) -> list[str]:
    """What benchmark.py and timm were, and a warning for a script other than the known one."""
    notes = []
    blobs = sorted({str(b) for b in table.get("benchmark_py_blob", []) if isinstance(b, str)})
    versions = sorted({str(v) for v in table.get("timm_version", []) if isinstance(v, str)})
    if blobs:
        notes.append(
            f"benchmark.py git blob: {', '.join(blobs)}; timm {', '.join(versions) or '?'}."
        )
    unknown = [b for b in blobs if b != timm_benchmark.KNOWN_BENCHMARK_BLOB]
    if unknown:
        notes.append(
            f"**warning:** benchmark.py is not the version this cross-check was written against "
            f"(blob {timm_benchmark.KNOWN_BENCHMARK_BLOB}, timm v1.0.23 to v1.0.28): its timing "
            "or command line may differ."
        )
    return notes


def _plot(rows: Any, path_stem: Path) -> None:
    import matplotlib.pyplot as plt

    from suites.engine.render import save_figure

    data = rows.reset_index(drop=True).copy()
    data["position"] = range(len(data))[::-1]
    fig, ax = plt.subplots(figsize=(7.5, 0.5 * len(data) + 1.6))
    factor = 1.0 + data["tolerance_pct"].astype(float) / 100.0  # agrees when 1 is inside x/÷ it
    ratio = data["ratio"].astype(float)
    threshold = 1.0 + TIMING_THRESHOLD_PCT / 100.0
    ax.axvspan(1 / threshold, threshold, color="0.9", zorder=0,
               label=f"x/÷ {threshold:g}")  # fmt: skip
    ax.axvline(1.0, color="0.4", linewidth=1, zorder=1)
    ax.errorbar(ratio, data["position"], xerr=[ratio - ratio / factor, ratio * factor - ratio],
                fmt="o", color="tab:blue", capsize=3, zorder=3,
                label="ours / timm (x/÷ the allowance)")  # fmt: skip
    ax.scatter(data["sync_ratio"], data["position"], marker="D", facecolors="none",
               edgecolors="tab:orange", zorder=3, label="ours timed timm's way / timm")  # fmt: skip
    mark_flagged_points(ax, data, "ratio", "position")
    ax.set_yticks(
        data["position"],
        [f"{m} {mode}" for m, mode in zip(data["model"], data["mode"], strict=True)],
    )
    ax.set_xlabel("throughput ratio to timm's benchmark.py")
    handles, _ = ax.get_legend_handles_labels()
    ax.legend(handles=handles + flag_legend_handles(data), loc="center left",
              bbox_to_anchor=(1.0, 0.5), fontsize=8)  # fmt: skip
    save_figure(fig, path_stem)


def verdict_counts(rows: Any) -> str:
    """How many rows got each verdict, in ``VERDICTS``' order: "Of 10 rows: 7 agree, ..."."""
    counts = rows["verdict"].value_counts()
    order = [*VERDICTS.values(), *(v for v in counts.index if v not in VERDICTS.values())]
    parts = [f"{counts[v]} {v}" for v in order if v in counts]
    return f"Of {len(rows)} rows: {', '.join(parts)}."


def report(table: Any, run_dir: Path) -> None:
    """``crosscheck.md``/``.tex`` (the table, the versions, notes on every disagreement) and
    ``crosscheck.png``/``.pdf``."""
    from suites.engine.render import latex_table, markdown_table, plot_style

    run_dir = Path(run_dir)
    rows = crosscheck_table(table)
    if rows.empty:
        return
    columns = [c for c in TABLE_COLUMNS if c in rows]
    caption = (
        "Throughput of our step against timm's benchmark.py, same model (built by baselines for "
        "both), bf16 autocast, eager. timm_img_s: mean over timm's repeats; timm_spread_pct: "
        "their range over their mean; timm_window_spread_pct: the largest range over mean of "
        "one repeat's five window means; ours_img_s: batch over our median step (CUDA events on "
        "a GPU, last two rounds); repeat_spread_pct: the spread of those two rounds; sync_img_s: our "
        "step timed timm's way (host clock, a synchronize after every step); ratio, sync_ratio: "
        f"over timm_img_s. Judged as bench.py compare judges a throughput: ln(ratio) against "
        f"ln(1 + {TIMING_THRESHOLD_PCT:g}%) and a noise band of {DEFAULT_NOISE_K:g} x the two "
        "tools' combined log spread (ours the largest of step_cv, step p10/p90 and "
        "repeat_spread_pct; timm's of timm_spread_pct and timm_window_spread_pct); agree inside "
        "both, ours higher or lower beyond both, too noisy to judge inside a band wider than "
        f"{TIMING_THRESHOLD_PCT:g}%; tolerance_pct: the ratio allowed, x/÷ (1 + tolerance_pct / "
        "100). " + FLAG_NOTE
    )
    (run_dir / "crosscheck.tex").write_text(
        latex_table(rows[columns], caption=caption, label="tab:crosscheck", digits=DIGITS)
    )
    disagree = rows[rows["verdict"] != VERDICTS["unchanged"]]
    lines = [
        "# Cross-check against timm's benchmark.py",
        "",
        *version_notes(table),
        *model_mismatches(rows),
        "",
        caption,
        "",
        markdown_table(rows[columns], DIGITS),
        verdict_counts(rows),
        "",
    ]
    if not disagree.empty:
        lines += ["## Rows that do not agree", ""]
        lines += [f"- {explain(row)}" for row in disagree.to_dict("records")]
        lines.append("")
    (run_dir / "crosscheck.md").write_text("\n".join(lines))
    plot_style()
    _plot(rows, run_dir / "crosscheck")


SUITE = Suite(
    name="crosscheck",
    description="our step's img/s against timm's benchmark.py on the same models and settings",
    axes=(
        model_axis(DEFAULT_MODELS, quick=("deit_tiny",)),
        Axis("mode", MODES, quick=MODES, choices=MODES, kind=parse_mode, help="infer or train"),
    ),
    needs_gpu=True,
    measure=measure,
    report=report,
    option_kinds=OPTION_KINDS,
    required_options={
        "benchmark_py": "the path of your copy of timm's benchmark.py, from the "
        "huggingface/pytorch-image-models repository"
    },
    examples=(
        "python bench.py --suite crosscheck --option benchmark_py=.timm/benchmark.py",
        "python bench.py --suite crosscheck --option benchmark_py=.timm/benchmark.py --models favit_b1 --mode train --option repeats=5",
    ),
)
