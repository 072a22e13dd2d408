"""One honest step timer for every suite, plus the GPU-busy share, OOM back-off and the device's peak.

- ``time_steps``: warm-up steps, then timed steps, one sample per step. On CUDA each step sits between
  two CUDA events recorded on the current stream and the host synchronizes once before reading
  them; on the CPU each step is bracketed by ``time.perf_counter``. torch.utils.benchmark's
  ``Timer`` times blocks of runs with a host clock and a synchronize per block, so it gives no
  per-step distribution; we keep its habits (warm-up, enough runs, the median as the figure, a
  spread beside it) and its adaptive idea in a simple form: a round runs at least ``timed_steps``
  steps and at least ``min_round_s`` seconds (estimated from the warm-up), up to ``max_steps``;
  Python's garbage collector is off during a round, as in ``timeit``.
- ``TimingStats``: median, p10, p90, mean in ms, coefficient of variation (std / mean), n.
- ``repeat_spread_pct``: two independent rounds of one cell, ``100 * |m1 - m2| / mean(m1, m2)``
  over their medians. ``time_rounds`` runs rounds until the last two agree within a target (3%)
  or a round limit: a cell still warming up (allocator growth, lazy initialization, clocks) shows a
  first round slower than the second, and the extra rounds let it settle instead of reporting it.
- ``gpu_busy_share``: device busy time per step (union of the intervals of every kernel, copy and
  memset the profiler sees) over the step's wall time from unprofiled timing. Below
  ``LAUNCH_BOUND_BUSY_SHARE`` (0.7: the GPU idles more than 30% of each step waiting for the host
  to launch work) a row is called launch-bound.
- ``host_op_us``: the host's cost of dispatching one tiny op, a per-row check that the host was
  as fast for every cell of a run.
- ``find_max_batch``: timm's ``benchmark.py`` back-off (``timm.utils.decay_batch_step``) from a
  start batch until a try fits, then a bisection between that batch and the last failure, so the
  result is the largest batch that fits (not just the largest on timm's decay ladder), exactly or
  to a stated relative tolerance. Only the batch leaves the search: each try runs with nothing
  of an earlier try alive.
- ``device_peak_tflops``: the measured bf16 dense matmul rate (8192^3 on CUDA) for MFU, measured
  once per run and cached as ``<run_dir>/device_peak.json``.
"""

from __future__ import annotations

import contextlib
import gc
import json
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

LAUNCH_BOUND_BUSY_SHARE = 0.7  # GPU busy share below this -> the row is launch-bound


@dataclass(frozen=True)
class TimingStats:
    """Statistics of per-step times in milliseconds; ``cv`` is std / mean (population std)."""

    median_ms: float
    p10_ms: float
    p90_ms: float
    mean_ms: float
    cv: float
    n: int
    samples_ms: tuple[float, ...] = field(default=(), repr=False, compare=False)

    @classmethod
    def from_samples(cls, samples_ms: list[float] | np.ndarray) -> TimingStats:
        """Percentiles by linear interpolation between order statistics (numpy's default)."""
        x = np.asarray(samples_ms, dtype=np.float64)
        if x.ndim != 1 or x.size == 0:
            raise ValueError(f"need a non-empty 1-d list of step times, got shape {x.shape}")
        mean = float(x.mean())
        p10, median, p90 = np.percentile(x, [10, 50, 90])
        return cls(
            median_ms=float(median),
            p10_ms=float(p10),
            p90_ms=float(p90),
            mean_ms=mean,
            cv=float(x.std() / mean) if mean > 0 else float("nan"),
            n=int(x.size),
            samples_ms=tuple(float(v) for v in x),
        )

    def pooled_with(self, other: TimingStats) -> TimingStats:
        """Statistics over the samples of both rounds."""
        return TimingStats.from_samples([*self.samples_ms, *other.samples_ms])


def repeat_spread_pct(first: TimingStats, second: TimingStats) -> float:
    """Spread between two rounds of one cell: ``100 * |m1 - m2| / mean(m1, m2)`` of their medians."""
    mean = (first.median_ms + second.median_ms) / 2
    return 100.0 * abs(first.median_ms - second.median_ms) / mean


@dataclass(frozen=True)
class RoundsResult:
    """Every round of one cell; the figures come from the last two (``compared``)."""

    rounds: tuple[TimingStats, ...]

    @property
    def compared(self) -> tuple[TimingStats, TimingStats]:
        return self.rounds[-2], self.rounds[-1]

    @property
    def stats(self) -> TimingStats:
        """The pooled samples of the compared rounds."""
        first, second = self.compared
        return first.pooled_with(second)

    @property
    def spread_pct(self) -> float:
        return repeat_spread_pct(*self.compared)


def time_rounds(
    step: Callable[[], Any],
    device: str | torch.device = "cpu",
    spread_target_pct: float = 3.0,
    max_rounds: int = 4,
    **round_options: Any,
) -> RoundsResult:
    """Rounds of ``time_steps(step, device, **round_options)`` until the last two agree within
    ``spread_target_pct`` (``repeat_spread_pct``) or ``max_rounds`` have run; at least two."""
    if max_rounds < 2:
        raise ValueError(f"need max_rounds >= 2 to compare two rounds, got {max_rounds}")
    rounds = [time_steps(step, device, **round_options) for _ in range(2)]
    while len(rounds) < max_rounds and repeat_spread_pct(*rounds[-2:]) > spread_target_pct:
        rounds.append(time_steps(step, device, **round_options))
    return RoundsResult(tuple(rounds))


def is_cuda(device: str | torch.device) -> bool:
    return torch.device(device).type == "cuda"


def synchronize(device: str | torch.device) -> None:
    """Wait for the device's queued work (a no-op on the CPU); call before any host clock read."""
    if is_cuda(device):
        torch.cuda.synchronize(device)


def _time_steps_cuda(step: Callable[[], Any], n: int, device: str | torch.device) -> list[float]:
    stream = torch.cuda.current_stream(device)
    events = [
        (torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
        for _ in range(n)
    ]
    for start, end in events:
        start.record(stream)
        step()
        end.record(stream)
    torch.cuda.synchronize(device)
    return [start.elapsed_time(end) for start, end in events]


def _time_steps_host(step: Callable[[], Any], n: int, clock: Callable[[], float]) -> list[float]:
    samples_ms = []
    for _ in range(n):
        start = clock()
        step()
        samples_ms.append(1000.0 * (clock() - start))
    return samples_ms


def time_steps(
    step: Callable[[], Any],
    device: str | torch.device = "cpu",
    warmup_steps: int = 10,
    timed_steps: int = 50,
    min_round_s: float = 0.0,
    max_steps: int = 1000,
    max_warmup_s: float | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> TimingStats:
    """Run ``step`` ``warmup_steps`` times untimed, then time one round of steps.

    With ``max_warmup_s`` the warm-up also ends, after at least one step, once it has taken that
    long (synchronized after each step): a step of seconds is warm after a few. The round has
    ``max(timed_steps, ceil(min_round_s / warm-up step time))`` steps, at most ``max_steps``.
    ``clock`` (seconds) is the host clock used on the CPU and for the warm-up estimate; tests pass a
    fake one. On CUDA the samples come from CUDA events.
    """
    if warmup_steps < 0 or timed_steps < 1:
        raise ValueError(
            f"need warmup_steps >= 0 and timed_steps >= 1, got {warmup_steps}, {timed_steps}"
        )
    synchronize(device)
    start = clock()
    warmed = 0
    for _ in range(warmup_steps):
        step()
        warmed += 1
        if max_warmup_s is not None:
            synchronize(device)
            if clock() - start >= max_warmup_s:
                break
    synchronize(device)
    warmup_s = clock() - start
    n = timed_steps
    if min_round_s > 0 and warmed > 0 and warmup_s > 0:
        n = max(n, math.ceil(min_round_s / (warmup_s / warmed)))
    n = min(n, max(max_steps, timed_steps))
    with _garbage_collector_paused():
        if is_cuda(device):
            samples_ms = _time_steps_cuda(step, n, device)
        else:
            samples_ms = _time_steps_host(step, n, clock)
    return TimingStats.from_samples(samples_ms)


@contextlib.contextmanager
def _garbage_collector_paused() -> Iterator[None]:
    """Collect, then keep Python's garbage collector off while timing, as ``timeit`` does: a
    collection pass inside a launch-bound step would land in that step's sample as host jitter."""
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _interval_union_ns(intervals: list[tuple[int, int]]) -> int:
    total, current_end = 0, None
    current_start = 0
    for start, end in sorted(intervals):
        if current_end is None or start > current_end:
            if current_end is not None:
                total += current_end - current_start
            current_start, current_end = start, end
        else:
            current_end = max(current_end, end)
    if current_end is not None:
        total += current_end - current_start
    return total


# kineto's activity types of device work; its other device-side events, "gpu_user_annotation"
# (a record_function range such as "Optimizer.step#AdamW.step" drawn on the GPU timeline) and
# "cuda_sync", span work and gaps alike and are not work
KERNEL_ACTIVITY = "kernel"
DEVICE_WORK_ACTIVITIES = (KERNEL_ACTIVITY, "gpu_memcpy", "gpu_memset")


def device_work_events(
    events: Iterable[Any], activities: tuple[str, ...] = DEVICE_WORK_ACTIVITIES
) -> list[Any]:
    """The profiler's events (``prof.profiler.kineto_results.events()``) of these activity types."""
    return [event for event in events if _activity_type(event) in activities]


def _activity_type(event: Any) -> str:
    """kineto's activity type of an event; torch builds without ``activity_type`` get it inferred."""
    if hasattr(event, "activity_type"):
        return str(event.activity_type())
    if event.device_type() != torch.autograd.DeviceType.CUDA:
        return "cpu_op"
    if getattr(event, "is_user_annotation", lambda: False)():
        return "gpu_user_annotation"
    name = event.name().lower()
    return (
        "gpu_memcpy" if "memcpy" in name else "gpu_memset" if "memset" in name else KERNEL_ACTIVITY
    )


def busy_ms_per_step(events: Iterable[Any], steps: int) -> float:
    """Device busy time per step in ms from a profiled window of ``steps`` steps: the union of the
    intervals of its device work (``device_work_events``; overlapping streams count once)."""
    intervals = [(event.start_ns(), event.end_ns()) for event in device_work_events(events)]
    return _interval_union_ns(intervals) / 1e6 / steps


def torch_profile(activities):
    """``torch.profiler.profile(activities=...)`` that releases CUPTI when it ends.

    Kineto keeps CUPTI attached after a CUDA profile unless ``TEARDOWN_CUPTI=1``, and every later
    kernel launch in the process pays for it (pytorch/pytorch#144455): in a worker that measures
    several cells, all but the first would be timed slower. Torch sets it to 0 itself where CUDA
    graphs need CUPTI kept; a value the user set wins.
    """
    from torch.profiler import profile

    os.environ.setdefault("TEARDOWN_CUPTI", "1")
    return profile(activities=activities)


def gpu_busy_share(
    step: Callable[[], Any],
    device: str | torch.device,
    steps: int = 5,
    step_ms: float | None = None,
) -> float:
    """Device busy time over wall time per step, through torch.profiler; NaN on the CPU.

    Busy time is ``busy_ms_per_step`` over ``steps`` profiled steps. Wall time is ``step_ms``, the
    caller's median step time from unprofiled timing, or else the median of ``steps`` steps timed
    here without the profiler: the profiler's own host work (it records every operator) can double
    a host-bound step, so wall time taken inside the profiled window would understate the share.
    """
    if not is_cuda(device):
        return float("nan")
    from torch.profiler import ProfilerActivity

    step()  # keep one-time work (lazy init, autotuning) out of the window
    if step_ms is None:
        step_ms = time_steps(step, device, warmup_steps=0, timed_steps=steps).median_ms
    synchronize(device)
    with torch_profile([ProfilerActivity.CUDA]) as prof:  # device work only: no host-op records
        for _ in range(steps):
            step()
        synchronize(device)
    return min(1.0, busy_ms_per_step(prof.profiler.kineto_results.events(), steps) / step_ms)


def host_op_us(device: str | torch.device, ops: int = 200, repeats: int = 3) -> float:
    """Host microseconds to dispatch one tiny op (an in-place add to one element): what each
    kernel of a launch-bound step costs at least. The least of ``repeats`` tries of ``ops`` ops
    (on CUDA the host queues them without waiting for the device). Measured in every cell, it
    shows a host slower for some rows than for others: a profiler's hooks left attached, a busy
    machine."""
    x = torch.zeros(1, device=device)
    best_s = math.inf
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        for _ in range(ops):
            x.add_(1)
        best_s = min(best_s, time.perf_counter() - start)
    synchronize(device)
    return best_s / ops * 1e6


def free_device_memory(device: str | torch.device) -> None:
    """Collect cycles that may pin device tensors, then return cached blocks (CUDA only)."""
    if is_cuda(device):
        gc.collect()
        torch.cuda.empty_cache()


def find_max_batch(
    try_batch: Callable[[int], object],
    start_batch: int,
    device: str | torch.device = "cpu",
    num_intra_steps: int = 2,
    rel_tol: float = 0.0,
) -> tuple[int, int | None]:
    """The largest batch ``b <= start_batch`` for which ``try_batch(b)`` does not run out of memory.

    Backs off from ``start_batch`` along timm's ``decay_batch_step`` ladder until a try fits, then
    bisects between that batch and the smallest failed one, until they are adjacent or, with
    ``rel_tol`` > 0, until the failed one is within ``rel_tol`` of the fitting one (each try near
    the limit costs a full first step, so 1/16 saves most of them). Returns ``(batch,
    smallest_failed)``; ``smallest_failed`` is None when ``start_batch`` fitted.

    Only batch numbers leave a try: whatever ``try_batch`` returns is dropped and, after every
    try, fitting or not, ``free_device_memory`` runs, so each try runs with nothing of the one
    before it alive (a try that fits should free its own step before it returns; the caller
    builds the step to time once, at the batch found). Assumes memory grows
    with batch. An OOM is what ``suites.engine.meters.is_out_of_memory`` says it is. Raises the last OOM
    when even batch 1 does not fit; any other error propagates at once.
    """
    from timm.utils import decay_batch_step

    from suites.engine.meters import is_out_of_memory

    if start_batch < 1:
        raise ValueError(f"start_batch must be >= 1, got {start_batch}")
    if not 0.0 <= rel_tol < 1.0:
        raise ValueError(f"rel_tol must be in [0, 1), got {rel_tol}")

    def fits(batch: int) -> BaseException | None:
        """None when the try fitted, else its OOM (without its traceback)."""
        oom = None
        try:
            try_batch(batch)  # the result is dropped here
        except Exception as error:
            if not is_out_of_memory(error):
                raise
            # drop the traceback: its frames would pin the failed try's tensors
            oom = error.with_traceback(None)
        free_device_memory(device)
        return oom

    batch, failed_batch = start_batch, None
    error = fits(batch)
    while error is not None:
        failed_batch = batch
        batch = decay_batch_step(batch, num_intra_steps=num_intra_steps)
        if batch < 1:
            raise error
        error = fits(batch)
    low, high = batch, failed_batch  # low fits; high failed (None: start_batch fitted)
    while high is not None and high - low > max(1, int(low * rel_tol)):
        mid = (low + high) // 2
        if fits(mid) is None:
            low = mid
        else:
            high = mid
    return low, high


@dataclass(frozen=True)
class DevicePeak:
    """A measured dense matmul rate: ``tflops`` = 2 * size^3 / median time of ``reps`` runs."""

    device_name: str
    dtype: str
    size: int
    reps: int
    tflops: float


def device_name(device: str | torch.device) -> str:
    if is_cuda(device):
        return torch.cuda.get_device_name(torch.device(device))
    import platform

    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def measure_matmul_tflops(
    device: str | torch.device,
    size: int | None = None,
    reps: int = 10,
    dtype: torch.dtype = torch.bfloat16,
) -> DevicePeak:
    """Dense ``size x size @ size x size`` matmul rate on random inputs (8192 on CUDA, 512 on CPU)."""
    size = size or (8192 if is_cuda(device) else 512)
    generator = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(size, size, device=device, dtype=dtype, generator=generator)
    b = torch.randn(size, size, device=device, dtype=dtype, generator=generator)
    stats = time_steps(lambda: torch.mm(a, b), device=device, warmup_steps=3, timed_steps=reps)
    tflops = 2 * size**3 / (stats.median_ms * 1e-3) / 1e12
    return DevicePeak(device_name(device), str(dtype).removeprefix("torch."), size, stats.n, tflops)


def device_peak_tflops(run_dir: Path, device: str | torch.device) -> DevicePeak:
    """The bf16 matmul peak for MFU, measured once per run and device, cached in ``run_dir``.

    The cache ``<run_dir>/device_peak.json`` maps device name -> ``DevicePeak``; workers of one run
    read it instead of re-measuring (written atomically, so parallel workers at worst measure twice).
    """
    path = Path(run_dir) / "device_peak.json"
    name = device_name(device)
    cache: dict[str, dict[str, Any]] = json.loads(path.read_text()) if path.exists() else {}
    if name in cache:
        return DevicePeak(**cache[name])
    peak = measure_matmul_tflops(device)
    cache[name] = asdict(peak)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(cache, indent=2))
    os.replace(tmp, path)
    return peak
