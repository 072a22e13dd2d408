"""Claims suite: verdicts from planted committed runs, byte-identical regeneration, untested and bad results."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from suites.analysis import claims
from suites.analysis.results_index import ResultsError, find_runs
from suites.engine.suite import CellContext, cell_id

STAGES = (1, 2, 3, 4)


def write_run(
    root: Path,
    machine: str,
    suite: str,
    stamp: str,
    rows: list[dict],
    device: str = "cuda",
    quick: bool = False,
    env: dict | None = None,
) -> Path:
    """A run folder with ``rows.csv`` (cell_id and status filled in) and a minimal ``env.json``
    (``env`` adds records such as ``git`` and ``resumes``)."""
    folder = root / machine / f"{suite}-{stamp}"
    folder.mkdir(parents=True)
    records = []
    for row in rows:
        axes = {k: v for k, v in row.items() if k not in ("status",) and not k.startswith("m_")}
        record = {"cell_id": cell_id(axes), "status": row.get("status", "ok"), "reason": ""}
        record.update({k.removeprefix("m_"): v for k, v in row.items() if k != "status"})
        records.append(record)
    pd.DataFrame.from_records(records).to_csv(folder / "rows.csv", index=False)
    record = {"run": {"suite": suite, "device": device, "quick": quick}, **(env or {})}
    (folder / "env.json").write_text(json.dumps(record))
    return folder


def memory_rows(seed_peak_mib: float, dense_peak_mib: float = 100.0) -> list[dict]:
    """Model-level rows: probsparse_seed at ``seed_peak_mib`` against dense / dense+sr1 / sdpa."""
    rows = []
    for variant, peak in (
        ("probsparse_seed", seed_peak_mib),
        ("dense", dense_peak_mib),
        ("dense+sr1", dense_peak_mib * 2),
        ("sdpa", dense_peak_mib),
    ):
        for img_size in (224, 384):
            rows.append(
                {
                    "level": "model",
                    "model": "favit_b1",
                    "variant": variant,
                    "img_size": img_size,
                    "batch_size": 32,
                    "mode": "train",
                    "dtype": "fp32",
                    "m_stage": "all",
                    "m_peak_mib": peak * img_size / 224,
                }
            )
    return rows


def accuracy_row(model: str, top1: float, recipe: str = "seed", epochs: str = "-", **extra) -> dict:
    return {
        "model": model,
        "recipe": recipe,
        "data": "data/cifar10-jpeg.npz",
        "epochs": epochs,
        "m_top1": top1,
        "m_top1_ema": top1 - 0.5,
        "m_top1_best_optimistic": extra.pop("best", top1 + 0.3),
        "m_top1_ema_best_optimistic": top1,
        "m_infer_gmacs": extra.pop("gmacs", 2.0),
        "m_train_wall_s": extra.pop("wall_s", 3600.0),
        "m_dataset": "CIFAR-10 (JPEG q75 copy)",
        "m_smoke_run": False,
        **extra,
    }


def flops_rows() -> list[dict]:
    return [
        {"model": m, "img_size": 224, "m_param_count": p, "m_fvcore_gmacs": g}
        for m, p, g in (
            ("favit_b1:probsparse", 13.1, 2.41),
            ("favit_b1:probsparse_seed", 13.1, 2.40),
            ("deit_tiny", 5.7, 1.26),
        )
    ]


def latency_rows() -> list[dict]:
    rows = []
    for model, speed in (("favit_b1", 1000.0), ("deit_tiny", 3000.0)):
        for mode in ("train", "infer"):
            for batch in (32, 128):
                rows.append(
                    {
                        "model": model,
                        "img_size": 224,
                        "batch_size": batch,
                        "dtype": "bf16",
                        "mode": mode,
                        "channels_last": "off",
                        "compile": "eager",
                        f"m_{mode}_samples_per_sec": speed * (3 if mode == "infer" else 1) + batch,
                        f"m_{mode}_step_time": 1000 * batch / speed,
                        "m_peak_mem_mib": 10.0 * batch,
                    }
                )
    return rows


def scaling_rows(
    model: str,
    mem_power: float,
    time_power: float = 1.0,
    sizes: tuple[int, ...] = (224, 448, 896),
    oom_from: int | None = None,
) -> list[dict]:
    """``model`` trained at ``sizes`` (bf16, batch 8), GPU-bound: step memory ~ tokens^mem_power
    and step time ~ tokens^time_power; ``oom`` rows from ``oom_from`` px on."""
    rows = []
    for img_size in sizes:
        tokens = (img_size // 4) ** 2
        row = {
            "model": model,
            "img_size": img_size,
            "batch_size": 8,
            "mode": "train",
            "dtype": "bf16",
        }
        if oom_from is not None and img_size >= oom_from:
            rows.append({**row, "status": "oom"})
            continue
        rows.append(
            {
                **row,
                "m_train_step_time": tokens**time_power / 1e3,
                "m_step_mem_mib": tokens**mem_power / 1e3,
                "m_peak_mem_mib": 100 + tokens**mem_power / 1e3,
                "m_gpu_busy_share": 0.95,
            }
        )
    return rows


def full_results(root: Path, seed_peak_mib: float = 1.0) -> Path:
    """A results root with one run of every suite the claims and paper read."""
    write_run(root, "h200", "memory", "20261129T040000Z", memory_rows(seed_peak_mib))
    write_run(
        root,
        "h200",
        "accuracy",
        "20261129T050000Z",
        [
            accuracy_row("favit_b1:probsparse_seed+seed_compat", 84.0, best=86.5),
            accuracy_row("favit_b1:sdpa", 84.5),
            accuracy_row("favit_b1", 88.0, recipe="native32"),
            accuracy_row("deit_tiny", 75.0, recipe="native32", gmacs=1.26),
        ],
    )
    write_run(root, "cpu", "flops", "20261129T030000Z", flops_rows(), device="cpu")
    write_run(root, "h200", "latency", "20261129T060000Z", latency_rows())
    write_run(
        root,
        "h200",
        "scaling",
        "20261129T070000Z",
        scaling_rows("favit_b1:sdpa", 1.0, sizes=(224, 448))
        + scaling_rows("favit_b1:sdpa+sr1", 2.0, time_power=2.0, sizes=(224, 448)),
    )
    return root


# --- tests ----------------------------------------------------------------------------------------


def verdicts(root: Path) -> dict[int, str]:
    return {r.claim.number: r.verdict for r in claims.judge_claims(root)}


def test_claims_file_regenerates_byte_identical(tmp_path: Path) -> None:
    root = full_results(tmp_path / "results")
    _, (first,) = claims.write_claims(root)
    text = first.read_bytes()
    first.unlink()
    _, (second,) = claims.write_claims(root)
    assert second == root / "CLAIMS.md"
    assert second.read_bytes() == text
    # links are relative to the file and point at the rows behind each claim
    assert "(h200/memory-20261129T040000Z/rows.csv)" in text.decode()
    assert "(h200/accuracy-20261129T050000Z/rows.csv)" in text.decode()


def test_no_results_makes_every_measured_claim_untested(tmp_path: Path) -> None:
    root = tmp_path / "results"
    root.mkdir()
    results = claims.judge_claims(root)
    assert [r.verdict for r in results[:4]] == [claims.UNTESTED] * 4
    assert all("bench.py --suite" in r.to_test for r in results[:4])
    # claim 5 is arithmetic: 3136^2 and int(5 ln 3136) are computed, not read
    five = results[4]
    assert five.verdict == claims.CONDITIONAL
    assert any("9,834,496" in f for f in five.figures)
    assert any("int(5 ln N) = 40" in f for f in five.figures)


def test_claim_5_reports_the_measured_growth_beside_its_arithmetic(tmp_path: Path) -> None:
    root = tmp_path / "results"
    root.mkdir()
    five = claims.judge_claims(root)[4]
    assert any("Measured growth: not measured" in f for f in five.figures)
    rows = scaling_rows("favit_b1:probsparse_seed+sr1", 1.0) + scaling_rows(
        "favit_b1:dense+sr1", 2.0, oom_from=896
    )
    write_run(root, "h200", "scaling", "20261201T000000Z", rows)
    write_run(
        root,
        "cpu",
        "scaling",
        "20261202T000000Z",
        scaling_rows("favit_b1:sdpa+sr1", 1.0),
        device="cpu",
    )
    five = claims.judge_claims(root)[4]
    assert five.verdict == claims.CONDITIONAL  # the arithmetic's verdict: growth is not judged
    assert five.runs == ["h200/scaling-20261201T000000Z"]  # a CPU run never measures growth
    lines = [f for f in five.figures if f.lstrip().startswith("- `favit_b1:")]
    assert len(lines) == 2
    seed_line, dense_line = lines  # in GROWTH_VARIANTS order
    assert (
        "probsparse_seed+sr1" in seed_line and "tokens^1.00, step time as tokens^1.00" in seed_line
    )
    assert "dense+sr1" in dense_line and "step memory grows as tokens^2.00" in dense_line
    assert "out of memory from 896 px" in dense_line


def test_memory_verdict_flips_with_the_planted_rows(tmp_path: Path) -> None:
    holds = full_results(tmp_path / "a", seed_peak_mib=1.0)  # 99% below dense
    assert verdicts(holds)[1] == claims.HOLDS
    fails = full_results(tmp_path / "b", seed_peak_mib=50.0)  # 50% below dense: < 98% everywhere
    assert verdicts(fails)[1] == claims.FAILS


def test_memory_and_accuracy_are_judged_against_the_same_baseline(tmp_path: Path) -> None:
    # 98.5% against dense+sr1 (200 MiB), 97% against dense and sdpa (100 MiB); the only accuracy
    # pair is against sdpa: the baseline that meets 98% has no accuracy, so the claim is untested
    root = full_results(tmp_path / "results", seed_peak_mib=3.0)
    result = claims.judge_claims(root)[0]
    assert result.verdict == claims.UNTESTED
    assert "--models favit_b1:sdpa+sr1" in result.to_test
    with_reduction, without = result.conditions
    assert with_reduction.startswith("against full attention with the published spatial reduction")
    assert claims.FAILS in with_reduction
    assert "accuracy loss not measured" in without
    assert any("one seed per model" in caveat for caveat in result.caveats)  # the sdpa pair
    assert any("differs in `+seed_compat`" in f for f in result.figures)

    # B1 trained with full attention over every patch: its pair decides the claim
    for top1, expected in ((84.3, claims.HOLDS), (86.0, claims.FAILS)):
        run = write_run(
            root,
            "h200",
            "accuracy",
            f"20261130T0{int(top1)}000Z",
            [accuracy_row("favit_b1:sdpa+sr1", top1)],
        )
        assert verdicts(root)[1] == expected
        shutil.rmtree(run)


def test_measured_peaks_meeting_in_part_make_the_claim_conditional(tmp_path: Path) -> None:
    root = tmp_path / "results"
    rows = memory_rows(1.0)  # 99% below every comparison in both settings...
    for row in rows:  # ...but only 50% below dense+sr1 and sdpa+sr1 at 384 px
        if row["variant"] == "dense+sr1" and row["img_size"] == 384:
            row["m_peak_mib"] = 2.0 * 384 / 224
    rows += [
        {**row, "variant": "sdpa+sr1", "status": "oom", "m_peak_mib": ""}
        for row in rows
        if row["variant"] == "dense+sr1" and row["img_size"] == 384
    ]
    write_run(root, "h200", "memory", "20261129T040000Z", rows)
    write_run(
        root,
        "h200",
        "accuracy",
        "20261129T050000Z",
        [accuracy_row("favit_b1:probsparse_seed", 84.0), accuracy_row("favit_b1:dense+sr1", 84.2)],
    )
    result = claims.judge_claims(root)[0]
    assert result.verdict == claims.CONDITIONAL
    line = next(f for f in result.figures if f.startswith("Against full attention over every"))
    assert "reach 98.0% in 1 of 2" in line and "1 without a finished comparison: 1 oom" in line
    assert any("memory >= 98.0% in 1 of 2" in c for c in result.conditions)


def test_newest_gpu_run_is_used_and_cpu_memory_runs_are_not(tmp_path: Path) -> None:
    root = full_results(tmp_path / "results", seed_peak_mib=1.0)
    write_run(root, "h200", "memory", "20261130T000000Z", memory_rows(50.0))  # newer: fails
    write_run(root, "cpu", "memory", "20261201T000000Z", memory_rows(1.0), device="cpu")
    result = claims.judge_claims(root)[0]
    assert result.verdict == claims.FAILS
    assert result.runs == ["h200/memory-20261130T000000Z"]
    # scratch runs under runs/ are never read
    write_run(root, "runs", "memory", "20261202T000000Z", memory_rows(1.0))
    assert claims.judge_claims(root)[0].runs == ["h200/memory-20261130T000000Z"]


def test_accuracy_claims_flip_with_the_planted_rows(tmp_path: Path) -> None:
    root = tmp_path / "results"
    write_run(
        root,
        "h200",
        "accuracy",
        "20261129T050000Z",
        [
            accuracy_row("favit_b1:probsparse_seed+seed_compat", 86.2),
            accuracy_row("favit_b3", 95.0, epochs="50"),
            accuracy_row("favit_b1", 70.0, recipe="native32"),
            accuracy_row("deit_tiny", 75.0, recipe="native32"),
        ],
    )
    found = verdicts(root)
    assert found[2] == claims.HOLDS  # 86.2 >= 86.16 at the final epoch
    assert found[3] == claims.FAILS  # 95.0 < 96 at 50 epochs (best epoch 95.3 too)
    assert found[4] == claims.FAILS  # 70 < 75
    below = tmp_path / "below"
    write_run(
        below,
        "h200",
        "accuracy",
        "20261129T050000Z",
        [accuracy_row("favit_b1:probsparse_seed", 80.0, best=81.0)],
    )
    assert verdicts(below)[2] == claims.FAILS


@pytest.mark.parametrize(("vit_size", "expected"), [(224, claims.HOLDS), (32, claims.CONDITIONAL)])
def test_a_vit_starved_of_tokens_makes_the_win_conditional(tmp_path, vit_size, expected) -> None:
    """DeiT-Tiny at 32 px sees 2x2 patches of 16 px: beating it is not beating a ViT as designed."""
    root = tmp_path / "results"
    rows = [
        accuracy_row("favit_b1", 80.0, recipe="native32", m_train_img_size=vit_size),
        accuracy_row("deit_tiny", 40.0, recipe="native32", m_train_img_size=vit_size),
    ]
    write_run(root, "h200", "accuracy", "20261129T050000Z", rows)
    [result] = [r for r in claims.judge_claims(root) if r.claim.number == 4]
    assert result.verdict == expected
    grid_notes = [c for c in result.conditions if "2x2 token grid" in c]
    assert len(grid_notes) == (vit_size == 32)
    assert any("one seed" in c for c in result.caveats)


def test_smoke_runs_and_wrong_budgets_do_not_count(tmp_path: Path) -> None:
    root = tmp_path / "results"
    write_run(
        root,
        "h200",
        "accuracy",
        "20261129T050000Z",
        [
            accuracy_row("favit_b1:probsparse_seed", 90.0, m_smoke_run=True),
            accuracy_row("favit_b1:probsparse_seed", 90.0, epochs="10"),
        ],
    )
    assert verdicts(root)[2] == claims.UNTESTED


def test_malformed_rows_csv_is_a_one_line_error(tmp_path: Path) -> None:
    root = tmp_path / "results"
    folder = write_run(root, "h200", "memory", "20261129T040000Z", memory_rows(1.0))
    (folder / "rows.csv").write_text("level,model\nmodel,favit_b1\n")  # no cell_id/status
    with pytest.raises(ResultsError, match=r"rows.csv: no 'cell_id' column") as info:
        claims.judge_claims(root)
    assert "\n" not in str(info.value)
    (folder / "rows.csv").write_text("cell_id,status\na,ok\n")  # no memory columns
    with pytest.raises(ResultsError, match=r"malformed: no column 'level', 'variant', 'model'"):
        claims.judge_claims(root)
    (folder / "env.json").unlink()
    with pytest.raises(ResultsError, match=r"env.json: missing"):
        find_runs(root, "memory")
    with pytest.raises(ResultsError, match=r"no such results folder"):
        claims.judge_claims(tmp_path / "nowhere")


def test_suite_cell_writes_both_files_and_reports_errors(tmp_path: Path, capsys) -> None:
    root = full_results(tmp_path / "results")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    ctx = CellContext(device="cpu", run_dir=run_dir, cell_id="results=x")
    rows = claims.SUITE.measure({"results": str(root)}, ctx)
    assert [r["claim"] for r in rows] == [1, 2, 3, 4, 5]
    assert {r["verdict"] for r in rows} <= set(claims.VERDICTS)
    copy = (run_dir / "CLAIMS.md").read_text()
    assert "../results/h200/memory-20261129T040000Z/rows.csv" in copy
    assert (root / "CLAIMS.md").read_text() != copy  # same claims, links relative to each file
    (root / "h200" / "memory-20261129T040000Z" / "rows.csv").write_text("")
    with pytest.raises(ResultsError, match="empty file"):
        claims.SUITE.measure({"results": str(root)}, ctx)
    assert capsys.readouterr().err.startswith("claims: error: ")


def test_withdrawn_runs_are_never_read(tmp_path: Path) -> None:
    """results/README.md: a run moved under ``<machine>/withdrawn/`` is kept as evidence, not used."""
    root = tmp_path / "results"
    kept = write_run(root, "h200", "memory", "20261129T040000Z", memory_rows(1.0))
    write_run(root / "h200", "withdrawn", "memory", "20261129T050000Z", memory_rows(1.0))
    assert [run.path for run in find_runs(root, "memory")] == [kept]
