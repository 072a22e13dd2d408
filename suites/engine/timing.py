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
  The warm-up runs before the first round only; later rounds have round 1's length and one warm
  step (none for a step of ``LONG_STEP_S`` or more). A caller may stop after two rounds that
  disagree when the step is host-bound (``host_bound``): more rounds of a step whose time is the
  host's would time the host's jitter, so the spread is reported instead (``unstable``).
- ``gpu_busy_share``: device busy time per step (union of the intervals of every kernel, copy and
  memset the profiler sees) over the step's wall time from unprofiled timing. Below
  ``LAUNCH_BOUND_BUSY_SHARE`` (0.7: the GPU idles more than 30% of each step waiting for the host
  to launch work) a row is called launch-bound. ``profiled_busy_ms`` profiles any window of steps.
- ``host_op_us``: the host's cost of dispatching one tiny op, a per-row check that the host was
  as fast for every cell of a run.
- ``find_max_batch``: timm's ``benchmark.py`` back-off (``timm.utils.decay_batch_step``) from a
  start batch until a try fits, then a bisection between that batch and the last failure, so the
  result is the largest batch that fits (not just the largest on timm's decay ladder), exactly or
  to a stated relative tolerance. With a memory model (``MemoryModel``: peak = fixed + batch x
  per-sample bytes) the search starts at the predicted batch instead of walking the ladder: a try
  one tolerance step above it (expected to run out of memory), then the prediction. Only the
  batch leaves the search: each try runs with nothing of an earlier try alive.
- ``device_peak_tflops``: the measured bf16 dense matmul rate (8192^3 on CUDA) for MFU, measured
  once per run and cached as ``<run_dir>/device_peak.json`` (``run_cache``: the run folder's
  small JSON caches, which every worker of a run shares).
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
    spread_target_pct: float = 3.0
    stopped_host_bound: bool = (
        False  # stopped after two rounds that disagree: the host sets the time
    )

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

    @property
    def unstable(self) -> bool:
        """The compared rounds never agreed within the target (the rounds stop once they do)."""
        return self.spread_pct > self.spread_target_pct


# a step at least this long needs no warm step before a later round: the round's own first step
# starts from a warm model and allocator, and a warm step would cost as much as a timed one
LONG_STEP_S = 0.5


def time_rounds(
    step: Callable[[], Any],
    device: str | torch.device = "cpu",
    spread_target_pct: float = 3.0,
    max_rounds: int = 4,
    host_bound: Callable[[RoundsResult], bool] | None = None,
    **first_round: Any,
) -> RoundsResult:
    """Rounds of ``time_steps`` until the last two agree within ``spread_target_pct``
    (``repeat_spread_pct``) or ``max_rounds`` have run; at least two.

    The first round is ``time_steps(step, device, **first_round)`` (its warm-up and length rule);
    every later round times as many steps as the first after one warm step (none for a step of
    ``LONG_STEP_S`` or more). ``host_bound``, when given, is asked once, after two rounds that
    disagree: True stops there (``stopped_host_bound``; the spread stays in the result).
    """
    if max_rounds < 2:
        raise ValueError(f"need max_rounds >= 2 to compare two rounds, got {max_rounds}")
    first = time_steps(step, device, **first_round)
    later_warmup = (
        0 if first.median_ms >= 1e3 * LONG_STEP_S else min(1, first_round.get("warmup_steps", 10))
    )
    clock = first_round.get("clock", time.perf_counter)

    def later_round() -> TimingStats:
        return time_steps(
            step,
            device,
            warmup_steps=later_warmup,
            timed_steps=first.n,
            max_steps=first.n,
            clock=clock,
        )

    rounds = [first, later_round()]
    stopped = False
    while len(rounds) < max_rounds and repeat_spread_pct(*rounds[-2:]) > spread_target_pct:
        asked = len(rounds) == 2 and host_bound is not None
        if asked and host_bound(RoundsResult(tuple(rounds), spread_target_pct)):
            stopped = True
            break
        rounds.append(later_round())
    return RoundsResult(tuple(rounds), spread_target_pct, stopped)


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
    warmup_spent_s: float = 0.0,
    warm_step_s: float | None = None,
) -> TimingStats:
    """Run ``step`` ``warmup_steps`` times untimed, then time one round of steps.

    With ``max_warmup_s`` the warm-up also ends once it has taken that long (synchronized after
    each step), counting ``warmup_spent_s`` the caller already spent warming the step (its first
    step, say): a step of seconds is warm after a few. It runs at least one step, unless the
    caller ran a warm step already and says how long it took (``warm_step_s``). The round has
    ``max(timed_steps, ceil(min_round_s / warm step time))`` steps, at most ``max_steps``.
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
        spent = warmup_spent_s + clock() - start
        if warm_step_s is not None and max_warmup_s is not None and spent >= max_warmup_s:
            break
        step()
        warmed += 1
        if max_warmup_s is not None:
            synchronize(device)
            if warmup_spent_s + clock() - start >= max_warmup_s:
                break
    synchronize(device)
    warmup_s = clock() - start
    per_step_s = warmup_s / warmed if warmed else warm_step_s
    n = timed_steps
    if min_round_s > 0 and per_step_s:
        n = max(n, math.ceil(min_round_s / per_step_s))
    n = min(n, max(max_steps, timed_steps))
    with garbage_collector_paused():
        if is_cuda(device):
            samples_ms = _time_steps_cuda(step, n, device)
        else:
            samples_ms = _time_steps_host(step, n, clock)
    return TimingStats.from_samples(samples_ms)


@contextlib.contextmanager
def garbage_collector_paused() -> Iterator[None]:
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


def profiled_busy_ms(window: Callable[[], Any], steps: int, device: str | torch.device) -> float:
    """Device busy ms per step of ``window``, a call that runs ``steps`` steps, under the profiler
    (device work only: no host-op records, whose cost would slow a host-bound step)."""
    from torch.profiler import ProfilerActivity

    synchronize(device)
    with torch_profile([ProfilerActivity.CUDA]) as prof:
        window()
        synchronize(device)
    return busy_ms_per_step(prof.profiler.kineto_results.events(), steps)


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
    step()  # keep one-time work (lazy init, autotuning) out of the window
    if step_ms is None:
        step_ms = time_steps(step, device, warmup_steps=0, timed_steps=steps).median_ms

    def window() -> None:
        for _ in range(steps):
            step()

    return min(1.0, profiled_busy_ms(window, steps, device) / step_ms)


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


@dataclass(frozen=True)
class MemoryModel:
    """A step's peak memory as a line in the batch: ``fixed + per_sample * batch`` bytes."""

    fixed: float
    per_sample: float

    @classmethod
    def fit(cls, points: Iterable[tuple[float, float]]) -> MemoryModel | None:
        """The least-squares line through ``(batch, peak bytes)`` points; None without two
        distinct batches or with a slope that is not positive."""
        points = list(points)
        batches = {b for b, _ in points}
        if len(batches) < 2:
            return None
        slope, intercept = np.polyfit([b for b, _ in points], [p for _, p in points], 1)
        return cls(float(intercept), float(slope)) if slope > 0 else None

    def max_batch(self, capacity: float, margin: float = 0.0) -> int:
        """The largest batch whose peak stays within ``capacity * (1 - margin)`` bytes (0 if none)."""
        return max(0, math.floor((capacity * (1 - margin) - self.fixed) / self.per_sample))


def find_max_batch(
    try_batch: Callable[[int], object],
    start_batch: int,
    device: str | torch.device = "cpu",
    num_intra_steps: int = 2,
    rel_tol: float = 0.0,
    predict: Callable[[], int | None] | None = None,
    guess: int | None = None,
) -> tuple[int, int | None]:
    """The largest batch ``b <= start_batch`` for which ``try_batch(b)`` does not run out of memory.

    A memory model's prediction of that batch, ``guess`` (known before any try) or ``predict()``
    (asked once the start ran out of memory; may return None), is bracketed directly: a try one
    tolerance step above it, expected to run out of memory, then the prediction itself, so a right
    prediction costs two tries (a known ``guess`` below the start spares the start's try); a
    wrong one gallops away from it (steps of 2, 4, 8... tolerances, up to the start) until the
    limit is bracketed. Without a prediction the search tries ``start_batch``, then backs off
    along timm's ``decay_batch_step`` ladder until a try fits. Then it bisects between the largest
    fitting and the smallest failed batch until they are adjacent or, with ``rel_tol`` > 0,
    until the failed one is within ``rel_tol`` of the fitting one (each try near the limit costs a
    full first step, so 1/16 saves most of them). Returns ``(batch, smallest_failed)``;
    ``smallest_failed`` is None when ``start_batch`` fitted. A prediction changes how many tries
    the search takes, never its answer: with ``rel_tol`` 0 it is the exact limit either way.

    Only batch numbers leave a try: whatever ``try_batch`` returns is dropped and, after every
    try, fitting or not, ``free_device_memory`` runs, so each try runs with nothing of the one
    before it alive (a try that fits should free its own step before it returns, or before the
    next try starts). Assumes memory grows with batch. An OOM is what
    ``suites.engine.meters.is_out_of_memory`` says it is. Raises the last OOM when even batch 1
    does not fit; any other error propagates at once.
    """
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

    search = _BatchSearch(fits, start_batch, rel_tol, num_intra_steps)
    if guess is None or not 1 <= guess < start_batch:
        if search.fits_or_fails(start_batch):
            return start_batch, None
        guess = predict() if predict is not None else None
    if guess is not None and 1 <= guess < search.ceiling:
        search.bracket(guess)
    search.back_off()
    return search.bisect()


class _BatchSearch:
    """``find_max_batch``'s state: ``low``, the largest batch that fitted (None: none yet), and
    ``high``, the smallest that failed (None: none yet; the start then stands untried above)."""

    def __init__(self, fits, start_batch: int, rel_tol: float, num_intra_steps: int) -> None:
        self.fits, self.start, self.rel_tol = fits, start_batch, rel_tol
        self.num_intra_steps = num_intra_steps
        self.low: int | None = None
        self.high: int | None = None
        self.error: BaseException | None = None

    @property
    def ceiling(self) -> int:
        """The batch above which nothing is left to try: the smallest failure, else above the start."""
        return self.high if self.high is not None else self.start + 1

    def tolerance(self, batch: int) -> int:
        return max(1, int(batch * self.rel_tol))

    def fits_or_fails(self, batch: int) -> bool:
        """Try ``batch``; move ``low`` or ``high`` to it; True when it fitted."""
        error = self.fits(batch)
        if error is None:
            self.low = batch if self.low is None else max(self.low, batch)
            return True
        self.error, self.high = error, batch if self.high is None else min(self.high, batch)
        return False

    def bracket(self, guess: int) -> None:
        """One tolerance above the prediction (must fail), the prediction (must fit); a wrong
        prediction gallops on until the limit lies between a fit and a failure (or the start fit)."""
        step = self.tolerance(guess)
        above = min(guess + step, self.start)
        if above < self.ceiling and self.fits_or_fails(above):
            self._gallop(above, +step)
        elif self.fits_or_fails(guess) is False:
            self._gallop(guess, -step)

    def _gallop(self, batch: int, step: int) -> None:
        """From ``batch``, steps of 2, 4, 8... ``|step|`` up (after a fit) or down (after a
        failure), until a try comes out the other way, the start fits or batch 1 fails."""
        while True:
            step *= 2
            after = min(batch + step, self.start) if step > 0 else batch + step
            if after == batch or after >= self.ceiling or after < 1:
                return
            batch = after
            if self.fits_or_fails(batch) != (step > 0):
                return

    def back_off(self) -> None:
        """Until a try fits: timm's decay ladder down from the smallest failure."""
        from timm.utils import decay_batch_step

        while self.low is None:
            batch = decay_batch_step(self.high, num_intra_steps=self.num_intra_steps)
            if batch < 1:
                raise self.error
            self.fits_or_fails(batch)

    def bisect(self) -> tuple[int, int | None]:
        while self.high is not None and self.high - self.low > self.tolerance(self.low):
            self.fits_or_fails((self.low + self.high) // 2)
        return self.low, self.high


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


def read_run_cache(path: Path) -> dict[str, Any]:
    """A run folder's JSON cache (``device_peak.json``, ``flops.json``); empty when absent."""
    path = Path(path)
    return json.loads(path.read_text()) if path.exists() else {}


def update_run_cache(path: Path, key: str, value: Any) -> None:
    """Set ``key`` in the JSON cache at ``path``, written atomically: the workers of a run share
    it, and two that add at once lose at worst one entry, which is measured again."""
    path = Path(path)
    cache = read_run_cache(path)
    cache[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(cache, indent=2))
    os.replace(tmp, path)


def device_peak_tflops(run_dir: Path, device: str | torch.device) -> DevicePeak:
    """The bf16 matmul peak for MFU, measured once per run and device, cached in ``run_dir``.

    The cache ``<run_dir>/device_peak.json`` maps device name -> ``DevicePeak``; workers of one run
    read it instead of re-measuring.
    """
    path = Path(run_dir) / "device_peak.json"
    name = device_name(device)
    cache = read_run_cache(path)
    if name in cache:
        return DevicePeak(**cache[name])
    peak = measure_matmul_tflops(device)
    update_run_cache(path, name, asdict(peak))
    return peak
