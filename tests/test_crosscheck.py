"""The crosscheck suite on the CPU: the table builder, timm's results files, the shim's names and
registration, the required benchmark.py option, and a whole run against a fake benchmark.py."""

from __future__ import annotations

import math
import shutil
import subprocess
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import timm
import torch
from torch import nn

import baselines
import bench
from suites import crosscheck
from suites.engine import timm_benchmark
from suites.engine.runner import run_suite
from suites.engine.step import StepSpec, build_step, make_optimizer

# ----------------------------------------------------------------------------- judging, table


def test_judge_is_the_log_ratio_rule_with_each_tools_spread():
    quiet = {"repeat_spread_pct": 0.5, "timm_spread_pct": 1.0}  # band 3 x hypot(.005, .01) < 5%
    agree = crosscheck.judge(104.0, 100.0, quiet)
    assert agree["ratio"] == pytest.approx(1.04) and agree["verdict"] == "agree" and agree["agrees"]
    assert agree["tolerance_pct"] == pytest.approx(5.0)
    assert crosscheck.judge(106.0, 100.0, quiet)["verdict"] == "ours higher"
    # 1/1.06 is as far below as 1.06 is above: the log ratio's symmetry
    assert crosscheck.judge(100.0 / 1.06, 100.0, quiet)["verdict"] == "ours lower"
    assert crosscheck.judge(100.0 / 1.04, 100.0, quiet)["verdict"] == "agree"
    # spreads of 6% and 8% (each read as a log spread, as compare reads them): a band of
    # 3 x 0.0998 = x/÷ 1.349, wider than 5%: a 9% gap is too noisy to judge, never "agree"
    noisy = crosscheck.judge(91.0, 100.0, {"repeat_spread_pct": 6.0, "timm_spread_pct": 8.0})
    assert noisy["verdict"] == "too noisy to judge" and not noisy["agrees"]
    combined = math.hypot(math.sqrt(math.log1p(0.06**2)), math.sqrt(math.log1p(0.08**2)))
    assert combined == pytest.approx(0.0998, abs=1e-4)
    assert noisy["combined_spread_pct"] == pytest.approx(100 * math.expm1(combined))
    assert noisy["tolerance_pct"] == pytest.approx(100 * math.expm1(3 * combined))
    beyond = crosscheck.judge(70.0, 100.0, {"repeat_spread_pct": 6.0, "timm_spread_pct": 8.0})
    assert beyond["verdict"] == "ours lower"  # ln 0.7 = -0.357, beyond the band of 0.299
    # each tool's largest spread: our step's CV counts, a missing one counts nothing
    assert crosscheck.judge(100.0, 100.0, {"step_cv": 0.1})["verdict"] == "too noisy to judge"
    assert crosscheck.judge(100.0, 100.0, {"timm_spread_pct": math.nan})["verdict"] == "agree"
    assert crosscheck.judge(100.0, 0.0, quiet)["verdict"] == "no figure"


def _rows() -> pd.DataFrame:
    common = dict(status="ok", dtype="bf16", host_op_us=3.0)
    return pd.DataFrame(
        [
            dict(model="favit_b1", mode="train", train_samples_per_sec=1200.0,
                 train_step_time=106.7, train_batch_size=128, timm_img_s=1000.0,
                 timm_spread_pct=2.0, repeat_spread_pct=1.0, sync_img_s=1010.0,
                 sync_step_ms=126.0, gpu_busy_share=0.5, **common),
            dict(model="deit_tiny", mode="infer", infer_samples_per_sec=10_100.0,
                 infer_step_time=25.3, infer_batch_size=256, timm_img_s=10_000.0,
                 timm_spread_pct=1.0, repeat_spread_pct=4.0, sync_img_s=9_990.0,
                 sync_step_ms=25.6, gpu_busy_share=0.95, **common),
            dict(model="vit_small", mode="infer", status="error", reason="timm benchmark.py "
                 "reported an error: CUDA out of memory"),
        ]
    )  # fmt: skip


def test_table_builder_computes_ratios_spreads_verdicts_and_flags():
    table = crosscheck.crosscheck_table(_rows()).set_index("model")
    assert list(table.index) == ["deit_tiny", "favit_b1"]  # the default models' order; no error row
    favit, deit = table.loc["favit_b1"], table.loc["deit_tiny"]
    assert favit["ours_img_s"] == 1200.0 and favit["batch"] == 128
    assert favit["ratio"] == pytest.approx(1.2) and favit["sync_ratio"] == pytest.approx(1.01)
    assert not favit["agrees"] and favit["verdict"] == "ours higher"
    assert favit["flags"] == "host-bound"
    # 1% apart, but spreads of 4% and 1% make a band of x/÷ 1.132: too noisy to call agreement
    assert deit["ratio"] == pytest.approx(1.01) and deit["verdict"] == "too noisy to judge"
    assert not deit["agrees"] and deit["tolerance_pct"] == pytest.approx(13.2, abs=0.05)
    assert deit["flags"] == "unstable"  # 4% > the 3% target
    combined = math.hypot(math.sqrt(math.log1p(0.04**2)), math.sqrt(math.log1p(0.01**2)))
    assert deit["combined_spread_pct"] == pytest.approx(100 * math.expm1(combined))


def test_a_row_that_differs_is_explained_with_numbers():
    favit = crosscheck.crosscheck_table(_rows()).set_index("model").loc["favit_b1"]
    text = crosscheck.explain({**favit.to_dict(), "model": "favit_b1"})
    assert "ours 1,200 img/s against timm's 1,000 (+20.0%, allowed x/÷ 1.069)" in text
    assert "gives 1,010 img/s, +1.0% from timm's: the gap is the timing, not the step" in text
    assert "126.00 ms timed timm's way against our events' median of 106.70 ms" in text
    assert "host-bound (GPU busy 50% of the step, host 3.00 µs/op)" in text
    deit = crosscheck.crosscheck_table(_rows()).set_index("model").loc["deit_tiny"]
    text = crosscheck.explain({**deit.to_dict(), "model": "deit_tiny"})
    assert text == (
        "deit_tiny infer: ours 10,100 img/s against timm's 10,000 (+1.0%, allowed x/÷ 1.132). The "
        "two tools' combined spread (4.2%) makes a noise band wider than 5%: the figures neither "
        "agree nor differ. Our rounds never agreed within the target (spread 4.0%)."
    )


def test_report_writes_the_table_notes_and_a_warning_for_another_benchmark_py(tmp_path):
    rows = _rows().assign(benchmark_py_blob="0" * 40, timm_version="1.0.29")
    crosscheck.report(rows, tmp_path)
    text = (tmp_path / "crosscheck.md").read_text()
    assert f"benchmark.py git blob: {'0' * 40}; timm 1.0.29." in text
    assert "**warning:** benchmark.py is not the version" in text
    assert "Of 2 rows: 1 ours higher, 1 too noisy to judge." in text
    assert "## Rows that do not agree" in text
    line = next(x for x in text.splitlines() if x.startswith("| favit_b1"))
    assert (
        "| 1,000 | 2.0 |" in line and "| 1.200 |" in line and "| ours higher | host-bound |" in line
    )
    assert (tmp_path / "crosscheck.tex").read_text().count(r"\midrule") == 1
    assert (tmp_path / "crosscheck.png").stat().st_size > 0
    known = rows.assign(benchmark_py_blob=timm_benchmark.KNOWN_BENCHMARK_BLOB)
    crosscheck.report(known, tmp_path)
    assert "**warning:**" not in (tmp_path / "crosscheck.md").read_text()


def test_report_warns_when_the_two_tools_counted_different_parameters(tmp_path):
    rows = _rows().assign(param_count=[13.1, 5.717, math.nan], timm_param_count=[13.1, 5.72, 1.0])
    assert crosscheck.model_mismatches(crosscheck.crosscheck_table(rows)) == []
    rows.loc[0, "timm_param_count"] = 14.0
    crosscheck.report(rows, tmp_path)
    assert (
        "favit_b1 train: timm's model has 14 M parameters, ours 13.1 M"
        in (tmp_path / "crosscheck.md").read_text()
    )


# ----------------------------------------------------------------------------- timm's files


def _write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def test_timm_results_csv_and_its_failures(tmp_path):
    ok = _write(tmp_path / "ok.csv", """
        model,train_samples_per_sec,train_step_time,train_batch_size,train_img_size,param_count
        bench_favit_b1,1000.5,127.9,128,224,13.1
        """)  # fmt: skip
    assert timm_benchmark.read_repeat(ok, "train", 128) == {
        "img_s": 1000.5, "step_ms": 127.9, "batch": 128, "param_count": 13.1
    }  # fmt: skip
    with pytest.raises(RuntimeError, match="ran batch 128, not the 256 asked for"):
        timm_benchmark.read_repeat(ok, "train", 256)
    with pytest.raises(RuntimeError, match="no usable 'infer_samples_per_sec' column"):
        timm_benchmark.read_repeat(ok, "infer", 128)
    error = _write(tmp_path / "error.csv", """
        model,error
        bench_swin_t,"CUDA out of memory. Tried to allocate 2.00 GiB"
        """)  # fmt: skip
    with pytest.raises(RuntimeError, match=r"reported an error: CUDA out of memory\. Tried"):
        timm_benchmark.read_repeat(error, "infer", 256)
    with pytest.raises(RuntimeError, match=r"wrote no results file missing\.csv"):
        timm_benchmark.read_repeat(tmp_path / "missing.csv", "infer", 256)


def test_timm_figures_take_the_mean_of_the_repeats_and_their_spreads(tmp_path):
    for i, (img_s, windows) in enumerate(((990.0, [10.0, 11.0]), (1010.0, [10.0, 12.5]))):
        _write(tmp_path / f"repeat{i}.csv", f"""
            model,infer_samples_per_sec,infer_step_time,infer_batch_size,param_count
            m,{img_s},{256000 / img_s},256,5.7
            """)  # fmt: skip
        (tmp_path / f"repeat{i}.windows.json").write_text(f'{{"window_ms": {windows}}}')
    got = crosscheck.timm_figures(tmp_path, "infer", 256, 2)
    assert got["timm_img_s"] == 1000.0 and got["timm_spread_pct"] == pytest.approx(2.0)
    assert got["timm_window_spread_pct"] == pytest.approx(100 * 2.5 / 11.25)
    assert got["timm_repeat_img_s"] == "990.00;1010.00"


def test_window_means_undo_the_cumulative_means_of_the_progress_lines():
    # steps of 10, 10, 20, 20 ms: cumulative means 10 after 2 steps, 15 after 4
    assert timm_benchmark.window_means([(2, 10.0), (4, 15.0)]) == [10.0, 20.0]
    handler = timm_benchmark.ProgressLog()
    for message in (
        "Infer [4/20]. 9537.83 samples/sec. 0.210 ms/step.",
        "Train [8/20]. 354.44 samples/sec. 5.643 ms/step.",
        "Model m created, param count: 17448",
    ):
        handler.emit(__import__("logging").makeLogRecord({"msg": message}))
    assert handler.points == [(4, 0.21), (8, 5.643)]


def test_git_blob_sha1_is_git_hash_object(tmp_path):
    path = _write(tmp_path / "benchmark.py", "print('hello')\n")
    assert timm_benchmark.git_blob_sha1(path) == "b376c9941fda362c8d2c5c8ddb35db3e0b003402"
    if shutil.which("git"):  # that figure is git's own
        given = subprocess.run(["git", "hash-object", str(path)], capture_output=True, text=True)
        assert timm_benchmark.git_blob_sha1(path) == given.stdout.strip()


def test_benchmark_args_are_the_issue_settings():
    infer = timm_benchmark.benchmark_args("favit_b1:dense+sr1", "infer", 256, 224, 10, 20, "cuda:0")
    assert infer == [
        "--model", "bench_favit_b1_dense_sr1", "--device", "cuda", "--bench", "inference",
        "--amp", "--amp-dtype", "bfloat16", "-b", "256", "--img-size", "224",
        "--num-warm-iter", "10", "--num-bench-iter", "20", "--no-retry",
    ]  # fmt: skip
    train = timm_benchmark.benchmark_args("pvt_v2_b1", "train", 128, 224, 10, 20, "cuda")
    assert train[-2:] == ["--opt", "adamw"] and "128" in train


# ----------------------------------------------------------------------------- names, registration


class TinyNet(nn.Module):
    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.head = nn.Linear(4, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.conv(x).mean(dim=(2, 3)))


@pytest.fixture
def tiny_baselines(monkeypatch):
    """``baselines`` that knows the names 'tiny:x+y' and 'tiny:x_y' and builds them as TinyNet
    (without ``num_classes``, as torchvision's models), recording each call."""
    calls = []

    def create(name, num_classes=1000, img_size=224):
        calls.append((name, num_classes, img_size))
        model = TinyNet(num_classes)
        return model

    def validate_name(name):
        if name not in ("tiny:x+y", "tiny:x_y"):
            raise ValueError(f"unknown model {name!r}")

    monkeypatch.setattr(baselines, "create", create)
    monkeypatch.setattr(baselines, "validate_name", validate_name)
    return calls


def test_names_with_colons_and_pluses_map_to_identifiers():
    assert timm_benchmark.timm_model_name("favit_b1:dense+sr1") == "bench_favit_b1_dense_sr1"
    assert timm_benchmark.timm_model_name("deit_tiny") == "bench_deit_tiny"
    assert timm_benchmark.timm_model_name("resnet50") != "resnet50"  # never timm's own names


def test_a_registered_model_is_what_baselines_builds_through_timm_create_model(tiny_baselines):
    name = timm_benchmark.register("tiny:x+y", 32)
    assert name == "bench_tiny_x_y" and timm.models.is_model(name)
    # as benchmark.py calls it: num_classes None (dropped by timm), in_chans 3, drop_rate 0
    model = timm.create_model(name, num_classes=None, in_chans=3, drop_rate=0.0)
    assert isinstance(model, TinyNet) and tiny_baselines == [("tiny:x+y", 1000, 32)]
    assert model.num_classes == 1000
    timm.create_model(name, num_classes=10, img_size=64)
    assert tiny_baselines[-1] == ("tiny:x+y", 10, 64)
    with pytest.raises(ValueError, match=r"builds baselines\.create"):
        timm.create_model(name, drop_rate=0.1)
    with pytest.raises(ValueError, match=r"builds baselines\.create"):
        timm.create_model(name, global_pool="max")
    with pytest.raises(ValueError, match="no pretrained weights"):
        timm.create_model(name, pretrained=True)
    # the same name again is fine; another name on the same identifier is refused
    assert timm_benchmark.register("tiny:x+y", 32) == name
    with pytest.raises(ValueError, match="already stands for model 'tiny:x\\+y'; not 'tiny:x_y'"):
        timm_benchmark.register("tiny:x_y", 32)


def test_timm_optimizer_option_builds_what_timm_benchmark_builds():
    model = TinyNet(10)
    ours = make_optimizer(model, "timm_adamw")
    theirs = timm.optim.create_optimizer_v2(model, opt="adamw", lr=1e-4)
    assert type(ours) is type(theirs) is torch.optim.AdamW
    assert ours.defaults == theirs.defaults and ours.defaults["weight_decay"] == 0.0
    assert ours.defaults["lr"] == 1e-4 and not ours.defaults["fused"]
    default = make_optimizer(model, "adamw_fused").defaults
    assert (default["lr"], default["weight_decay"], default["fused"]) == (1e-3, 0.05, True)
    with pytest.raises(ValueError, match="bad optimizer 'sgd'; valid: adamw_fused, timm_adamw"):
        StepSpec.from_cell(dict(model="deit_tiny", img_size=32, batch_size=1, optimizer="sgd"))


def test_a_train_step_with_timms_optimizer_updates_the_weights():
    model = TinyNet()  # the step's targets are over 1000 classes
    spec = StepSpec("tiny", 8, 2, dtype="fp32", mode="train", optimizer="timm_adamw")
    before = model.head.weight.detach().clone()
    build_step(model, spec, 2, "cpu")()
    assert not torch.equal(before, model.head.weight)


# ----------------------------------------------------------------------------- command line, run


def test_benchmark_py_is_required_and_must_be_a_file(tmp_path, capsys):
    out = tmp_path / "run"
    assert bench.main(["--suite", "crosscheck", "--device", "cpu", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs benchmark_py=VALUE (the path of your copy" in err
    for value, what in ((tmp_path / "nope.py", "not found"), (tmp_path, "a folder")):
        argv = ["--suite", "crosscheck", "--device", "cpu", "--out", str(out)]
        assert bench.main([*argv, "--option", f"benchmark_py={value}"]) == 2
        err = capsys.readouterr().err
        assert (
            err.count("\n") == 1
            and f"(expected the path of timm's benchmark.py (a file); {str(value)!r} is {what})"
            in err
        )
    assert bench.main(["--suite", "crosscheck", "--device", "cpu", "--option",
                       f"benchmark_py={tmp_path}/x", "--option", "timed_steps=4"]) == 2  # fmt: skip
    assert not out.exists()  # nothing started
    assert bench.main(["--list"]) == 0
    assert "required: --option benchmark_py=..." in capsys.readouterr().out


FAKE_BENCHMARK = '''
"""A stand-in for timm's benchmark.py: its command line, its model lookup, its progress lines
and its results CSV; the figures are its own timing of the model's forward."""
import argparse, csv, logging, os, time
import torch
from timm.models import create_model, is_model

parser = argparse.ArgumentParser()
for flag in ("--model", "--device", "--bench", "--amp-dtype", "--opt", "--results-file"):
    parser.add_argument(flag)
for flag in ("-b", "--img-size", "--num-warm-iter", "--num-bench-iter"):
    parser.add_argument(flag, type=int)
parser.add_argument("--amp", action="store_true")
parser.add_argument("--no-retry", action="store_true")
args = parser.parse_args()
logging.basicConfig(level=logging.INFO)
log = logging.getLogger("validate")
assert is_model(args.model), args.model
prefix = "infer" if args.bench == "inference" else "train"
if os.environ.get("FAKE_TIMM_ERROR"):
    row = {"model": args.model, "error": os.environ["FAKE_TIMM_ERROR"]}
else:
    model = create_model(args.model, num_classes=None, in_chans=3, drop_rate=0.0)
    x = torch.randn(args.b, 3, args.img_size, args.img_size)
    total, start = 0.0, time.perf_counter()
    for step in range(1, args.num_bench_iter + 1):
        t = time.perf_counter()
        with torch.no_grad():
            model(x)
        total += time.perf_counter() - t
        if step % (args.num_bench_iter // 5) == 0:
            log.info(f"Infer [{step}/{args.num_bench_iter}]. 1.0 samples/sec. {1000 * total / step:0.3f} ms/step.")
    row = {
        "model": args.model,
        f"{prefix}_samples_per_sec": round(args.num_bench_iter * args.b / (time.perf_counter() - start), 2),
        f"{prefix}_step_time": round(1000 * total / args.num_bench_iter, 3),
        f"{prefix}_batch_size": args.b,
        f"{prefix}_img_size": args.img_size,
        "param_count": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
    }
with open(args.results_file, "w") as f:
    writer = csv.DictWriter(f, fieldnames=list(row))
    writer.writeheader()
    writer.writerow(row)
'''


@pytest.fixture
def fake_benchmark(tmp_path) -> Path:
    folder = tmp_path / "fake_timm"
    folder.mkdir()
    return _write(folder / "benchmark.py", FAKE_BENCHMARK)


SMALL = {"img_size": "32", "infer_batch": "1", "train_batch": "1", "warmup_steps": "0",
         "timed_steps": "5", "repeats": "2"}  # fmt: skip


def test_a_cpu_run_against_a_fake_benchmark_py(tmp_path, fake_benchmark, monkeypatch):
    monkeypatch.setenv("FAKE_TIMM_ERROR", "")
    run_dir = run_suite(
        crosscheck.SUITE, {"model": ["deit_tiny"], "mode": ["train"]}, device="cpu", quick=True,
        isolate=False, out_dir=tmp_path / "run", progress=False,
        options={"benchmark_py": str(fake_benchmark), **SMALL},
    )  # fmt: skip
    rows = pd.read_csv(run_dir / "rows.csv")
    row = rows.iloc[0]
    assert row["status"] == "ok", row["reason"]
    assert (row["timm_model"], row["model_id"]) == ("bench_deit_tiny", "timm:deit_tiny_patch16_224")
    assert row["timm_param_count"] == round(row["param_count"], 2)  # one model on both sides
    repeats = [float(v) for v in row["timm_repeat_img_s"].split(";")]
    assert len(repeats) == 2 and row["timm_img_s"] == pytest.approx(sum(repeats) / 2, abs=0.01)
    assert row["ratio"] == pytest.approx(row["train_samples_per_sec"] / row["timm_img_s"])
    assert row["train_batch_size"] == 1 and row["optimizer"] == "timm_adamw"
    assert row["benchmark_py_blob"] == timm_benchmark.git_blob_sha1(fake_benchmark)
    assert row["sync_img_s"] > 0 and row["timed_steps_per_round"] == 5
    cell = run_dir / "cells" / row["cell_id"]
    assert sorted(p.name for p in cell.iterdir()) == [
        "repeat0.csv", "repeat0.windows.json", "repeat1.csv", "repeat1.windows.json", "timm.log"
    ]  # fmt: skip
    assert len(timm_benchmark.read_windows(cell / "repeat0.windows.json")) == 5
    report = (run_dir / "crosscheck.md").read_text()
    assert "| deit_tiny | train | 1 |" in report and "**warning:** benchmark.py is not" in report


def test_a_failing_timm_cell_is_recorded_and_the_run_goes_on(tmp_path, fake_benchmark, monkeypatch):
    monkeypatch.setenv("FAKE_TIMM_ERROR", "CUDA out of memory")
    run_dir = run_suite(
        crosscheck.SUITE, {"model": ["deit_tiny", "pvt_v2_b1"], "mode": ["infer"]}, device="cpu",
        quick=True, isolate=False, out_dir=tmp_path / "run", progress=False,
        options={"benchmark_py": str(fake_benchmark), **SMALL},
    )  # fmt: skip
    rows = pd.read_csv(run_dir / "rows.csv")
    assert list(rows["status"]) == ["oom", "oom"]  # timm's out-of-memory error is an oom row
    assert (
        rows["reason"].str.contains("timm benchmark.py reported an error: CUDA out of memory").all()
    )


def test_a_resumed_run_keeps_its_benchmark_py(tmp_path, fake_benchmark):
    from suites.engine.plan import RunRequest, plan_run

    run_dir = run_suite(
        crosscheck.SUITE, {"model": ["deit_tiny"], "mode": ["train"]}, device="cpu",
        out_dir=tmp_path / "run", progress=False, stop_after_s=1e-9,
        options={"benchmark_py": str(fake_benchmark)},
    )  # fmt: skip
    assert not (run_dir / "rows.csv").exists() or pd.read_csv(run_dir / "rows.csv").empty
    plan = plan_run(RunRequest(crosscheck.SUITE, resume_dir=run_dir, device="cpu"))
    assert plan.options == {"benchmark_py": str(fake_benchmark)}
    assert [cid for _, cid in plan.pending()] == ["model=deit_tiny,mode=train"]
