"""The matrix runner: measure each cell of a plan in its own worker and keep every row.

One worker process per cell by default (a clean CUDA context and an exact peak-memory reading);
with ``reuse_workers`` (``--reuse-workers``) the cells a suite's ``reuse_worker`` accepts share one
(the latency, scaling and profile suites' eager cells, which then skip a process and a CUDA start
each). Workers fork from a ``forkserver`` that has imported torch and the suite once, so a cell
starts in a fraction of a second (the server never touches CUDA; ``spawn`` where forkserver is
missing). An OOM, a crash, a hang or a skip costs that cell only and becomes a row with a status.
The parent process is the only writer of ``rows.csv`` and writes it the moment a cell ends, so an
interrupted run keeps every finished row and ``--resume`` picks up where it stopped. Several GPUs:
one worker per GPU, each pinned through ``CUDA_VISIBLE_DEVICES``; on the CPU, ``workers`` runs
that many cells at once.
"""

from __future__ import annotations

import contextlib
import faulthandler
import gc
import math
import multiprocessing as mp
import os
import random
import select
import signal
import sys
import threading
import time
import traceback
import types
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from suites.engine.environment import collect_environment, git_state, utc_now
from suites.engine.plan import (
    STATUSES,
    RunPlan,
    RunRequest,
    failed_cells,
    pending_cells,
    plan_run,
)
from suites.engine.run_folder import (
    ROWS_FILE,
    RowsFile,
    RunFolderError,
    read_env,
    read_rows,
    write_env,
    write_error,
)
from suites.engine.suite import Cell, CellContext, CellSkipped, Row, Suite

# a reusable worker measures the next cell only after these: an error may leave the process broken
# (a sticky CUDA error fails every later kernel), so the next cell gets a fresh worker
REUSABLE_AFTER = ("ok", "skipped", "oom")
RUNNER_COLUMNS = ("cell_id", "status", "reason")
TRAILING_COLUMNS = ("device_name", "gpu_index", "wall_s", "finished_utc")


_IN_WORKER = False  # set in a worker process: a run started there is a mistake (``in_worker``)


def in_worker() -> bool:
    """Whether this process is one of the runner's workers."""
    return _IN_WORKER


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

    global _IN_WORKER
    _IN_WORKER = True
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and ends workers
    # the imports (torch, the suite) are hundreds of thousands of objects that live as long as the
    # worker: out of the collector's sight, a full collection (every timing round runs one) scans
    # only what the cells make, in milliseconds instead of a fifth of a second
    gc.collect()
    gc.freeze()
    stack_dump_s = float(os.environ.get("FAVIT_BENCH_STACK_DUMP_S", "0"))
    if stack_dump_s > 0:  # debugging a slow or hung cell: print every thread's stack periodically
        faulthandler.dump_traceback_later(stack_dump_s, repeat=True)
    if cuda_visible is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = cuda_visible
    _exit_with_parent(conn)
    while True:
        outcome = measure_cell(suite, cell, ctx)
        if not _send_outcome(conn, outcome):
            return  # the parent is gone: nobody reads the outcome
        job = _next_job(jobs)
        if job is None:
            break
        cell, ctx = job
        free_device_memory(ctx.device)  # the last cell's cached blocks go back before the next
    conn.close()


def _send_outcome(conn: Connection, outcome: CellOutcome) -> bool:
    """Send a cell's outcome to the parent; False (quietly) when the parent is gone."""
    try:
        try:
            conn.send(outcome)
        except OSError:
            raise
        except Exception as exc:  # an unpicklable row: report it instead of dying silently
            conn.send(
                CellOutcome(
                    "error",
                    reason=one_line(f"row could not be sent: {type(exc).__name__}: {exc}"),
                    device_name=outcome.device_name,
                    wall_s=outcome.wall_s,
                )
            )
    except OSError:  # a broken pipe: the parent died
        return False
    return True


def _exit_with_parent(conn: Connection) -> None:
    """End this worker quietly once its parent is gone (killed, say): a cell whose outcome
    nobody reads would hold its device and race a resumed run for the cell's files. The parent
    holds the only read end of ``conn``'s pipe, so the write end reports an error (``POLLERR``)
    exactly when the parent has closed it or died."""
    if not hasattr(select, "poll"):
        return
    poller = select.poll()
    poller.register(conn.fileno(), 0)  # no events asked for: only errors and hang-ups wake it

    def watch() -> None:
        poller.poll()
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _next_job(jobs: Connection | None) -> tuple[Cell, CellContext] | None:
    if jobs is None:
        return None
    try:
        return jobs.recv()
    except (EOFError, OSError):  # the parent is gone
        return None


def model_identity(cell: Cell) -> Row:
    """``model_id`` of a cell's ``model`` (the library-qualified name it is built from, e.g.
    ``timm:pvt_v2_b1``: ``baselines.info``), so rows join with other benchmarks' tables; empty
    for a cell without a model axis or with a value ``baselines`` does not know."""
    if "model" not in cell:
        return {}
    import baselines

    try:
        return {"model_id": baselines.info(str(cell["model"])).model_id}
    except ValueError:
        return {}


def outcome_rows(cell: Cell, cid: str, outcome: CellOutcome, gpu_index: int | None) -> list[Row]:
    """The rows of one finished cell: runner columns, axis values and the model's id, measured
    values, trailer."""
    measured = outcome.rows if outcome.status == "ok" else [{}]
    identity = model_identity(cell)
    reserved = set(RUNNER_COLUMNS) | set(TRAILING_COLUMNS) | set(cell) | set(identity)
    rows = []
    for values in measured:
        row: Row = {"cell_id": cid, "status": outcome.status, "reason": outcome.reason, **cell}
        row.update(identity)
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


def _cuda_visible_entry(index: int) -> str:
    """The ``CUDA_VISIBLE_DEVICES`` value that pins a worker to the parent's visible GPU ``index``."""
    entries = [
        e.strip() for e in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if e.strip()
    ]
    return entries[index] if entries and index < len(entries) else str(index)


def run_suite(
    suite: Suite,
    overrides: Mapping[str, Sequence[Any]] | None = None,
    *,
    progress: bool = True,
    **request: Any,
) -> Path:
    """Measure every cell of ``suite`` and return the run's folder (``rows.csv``, ``env.json``, report).

    ``overrides`` maps axis names to the values to use instead of the profile's; ``request`` holds
    the other fields of ``RunRequest`` (``out_dir``, ``resume_dir``, ``device``, ``quick``...), and
    ``plan_run`` decides the rest: ``PlanError`` (one line) when the run cannot start as asked.
    A resumed run skips cells with a row (failed ones re-run with ``retry_failed``) and keeps its
    device, seed, options, axes, profile and worker mode. Ctrl-C raises ``KeyboardInterrupt``
    after ending the workers; every finished row is already on disk. With ``stop_after_s`` no cell
    starts after that many seconds; the cells under way finish and the run ends as a finished
    one would (report written), naming the cells left.
    """
    plan = plan_run(RunRequest(suite, overrides, **request))
    return execute(plan, progress=progress).run_dir


@dataclass
class RunResult:
    """How a run went: its folder, and why it failed when every cell it measured failed."""

    run_dir: Path
    counts: dict[str, int]  # cells measured by this call, by status
    failure: str = ""  # one line when every cell measured failed (``status=error``)


def every_cell_failed(counts: Mapping[str, int], reasons: Sequence[str], rows: Path) -> str:
    """One line when every cell measured ended in an error (a bad input they share, mostly),
    else ``""``. A skipped cell, an out-of-memory one or a measured one is no failure."""
    measured = sum(counts.values())
    if not measured or counts.get("error", 0) < measured:
        return ""
    if len(set(reasons)) == 1:
        return f"every cell failed ({measured} of {measured}): {reasons[0]}"
    return (
        f"every cell failed ({measured} of {measured}), for {len(set(reasons))} reasons; "
        f"the first: {reasons[0]} (each in {rows})"
    )


def execute(plan: RunPlan, progress: bool = True) -> RunResult:
    """Measure the plan's pending cells, keeping every row; then the report and a summary.
    ``RunFolderError`` (one line) when the run folder cannot be written at all."""
    session_start = time.monotonic()
    try:
        plan.run_dir.mkdir(parents=True, exist_ok=True)
        _write_start_record(plan)
    except OSError as exc:  # a place the checks could not foresee: root on /sys, a full disk
        raise RunFolderError(
            f"cannot write the run folder {str(plan.run_dir)!r} ({exc.strerror or exc})"
        ) from None
    rows_file = plan.rows_file or RowsFile(plan.run_dir / ROWS_FILE)
    if rows_file.dropped_torn_line:
        print(
            f"{plan.run_dir / ROWS_FILE}: dropped a torn last line (a write cut short): "
            f"{one_line(rows_file.dropped_torn_line, 120)!r}",
            file=sys.stderr,
        )
    if plan.retry_failed and (failed := failed_cells(rows_file)):
        rows_file.drop(failed)
    pending = deque(pending_cells(plan.cells, rows_file))
    counts = dict.fromkeys(STATUSES, 0)
    reasons: list[str] = []  # of the cells that failed
    from tqdm.auto import tqdm

    bar = tqdm(
        total=len(plan.cells),
        initial=len(plan.cells) - len(pending),
        unit="cell",
        desc=plan.suite.name,
        disable=not progress,
        dynamic_ncols=True,
    )

    def record(cell: Cell, cid: str, outcome: CellOutcome, gpu_index: int | None) -> None:
        if outcome.traceback:
            write_error(plan.run_dir, cid, outcome.traceback)
        rows_file.add(outcome_rows(cell, cid, outcome, gpu_index))
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
        if outcome.status == "error":
            reasons.append(outcome.reason)
        bar.update(1)
        bar.set_postfix_str(f"{cid}: {outcome.status}", refresh=True)

    running: dict[int, _Running] = {}
    try:
        _measure_pending(plan, pending, running, record, progress)
    except KeyboardInterrupt:
        for job in running.values():
            job.worker.kill()
        bar.close()
        print(
            f"\nInterrupted: {len(rows_file.rows)} rows kept in {plan.run_dir / ROWS_FILE}; "
            f"{len(pending) + len(running)} cells not run. "
            f"Resume with: python bench.py --resume {plan.run_dir}",
            file=sys.stderr,
        )
        raise
    bar.close()
    write_report(plan.suite, plan.run_dir)
    _write_end_record(plan, cells_not_run=len(pending), wall_s=time.monotonic() - session_start)
    _print_summary(plan, counts, len(pending))
    return RunResult(
        plan.run_dir, counts, every_cell_failed(counts, reasons, plan.run_dir / ROWS_FILE)
    )


def _write_start_record(plan: RunPlan) -> None:
    """A new run's ``env.json``; a resumed run's gets a ``resumes`` entry instead."""
    if plan.resuming:
        env = read_env(plan.run_dir)
        env.setdefault("resumes", []).append(
            {
                "started_utc": utc_now(),
                "command": [sys.executable, *sys.argv],
                "git": git_state(),
                "run": plan.record(),
            }
        )
    else:
        env = collect_environment(plan.record())
    write_env(env, plan.run_dir)


def _write_end_record(plan: RunPlan, cells_not_run: int, wall_s: float) -> None:
    """``finished_utc``, the cells left, and ``wall_s``: the run's seconds from start to report,
    summed over its sessions that reached their end (a resumed session's own also in its
    ``resumes`` entry), the figure a dry run's estimate is checked against."""
    env = read_env(plan.run_dir)
    env["finished_utc"] = utc_now()
    env["cells_not_run"] = cells_not_run  # > 0 only when --stop-after ended the run early
    if plan.resuming and env.get("resumes"):
        env["resumes"][-1]["wall_s"] = round(wall_s, 3)
    env["wall_s"] = round(float(env.get("wall_s") or 0.0) + wall_s, 3)
    write_env(env, plan.run_dir)


def _measure_pending(plan: RunPlan, pending: deque, running: dict, record, progress: bool) -> None:
    """Cells that run in this process first (all of them without isolation), then the rest in
    workers; nothing starts once ``plan.stop_after_s`` has passed."""
    stop_at = math.inf if plan.stop_after_s is None else time.monotonic() + plan.stop_after_s

    def context(cid: str, dev: str) -> CellContext:
        return CellContext(
            device=dev,
            run_dir=plan.run_dir,
            cell_id=cid,
            quick=plan.quick,
            seed=plan.seed,
            options=dict(plan.options),
            progress=progress,
        )

    suite, slots = plan.suite, plan.slots
    dev = "cpu" if slots[0] is None else f"cuda:{slots[0]}"
    in_process = [
        job
        for job in pending
        if not plan.isolate or (suite.in_process is not None and suite.in_process(job[0]))
    ]
    for cell, cid in in_process:
        if time.monotonic() >= stop_at:
            return
        pending.remove((cell, cid))
        record(cell, cid, measure_cell(suite, cell, context(cid, dev)), slots[0])
    if pending and time.monotonic() < stop_at:
        reusable = suite.reuse_worker if plan.reuse_workers else None
        _run_isolated(
            suite, pending, slots, running, context, record, plan.timeout_s, stop_at, reusable
        )


def _print_summary(plan: RunPlan, counts: Mapping[str, int], not_run: int) -> None:
    """What the run measured and every file it wrote (tables, plots, rows, env)."""
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    print(f"{plan.suite.name}: {summary or 'nothing to run'}; results in {plan.run_dir}")
    if not_run:
        print(
            f"Stopped after {plan.stop_after_s:g} s (--stop-after): {not_run} cells not run. "
            f"Resume with: python bench.py --resume {plan.run_dir}"
        )
    print_files(plan.run_dir)


def print_files(run_dir: Path) -> None:
    """List a run folder's result files: tables, CSVs, JSON and plots."""
    for path in sorted(run_dir.iterdir()):
        if path.is_file() and path.suffix in (".csv", ".json", ".md", ".tex", ".png", ".pdf"):
            print(f"  {path}")


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


@contextlib.contextmanager
def _main_module_hidden() -> Iterator[None]:
    """Start a worker without the program that started the run.

    multiprocessing would have a spawned or forkserver worker import the parent's ``__main__``
    again (as ``__mp_main__``) before it runs; a script that calls the suite at its top level,
    without an ``if __name__ == "__main__":`` guard, would then start its run again in every
    worker, which dies trying. A worker needs nothing from ``__main__`` (suites, cells and models
    are named by importable modules), so the parent shows multiprocessing a bare one meanwhile.
    """
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


def _start_worker(spawn, suite, cell, ctx, cuda_visible, reusable) -> _Worker:
    """A worker process measuring ``cell`` first; ``reusable`` ones wait for more cells after it."""
    outcomes, outcome_sender = spawn.Pipe(duplex=False)
    jobs_receiver, jobs = spawn.Pipe(duplex=False) if reusable else (None, None)
    # not a daemon: a cell may start processes of its own (a decoding pool, DataLoader
    # workers); the parent kills its workers itself on a timeout or Ctrl-C
    process = spawn.Process(
        target=_worker_main, args=(outcome_sender, jobs_receiver, suite, cell, ctx, cuda_visible)
    )
    with _main_module_hidden():
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
    try:
        suite.report(read_rows(run_dir), run_dir)
        return True
    except Exception as exc:
        path = write_error(run_dir, "report", traceback.format_exc())
        print(
            f"report failed ({type(exc).__name__}: {one_line(str(exc))}); traceback in {path}",
            file=sys.stderr,
        )
        return False
