"""Profile suite (``--suite profile``): where a step's time goes, kernel by kernel.

One cell = (model, img_size, batch_size, dtype, mode, compile): the latency suite's step (same
model construction, autocast, optimizer and compile wrapping: ``suites.engine.step``), run
``warmup_steps`` times, then ``profile_steps`` steps under ``torch.profiler`` (CPU activity, plus
CUDA on a GPU). Per row:

- ``kernels_per_step``: device kernel launches per step (memcpy, memset and the GPU side of
  ``record_function`` ranges such as ``Optimizer.step#AdamW.step`` not counted; 0 on the CPU);
- ``device_ms_per_step``: summed device time of those kernels per step (NaN on the CPU);
- ``gpu_busy_share``: ``suites.engine.timing.gpu_busy_share`` over a separate window of steps (device
  busy time per step over the median time of unprofiled steps; NaN on the CPU); below
  ``LAUNCH_BOUND_BUSY_SHARE`` the row is ``launch_bound``;
- ``inductor_kernels`` (compiled cells): kernels inductor generated for the step (Triton on a GPU,
  C++ on the CPU; matmuls and convolutions it calls out to are not among them), read from
  ``torch._inductor.metrics``: on the CPU, a proxy of the compiled step's kernel count;
- ``cpu_ops_per_step``: ``aten::`` operator calls per step the profiler records on the host,
  nested calls included (an ``aten::linear`` that calls ``aten::addmm`` counts 2);
- ``eager_ops_per_step``, ``eager_traffic_gib_per_step`` (eager cells): the ATen ops one step
  dispatches, views and bare allocations left out, and the GiB their tensor inputs and outputs hold
  (``suites.engine.meters.OpTraffic``): about one kernel per op and the least memory traffic of eager
  execution, exact, and the same on any device in fp32 (under autocast, each device's cast
  policy applies; the optimizer is fused AdamW everywhere);
- ``profiled_step_ms``: host wall time per step inside the profiled window (profiler overhead
  included: compare rows of one run, not with the latency suite);
- ``top_kernels``: the top 3 by time as ``name (share%)``; the top 30 go to the cell's
  ``top_kernels.csv`` (device kernels on a GPU, ``aten::`` ops by self CPU time on the CPU), and
  the top 30 ``aten::`` ops by the device time of the kernels they launched to ``top_ops.csv``
  (which operation a kernel serves: a convolution's backward, a LayerNorm, a copy).

Options (``ctx.options``): ``warmup_steps`` (default 5), ``profile_steps`` (5), ``busy_steps`` (5).
The report is ``profile.md``/``profile.tex``, with each count's ratio to the ``pvt_v2_b1`` row of
the same settings when the run has one.
"""

from __future__ import annotations

import csv
import math
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from baselines import RATIO_BASELINE
from suites.engine.meters import OpTraffic
from suites.engine.step import (
    StepSpec,
    TimingOptions,
    build_step,
    create_model,
    is_eager_cell,
    parse_batch_size,
    parse_compile,
    parse_dtype,
    parse_mode,
    prepare_model,
)
from suites.engine.suite import (
    Axis,
    Cell,
    CellContext,
    CellSkipped,
    Row,
    Suite,
    model_axis,
    square_image_size,
)
from suites.engine.timing import (
    KERNEL_ACTIVITY,
    LAUNCH_BOUND_BUSY_SHARE,
    device_work_events,
    free_device_memory,
    gpu_busy_share,
    is_cuda,
    synchronize,
    torch_profile,
)

DEFAULT_MODELS = ("favit_b1+ref", "favit_b1", "pvt_v2_b1")
PROFILE_COMPILE_MODES = ("eager", "compile")
TOP_KERNELS_CSV = "top_kernels.csv"
TOP_OPS_CSV = "top_ops.csv"
TOP_IN_FILE = 30
TOP_IN_ROW = 3


def _profile_compile(value: str) -> str:
    value = parse_compile(value)
    if value not in PROFILE_COMPILE_MODES:
        raise ValueError(f"bad compile {value!r}; valid: {', '.join(PROFILE_COMPILE_MODES)}")
    return value


def _batch(value: str | int) -> int:
    batch = parse_batch_size(value)
    if not isinstance(batch, int):
        raise ValueError(f"bad batch_size {value!r}; valid: a positive integer")
    return batch


def summarize_top(names_and_times: list[tuple[str, int, float]], total: float, n: int) -> str:
    """``name (share%)`` of the first ``n`` entries, joined by ``; ``; entries are (name, calls, time)."""
    if total <= 0:
        return ""
    return "; ".join(f"{name} ({100 * t / total:.1f}%)" for name, _, t in names_and_times[:n])


def _device_kernels(prof: Any) -> list[tuple[str, int]]:
    """(name, duration ns) of every device kernel the profiler saw (copies, memsets and the GPU
    side of annotations left out)."""
    kernels = device_work_events(prof.profiler.kineto_results.events(), (KERNEL_ACTIVITY,))
    return [(event.name(), event.end_ns() - event.start_ns()) for event in kernels]


def _top_by_time(totals: dict[str, list[float]]) -> list[tuple[str, int, float]]:
    """(name, calls, time) sorted by time, longest first; ``totals`` maps name -> [calls, time]."""
    return sorted(
        ((name, int(calls), time_) for name, (calls, time_) in totals.items()),
        key=lambda entry: -entry[2],
    )


Top = list[tuple[str, int, float]]  # (name, calls per step, ms per step), longest first


def profile_step(
    step: Callable[[], None], device: str, steps: int
) -> tuple[dict[str, float], Top, str, Top]:
    """Profile ``steps`` calls of ``step``: (counts per step, top entries, their source, top ops).

    Top entries are device kernels on CUDA, ``aten::`` ops by self CPU time otherwise. Top ops are
    ``aten::`` ops by the device time of the kernels each launched itself (CUDA), which names the
    operation behind a kernel; on the CPU, the same list as the top entries.
    """
    from torch.profiler import ProfilerActivity

    activities = [ProfilerActivity.CPU]
    if is_cuda(device):
        activities.append(ProfilerActivity.CUDA)
    synchronize(device)
    with torch_profile(activities) as prof:
        synchronize(device)
        start = time.perf_counter()
        for _ in range(steps):
            step()
        synchronize(device)
        wall_s = time.perf_counter() - start

    cpu_ops = sum(
        1
        for event in prof.profiler.kineto_results.events()
        if event.device_type() == torch.autograd.DeviceType.CPU
        and event.name().startswith("aten::")
    )
    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    op_totals: dict[str, list[float]] = {}
    time_attribute = "self_device_time_total" if is_cuda(device) else "self_cpu_time_total"
    for average in prof.key_averages():
        self_us = getattr(average, time_attribute)
        if average.key.startswith("aten::") and self_us > 0:
            op_totals[average.key] = [average.count / steps, self_us / 1e3 / steps]
    if is_cuda(device):
        kernels = _device_kernels(prof)
        for name, duration_ns in kernels:
            totals[name][0] += 1 / steps
            totals[name][1] += duration_ns / 1e6 / steps
        kernel_count = len(kernels)
        device_ms = sum(duration for _, duration in kernels) / 1e6 / steps
        source = "device"
    else:
        totals.update(op_totals)
        kernel_count, device_ms, source = 0, float("nan"), "cpu"
    counts = {
        "kernels_per_step": kernel_count / steps,
        "device_ms_per_step": device_ms,
        "cpu_ops_per_step": cpu_ops / steps,
        "profiled_step_ms": 1000 * wall_s / steps,
    }
    return counts, _top_by_time(totals), source, _top_by_time(op_totals)


def write_top_kernels(path: Path, top: Top, source: str) -> None:
    """The first ``TOP_IN_FILE`` entries as CSV: rank, name, calls_per_step, ms_per_step, share_pct, source."""
    total = sum(entry[2] for entry in top)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["rank", "name", "calls_per_step", "ms_per_step", "share_pct", "source"])
        for rank, (name, calls, ms) in enumerate(top[:TOP_IN_FILE], start=1):
            share = 100 * ms / total if total > 0 else float("nan")
            writer.writerow([rank, name, calls, f"{ms:.6f}", f"{share:.2f}", source])


def measure(cell: Cell, ctx: CellContext) -> Row:
    """Profile one cell's step; see the module docstring for the columns."""
    spec = StepSpec.from_cell({**cell, "channels_last": "off"})
    if spec.compile not in PROFILE_COMPILE_MODES:
        raise CellSkipped(f"compile={spec.compile} is not profiled here")
    options = ctx.options or {}
    warmup_steps = int(options.get("warmup_steps", 5 if is_cuda(ctx.device) else 1))
    profile_steps = int(options.get("profile_steps", 5 if is_cuda(ctx.device) else 2))
    busy_steps = int(options.get("busy_steps", 5))
    if warmup_steps < 0 or profile_steps < 1:
        raise ValueError(
            f"need warmup_steps >= 0 and profile_steps >= 1, got {warmup_steps}, {profile_steps}"
        )
    device = ctx.device
    torch.manual_seed(ctx.seed)
    model = create_model(spec.model, spec.img_size)
    model = prepare_model(model, spec, device, TimingOptions())
    free_device_memory(device)
    step = build_step(model, spec, int(spec.batch_size), device, seed=ctx.seed)
    if spec.compile != "eager":
        from torch._inductor import metrics as inductor_metrics

        inductor_metrics.reset()
    for _ in range(max(1, warmup_steps)):  # the first step compiles and initializes lazily
        step()
    synchronize(device)
    inductor_kernels = (
        float(inductor_metrics.generated_kernel_count) if spec.compile != "eager" else math.nan
    )

    # a dispatch mode around a compiled step would see its tracing: eager cells only
    eager_counts = {"eager_ops_per_step": math.nan, "eager_traffic_gib_per_step": math.nan}
    if spec.compile == "eager":
        with OpTraffic() as traffic:
            step()
        eager_counts = {
            "eager_ops_per_step": float(traffic.ops),
            "eager_traffic_gib_per_step": traffic.bytes / 2**30,
        }
    counts, top, source, top_ops = profile_step(step, device, profile_steps)
    write_top_kernels(ctx.artifact_dir / TOP_KERNELS_CSV, top, source)
    write_top_kernels(ctx.artifact_dir / TOP_OPS_CSV, top_ops, f"{source} (by aten op)")
    busy = gpu_busy_share(step, device, busy_steps) if busy_steps > 0 else float("nan")
    total = sum(entry[2] for entry in top)
    return {
        **counts,
        **eager_counts,
        "gpu_busy_share": busy,
        "launch_bound": bool(busy < LAUNCH_BOUND_BUSY_SHARE) if not math.isnan(busy) else None,
        "inductor_kernels": inductor_kernels,
        "profiled_steps": profile_steps,
        "top_source": source,
        "top_kernels": summarize_top(top, total, TOP_IN_ROW),
    }


# ----------------------------------------------------------------------------- report

TABLE_COLUMNS = (
    "model", "mode", "dtype", "compile", "img_size", "batch_size", "kernels_per_step",
    "kernels_vs_ref", "inductor_kernels", "cpu_ops_per_step", "eager_ops_per_step", "eager_traffic_gib_per_step",
    "device_ms_per_step", "gpu_busy_share", "launch_bound",
    "profiled_step_ms", "top_kernels",
)  # fmt: skip
SETTING_COLUMNS = ("img_size", "batch_size", "dtype", "mode", "compile")


def add_kernel_ratio(ok: Any, reference: str = RATIO_BASELINE) -> Any:
    """``kernels_vs_ref``: kernels per step over the reference model's at the same settings (NaN
    where the run has no such row, or the reference launches none, as on the CPU)."""
    import pandas as pd

    keys = [c for c in SETTING_COLUMNS if c in ok]
    ref = ok[ok["model"] == reference][[*keys, "kernels_per_step"]]
    ref = ref.drop_duplicates(subset=keys, keep="last").rename(columns={"kernels_per_step": "_ref"})
    merged = pd.merge(ok, ref, on=keys, how="left")
    denominator = merged["_ref"].astype(float).where(merged["_ref"].astype(float) > 0)
    merged["kernels_vs_ref"] = merged["kernels_per_step"].astype(float) / denominator
    return merged.drop(columns=["_ref"])


def report(table: Any, run_dir: Path) -> None:
    """``profile.md``/``profile.tex``: counts per step and the top 3 kernels of every ok cell."""
    from suites.engine.render import write_table

    ok = table[table["status"] == "ok"].copy() if "status" in table else table.copy()
    if ok.empty:
        return
    ok = add_kernel_ratio(ok).sort_values(["mode", "dtype", "compile", "model"])
    columns = [c for c in TABLE_COLUMNS if c in ok]
    write_table(
        ok[columns].reset_index(drop=True),
        Path(run_dir) / "profile",
        caption=(
            "Profile per step (torch.profiler). kernels_per_step: device kernel launches; "
            f"kernels_vs_ref: ratio to {RATIO_BASELINE} at the same settings; inductor_kernels: "
            "kernels inductor generated for a compiled step; cpu_ops_per_step: "
            "aten ops recorded on the host (nested included); eager_ops_per_step, "
            "eager_traffic_gib_per_step: ATen ops an eager step dispatches (views and allocations "
            "left out) and the GiB of their tensors; gpu_busy_share: device busy time per "
            "step over the step's unprofiled time "
            f"(launch_bound below {LAUNCH_BOUND_BUSY_SHARE}); top_kernels: top 3 by time."
        ),
        digits={
            "kernels_per_step": 1,
            "inductor_kernels": 0,
            "kernels_vs_ref": 2,
            "cpu_ops_per_step": 1,
            "eager_ops_per_step": 0,
            "eager_traffic_gib_per_step": 3,
            "device_ms_per_step": 2,
            "gpu_busy_share": 2,
            "profiled_step_ms": 1,
            "img_size": 0,
        },
    )


SUITE = Suite(
    name="profile",
    description="Kernels, host ops and GPU busy share per step, and the top kernels, per model.",
    axes=(
        model_axis(DEFAULT_MODELS, quick=("favit_b0+ref", "favit_b0")),
        Axis("img_size", (224,), quick=(64,), kind=square_image_size, help="input pixels per side"),
        Axis("batch_size", (128,), quick=(2,), kind=_batch, help="positive integer"),
        Axis(
            "dtype", ("bf16",), quick=("fp32",), choices=("bf16", "fp16", "fp32"), kind=parse_dtype
        ),
        Axis("mode", ("train", "infer"), choices=("train", "infer"), kind=parse_mode),
        Axis(
            "compile",
            PROFILE_COMPILE_MODES,
            quick=("eager",),
            choices=PROFILE_COMPILE_MODES,
            kind=_profile_compile,
            help="eager or compile (inductor, torch.compile(dynamic=False))",
        ),
    ),
    measure=measure,
    option_kinds={key: int for key in ("warmup_steps", "profile_steps", "busy_steps")},
    reuse_worker=is_eager_cell,
    report=report,
    cell_timeout_s=1200.0,
    examples=(
        "python bench.py --suite profile --quick",
        "python bench.py --suite profile --models favit_b1+ref,favit_b1,pvt_v2_b1",
    ),
)
