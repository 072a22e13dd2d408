"""Bad input given as a new user gives it, through the command line: each gets exit code 2 and one
line on stderr (before any cell runs, where that can be known then), or a skipped row for a limit
of one model; nothing outside the run folder changes."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from multiprocessing import Pipe
from pathlib import Path

import numpy as np
import pytest
import torch

import bench
from suites.engine.plan import RunRequest, plan_run
from suites.engine.runner import CellOutcome, _send_outcome, every_cell_failed, execute, run_suite
from suites.engine.suite import Suite
from suites.training.loop import CHECKPOINT_NAME, CheckpointError, load_checkpoint
from tests.test_data import _images, make_pack
from tests.test_plain_pickle import crafted_batch, write_cifar_folder
from tests.test_runner import TOY, toy_measure

REPO = Path(bench.__file__).resolve().parent
DEFAULT_RUNS = REPO / "results" / "runs"


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``root`` with its size and modification time."""
    return {
        str(path.relative_to(root)): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in sorted(root.rglob("*"))
    }


def default_runs() -> list[str]:
    return sorted(os.listdir(DEFAULT_RUNS)) if DEFAULT_RUNS.is_dir() else []


def cli(capsys, *args: str) -> tuple[int, list[str]]:
    """``bench.py ARGS`` in this process: the exit code and the lines on stderr."""
    try:
        code = bench.main(list(args))
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    return code, [line for line in capsys.readouterr().err.splitlines() if line.strip()]


def cli_subprocess(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "bench.py", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=timeout,
    )


def assert_one_line(code: int, lines: list[str], *expected: str) -> None:
    """Exit code 2 and one line on stderr holding each ``expected``."""
    assert code == 2, lines
    assert len(lines) == 1 and lines[0].startswith("bench.py: error: "), lines
    for text in expected:
        assert text in lines[0], lines[0]


# ---- values that can never be valid: refused before any cell runs --------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--suite", "memory", "--img-size", "0"], "--img-size: bad value '0'"),
        (["--suite", "memory", "--img-size", "-32"], "--img-size: bad value '-32'"),
        (["--suite", "memory", "--batch-size", "0"], "--batch-size: bad value '0'"),
        (["--suite", "memory", "--batch-size", "-4"], "--batch-size: bad value '-4'"),
        (["--suite", "latency", "--img-size", "0"], "--img-size: bad value '0'"),
        (["--suite", "scaling", "--img-size", "-1"], "--img-size: bad value '-1'"),
        (["--suite", "profile", "--img-size", "0"], "--img-size: bad value '0'"),
        (["--suite", "flops", "--img-size", "0x5"], "--img-size: bad value '0x5'"),
        (["--suite", "flops", "--img-size", "-32"], "--img-size: bad value '-32'"),
        (["--suite", "accuracy", "--set", "img_size=0"], "--set img_size: bad value '0'"),
        (["--suite", "accuracy", "--set", "img_size=-32"], "--set img_size: bad value '-32'"),
        (["--suite", "accuracy", "--set", "batch_size=0"], "--set batch_size: bad value '0'"),
        (["--suite", "accuracy", "--set", "batch_size=-4"], "--set batch_size: bad value '-4'"),
        (["--suite", "accuracy", "--set", "epochs=-1"], "--set epochs: bad value '-1'"),
        (["--suite", "accuracy", "--set", "lr=nan"], "--set lr: bad value 'nan'"),
        (["--suite", "accuracy", "--set", "extra=mixup"], "--set extra: bad value 'mixup'"),
        (["--suite", "accuracy", "--set", "extra=amp:fp8"], "amp='fp8' is not a valid choice"),
        (["--suite", "accuracy", "--set", "extra=erase_prob:2"], "erase_prob='2' is not valid"),
        (["--suite", "accuracy", "--set", "train_images=-5"], "--set train_images: bad value"),
        (["--suite", "accuracy", "--set", "warmup_epochs=3"], "warmup_epochs 3 must lie in"),
        (["--suite", "accuracy", "--set", "train_images=32"], "batch_size 64 exceeds"),
        (["--suite", "accuracy", "--set", "data=/no/such.npz"], "bad value '/no/such.npz' (no such file"),
        (["--suite", "accuracy", "--set", "data=/no/such/folder"], "(no such folder"),
        (["--suite", "memory", "--models", "pvt_v2_b1", "--set", "level=analytic"],
         "memory: no combination of the values asked for is measured (levels analytic"),
        (["--suite", "memory", "--models", "pvt_v2_b1,favit_b0", "--set", "level=model",
          "--set", "variant=dense"],
         "memory: model 'pvt_v2_b1' gives no cell with the other values asked for (levels"),
    ],
)  # fmt: skip
def test_values_that_can_never_be_valid_are_refused_before_any_cell(
    tmp_path, capsys, args, expected
):
    before = default_runs()
    code, lines = cli(capsys, *args, "--quick", "--out", str(tmp_path / "run"), "--no-progress")
    assert_one_line(code, lines, expected)
    assert not (tmp_path / "run").exists() and default_runs() == before


def test_the_full_profile_names_a_default_data_pack_this_machine_lacks(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # no data/cifar10-jpeg.npz here
    code, lines = cli(capsys, "--suite", "accuracy", "--full", "--dry-run")
    assert_one_line(code, lines, "data, the full profile's (choose with --set data=...): bad value")
    assert list(tmp_path.iterdir()) == []


def test_a_limit_of_one_model_is_a_skipped_row_and_a_run_is_never_overwritten(tmp_path, capsys):
    run = tmp_path / "flops"
    argv = ["--suite", "flops", "--quick", "--models", "swin_t", "--img-size", "48"]
    code, _ = cli(capsys, *argv, "--out", str(run), "--no-isolate", "--no-progress")
    with (run / "rows.csv").open(newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert code == 0 and row["status"] == "skipped"
    assert (
        row["reason"]
        == "swin_t needs H and W divisible by 32 (patch 4, three 2x merges), got 48x48"
    )
    finished = snapshot(tmp_path)
    code, lines = cli(capsys, "--suite", "memory", "--quick", "--out", str(run))
    assert_one_line(code, lines, "already holds a run; continue it with --resume")
    assert snapshot(tmp_path) == finished  # its env.json and rows.csv untouched


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda p: p.mkdir(), "is not a run folder (no env.json); start a new run with --out"),
        (lambda p: (p.mkdir(), (p / "notes.txt").write_text("x")), "is not a run folder"),
        (lambda p: p.write_text("x"), "no such run folder"),
        (lambda p: None, "no such run folder"),
    ],
)
def test_resume_of_a_folder_that_holds_no_run_is_refused(tmp_path, capsys, make, expected):
    make(tmp_path / "target")
    before = snapshot(tmp_path)
    code, lines = cli(capsys, "--resume", str(tmp_path / "target"))
    assert_one_line(code, lines, "--resume: ", expected)
    assert snapshot(tmp_path) == before


# ---- --out problems ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("out", "expected"),
    [
        ("afile", "'{tmp}/afile' is a file, not a folder; name a new folder"),
        ("afile/run", "'{tmp}/afile/run' lies under '{tmp}/afile', which is a file"),
        ("busy", "'{tmp}/busy' is a folder with other files in it; name a new one"),
    ],
)
def test_out_that_cannot_be_a_new_run_folder_is_one_line(tmp_path, capsys, out, expected):
    (tmp_path / "afile").write_text("mine")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    before = snapshot(tmp_path)
    code, lines = cli(capsys, "--suite", "flops", "--quick", "--out", str(tmp_path / out))
    assert_one_line(code, lines, "--out: " + expected.format(tmp=tmp_path))
    assert snapshot(tmp_path) == before


def test_out_in_an_unwritable_place_is_one_line(tmp_path, capsys, monkeypatch):
    import suites.engine.run_folder as run_folder

    # the tests run as root, for whom os.access allows everything: say what a user would get
    monkeypatch.setattr(run_folder.os, "access", lambda path, mode: False)
    code, lines = cli(capsys, "--suite", "flops", "--quick", "--out", str(tmp_path / "a" / "run"))
    assert_one_line(code, lines, f"--out: cannot write under '{tmp_path}' (permission denied)")
    assert list(tmp_path.iterdir()) == []


def test_out_where_no_folder_can_be_made_is_one_line_without_a_traceback():
    # /proc takes no new folders, whatever os.access says (for root it says yes)
    done = cli_subprocess("--suite", "flops", "--quick", "--out", "/proc/favit-bench-run/run")
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert "/proc" in lines[0] and "Traceback" not in done.stderr


def test_out_under_a_file_through_a_new_process_is_one_line(tmp_path):
    (tmp_path / "afile").write_text("mine")
    done = cli_subprocess("--suite", "memory", "--quick", "--out", str(tmp_path / "afile" / "r"))
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        f"bench.py: error: --out: '{tmp_path}/afile/r' lies under '{tmp_path}/afile', which is a file"
    ]


# ---- data: a crafted file runs nothing; a missing one is an error; synthetic says so ------------


def test_a_crafted_cifar_batch_runs_nothing_and_the_run_exits_2(tmp_path):
    folder = write_cifar_folder(tmp_path / "cifar")
    target = tmp_path / "created-by-the-pickle"
    (folder / "data_batch_1").write_bytes(crafted_batch(target))
    data_before = snapshot(tmp_path / "cifar")
    done = cli_subprocess(
        "--suite", "accuracy", "--quick", "--set", f"data={tmp_path / 'cifar'}",
        "--out", str(tmp_path / "run"), "--no-progress",
    )  # fmt: skip
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert lines[0].startswith("bench.py: error: every cell failed (1 of 1): DatasetError: ")
    assert f"{folder / 'data_batch_1'}' is refused: it names" in lines[0]
    assert not target.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cifar", "run"]
    assert snapshot(tmp_path / "cifar") == data_before


@pytest.mark.parametrize("corruption", ["truncated", "wrong_keys", "truncated_batch"])
def test_a_corrupt_data_file_fails_every_cell_with_one_line_naming_it(tmp_path, capsys, corruption):
    if corruption == "truncated_batch":
        folder = write_cifar_folder(tmp_path / "cifar")
        blob = (folder / "test_batch").read_bytes()
        (folder / "test_batch").write_bytes(blob[: len(blob) // 2])
        data, expected = tmp_path / "cifar", f"{folder / 'test_batch'}' is refused: not a complete"
    else:
        data = make_pack(tmp_path / "pack.npz", _images(4, 0), _images(2, 1))
        if corruption == "truncated":
            data.write_bytes(data.read_bytes()[:700])
            expected = f"'{data}' is not a readable .npz (BadZipFile"
        else:
            arrays = dict(np.load(data))
            arrays["test_lables"] = arrays.pop("test_labels")
            np.savez(data, **arrays)
            expected = f"'{data}' lacks keys ['test_labels']"
    before = snapshot(tmp_path)
    code, lines = cli(
        capsys, "--suite", "accuracy", "--quick", "--set", f"data={data}",
        "--out", str(tmp_path / "run"), "--no-isolate", "--no-progress",
    )  # fmt: skip
    assert_one_line(code, lines, "every cell failed (1 of 1): DatasetError: ", expected)
    after = {k: v for k, v in snapshot(tmp_path).items() if not k.startswith("run")}
    assert after == before  # no decoded cache, nothing else beside the data


def test_the_quick_profile_trains_on_synthetic_images_and_every_report_says_so(
    tmp_path, capsys, stand_in_model
):
    code, lines = cli(
        capsys, "--suite", "accuracy", "--quick", "--set", "img_size=16",
        "--out", str(tmp_path / "run"), "--no-isolate", "--no-progress",
    )  # fmt: skip
    assert code == 0, lines
    with (tmp_path / "run" / "rows.csv").open(newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert row["status"] == "ok" and row["data"] == "synthetic"
    assert row["dataset"] == "synthetic (smoke run, not CIFAR-10)"
    assert (
        "SYNTHETIC IMAGES (data=synthetic), not CIFAR-10."
        in (tmp_path / "run" / "accuracy.md").read_text()
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


# ---- checkpoints ------------------------------------------------------------------------------


def _checkpoint_bytes(kind: str, good: bytes, tmp_path: Path) -> bytes:
    if kind == "empty":
        return b""
    if kind == "nine_bytes":
        return b"123456789"
    if kind == "truncated":
        return good[: len(good) // 2]
    path = tmp_path / "other.pt"
    if kind == "lacks_keys":
        torch.save({"model": {}}, path)
    else:  # objects: unpickling it would create a file
        from tests.test_plain_pickle import WritesAFile

        torch.save({"epoch": WritesAFile(tmp_path / "created")}, path)
    return path.read_bytes()


CHECKPOINT_REASONS = {
    "empty": "is empty (a write cut short); delete it to train this cell from the start",
    "nine_bytes": "(9 bytes) is not a whole torch.save archive (cut short, or another kind",
    "truncated": "is not a whole torch.save archive",
    "lacks_keys": "lacks epoch, ema, optimizer, scheduler, scaler, history, config",
    "objects": "holds objects other than tensors and plain values, which are never loaded",
}


@pytest.mark.parametrize("kind", list(CHECKPOINT_REASONS))
def test_a_bad_checkpoint_is_one_line_naming_it(tmp_path, kind):
    torch.save({"model": torch.zeros(1000)}, tmp_path / "good.pt")
    path = tmp_path / CHECKPOINT_NAME
    path.write_bytes(_checkpoint_bytes(kind, (tmp_path / "good.pt").read_bytes(), tmp_path))
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(path, torch.device("cpu"))
    message = str(error.value)
    assert "\n" not in message and f"checkpoint '{path}'" in message
    assert CHECKPOINT_REASONS[kind] in message
    assert not (tmp_path / "created").exists()


@pytest.mark.parametrize("kind", ["empty", "truncated"])
def test_a_bad_checkpoint_on_resume_fails_the_run_with_one_line(
    tmp_path, capsys, stand_in_model, kind
):
    run = tmp_path / "run"
    argv = ["--suite", "accuracy", "--quick", "--set", "img_size=16", "--no-isolate"]
    assert cli(capsys, *argv, "--out", str(run), "--no-progress")[0] == 0
    # a crash after the cell's checkpoint, before its row: rows.csv keeps its header only
    rows = (run / "rows.csv").read_text().splitlines()
    (run / "rows.csv").write_text(rows[0] + "\n")
    (checkpoint,) = run.glob(f"cells/*/{CHECKPOINT_NAME}")
    checkpoint.write_bytes(_checkpoint_bytes(kind, checkpoint.read_bytes(), tmp_path))
    code, lines = cli(capsys, "--resume", str(run), "--no-isolate", "--no-progress")
    assert_one_line(
        code, lines, f"every cell failed (1 of 1): CheckpointError: checkpoint '{checkpoint}'"
    )


# ---- the run itself: every cell failed, a torn last line, workers of a killed parent ------------


def test_a_run_whose_every_cell_failed_says_why(tmp_path):
    def result(behaviours, name):
        plan = plan_run(
            RunRequest(TOY, {"behaviour": behaviours}, out_dir=tmp_path / name, isolate=False)
        )
        return execute(plan, progress=False)

    same = result(["raise"], "same")
    assert same.failure == "every cell failed (2 of 2): ValueError: bad thing second line"
    assert same.counts["error"] == 2
    assert result(["raise", "ok"], "mixed").failure == ""
    assert result(["skip"], "skipped").failure == ""
    assert result(["oom"], "oom").failure == ""
    assert every_cell_failed({"error": 2}, ["A: x", "B: y"], Path("r/rows.csv")) == (
        "every cell failed (2 of 2), for 2 reasons; the first: A: x (each in r/rows.csv)"
    )


def count_rows_report(table, run_dir: Path) -> None:
    (run_dir / "report.txt").write_text(f"{len(table)} rows, cells {sorted(table['x'])}")


REPORTING_TOY = Suite(
    "toy", "", TOY.axes, toy_measure, report=count_rows_report, option_kinds=TOY.option_kinds
)


def test_resume_drops_a_torn_last_line_and_loses_or_repeats_no_row(tmp_path, capsys):
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):  # x=1 and x=2 finish; the run stops at x=3
        run_suite(
            REPORTING_TOY, None, out_dir=run, quick=False, isolate=False, progress=False,
            options={"interrupt_at": 3},
        )  # fmt: skip
    whole = (run / "rows.csv").read_text()
    last = whole.splitlines()[-1]
    with (run / "rows.csv").open("a") as f:  # a crash in the middle of x=3's row
        f.write(last.replace("x=2", "x=3")[: len(last) // 2])
    capsys.readouterr()
    run_suite(REPORTING_TOY, None, resume_dir=run, isolate=False, progress=False)
    assert "rows.csv: dropped a torn last line (a write cut short)" in capsys.readouterr().err
    text = (run / "rows.csv").read_text()
    assert text.startswith(whole) and text.endswith("\n")
    with (run / "rows.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["x"] for r in rows] == ["1", "2", "3"] and all(r["status"] == "ok" for r in rows)
    assert (run / "report.txt").read_text() == "3 rows, cells [1, 2, 3]"  # the report parsed it


def test_a_worker_whose_parent_is_gone_sends_nothing_and_raises_nothing():
    receiver, sender = Pipe(duplex=False)
    receiver.close()
    assert _send_outcome(sender, CellOutcome("ok")) is False


SLEEPY_SCRIPT = """
import sys
from pathlib import Path
sys.path.insert(0, {repo!r})
from suites.engine.runner import run_suite
from tests.test_bad_input import SLEEPY
run_suite(SLEEPY, out_dir=Path({run!r}), device="cpu", workers=2, progress=False)
"""


def sleepy_measure(cell, ctx):
    """Says it started (with its pid), sleeps, says it finished."""
    (ctx.run_dir / f"started-{cell['x']}").write_text(str(os.getpid()))
    time.sleep(60)
    (ctx.run_dir / f"finished-{cell['x']}").touch()
    return {"value": 1}


SLEEPY = Suite("sleepy", "", TOY.axes[:1], sleepy_measure)


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def test_workers_of_a_killed_run_exit_quietly(tmp_path):
    run = tmp_path / "run"
    script = SLEEPY_SCRIPT.format(repo=str(REPO), run=str(run))
    err = (tmp_path / "stderr.txt").open("w")
    parent = subprocess.Popen([sys.executable, "-c", script], stderr=err, cwd=REPO)
    deadline = time.monotonic() + 120
    while len(list(run.glob("started-*"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    workers = [int(p.read_text()) for p in run.glob("started-*")]
    assert len(workers) == 2
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 20  # the cells would sleep for 60 s
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    err.close()
    assert not any(_alive(pid) for pid in workers)
    assert not list(run.glob("finished-*"))
    assert (tmp_path / "stderr.txt").read_text() == ""
