"""The dry run's time estimate (``results_index.estimate_time``) and the wall time a run records."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from suites.analysis import estimate_check, results_index
from suites.analysis.results_index import StepCostModel, estimate_time
from suites.engine.step import TimingOptions
from suites.engine.suite import cell_id


def write_run(root: Path, suite: str, stamp: str, rows: list[dict], machine="h200") -> Path:
    """A committed GPU run: ``rows`` hold axis values and, prefixed ``m_``, measured columns."""
    folder = root / machine / f"{suite}-{stamp}"
    folder.mkdir(parents=True)
    records = []
    for row in rows:
        axes = {k: v for k, v in row.items() if k != "status" and not k.startswith("m_")}
        record = {"cell_id": cell_id(axes), "status": row.get("status", "ok"), "reason": ""}
        record.update({k.removeprefix("m_"): v for k, v in row.items() if k != "status"})
        records.append(record)
    pd.DataFrame.from_records(records).to_csv(folder / "rows.csv", index=False)
    (folder / "env.json").write_text(json.dumps({"run": {"suite": suite, "device": "cuda"}}))
    return folder


def test_other_suites_take_a_cells_own_row_then_alike_cells_then_the_median(tmp_path):
    root = tmp_path / "results"
    row = {"img_size": 224, "batch_size": 8, "mode": "train", "dtype": "fp32"}
    write_run(root, "memory", "20261129T050000Z", [
        {"level": "model", "model": "favit_b1", "variant": "dense", "m_wall_s": 10.0, **row},
        {"level": "model", "model": "favit_b1", "variant": "sdpa", "m_wall_s": 30.0, **row},
        {"level": "global", "model": "favit_b1", "variant": "dense", "m_wall_s": 100.0, **row},
    ])  # fmt: skip
    own = {"level": "model", "model": "favit_b1", "variant": "dense", **row}
    new_variant = {**own, "variant": "dense+gsr1"}  # the model level's other variants: 20 s
    new_level = {**own, "level": "attention", "model": "favit_b0"}  # nothing alike: the median
    estimate = estimate_time(root, "memory", [own, new_variant, new_level], on_gpu=True)
    assert (estimate.measured, estimate.alike, estimate.other) == (1, 1, 1)
    run_s = results_index.RUN_OVERHEAD_S  # no run records its wall time: the stand-in
    assert estimate.seconds == run_s + 10.0 + 20.0 + 30.0 and estimate.machines == ("h200",)
    assert estimate.low_s == run_s + 10.0 + 20.0 + 15.0
    assert estimate.high_s == run_s + 10.0 + 20.0 + 60.0
    assert estimate_time(root, "memory", [own], on_gpu=False) is None  # no CPU run


STEP = {"img_size": 224, "dtype": "bf16", "channels_last": "off", "compile": "eager"}


def _step_row(model, batch_size, mode, step_ms, busy, first_s, gmacs=1.0, **extra) -> dict:
    return {
        "model": model, "batch_size": batch_size, "mode": mode, **STEP,
        f"m_{mode}_step_time": step_ms, "m_gpu_busy_share": busy, "m_first_step_s": first_s,
        "m_infer_gmacs": gmacs, "m_setup_s": 0.5, "m_meters_s": 0.1 + 5 * step_ms / 1e3,
        "m_timing_rounds": 2, "m_wall_s": 99.0, **{f"m_{k}": v for k, v in extra.items()},
    }  # fmt: skip


def test_a_step_cells_seconds_are_its_parts_under_the_timing_rules_in_force(tmp_path):
    root = tmp_path / "results"
    write_run(root, "latency", "20261201T000000Z", [
        _step_row("a", 32, "infer", 100.0, 0.9, 1.1),  # GPU-bound, 0.1 s a step
        _step_row("a", 64, "infer", 50.0, 0.3, 0.2),  # launch-bound
    ])  # fmt: skip
    cell = {"model": "a", "batch_size": 32, "mode": "infer", **STEP}
    rows = results_index._committed_rows(root, ["latency"], on_gpu=True)
    model = StepCostModel(rows, on_gpu=True)
    timing = TimingOptions()  # warm-up: 9 steps within 1 s, the first step's 1.1 s counted
    # round 1: one warm step (the cap is spent) + 3 steps (0.3 s / 0.1 s); round 2: one warm step,
    # 3 steps; a GPU-bound cell: the committed GPU-bound rows' mean rounds (2)
    rounds = (1 + 3) * 0.1 + (1 + 3) * 0.1 + 2 * results_index.ROUND_S
    assert model.rounds_s(0.1, 1.1, 0.9, timing) == pytest.approx(rounds)
    assert model.meters_s(0.1, timing) == pytest.approx(model.profiler_s + 0.1)  # >= 50 ms: one
    assert model.profiler_s == pytest.approx(0.1)  # the rows' meters beyond their 5 steps
    build = model.build_s  # the committed setup_s
    seconds, source = model.cell_seconds(cell, timing, reused=False, count_flops=False)
    assert source == "measured"
    assert seconds == pytest.approx(build + 1.1 + rounds + model.meters_s(0.1, timing))
    # a launch-bound step stops at two rounds; longer rounds in force cost their steps
    longer = TimingOptions(min_round_s=1.0)
    assert model.rounds_s(0.05, 0.2, 0.3, longer) == pytest.approx(
        (min(9, math.ceil(0.8 / 0.05)) + 20) * 0.05 + (1 + 20) * 0.05 + 2 * results_index.ROUND_S
    )


def test_a_run_estimate_counts_fresh_workers_kept_models_and_one_flop_count_per_model(tmp_path):
    root = tmp_path / "results"
    write_run(root, "latency", "20261201T000000Z", [
        _step_row("a", 32, "infer", 100.0, 0.9, 1.1), _step_row("a", 32, "train", 300.0, 0.9, 2.0),
    ])  # fmt: skip
    cells = [{"model": "a", "batch_size": 32, "mode": m, **STEP} for m in ("infer", "train")]
    reused = estimate_time(root, "latency", cells, on_gpu=True, reuse_workers=True)
    fresh = estimate_time(root, "latency", cells, on_gpu=True, reuse_workers=False)
    # a fresh worker per cell; in a reused one the second cell takes the first's model back
    build = StepCostModel(results_index._committed_rows(root, ["latency"], True), True).build_s
    extra = 2 * results_index.FRESH_WORKER_S + build - results_index.RESTORE_S
    assert fresh.seconds - reused.seconds == pytest.approx(extra)
    assert (reused.measured, reused.scaled, reused.method) == (2, 0, "components")
    assert reused.low_s == reused.seconds == reused.high_s  # nothing guessed


def test_a_model_never_measured_is_timed_by_the_nearest_model_in_gmacs_and_flagged(tmp_path):
    root = tmp_path / "results"
    write_run(root, "latency", "20261201T000000Z", [
        _step_row("small", 32, "train", 10.0, 0.9, 1.0, gmacs=1.0),
        _step_row("big", 32, "train", 200.0, 0.9, 1.0, gmacs=8.0),
    ])  # fmt: skip
    write_run(root, "flops", "20261201T000000Z", [
        {"model": "new", "img_size": 224, "m_flop_counter_gmacs": 6.0},
    ])  # fmt: skip
    rows = results_index._committed_rows(root, ["latency"], on_gpu=True)
    model = StepCostModel(rows, True, results_index._committed_gmacs(root))
    cell = {"model": "new", "batch_size": 32, "mode": "train", **STEP}
    step_s, busy, source = model.scaled_step(cell)
    assert source == "scaled" and step_s == pytest.approx(0.2 / 8.0 * 6.0) and busy == 0.9
    estimate = estimate_time(root, "latency", [cell], on_gpu=True, reuse_workers=True)
    assert estimate.scaled == 1 and estimate.low_s < estimate.seconds < estimate.high_s
    unknown = {**cell, "model": "unknown"}
    assert estimate_time(root, "latency", [unknown], on_gpu=True).other == 1


def test_a_run_records_its_wall_seconds_and_a_resume_adds_its_own(tmp_path):
    from suites import memory
    from suites.engine.run_folder import read_env
    from suites.engine.runner import run_suite

    overrides = {"level": ["analytic"], "img_size": [64], "variant": ["dense"]}
    run_dir = run_suite(
        memory.SUITE, overrides, out_dir=tmp_path / "run", device="cpu", quick=True,
        progress=False, stop_after_s=1e-6,
    )  # fmt: skip
    first = read_env(run_dir)["wall_s"]
    assert first > 0
    run_suite(memory.SUITE, resume_dir=run_dir, progress=False)
    env = read_env(run_dir)
    assert env["resumes"][-1]["wall_s"] > 0
    assert env["wall_s"] == pytest.approx(first + env["resumes"][-1]["wall_s"], abs=2e-3)


def _timed_run(root: Path, stamp: str, rows: list[dict], wall_s: float) -> Path:
    folder = write_run(root, "latency", stamp, rows)
    env = json.loads((folder / "env.json").read_text())
    (folder / "env.json").write_text(json.dumps({**env, "wall_s": wall_s}))
    return folder


def test_the_harness_cost_is_calibrated_on_runs_that_record_their_wall_time(tmp_path):
    root = tmp_path / "results"
    old = _step_row("a", 32, "infer", 100.0, 0.9, 1.1, setup_s=30.0, meters_s=9.0)
    write_run(root, "latency", "20261201T000000Z", [old, {**old, "batch_size": 64}])
    counted = _step_row("b", 32, "infer", 10.0, 0.2, 0.1, setup_s=2.0, flops_cached=False)
    kept = _step_row("b", 64, "infer", 10.0, 0.2, 0.1, setup_s=0.02, model_reused=True,
                     flops_cached=True)  # fmt: skip
    built = _step_row("c", 32, "infer", 10.0, 0.2, 0.1, setup_s=0.5, flops_cached=True)
    _timed_run(root, "20261206T000000Z", [counted, kept, built], wall_s=99.0 * 3 + 12.0)
    model = StepCostModel(results_index._committed_rows(root, ["latency"], True), True)
    # the old run gives step times but no harness cost: its setup and meters are not medians here
    assert model.step_of({"model": "a", "batch_size": 32, "mode": "infer", **STEP})[1] == "measured"
    assert (model.restore_s, model.build_s) == (0.02, 0.5)
    assert model.setup_seconds("b", "224", reused=False, count_flops=True) == 2.0
    assert model.setup_seconds("new", "224", reused=False, count_flops=True) == 2.0  # the median
    assert model.setup_seconds("b", "224", reused=False, count_flops=False) == 0.5
    assert model.run_overhead_s == pytest.approx(12.0)  # the run's wall beyond its cells'
    assert model.profiler_s == pytest.approx(0.1)  # not the old run's 9 s meters


def test_without_a_timed_run_the_overhead_is_the_stand_in(tmp_path):
    root = tmp_path / "results"
    write_run(root, "latency", "20261201T000000Z", [_step_row("a", 32, "infer", 100.0, 0.9, 1.1)])
    rows = results_index._committed_rows(root, ["latency"], True)
    assert results_index.run_overhead_s(rows) == results_index.RUN_OVERHEAD_S


COMMITTED = Path(__file__).resolve().parents[1] / "results"


TARGET = estimate_check.TARGET_PCT / 100


@pytest.mark.parametrize("run", estimate_check.timed_runs(COMMITTED), ids=lambda p: p.name)
def test_the_dry_run_estimates_each_committed_gpu_run_within_a_fifth_of_its_wall_time(run):
    """The committed runs the current harness wrote, their cells planned again from env.json."""
    check = estimate_check.check_run(COMMITTED, run)
    assert check.with_own is not None and check.cells == check.planned
    assert check.with_own.seconds == pytest.approx(check.wall_s, rel=TARGET)


@pytest.mark.parametrize("run", estimate_check.check_runs(COMMITTED), ids=lambda p: p.name)
def test_the_dry_run_estimates_each_check_run_held_out_within_a_fifth_of_its_wall_time(run):
    """Runs made to check the estimate, stopped early: the cells they measured, from the others."""
    check = estimate_check.check_run(COMMITTED, run)
    assert check.with_own is None and 0 < check.cells <= check.planned
    assert check.held_out.seconds == pytest.approx(check.wall_s, rel=TARGET)


def test_a_held_out_estimate_leaves_the_run_out(tmp_path):
    root = tmp_path / "results"
    run = _timed_run(root, "20261206T000000Z", [_step_row("a", 32, "infer", 100.0, 0.9, 1.1)], 9.0)
    cell = {"model": "a", "batch_size": 32, "mode": "infer", **STEP}
    assert estimate_time(root, "latency", [cell], on_gpu=True, without=run) is None
    assert estimate_time(root, "latency", [cell], on_gpu=True).measured == 1


def test_the_committed_estimates_page_is_the_one_the_committed_runs_give():
    page = (COMMITTED / "ESTIMATES.md").read_text()
    assert page == estimate_check.report(COMMITTED), (
        "rerun: python -m suites.analysis.estimate_check"
    )


def test_rows_without_the_harness_columns_still_give_a_finite_estimate(tmp_path):
    root = tmp_path / "results"
    row = _step_row("a", 32, "infer", 100.0, 0.9, 1.1)
    for column in ("m_setup_s", "m_meters_s", "m_timing_rounds"):
        row.pop(column)
    write_run(root, "latency", "20261201T000000Z", [row])
    cell = {"model": "a", "batch_size": 32, "mode": "infer", **STEP}
    estimate = estimate_time(root, "latency", [cell], on_gpu=True)
    assert math.isfinite(estimate.seconds) and estimate.seconds > 0


@pytest.mark.parametrize("suite", ["latency", "scaling"])
def test_the_cpu_dry_run_of_a_step_suite_prints_minutes(suite, capsys):
    import bench

    assert bench.main(["--suite", suite, "--device", "cpu", "--dry-run"]) == 0
    line = capsys.readouterr().out.splitlines()[1]
    assert line.strip().startswith("estimated ") and "nan" not in line
