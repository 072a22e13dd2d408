"""The matrix runner: expand a suite's cells, measure each in its own worker, keep every row.

One worker process per cell by default (a clean CUDA context and an exact peak-memory reading);
with ``reuse_workers`` (``--reuse-workers``) the cells a suite's ``reuse_worker`` accepts share one
(the latency, scaling and profile suites' eager cells, which then skip a process and a CUDA start
each);
workers fork from a ``forkserver`` that has imported torch and the suite once, so a cell starts in
a fraction of a second (the server never touches CUDA; ``spawn`` where forkserver is missing); an OOM, a crash, a hang or a skip costs that cell only and becomes a row with a status.
The parent process is the only writer of ``rows.csv`` and writes it the moment a cell ends, so
an interrupted run keeps every finished row and ``resume_dir`` picks up where it stopped.
Several GPUs: one worker per GPU, each pinned through ``CUDA_VISIBLE_DEVICES``; on the CPU,
``workers`` runs that many cells at once (mostly for tests of the parallel path).
"""

from __future__ import annotations

import csv
import faulthandler
import json
import math
import multiprocessing as mp
import os
import random
import signal
import sys
import time
import traceback
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from suites.engine.environment import collect_environment, git_state, utc_now, write_json
from suites.engine.suite import Cell, CellContext, CellSkipped, Row, Suite, cell_id

STATUSES = ("ok", "oom", "error", "skipped")
FAILED = ("oom", "error")
# a reusable worker measures the next cell only after these: an error may leave the process broken
# (a sticky CUDA error fails every later kernel), so the next cell gets a fresh worker
REUSABLE_AFTER = ("ok", "skipped", "oom")
RUNNER_COLUMNS = ("cell_id", "status", "reason")
TRAILING_COLUMNS = ("device_name", "gpu_index", "wall_s", "finished_utc")
ROWS_FILE = "rows.csv"
ENV_FILE = "env.json"


@dataclass
class CellOutcome:
    """What measuring one cell produced: its rows (ok) or why there are none."""

    status: str
    reason: str = ""
    rows: list[Row] = field(default_factory=list)
    traceback: str = ""
    device_name: str = ""
    wall_s: float = 0.0


def one_line(text: str, limit: int = 500) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def device_name(device: str) -> str:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    from suites.engine.environment import cpu_name

    return cpu_name()


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def measure_cell(suite: Suite, cell: Cell, ctx: CellContext) -> CellOutcome:
    """Run ``suite.measure`` on one cell and classify how it ended (KeyboardInterrupt propagates)."""
    from suites.engine.meters import is_out_of_memory
    from suites.engine.timing import free_device_memory

    seed_everything(ctx.seed)
    start = time.perf_counter()
    try:
        name = device_name(ctx.device)
    except Exception as exc:
        name = f"unknown ({type(exc).__name__})"
    try:
        result = suite.measure(dict(cell), ctx)
        rows = list(result) if isinstance(result, list | tuple) else [result]
        outcome = CellOutcome("ok", rows=[dict(r) for r in rows])
    except CellSkipped as exc:
        outcome = CellOutcome("skipped", reason=one_line(str(exc)))
    except Exception as exc:
        status = "oom" if is_out_of_memory(exc) else "error"
        outcome = CellOutcome(
            status,
            reason=one_line(f"{type(exc).__name__}: {exc}"),
            traceback=traceback.format_exc(),
        )
    if outcome.status == "oom":  # an in-process run goes on with the next cell; freed here, once
        free_device_memory(ctx.device)  # the exception (and the cell's tensors) is released
    outcome.device_name = name
    outcome.wall_s = time.perf_counter() - start
    return outcome


def _worker_main(
    conn: Connection,
    jobs: Connection | None,
    suite: Suite,
    cell: Cell,
    ctx: CellContext,
    cuda_visible: str | None,
) -> None:
    """Entry point of a worker process: measure ``cell``, send the outcome; a reusable worker
    (``jobs`` given) then measures each ``(cell, ctx)`` it receives there, until ``None``."""
    from suites.engine.timing import free_device_memory

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and ends workers
    stack_dump_s = float(os.environ.get("FAVIT_BENCH_STACK_DUMP_S", "0"))
    if stack_dump_s > 0:  # debugging a slow or hung cell: print every thread's stack periodically
        faulthandler.dump_traceback_later(stack_dump_s, repeat=True)
    if cuda_visible is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = cuda_visible
    while True:
        outcome = measure_cell(suite, cell, ctx)
        try:
            conn.send(outcome)
        except Exception as exc:  # an unpicklable row: report it instead of dying silently
            conn.send(
                CellOutcome(
                    "error",
                    reason=one_line(f"row could not be sent: {type(exc).__name__}: {exc}"),
                    device_name=outcome.device_name,
                    wall_s=outcome.wall_s,
                )
            )
        job = _next_job(jobs)
        if job is None:
            break
        cell, ctx = job
        free_device_memory(ctx.device)  # the last cell's cached blocks go back before the next
    conn.close()


def _next_job(jobs: Connection | None) -> tuple[Cell, CellContext] | None:
    if jobs is None:
        return None
    try:
        return jobs.recv()
    except (EOFError, OSError):  # the parent is gone
        return None


def _format_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


class RowsFile:
    """``rows.csv``, written by one process: appended while the columns stay the same, rewritten
    atomically (temp file + ``os.replace``) when a row brings new columns; flushed to disk each time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.columns: list[str] = []
        self.rows: list[dict[str, str]] = []
        if path.exists():
            with path.open(newline="") as f:
                reader = csv.DictReader(f)
                self.columns = list(reader.fieldnames or [])
                self.rows = [dict(r) for r in reader]

    def finished(self, statuses: Iterable[str]) -> set[str]:
        wanted = set(statuses)
        return {r["cell_id"] for r in self.rows if r.get("status") in wanted}

    def add(self, rows: Sequence[Row]) -> None:
        text_rows = [{k: _format_value(v) for k, v in row.items()} for row in rows]
        new_columns = [c for r in text_rows for c in r if c not in self.columns]
        self.rows.extend(text_rows)
        if new_columns or not self.path.exists():
            self.columns.extend(dict.fromkeys(new_columns))
            self._rewrite()
            return
        with self.path.open("a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.columns, restval="")
            writer.writerows(text_rows)
            f.flush()
            os.fsync(f.fileno())

    def drop(self, cell_ids: set[str]) -> None:
        self.rows = [r for r in self.rows if r.get("cell_id") not in cell_ids]
        self._rewrite()

    def _rewrite(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.columns, restval="")
            writer.writeheader()
            writer.writerows(self.rows)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)


def outcome_rows(cell: Cell, cid: str, outcome: CellOutcome, gpu_index: int | None) -> list[Row]:
    """The rows of one finished cell: runner columns, axis values, measured values, trailer."""
    measured = outcome.rows if outcome.status == "ok" else [{}]
    reserved = set(RUNNER_COLUMNS) | set(TRAILING_COLUMNS) | set(cell)
    rows = []
    for values in measured:
        row: Row = {"cell_id": cid, "status": outcome.status, "reason": outcome.reason, **cell}
        row.update({k: v for k, v in values.items() if k not in reserved})
        row.update(
            device_name=outcome.device_name,
            gpu_index=gpu_index,
            wall_s=round(outcome.wall_s, 3),
            finished_utc=utc_now(),
        )
        rows.append(row)
    return rows


@dataclass
class _Worker:
    process: Any
    outcomes: Connection  # the worker sends each cell's CellOutcome here
    jobs: Connection | None  # a reusable worker's next (cell, ctx), or None to stop; else None

    def stop(self) -> None:
        """End an idle reusable worker: ask it to stop, kill it if it does not."""
        try:
            if self.jobs is not None:
                self.jobs.send(None)
        except (BrokenPipeError, OSError):
            pass
        self.process.join(timeout=30)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.close()

    def kill(self) -> None:
        self.process.kill()
        self.process.join()
        self.close()

    def close(self) -> None:
        self.outcomes.close()
        if self.jobs is not None:
            self.jobs.close()


@dataclass
class _Running:
    worker: _Worker
    cell: Cell
    cid: str
    gpu_index: int | None
    deadline: float


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``; ``cuda`` without one is an error."""
    import torch

    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"bad device {device!r}; valid: auto, cpu, cuda")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            "device 'cuda' requested but no CUDA GPU is visible; valid here: auto, cpu"
        )
    return device


def _cuda_visible_entry(index: int) -> str:
    """The ``CUDA_VISIBLE_DEVICES`` value that pins a worker to the parent's visible GPU ``index``."""
    entries = [
        e.strip() for e in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if e.strip()
    ]
    return entries[index] if entries and index < len(entries) else str(index)


def default_run_dir(suite_name: str) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    path = Path("results") / "runs" / f"{suite_name}-{stamp}"
    n = 1
    while path.exists():
        n += 1
        path = Path("results") / "runs" / f"{suite_name}-{stamp}-{n}"
    return path


class ResumeMismatch(ValueError):
    """A resumed run was asked to measure with another device, seed or options than its rows."""


def previous_run_record(run_dir: Path) -> dict[str, Any]:
    """The ``run`` record of ``run_dir``'s ``env.json`` (axes, profile, device, seed, options...)."""
    env_path = Path(run_dir) / ENV_FILE
    return json.loads(env_path.read_text()).get("run", {}) if env_path.exists() else {}


def resumed_axes(
    previous_run: Mapping[str, Any], overrides: Mapping[str, Sequence[Any]] | None
) -> Mapping[str, Sequence[Any]] | None:
    """The axes a resumed run expands: the given ones, else the run's own."""
    return previous_run.get("axes") if overrides is None else overrides


def is_quick_profile(
    quick: bool | None, device: str, previous_run: Mapping[str, Any] | None = None
) -> bool:
    """The profile a run expands: the given one, else a resumed run's own, else quick on the CPU."""
    if quick is None and previous_run and "quick" in previous_run:
        quick = bool(previous_run["quick"])
    return (device == "cpu") if quick is None else quick


def failed_cells(rows_file: RowsFile) -> set[str]:
    """Cells whose every row failed (``oom``/``error``): what ``--retry-failed`` measures again."""
    return rows_file.finished(FAILED) - rows_file.finished(("ok", "skipped"))


def pending_cells(
    cells: Sequence[Cell], rows_file: RowsFile, retry_failed: bool = False
) -> list[tuple[Cell, str]]:
    """``(cell, cell_id)`` of the cells without a row yet (or with failed ones, when retrying)."""
    done = rows_file.finished(STATUSES)
    if retry_failed:
        done -= failed_cells(rows_file)
    return [(cell, cid) for cell in cells if (cid := cell_id(cell)) not in done]


def resumed_settings(
    previous_run: Mapping[str, Any],
    device: str,
    options: Mapping[str, Any] | None,
    seed: int | None,
) -> tuple[dict[str, Any], int | None]:
    """The options and seed a resumed run measures with: its own, from ``env.json``'s ``run``.

    Giving none keeps them; giving the same is fine; giving others, or resuming on another device,
    raises ``ResumeMismatch`` (one line): the new rows would not be comparable with the old.
    """
    kept_options = dict(previous_run.get("options") or {})
    kept_seed = previous_run.get("seed", seed)
    ran_on = previous_run.get("device", device)
    if ran_on != device:
        raise ResumeMismatch(f"the run was measured on {ran_on}; cannot resume it on {device}")
    if options and dict(options) != kept_options:
        raise ResumeMismatch(
            f"--option {dict(options)} differs from the run's own {kept_options or 'none'}; "
            "a resumed run keeps its options (leave --option out)"
        )
    if seed is not None and kept_seed is not None and seed != kept_seed:
        raise ResumeMismatch(
            f"--seed {seed} differs from the run's own {kept_seed}; a resumed run keeps its seed"
        )
    return kept_options, kept_seed


def run_suite(
    suite: Suite,
    overrides: Mapping[str, Sequence[Any]] | None = None,
    *,
    out_dir: str | Path | None = None,
    resume_dir: str | Path | None = None,
    device: str = "auto",
    quick: bool | None = None,
    isolate: bool | None = None,
    cell_timeout_s: float | None = None,
    stop_after_s: float | None = None,
    reuse_workers: bool | None = None,
    gpus: Sequence[int] | None = None,
    workers: int | None = None,
    seed: int | None = None,
    options: Mapping[str, Any] | None = None,
    progress: bool = True,
    retry_failed: bool = False,
) -> Path:
    """Measure every cell of ``suite`` and return the run's folder (``rows.csv``, ``env.json``, report).

    ``overrides`` maps axis names to the values to use instead of the profile's. ``quick`` defaults
    to True on the CPU. ``resume_dir`` continues a run: cells with a row are skipped (``oom``/``error``
    ones re-run when ``retry_failed``), axes and profile come from its ``env.json`` unless given,
    and its device, seed (default 0) and options are kept: ``ResumeMismatch`` when others are given,
    so that every row of a run is measured alike.
    ``gpus`` (CUDA; default all visible) or ``workers`` (CPU; default 1) cells run in parallel when
    isolated. ``isolate=False`` measures in this process (no time limit then). Ctrl-C raises
    ``KeyboardInterrupt`` after ending the workers; every finished row is already on disk.
    ``reuse_workers``: cells that ``suite.reuse_worker`` accepts share a worker (each then skips a
    process and a CUDA start, but not a clean CUDA context); default off, and a resumed run keeps
    its own unless given (recorded in ``env.json``'s ``run``). ``stop_after_s``: no cell starts once
    that many seconds have passed; the cells under way
    finish and the run ends as a finished one would (report written), naming the cells left.
    """
    import torch

    device = resolve_device(device)
    previous_run: dict[str, Any] = {}
    if resume_dir is not None:
        run_dir = Path(resume_dir)
        if not run_dir.is_dir():
            raise FileNotFoundError(f"cannot resume {str(run_dir)!r}: no such folder")
        previous_run = previous_run_record(run_dir)
        overrides = resumed_axes(previous_run, overrides)
        options, seed = resumed_settings(previous_run, device, options, seed)
        if reuse_workers is None:
            reuse_workers = bool(previous_run.get("reuse_workers", False))
    else:
        run_dir = Path(out_dir) if out_dir is not None else default_run_dir(suite.name)
    run_dir.mkdir(parents=True, exist_ok=True)
    seed = 0 if seed is None else seed
    reuse_workers = bool(reuse_workers)
    quick = is_quick_profile(quick, device, previous_run)
    isolate = suite.isolate if isolate is None else isolate
    timeout_s = float(cell_timeout_s if cell_timeout_s is not None else suite.cell_timeout_s)
    overrides = {k: list(v) for k, v in (overrides or {}).items()}
    cells = suite.cells(overrides, quick=quick)

    if device == "cuda":
        visible = torch.cuda.device_count()
        slots: list[int | None] = list(gpus) if gpus else list(range(visible))
        bad = [g for g in slots if not 0 <= g < visible]
        if bad:
            raise ValueError(
                f"bad GPU index {bad[0]}; valid: {', '.join(map(str, range(visible)))}"
            )
    else:
        if gpus:
            raise ValueError("--gpus needs device cuda; this run is on the CPU")
        slots = [None] * max(1, workers or 1)
    if not isolate:
        slots = slots[:1]

    axes = {a.name: overrides.get(a.name, a.values(quick)) for a in suite.axes}
    run_record = {
        "suite": suite.name,
        "axes": axes,
        "quick": quick,
        "device": device,
        "seed": seed,
        "isolate": isolate,
        "reuse_workers": reuse_workers,
        "gpus": [s for s in slots if s is not None],
        "workers": len(slots),
        "cell_timeout_s": timeout_s,
        "options": dict(options or {}),
        "num_cells": len(cells),
    }
    env_path = run_dir / ENV_FILE
    if resume_dir is not None and env_path.exists():
        env = json.loads(env_path.read_text())
        env.setdefault("resumes", []).append(
            {
                "started_utc": utc_now(),
                "command": [sys.executable, *sys.argv],
                "git": git_state(),
                "run": run_record,
            }
        )
    else:
        env = collect_environment(run_record)
    write_json(env, env_path)

    rows_file = RowsFile(run_dir / ROWS_FILE)
    if retry_failed and (failed := failed_cells(rows_file)):
        rows_file.drop(failed)
    pending = deque(pending_cells(cells, rows_file))
    counts = {s: 0 for s in STATUSES}

    from tqdm.auto import tqdm

    bar = tqdm(
        total=len(cells),
        initial=len(cells) - len(pending),
        unit="cell",
        desc=suite.name,
        disable=not progress,
        dynamic_ncols=True,
    )

    def record(cell: Cell, cid: str, outcome: CellOutcome, gpu_index: int | None) -> None:
        if outcome.traceback:
            err_dir = run_dir / "errors"
            err_dir.mkdir(exist_ok=True)
            (err_dir / f"{cid}.txt").write_text(outcome.traceback)
        rows_file.add(outcome_rows(cell, cid, outcome, gpu_index))
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
        bar.update(1)
        bar.set_postfix_str(f"{cid}: {outcome.status}", refresh=True)

    def context(cid: str, dev: str) -> CellContext:
        return CellContext(
            device=dev,
            run_dir=run_dir,
            cell_id=cid,
            quick=quick,
            seed=seed,
            options=dict(options or {}),
            progress=progress,
        )

    running: dict[int, _Running] = {}
    stop_at = math.inf if stop_after_s is None else time.monotonic() + stop_after_s
    try:
        dev = "cpu" if slots[0] is None else f"cuda:{slots[0]}"
        for cell, cid in [
            job for job in pending if not isolate or (suite.in_process and suite.in_process(job[0]))
        ]:
            if time.monotonic() >= stop_at:
                break
            pending.remove((cell, cid))
            record(cell, cid, measure_cell(suite, cell, context(cid, dev)), slots[0])
        if pending and time.monotonic() < stop_at:
            reusable = suite.reuse_worker if reuse_workers else None
            _run_isolated(
                suite, pending, slots, running, context, record, timeout_s, stop_at, reusable
            )
    except KeyboardInterrupt:
        for job in running.values():
            job.worker.kill()
        bar.close()
        print(
            f"\nInterrupted: {len(rows_file.rows)} rows kept in {run_dir / ROWS_FILE}; "
            f"{len(pending) + len(running)} cells not run. Resume with: python bench.py --resume {run_dir}",
            file=sys.stderr,
        )
        raise
    bar.close()

    env = json.loads(env_path.read_text())
    env["finished_utc"] = utc_now()
    env["cells_not_run"] = len(pending)  # > 0 only when --stop-after ended the run early
    write_json(env, env_path)
    write_report(suite, run_dir)
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    print(f"{suite.name}: {summary or 'nothing to run'}; results in {run_dir}")
    if pending:
        print(
            f"Stopped after {stop_after_s:g} s (--stop-after): {len(pending)} cells not run. "
            f"Resume with: python bench.py --resume {run_dir}"
        )
    for path in sorted(run_dir.iterdir()):
        if path.is_file() and path.suffix in (".csv", ".json", ".md"):
            print(f"  {path}")
    return run_dir


def _worker_context(suite: Suite):
    """A multiprocessing context whose workers start with torch and the suite already imported."""
    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    context = mp.get_context("forkserver")
    # importing is all the server does: CUDA stays uninitialized, so each forked worker gets its own
    context.set_forkserver_preload(["torch", suite.measure.__module__])
    return context


def _run_isolated(
    suite, pending, slots, running, context, record, timeout_s, stop_at=math.inf, reusable=None
) -> None:
    """Keep one worker per slot busy until every pending cell has an outcome, or until
    ``stop_at`` (``time.monotonic``) has passed and the cells under way have ended.

    A cell gets a fresh worker, unless ``reusable`` (a suite's ``reuse_worker``) takes it and the
    slot's last worker is a reusable one whose cell ended ``REUSABLE_AFTER`` (ok, skipped or oom):
    that worker measures it next. A worker whose cell raised an error, crashed or timed out is
    never reused.
    """
    spawn = _worker_context(suite)
    idle: dict[int, _Worker] = {}  # reusable workers waiting for their next cell, by slot
    try:
        while running or (pending and time.monotonic() < stop_at):
            for slot, gpu in enumerate(slots):
                if slot in running or not pending or time.monotonic() >= stop_at:
                    continue
                cell, cid = pending.popleft()
                dev = "cpu" if gpu is None else "cuda:0"
                shared = reusable is not None and reusable(cell)
                worker = idle.pop(slot, None)
                if worker is not None and not shared:
                    worker.stop()
                    worker = None
                if worker is not None:
                    worker.jobs.send((cell, context(cid, dev)))
                else:
                    pin = None if gpu is None else _cuda_visible_entry(gpu)
                    worker = _start_worker(spawn, suite, cell, context(cid, dev), pin, shared)
                running[slot] = _Running(worker, cell, cid, gpu, time.monotonic() + timeout_s)
            if not running:  # the stop time passed before any cell could start
                break
            nearest = min(job.deadline for job in running.values())
            wait(
                [job.worker.outcomes for job in running.values()]
                + [job.worker.process.sentinel for job in running.values()],
                timeout=max(0.05, min(1.0, nearest - time.monotonic())),
            )
            for slot, job in list(running.items()):
                process = job.worker.process
                outcome = None
                if job.worker.outcomes.poll():
                    try:
                        outcome = job.worker.outcomes.recv()
                    except (EOFError, OSError):
                        outcome = None
                if outcome is None and process.is_alive() and time.monotonic() < job.deadline:
                    continue
                del running[slot]
                if outcome is None:
                    if process.is_alive():  # past its deadline
                        job.worker.kill()
                        outcome = CellOutcome("error", reason=f"timed out after {timeout_s:g} s")
                    else:
                        job.worker.kill()  # already dead: reaps it
                        code = process.exitcode
                        how = (
                            f"signal {signal.Signals(-code).name}"
                            if code is not None and code < 0
                            else f"exit code {code}"
                        )
                        outcome = CellOutcome("error", reason=f"worker died without a row ({how})")
                elif (
                    job.worker.jobs is not None
                    and process.is_alive()
                    and outcome.status in REUSABLE_AFTER
                ):
                    idle[slot] = job.worker
                else:
                    job.worker.stop()
                record(job.cell, job.cid, outcome, job.gpu_index)
    finally:
        for worker in idle.values():
            worker.stop()


def _start_worker(spawn, suite, cell, ctx, cuda_visible, reusable) -> _Worker:
    """A worker process measuring ``cell`` first; ``reusable`` ones wait for more cells after it."""
    outcomes, outcome_sender = spawn.Pipe(duplex=False)
    jobs_receiver, jobs = spawn.Pipe(duplex=False) if reusable else (None, None)
    # not a daemon: a cell may start processes of its own (a decoding pool, DataLoader
    # workers); the parent kills its workers itself on a timeout or Ctrl-C
    process = spawn.Process(
        target=_worker_main, args=(outcome_sender, jobs_receiver, suite, cell, ctx, cuda_visible)
    )
    process.start()
    outcome_sender.close()
    if jobs_receiver is not None:
        jobs_receiver.close()
    return _Worker(process, outcomes, jobs)


def write_report(suite: Suite, run_dir: Path) -> bool:
    """Call the suite's report on the run's table; a failure is printed, never raised.

    Returns whether a report was written. Used at the end of every run and by ``bench.py report``.
    """
    if suite.report is None or not (run_dir / ROWS_FILE).exists():
        return False
    import pandas as pd

    try:
        table = pd.read_csv(run_dir / ROWS_FILE, keep_default_na=True)
        suite.report(table, run_dir)
        return True
    except Exception as exc:
        (run_dir / "errors").mkdir(exist_ok=True)
        (run_dir / "errors" / "report.txt").write_text(traceback.format_exc())
        print(
            f"report failed ({type(exc).__name__}: {one_line(str(exc))}); traceback in {run_dir / 'errors' / 'report.txt'}",
            file=sys.stderr,
        )
        return False
