"""The scaling suite: exponent fits on synthetic rows, the report, bad axis values."""

from __future__ import annotations

import math

import pandas as pd
import pytest

import baselines
from suites import scaling


def _synthetic_rows() -> pd.DataFrame:
    rows = []
    for img in (224, 320, 448, 640, 1024):
        tokens = scaling.stage1_tokens(img)
        rows.append(dict(model="quadratic", img_size=img, batch_size=8, dtype="bf16", mode="train", status="ok",
                         tokens=tokens, train_step_time=3e-6 * tokens**2, step_mem_mib=2e-4 * tokens**2,
                         peak_mem_mib=50.0 + 2e-4 * tokens**2))  # fmt: skip
        ok = img <= 640
        rows.append(dict(model="linear", img_size=img, batch_size=8, dtype="bf16", mode="train",
                         status="ok" if ok else "oom", tokens=tokens,
                         train_step_time=0.01 * tokens if ok else float("nan"),
                         step_mem_mib=0.5 * tokens**1.25 if ok else float("nan"),
                         peak_mem_mib=0.5 * tokens**1.25 if ok else float("nan")))  # fmt: skip
    return pd.DataFrame(rows)


def test_stage1_tokens():
    assert scaling.stage1_tokens(224) == 56 * 56 == 3136


def test_fit_recovers_known_exponents_exactly():
    tokens = [3136, 6400, 12544, 25600]
    assert scaling.fit_growth_exponent(tokens, [7 * n**1.5 for n in tokens]) == pytest.approx(
        1.5, abs=1e-12
    )
    assert scaling.fit_growth_exponent(tokens, [n * math.log(n) for n in tokens]) == pytest.approx(
        1 + 1 / math.log(math.sqrt(3136 * 25600)), abs=0.01
    )  # N log N fits an exponent just above 1
    assert math.isnan(scaling.fit_growth_exponent([3136], [1.0]))
    assert math.isnan(scaling.fit_growth_exponent([3136, 3136], [1.0, 2.0]))


def test_fit_gives_the_least_squares_slopes_standard_error():
    """log y = 0, 1, 3 at log x = 0, 1, 2: slope 1.5, residuals 1/6, -1/3, 1/6, so the error is
    sqrt((1/6) / (3 - 2) / 2) = sqrt(1/12); an exact power law has none; two sizes leave none."""
    tokens = [math.exp(k) for k in (0, 1, 2)]
    slope, error = scaling.fit_growth(tokens, [math.exp(v) for v in (0, 1, 3)])
    assert (slope, error) == (pytest.approx(1.5), pytest.approx(math.sqrt(1 / 12)))
    assert scaling.fit_growth(tokens, [n**1.5 for n in tokens])[1] == pytest.approx(0, abs=1e-12)
    slope, error = scaling.fit_growth([3136, 12544], [1.0, 2.0])
    assert slope == pytest.approx(0.5) and math.isnan(error)


def test_fit_exponents_per_model_marks_the_first_oom():
    table = scaling.fit_exponents(_synthetic_rows()).set_index("model")
    assert table.loc["quadratic", "time_exponent"] == pytest.approx(2.0, abs=1e-9)
    assert table.loc["quadratic", "mem_exponent"] == pytest.approx(2.0, abs=1e-9)
    assert table.loc["quadratic", "peak_mem_exponent"] < 2.0  # the constant 50 MiB flattens it
    assert table.loc["linear", "time_exponent"] == pytest.approx(1.0, abs=1e-9)
    assert table.loc["linear", "mem_exponent"] == pytest.approx(1.25, abs=1e-9)
    assert table.loc["linear", "n_sizes"] == 4
    assert table.loc["linear", "max_img_size"] == 640
    assert table.loc["linear", "first_oom_img_size"] == 1024
    assert math.isnan(table.loc["quadratic", "first_oom_img_size"])


def test_time_exponent_skips_launch_bound_sizes():
    """A launch-bound step's time is flat host time: the fit keeps only GPU-bound sizes."""
    rows = []
    for img, busy in ((224, 0.3), (448, 0.5), (672, 0.9), (896, 0.95)):
        tokens = scaling.stage1_tokens(img)
        step_ms = 120.0 if busy < 0.7 else 1e-6 * tokens**2
        rows.append(dict(model="m", img_size=img, batch_size=8, dtype="bf16", mode="train",
                         status="ok", tokens=tokens, train_step_time=step_ms,
                         gpu_busy_share=busy))  # fmt: skip
    table = scaling.fit_exponents(pd.DataFrame(rows)).set_index("model")
    assert table.loc["m", "launch_bound_sizes"] == 2
    assert table.loc["m", "time_exponent"] == pytest.approx(2.0, abs=1e-9)
    assert table.loc["m", "time_exponent_all_sizes"] < 2.0
    one_gpu_bound = pd.DataFrame(rows[:3])
    assert math.isnan(scaling.fit_exponents(one_gpu_bound)["time_exponent"].iloc[0])


def test_report_writes_exponent_table_and_plots(tmp_path):
    scaling.report(_synthetic_rows(), tmp_path)
    assert "time_exponent" in (tmp_path / "scaling_exponents.md").read_text()
    assert (tmp_path / "scaling_exponents.tex").exists()
    written = pd.read_csv(tmp_path / "scaling_exponents.csv")
    assert set(written["model"]) == {"quadratic", "linear"}
    for stem in ("time_vs_tokens", "memory_vs_tokens"):
        assert (tmp_path / f"{stem}.png").stat().st_size > 0


@pytest.mark.parametrize(
    ("axis", "value", "message"),
    [
        ("batch_size", "max", "bad batch_size 'max'; valid: a positive integer"),
        ("batch_size", "-1", "bad batch_size '-1'"),
        ("img_size", "big", "bad img_size 'big'"),
        ("mode", "eval", "bad mode 'eval'; valid: infer, train"),
        ("dtype", "int8", "bad dtype 'int8'; valid: fp32, bf16, fp16"),
        ("model", "favit_b9", "favit_b9"),
    ],
)
def test_bad_axis_values_are_rejected(axis, value, message):
    with pytest.raises(ValueError, match=message):
        scaling.SUITE.axis(axis).kind(value)


def test_default_matrix_covers_every_variant_with_and_without_spatial_reduction():
    models = scaling.SUITE.axis("model").default
    for variant in ("probsparse_seed", "probsparse", "dense", "sdpa"):
        assert f"favit_b1:{variant}" in models and f"favit_b1:{variant}+sr1" in models
    for name in (*models, *scaling.SUITE.axis("model").quick):
        baselines.validate_name(name)  # every default name is one baselines knows


def test_scaling_times_lighter_on_a_gpu_and_options_still_override():
    from suites.engine.step import TimingOptions

    gpu = TimingOptions.for_device("cuda", False, {}, scaling.SCALING_TIMING)
    latency = TimingOptions.for_device("cuda", False)
    assert gpu.warmup_steps == 3 < latency.warmup_steps
    assert (
        TimingOptions.for_device(
            "cuda", False, {"timed_steps": "40"}, scaling.SCALING_TIMING
        ).timed_steps
        == 40
    )
    cpu = TimingOptions.for_device("cpu", True, {}, scaling.SCALING_TIMING)
    assert (cpu.warmup_steps, cpu.timed_steps) == (1, 3)  # the quick profile's rounds
    assert all(size % 224 == 0 for size in scaling.SUITE.axis("img_size").values(quick=False))


def test_launch_bound_rows_are_those_with_the_gpu_busy_under_the_threshold():
    rows = pd.DataFrame({"gpu_busy_share": [0.5, 0.9, float("nan")]}, index=[3, 5, 7])
    assert scaling.launch_bound_rows(rows).tolist() == [True, False, False]  # NaN: the CPU
    assert scaling.launch_bound_rows(pd.DataFrame(index=[1])).tolist() == [False]  # no column


def test_exponents_count_unstable_sizes_and_give_the_host_speed(tmp_path):
    rows = _synthetic_rows()
    rows["host_op_us"] = [2.0, 4.0] * 5  # quadratic on a host at 2 µs/op, linear at 4
    rows["repeat_spread_pct"] = 1.0
    rows.loc[(rows["model"] == "quadratic") & (rows["img_size"] >= 640), "repeat_spread_pct"] = 5.0
    rows["gpu_busy_share"] = 0.9
    rows.loc[(rows["model"] == "linear") & (rows["img_size"] == 224), "gpu_busy_share"] = 0.5
    table = scaling.fit_exponents(rows).set_index("model")
    assert (
        table.loc["quadratic", "unstable_sizes"] == 2 and table.loc["linear", "unstable_sizes"] == 0
    )
    assert table.loc["linear", "launch_bound_sizes"] == 1
    assert (table.loc["quadratic", "host_op_us"], table.loc["linear", "host_op_us"]) == (2.0, 4.0)
    scaling.report(rows, tmp_path)
    text = (tmp_path / "scaling_exponents.md").read_text()
    header = text.splitlines()[2]
    assert "unstable_sizes" in header and "host_op_us" in header
    assert "unstable = its two timing rounds never agreed" in text.splitlines()[0]


def test_plots_mark_the_flagged_points(tmp_path, monkeypatch):
    drawn = []
    monkeypatch.setattr(
        scaling,
        "mark_flagged_points",
        lambda ax, rows, x, y: drawn.append((y, int(rows["launch_bound"].sum()),
                                             int(rows["unstable"].sum()))),
    )  # fmt: skip
    rows = _synthetic_rows().assign(gpu_busy_share=0.5, repeat_spread_pct=4.0)
    scaling.report(rows, tmp_path)
    assert drawn == [("step_ms", 9, 9), ("step_mem_mib", 9, 9)]  # the 9 ok rows, in both plots
