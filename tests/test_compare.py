"""``bench.py compare``: planted regressions fail, unchanged runs pass, noise is inconclusive, bad
input (runs of different suites, no common cell) exits 2, ``--format json`` carries the verdicts."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from suites.analysis.compare import (
    classify_column,
    compare_runs,
    load_run,
    main,
    row_log_spread,
)
from suites.engine.suite import cell_id

CELLS = [
    {"model": "favit_b0", "img_size": 224, "batch_size": 1, "mode": "infer"},
    {"model": "favit_b0", "img_size": 224, "batch_size": 8, "mode": "train"},
    {"model": "favit_b1", "img_size": 224, "batch_size": 1, "mode": "infer"},
]


def make_rows(**changes: dict) -> list[dict]:
    """Three ok cells with every metric class; ``changes[i]`` updates row i."""
    rows = []
    for index, cell in enumerate(CELLS):
        row = {
            "cell_id": cell_id(cell),
            **cell,
            "status": "ok",
            "reason": "",
            "device_name": "NVIDIA H200",
            "wall_s": 3.0 + index,
            "finished_utc": f"2025-01-01T00:00:0{index}Z",
            "gpu_index": 0,
            "param_count": 3.42 + index,
            "fvcore_gmacs": 0.6 + index * 1.8,
            "peak_live_bytes": 1_000_000 * (index + 1),
            "peak_alloc_mib": 500.0 * (index + 1),
            "infer_step_time": 10.0 * (index + 1),
            "infer_samples_per_sec": 100.0 / (index + 1),
            "step_cv": 0.01,
            "step_p10_ms": 9.9 * (index + 1),
            "step_p90_ms": 10.1 * (index + 1),
            "top1": 80.0,
            "notes": "x",
        }
        row.update(changes.get(f"row{index}", {}))
        rows.append(row)
    return rows


def write_run(
    folder: Path,
    rows: list[dict],
    gpu: str = "NVIDIA H200",
    commit: str = "abc123",
    tree: str | None = None,
    suite: str = "latency",
) -> Path:
    folder.mkdir(parents=True)
    pd.DataFrame(rows).to_csv(folder / "rows.csv", index=False)
    env = {
        "machine": {"hostname": "box", "gpu_name": gpu},
        "git": {"commit": commit, **({"tree": tree} if tree else {})},
        "versions": {"torch": "2.11.0"},
        "run": {"suite": suite},
    }
    (folder / "env.json").write_text(json.dumps(env))
    return folder


def run_compare(
    tmp_path: Path, base_rows, new_rows, *extra: str, capsys=None, new_gpu="NVIDIA H200"
):
    base = write_run(tmp_path / "base", base_rows)
    new = write_run(tmp_path / "new", new_rows, gpu=new_gpu, commit="def456")
    out = tmp_path / "report.md"
    code = main([str(base), str(new), "--out", str(out), *extra])
    return code, out.read_text()


def test_unchanged_run_passes(tmp_path):
    code, report = run_compare(tmp_path, make_rows(), make_rows())
    assert code == 0
    assert "## favit-bench compare: OK" in report
    assert "**0 regression(s), 0 improvement(s), 21 unchanged, 0 inconclusive**" in report
    # header carries both runs' env
    assert "abc123" in report and "def456" in report and "NVIDIA H200" in report
    # 3 cells x 7 judged metrics (param_count, gmacs, bytes, mib, step_time, samples/sec, top1)
    assert "Unchanged: 21 metric(s) in 3 cell(s)" in report


def test_timing_30_percent_slower_beyond_noise_fails(tmp_path):
    slower = make_rows(row1={"infer_step_time": 20.0 * 1.3})
    code, report = run_compare(tmp_path, make_rows(), slower)
    assert code == 1
    regressions = report.split("### Regressions (1)")[1].split("### Improvements")[0]
    assert f"`{cell_id(CELLS[1])}`" in regressions and "`infer_step_time`" in regressions
    assert "+30.00 %" in regressions


def test_a_change_inside_a_noise_band_wider_than_the_threshold_is_inconclusive(tmp_path):
    # 12% slower, but both runs measured a 10% CV: band = 3 * sqrt(2) * sqrt(ln 1.01) = x/÷ 1.527,
    # wider than the 5% threshold: the runs cannot tell a 5% change, so neither pass nor fail
    noisy = {"step_cv": 0.10}
    base = make_rows(row0=noisy)
    new = make_rows(row0={**noisy, "infer_step_time": 11.2})
    code, report = run_compare(tmp_path, base, new)
    assert code == 3, report
    assert "## favit-bench compare: INCONCLUSIVE" in report
    noisy_part = report.split("### Inconclusive: too noisy to judge (2)")[1].split("###")[0]
    assert "`infer_step_time`" in noisy_part and "+12.00 %" in noisy_part  # and the throughput
    assert "x/÷ 1.527" in noisy_part
    # the same 12% with a 1% CV exceeds max(5%, band 4.2%) and fails
    code, _ = run_compare(
        tmp_path / "tight", make_rows(), make_rows(row0={"infer_step_time": 11.2})
    )
    assert code == 1
    # 3% slower with a 1% CV: inside both the threshold and a band narrower than it
    code, _ = run_compare(tmp_path / "same", make_rows(), make_rows(row0={"infer_step_time": 10.3}))
    assert code == 0


def test_max_band_passes_inconclusive_figures_inside_it_and_fails_wider_ones(tmp_path):
    # the 12% move inside a x/÷ 1.527 band (as above): a gate accepting bands up to 60% passes it,
    # listed apart; one accepting 50% calls it too noisy to gate and exits 3
    noisy = {"step_cv": 0.10}
    base, new = make_rows(row0=noisy), make_rows(row0={**noisy, "infer_step_time": 11.2})
    code, report = run_compare(tmp_path / "wide", base, new, "--max-band", "60")
    assert code == 0, report
    assert "## favit-bench compare: OK" in report
    assert "2 inconclusive (0 too noisy to gate: band wider than x/÷ 1.600)" in report
    inside = report.split("### Inconclusive inside the gate's band (pass) (2)")[1].split("###")[0]
    assert "`infer_step_time`" in inside and "x/÷ 1.527" in inside
    code, report = run_compare(tmp_path / "narrow", base, new, "--max-band", "50")
    assert code == 3, report
    assert "## favit-bench compare: TOO NOISY TO GATE" in report
    failing = report.split("### Too noisy to gate: band wider than x/÷ 1.500 (2)")[1]
    assert "`infer_step_time`" in failing.split("###")[0]
    # a regression beyond the band still fails as one
    code, _ = run_compare(
        tmp_path / "slow",
        base,
        make_rows(row0={**noisy, "infer_step_time": 20.0}),
        "--max-band",
        "60",
    )
    assert code == 1


@pytest.mark.parametrize("bad", ["-1", "nan", "inf", "x"])
def test_max_band_must_be_a_percent(tmp_path, capsys, bad):
    run = write_run(tmp_path / "run", make_rows())
    assert main([str(run), str(run), "--max-band", bad]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"bench.py compare: error: argument --max-band: bad --max-band {bad!r}; expected a percent "
        ">= 0, e.g. 20"
    ]


SCALING_RUN = Path(__file__).resolve().parent.parent / "results/h200/scaling-20261206T035136Z"
# the GPU CI gate the documentation gives; it passes only on exit code 0
GATE = ("--judge", "timing,throughput,memory", "--max-band", "20")


def slowed(rows: pd.DataFrame, keys: pd.Series, factor: float) -> pd.DataFrame:
    """``rows`` with the rows at ``keys`` ``factor`` x slower: every time up, every rate down."""
    out = rows.copy()
    for column in out.columns:
        kind = classify_column(column)
        if kind in ("timing", "throughput") or column.endswith(("_p10_ms", "_p90_ms")):
            scale = factor if kind != "throughput" else 1.0 / factor
            out.loc[keys, column] = pd.to_numeric(out.loc[keys, column]) * scale
    return out


def test_a_2x_slowdown_of_an_unstable_row_never_passes_the_gate(tmp_path):
    """Every unstable ok row of a committed H200 scaling run, twice as slow: the gate exits 1
    (a regression beyond its band) or 3 (too noisy to gate), never 0; so does the comparison
    without ``--max-band`` (3 is a failure there too)."""
    rows = pd.read_csv(SCALING_RUN / "rows.csv")
    unstable = (rows["status"] == "ok") & rows["unstable"].astype(str).eq("True")
    assert unstable.sum() >= 10
    slow = tmp_path / "slow"
    slow.mkdir()
    (slow / "env.json").write_text((SCALING_RUN / "env.json").read_text())
    for key in rows.index[unstable]:
        slowed(rows, rows.index == key, 2.0).to_csv(slow / "rows.csv", index=False)
        gated = main([str(SCALING_RUN), str(slow), *GATE, "--quiet"])
        plain = main([str(SCALING_RUN), str(slow), *GATE[:2], "--quiet"])
        assert gated in (1, 3) and plain in (1, 3), rows.at[key, "cell_id"]


def test_the_gate_passes_a_run_against_itself_only_when_every_band_fits(tmp_path, capsys):
    """The committed scaling run against itself: nothing moved, but its unstable rows' bands are
    wider than 20%, so the gate cannot vouch for them (3); a gate accepting any band passes (0)."""
    assert main([str(SCALING_RUN), str(SCALING_RUN), *GATE, "--quiet"]) == 3
    assert "too noisy to gate" in capsys.readouterr().out
    assert main([str(SCALING_RUN), str(SCALING_RUN), *GATE[:2], "--max-band", "1e9"]) == 0


def test_a_40x_throughput_drop_fails_however_noisy_the_runs(tmp_path):
    """A drop is never below -100 %, so a relative band of +-430 % let any drop through; on the log
    of the ratio a 40x drop is ln 40 = 3.69 from no change, beyond 3 x the combined spread of two
    runs with a CV of 100 % (band 3.53)."""
    noisy = {"step_cv": 1.0, "step_p10_ms": None, "step_p90_ms": None}
    base = make_rows(row0=noisy)
    new = make_rows(row0={**noisy, "infer_samples_per_sec": 100.0 / 40})
    code, report = run_compare(tmp_path, base, new)
    assert code == 1, report
    regressions = report.split("### Regressions (1)")[1].split("###")[0]
    assert "`infer_samples_per_sec`" in regressions and "-97.50 %" in regressions
    # and a 40x speed-up of the same noisy cell is an improvement, symmetric on the log scale;
    # its unchanged step time, inside a band of x/÷ 34, is too noisy to judge
    code, report = run_compare(
        tmp_path / "up", base, make_rows(row0={**noisy, "infer_samples_per_sec": 100.0 * 40})
    )
    assert code == 3 and "### Improvements (1)" in report
    assert "### Inconclusive: too noisy to judge (1)" in report


def test_faster_timing_and_higher_throughput_are_improvements(tmp_path):
    new = make_rows(row2={"infer_step_time": 15.0, "infer_samples_per_sec": 50.0})
    code, report = run_compare(tmp_path, make_rows(), new)
    assert code == 0
    assert "### Improvements (2)" in report


def test_lower_throughput_is_a_regression(tmp_path):
    code, report = run_compare(
        tmp_path, make_rows(), make_rows(row0={"infer_samples_per_sec": 70.0})
    )
    assert code == 1
    assert "`infer_samples_per_sec`" in report.split("### Improvements")[0]


def test_changed_mac_count_fails_even_when_smaller(tmp_path):
    code, report = run_compare(tmp_path, make_rows(), make_rows(row2={"fvcore_gmacs": 4.2 - 1e-6}))
    assert code == 1
    regressions = report.split("### Improvements")[0]
    assert "`fvcore_gmacs`" in regressions and "changed" in regressions


def test_changed_accounted_bytes_by_one_fails(tmp_path):
    code, _ = run_compare(tmp_path, make_rows(), make_rows(row0={"peak_live_bytes": 1_000_001}))
    assert code == 1


def test_ok_to_oom_is_a_regression(tmp_path):
    oom = {
        "status": "oom",
        "reason": "CUDA out of memory",
        "infer_step_time": None,
        "peak_alloc_mib": None,
    }
    code, report = run_compare(tmp_path, make_rows(), make_rows(row1=oom))
    assert code == 1
    regressions = report.split("### Improvements")[0]
    assert "`status`" in regressions and "| ok " in regressions and "oom" in regressions
    # the oom cell's missing metrics are not judged on top of the status change
    assert "### Regressions (1)" in report


def test_oom_to_ok_is_an_improvement(tmp_path):
    code, report = run_compare(tmp_path, make_rows(row1={"status": "oom"}), make_rows())
    assert code == 0
    assert "### Improvements (1)" in report


def test_allocator_memory_threshold_and_override(tmp_path):
    grown = make_rows(row2={"peak_alloc_mib": 1500.0 * 1.03})  # +3% > default 2%
    code, _ = run_compare(tmp_path / "a", make_rows(), grown)
    assert code == 1
    code, _ = run_compare(tmp_path / "b", make_rows(), grown, "--threshold", "memory=5")
    assert code == 0
    code, _ = run_compare(tmp_path / "c", make_rows(), grown, "--threshold", "peak_alloc_mib=4")
    assert code == 0


@pytest.mark.parametrize(
    ("column", "base", "new", "code"),
    [
        ("peak_alloc_mib", 0.158, 1.15, 1),  # +630% of a tiny peak: above the 64 KiB floor
        ("peak_alloc_mib", 0.158, 0.19, 0),  # +32 KiB: allocator rounding, under the floor
        ("peak_alloc_mib", 40.0, 46.0, 1),  # +15% of 40 MiB
        ("peak_alloc_gib", 2.0, 2.5, 1),  # +0.5 GiB: the floor is 64 KiB in GiB, not 1 GiB
        ("peak_alloc_gib", 0.001, 0.001 + 2**-15, 0),  # +32 KiB in GiB
        ("peak_alloc_kib", 100.0, 150.0, 0),  # +50 KiB
        ("peak_alloc_kib", 100.0, 200.0, 1),  # +100 KiB
    ],
)
def test_memory_floor_is_64_kib_in_the_columns_unit(tmp_path, column, base, new, code):
    base_rows = make_rows(row0={"peak_alloc_mib": None, column: base})
    new_rows = make_rows(row0={"peak_alloc_mib": None, column: new})
    assert run_compare(tmp_path, base_rows, new_rows)[0] == code


def test_acct_over_allocator_is_listed_not_judged(tmp_path):
    # the allocator grows 1% (within 2%); the exact bytes stay, so their ratio to it falls 1%
    base = make_rows(**{f"row{i}": {"acct_over_allocator": 0.9} for i in range(3)})
    new = make_rows(
        **{
            f"row{i}": {"acct_over_allocator": 0.9 / 1.01, "peak_alloc_mib": 500.0 * (i + 1) * 1.01}
            for i in range(3)
        }
    )
    code, report = run_compare(tmp_path, base, new)
    assert code == 0, report
    assert "`acct_over_allocator` (info): differs in 3 common cell(s)" in report


@pytest.mark.parametrize(
    ("column", "base", "new", "verdict"),
    [
        ("top1_ema", 85.0, 70.0, "regression"),
        ("top1_best_optimistic", 85.0, 70.0, "regression"),
        ("top1_ema_best_optimistic", 85.0, 86.0, "improvement"),
        ("device_ms_per_step", 10.0, 13.0, "regression"),
        ("device_ms_per_step", 10.0, 7.0, "improvement"),
        ("achieved_tflops", 100.0, 70.0, "regression"),
        ("mfu", 0.40, 0.50, "improvement"),
    ],
)
def test_accuracy_profile_and_efficiency_columns_are_judged(tmp_path, column, base, new, verdict):
    base_run = write_run(tmp_path / "base", make_rows(row0={column: base}))
    new_run = write_run(tmp_path / "new", make_rows(row0={column: new}))
    result = compare_runs(load_run(base_run), load_run(new_run))
    assert [(c.metric, c.verdict) for c in result.comparisons if c.verdict != "unchanged"] == [
        (column, verdict)
    ]


def test_accuracy_uses_absolute_points(tmp_path):
    code, _ = run_compare(tmp_path / "a", make_rows(), make_rows(row0={"top1": 79.6}))  # -0.4 pt
    assert code == 0
    code, report = run_compare(tmp_path / "b", make_rows(), make_rows(row0={"top1": 79.0}))  # -1 pt
    assert code == 1
    assert "-1.00 pt" in report


def test_cells_in_one_run_only_are_listed(tmp_path):
    extra_cell = {"model": "favit_b2", "img_size": 224, "batch_size": 1, "mode": "infer"}
    extra = make_rows()[2] | {"cell_id": cell_id(extra_cell), "model": "favit_b2"}
    base_rows, new_rows = make_rows()[:2], [*make_rows()[1:], extra]
    code, report = run_compare(tmp_path, base_rows, new_rows)
    assert code == 0
    only_base = report.split("### Only in BASE (1)")[1].split("### Only in NEW")[0]
    only_new = report.split("### Only in NEW (2)")[1]
    assert f"`{cell_id(CELLS[0])}`" in only_base
    assert f"`{cell_id(CELLS[2])}`" in only_new and f"`{cell_id(extra_cell)}`" in only_new
    # CI's mode: a reference cell missing from the new run fails, and so does a cell it lacks
    code, _ = run_compare(tmp_path / "strict", base_rows, new_rows, "--require-same-cells")
    assert code == 1
    code, report = run_compare(tmp_path / "added", base_rows, make_rows(), "--require-same-cells")
    assert code == 1 and "### Only in NEW (1) (fails: --require-same-cells)" in report


def test_cells_that_differ_fail_under_their_own_heading_not_as_a_regression(tmp_path):
    """With --require-same-cells and no regression, the heading names why the run fails."""
    code, report = run_compare(
        tmp_path, make_rows()[:2], make_rows(), "--require-same-cells", "--format", "markdown"
    )
    assert code == 1
    heading, _, summary = report.splitlines()[:3]
    assert heading == "## favit-bench compare: CELLS DIFFER"
    assert summary.startswith("**0 regression(s),")
    assert "0 cell(s) only in BASE, 1 only in NEW (fails: --require-same-cells)" in summary
    assert "REGRESSION" not in report


def test_judge_exact_ignores_timings_but_not_statuses(tmp_path):
    slower = make_rows(row0={"infer_step_time": 100.0})
    code, report = run_compare(tmp_path / "a", make_rows(), slower, "--judge", "exact")
    assert code == 0
    assert "`infer_step_time` (timing): differs in 1 common cell(s)" in report
    errored = make_rows(row0={"status": "error", "reason": "RuntimeError"})
    code, _ = run_compare(tmp_path / "b", make_rows(), errored, "--judge", "exact")
    assert code == 1


def test_changed_skipped_op_list_fails(tmp_path):
    base = make_rows(row0={"fvcore_skipped_ops": "aten::add x2"})
    new = make_rows(row0={"fvcore_skipped_ops": "aten::add x2; aten::topk x1"})
    code, report = run_compare(tmp_path, base, new)
    assert code == 1 and "`fvcore_skipped_ops`" in report.split("### Improvements")[0]


def test_unclassified_column_is_informational(tmp_path):
    code, report = run_compare(tmp_path, make_rows(), make_rows(row0={"notes": "y"}))
    assert code == 0
    assert "`notes` (info): differs in 1 common cell(s)" in report


def test_different_machines_warn(tmp_path, capsys):
    code, report = run_compare(tmp_path, make_rows(), make_rows(), new_gpu="NVIDIA A100")
    assert code == 0
    assert "> **warning:** runs come from different machines" in report
    assert "different machines" in capsys.readouterr().out


def test_rows_csv_path_is_accepted(tmp_path):
    base = write_run(tmp_path / "base", make_rows())
    new = write_run(tmp_path / "new", make_rows(row0={"param_count": 9.0}))
    assert main([str(base / "rows.csv"), str(new / "rows.csv")]) == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such run folder or rows.csv"),
        ("", "empty file"),
        ("model,status\nfavit_b0,ok\n", "no 'cell_id' column"),
        ("cell_id,status\n", "no rows (header only)"),
        ('cell_id,status\n"a,ok\n', "malformed CSV"),
    ],
)
def test_bad_results_file_exits_2_with_one_line(tmp_path, capsys, content, message):
    good = write_run(tmp_path / "good", make_rows())
    bad = tmp_path / "bad"
    if content is not None:
        bad.mkdir()
        (bad / "rows.csv").write_text(content)
    assert main([str(good), str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert message in err and "bad" in err


def test_folder_without_rows_csv_exits_2(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    good = write_run(tmp_path / "good", make_rows())
    assert main([str(tmp_path / "empty"), str(good)]) == 2
    assert "folder has no rows.csv" in capsys.readouterr().err


def test_bad_threshold_exits_2(tmp_path, capsys):
    good = write_run(tmp_path / "good", make_rows())
    assert main([str(good), str(good), "--threshold", "timing"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "METRIC=PCT" in err
    assert main([str(good), str(good), "--judge", "speed"]) == 2
    assert "valid classes: exact, memory, timing, throughput, accuracy" in capsys.readouterr().err


def stage_rows() -> list[dict]:
    """Each cell measured per stage: four rows sharing a cell_id, told apart by ``stage``."""
    return [
        row | {"stage": stage, "attn_analytic_gmacs": 0.1 * stage}
        for row in make_rows()
        for stage in range(1, 5)
    ]


def test_cells_with_several_rows_match_on_their_distinguishing_column(tmp_path):
    code, report = run_compare(tmp_path / "same", stage_rows(), stage_rows())
    assert code == 0
    assert "over 12 common row(s)" in report and "matched on `cell_id`, `stage`" in report
    new = stage_rows()
    new[2]["attn_analytic_gmacs"] = 0.31  # cell 0, stage 3
    code, report = run_compare(tmp_path / "changed", stage_rows(), new)
    assert code == 1
    regressions = report.split("### Improvements")[0]
    assert f"`{cell_id(CELLS[0])}|stage=3`" in regressions and "### Regressions (1)" in report


def test_repeated_rows_keep_the_last_and_warn(tmp_path):
    rows = make_rows()
    rerun = rows[0] | {"param_count": 7.0}
    base = write_run(tmp_path / "base", [*rows, rerun])
    new = write_run(tmp_path / "new", make_rows(row0={"param_count": 7.0}))
    result = compare_runs(load_run(base), load_run(new))
    assert not result.regressions  # the kept BASE row is the re-run one, equal to NEW
    assert any("1 row(s) with a repeated key" in w for w in result.warnings)


@pytest.mark.parametrize(
    ("column", "kind"),
    [
        ("param_count", "exact"),
        ("flop_counter_gflops", "exact"),
        ("attn_analytic_gmacs", "exact"),
        ("score_elements", "exact"),
        ("stage_score_mib", "exact"),
        ("fvcore_skipped_ops", "exact"),
        ("saved_for_backward_bytes", "exact"),
        ("acct_peak_live_mib", "exact"),
        ("global_acct_saved_mib", "exact"),
        ("acct_num_storages", "exact"),
        ("eager_ops_per_step", "exact"),
        ("eager_traffic_gib_per_step", "exact"),
        ("peak_alloc_mib", "memory"),
        ("infer_step_time", "timing"),
        ("step_median_ms", "timing"),
        ("step_p90_ms", "spread"),
        ("step_cv", "spread"),
        ("repeat_spread_pct", "spread"),
        ("train_samples_per_sec", "throughput"),
        ("samples_per_sec", "throughput"),
        ("step_ms", "timing"),
        ("top1", "accuracy"),
        ("top1_ema", "accuracy"),
        ("top1_best_optimistic", "accuracy"),
        ("top1_ema_best_optimistic", "accuracy"),
        ("device_ms_per_step", "timing"),
        ("achieved_tflops", "throughput"),
        ("mfu", "throughput"),
        ("peak_alloc_kib", "memory"),
        ("acct_over_allocator", "info"),
        ("device_peak_bf16_tflops", "info"),  # the device's measured rate, not the model's
        ("gflops_per_step", "info"),  # infer_gmacs x the batch, which batch_size=max finds
        ("reduction_ratio", "info"),
    ],
)
def test_column_classes(column, kind):
    assert classify_column(column) == kind


def test_row_log_spread_is_the_largest_reported():
    row = {"step_cv": 0.01, "step_p10_ms": 9.0, "step_p90_ms": 11.0, "repeat_spread_pct": 4.0}
    # a log-normal's p10 and p90 lie 1.2816 standard deviations either side of its median
    assert row_log_spread(row, row) == pytest.approx(math.log(11 / 9) / (2 * 1.2816))
    # a CV is the log-normal's sqrt(exp(s^2) - 1)
    assert row_log_spread({"step_cv": 0.5}, ["step_cv"]) == pytest.approx(math.sqrt(math.log(1.25)))
    assert row_log_spread({"step_cv": float("nan")}, ["step_cv"]) == 0.0


def _toy_measure(cell: dict, ctx) -> list[dict]:
    """Two rows per cell (per stage) with a deterministic count and a timing."""
    if cell["size"] == 3:
        raise MemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    return [
        {
            "stage": s,
            "analytic_gmacs": cell["size"] * s * 1e-3,
            "step_median_ms": 1.0,
            "step_cv": 0.01,
        }
        for s in (1, 2)
    ]


def test_compare_reads_the_runners_run_folders(tmp_path):
    from suites.engine.runner import run_suite
    from suites.engine.suite import Axis, Suite

    suite = Suite(
        "toy", "toy", [Axis("size", default=[1, 2, 3])], measure=_toy_measure, isolate=False
    )
    base = run_suite(suite, out_dir=tmp_path / "base", device="cpu", progress=False)
    new = run_suite(suite, {"size": [1, 2]}, out_dir=tmp_path / "new", device="cpu", progress=False)
    result = compare_runs(load_run(base), load_run(new))
    assert result.key_columns == ["stage"]
    assert [c.verdict for c in result.comparisons].count("unchanged") == 8  # 4 rows x 2 metrics
    assert (
        not result.regressions and len(result.only_in_base) == 1
    )  # the size=3 cell (its status row)
    assert main([str(base), str(new), "--require-same-cells"]) == 1


def test_a_metric_empty_in_both_runs_is_not_counted(tmp_path):
    empty = {"acct_peak_live_mib": None}  # e.g. an analytic row has no tensor accounting
    rows = make_rows(row0=empty, row1=empty, row2=empty)
    code, report = run_compare(tmp_path, rows, rows)
    assert code == 0 and "Unchanged: 21 metric(s) in 3 cell(s)" in report
    # empty in NEW only: the figure went missing
    code, report = run_compare(
        tmp_path / "lost", make_rows(), make_rows(row1={"fvcore_gmacs": None})
    )
    assert code == 1 and "missing" in report.split("### Improvements")[0]


def test_same_commit_with_different_files_warns(tmp_path):
    rows = make_rows()
    base = write_run(tmp_path / "base", rows, commit="abc123", tree="1" * 40)
    same = write_run(tmp_path / "same", rows, commit="abc123", tree="1" * 40)
    edited = write_run(tmp_path / "edited", rows, commit="abc123", tree="2" * 40)
    out = tmp_path / "report.md"
    assert main([str(base), str(same), "--out", str(out)]) == 0
    report = out.read_text()
    assert "| tree | " + "1" * 40 + " | " + "1" * 40 + " |" in report
    assert "ran different files" not in report
    assert main([str(base), str(edited), "--out", str(out)]) == 0
    assert (
        "> **warning:** both runs name commit abc123 but ran different files (tree 111111111111 "
        "against 222222222222)" in out.read_text()
    )


def _timed(host_op_us: float, busy: float = 0.5, **row1) -> list[dict]:
    """``make_rows`` with every row timed on a host of ``host_op_us``, busy ``busy`` of the step."""
    changes = {f"row{i}": {"host_op_us": host_op_us, "gpu_busy_share": busy} for i in range(3)}
    changes["row1"].update(row1)
    return make_rows(**changes)


def test_launch_bound_rows_on_hosts_of_different_speed_are_warned_about(tmp_path):
    code, report = run_compare(tmp_path, _timed(2.0), _timed(2.6))
    assert code == 0
    assert (
        "> **warning:** 3 launch-bound row(s) ran on hosts of different speed (host_op_us BASE "
        "2.00-2.00 µs, NEW 2.60-2.60 µs; up to 1.30x apart, more than 20%): their NEW/BASE timing "
        "ratios are partly the hosts'" in report
    )
    _, within = run_compare(tmp_path / "within", _timed(2.0), _timed(2.3))
    _, gpu_bound = run_compare(tmp_path / "gpu", _timed(2.0, busy=0.9), _timed(2.6, busy=0.9))
    assert "hosts of different speed" not in within + gpu_bound


def test_unstable_and_host_bound_rows_are_flagged_in_the_tables(tmp_path):
    base = _timed(2.0, busy=0.9, repeat_spread_pct=6.0)  # row 1's rounds never agreed
    new = _timed(2.0, busy=0.9, repeat_spread_pct=1.0, infer_step_time=40.0, gpu_busy_share=0.4)
    code, report = run_compare(tmp_path, base, new)
    assert code == 1
    assert "> **warning:** 1 row(s) are unstable in BASE or NEW" in report
    regressions = report.split("### Regressions")[1].split("### Improvements")[0]
    header = regressions.splitlines()[2]
    assert header.endswith("| verdict | flags |")
    line = next(x for x in regressions.splitlines() if "`infer_step_time`" in x)
    assert line.endswith("| regression | host-bound in NEW, unstable in BASE |")
    _, clean = run_compare(tmp_path / "clean", make_rows(), make_rows(row0={"top1": 70.0}))
    assert "| flags |" not in clean and "> **warning:**" not in clean


def test_runs_of_different_suites_or_without_a_common_cell_exit_2_with_one_line(tmp_path, capsys):
    """A flops run against a memory run printed OK and exited 0: nothing was compared."""
    flops = write_run(tmp_path / "flops", make_rows(), suite="flops")
    memory = write_run(tmp_path / "memory", make_rows(), suite="memory")
    out = tmp_path / "report.md"
    assert main([str(flops), str(memory), "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.err.strip() == (
        "bench.py compare: error: BASE is a flops run and NEW a memory run: only runs of one "
        "suite compare"
    )
    assert captured.out == "" and not out.exists()  # no report for input that is not comparable
    # no env.json to name the suite: no common cell is the error
    other_cells = [row | {"cell_id": row["cell_id"] + ",level=model"} for row in make_rows()]
    base = write_run(tmp_path / "a", make_rows())
    new = write_run(tmp_path / "b", other_cells)
    (base / "env.json").unlink()
    assert main([str(base / "rows.csv"), str(new)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "BASE and NEW share no cell (BASE has 3" in err[0]


def test_json_format_carries_the_verdicts_and_the_exit_code(tmp_path, capsys):
    new = make_rows(row1={"infer_step_time": 20.0 * 1.3}, row2={"top1": 81.0})
    code, text = run_compare(tmp_path, make_rows(), new, "--format", "json")
    assert code == 1
    document = json.loads(text)
    assert json.loads(capsys.readouterr().out) == document  # printed and written alike
    assert (document["verdict"], document["exit_code"]) == ("REGRESSION", 1)
    assert document["counts"] | {"common": 3} == {
        "regressions": 1, "improvements": 1, "unchanged": 19, "inconclusive": 0, "too_noisy": 0,
        "common": 3, "only_in_base": 0, "only_in_new": 0,
    }  # fmt: skip
    [slower] = [c for c in document["comparisons"] if c["verdict"] == "regression"]
    assert slower["metric"] == "infer_step_time" and slower["scale"] == "log"
    assert slower["change"] == pytest.approx(math.log(1.3))
    [better] = [c for c in document["comparisons"] if c["verdict"] == "improvement"]
    assert (better["metric"], better["scale"], better["change"]) == ("top1", "points", 1.0)
    assert document["base"]["commit"] == "abc123" and document["new"]["commit"] == "def456"
    run = tmp_path / "base"
    assert main([str(run), str(run), "--format", "yaml"]) == 2
    assert "invalid choice: 'yaml' (choose from 'markdown', 'json')" in capsys.readouterr().err
