"""The paper suite (``--suite paper``): every table and figure a paper needs, from committed runs.

A report-only suite like ``claims``: one cell per results root (axis ``results``), in the parent
process. It reads the committed runs (``suites.analysis.results_index``, the same choice rule as the claims)
and writes into ``<results>/paper/`` and the run folder:

- ``main_table.md/.tex`` and ``main_table_sources.csv`` (the run, commit, device and seeds of each
  figure): model, params, GMACs (flops suite, 224x224), train and infer img/s (eager, and under CUDA
  graphs where measured), each beside its step time's CV, and eager training peak memory (latency
  suite, GPU, one stated setting; each cell from the newest run that has it), CIFAR-10 top-1 per
  training budget, the mean over the seeds trained (accuracy suite, GPU); blanks where not
  measured; the caption names the devices and the seeds (with one seed, the test set's sampling
  error); a top-1 that claim 4's rule leaves out as a ViT baseline (``claims.vit_not_counted``)
  is marked, its reason in the caption;
- ``memory_reduction.md/.tex``: ProbSparse's memory reduction per reading, level and comparison
  (memory suite), the device, implementation and dtype in the caption;
- ``scaling.png/.pdf`` (memory, and the GPU-bound rows' step time, against tokens, log-log) and
  ``scaling_exponents.md/.tex`` (scaling suite);
- ``accuracy_vs_cost.png/.pdf``: top-1 against GMACs and against training time (accuracy suite);
- ``README.md``: what each file is and which run it came from (relative links).

Numbers are formatted by one table of digits per column kind (``DIGITS``); figures use
``suites.engine.render.plot_style`` and ``save_figure`` (PDF without dates). Same results, same files.
"""

from __future__ import annotations

import math
import shutil
import sys
from pathlib import Path

import pandas as pd

from suites.analysis.claims import reduction_summary, vit_not_counted, with_readings
from suites.analysis.results_index import (
    ResultsError,
    choose_rows_per_key,
    choose_run,
    relative_link,
    results_root_axis,
)
from suites.analysis.trainings import accuracy_rows, binomial_points
from suites.analysis.verdicts import joined
from suites.engine.render import (
    log_x_at_values,
    log_x_if_wide,
    model_palette,
    plot_style,
    save_figure,
    write_table,
)
from suites.engine.row_flags import (
    HOST_BOUND_MARK,
    HOST_SPEED_TOLERANCE,
    UNSTABLE_MARK,
    add_flags,
    flag_legend_handles,
    flag_marks,
    host_speed_spread,
    mark_flagged_points,
)
from suites.engine.suite import Cell, CellContext, Row, Suite
from suites.engine.timing import LAUNCH_BOUND_BUSY_SHARE

PAPER_DIR = "paper"
PREFERRED_DTYPE = "bf16"
# the seed's training batch; for inference, the batch timm's benchmark.py uses by default
PREFERRED_BATCH = {"train": 128, "infer": 256}
PUBLISHED_SIZE = 224
OUTPUT_STEMS = (
    "README",
    "main_table",
    "main_table_sources",
    "memory_reduction",
    "scaling",
    "scaling_exponents",
    "accuracy_vs_cost",
)
FAMILY_ORDER = ("favit", "pvt_v2", "vit", "swin", "resnet")

# digits per column kind; a column's kind is found by ``column_kind``
DIGITS: dict[str, int] = {
    "params": 2,  # millions
    "gmacs": 2,
    "img_s": 0,
    "mib": 0,
    "top1": 2,  # percent
    "percent": 1,
    "exponent": 2,
    "hours": 2,
    "count": 0,
}
KIND_MARKERS = (
    ("CV (%)", "percent"),  # ahead of "img/s": a timing's spread beside its figure
    ("params", "params"),
    ("GMACs", "gmacs"),
    ("img/s", "img_s"),
    ("MiB", "mib"),
    ("top-1", "top1"),
    ("reduction", "percent"),
    ("exponent", "exponent"),
    ("(h)", "hours"),
    ("settings", "count"),
    ("size", "count"),
)


def column_kind(column: str) -> str | None:
    for marker, kind in KIND_MARKERS:
        if marker in column:
            return kind
    return None


def digits_for(table: pd.DataFrame) -> dict[str, int]:
    """The digits of every numeric column, from its kind (``DIGITS``); 2 for an unknown kind."""
    return {c: DIGITS.get(column_kind(c) or "", 2) for c in table.columns}


def write_paper_table(table: pd.DataFrame, stem: Path, caption: str) -> list[Path]:
    return write_table(table, stem, caption=caption, digits=digits_for(table))


def canonical_model(name: str) -> str:
    """FaViT names with their global attention spelled out (``favit_b1`` -> ``favit_b1:<default>``)."""
    import baselines

    if not baselines.is_favit(name):
        return name
    try:
        parsed = baselines.parse_favit_name(name)
    except ValueError:
        return name
    if parsed.global_attn is not None:
        return name
    import favit

    rest = name[len(parsed.model) :]
    return f"{parsed.model}:{favit.DEFAULT_GLOBAL_ATTN}{rest}"


def is_compared_model(name: str) -> bool:
    """A model the paper compares: FaViT or a named baseline of the registry, not a model a run
    measured by its library name (``timm:...``, ``tv:...``) or a user's factory."""
    import baselines

    return baselines.is_favit(name) or name in baselines.REFERENCE_MODELS


def model_sort_key(name: str) -> tuple[int, str]:
    import baselines

    try:
        family = baselines.info(name).family
    except ValueError:
        family = ""
    order = FAMILY_ORDER.index(family) if family in FAMILY_ORDER else len(FAMILY_ORDER)
    return order, name


# --- sources ---------------------------------------------------------------------------------------


def flops_rows(root: Path) -> pd.DataFrame:
    """Per model, the flops row at 224x224 from the first flops run (rule order) that has it."""

    def at_published_size(rows: pd.DataFrame) -> pd.Series:
        ok = rows["status"].astype(str) == "ok"
        return ok & (rows["img_size"].astype(str) == str(PUBLISHED_SIZE))

    table = choose_rows_per_key(
        root,
        "flops",
        key=lambda rows: rows["model"].astype(str).map(canonical_model),
        keep=at_published_size,
        required=["model", "img_size", "param_count", "fvcore_gmacs"],
    )
    return table.rename(columns={"_key": "canonical"})


def latency_setting(ok: pd.DataFrame, mode: str) -> tuple[str, str] | None:
    """(dtype, batch) of the main table for ``mode``: bf16 if measured (else the first dtype by
    name), the mode's preferred batch if measured (else its largest integer batch)."""
    ok = ok[ok["mode"].astype(str) == mode]
    if ok.empty:
        return None
    dtypes = sorted(ok["dtype"].astype(str).unique())
    dtype = PREFERRED_DTYPE if PREFERRED_DTYPE in dtypes else dtypes[0]
    batches = sorted(
        int(b)
        for b in ok.loc[ok["dtype"].astype(str) == dtype, "batch_size"].astype(str).unique()
        if b.isdigit()
    )
    if not batches:
        return None
    preferred = PREFERRED_BATCH[mode]
    return dtype, str(preferred if preferred in batches else batches[-1])


LATENCY_REQUIRED = ("model", "dtype", "batch_size", "mode", "img_size")
# the main table's speed columns: eager always, CUDA graphs where a run measured them
SPEED_COMPILE_MODES = {"eager": "", "cudagraph": ", CUDA graphs"}  # inductor + CUDA graphs


def _compile_mode(rows: pd.DataFrame) -> pd.Series:
    if "compile" in rows:
        return rows["compile"].astype(str)
    return pd.Series("eager", index=rows.index)


def latency_rows(root: Path) -> tuple[pd.DataFrame, dict[str, tuple[str, str]]]:
    """Ok latency rows at 224px (channels_last off), one per (model, mode, compile mode) at the
    main table's setting of each mode, each from the first GPU run in rule order that has it, so
    runs committed a few models or modes at a time add up; ``run_path`` names each row's run."""

    def candidates(rows: pd.DataFrame) -> pd.Series:
        keep = (rows["status"].astype(str) == "ok") & (
            rows["img_size"].astype(str) == str(PUBLISHED_SIZE)
        )
        keep &= _compile_mode(rows).isin(list(SPEED_COMPILE_MODES))
        if "channels_last" in rows:
            keep &= rows["channels_last"].astype(str) == "off"
        return keep

    def key(rows: pd.DataFrame) -> pd.Series:
        parts = [
            rows["model"].astype(str).map(canonical_model),
            rows["mode"].astype(str),
            _compile_mode(rows),
            rows["dtype"].astype(str),
            rows["batch_size"].astype(str),
        ]
        return pd.Series(["|".join(p) for p in zip(*parts, strict=True)], index=rows.index)

    table = choose_rows_per_key(root, "latency", key, candidates, required=LATENCY_REQUIRED)
    if table.empty:
        return table, {}
    table["compile"] = _compile_mode(table)
    table["canonical"] = table["model"].astype(str).map(canonical_model)
    eager = table[table["compile"] == "eager"]
    settings = {m: s for m in ("train", "infer") if (s := latency_setting(eager, m)) is not None}
    keep = pd.Series(False, index=table.index)
    for mode, (dtype, batch) in settings.items():
        keep |= (
            (table["mode"].astype(str) == mode)
            & (table["dtype"].astype(str) == dtype)
            & (table["batch_size"].astype(str) == batch)
        )
    return table[keep].copy(), settings


def _latency_row(latency: pd.DataFrame, model: str, mode: str, compile_mode: str) -> pd.DataFrame:
    """The latency row of ``model`` in ``mode`` and ``compile_mode`` (empty when not measured)."""
    if latency.empty:
        return latency
    return latency[
        (latency["canonical"] == model)
        & (latency["mode"] == mode)
        & (latency["compile"] == compile_mode)
    ]


def full_budget_accuracy_rows(root: Path) -> pd.DataFrame:
    """``accuracy_rows`` without runs shorter than their recipe (timing runs, say): a paper
    reports trained models."""
    from suites.accuracy import RECIPES

    accuracy = accuracy_rows(root)
    if accuracy.empty:
        return accuracy
    full = [
        recipe not in RECIPES or epochs >= RECIPES[recipe].epochs
        for recipe, epochs in zip(accuracy["recipe"], accuracy["epochs_run"], strict=True)
    ]
    return accuracy[full]


def main_table(root: Path) -> tuple[pd.DataFrame, list[Path], pd.DataFrame]:
    """One row per model measured for speed or accuracy (else every flops model); blanks = NaN.

    Also the runs the figures came from, and per figure (model, column) its run (``run``, the
    run's label, e.g. ``h200/latency-20261201T180147Z``), commit, device and (top-1) the seeds it
    averages: the columns add up runs committed at different times. Each img/s column has its
    step time's CV beside it (``spread_column``).
    """
    flops = flops_rows(root)
    latency, settings = latency_rows(root)
    if not latency.empty:
        latency = add_flags(latency)
    accuracy = full_budget_accuracy_rows(root)
    if not accuracy.empty:
        accuracy["canonical"] = accuracy["model"].astype(str).map(canonical_model)
    models = set(latency.get("canonical", [])) | set(accuracy.get("canonical", []))
    if not models:
        models = set(flops.get("canonical", []))
    models = {m for m in models if is_compared_model(m)}
    records = []
    cited: list[dict[str, object]] = []

    def value(model: str, column: str, rows: pd.DataFrame, field: str) -> float:
        """``field`` of the first of ``rows`` (NaN if none); a figure's run goes into ``cited``."""
        if not len(rows) or field not in rows or pd.isna(rows[field].iloc[0]):
            return math.nan
        first = rows.iloc[0]
        cited.append(
            {
                "model": model,
                "column": column,
                "run": first["run_label"],
                "commit": first["run_commit"],
                "device": first.get("device_name", ""),
                "seeds": first.get("seeds", ""),
                "not_counted": first.get("not_counted", ""),  # a top-1 that is no ViT baseline
                # a timed row's flags and host speed (suites.engine.row_flags); empty elsewhere
                **{f: first.get(f) for f in TIMING_FLAG_FIELDS},
            }
        )
        return float(rows[field].iloc[0])

    speed = {mode: f"{dtype}, batch {batch}" for mode, (dtype, batch) in settings.items()}
    for model in sorted(models, key=model_sort_key):
        record: dict[str, object] = {"model": model}
        f = flops[flops["canonical"] == model] if not flops.empty else flops
        if f.empty and not flops.empty:  # +seed_compat and +ref change numerics, not parameters
            plain = model.replace("+seed_compat", "").replace("+ref", "")
            f = flops[flops["canonical"] == plain]
        record["params (M)"] = value(model, "params (M)", f, "param_count")
        gmacs_column = f"GMACs ({PUBLISHED_SIZE}px)"
        record[gmacs_column] = value(model, gmacs_column, f, "fvcore_gmacs")
        for compile_mode, label in SPEED_COMPILE_MODES.items():
            measured = "compile" in latency and (latency["compile"] == compile_mode).any()
            if compile_mode != "eager" and not measured:
                continue
            for mode in ("train", "infer"):
                setting = f" ({speed[mode]})" if mode in speed else ""
                column = f"{mode} img/s{label}{setting}"
                rows = _latency_row(latency, model, mode, compile_mode)
                record[column] = value(model, column, rows, f"{mode}_samples_per_sec")
                spread = spread_column(mode, label)
                record[spread] = 100 * value(model, spread, rows, "step_cv")
        setting = f" ({speed['train']})" if "train" in speed else ""
        # eager only: a CUDA-graph row's memory is the reserved pool, not an allocator peak
        column = f"train peak MiB{setting}"
        rows = _latency_row(latency, model, "train", "eager")
        record[column] = value(model, column, rows, "peak_mem_mib")
        records.append(record)
    table = pd.DataFrame.from_records(records)
    if not table.empty:
        for column, seeds in top1_by_budget(accuracy).items():
            empty = accuracy.iloc[:0]
            table[column] = [value(m, column, seeds.get(m, empty), "top1") for m in table["model"]]
    sources = sorted({Path(p) for p in flops.get("run_path", [])})
    sources += sorted({Path(p) for p in latency.get("run_path", [])})
    sources += sorted({Path(p) for p in accuracy.get("run_path", [])})
    provenance = pd.DataFrame(cited, columns=list(SOURCE_COLUMNS))
    return table, sources, provenance


def top1_by_budget(accuracy: pd.DataFrame) -> dict[str, dict[str, pd.DataFrame]]:
    """One top-1 column per training budget (recipe, epochs; the data too where runs used
    several): per canonical model, its seeds under the name of its most preferred run (two names
    can share a canonical one), averaged (``seed_mean``), with ``not_counted`` where claim 4's
    rule leaves the figure out as a ViT baseline."""
    if accuracy.empty:
        return {}
    accuracy["data"] = accuracy["data"].astype(str) if "data" in accuracy else ""
    several_data = accuracy["data"].nunique() > 1
    columns = {}
    for (recipe, epochs, data), group in accuracy.groupby(["recipe", "epochs_run", "data"]):
        column = f"CIFAR-10 top-1 ({recipe}, {int(epochs)} ep{f', {data}' if several_data else ''})"
        seeds = {m: seed_mean(rows) for m, rows in group.groupby("canonical", sort=False)}
        for rows in seeds.values():
            size = rows["train_img_size"].iloc[0] if "train_img_size" in rows else None
            rows["not_counted"] = vit_not_counted(rows["model"].iloc[0], size)
        columns[column] = seeds
    return columns


TIMING_FLAG_FIELDS = ("launch_bound", "unstable", "host_op_us")
HOST_COLUMN = "host µs/op ‡"


def _flagged(value: object) -> bool:
    return value is True or str(value).strip().lower() == "true"


def mark_timing_flags(table: pd.DataFrame, provenance: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The main table with every img/s figure from a host-bound or unstable row marked
    (``suites.engine.row_flags``: ‡, §), a host-speed column where a figure is host-bound, and
    the caption's sentences on them: what the marks mean, and a warning when the img/s columns
    come from runs on hosts of different speed (``host_op_us`` more than 20% apart)."""
    timed = provenance[provenance["column"].map(column_kind) == "img_s"]
    if timed.empty:
        return table, ""
    table = table.copy()
    bound = timed["launch_bound"].map(_flagged)
    shaky = timed["unstable"].map(_flagged)
    digits = DIGITS["img_s"]
    hosts: dict[str, list[float]] = {}
    for (model, column), b, u, host in zip(
        zip(timed["model"], timed["column"], strict=True), bound, shaky, timed["host_op_us"],
        strict=True,
    ):  # fmt: skip
        if not (b or u):
            continue
        row = table.index[table["model"] == model][0]
        table[column] = table[column].astype(object)
        table.at[row, column] = f"{float(table.at[row, column]):,.{digits}f} {flag_marks(b, u)}"
        if b and pd.notna(host):
            hosts.setdefault(model, []).append(float(host))
    if hosts:
        table[HOST_COLUMN] = [
            " / ".join(f"{h:.2f}" for h in sorted(set(hosts[m]))) if m in hosts else "-"
            for m in table["model"]
        ]
    notes = []
    if bound.any():
        notes.append(
            f"{HOST_BOUND_MARK} = host-bound: the GPU was busy less than "
            f"{LAUNCH_BOUND_BUSY_SHARE:g} of that row's step, so the figure measures the host's "
            f"launch speed as much as the GPU; {HOST_COLUMN}: the host's time per tiny op in "
            "those rows."
        )
    if shaky.any():
        notes.append(
            f"{UNSTABLE_MARK} = unstable: that row's two timing rounds never agreed within their "
            "target, so the figure is noisier than the others."
        )
    per_run = timed.assign(host=pd.to_numeric(timed["host_op_us"], errors="coerce"))
    speeds = per_run.groupby("run")["host"].median().dropna()
    if host_speed_spread(speeds) > 1.0 + HOST_SPEED_TOLERANCE:
        listed = ", ".join(f"{run} {speed:.2f}" for run, speed in speeds.items())
        notes.append(
            f"The img/s columns come from runs on hosts of different speed (host_op_us, µs per "
            f"tiny op: {listed}): a ratio between host-bound figures is partly the hosts'."
        )
    return table, " ".join(notes)


SOURCE_COLUMNS = (
    "model", "column", "run", "commit", "device", "seeds", "not_counted", *TIMING_FLAG_FIELDS
)  # fmt: skip
NOT_COUNTED_MARK = "¶"


def mark_not_counted(table: pd.DataFrame, provenance: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The main table with every top-1 that claim 4's rule does not count as a ViT baseline
    (``claims.vit_not_counted``) marked, and the caption's sentence giving each reason."""
    marked = provenance[provenance["not_counted"].fillna("").astype(str) != ""]
    if marked.empty:
        return table, ""
    table = table.copy()
    reasons = []
    for model, column, reason in zip(
        marked["model"], marked["column"], marked["not_counted"], strict=True
    ):
        row = table.index[table["model"] == model][0]
        table[column] = table[column].astype(object)
        figure = f"{float(table.at[row, column]):.{DIGITS['top1']}f} {NOT_COUNTED_MARK}"
        table.at[row, column] = figure
        reasons.append(f"{model}, {column.removeprefix('CIFAR-10 ')}: {reason}")
    return table, (
        f"{NOT_COUNTED_MARK} = no fair ViT baseline, so CLAIMS.md does not count it against "
        f"FaViT (claim 4): {'; '.join(reasons)}."
    )


def spread_column(mode: str, label: str) -> str:
    """The column beside an img/s column of ``mode`` (and compile ``label``): its step time's CV
    (std / mean over the timed steps), in percent."""
    return f"{mode} step CV (%){label}"


def seed_mean(rows: pd.DataFrame) -> pd.DataFrame:
    """One row for a model's trainings at one budget: the seeds of the name its most preferred run
    used, top-1 averaged, ``seeds`` counted, every run named."""
    rows = rows.sort_values("run_rank", kind="stable")
    mine = rows[rows["model"] == rows["model"].iloc[0]]
    first = mine.iloc[:1].copy()
    first["top1"] = mine["top1"].mean()
    first["seeds"] = len(mine)
    first["run_label"] = "; ".join(dict.fromkeys(mine["run_label"]))
    first["run_commit"] = "; ".join(dict.fromkeys(mine["run_commit"].astype(str)))
    return first


def main_caption(table: pd.DataFrame, provenance: pd.DataFrame) -> str:
    """The main table's caption: what each column is, on which device, from how many seeds."""
    timed = provenance[provenance["column"].str.contains("img/s|MiB|CV", regex=True)]
    trained = provenance[provenance["column"].str.startswith("CIFAR-10 top-1")]
    caption = (
        "Main comparison. Params and GMACs (fvcore MACs) at 224x224, 1000 classes; img/s and "
        f"training peak memory on {_devices(timed)} at the stated setting, each img/s beside the "
        "CV (%) of its step time over the timed steps; CIFAR-10 top-1 at the final epoch, per "
        f"training budget, on {_devices(trained)}"
    )
    seeds = pd.to_numeric(trained["seeds"], errors="coerce").dropna().astype(int)
    if len(seeds) and seeds.max() == 1:
        top1 = table[[c for c in table if c.startswith("CIFAR-10 top-1")]].stack().dropna()
        errors = [binomial_points(v) for v in top1]
        caption += (
            ", one seed per figure: the test set's sampling error alone is "
            f"{min(errors):.2f} to {max(errors):.2f} points"
        )
    elif len(seeds):
        span = f"{seeds.min()} to {seeds.max()}" if seeds.min() < seeds.max() else seeds.max()
        caption += f", the mean over {span} seeds"
    return caption + (
        ". - = not measured. main_table_sources.csv names the run, commit, device and seeds of "
        "every figure. "
    )


def _devices(provenance: pd.DataFrame) -> str:
    names = joined(provenance["device"].replace("", pd.NA), " and ")
    return f"the {names}" if names else "a device not recorded"


MIXED_COMMITS_MARK = " †"


def mixed_commit_models(provenance: pd.DataFrame) -> set[str]:
    """Models whose measured figures (GPU runs: img/s, memory, top-1) come from more than one
    commit: a ratio of two of their columns can include a code change. Counts from the flops
    suite are left out: they are exact, and ``compare`` guards them."""
    measured = provenance[~provenance["run"].str.contains("/flops-", regex=False)]
    commits = measured.groupby("model")["commit"].nunique()
    return set(commits[commits > 1].index)


def memory_table(root: Path) -> tuple[pd.DataFrame, list[Path], str]:
    """ProbSparse's memory reduction per reading, level and comparison (one run), its source
    and its caption (naming the device, implementation and dtype)."""
    from suites import memory

    def has_ratios(rows: pd.DataFrame) -> bool:
        return "variant" in rows and bool(
            ((rows["status"].astype(str) == "ok") & rows["variant"].isin(memory.PROBSPARSE)).any()
        )

    choice = choose_run(root, "memory", has_ratios, required=["level", "variant", "model"])
    if choice is None:
        return pd.DataFrame(), [], ""
    ratios = with_readings(memory.reduction_table(choice.rows))
    if ratios.empty:
        return pd.DataFrame(), [choice.run.path], ""
    summary = reduction_summary(ratios.dropna(subset=["reduction"]))
    table = pd.DataFrame(
        {
            "reading": summary["reading"],
            "level": summary["level"],
            "measured": summary["metric"],
            "ProbSparse": summary["probsparse"],
            "comparison": summary["comparison"],
            "settings": summary["settings"],
            "min reduction (%)": 100 * summary["min"],
            "max reduction (%)": 100 * summary["max"],
            "settings >= claim": summary["meeting"],
        }
    )
    impl = joined(ratios["impl"]) if "impl" in ratios else memory.UNNAMED_IMPL
    caption = (
        f"Memory reduction of ProbSparse (1 - ProbSparse / comparison) per reading, level and "
        f"comparison, one run ({choice.run.label}) on {device_names(choice.rows)}, {impl} "
        f"implementation, {joined(ratios['dtype'])}; the claim is 98%. Readings: published "
        "(published spatial reduction on both sides), every_patch (the global branch over every "
        "patch on both sides, +gsr1), every_patch_sr1 (full attention with +sr1, whose channel "
        "split also changes)."
    )
    return table, [choice.run.path], caption


def device_names(rows: pd.DataFrame) -> str:
    """The devices that measured ``rows`` (``device_name``), e.g. ``the NVIDIA H200``."""
    names = joined(rows.get("device_name", pd.Series(dtype=str)), " and ")
    return f"the {names}" if names else "a device not recorded"


def scaling_outputs(root: Path, out_dir: Path) -> tuple[list[Path], list[Path]]:
    """``scaling.png/.pdf`` (log-log memory and time against tokens) and the exponent table;
    returns (files written, run folders used)."""
    from suites.latency import tidy
    from suites.scaling import FIT_COLUMNS, fit_exponents, stage1_tokens

    choice = choose_run(
        root,
        "scaling",
        lambda rows: bool((rows["status"].astype(str) == "ok").any()),
        required=FIT_COLUMNS,
    )
    if choice is None:
        return [], []
    exponents = fit_exponents(choice.rows)
    table = pd.DataFrame(
        {
            "model": exponents["model"],
            "mode": exponents["mode"],
            "dtype": exponents["dtype"],
            "sizes": exponents["n_sizes"],
            "GPU-bound sizes": exponents["n_sizes"] - exponents["launch_bound_sizes"],
            "max size (px)": exponents["max_img_size"],
            "time exponent": exponents["time_exponent"],
            "memory exponent": exponents["mem_exponent"],
        }
    )
    files = write_paper_table(
        table,
        out_dir / "scaling_exponents",
        "Growth exponents: slope of log(step time) and log(step memory) against log(stage-1 "
        "tokens); 2 = quadratic, 1 = linear. The time exponent fits the GPU-bound sizes only (a "
        "launch-bound step times the host); - = fewer than two sizes to fit. Measured on "
        f"{device_names(choice.rows)} ({choice.run.label}), batch "
        f"{joined(exponents['batch_size'])}.",
    )
    ok = tidy(choice.rows)
    if ok.empty:
        return files, [choice.run.path]
    ok = ok.copy()
    if "tokens" not in ok:
        ok["tokens"] = [stage1_tokens(int(s)) for s in ok["img_size"]]
    ok = add_flags(ok.sort_values(["model", "tokens"], kind="stable"))
    files += scaling_figure(ok, out_dir / "scaling")
    return files, [choice.run.path]


def scaling_figure(ok: pd.DataFrame, stem: Path) -> list[Path]:
    """Step memory (every row) and step time (GPU-bound rows) against stage-1 tokens, log-log,
    one colour and marker per model in both panels."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    from suites.scaling import launch_bound_rows

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    # step time only where the GPU set it: a launch-bound step times the host, flat in the size
    gpu_bound = ok[~launch_bound_rows(ok)]
    palette = model_palette(ok["model"])
    models = list(palette)
    for ax, (rows, column, label, empty) in zip(
        axes,
        (
            (ok, "step_mem_mib", "step memory above baseline (MiB)", "no rows"),
            (gpu_bound, "step_ms", "step time (ms, median; GPU-bound rows)", "no GPU-bound rows"),
        ),
        strict=True,
    ):
        data = rows.dropna(subset=[column]) if column in rows else rows.iloc[0:0]
        data = data[data[column] > 0] if not data.empty else data
        ax.set(xlabel="stage-1 tokens (H/4 x W/4)", ylabel=label)
        if data.empty:
            ax.text(0.5, 0.5, empty, ha="center", va="center", transform=ax.transAxes)
            ax.set(xticks=[], yticks=[])
            continue
        sns.lineplot(
            data=data, x="tokens", y=column, hue="model", hue_order=models, palette=palette,
            style="model", style_order=models, markers=True, dashes=False, ax=ax,
        )  # fmt: skip
        ax.set(yscale="log")
        log_x_at_values(ax, ok["tokens"])
        mark_flagged_points(ax, data, "tokens", column)
    handles, labels = axes[0].get_legend_handles_labels()
    for ax in axes:
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    flag_handles = flag_legend_handles(ok)
    handles, labels = handles + flag_handles, labels + [h.get_label() for h in flag_handles]
    if handles:
        fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=9)
    return save_figure(fig, stem)


def accuracy_outputs(root: Path, out_dir: Path) -> tuple[list[Path], list[Path]]:
    """``accuracy_vs_cost.png/.pdf``: top-1 against GMACs per image and against training hours."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    accuracy = full_budget_accuracy_rows(root)
    if accuracy.empty:
        return [], []
    data = accuracy.copy()
    data["budget"] = data["recipe"].astype(str) + ", " + data["epochs_run"].astype(str) + " ep"
    data["GMACs"] = pd.to_numeric(data.get("infer_gmacs", math.nan), errors="coerce")
    data["hours"] = pd.to_numeric(data.get("train_wall_s", math.nan), errors="coerce") / 3600
    data = data.sort_values(["budget", "model"], kind="stable")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, (column, label) in zip(
        axes,
        (("GMACs", "GMACs per image (training size)"), ("hours", "training time (h)")),
        strict=True,
    ):
        sns.scatterplot(data=data, x=column, y="top1", hue="model", style="budget", s=70, ax=ax)
        ax.set(xlabel=label, ylabel="CIFAR-10 top-1 (%), final epoch")
        log_x_if_wide(ax, data[column].dropna())
    handles, labels = axes[1].get_legend_handles_labels()
    for ax in axes:
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=9)
    files = save_figure(fig, out_dir / "accuracy_vs_cost")
    return files, sorted({Path(p) for p in data["run_path"]})


def write_paper(root: str | Path, extra_dirs: list[Path] | None = None) -> list[Path]:
    """Write every table and figure into ``<root>/paper/`` (copied into each of ``extra_dirs``)."""
    root = Path(root)
    if not root.is_dir():
        raise ResultsError(f"{root}: no such results folder")
    out_dir = root / PAPER_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    for path in out_dir.iterdir():  # what this suite wrote last time; other files stay
        if path.is_file() and path.stem in OUTPUT_STEMS:
            path.unlink()
    plot_style()
    sections: list[tuple[str, list[Path], list[Path]]] = []

    def section(title: str, files: list[Path], sources: list[Path]) -> None:
        sections.append((title, files, list(dict.fromkeys(sources))))

    table, sources, provenance = main_table(root)
    files: list[Path] = []
    if not table.empty:
        caption = main_caption(table, provenance)
        table, flag_caption = mark_timing_flags(table, provenance)
        caption += f"{flag_caption} " if flag_caption else ""
        table, vit_caption = mark_not_counted(table, provenance)
        caption += f"{vit_caption} " if vit_caption else ""
        mixed = mixed_commit_models(provenance)
        if mixed:
            caption += (
                f"{MIXED_COMMITS_MARK.strip()} = the row's measured figures come from runs at more "
                "than one commit, so a ratio of two of its columns can include a code change."
            )
            table = table.assign(
                model=[m + MIXED_COMMITS_MARK if m in mixed else m for m in table["model"]]
            )
        files = write_paper_table(table, out_dir / "main_table", caption)
        files.append(out_dir / "main_table_sources.csv")
        provenance.to_csv(files[-1], index=False, lineterminator="\n")
    section("Main comparison", files, sources)

    table, sources, caption = memory_table(root)
    files = []
    if not table.empty:
        files = write_paper_table(table, out_dir / "memory_reduction", caption)
    section("Memory reduction by level", files, sources)

    files, sources = scaling_outputs(root, out_dir)
    section("Scaling with input size", files, sources)

    files, sources = accuracy_outputs(root, out_dir)
    section("Accuracy against cost", files, sources)

    (out_dir / "README.md").write_text(render_index(root, sections, out_dir))
    written = sorted(p for p in out_dir.iterdir() if p.is_file() and p.stem in OUTPUT_STEMS)
    for folder in extra_dirs or []:
        target = folder / PAPER_DIR
        target.mkdir(parents=True, exist_ok=True)
        for path in written:
            if path.name != "README.md":
                shutil.copyfile(path, target / path.name)
        (target / "README.md").write_text(render_index(root, sections, target))
    return written


def render_index(
    root: Path, sections: list[tuple[str, list[Path], list[Path]]], document_dir: Path
) -> str:
    """``README.md`` of the paper folder: each section's files and the rows they came from."""
    lines = [
        "# Paper tables and figures",
        "",
        "Generated by `python bench.py --suite paper` from the committed runs under "
        f"`{relative_link(root, document_dir)}`; do not edit by hand. Blank cells (`-`) were not "
        "measured (in the exponent table: not fitted, as its caption says).",
        "",
    ]
    for title, files, sources in sections:
        lines += [f"## {title}", ""]
        if not files:
            lines.append("Not written: no committed run holds these figures.")
        else:
            lines.append("Files: " + ", ".join(f"[{p.name}]({p.name})" for p in files))
            links = [relative_link(s / "rows.csv", document_dir) for s in sources]
            lines.append("From: " + ", ".join(f"[{link}]({link})" for link in links))
        lines.append("")
    return "\n".join(lines)


def measure(cell: Cell, ctx: CellContext) -> Row:
    """Write the paper's tables and figures for the results root of the cell."""
    root = Path(cell["results"])
    try:
        written = write_paper(root, [ctx.run_dir])
    except ResultsError as err:
        print(f"paper: error: {err}", file=sys.stderr)  # the row's reason says it too
        raise
    return {"files_written": len(written), "paper_dir": str(root / PAPER_DIR)}


SUITE = Suite(
    name="paper",
    description="every table and figure of a paper from the committed runs; writes results/paper/",
    axes=[results_root_axis()],
    measure=measure,
    isolate=False,
    examples=(
        "python bench.py --suite paper",
        "python bench.py --suite paper --set results=results",
    ),
)
