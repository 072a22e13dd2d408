"""The matrix runner: cell expansion, rows, failures as rows, time limits, resume, interruption."""

from __future__ import annotations

import csv
import json
import os
import time
import weakref
from pathlib import Path

import pytest
import torch

from suites.engine.plan import ResumeMismatch, resumed_settings
from suites.engine.runner import run_suite
from suites.engine.suite import Axis, CellSkipped, Suite, cell_id, image_hw, image_size


def toy_measure(cell, ctx):
    """A toy cell: ``behaviour`` says how it ends; every call leaves a marker file."""
    calls = ctx.run_dir / "calls"
    calls.mkdir(exist_ok=True)
    (calls / f"{ctx.cell_id}-{time.monotonic_ns()}").touch()
    behaviour = cell["behaviour"]
    interrupted = ctx.run_dir / "interrupted"  # once: a resumed run keeps its options
    if ctx.options.get("interrupt_at") == cell["x"] and not interrupted.exists():
        interrupted.touch()
        raise KeyboardInterrupt
    if behaviour == "raise":
        raise ValueError("bad thing\nsecond line")
    if behaviour == "exit":
        os._exit(3)
    if behaviour == "oom":
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    if behaviour == "skip":
        raise CellSkipped("does not apply")
    if behaviour == "hang":
        time.sleep(600)
    if behaviour == "multi":
        return [{"value": cell["x"], "part": p} for p in ("a", "b")]
    return {
        "value": cell["x"] * 10,
        "device_seen": ctx.device,
        "seed_draw": torch.rand(1).item(),
        "worker_pid": os.getpid(),
    }


TOY = Suite(
    name="toy",
    description="a toy suite for the runner's tests",
    axes=[
        Axis("x", default=[1, 2, 3], quick=[1, 2], kind=int),
        Axis(
            "behaviour",
            default=["ok"],
            choices=["ok", "raise", "exit", "oom", "skip", "hang", "multi"],
        ),
    ],
    measure=toy_measure,
    cell_timeout_s=60,
    option_kinds={"interrupt_at": int},
)


def read_rows(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "rows.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def calls(run_dir: Path) -> int:
    return len(list((run_dir / "calls").iterdir()))


def test_cells_expand_axes_in_order_with_overrides_quick_and_filter():
    assert TOY.cells() == [{"x": x, "behaviour": "ok"} for x in (1, 2, 3)]
    assert TOY.cells(quick=True) == [{"x": 1, "behaviour": "ok"}, {"x": 2, "behaviour": "ok"}]
    assert TOY.cells({"x": [5], "behaviour": ["ok", "skip"]}) == [
        {"x": 5, "behaviour": "ok"},
        {"x": 5, "behaviour": "skip"},
    ]
    with pytest.raises(KeyError, match="no axis"):
        TOY.cells({"nope": [1]})
    filtered = Suite("f", "", TOY.axes, toy_measure, cell_filter=lambda c: c["x"] != 2)
    assert [c["x"] for c in filtered.cells()] == [1, 3]
    assert (
        cell_id({"model": "favit_b1:dense+sr1", "img_size": "320x224"})
        == "model=favit_b1:dense+sr1,img_size=320x224"
    )


def test_image_size_kind_accepts_square_and_width_by_height():
    assert image_size("224") == 224
    assert image_size("320x224") == "320x224"
    assert image_size("224x224") == 224
    assert image_hw("320x224") == (224, 320)
    assert image_hw(384) == (384, 384)
    with pytest.raises(ValueError, match="0x5"):
        image_size("0x5")


def test_in_process_run_writes_one_row_per_cell_with_runner_columns(tmp_path):
    run_dir = run_suite(
        TOY,
        {"behaviour": ["ok", "multi"]},
        out_dir=tmp_path / "run",
        isolate=False,
        progress=False,
        seed=7,
    )
    rows = read_rows(run_dir)
    assert [r["cell_id"] for r in rows] == [
        "x=1,behaviour=ok", "x=1,behaviour=multi", "x=1,behaviour=multi",
        "x=2,behaviour=ok", "x=2,behaviour=multi", "x=2,behaviour=multi",
    ]  # fmt: skip
    ok = rows[0]
    assert (
        ok["status"] == "ok"
        and ok["reason"] == ""
        and ok["value"] == "10"
        and ok["device_seen"] == "cpu"
    )
    assert {"gpu_index", "wall_s", "finished_utc", "device_name"} <= set(ok)
    assert [r["part"] for r in rows[1:3]] == ["a", "b"]  # a later row's new column joins the header
    torch.manual_seed(7)
    assert float(ok["seed_draw"]) == pytest.approx(torch.rand(1).item())  # seeded per cell
    env = json.loads((run_dir / "env.json").read_text())
    assert (
        env["run"]["suite"] == "toy"
        and env["run"]["quick"] is True
        and env["run"]["axes"]["x"] == [1, 2]
    )
    assert {"git", "packages", "command", "started_utc", "finished_utc", "python"} <= set(env)


def test_isolated_failures_become_rows_and_the_run_goes_on(tmp_path):
    run_dir = run_suite(
        TOY,
        {"x": [1], "behaviour": ["raise", "exit", "oom", "skip", "hang", "ok"]},
        out_dir=tmp_path / "run",
        cell_timeout_s=4,
        workers=2,
        progress=False,
    )
    rows = {r["behaviour"]: r for r in read_rows(run_dir)}
    assert rows["raise"]["status"] == "error"
    assert rows["raise"]["reason"] == "ValueError: bad thing second line"
    assert "ValueError" in (run_dir / "errors" / "x=1,behaviour=raise.txt").read_text()
    assert rows["exit"]["status"] == "error" and "exit code 3" in rows["exit"]["reason"]
    assert rows["oom"]["status"] == "oom" and "out of memory" in rows["oom"]["reason"]
    assert rows["skip"]["status"] == "skipped" and rows["skip"]["reason"] == "does not apply"
    assert rows["hang"]["status"] == "error" and rows["hang"]["reason"] == "timed out after 4 s"
    assert rows["ok"]["status"] == "ok" and rows["ok"]["value"] == "10"
    assert len(read_rows(run_dir)) == 6


def test_resume_skips_finished_cells_and_retries_failed_on_request(tmp_path):
    run_dir = run_suite(
        TOY,
        {"x": [1, 2], "behaviour": ["ok", "raise"]},
        out_dir=tmp_path / "run",
        isolate=False,
        progress=False,
    )
    assert calls(run_dir) == 4
    run_suite(
        TOY,
        {"x": [1, 2, 3], "behaviour": ["ok", "raise"]},
        resume_dir=run_dir,
        isolate=False,
        progress=False,
    )
    assert calls(run_dir) == 6  # only x=3's two cells ran
    ids = [r["cell_id"] for r in read_rows(run_dir)]
    assert sorted(ids) == sorted(set(ids)) and len(ids) == 6
    run_suite(
        TOY,
        {"x": [1, 2, 3], "behaviour": ["ok", "raise"]},
        resume_dir=run_dir,
        isolate=False,
        progress=False,
        retry_failed=True,
    )
    assert calls(run_dir) == 9  # the three error cells again, nothing else
    rows = read_rows(run_dir)
    assert len(rows) == 6 and sum(r["status"] == "error" for r in rows) == 3


def test_interrupted_run_keeps_its_rows_and_resume_finishes(tmp_path, capsys):
    with pytest.raises(KeyboardInterrupt):
        run_suite(
            TOY,
            None,
            out_dir=tmp_path / "run",
            quick=False,
            isolate=False,
            progress=False,
            options={"interrupt_at": 3},
        )
    run_dir = tmp_path / "run"
    assert [r["x"] for r in read_rows(run_dir)] == ["1", "2"]
    assert f"--resume {run_dir}" in capsys.readouterr().err
    run_suite(TOY, None, resume_dir=run_dir, isolate=False, progress=False)  # axes from env.json
    assert [r["x"] for r in read_rows(run_dir)] == ["1", "2", "3"]
    assert calls(run_dir) == 4  # x=1, x=2, the interrupted x=3, then x=3 again


def test_report_failure_is_printed_not_fatal(tmp_path, capsys):
    def broken_report(table, run_dir):
        raise RuntimeError("no plot today")

    suite = Suite("toy", "", TOY.axes, toy_measure, report=broken_report)
    run_dir = run_suite(suite, {"x": [1]}, out_dir=tmp_path / "run", isolate=False, progress=False)
    captured = capsys.readouterr()
    assert "report failed (RuntimeError: no plot today)" in captured.err
    assert str(run_dir) in captured.out
    assert len(read_rows(run_dir)) == 1


def reuse_unless_x_is_2(cell) -> bool:
    return cell["x"] != 2


def test_reusable_cells_share_a_worker_and_a_failed_worker_is_replaced(tmp_path):
    reusing = Suite(
        "reuse", "", TOY.axes, toy_measure, cell_timeout_s=4, reuse_worker=reuse_unless_x_is_2
    )
    run_dir = run_suite(
        reusing,
        {"x": [1, 3, 4, 2, 5, 6, 7, 8], "behaviour": ["ok"]},
        out_dir=tmp_path / "ok",
        workers=1,
        reuse_workers=True,
        progress=False,
    )
    pid = {int(r["x"]): r["worker_pid"] for r in read_rows(run_dir)}
    assert pid[1] == pid[3] == pid[4] != pid[2]  # x=2 gets a worker of its own
    assert pid[5] == pid[6] == pid[7] == pid[8] not in (pid[1], pid[2])
    seeds = {r["seed_draw"] for r in read_rows(run_dir)}
    assert len(seeds) == 1  # every cell starts from the run's seed, shared worker or not

    run_dir = run_suite(
        reusing,
        {"x": [1, 3], "behaviour": ["exit", "hang", "ok"]},
        out_dir=tmp_path / "failing",
        workers=1,
        reuse_workers=True,
        progress=False,
    )
    rows = {(int(r["x"]), r["behaviour"]): r for r in read_rows(run_dir)}
    assert "exit code 3" in rows[1, "exit"]["reason"]
    assert rows[1, "hang"]["reason"] == "timed out after 4 s"
    assert rows[1, "ok"]["status"] == rows[3, "ok"]["status"] == "ok"
    assert len(rows) == 6

    run_dir = run_suite(  # a cell that raised may have broken its process: not reused
        reusing,
        {"x": [1, 3], "behaviour": ["ok", "raise"]},
        out_dir=tmp_path / "raising",
        workers=1,
        reuse_workers=True,
        progress=False,
    )
    rows = {(int(r["x"]), r["behaviour"]): r for r in read_rows(run_dir)}
    assert rows[1, "raise"]["status"] == rows[3, "raise"]["status"] == "error"
    assert rows[1, "ok"]["worker_pid"] != rows[3, "ok"]["worker_pid"]  # x=1's worker raised

    run_dir = run_suite(  # with reuse_workers off every cell has a worker of its own
        reusing, {"x": [1, 3], "behaviour": ["ok"]}, out_dir=tmp_path / "own",
        reuse_workers=False, progress=False,
    )  # fmt: skip
    assert len({r["worker_pid"] for r in read_rows(run_dir)}) == 2
    run_dir = run_suite(  # a suite that lets cells share a worker does so by default
        reusing, {"x": [1, 3], "behaviour": ["ok"]}, out_dir=tmp_path / "default", progress=False
    )
    assert len({r["worker_pid"] for r in read_rows(run_dir)}) == 1


def test_a_resumed_run_keeps_its_worker_mode_unless_told(tmp_path):
    reusing = Suite("reuse", "", TOY.axes, toy_measure, reuse_worker=reuse_unless_x_is_2)
    run_dir = run_suite(
        reusing, {"x": [1], "behaviour": ["ok"]}, out_dir=tmp_path / "run", reuse_workers=True,
        progress=False,
    )  # fmt: skip
    run_suite(reusing, {"x": [1, 3, 4], "behaviour": ["ok"]}, resume_dir=run_dir, progress=False)
    pids = {int(r["x"]): r["worker_pid"] for r in read_rows(run_dir)}
    assert pids[3] == pids[4]  # the resumed cells shared a worker, as the run's first ones did
    env = json.loads((run_dir / "env.json").read_text())
    assert env["run"]["reuse_workers"] is True
    assert env["resumes"][-1]["run"]["reuse_workers"] is True
    run_suite(
        reusing, {"x": [1, 3, 4, 5, 6], "behaviour": ["ok"]}, resume_dir=run_dir,
        reuse_workers=False, progress=False,
    )  # fmt: skip
    pids = {int(r["x"]): r["worker_pid"] for r in read_rows(run_dir)}
    assert pids[5] != pids[6]  # told otherwise: a worker per cell
    env = json.loads((run_dir / "env.json").read_text())
    assert env["resumes"][-1]["run"]["reuse_workers"] is False


def test_every_registered_suite_pickles_for_its_workers():
    """Workers receive the suite by pickle: every callable on it must be a module-level name."""
    import pickle

    from suites import SUITE_MODULES, get_suite

    for name in SUITE_MODULES:
        suite = get_suite(name)
        assert pickle.loads(pickle.dumps(suite)).name == name


@pytest.mark.parametrize("isolate", [True, False])
def test_stop_after_starts_no_more_cells_and_resume_finishes(tmp_path, capsys, isolate):
    """Cells under way finish, no new one starts, the report is written; --resume does the rest."""
    slow = Suite("slow", "", TOY.axes, slow_measure, cell_timeout_s=30)
    run_dir = run_suite(
        slow,
        {"x": [1, 2, 3, 4], "behaviour": ["ok"]},
        out_dir=tmp_path / "run",
        stop_after_s=0.5,
        isolate=isolate,
        progress=False,
    )
    done = [int(r["x"]) for r in read_rows(run_dir)]
    assert 1 <= len(done) < 4 and done == sorted(done)
    assert "(--stop-after)" in capsys.readouterr().out
    assert json.loads((run_dir / "env.json").read_text())["cells_not_run"] == 4 - len(done)
    run_suite(slow, out_dir=None, resume_dir=run_dir, isolate=isolate, progress=False)
    assert sorted(int(r["x"]) for r in read_rows(run_dir)) == [1, 2, 3, 4]


def slow_measure(cell, ctx):
    time.sleep(0.4)
    return {"value": cell["x"]}


def progress_measure(cell, ctx):
    return {"progress_seen": ctx.progress}


@pytest.mark.parametrize("progress", [True, False])
def test_cells_learn_whether_progress_bars_are_wanted(tmp_path, progress):
    """--no-progress reaches the cells too (the accuracy suite's training bar follows it)."""
    suite = Suite("toy", "", TOY.axes, progress_measure)
    run_dir = run_suite(
        suite, {"x": [1]}, out_dir=tmp_path / "run", isolate=False, progress=progress
    )
    assert [r["progress_seen"] for r in read_rows(run_dir)] == [str(progress)]


def _oom_holding(cell, ctx):
    """A cell that runs out of memory while it holds a tensor (weakly referenced in HELD)."""
    tensor = torch.ones(4)
    HELD.append(weakref.ref(tensor))
    raise torch.OutOfMemoryError("CUDA out of memory (simulated)")


HELD: list = []


def test_an_in_process_oom_frees_device_memory_after_the_cell_has_let_go_of_it(
    monkeypatch, tmp_path
):
    from suites.engine import runner, timing
    from suites.engine.suite import CellContext

    alive_when_freed = []
    monkeypatch.setattr(
        timing, "free_device_memory", lambda device: alive_when_freed.append(HELD[-1]() is not None)
    )
    suite = Suite("oom", "", TOY.axes, _oom_holding)
    ctx = CellContext(device="cpu", run_dir=tmp_path, cell_id="x=1")
    outcome = runner.measure_cell(suite, {"x": 1, "behaviour": "ok"}, ctx)
    assert outcome.status == "oom"
    assert alive_when_freed == [False]  # freed once, when the failed cell's tensors were gone


def options_measure(cell, ctx):
    return {"options_seen": json.dumps(dict(ctx.options)), "seed_seen": ctx.seed}


def test_a_resumed_run_measures_with_its_own_seed_and_options(tmp_path):
    suite = Suite("opts", "", TOY.axes, options_measure, option_kinds={"timed_steps": int})
    first = {"x": [1, 2], "behaviour": ["ok"]}
    run_dir = run_suite(
        suite, first, out_dir=tmp_path / "run", isolate=False, progress=False,
        seed=7, options={"timed_steps": "50"},
    )  # fmt: skip
    run_suite(  # two more cells, resumed with neither seed nor options given
        suite, {"x": [1, 2, 3, 4], "behaviour": ["ok"]}, resume_dir=run_dir, isolate=False,
        progress=False,
    )  # fmt: skip
    rows = read_rows(run_dir)
    assert {(r["options_seen"], r["seed_seen"]) for r in rows} == {('{"timed_steps": "50"}', "7")}
    assert len(rows) == 4
    for changed, message in (
        ({"options": {"timed_steps": "20"}}, r"--option \{'timed_steps': '20'\} differs"),
        ({"seed": 3}, r"--seed 3 differs from the run's own 7"),
    ):
        with pytest.raises(ResumeMismatch, match=message):
            run_suite(suite, resume_dir=run_dir, isolate=False, progress=False, **changed)
    run_suite(  # the same settings given again are fine
        suite, resume_dir=run_dir, isolate=False, progress=False, seed=7,
        options={"timed_steps": "50"},
    )  # fmt: skip


def test_resumed_settings_refuse_another_device():
    with pytest.raises(ResumeMismatch, match="measured on cuda; cannot resume it on cpu"):
        resumed_settings({"device": "cuda", "seed": 0, "options": {}}, "cpu", None, None)
