"""bench.py: bad arguments exit 2 with one line naming the bad value and the choices."""

from __future__ import annotations

import csv
import subprocess
import sys

import pytest

import bench
from tests.test_runner import TOY


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "bench.py", *args],
        capture_output=True,
        text=True,
        cwd=bench.__file__.rsplit("/", 1)[0],
        timeout=120,
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--suite", "nope"], "invalid choice: 'nope'"),
        (["--suite", "memory", "--mode", "fly"], "--mode: bad value 'fly'; valid: train, infer"),
    ],
)
def test_bad_arguments_exit_2_with_one_line_subprocess(args, expected):
    done = run_cli(*args)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(("bench.py: error:", "bench.py report: error:"))
    assert expected in lines[0]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--suite", "memory", "--img-size", "big"], "--img-size: bad value 'big'"),
        (
            ["--suite", "memory", "--set", "variant=sparse"],
            "--set variant: bad value 'sparse'; valid: probsparse_seed",
        ),
        (
            ["--suite", "memory", "--set", "colour=red"],
            "--set: suite 'memory' has no axis 'colour'",
        ),
        (["--suite", "memory", "--device", "tpu"], "invalid choice: 'tpu'"),
        (
            ["--suite", "memory", "--models", "favit_b9"],
            "--models: bad value 'favit_b9' (unknown model 'favit_b9'; valid: favit_b0",
        ),
        (["--suite", "memory", "--gpus", "0"], "--gpus: bad GPU index 0; valid: none"),
        (["--suite", "memory", "--timeout", "-1"], "--timeout: bad value -1"),
        (["--suite", "memory", "--stop-after", "0"], "--stop-after: bad value 0; must be > 0"),
        (["--resume", "/nonexistent/run"], "--resume: no such run folder"),
        (["--full", "--quick"], "not allowed with argument"),
        (["--suite", "memory", "--option", "download"], "--option: bad value 'download'"),
        (
            ["--suite", "latency", "--option", "timed_step=5"],
            "--option: suite 'latency' has no option 'timed_step'; its options: busy_steps,",
        ),
        (
            ["--suite", "latency", "--option", "max_batch_rel_tol=1.5"],
            "--option: bad value max_batch_rel_tol='1.5' (expected a number from 0 (inclusive) to 1",
        ),
        (
            ["--suite", "latency", "--option", "max_rounds=1"],
            "--option: bad value max_rounds='1' (expected an integer >= 2 (two rounds are compared))",
        ),
        (
            ["--suite", "memory", "--option", "timed_steps=5"],
            "--option: suite 'memory' has no option 'timed_steps'; its options: none",
        ),
        (
            ["--suite", "scaling", "--option", "timed_steps=many"],
            "--option: bad value timed_steps='many' (expected an integer)",
        ),
        (
            ["--suite", "latency", "--option", "inductor_config=freezeing=1"],
            "--option: bad value inductor_config='freezeing=1' (bad inductor_config item",
        ),
        (
            ["--suite", "accuracy", "--option", "download=maybe"],
            "--option: bad value download='maybe' ('maybe' is not a boolean",
        ),
        (["report", "/nonexistent/run"], "is not a run folder"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(args, expected, capsys):
    try:
        code = bench.main(args)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(lines) == 1 and lines[0].startswith(("bench.py: error:", "bench.py report: error:"))
    assert expected in lines[0]


DATA_VALID = (
    "valid: a CIFAR-10 JPEG pack (.npz) that exists, torchvision's CIFAR-10 folder "
    "(cifar-10-batches-py, the folder holding it, or the one download=on fetches it into), or "
    "'synthetic'"
)


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--suite", "latency", "--dtype", "fp33"],
         "--dtype: bad value 'fp33'; valid: fp32, bf16, fp16, bf16_pure"),
        (["--suite", "latency", "--mode", "bogus"], "--mode: bad value 'bogus'; valid: infer, train"),
        (["--suite", "latency", "--set", "compile=maybe"],
         "--set compile: bad value 'maybe'; valid: eager, compile, cudagraph, cudagraph_eager"),
        (["--suite", "latency", "--set", "channels_last=maybe"],
         "--set channels_last: bad value 'maybe'; valid: off, on"),
        (["--suite", "memory", "--img-size", "abc"],
         "--img-size: bad value 'abc'; valid: a positive integer (pixels per side)"),
        (["--suite", "accuracy", "--set", "data=/no/such.npz"],
         f"--set data: bad value '/no/such.npz' (no such file; {DATA_VALID})"),
        (["--suite", "accuracy", "--set", "data=/no/such/folder"],
         f"--set data: bad value '/no/such/folder' (no such folder; {DATA_VALID})"),
    ],
)  # fmt: skip
def test_a_bad_value_names_the_valid_values_once(args, line, capsys):
    assert bench.main([*args, "--dry-run"]) == 2
    assert capsys.readouterr().err.splitlines() == [f"bench.py: error: {line}"]


def test_option_without_an_axis_is_an_error_in_process():
    args = bench.build_parser().parse_args(["--batch-size", "4"])
    with pytest.raises(
        bench.UsageError, match="suite 'toy' has no axis 'batch_size'; its axes: x, behaviour"
    ):
        bench.overrides_from_args(TOY, args)


def test_comma_lists_convert_with_the_axis_kind():
    args = bench.build_parser().parse_args(["--set", "x=1,2", "--set", "behaviour=ok,skip"])
    assert bench.overrides_from_args(TOY, args) == {"x": [1, 2], "behaviour": ["ok", "skip"]}


def test_compare_dispatches_or_fails_in_one_line(monkeypatch, capsys):
    calls = []
    import types

    fake = types.ModuleType("suites.analysis.compare")
    fake.HELP = "compare two runs"
    fake.add_arguments = lambda parser: parser.add_argument("runs", nargs="*")
    fake.run = lambda args: calls.append(args.runs) or 0
    monkeypatch.setitem(sys.modules, "suites.analysis.compare", fake)
    import suites.analysis

    # an earlier test may have imported the real module, which `from suites.analysis import compare` prefers
    monkeypatch.setattr(suites.analysis, "compare", fake, raising=False)
    assert bench.main(["compare", "a", "b"]) == 0 and calls == [["a", "b"]]


def test_list_shows_suites_axes_and_models():
    text = bench.list_suites()
    assert (
        "memory:" in text and "variant: ['probsparse_seed'" in text and "favit_b1:dense+sr1" in text
    )


def test_dry_run_lists_every_cell_and_writes_nothing(tmp_path, capsys):
    from suites import get_suite

    out = tmp_path / "run"
    args = [
        "--suite",
        "memory",
        "--device",
        "cpu",
        "--set",
        "level=analytic,model",
        "--out",
        str(out),
    ]
    assert bench.main([*args, "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    expected = get_suite("memory").cells({"level": ["analytic", "model"]}, quick=True)
    assert lines[0] == f"memory: {len(expected)} cells (quick profile, device cpu)"
    assert lines[1].startswith(("  estimated ", "  no time estimate"))  # from committed runs
    assert len(lines) == 2 + len(expected) and not out.exists()


def test_dry_run_plans_a_gpu_run_on_a_machine_without_one(monkeypatch, capsys):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    args = ["--suite", "latency", "--device", "cuda", "--models", "favit_b0", "--batch-size", "1"]
    assert bench.main([*args, "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "latency: 4 cells (full profile, device cuda)"  # 2 dtypes x 2 modes
    assert len(lines) == 2 + 4 and all("model=favit_b0,img_size=224," in x for x in lines[2:])


def test_dry_run_of_a_resume_lists_the_cells_left_and_changes_nothing(tmp_path, capsys):
    from suites import get_suite
    from suites.engine.suite import cell_id

    run_dir = tmp_path / "run"
    args = ["--suite", "memory", "--quick", "--device", "cpu", "--no-progress", "--no-isolate"]
    assert bench.main([*args, "--set", "level=analytic", "--out", str(run_dir)]) == 0
    with open(run_dir / "rows.csv", newline="") as f:
        reader = csv.DictReader(f)
        fields, rows = reader.fieldnames, list(reader)
    failed_id = rows[0]["cell_id"]
    for row in rows:  # that cell failed, as if it ran out of memory
        if row["cell_id"] == failed_id:
            row["status"] = "oom"
    with open(run_dir / "rows.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    before = {p.name: p.read_bytes() for p in run_dir.iterdir()}
    capsys.readouterr()

    both = ["--set", "level=analytic,global"]
    assert bench.main(["--resume", str(run_dir), *both, "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    suite = get_suite("memory")
    every = suite.cells({"level": ["analytic", "global"]}, quick=True)
    left = [cell_id(c) for c in every if c["level"] == "global"]
    assert lines[0] == (
        f"memory: {len(left)} of {len(every)} cells left in {str(run_dir)!r} "
        "(quick profile, device cpu)"
    )
    assert [x.strip() for x in lines[2:]] == left

    assert bench.main(["--resume", str(run_dir), *both, "--retry-failed", "--dry-run"]) == 0
    listed = [x.strip() for x in capsys.readouterr().out.splitlines()[2:]]
    assert listed == [c for c in map(cell_id, every) if c == failed_id or c in left]

    assert bench.main(["--resume", str(run_dir), "--dry-run"]) == 0  # the run's own axes
    assert capsys.readouterr().out.startswith(f"memory: 0 of {len(every) - len(left)} cells left")
    assert {p.name: p.read_bytes() for p in run_dir.iterdir()} == before


def test_dry_run_of_a_resume_on_another_device_exits_2(tmp_path, capsys):
    run_dir = tmp_path / "run"
    args = ["--suite", "memory", "--quick", "--device", "cpu", "--no-progress", "--no-isolate"]
    assert bench.main([*args, "--set", "level=analytic", "--out", str(run_dir)]) == 0
    capsys.readouterr()
    assert bench.main(["--resume", str(run_dir), "--device", "cuda", "--dry-run"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "bench.py: error: --resume: the run was measured on cpu; cannot resume it on cuda"
    ]


def test_resume_with_another_seed_exits_2_with_one_line(tmp_path, capsys):
    run_dir = tmp_path / "run"
    args = ["--suite", "memory", "--quick", "--device", "cpu", "--no-progress", "--no-isolate"]
    assert bench.main([*args, "--set", "level=analytic", "--out", str(run_dir), "--seed", "5"]) == 0
    capsys.readouterr()
    assert bench.main(["--resume", str(run_dir), "--seed", "6", "--no-progress"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        "bench.py: error: --resume: --seed 6 differs from the run's own 5; a resumed run keeps its seed"
    ]


def _docstring_examples() -> list[list[str]]:
    """The help's example command lines that need nothing of the user's (no file, run or package
    of theirs); ``--gpus`` is dropped (this machine has none)."""
    import shlex

    examples = []
    for line in bench.__doc__.splitlines():
        if not line.strip().startswith("python bench.py --"):
            continue  # prose, or the compare and report commands (they need runs)
        words = shlex.split(line.split("  #")[0])
        if any(w.startswith("@") or "mypkg" in w or w == "--resume" for w in words):
            continue
        if "--gpus" in words:
            at = words.index("--gpus")
            del words[at : at + 2]
        examples.append(words[2:])
    return examples


@pytest.mark.parametrize("argv", _docstring_examples(), ids=" ".join)
def test_every_example_of_the_help_plans(argv, capsys):
    """What the help shows a user runs: each example plans (dry run) on this machine."""
    extra = [] if "--list" in argv else ["--dry-run", "--device", "cpu"]
    assert bench.main([*argv, *extra]) == 0, capsys.readouterr().err


def test_a_reader_that_goes_away_gives_exit_141_not_a_verdict():
    """``bench.py compare A B | head`` on an OK comparison: the closed pipe exits 141 (128 +
    SIGPIPE, as a shell reports it), never compare's 1 (a regression), and prints no traceback."""
    reference = "results/reference/flops-cpu-quick"
    command = [sys.executable, "bench.py", "compare", reference, reference]
    cwd = bench.__file__.rsplit("/", 1)[0]
    assert subprocess.run(command, capture_output=True, cwd=cwd, timeout=120).returncode == 0
    reader = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd)
    reader.stdout.close()  # the reader is gone before the report is written
    _, err = reader.communicate(timeout=120)
    assert (reader.returncode, err.decode()) == (bench.EXIT_BROKEN_PIPE, "")


def test_error_lines_name_the_installed_command(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["/usr/bin/favit-bench"])
    assert bench.main(["report", "/nonexistent/run"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "favit-bench report: error: '/nonexistent/run' is not a run folder (no rows.csv)"
    ]
    assert bench.main(["compare", "/nonexistent/a", "/nonexistent/b"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "favit-bench compare: error: /nonexistent/a: no such run folder or rows.csv"
    ]
