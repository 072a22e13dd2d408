"""suites.engine.timing: statistics, the step timer on a fake clock, OOM back-off, the cached device peak."""

from __future__ import annotations

import json
import math
import os
import weakref

import numpy as np
import pytest
import torch

from suites.engine import timing


class FakeClock:
    """A host clock that advances only when a fake step says how long it took."""

    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


def test_stats_of_known_samples():
    stats = timing.TimingStats.from_samples([float(v) for v in range(1, 11)])  # 1..10 ms
    assert stats.n == 10
    assert stats.median_ms == 5.5
    assert stats.p10_ms == pytest.approx(1.9)  # linear: 1 + 0.1 * 9 * (2 - 1)
    assert stats.p90_ms == pytest.approx(9.1)
    assert stats.mean_ms == 5.5
    assert stats.cv == pytest.approx(np.std(np.arange(1, 11)) / 5.5)
    assert stats.p10_ms <= stats.median_ms <= stats.p90_ms


def test_stats_reject_empty():
    with pytest.raises(ValueError, match="non-empty"):
        timing.TimingStats.from_samples([])


def test_pooled_rounds_and_repeat_spread():
    first = timing.TimingStats.from_samples([10.0, 10.0, 10.0])
    second = timing.TimingStats.from_samples([11.0, 11.0, 11.0])
    assert timing.repeat_spread_pct(first, second) == pytest.approx(100 / 10.5)
    assert timing.repeat_spread_pct(first, first) == 0
    pooled = first.pooled_with(second)
    assert pooled.n == 6 and pooled.median_ms == 10.5


def test_time_steps_on_a_fake_clock_excludes_warmup():
    clock = FakeClock()
    durations_s = iter(
        [5.0, 5.0] + [0.001 * k for k in range(1, 6)]
    )  # 2 warm-up steps, then 1..5 ms
    calls = []

    def step():
        calls.append(1)
        clock.now_s += next(durations_s)

    stats = timing.time_steps(step, "cpu", warmup_steps=2, timed_steps=5, clock=clock)
    assert len(calls) == 7
    assert stats.n == 5
    assert stats.samples_ms == pytest.approx((1.0, 2.0, 3.0, 4.0, 5.0))
    assert stats.median_ms == pytest.approx(3.0)


def test_garbage_collector_is_off_while_timing_only():
    import gc

    collector_on = []
    timing.time_steps(
        lambda: collector_on.append(gc.isenabled()), "cpu", warmup_steps=2, timed_steps=3
    )
    assert collector_on == [True, True, False, False, False]  # warm-up, then the timed round
    assert gc.isenabled()


def test_time_steps_extends_a_round_to_min_round_s():
    clock = FakeClock()

    def step():
        clock.now_s += 0.01  # 10 ms per step

    stats = timing.time_steps(
        step, "cpu", warmup_steps=4, timed_steps=5, min_round_s=1.0, clock=clock
    )
    assert stats.n == 100  # 1 s / 10 ms
    capped = timing.time_steps(
        step, "cpu", warmup_steps=4, timed_steps=5, min_round_s=1.0, max_steps=30, clock=clock
    )
    assert capped.n == 30


def test_warmup_ends_early_once_it_has_taken_max_warmup_s():
    clock = FakeClock()
    calls = []

    def step():
        calls.append(clock.now_s)
        clock.now_s += 2.0  # a long step

    stats = timing.time_steps(
        step, "cpu", warmup_steps=10, timed_steps=3, max_warmup_s=3.0, clock=clock
    )
    assert len(calls) == 2 + 3  # 2 warm-up steps reach 3 s; then the round
    assert stats.n == 3 and stats.median_ms == pytest.approx(2000.0)


def test_rounds_continue_until_the_last_two_agree():
    clock = FakeClock()
    step_s = iter([0.2] * 4 + [0.1] * 1000)  # the first round (2 warm-up + 2 timed) still warming

    def step():
        clock.now_s += next(step_s)

    result = timing.time_rounds(
        step, "cpu", spread_target_pct=3.0, max_rounds=4, warmup_steps=2, timed_steps=2, clock=clock
    )
    assert len(result.rounds) == 3
    assert [r.median_ms for r in result.compared] == pytest.approx([100.0, 100.0])
    assert result.spread_pct == pytest.approx(0.0)
    assert result.stats.n == 4  # the last two rounds, pooled


def test_rounds_stop_at_max_rounds_and_need_two():
    clock = FakeClock()
    step_s = iter([0.1, 0.2] * 1000)  # every round alternates: each round's median differs

    def step():
        clock.now_s += next(step_s)

    def alternating_rounds(max_rounds: int) -> timing.RoundsResult:
        return timing.time_rounds(
            step, "cpu", max_rounds=max_rounds, warmup_steps=0, timed_steps=1, clock=clock
        )

    result = alternating_rounds(3)
    assert len(result.rounds) == 3 and result.spread_pct > 3.0  # reported, not hidden
    with pytest.raises(ValueError, match="max_rounds >= 2"):
        alternating_rounds(1)


def _timed_clock(step_s: float):
    """A fake clock and a step that advances it by ``step_s``, counting its calls."""
    clock, calls = FakeClock(), []

    def step():
        calls.append(clock.now_s)
        clock.now_s += step_s

    return clock, step, calls


def test_the_warm_up_runs_before_round_one_only_and_later_rounds_have_its_length():
    clock, step, calls = _timed_clock(0.01)  # 10 ms per step
    result = timing.time_rounds(
        step, "cpu", warmup_steps=4, timed_steps=3, min_round_s=0.1, clock=clock
    )
    assert [r.n for r in result.rounds] == [10, 10]  # 0.1 s / 10 ms, then as many
    assert len(calls) == (4 + 10) + (1 + 10)  # round 2: one warm step, no warm-up


def test_a_long_step_gets_no_warm_step_before_a_later_round():
    clock, step, calls = _timed_clock(timing.LONG_STEP_S)
    result = timing.time_rounds(step, "cpu", warmup_steps=3, timed_steps=2, clock=clock)
    assert [r.n for r in result.rounds] == [2, 2]
    assert len(calls) == (3 + 2) + 2


def test_the_first_steps_seconds_count_in_the_warm_up_but_one_warm_step_runs():
    clock, step, calls = _timed_clock(0.1)
    timing.time_steps(
        step,
        "cpu",
        warmup_steps=9,
        timed_steps=2,
        max_warmup_s=1.0,
        warmup_spent_s=0.75,
        clock=clock,
    )
    assert len(calls) == 3 + 2  # 0.75 s spent: three more warm steps reach 1 s
    clock, step, calls = _timed_clock(0.1)
    timing.time_steps(
        step,
        "cpu",
        warmup_steps=9,
        timed_steps=2,
        max_warmup_s=1.0,
        warmup_spent_s=5.0,
        clock=clock,
    )
    assert len(calls) == 1 + 2  # a first step longer than the cap: one warm step all the same


def test_a_caller_that_ran_a_warm_step_may_skip_the_warm_up_and_size_the_round_by_it():
    clock, step, calls = _timed_clock(0.1)
    stats = timing.time_steps(
        step, "cpu", warmup_steps=8, timed_steps=2, min_round_s=0.5, max_warmup_s=1.0,
        warmup_spent_s=1.5, warm_step_s=0.1, clock=clock,
    )  # fmt: skip
    assert len(calls) == 5 and stats.n == 5  # no warm step; 0.5 s / 0.1 s
    clock, step, calls = _timed_clock(0.25)
    timing.time_steps(
        step, "cpu", warmup_steps=8, timed_steps=2, max_warmup_s=1.0, warmup_spent_s=0.5,
        warm_step_s=0.25, clock=clock,
    )  # fmt: skip
    assert len(calls) == 2 + 2  # the cap not reached yet: warm steps until it is


def _alternating_rounds(host_bound=None, max_rounds=4) -> timing.RoundsResult:
    clock = FakeClock()
    step_s = iter([0.1, 0.2] * 1000)  # a round of one step alternates: the rounds disagree

    def step():
        clock.now_s += next(step_s)

    return timing.time_rounds(
        step, "cpu", max_rounds=max_rounds, host_bound=host_bound, warmup_steps=0, timed_steps=1,
        clock=clock,
    )  # fmt: skip


def test_a_host_bound_step_stops_after_two_rounds_that_disagree_and_says_it_is_unstable():
    asked = []

    def host_bound(rounds: timing.RoundsResult) -> bool:
        asked.append(len(rounds.rounds))
        return True

    stopped = _alternating_rounds(host_bound)
    assert asked == [2] and len(stopped.rounds) == 2 and stopped.stopped_host_bound
    assert stopped.unstable and stopped.spread_pct > stopped.spread_target_pct == 3.0
    asked.clear()
    not_host_bound = _alternating_rounds(lambda rounds: asked.append(1) or False)
    assert asked == [1] and len(not_host_bound.rounds) == 4  # asked once, then rounds go on
    assert not not_host_bound.stopped_host_bound and not_host_bound.unstable


def test_rounds_that_agree_are_stable_and_never_ask_whether_the_host_bounds_them():
    clock, step, _ = _timed_clock(0.01)
    result = timing.time_rounds(
        step, "cpu", host_bound=lambda rounds: pytest.fail("asked"), warmup_steps=1, clock=clock
    )
    assert len(result.rounds) == 2 and not result.unstable and not result.stopped_host_bound


def test_busy_share_is_nan_on_cpu_and_interval_union_counts_overlap_once():
    assert math.isnan(timing.gpu_busy_share(lambda: None, "cpu"))
    assert timing._interval_union_ns([(0, 10), (5, 15), (20, 30), (21, 22)]) == 25
    assert timing._interval_union_ns([]) == 0


class _FakeKinetoEvent:
    """The parts of torch's ``_KinetoEvent`` the filters read."""

    def __init__(self, name: str, activity: str, start_ns: int, end_ns: int) -> None:
        self._name, self._activity, self._start, self._end = name, activity, start_ns, end_ns

    def name(self) -> str:
        return self._name

    def activity_type(self) -> str:
        return self._activity

    def start_ns(self) -> int:
        return self._start

    def end_ns(self) -> int:
        return self._end


# one profiled step as kineto reports it: the optimizer's record_function range also appears on
# the GPU timeline, spanning its kernels and the gap between them
PROFILED_EVENTS = [
    _FakeKinetoEvent("aten::add", "cpu_op", 0, 5),
    _FakeKinetoEvent("elementwise_kernel", "kernel", 10, 20),
    _FakeKinetoEvent("Memcpy HtoD (Pageable -> Device)", "gpu_memcpy", 20, 25),
    _FakeKinetoEvent("Optimizer.step#AdamW.step", "gpu_user_annotation", 30, 90),
    _FakeKinetoEvent("multi_tensor_apply_kernel", "kernel", 30, 40),
    _FakeKinetoEvent("multi_tensor_apply_kernel", "kernel", 80, 90),
]


def test_device_work_leaves_out_annotations_and_host_events():
    work = timing.device_work_events(PROFILED_EVENTS)
    assert [e.name() for e in work] == [
        "elementwise_kernel",
        "Memcpy HtoD (Pageable -> Device)",
        "multi_tensor_apply_kernel",
        "multi_tensor_apply_kernel",
    ]
    # not 75 ns: the annotation's 60 ns hold a 40 ns gap; per step over 5 steps, in ms
    assert timing.busy_ms_per_step(PROFILED_EVENTS, steps=5) == pytest.approx(35e-6 / 5)


class _OlderKinetoEvent:
    """An event of a torch build whose ``_KinetoEvent`` has no ``activity_type``."""

    def __init__(self, name: str, on_device: bool, annotation: bool = False) -> None:
        self._name, self._on_device, self._annotation = name, on_device, annotation

    def name(self) -> str:
        return self._name

    def device_type(self) -> torch.autograd.DeviceType:
        return torch.autograd.DeviceType.CUDA if self._on_device else torch.autograd.DeviceType.CPU

    def is_user_annotation(self) -> bool:
        return self._annotation


def test_device_work_is_inferred_without_activity_types():
    events = [
        _OlderKinetoEvent("aten::add", on_device=False),
        _OlderKinetoEvent("elementwise_kernel", on_device=True),
        _OlderKinetoEvent("Memset (Device)", on_device=True),
        _OlderKinetoEvent("Optimizer.step#AdamW.step", on_device=True, annotation=True),
    ]
    assert [e.name() for e in timing.device_work_events(events)] == [
        "elementwise_kernel",
        "Memset (Device)",
    ]
    kernels = timing.device_work_events(events, (timing.KERNEL_ACTIVITY,))
    assert [e.name() for e in kernels] == ["elementwise_kernel"]


def test_profile_counts_kernels_only():
    from suites import profile

    class FakeProfile:
        class profiler:
            class kineto_results:
                @staticmethod
                def events():
                    return PROFILED_EVENTS

    kernels = profile._device_kernels(FakeProfile)
    assert kernels == [
        ("elementwise_kernel", 10),
        ("multi_tensor_apply_kernel", 10),
        ("multi_tensor_apply_kernel", 10),
    ]


def _oom_above(limit: int, tried: list[int]):
    def try_batch(batch: int) -> None:
        tried.append(batch)
        if batch > limit:
            raise torch.cuda.OutOfMemoryError(f"CUDA out of memory (batch {batch})")

    return try_batch


@pytest.mark.parametrize("limit", [1, 37, 48, 100, 255])
def test_find_max_batch_finds_the_largest_that_fits(limit):
    tried: list[int] = []
    assert timing.find_max_batch(_oom_above(limit, tried), start_batch=256) == (limit, limit + 1)
    assert tried[0] == 256 and tried[1] == 192  # timm's decay ladder first


@pytest.mark.parametrize("limit", [37, 100, 255, 1000])
def test_find_max_batch_stops_within_its_tolerance_with_fewer_tries(limit):
    exact: list[int] = []
    timing.find_max_batch(_oom_above(limit, exact), start_batch=2048)
    tried: list[int] = []
    batch, failed = timing.find_max_batch(
        _oom_above(limit, tried), start_batch=2048, rel_tol=1 / 16
    )
    assert batch <= limit < failed  # a batch that fits, below one that does not
    assert failed - batch <= max(1, batch // 16)  # ... within the tolerance
    assert batch in tried and len(tried) < len(exact)


def test_find_max_batch_keeps_start_when_it_fits_and_raises_when_nothing_fits():
    tried: list[int] = []
    assert timing.find_max_batch(_oom_above(1000, tried), start_batch=64) == (64, None)
    assert tried == [64]
    with pytest.raises(torch.cuda.OutOfMemoryError):
        timing.find_max_batch(_oom_above(0, []), start_batch=8)


def test_find_max_batch_propagates_other_errors():
    def broken(batch: int) -> None:
        raise ValueError("not an OOM")

    with pytest.raises(ValueError, match="not an OOM"):
        timing.find_max_batch(broken, start_batch=8)


@pytest.mark.parametrize("limit", [1, 37, 100, 190, 1000, 1729])
@pytest.mark.parametrize("error", [-0.2, -0.02, 0.0, 0.01, 0.3])
def test_a_predicted_max_batch_gives_the_bisections_answer(limit, error):
    exact: list[int] = []
    expected = timing.find_max_batch(_oom_above(limit, exact), start_batch=2048)
    tried: list[int] = []
    guess = max(1, int(limit * (1 + error)))
    found = timing.find_max_batch(_oom_above(limit, tried), start_batch=2048, predict=lambda: guess)
    assert found == expected == (limit, limit + 1)
    if error == 0.0:  # a right prediction: the start, one above the prediction, the prediction
        assert tried == [2048, limit + 1, limit]
    for rel_tol in (1 / 16,):
        tried = []
        batch, failed = timing.find_max_batch(
            _oom_above(limit, tried), start_batch=2048, rel_tol=rel_tol, predict=lambda: guess
        )
        assert batch <= limit < failed and failed - batch <= max(1, int(batch * rel_tol))


@pytest.mark.parametrize("limit", [1, 37, 100, 1000, 2047, 2048, 5000])
@pytest.mark.parametrize("error", [-0.5, -0.02, 0.0, 0.02, 0.5])
def test_a_guess_known_before_the_search_spares_the_start_and_gives_the_same_batch(limit, error):
    expected = timing.find_max_batch(_oom_above(limit, []), start_batch=2048)
    guess = max(1, int(limit * (1 + error)))
    tried: list[int] = []
    found = timing.find_max_batch(_oom_above(limit, tried), start_batch=2048, guess=guess)
    assert found == expected
    if error == 0.0 and limit < 2047:  # right: one above the guess, the guess; never the start
        assert tried == [limit + 1, limit]


def test_a_prediction_is_asked_only_once_the_start_ran_out_of_memory():
    asked = []
    assert timing.find_max_batch(
        _oom_above(100, []), start_batch=64, predict=lambda: asked.append(1)
    ) == (64, None)
    assert asked == []
    assert timing.find_max_batch(_oom_above(100, []), 128, predict=lambda: None) == (100, 101)


def test_memory_model_fits_a_line_and_gives_the_largest_batch_under_a_capacity():
    model = timing.MemoryModel.fit([(32, 100.0 + 32 * 5), (128, 100.0 + 128 * 5), (256, 1380.0)])
    assert model.fixed == pytest.approx(100.0) and model.per_sample == pytest.approx(5.0)
    assert model.max_batch(1102.0) == 200 and model.max_batch(1102.0, margin=0.1) == 178
    assert model.max_batch(50.0) == 0
    assert timing.MemoryModel.fit([(32, 260.0)]) is None  # one batch: no line
    assert timing.MemoryModel.fit([(32, 260.0), (64, 200.0)]) is None  # shrinking: no model


class _SimulatedDevice:
    """A device of ``capacity`` units: a step built at batch b holds b units while it lives, and
    running it needs 4 b more. A try returns its step, as a try that keeps it would."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.steps: weakref.WeakSet = weakref.WeakSet()  # the steps alive now
        self.alive_at_build: list[int] = []  # steps alive when each try built its own

    def held(self) -> int:
        return sum(step.batch for step in self.steps)

    def try_batch(self, batch: int) -> _SimulatedStep:
        self.alive_at_build.append(len(self.steps))
        step = _SimulatedStep(batch)
        self.steps.add(step)
        if self.held() + 4 * batch > self.capacity:
            raise torch.cuda.OutOfMemoryError(f"CUDA out of memory (batch {batch})")
        return step


class _SimulatedStep:
    def __init__(self, batch: int) -> None:
        self.batch = batch


@pytest.mark.parametrize("start_batch", [64, 256])
def test_find_max_batch_frees_each_try_before_the_next_so_the_limit_is_exact(start_batch):
    # alone, batch b needs 5 b units: 200 is the largest that fits in 1000; with an earlier try's
    # step still held (the last one that fitted, or a failed one pinned by its traceback), the
    # search would stop short of it
    device = _SimulatedDevice(capacity=1000)
    batch, failed = timing.find_max_batch(device.try_batch, start_batch=start_batch)
    assert (batch, failed) == (min(200, start_batch), 201 if start_batch > 200 else None)
    assert device.alive_at_build == [0] * len(device.alive_at_build)  # no try saw another's step
    assert len(device.steps) == 0  # nor does one outlive the search: only numbers leave it


def test_device_peak_is_measured_once_per_run(tmp_path, monkeypatch):
    calls = []

    def fake_measure(device):
        calls.append(device)
        return timing.DevicePeak(timing.device_name(device), "bfloat16", 8192, 10, 123.0)

    monkeypatch.setattr(timing, "measure_matmul_tflops", fake_measure)
    first = timing.device_peak_tflops(tmp_path, "cpu")
    second = timing.device_peak_tflops(tmp_path, "cpu")
    assert first == second and first.tflops == 123.0 and len(calls) == 1
    cached = json.loads((tmp_path / "device_peak.json").read_text())
    assert cached[timing.device_name("cpu")]["tflops"] == 123.0


def test_matmul_rate_is_positive_on_cpu():
    peak = timing.measure_matmul_tflops("cpu", size=64, reps=3)
    assert peak.tflops > 0 and peak.size == 64 and peak.dtype == "bfloat16" and peak.reps == 3


def test_torch_profile_asks_kineto_to_release_cupti_unless_told_otherwise(monkeypatch):
    from torch.profiler import ProfilerActivity

    monkeypatch.delenv("TEARDOWN_CUPTI", raising=False)
    with timing.torch_profile([ProfilerActivity.CPU]) as prof:
        torch.ones(4).add(1)
    assert os.environ["TEARDOWN_CUPTI"] == "1"
    assert any(event.key == "aten::add" for event in prof.key_averages())
    monkeypatch.setenv("TEARDOWN_CUPTI", "0")  # the user's (or torch's) choice is kept
    with timing.torch_profile([ProfilerActivity.CPU]):
        pass
    assert os.environ["TEARDOWN_CUPTI"] == "0"


def test_host_op_us_is_the_least_time_per_op_over_the_tries_in_microseconds(monkeypatch):
    # two tries of 100 ops: 2 ms, then 1 ms -> the faster one, 1 ms / 100 ops = 10 us per op
    readings = iter([0.0, 0.002, 1.0, 1.001])
    monkeypatch.setattr(timing.time, "perf_counter", lambda: next(readings))
    assert timing.host_op_us("cpu", ops=100, repeats=2) == pytest.approx(10.0)
