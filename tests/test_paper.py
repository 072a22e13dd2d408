"""Paper suite: the expected tables and figures from tiny committed runs, deterministic, blanks."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from test_claims import (
    accuracy_row,
    flops_rows,
    full_results,
    latency_rows,
    scaling_rows,
    write_run,
)

from suites.analysis import claims, paper
from suites.analysis.results_index import ResultsError
from suites.engine.suite import CellContext

EXPECTED = [
    "README.md",
    "accuracy_vs_cost.pdf",
    "accuracy_vs_cost.png",
    "main_table.md",
    "main_table.tex",
    "main_table_sources.csv",
    "memory_reduction.md",
    "memory_reduction.tex",
    "scaling.pdf",
    "scaling.png",
    "scaling_exponents.md",
    "scaling_exponents.tex",
]


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> tuple[Path, list[Path], dict[str, bytes]]:
    root = full_results(tmp_path_factory.mktemp("paper") / "results")
    run_dir = root.parent / "run"
    files = paper.write_paper(root, [run_dir])
    return root, files, {p.name: p.read_bytes() for p in files}


def test_paper_writes_every_table_and_figure(written) -> None:
    root, files, _ = written
    assert [p.name for p in files] == EXPECTED
    assert all(p.parent == root / "paper" for p in files)
    copies = sorted(p.name for p in (root.parent / "run" / "paper").iterdir())
    assert copies == EXPECTED
    # each README links the rows relative to itself
    assert (
        "(../h200/scaling-20261129T070000Z/rows.csv)" in (root / "paper" / "README.md").read_text()
    )
    copied = (root.parent / "run" / "paper" / "README.md").read_text()
    assert "(../../results/h200/scaling-20261129T070000Z/rows.csv)" in copied
    tex = (root / "paper" / "main_table.tex").read_text()
    assert r"\toprule" in tex and r"\bottomrule" in tex
    assert (root / "paper" / "scaling.pdf").read_bytes().startswith(b"%PDF")


def test_main_table_sources_name_the_run_of_every_figure(written) -> None:
    root, _, _ = written
    sources = pd.read_csv(root / "paper" / "main_table_sources.csv")
    assert list(sources.columns)[:6] == ["model", "column", "run", "commit", "device", "seeds"]
    lines = (root / "paper" / "main_table.md").read_text().splitlines()
    rows = [line for line in lines if line.startswith("| ") and not line.startswith("| ---")]
    body = [line.strip("|").split(" | ")[1:] for line in rows[1:]]  # cells right of the model
    filled = sum(cell.strip() != "-" for row in body for cell in row)
    assert len(sources) == filled  # one source per figure, none for a blank
    runs = sources.set_index(["model", "column"])["run"]
    assert runs["favit_b1:probsparse", "params (M)"] == "cpu/flops-20261129T030000Z"
    assert runs["favit_b1:probsparse", "CIFAR-10 top-1 (native32, 30 ep)"] == (
        "h200/accuracy-20261129T050000Z"
    )


def test_main_table_joins_suites_with_blanks_and_one_format(written) -> None:
    root, _, _ = written
    text = (root / "paper" / "main_table.md").read_text()
    header = next(line for line in text.splitlines() if line.startswith("| model"))
    assert "train img/s (bf16, batch 128)" in header
    assert "CIFAR-10 top-1 (native32, 30 ep)" in header and "(seed, 30 ep)" in header
    rows = {line.split(" | ")[0][2:]: line.split(" | ")[1:] for line in text.splitlines()[4:]}
    # favit_b1 (the default variant, probsparse) from flops, latency (batch 128, each img/s with
    # its step time's CV) and accuracy
    assert rows["favit_b1:probsparse"][:8] == [
        "13.10", "2.41", "1,128", "2.0", "3,128", "3.5", "1,280", "88.00"
    ]  # fmt: skip
    # +seed_compat counts like its variant; it has no speed row: blank
    assert rows["favit_b1:probsparse_seed+seed_compat"][:3] == ["13.10", "2.40", "-"]
    assert rows["deit_tiny"][2] == "3,128"


def test_captions_name_the_device_and_the_seeds(written) -> None:
    root, _, _ = written
    main = (root / "paper" / "main_table.md").read_text()
    assert "img/s and training peak memory on the NVIDIA H200 at the stated setting" in main
    assert "each img/s beside the CV (%) of its step time" in main
    assert "train step CV (%)" in main.splitlines()[2]
    # one seed per top-1: the test set's sampling error at 75% to 88%
    assert "one seed per figure: the test set's sampling error alone is 0.32 to 0.43 points" in main
    memory = (root / "paper" / "memory_reduction.md").read_text()
    assert "on the NVIDIA H200, reference implementation, fp32; the claim is 98%" in memory
    scaling = (root / "paper" / "scaling_exponents.md").read_text()
    assert "Measured on the NVIDIA H200 (h200/scaling-20261129T070000Z), batch 8." in scaling


def test_a_top1_that_claim_4_does_not_count_as_a_vit_baseline_is_marked(written) -> None:
    """DeiT-Tiny trained at 32 px sees a 2x2 token grid: the table marks its top-1 and the caption
    gives the reason claim 4 gives for leaving it out."""
    root, _, _ = written
    text = (root / "paper" / "main_table.md").read_text()
    rows = {line.split(" | ")[0][2:]: line.split(" | ")[1:] for line in text.splitlines()[4:]}
    assert "75.00 ¶" in rows["deit_tiny"] and "88.00" in rows["favit_b1:probsparse"]
    assert "¶" not in "".join(rows["favit_b1:probsparse"])
    reason = claims.vit_not_counted("deit_tiny", 32)
    assert reason == "a 2x2 token grid starves the ViT"
    assert f"deit_tiny, top-1 (native32, 30 ep): {reason}" in text.splitlines()[0]
    assert claims.vit_not_counted("deit_tiny", 224) == claims.vit_not_counted("favit_b1", 32) == ""
    assert r"75.00 \P{}" in (root / "paper" / "main_table.tex").read_text()


def test_a_top1_figure_is_the_mean_over_its_seeds(tmp_path: Path) -> None:
    root = tmp_path / "results"
    write_run(root, "h200", "accuracy", "20261129T050000Z", [
        accuracy_row("favit_b1", top1, m_train_seed=seed)
        for seed, top1 in enumerate((84.0, 85.0, 87.5))
    ])  # fmt: skip
    table, _, provenance = paper.main_table(root)
    assert table.set_index("model").loc["favit_b1:probsparse", "CIFAR-10 top-1 (seed, 30 ep)"] == (
        pytest.approx(85.5)
    )
    assert provenance["seeds"].tolist() == [3]
    assert "the mean over 3 seeds" in paper.main_caption(table, provenance)


def test_memory_and_scaling_tables_come_from_the_rows(written) -> None:
    root, _, _ = written
    memory = (root / "paper" / "memory_reduction.md").read_text()
    assert (
        "| every_patch_sr1 | model | step_mem_mib | probsparse_seed | dense+sr1 | 2 | 99.5 | 99.5 "
        "| 2 |" in memory
    )
    scaling = (root / "paper" / "scaling_exponents.md").read_text()
    assert "| favit_b1:sdpa+sr1 | train | bf16 | 2 | 2 | 448 | 2.00 | 2.00 |" in scaling
    assert "| favit_b1:sdpa | train | bf16 | 2 | 2 | 448 | 1.00 | 1.00 |" in scaling


def test_paper_is_deterministic(written) -> None:
    root, _, first = written
    again = paper.write_paper(root)
    assert {p.name: p.read_bytes() for p in again} == first


def test_missing_suites_are_stated_and_bad_rows_are_an_error(tmp_path: Path) -> None:
    root = tmp_path / "results"
    write_run(root, "cpu", "flops", "20261129T030000Z", [
        {"model": "deit_tiny", "img_size": 224, "m_param_count": 5.7, "m_fvcore_gmacs": 1.26}
    ], device="cpu")  # fmt: skip
    files = paper.write_paper(root)
    assert [p.name for p in files] == [
        "README.md",
        "main_table.md",
        "main_table.tex",
        "main_table_sources.csv",
    ]
    readme = (root / "paper" / "README.md").read_text()
    assert readme.count("Not written: no committed run holds these figures.") == 3
    table = pd.read_csv(root / "cpu" / "flops-20261129T030000Z" / "rows.csv")
    table.drop(columns=["fvcore_gmacs"]).to_csv(
        root / "cpu" / "flops-20261129T030000Z" / "rows.csv", index=False
    )
    with pytest.raises(ResultsError, match=r"rows.csv: malformed: no column 'fvcore_gmacs'"):
        paper.write_paper(root)
    ctx = CellContext(device="cpu", run_dir=tmp_path / "run", cell_id="results=x")
    with pytest.raises(ResultsError, match="no such results folder"):
        paper.SUITE.measure({"results": str(tmp_path / "nowhere")}, ctx)


def test_main_table_adds_up_latency_runs_and_cuda_graph_columns(tmp_path: Path) -> None:
    """Runs committed a mode at a time add up; a newer run wins a cell both measured; CUDA-graph
    rows get their own speed columns and never the memory column."""
    root = tmp_path / "results"

    def row(model: str, mode: str, compile_mode: str, speed: float) -> dict:
        batch = paper.PREFERRED_BATCH[mode]
        return {"model": model, "img_size": 224, "batch_size": batch, "dtype": "bf16",
                "mode": mode, "channels_last": "off", "compile": compile_mode,
                f"m_{mode}_samples_per_sec": speed, "m_peak_mem_mib": speed / 10}  # fmt: skip

    write_run(root, "h200", "latency", "20261129T050000Z", [
        row("favit_b1", "train", "eager", 900.0), row("favit_b1", "train", "cudagraph", 3000.0)
    ], env={"git": {"commit": "a" * 40, "dirty": False}})  # fmt: skip
    write_run(root, "h200", "latency", "20261129T060000Z", [
        row("favit_b1", "infer", "eager", 5000.0), row("favit_b1", "train", "eager", 1000.0)
    ], env={"git": {"commit": "b" * 40, "dirty": True}})  # fmt: skip
    table, sources, provenance = paper.main_table(root)
    record = table.set_index("model").loc["favit_b1:probsparse"]
    assert record["train img/s (bf16, batch 128)"] == 1000.0  # the newer run
    assert record["infer img/s (bf16, batch 256)"] == 5000.0
    assert record["train img/s, CUDA graphs (bf16, batch 128)"] == 3000.0
    assert pd.isna(record["infer img/s, CUDA graphs (bf16, batch 256)"])
    assert record["train peak MiB (bf16, batch 128)"] == 100.0  # eager's, not the graph pool's
    assert [p.name for p in sources] == ["latency-20261129T050000Z", "latency-20261129T060000Z"]
    runs = provenance.set_index("column")["run"]  # each figure names the run it came from
    assert runs["train img/s (bf16, batch 128)"] == "h200/latency-20261129T060000Z"
    assert runs["train img/s, CUDA graphs (bf16, batch 128)"] == "h200/latency-20261129T050000Z"
    assert "infer img/s, CUDA graphs (bf16, batch 256)" not in runs  # blank: no run to name
    commits = provenance.set_index("column")["commit"]  # and the code version it was measured at
    assert commits["train img/s (bf16, batch 128)"] == "bbbbbbbbbb+dirty"
    assert commits["train img/s, CUDA graphs (bf16, batch 128)"] == "aaaaaaaaaa"
    # eager against CUDA graphs spans two commits: the row is marked
    assert paper.mixed_commit_models(provenance) == {"favit_b1:probsparse"}
    paper.write_paper(root)
    text = (root / "paper" / "main_table.md").read_text()
    assert "| favit_b1:probsparse † |" in text and "† = the row's measured figures" in text
    assert r"favit\_b1:probsparse \textdagger{}" in (root / "paper" / "main_table.tex").read_text()


def test_a_resumed_runs_rows_name_the_commit_of_their_session(tmp_path: Path) -> None:
    root = tmp_path / "results"
    rows = [
        {"model": "favit_b1", "img_size": 224, "batch_size": paper.PREFERRED_BATCH[mode],
         "dtype": "bf16", "mode": mode,
         "channels_last": "off", "compile": "eager", f"m_{mode}_samples_per_sec": 1.0,
         "m_finished_utc": finished}
        for mode, finished in (("train", "2026-12-01T18:30:00Z"), ("infer", "2026-12-01T19:30:00Z"))
    ]  # fmt: skip
    env = {
        "started_utc": "2026-12-01T18:00:00Z",
        "git": {"commit": "a" * 40, "dirty": False},
        "resumes": [{"started_utc": "2026-12-01T19:00:00Z", "git": {"commit": "b" * 40}}],
    }
    write_run(root, "h200", "latency", "20261201T180000Z", rows, env=env)
    _, _, provenance = paper.main_table(root)
    commits = dict(zip(provenance["column"], provenance["commit"], strict=True))
    assert commits == {
        "train img/s (bf16, batch 128)": "aaaaaaaaaa",  # finished before the resume
        "infer img/s (bf16, batch 256)": "bbbbbbbbbb",
    }


def test_a_top1_column_takes_the_newest_run_of_a_model_under_either_name(tmp_path: Path) -> None:
    # favit_b1 and favit_b1:probsparse are one model; the newer run's figure wins
    root = tmp_path / "results"
    write_run(root, "h200", "accuracy", "20261129T050000Z",
              [accuracy_row("favit_b1:probsparse", 80.0)])  # fmt: skip
    write_run(root, "h200", "accuracy", "20261130T050000Z", [accuracy_row("favit_b1", 85.0)])
    write_run(root, "h200", "accuracy", "20261130T060000Z",
              [accuracy_row("deit_tiny", 70.0, data="cifar10/")])  # fmt: skip
    table, _, _ = paper.main_table(root)
    record = table.set_index("model").loc["favit_b1:probsparse"]
    # two data sources: each gets its own column
    assert record["CIFAR-10 top-1 (seed, 30 ep, data/cifar10-jpeg.npz)"] == 85.0
    assert pd.isna(record["CIFAR-10 top-1 (seed, 30 ep, cifar10/)"])


def test_runs_shorter_than_their_recipe_stay_out_of_the_paper(tmp_path: Path) -> None:
    """A 1-epoch timing run is not a trained model: only full-budget top-1 columns appear."""
    root = tmp_path / "results"
    write_run(
        root,
        "h200",
        "accuracy",
        "20261129T050000Z",
        [
            accuracy_row("favit_b1", 14.0, recipe="native32", epochs="1"),
            accuracy_row("favit_b1", 81.0, recipe="native32"),
        ],
    )
    table, _, _ = paper.main_table(root)
    top1_columns = [c for c in table.columns if c.startswith("CIFAR-10 top-1")]
    assert top1_columns == ["CIFAR-10 top-1 (native32, 30 ep)"]
    assert table[top1_columns[0]].tolist() == [81.0]


def _timed_rows(model: str, host_op_us: float, **flagged: dict) -> list[dict]:
    """``latency_rows`` of one model on a host of ``host_op_us``, GPU-bound and stable unless
    ``flagged`` maps a mode to columns that say otherwise."""
    rows = [r for r in latency_rows() if r["model"] == model]
    for row in rows:
        row.update(m_host_op_us=host_op_us, m_gpu_busy_share=0.9, m_repeat_spread_pct=1.0)
        row.update(flagged.get(row["mode"], {}))
    return rows


def _main_table(root: Path) -> tuple[str, dict[str, list[str]], list[str]]:
    """The caption, the body rows by model, and the header of ``main_table.md``."""
    paper.write_paper(root)
    lines = (root / "paper" / "main_table.md").read_text().splitlines()
    header = [c.strip() for c in lines[2].strip("|").split("|")]
    rows = {}
    for line in lines[4:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = cells
    return lines[0], rows, header


def test_main_table_marks_host_bound_and_unstable_figures_and_says_so(tmp_path: Path) -> None:
    root = tmp_path / "results"
    write_run(root, "cpu", "flops", "20261129T030000Z", flops_rows(), device="cpu")
    rows = _timed_rows("favit_b1", 3.0, train={"m_gpu_busy_share": 0.5})
    rows += _timed_rows("deit_tiny", 3.1, infer={"m_repeat_spread_pct": 6.0})
    write_run(root, "h200", "latency", "20261129T060000Z", rows)
    caption, body, header = _main_table(root)
    train = header.index("train img/s (bf16, batch 128)")
    infer = header.index("infer img/s (bf16, batch 128)")
    host = header.index("host µs/op ‡")
    assert body["favit_b1:probsparse"][train] == "1,128 ‡"
    assert body["favit_b1:probsparse"][infer] == "3,128"
    assert body["favit_b1:probsparse"][host] == "3.00"
    assert body["deit_tiny"][infer] == "9,128 §" and body["deit_tiny"][host] == "-"
    assert "‡ = host-bound: the GPU was busy less than 0.7 of that row's step" in caption
    assert "§ = unstable: that row's two timing rounds never agreed" in caption
    assert "hosts of different speed" not in caption  # 3.0 and 3.1 µs/op: one speed
    sources = pd.read_csv(root / "paper" / "main_table_sources.csv").set_index(["model", "column"])
    assert sources.loc[("favit_b1:probsparse", "train img/s (bf16, batch 128)"), "launch_bound"]
    tex = (root / "paper" / "main_table.tex").read_text()
    assert r"1,128 \textdaggerdbl{}" in tex and r"9,128 \S{}" in tex


def test_main_table_warns_when_its_img_s_columns_mix_hosts_of_different_speed(tmp_path) -> None:
    root = tmp_path / "results"
    write_run(root, "cpu", "flops", "20261129T030000Z", flops_rows(), device="cpu")
    write_run(root, "h200", "latency", "20261129T060000Z", _timed_rows("favit_b1", 2.0))
    write_run(root, "h100", "latency", "20261130T060000Z", _timed_rows("deit_tiny", 2.6))
    caption, body, header = _main_table(root)
    assert "host µs/op ‡" not in header  # nothing host-bound, nothing marked
    assert body["deit_tiny"][header.index("train img/s (bf16, batch 128)")] == "3,128"
    assert (
        "The img/s columns come from runs on hosts of different speed (host_op_us, µs per tiny "
        "op: h100/latency-20261130T060000Z 2.60, h200/latency-20261129T060000Z 2.00)" in caption
    )
    write_run(root, "h100", "latency", "20261201T060000Z", _timed_rows("deit_tiny", 2.3))
    caption, _, _ = _main_table(root)
    assert "hosts of different speed" not in caption  # 2.3 against 2.0: within 20%


def test_scaling_figure_marks_host_bound_and_unstable_points(tmp_path, monkeypatch) -> None:
    root = tmp_path / "results"
    rows = scaling_rows("favit_b1:sdpa", 1.0, sizes=(224, 448, 672))
    rows[0]["m_gpu_busy_share"] = 0.4  # 224 px: host-bound
    rows[2]["m_repeat_spread_pct"] = 8.0  # 672 px: rounds never agreed
    write_run(root, "h200", "scaling", "20261129T070000Z", rows)
    drawn = []
    monkeypatch.setattr(
        paper,
        "mark_flagged_points",
        lambda ax, data, x, y: drawn.append(
            (y, data.loc[data["launch_bound"], "img_size"].tolist(),
             data.loc[data["unstable"], "img_size"].tolist())
        ),
    )  # fmt: skip
    paper.scaling_outputs(root, tmp_path / "out")
    # memory: every size; time: the GPU-bound sizes only
    assert drawn == [("step_mem_mib", [224], [672]), ("step_ms", [], [672])]


def test_the_main_table_compares_favit_and_named_baselines_only() -> None:
    """A run of models by library name (timm:, tv:) or a user's factory stays out of the paper."""
    assert paper.is_compared_model("favit_b1:sdpa+gsr1") and paper.is_compared_model("pvt_v2_b1")
    for name in ("timm:resnet18", "tv:mobilenet_v3_large", "mypkg.nets:MyNet"):
        assert not paper.is_compared_model(name)
