"""The claims suite (``--suite claims``): a verdict on each claim of the seed README, from committed runs.

A report-only suite: one cell per results root (axis ``results``, default ``results``), run in the
parent process (``isolate=False``). Its ``measure`` reads the committed runs of the other suites
(``suites.analysis.results_index``: which run, by a documented rule), judges each claim, writes
``<results>/CLAIMS.md`` and a copy in the run folder (links are relative to each file's folder), and
returns one row per claim (number, headline verdict, runs used). No figure is typed by hand: every
measured number comes from a ``rows.csv`` and every analytic one from ``favit``'s code; the only
literals are the claimed figures themselves, quoted from the seed. Same results in, same bytes out.

A claim that can be read several ways (against which baseline, at which scope) gets one verdict per
reading (``Reading``), and its headline names each of them: never the kindest alone. Accuracy figures
are judged on the mean over the seeds trained and their spread (``SeedStats``): a gap inside two
standard deviations is "not distinguishable from the claim"; with one seed the spread is the test
set's binomial sampling error. Timings are compared on the log of their ratio against the runs'
noise band, as ``bench.py compare`` judges them. Every verdict line names the device,
implementation, dtype, batch and input size of its figures.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from suites.analysis.compare import (
    DEFAULT_CLASSES,
    DEFAULT_NOISE_K,
    judge_log_ratio,
    row_log_spread,
)
from suites.analysis.results_index import (
    ResultsError,
    RunChoice,
    choose_rows_per_key,
    choose_run,
    needs_gpu,
    relative_link,
    results_root_axis,
    run_files,
)
from suites.engine.suite import Cell, CellContext, Row, Suite
from suites.engine.timing import LAUNCH_BOUND_BUSY_SHARE

HOLDS = "holds"
CONDITIONAL = "holds only under stated conditions"
INDISTINGUISHABLE = "not distinguishable from the claim"
FAILS = "does not hold"
UNTESTED = "untested"
VERDICTS = (HOLDS, CONDITIONAL, INDISTINGUISHABLE, FAILS, UNTESTED)
CLAIMS_FILE = "CLAIMS.md"

# The claimed figures, quoted from the seed README ("Claims to verify").
CLAIMED_MEMORY_REDUCTION = 0.98
CLAIMED_B1_TOP1 = 86.16
CLAIMED_B1_EPOCHS = 30
CLAIMED_B3_TOP1 = 96.0
CLAIMED_B3_EPOCHS = 50
CLAIMED_VIT_TOP1_RANGE = (70.0, 80.0)
CLAIMED_TOKENS = 3136
CLAIMED_COMPARISONS_M = 9.8  # "≈ 9.8M": one decimal, in millions
CLAIMED_TOP_U = 40
# Our threshold for "minimal accuracy loss" (the seed gives none): top-1 points lost by ProbSparse.
MINIMAL_LOSS_POINTS = 1.0
# A gap to the claimed figure inside this many standard deviations of its spread is not a verdict.
SPREAD_SIGMAS = 2.0
# CIFAR-10's test split; an accuracy row's ``test_images`` is 0 for the whole split.
CIFAR10_TEST_IMAGES = 10_000
SEED_RECIPE = "seed"
VIT_FAMILY = "vit"  # the "standard ViT baselines": plain ViTs (baselines family ``vit``)
# A ViT counts as a baseline at an input that gives it at least this token grid: 4-px patches on
# 32-px CIFAR-10 (8x8), DeiT-Tiny / ViT-S in 16-px patches at 224 (14x14); 16-px patches on 32 px
# (2x2) starve it of tokens.
VIT_MIN_GRID = 8
VIT_SUITED = ((SEED_RECIPE, 16), ("native32", 4))  # (recipe, patch px) that give it such a grid
ANALYTIC_MODEL = "favit_b1"
ANALYTIC_IMG_SIZE = 224
FULL_KERNELS = ("dense", "sdpa")  # full attention: one function, two kernels
SEED_KERNEL = "probsparse_seed"  # ProbSparse as the seed applies it

VERDICT_RULES = {
    HOLDS: "every measured figure the claim rests on meets the claimed figure, under the claim's own conditions",
    CONDITIONAL: "the claimed figure is met only in part: at some levels, sizes or batches, against some comparisons, with another model variant, or only when the test set picks the epoch; the conditions are listed",
    INDISTINGUISHABLE: f"the figure misses the claimed one by less than {SPREAD_SIGMAS:g} standard deviations of its spread (over the seeds trained; with one seed, the test set's binomial sampling error sqrt(p(1-p)/n)): the runs cannot tell it from the claim",
    FAILS: "figures were measured under the claim's conditions and none meets the claimed figure (beyond their spread, where they have one)",
    UNTESTED: "no committed run holds the figures; the run that would test the claim is named",
}
# a claim's readings are listed best first in conditions; the headline keeps the claim's own order
VERDICT_ORDER = (HOLDS, CONDITIONAL, INDISTINGUISHABLE, UNTESTED, FAILS)


@dataclass(frozen=True)
class Claim:
    number: int
    quote: str  # the seed's words
    tested_by: str  # what measures it
    rule: str  # when each verdict applies, for this claim


@dataclass
class Reading:
    """One way to read a claim, and its verdict: ``name`` completes the headline ("for the
    published model"; "" for a claim read one way), ``why`` gives the figures that decide it and
    ``setting`` the device, implementation, dtype, batch and input size they were measured at."""

    name: str
    verdict: str
    why: str = ""
    setting: str = ""
    note: str = ""  # what the headline must say beside the verdict: "one seed"

    @property
    def headline(self) -> str:
        note = f" ({self.note})" if self.note else ""
        return f"{self.verdict}{note} {self.name}".strip()

    @property
    def line(self) -> str:
        text = f"**{self.verdict}**" + (f" ({self.note})" if self.note else "")
        text += f" {self.name}" if self.name else ""
        text += f": {self.why}" if self.why else ""
        return text + (f" [{self.setting}]" if self.setting else "")


@dataclass
class ClaimResult:
    claim: Claim
    comparison: str
    readings: list[Reading] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)  # Markdown lines
    conditions: list[str] = field(default_factory=list)
    sources: list[Path] = field(default_factory=list)  # files linked (rows.csv, plots, tables)
    runs: list[str] = field(default_factory=list)  # run labels
    to_test: list[str] = field(default_factory=list)  # for untested readings: the runs to make
    # what limits the figures, whatever the verdict
    caveats: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        """The headline: each reading's verdict, in the claim's order (one verdict when one)."""
        if not self.readings:
            return UNTESTED
        return "; ".join(r.headline for r in self.readings)

    @property
    def verdicts(self) -> dict[str, str]:
        return {r.name: r.verdict for r in self.readings}

    def add_runs(self, labels: Iterable[str], folders: Iterable[Path]) -> None:
        self.runs += [label for label in dict.fromkeys(labels) if label not in self.runs]
        self.sources += [p for p in _run_sources(list(folders)) if p not in self.sources]

    def add_caveats(self, caveats: Iterable[str]) -> None:
        self.caveats += [c for c in caveats if c not in self.caveats]


def pct(fraction: float) -> str:
    """A reduction or share as a percentage with one decimal."""
    return f"{100 * fraction:.1f}%"


def top1(value: float) -> str:
    """A top-1 accuracy (already in percent) with two decimals, as the seed prints 86.16."""
    return f"{value:.2f}%"


def count(value: float) -> str:
    return f"{int(value):,}"


def joined(values: Iterable[object], sep: str = "/") -> str:
    """Distinct values in first-seen order, numbers before text, joined: ``1/32/128``."""
    seen = list(dict.fromkeys(str(v) for v in values if not pd.isna(v)))
    numeric = sorted((v for v in seen if _is_number(v)), key=float)
    return sep.join([_plain(v) for v in numeric] + [v for v in seen if not _is_number(v)])


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _plain(text: str) -> str:
    number = float(text)
    return str(int(number)) if number.is_integer() else text


SPEED_RULE = (
    f"faster or slower when the log of the time-per-image ratio exceeds both "
    f"ln(1 + {DEFAULT_CLASSES['timing'].threshold:g}%) and {DEFAULT_NOISE_K:g} x the two rows' "
    "combined log spread; the same speed inside a threshold wider than the noise, not "
    "distinguishable inside a noise band wider than the threshold"
)
CLAIMS = (
    Claim(
        1,
        "98% memory reduction with minimal accuracy loss (ProbSparse global attention)",
        "the memory suite (GPU): `1 - probsparse_seed / comparison` per level (analytic score "
        "elements, global branch, attention module, whole model) against full attention (`dense`, "
        "`sdpa`) at each reading's spatial reduction, the ratios of a reading from one run; the "
        "accuracy suite (GPU) for the accuracy loss",
        "one verdict per reading, memory and accuracy against the same full attention: the "
        "published model (`probsparse_seed` against `dense`/`sdpa`); attention over every patch "
        "(`probsparse_seed+gsr1` against `dense+gsr1`/`sdpa+gsr1`: the global branch over all "
        "keys, the published channel split, like for like); and the README's framing (the "
        "published `probsparse_seed` against `dense+sr1`/`sdpa+sr1`, whose channel split also "
        "changes). Memory part: holds when every measured peak reduction (global branch, "
        f"attention module, whole model; the reference implementation) is >= "
        f"{pct(CLAIMED_MEMORY_REDUCTION)}, does not hold when none is, holds under conditions "
        "otherwise; analytic score counts are listed, not judged. Accuracy part: the top-1 "
        "points FaViT-B1 with ProbSparse loses against B1 trained with that reading's full "
        f"attention at the same recipe, epochs and data (mean over seeds), minimal when <= "
        f"{MINIMAL_LOSS_POINTS:g} point, not distinguishable when above it by less than "
        f"{SPREAD_SIGMAS:g} standard deviations of the difference. A reading does not hold when "
        "its memory part does not or no accuracy pair is minimal (or within its spread); is "
        "untested when either part is not measured; holds when both parts hold; is not "
        "distinguishable when memory holds and the loss is within its spread of minimal; "
        "otherwise holds only under stated conditions. The headline gives every reading's verdict.",
    ),
    Claim(
        2,
        f"FaViT-B1 reaches {CLAIMED_B1_TOP1}% CIFAR-10 top-1 in {CLAIMED_B1_EPOCHS} epochs from "
        "scratch (images upsampled to 224)",
        f"the accuracy suite (GPU), recipe `{SEED_RECIPE}`, {CLAIMED_B1_EPOCHS} epochs, FaViT-B1",
        "per seed's model (`favit_b1:probsparse_seed`, with or without `+seed_compat`; one "
        "verdict each): holds when the mean final-epoch top-1 over its seeds (raw or EMA "
        f"weights) reaches the claim; not distinguishable when it falls short by less than "
        f"{SPREAD_SIGMAS:g} standard deviations (the spread over seeds, at least the test set's "
        "binomial sampling error); holds only under stated conditions when only the test-picked "
        "best epoch, or only another B1 variant, reaches it; does not hold otherwise.",
    ),
    Claim(
        3,
        f"FaViT-B3 'projected' {CLAIMED_B3_TOP1:g}%+ in {CLAIMED_B3_EPOCHS} epochs (never tested)",
        f"the accuracy suite (GPU), recipe `{SEED_RECIPE}`, {CLAIMED_B3_EPOCHS} epochs, FaViT-B3",
        "per FaViT-B3 variant: holds when the mean final-epoch top-1 over its seeds (raw or EMA) "
        f"reaches the claim; not distinguishable when short by less than {SPREAD_SIGMAS:g} "
        "standard deviations; holds only under stated conditions when only the test-picked best "
        "epoch does; does not hold otherwise.",
    ),
    Claim(
        4,
        "B1 outperforms standard ViT baselines (~70-80% early in training without big data)",
        "the accuracy suite (GPU): FaViT-B1 against plain ViTs trained with the same recipe, "
        "epochs and data, at an input that suits them: 16-px patches (DeiT-Tiny, ViT-S/16) on "
        "the 224-px seed recipe, 4-px patches on 32-px CIFAR-10 (`native32`)",
        f"a ViT counts only where it sees at least a {VIT_MIN_GRID}x{VIT_MIN_GRID} token grid "
        "(a ViT trained on fewer tokens is listed, not counted). Per pair (means over seeds): B1 "
        f"ahead or behind when the gap exceeds {SPREAD_SIGMAS:g} standard deviations of the "
        "difference, else not distinguishable. Holds when B1 is ahead in every pair; holds only "
        "under stated conditions when in some; does not hold when it is ahead in none and "
        "behind in one or more; not distinguishable when every pair is; untested without a pair "
        "that counts. "
        f"The {CLAIMED_VIT_TOP1_RANGE[0]:g}-{CLAIMED_VIT_TOP1_RANGE[1]:g}% describes the "
        "baselines: it is reported, not judged.",
    ),
    Claim(
        5,
        f"Comparing every patch with every other patch costs {CLAIMED_TOKENS:,}^2 ≈ "
        f"{CLAIMED_COMPARISONS_M:g}M comparisons; ProbSparse keeps 'Top-{CLAIMED_TOP_U}'",
        f"arithmetic from `favit`'s code: stage-1 geometry of {ANALYTIC_MODEL} at "
        f"{ANALYTIC_IMG_SIZE}px (`favit.stage_geometry`), score elements "
        "(`favit.attention_score_elements`) and ProbSparse sizes (`favit.probsparse_sizes`); for "
        "what the cost argument implies (ProbSparse is faster; its cost grows as N log N), the "
        "scaling suite (GPU: step time and memory against tokens) and the latency suite (GPU: "
        f"step time at {ANALYTIC_IMG_SIZE} px per batch)",
        "three readings. The counts: does not hold when the token count, its square (to the "
        "claim's one decimal in millions) or the seed's top-u differ from the claim; holds when "
        "they agree and the published design's global branch compares every patch with every "
        "patch; holds only under stated conditions when they agree but it compares fewer pairs. "
        "ProbSparse is faster: `probsparse_seed` against full attention at the same spatial "
        f"reduction, per size and batch, as `bench.py compare` judges a timing ({SPEED_RULE}); a "
        "pair is judged only where the slower row is GPU-bound (busy >= "
        f"{pct(LAUNCH_BOUND_BUSY_SHARE)}: a launch-bound step times the host); holds when faster "
        "in every judged pair, does not hold when in none, holds only under stated conditions "
        "otherwise (where it is faster is listed). N log N: the log-log growth exponents of "
        "ProbSparse over every patch (analytic score elements, step memory, GPU-bound step "
        "time) against tokens: holds when each lies nearer N log N's slope over the same "
        "tokens than N^2's (2), does not hold when one lies nearer N^2's.",
    ),
)


# --- helpers over rows -----------------------------------------------------------------------------


def _ok(rows: pd.DataFrame) -> pd.Series:
    return rows["status"].astype(str) == "ok"


def _not_smoke(rows: pd.DataFrame) -> pd.Series:
    """Rows that count as results: not a smoke run (quick profile), not trained on a subset.

    The accuracy suite's ``train_images`` / ``test_images`` axes are 0 for the whole split; a run on
    a subset (a timing run, say) measures speed, not the accuracy a claim is about.
    """
    keep = pd.Series(True, index=rows.index)
    if "smoke_run" in rows:
        keep &= ~rows["smoke_run"].astype(str).str.lower().isin(["true", "1"])
    for column in ("train_images", "test_images"):
        if column in rows:
            keep &= pd.to_numeric(rows[column], errors="coerce").fillna(0).eq(0)
    return keep


def _run_sources(choice_paths: list[Path]) -> list[Path]:
    """rows.csv, then the run's plots and tables, for each run folder (deduplicated, in order)."""
    out: list[Path] = []
    for folder in choice_paths:
        for path in [folder / "rows.csv", *run_files(folder)]:
            if path not in out:
                out.append(path)
    return out


def _untested_run(suite: str, command: str) -> str:
    where = "a GPU" if needs_gpu(suite) else "any machine"
    return f"`{command}` on {where}, committed under `results/<machine>/{suite}-<UTC>/`"


def impl_of(model: str) -> str:
    """The implementation a model name runs: FaViT's ``fast`` or ``reference`` (``+ref``), or the
    library of any other model (timm, torchvision)."""
    import baselines

    try:
        found = baselines.info(model)
    except ValueError:
        return "unknown"
    if found.family != "favit":
        return found.library
    return "reference" if baselines.parse_favit_name(model).reference_impl else "fast"


def setting_text(rows: pd.DataFrame, impl: str | None = None, batch_column: str = "batch_size",
                 size_column: str = "img_size", dtype: str | None = None) -> str:  # fmt: skip
    """Device, implementation, dtype, batch and input size of ``rows``, e.g. ``NVIDIA H200,
    reference implementation, fp32, batch 1/32/128, 224/384/512 px``."""
    device = joined(rows.get("device_name", pd.Series(dtype=str)), ", ") or "device not recorded"
    if impl is None:
        impl = joined(rows["model"].astype(str).map(impl_of), ", ")
    if dtype is None:
        dtype = joined(rows.get("dtype", pd.Series(dtype=str)))
    batch = joined(rows.get(batch_column, pd.Series(dtype=str)))
    size = joined(rows.get(size_column, pd.Series(dtype=str)))
    return f"{device}, {impl} implementation, {dtype}, batch {batch}, {size} px"


# --- accuracy rows and their seeds -----------------------------------------------------------------


def accuracy_rows(root: Path) -> pd.DataFrame:
    """Finished, non-smoke accuracy rows; per (model, recipe, epochs, data, seed) the newest GPU
    run's, so the seeds of a model add up over one run (the ``seed`` axis) or several (``--seed``).

    Adds ``epochs_run`` (the epochs the run trained, ``epochs_trained``; for older rows the override
    axis, or the recipe's epochs when the axis is ``-``), ``train_seed`` (the row's own, else the
    run's ``--seed``) and ``base_model`` / ``global_attn`` / ``sr1`` / ``gsr1`` / ``family`` /
    ``seed_compat`` from the model name.
    """
    table = choose_rows_per_key(
        root,
        "accuracy",
        key=_accuracy_key,
        keep=lambda rows: _ok(rows) & _not_smoke(rows),
        required=["model", "recipe", "epochs", "top1"],
    )
    if table.empty:
        return table
    table["epochs_run"] = _epochs_run(table)
    table["train_seed"] = _train_seed(table)
    for column in ("top1", "top1_ema", "top1_best_optimistic", "top1_ema_best_optimistic"):
        table[column] = pd.to_numeric(table.get(column, math.nan), errors="coerce")
    parsed = [_parse_model(name) for name in table["model"].astype(str)]
    for i, column in enumerate(("base_model", "global_attn", "sr1", "gsr1", "family")):
        table[column] = [p[i] for p in parsed]
    table["seed_compat"] = table["model"].astype(str).str.contains("+seed_compat", regex=False)
    return table


def _epochs_run(rows: pd.DataFrame) -> pd.Series:
    from suites.accuracy import FROM_RECIPE, RECIPES

    if "epochs_trained" in rows:  # what the run did, whatever it was asked
        trained = pd.to_numeric(rows["epochs_trained"], errors="coerce")
        if trained.notna().all():
            return trained.astype(int)
    values = []
    for recipe, value in zip(rows["recipe"], rows["epochs"], strict=True):
        text = str(value).strip()
        if text in (FROM_RECIPE, "", "nan"):
            values.append(RECIPES[recipe].epochs if recipe in RECIPES else -1)
        else:
            values.append(int(float(text)))
    return pd.Series(values, index=rows.index)


def _train_seed(rows: pd.DataFrame) -> pd.Series:
    if "train_seed" not in rows:  # rows written before the accuracy suite recorded it
        return rows["run_seed"].astype(int)
    own = pd.to_numeric(rows["train_seed"], errors="coerce")
    return own.fillna(rows["run_seed"]).astype(int)


def _accuracy_key(rows: pd.DataFrame) -> pd.Series:
    data = rows["data"].astype(str) if "data" in rows else pd.Series("", index=rows.index)
    parts = [rows["model"], rows["recipe"], _epochs_run(rows), data, _train_seed(rows)]
    return pd.Series(["|".join(map(str, p)) for p in zip(*parts, strict=True)], index=rows.index)


def _parse_model(name: str) -> tuple[str, str, bool, bool, str]:
    """(base model, global attention or "", sr1, gsr1, family) of a baselines name."""
    import baselines

    try:
        family = baselines.info(name).family
    except ValueError:
        return name, "", False, False, ""
    if family != "favit":
        return name, "", False, False, family
    parsed = baselines.parse_favit_name(name)
    global_attn = parsed.global_attn
    if global_attn is None:
        from suites.flops import favit_default_global_attn

        global_attn = favit_default_global_attn()
    return parsed.model, global_attn, parsed.sr1, parsed.gsr1, family


def budget_columns(accuracy: pd.DataFrame) -> list[str]:
    """What makes two trainings comparable: recipe, epochs and (where recorded) data."""
    return ["recipe", "epochs_run", "data"] if "data" in accuracy else ["recipe", "epochs_run"]


def binomial_points(top1_percent: float, test_images: int = CIFAR10_TEST_IMAGES) -> float:
    """The sampling error of a top-1 measured on ``test_images`` images, in points:
    ``100 sqrt(p (1 - p) / n)``."""
    p = min(max(top1_percent / 100.0, 0.0), 1.0)
    return 100.0 * math.sqrt(p * (1.0 - p) / test_images)


@dataclass(frozen=True, eq=False)
class SeedStats:
    """One model's trainings at one budget: the seeds' rows, their mean and one run's spread."""

    rows: pd.DataFrame

    @property
    def first(self) -> pd.Series:
        return self.rows.iloc[0]

    @property
    def model(self) -> str:
        return str(self.first["model"])

    @property
    def seeds(self) -> int:
        return len(self.rows)

    def mean(self, column: str = "top1") -> float:
        return float(self.rows[column].mean())

    @property
    def final(self) -> float:
        """Mean final-epoch top-1 of the raw or the EMA weights, whichever is higher."""
        values = [v for v in (self.mean("top1"), self.mean("top1_ema")) if not math.isnan(v)]
        return max(values) if values else math.nan

    @property
    def best(self) -> float:
        """Mean top-1 at the epoch the test set picked (optimistic)."""
        columns = ("top1_best_optimistic", "top1_ema_best_optimistic")
        values = [v for v in (self.mean(c) for c in columns) if not math.isnan(v)]
        return max(values) if values else math.nan

    @property
    def test_images(self) -> int:
        if "test_images" not in self.rows:
            return CIFAR10_TEST_IMAGES
        counted = pd.to_numeric(self.rows["test_images"], errors="coerce").fillna(0)
        return int(counted.max()) or CIFAR10_TEST_IMAGES

    @property
    def spread(self) -> float:
        """One training's spread in points: the standard deviation over the seeds, at least the
        test set's binomial sampling error (all there is with one seed)."""
        floor = binomial_points(self.mean(), self.test_images)
        if self.seeds < 2:
            return floor
        return max(float(self.rows["top1"].std(ddof=1)), floor)

    @property
    def spread_text(self) -> str:
        if self.seeds < 2:
            return f"one seed: ± {self.spread:.2f} is the test set's sampling error"
        return f"mean of {self.seeds} seeds, ± {self.spread:.2f} (std over seeds)"

    @property
    def seeds_text(self) -> str:
        return "one seed" if self.seeds < 2 else f"{self.seeds} seeds"

    @property
    def runs(self) -> list[str]:
        return sorted(set(self.rows["run_label"]))

    @property
    def folders(self) -> list[Path]:
        return sorted({Path(p) for p in self.rows["run_path"]})


def seed_stats(accuracy: pd.DataFrame) -> list[SeedStats]:
    """One ``SeedStats`` per (model, budget) of ``accuracy_rows``, in model then budget order."""
    if accuracy.empty:
        return []
    keys = ["model", *budget_columns(accuracy)]
    groups = accuracy.sort_values("train_seed", kind="stable").groupby(keys, sort=True)
    return [SeedStats(group.reset_index(drop=True)) for _, group in groups]


def one_seed_note(stats: Iterable[SeedStats]) -> str:
    """The headline's note where a deciding accuracy figure is a single training."""
    return "one seed" if any(s.seeds < 2 for s in stats) else ""


def pair_seeds_text(a: SeedStats, b: SeedStats) -> str:
    if a.seeds == b.seeds:
        return f"{a.seeds_text} each" if a.seeds < 2 else f"{a.seeds} seeds each"
    return f"{a.seeds_text} / {b.seeds_text}"


def same_budget(a: SeedStats, b: SeedStats) -> bool:
    columns = budget_columns(a.rows)
    return all(str(a.first.get(c)) == str(b.first.get(c)) for c in columns)


def judge_gap(value: float, claimed: float, spread: float) -> str:
    """HOLDS when ``value`` reaches ``claimed``; not distinguishable when short of it by at most
    ``SPREAD_SIGMAS`` spreads; else FAILS."""
    if value >= claimed:
        return HOLDS
    return INDISTINGUISHABLE if claimed - value <= SPREAD_SIGMAS * spread else FAILS


def training_setting(rows: pd.DataFrame) -> str:
    """Device, implementation (model's and compile mode), dtype, batch and size of trainings."""
    compiles = joined(rows.get("compile", pd.Series("eager", index=rows.index)))
    impl = joined(rows["model"].astype(str).map(impl_of), ", ") + f" ({compiles})"
    extra = rows.get("extra", pd.Series("", index=rows.index)).astype(str)
    amp = extra.str.extract(r"amp:(\w+)", expand=False).fillna("bf16")
    return setting_text(
        rows,
        impl=impl,
        dtype=joined(amp + " autocast"),
        batch_column="train_batch_size",
        size_column="train_img_size",
    )


def accuracy_line(stats: SeedStats) -> str:
    """A model's figures at one budget: final top-1 (EMA), the spread, the optimistic best epoch."""
    first = stats.first
    dataset = first.get("dataset", "")
    return (
        f"`{stats.model}`, recipe `{first['recipe']}`, {int(first['epochs_run'])} epochs"
        + (f", {dataset}" if isinstance(dataset, str) and dataset else "")
        + f": final-epoch top-1 {top1(stats.mean())} (EMA {top1(stats.mean('top1_ema'))}; "
        f"{stats.spread_text}); test-picked best epoch {top1(stats.best)} (optimistic) "
        f"[{', '.join(stats.runs)}; {training_setting(stats.rows)}]"
    )


def accuracy_caveats(rows: pd.DataFrame) -> list[str]:
    """What a reader must weigh beside accuracy figures: single seeds, the JPEG copy's pixels."""
    caveats = []
    if not rows.empty:
        seeds = rows.groupby("model")["train_seed"].nunique()
        single = sorted(seeds[seeds < 2].index)
        if single:
            caveats.append(
                "one seed for " + ", ".join(f"`{m}`" for m in single) + ": its spread is only "
                "the test set's sampling error; the run-to-run spread is not measured"
            )
    datasets = sorted(
        {str(d) for d in rows.get("dataset", pd.Series(dtype=str)) if "JPEG" in str(d)}
    )
    if datasets:
        caveats.append(
            f"trained and tested on {', '.join(datasets)}, whose compressed pixels can cost "
            "accuracy against the original CIFAR-10 the claim was made on"
        )
    return caveats


def seeds_command(models: Iterable[str], recipe: str, extra: str = "") -> str:
    """The accuracy run that trains ``models`` with three seeds into one run folder."""
    return (
        f"python bench.py --suite accuracy --models {','.join(models)} --set recipe={recipe}"
        f"{extra} --set seed=0,1,2"
    )


# --- claim 1 ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemoryReading:
    """One reading of claim 1: ProbSparse with one spatial reduction against full attention with
    another. ``key`` is the memory suite's ``reading`` column; model names take the suffixes."""

    key: str
    name: str  # completes the headline
    what: str
    probsparse_suffix: str  # "" (published) or "+gsr1"
    full_suffix: str  # "", "+gsr1" or "+sr1"
    caveat: str = ""

    @property
    def probsparse(self) -> str:
        return SEED_KERNEL + self.probsparse_suffix

    @property
    def comparisons(self) -> tuple[str, ...]:
        return tuple(kernel + self.full_suffix for kernel in FULL_KERNELS)

    def accuracy_models(self) -> tuple[str, str]:
        """The two models a training would pair (the seed's numerics on the ProbSparse side)."""
        suffix = self.probsparse_suffix
        return (
            f"{ANALYTIC_MODEL}:{SEED_KERNEL}{suffix}+seed_compat",
            f"{ANALYTIC_MODEL}:sdpa{self.full_suffix}",
        )


SR1_CONFOUND = (
    "`+sr1` sets the spatial reduction to 1 in every stage as the official FaViT does, and its "
    "channel split follows the reduction: stages 1-3 also trade the dilated branch for a local "
    "one twice as wide, so the attention- and model-level reductions against `dense+sr1` / "
    "`sdpa+sr1` include that change (the analytic and global-branch levels do not)"
)
MEMORY_READINGS = (
    MemoryReading(
        "published",
        "for the published model",
        "`probsparse_seed` against full attention with the published spatial reduction "
        "(`dense`, `sdpa`)",
        "",
        "",
    ),
    MemoryReading(
        "every_patch",
        "for attention over every patch",
        "`probsparse_seed+gsr1` against `dense+gsr1`, `sdpa+gsr1`: the global branch over every "
        "patch on both sides, the published channel split (like for like)",
        "+gsr1",
        "+gsr1",
    ),
    MemoryReading(
        "every_patch_sr1",
        "against every-patch attention with the `+sr1` channel split",
        "the published `probsparse_seed` against `dense+sr1`, `sdpa+sr1` (the README's framing; "
        "`+sr1` also changes the channel split)",
        "",
        "+sr1",
        SR1_CONFOUND,
    ),
)
MEMORY_JUDGED_LEVELS = ("global", "attention", "model")


def with_readings(ratios: pd.DataFrame) -> pd.DataFrame:
    """``suites.memory.reduction_table`` with a ``reading`` per row: the table's own, or (runs
    whose table has none) the reading whose spatial reductions the row pairs (the suffixes of
    its ProbSparse variant and of its comparison)."""
    if "reading" in ratios or ratios.empty:
        return ratios
    pairs = {(r.probsparse_suffix, r.full_suffix): r.key for r in MEMORY_READINGS}

    def suffix(variant: str) -> str:
        _, plus, rest = str(variant).partition("+")
        return plus + rest

    keys = [
        pairs.get((suffix(p), suffix(c)), "")
        for p, c in zip(ratios["probsparse"], ratios["comparison"], strict=True)
    ]
    return ratios.assign(reading=keys)


def reading_ratios(ratios: pd.DataFrame, reading: MemoryReading) -> pd.DataFrame:
    """The rows of ``reading``: its ProbSparse variant and comparisons, the reference
    implementation (the seed's algorithm as it materializes) where the table names one."""
    from suites.memory import IMPL

    ratios = with_readings(ratios)
    if ratios.empty:
        return ratios
    mine = ratios[
        (ratios["reading"] == reading.key)
        & (ratios["probsparse"] == reading.probsparse)
        & ratios["comparison"].isin(reading.comparisons)
    ]
    if "impl" in mine:
        mine = mine[mine["impl"].astype(str) == IMPL]
    return mine.reset_index(drop=True)


def memory_reductions(root: Path, reading: MemoryReading) -> tuple[RunChoice | None, pd.DataFrame]:
    """The first memory run (rule order) with a finished comparison for ``reading``, and its rows
    of ``suites.memory.reduction_table`` (``reduction`` NaN where the comparison failed)."""
    from suites import memory

    found: dict[int, pd.DataFrame] = {}

    def has_reading(rows: pd.DataFrame) -> bool:
        done = rows[_ok(rows)]
        if not (done["variant"] == reading.probsparse).any():
            return False
        found[id(rows)] = reading_ratios(memory.reduction_table(rows), reading)
        return bool(found[id(rows)]["reduction"].notna().any())

    choice = choose_run(root, "memory", has_reading, required=["level", "variant", "model"])
    if choice is None:
        return None, pd.DataFrame()
    return choice, found[id(choice.rows)]


def reduction_summary(ratios: pd.DataFrame) -> pd.DataFrame:
    """Per (reading, implementation, dtype, level, metric, ProbSparse variant, comparison):
    settings, min and max reduction, and how many settings reach the claimed reduction; levels in
    the memory suite's order (the first three keys where the table has them)."""
    from suites.memory import LEVELS

    keys = [k for k in SUMMARY_KEYS if k in ratios]
    ratios = ratios.assign(meets=ratios["reduction"] >= CLAIMED_MEMORY_REDUCTION)
    groups = (
        ratios.groupby(keys, sort=True)
        .agg(
            settings=("reduction", "count"),
            min=("reduction", "min"),
            max=("reduction", "max"),
            meeting=("meets", "sum"),
        )
        .reset_index()
    )
    groups["meeting"] = groups["meeting"].astype(int)
    orders = {"reading": [r.key for r in MEMORY_READINGS], "level": list(LEVELS)}
    by = []
    for key in keys:  # readings and levels in their own order, the rest by name
        if key in orders:
            rank = {value: i for i, value in enumerate(orders[key])}
            groups[f"_{key}"] = groups[key].map(rank).fillna(len(rank))
            key = f"_{key}"
        by.append(key)
    groups = groups.sort_values(by, kind="stable")
    return groups.drop(columns=[c for c in groups if c.startswith("_")]).reset_index(drop=True)


SUMMARY_KEYS = ("reading", "impl", "dtype", "level", "metric", "probsparse", "comparison")


def _share_verdict(meeting: int, total: int) -> str:
    if total == 0:
        return UNTESTED
    return HOLDS if meeting == total else FAILS if meeting == 0 else CONDITIONAL


@dataclass
class Part:
    """One part of a reading's verdict (memory or accuracy): its verdict, why, the figure lines."""

    verdict: str
    why: str
    lines: list[str] = field(default_factory=list)
    setting: str = ""  # device, implementation, dtype, batch, input size
    stats: list[SeedStats] = field(default_factory=list)  # the trainings it compared


def memory_part(ratios: pd.DataFrame, device: str) -> Part:
    """Claim 1's memory part for one reading's rows (measured on ``device``): the measured peaks
    that reach the claim."""
    from suites.memory import IMPL

    finished = ratios.dropna(subset=["reduction"])
    lines = [
        f"    - {g.level} ({g.metric}) vs `{g.comparison}`: {pct(g.min)} to {pct(g.max)} over "
        f"{g.settings} settings; >= {pct(CLAIMED_MEMORY_REDUCTION)} in {g.meeting}"
        for g in reduction_summary(finished).itertuples()
    ]
    measured = ratios[ratios["level"].isin(MEMORY_JUDGED_LEVELS)]
    done = measured.dropna(subset=["reduction"])
    meeting = int((done["reduction"] >= CLAIMED_MEMORY_REDUCTION).sum())
    verdict = _share_verdict(meeting, len(done))
    why = f"measured peaks reach {pct(CLAIMED_MEMORY_REDUCTION)} in {meeting} of {len(done)}"
    left_out = measured[measured["reduction"].isna()]
    if not left_out.empty:
        statuses = ", ".join(
            f"{n} {status}" for status, n in left_out["comparison_status"].value_counts().items()
        )
        why += f" ({len(left_out)} without a finished comparison: {statuses})"
    line = f"  - {why} (level x setting x kernel)"
    analytic = ratios[ratios["level"] == "analytic"]
    analytic = analytic[analytic["comparison"] == analytic["comparison"].min()]
    if not analytic.empty:  # the same count for every kernel: counted once
        reaching = int((analytic["reduction"] >= CLAIMED_MEMORY_REDUCTION).sum())
        line += f"; analytic score counts in {reaching} of {len(analytic)} (listed, not judged)"
    lines.append(f"{line} -> memory part {verdict}")
    lines += _more_memory_lines(done)
    impl = joined(ratios["impl"]) if "impl" in ratios else IMPL
    return Part(verdict, why, lines, setting_text(ratios.assign(device_name=device), impl=impl))


def _more_memory_lines(done: pd.DataFrame) -> list[str]:
    """Where ProbSparse's measured peak is above the comparison's in every setting of a level."""
    lines = []
    for comparison, rows in done.groupby("comparison", sort=True):
        levels = [
            level
            for level in MEMORY_JUDGED_LEVELS
            if not (at := rows[rows["level"] == level]).empty and (at["reduction"] < 0).all()
        ]
        if not levels:
            continue
        where = (
            "at every measured level"
            if len(levels) == rows["level"].nunique()
            else "at level" + "s" * (len(levels) > 1)
        )
        lines.append(
            f"  - ProbSparse uses more memory than `{comparison}` in every setting {where} "
            f"({', '.join(levels)})"
        )
    return lines


def _reading_accuracy(stats: list[SeedStats], reading: MemoryReading) -> list[tuple]:
    """(ProbSparse stats, full-attention stats) pairs of FaViT-B1 at one budget for ``reading``."""

    def suffix_of(s: SeedStats) -> str:
        first = s.first
        return "+gsr1" if first["gsr1"] else "+sr1" if first["sr1"] else ""

    b1 = [s for s in stats if s.first["base_model"] == ANALYTIC_MODEL]
    probsparse = [
        s
        for s in b1
        if s.first["global_attn"] == SEED_KERNEL and suffix_of(s) == reading.probsparse_suffix
    ]
    full = [
        s
        for s in b1
        if s.first["global_attn"] in FULL_KERNELS and suffix_of(s) == reading.full_suffix
    ]
    return [(p, d) for p in probsparse for d in full if same_budget(p, d)]


def accuracy_part(stats: list[SeedStats], reading: MemoryReading) -> Part:
    """Claim 1's accuracy part: the top-1 ProbSparse loses against the same full attention."""
    pairs = _reading_accuracy(stats, reading)
    if not pairs:
        return Part(
            UNTESTED,
            "accuracy loss not measured",
            [f"  - accuracy: untested (no `{'`, `'.join(reading.accuracy_models())}` trained "
             "at one budget)"],
        )  # fmt: skip
    outcomes, lines = [], []
    for p, d in pairs:
        loss = d.mean() - p.mean()
        spread = math.hypot(p.spread, d.spread)
        outcome = (
            "minimal"
            if loss <= MINIMAL_LOSS_POINTS
            else "not distinguishable from minimal"
            if loss - MINIMAL_LOSS_POINTS <= SPREAD_SIGMAS * spread
            else "not minimal"
        )
        outcomes.append(outcome)
        other = " (the pair also differs in `+seed_compat`)" * bool(
            p.first["seed_compat"] != d.first["seed_compat"]
        )
        lines.append(
            f"  - accuracy: `{p.model}` {top1(p.mean())} vs `{d.model}` {top1(d.mean())} (recipe "
            f"`{p.first['recipe']}`, {int(p.first['epochs_run'])} epochs, final-epoch raw "
            f"top-1; {pair_seeds_text(p, d)}): loss "
            f"{loss:+.2f} ± {spread:.2f} points, {outcome}{other} "
            f"[{training_setting(pd.concat([p.rows, d.rows]))}]"
        )
    minimal = outcomes.count("minimal")
    close = outcomes.count("not distinguishable from minimal")
    if minimal == len(pairs):
        verdict = HOLDS
    elif minimal + close == len(pairs):
        verdict = INDISTINGUISHABLE
    else:
        verdict = FAILS if minimal + close == 0 else CONDITIONAL
    why = f"accuracy loss <= {MINIMAL_LOSS_POINTS:g} point in {minimal} of {len(pairs)} pairs"
    if close:
        why += f" ({close} more within {SPREAD_SIGMAS:g} standard deviations)"
    stats_used = list(dict.fromkeys(s for pair in pairs for s in pair))
    return Part(verdict, why, lines, stats=stats_used)


def reading_verdict(memory: Part, accuracy: Part) -> str:
    """Claim 1's verdict for one reading from its memory and accuracy parts (the claim's rule)."""
    if FAILS in (memory.verdict, accuracy.verdict):
        return FAILS
    if UNTESTED in (memory.verdict, accuracy.verdict):
        return UNTESTED
    if memory.verdict == HOLDS and accuracy.verdict in (HOLDS, INDISTINGUISHABLE):
        return accuracy.verdict
    return CONDITIONAL


def judge_memory_reading(
    result: ClaimResult, root: Path, stats: list[SeedStats], reading: MemoryReading
) -> Reading:
    """One reading of claim 1: its memory run's figures, its accuracy pairs, its verdict; adds the
    figures, sources, caveats and the runs that would test it to ``result``."""
    choice, ratios = memory_reductions(root, reading)
    if choice is None:
        command = (
            "python bench.py --suite memory --device cuda --set "
            f"variant={reading.probsparse},{','.join(reading.comparisons)}"
        )
        memory = Part(UNTESTED, "memory not measured", ["  - memory: no committed run holds it"])
        result.to_test.append(_untested_run("memory", command))
    else:
        memory = memory_part(ratios, joined(choice.rows.get("device_name", []), ", "))
        memory.lines.insert(0, f"  - memory (`{choice.run.label}`, {memory.setting}):")
        result.add_runs([choice.run.label], [choice.run.path])
        if reading.caveat:
            result.add_caveats([reading.caveat])
    accuracy = accuracy_part(stats, reading)
    if accuracy.verdict == UNTESTED and memory.verdict != FAILS:
        command = seeds_command(reading.accuracy_models(), SEED_RECIPE)
        result.to_test.append(_untested_run("accuracy", command))
    for s in accuracy.stats:
        result.add_runs(s.runs, s.folders)
    if accuracy.stats:
        result.add_caveats(accuracy_caveats(pd.concat([s.rows for s in accuracy.stats])))
    result.figures += [f"{reading.name.capitalize()}: {reading.what}:", *memory.lines]
    result.figures += accuracy.lines
    verdict = reading_verdict(memory, accuracy)
    why = "; ".join(part.why for part in (memory, accuracy))
    setting = memory.setting or "no memory run"
    decided_by_accuracy = memory.verdict not in (FAILS, UNTESTED)
    note = one_seed_note(accuracy.stats) if decided_by_accuracy else ""
    return Reading(reading.name, verdict, why, setting, note)


def judge_claim_1(root: Path, accuracy: pd.DataFrame) -> ClaimResult:
    """Memory and accuracy judged against the same full attention, one reading at a time
    (``MEMORY_READINGS``): each reading gets its own verdict, and the headline names them all."""
    result = ClaimResult(
        CLAIMS[0],
        "ProbSparse as the seed applies it (`probsparse_seed`) against full attention (`dense`, "
        "`sdpa`) with the same global keys in each reading, reduction = 1 - ProbSparse / "
        "comparison per level and setting; the accuracy loss against B1 trained with that full "
        "attention",
    )
    stats = seed_stats(accuracy)
    result.readings = [judge_memory_reading(result, root, stats, r) for r in MEMORY_READINGS]
    return result


# --- claims 2 and 3 --------------------------------------------------------------------------------


def judge_accuracy_claim(
    claim: Claim,
    accuracy: pd.DataFrame,
    model: str,
    epochs: int,
    claimed_top1: float,
    is_primary: Callable[[pd.Series], bool],
    primary_name: str,
    command: str,
) -> ClaimResult:
    """A claimed top-1 for ``model`` at the seed recipe and ``epochs``: one reading per primary
    variant (``is_primary``), judged on its mean over seeds and its spread."""
    result = ClaimResult(
        claim,
        f"final-epoch CIFAR-10 top-1 of {model} (raw and EMA weights; mean over seeds) against "
        f"the claimed {top1(claimed_top1)}, recipe `{SEED_RECIPE}`, {epochs} epochs; the best "
        "epoch picked on the test set (as the seed reports) is shown beside it, labelled "
        "optimistic",
    )
    stats = [
        s
        for s in seed_stats(accuracy)
        if s.first["base_model"] == model
        and s.first["recipe"] == SEED_RECIPE
        and int(s.first["epochs_run"]) == epochs
    ]
    if not stats:
        result.readings = [Reading("", UNTESTED, f"{primary_name} not trained")]
        result.to_test = [_untested_run("accuracy", command)]
        return result
    result.add_caveats(accuracy_caveats(pd.concat([s.rows for s in stats])))
    result.figures = [accuracy_line(s) for s in stats]
    for s in stats:
        result.add_runs(s.runs, s.folders)
    primary = [s for s in stats if is_primary(s.first)]
    others = [s.model for s in stats if s not in primary and s.final >= claimed_top1]
    if not primary:
        result.readings = [Reading("", UNTESTED, f"{primary_name} not trained")]
        result.to_test = [_untested_run("accuracy", command)]
        if others:
            result.conditions.append("reached only by " + ", ".join(f"`{m}`" for m in others))
        return result
    named = len(primary) > 1
    result.readings = [
        _accuracy_reading(s, claimed_top1, others, f"for `{s.model}`" if named else "")
        for s in primary
    ]
    return result


def _accuracy_reading(stats: SeedStats, claimed: float, others: list[str], name: str) -> Reading:
    """One model's verdict on a claimed top-1 (``CLAIMS[1].rule``)."""
    gap = stats.final - claimed
    why = f"final-epoch top-1 {top1(stats.final)}, {gap:+.2f} points from the claim ({stats.spread_text})"
    verdict = judge_gap(stats.final, claimed, stats.spread)
    if verdict == FAILS and stats.best >= claimed:
        verdict = CONDITIONAL
        why += f"; reaches {top1(claimed)} only when the test set picks the epoch"
    elif verdict == FAILS and others:
        verdict = CONDITIONAL
        why += "; reached only by another variant: " + ", ".join(f"`{m}`" for m in others)
    return Reading(name, verdict, why, training_setting(stats.rows), one_seed_note([stats]))


# --- claim 4 ---------------------------------------------------------------------------------------


def vit_patch(model: str) -> int | None:
    """The patch size of a ViT in the registry: its timm ``patch_size`` option, else the one its
    timm id names (``deit_tiny_patch16_224`` -> 16); None when neither says."""
    import baselines

    entry = baselines.REFERENCE_MODELS.get(model)
    if entry is None:
        return None
    if "patch_size" in entry.options:
        return int(entry.options["patch_size"])  # type: ignore[call-overload]
    found = re.search(r"patch(\d+)", entry.model_id)
    return int(found.group(1)) if found else None


def vit_grid(stats: SeedStats) -> int | None:
    """Tokens per side of a ViT's training images, if its patch and input size are known."""
    size = pd.to_numeric(pd.Series([stats.first.get("train_img_size")]), errors="coerce").iloc[0]
    patch = vit_patch(stats.model)
    if patch is None or math.isnan(size):
        return None
    return int(size) // patch


def suited_vits() -> dict[str, list[str]]:
    """Per recipe, the registry's ViTs whose patch size suits its input (``VIT_SUITED``)."""
    import baselines

    suited: dict[str, list[str]] = {}
    for name, entry in baselines.REFERENCE_MODELS.items():
        for recipe, patch in VIT_SUITED:
            if entry.family == VIT_FAMILY and vit_patch(name) == patch:
                suited.setdefault(recipe, []).append(name)
    return suited


def vit_runs_to_make() -> list[str]:
    """The accuracy runs that would give claim 4 pairs that count (three seeds each)."""
    suited = suited_vits()
    runs = []
    for recipe, patch in VIT_SUITED:
        if suited.get(recipe):
            command = seeds_command([ANALYTIC_MODEL, *suited[recipe]], recipe)
            runs.append(_untested_run("accuracy", command))
        else:
            runs.append(
                f"a ViT with {patch}-px patches for recipe `{recipe}` (no registry entry in "
                "`baselines` yet)"
            )
    return runs


def _pair_outcome(b1: SeedStats, vit: SeedStats) -> tuple[str, float, float]:
    gap = b1.mean() - vit.mean()
    spread = math.hypot(b1.spread, vit.spread)
    if abs(gap) <= SPREAD_SIGMAS * spread:
        return "not distinguishable", gap, spread
    return ("B1 ahead" if gap > 0 else "B1 behind"), gap, spread


def judge_claim_4(accuracy: pd.DataFrame) -> ClaimResult:
    result = ClaimResult(
        CLAIMS[3],
        "final-epoch raw top-1 (mean over seeds) of each FaViT-B1 model against each plain ViT "
        "trained with the same recipe, epochs and data, where the ViT's input suits it",
    )
    stats = seed_stats(accuracy)
    b1 = [s for s in stats if s.first["base_model"] == ANALYTIC_MODEL]
    vits = [s for s in stats if s.first["family"] == VIT_FAMILY]
    pairs = [(f, v) for f in b1 for v in vits if same_budget(f, v)]
    counted = [(f, v) for f, v in pairs if (vit_grid(v) or 0) >= VIT_MIN_GRID]
    low, high = CLAIMED_VIT_TOP1_RANGE
    outcomes = []
    for f, v in pairs:
        outcome, gap, spread = _pair_outcome(f, v)
        grid = vit_grid(v)
        counts = (f, v) in counted
        if counts:
            outcomes.append(outcome)
        inside = "inside" if low <= v.mean() <= high else "outside"
        note = "" if counts else f"; not counted: a {grid}x{grid} token grid starves the ViT"
        result.figures.append(
            f"`{f.model}` {top1(f.mean())} vs `{v.model}` {top1(v.mean())} (recipe "
            f"`{f.first['recipe']}`, {int(f.first['epochs_run'])} epochs; "
            f"{pair_seeds_text(f, v)}): {outcome} by "
            f"{gap:+.2f} ± {spread:.2f} points; the ViT is {inside} {low:g}-{high:g}%{note} "
            f"[{training_setting(pd.concat([f.rows, v.rows]))}]"
        )
        result.add_runs(f.runs + v.runs, f.folders + v.folders)
    if pairs:
        result.add_caveats(accuracy_caveats(pd.concat([s.rows for p in pairs for s in p])))
    result.readings = [_claim_4_reading(outcomes, counted)]
    if result.readings[0].verdict == UNTESTED:
        result.to_test = vit_runs_to_make()
    return result


def _claim_4_reading(outcomes: list[str], counted: list[tuple[SeedStats, SeedStats]]) -> Reading:
    if not outcomes:
        return Reading("", UNTESTED, "no ViT trained at an input that suits it")
    ahead, behind = outcomes.count("B1 ahead"), outcomes.count("B1 behind")
    why = f"B1 ahead in {ahead} of {len(outcomes)} pairs, behind in {behind}"
    if ahead == len(outcomes):
        verdict = HOLDS
    elif ahead:
        verdict = CONDITIONAL
    else:
        verdict = FAILS if behind else INDISTINGUISHABLE
    rows = pd.concat([s.rows for pair in counted for s in pair])
    note = one_seed_note(s for pair in counted for s in pair)
    return Reading("", verdict, why, training_setting(rows), note)


# --- claim 5 ---------------------------------------------------------------------------------------

# the global-attention variants whose growth claim 5's cost argument is about: every token a key
GROWTH_VARIANTS = ("probsparse_seed", "probsparse", "dense", "sdpa")
EVERY_PATCH_SUFFIXES = ("+gsr1", "+sr1")  # like for like first, then the official +sr1
# ProbSparse against full attention with the same global keys: published, then over every patch
SPEED_SUFFIXES = ("", *EVERY_PATCH_SUFFIXES)
SETTING_COLUMNS = ("img_size", "mode", "dtype", "batch_size", "compile", "channels_last")
# ``bench.py compare``'s verdict on ProbSparse's time (NEW) against full attention's (BASE)
SPEED_OUTCOMES = {
    "improvement": "faster",
    "regression": "slower",
    "unchanged": "the same speed",
    "inconclusive": "not distinguishable",
}
JUDGED_SPEED = tuple(SPEED_OUTCOMES.values())


def measured_growth(root: Path) -> tuple[RunChoice | None, pd.DataFrame]:
    """The chosen scaling run and its growth exponents (``suites.scaling.fit_exponents``) for
    ``ANALYTIC_MODEL`` with each of ``GROWTH_VARIANTS`` over every token (``+gsr1``, ``+sr1``)."""
    from suites.scaling import FIT_COLUMNS, fit_exponents

    models = [
        f"{ANALYTIC_MODEL}:{variant}{suffix}"
        for suffix in EVERY_PATCH_SUFFIXES
        for variant in GROWTH_VARIANTS
    ]

    def has_growth_rows(rows: pd.DataFrame) -> bool:
        return bool((_ok(rows) & rows["model"].isin(models)).any())

    choice = choose_run(root, "scaling", has_growth_rows, required=FIT_COLUMNS)
    if choice is None:
        return None, pd.DataFrame()
    exponents = fit_exponents(choice.rows[choice.rows["model"].isin(models)])
    order = {model: i for i, model in enumerate(models)}
    exponents = exponents.sort_values("model", key=lambda m: m.map(order), kind="stable")
    return choice, exponents.reset_index(drop=True)


def _growth_line(g: pd.Series) -> str:
    """One variant's measured growth, sizes and where its curve ends."""
    gpu_bound = int(g["n_sizes"]) - int(g["launch_bound_sizes"])
    time = (
        f"step time as tokens^{g['time_exponent']:.2f} over its {gpu_bound} GPU-bound sizes"
        if not math.isnan(g["time_exponent"])
        else f"step time not fitted ({gpu_bound} GPU-bound size{'s' * (gpu_bound != 1)})"
    )
    end = (
        f", out of memory from {int(g['first_oom_img_size'])} px"
        if not math.isnan(g["first_oom_img_size"])
        else ""
    )
    return (
        f"`{g['model']}` ({g['mode']}, {g['dtype']}, batch {g['batch_size']}): step memory grows "
        f"as tokens^{g['mem_exponent']:.2f}, {time}; {int(g['min_img_size'])} to "
        f"{int(g['max_img_size'])} px ({int(g['n_sizes'])} sizes){end}"
    )


def add_measured_growth(result: ClaimResult, root: Path) -> RunChoice | None:
    """Claim 5's measured context: growth exponents of the all-token variants, or what would
    measure them. Returns the scaling run it read."""
    choice, exponents = measured_growth(root)
    if choice is None or exponents.empty:
        command = "python bench.py --suite scaling --device cuda"
        result.figures.append(
            f"Measured growth: not measured; run {_untested_run('scaling', command)}."
        )
        return None
    rows = choice.rows[choice.rows["model"].isin(exponents["model"]) & _ok(choice.rows)]
    result.figures.append(
        f"Measured growth (`{choice.run.label}`; exponent of a log-log fit against stage-1 "
        f"tokens: 1 linear, 2 quadratic) [{setting_text(rows)}]:"
    )
    result.figures += [f"  - {_growth_line(g)}" for _, g in exponents.iterrows()]
    result.add_caveats(
        [
            "growth exponents: step time is fitted over the sizes where the GPU is busy at least "
            f"{pct(LAUNCH_BOUND_BUSY_SHARE)} of the step (a launch-bound step times the host), "
            "step memory (above what lives between steps) over every size that fits; a fit over "
            "few sizes is a rough slope; they are the whole training step's, whose other layers "
            "grow linearly in tokens"
        ]
    )
    result.add_runs([choice.run.label], [choice.run.path])
    return choice


def judge_counts(result: ClaimResult) -> Reading:
    """The arithmetic: tokens, all-pairs comparisons, the seed's top-u, from favit's geometry."""
    import favit

    num_stages = len(favit.model_config(ANALYTIC_MODEL).depths)
    all_pairs = favit.stage_geometry(
        ANALYTIC_MODEL, ANALYTIC_IMG_SIZE, sr_ratios=(1,) * num_stages
    )[0]
    published = favit.stage_geometry(ANALYTIC_MODEL, ANALYTIC_IMG_SIZE)[0]
    tokens = all_pairs.N
    comparisons = favit.attention_score_elements(all_pairs, "dense")["global"]
    published_dense = favit.attention_score_elements(published, "dense")["global"]
    published_seed = favit.attention_score_elements(published, SEED_KERNEL)["global"]
    all_pairs_seed = favit.attention_score_elements(all_pairs, SEED_KERNEL)["global"]
    _, seed_top_u = favit.probsparse_sizes(SEED_KERNEL, tokens, published.global_keys)
    _, informer_top_u = favit.probsparse_sizes("probsparse", tokens, published.global_keys)
    comparisons_m = comparisons / 1e6
    result.figures += [
        f"stage-1 tokens N = {count(tokens)} (claimed {CLAIMED_TOKENS:,})",
        f"every patch with every patch: N^2 = {count(comparisons)} = {comparisons_m:.1f}M "
        f"(claimed ≈ {CLAIMED_COMPARISONS_M:g}M)",
        f"seed's top-u = int(5 ln N) = {seed_top_u} (claimed Top-{CLAIMED_TOP_U}); Informer's "
        f"5 ceil(ln N) = {informer_top_u}",
        f"published design (sr = {published.sr_ratio}): the global branch compares N x "
        f"{published.global_keys} keys = {count(published_dense)} scores with dense attention, "
        f"{count(published_seed)} with `{SEED_KERNEL}`; without reduction `{SEED_KERNEL}` "
        f"computes {count(all_pairs_seed)}",
    ]
    setting = f"`favit` arithmetic, {ANALYTIC_MODEL} stage 1, batch 1, {ANALYTIC_IMG_SIZE} px"
    right = (
        tokens == CLAIMED_TOKENS
        and round(comparisons_m, 1) == CLAIMED_COMPARISONS_M
        and seed_top_u == CLAIMED_TOP_U
    )
    if not right:
        return Reading("for the counts", FAILS, "a count differs from the claim", setting)
    if published.global_keys == tokens:
        return Reading("for the counts", HOLDS, "tokens, N^2 and top-u agree", setting)
    why = (
        f"tokens, N^2 and top-u agree, but the {comparisons_m:.1f}M all-pairs figure is attention "
        f"without spatial reduction (sr = 1); the published FaViT already reduces stage 1's keys "
        f"to {published.global_keys}, so its dense global branch computes "
        f"{count(published_dense)} scores, {published_dense / comparisons:.2%} of that"
    )
    return Reading("for the counts", CONDITIONAL, why, setting)


def _images(row: pd.Series) -> int:
    """Images per step: the batch the row ran (found for ``max``), else its batch axis."""
    batch = pd.to_numeric(pd.Series([row.get("batch")]), errors="coerce").iloc[0]
    return int(row["batch_size"]) if math.isnan(batch) else int(batch)


def _per_image_ms(row: pd.Series) -> float:
    return float(row["step_ms"]) / _images(row)


def _launch_bound(row: pd.Series) -> bool:
    busy = pd.to_numeric(pd.Series([row.get("gpu_busy_share")]), errors="coerce").iloc[0]
    return bool(busy < LAUNCH_BOUND_BUSY_SHARE)  # NaN (no busy share): not launch-bound


def speed_outcome(
    probsparse: pd.Series, full: pd.Series, spread_columns: list[str]
) -> tuple[str, float]:
    """(outcome, log ratio) of ProbSparse's time per image against full attention's, judged as
    ``bench.py compare`` judges a timing (``judge_log_ratio``: its threshold, ``DEFAULT_NOISE_K``
    x the rows' combined log spread): faster, slower, the same speed (within the threshold) or
    not distinguishable (inside a wider noise band); host-bound (not judged) when the slower row
    is launch-bound."""
    log_ratio = math.log(_per_image_ms(probsparse) / _per_image_ms(full))
    if _launch_bound(probsparse if log_ratio > 0 else full):
        return "host-bound", log_ratio
    band = DEFAULT_NOISE_K * math.hypot(
        row_log_spread(probsparse, spread_columns), row_log_spread(full, spread_columns)
    )
    threshold = math.log1p(DEFAULT_CLASSES["timing"].threshold / 100.0)
    verdict = judge_log_ratio(log_ratio, threshold, band, higher_is_better=False)
    return SPEED_OUTCOMES[verdict], log_ratio


def speed_pairs(rows: pd.DataFrame, source: str) -> pd.DataFrame:
    """ProbSparse (``probsparse_seed`` + suffix) against ``dense``/``sdpa`` + the same suffix, per
    setting of a latency or scaling run: one row per pair with its outcome."""
    from suites.analysis.compare import classify_column
    from suites.latency import tidy
    from suites.scaling import stage1_tokens

    ok = tidy(rows)
    if ok.empty:
        return pd.DataFrame()
    spread_columns = [c for c in rows.columns if classify_column(c) == "spread"]
    by = [c for c in SETTING_COLUMNS if c in rows]
    failed = rows[rows["status"].astype(str) == "oom"]
    records = []
    for suffix in SPEED_SUFFIXES:
        mine = ok[ok["model"] == f"{ANALYTIC_MODEL}:{SEED_KERNEL}{suffix}"]
        for _, p in mine.iterrows():
            same = (ok[by].astype(str) == p[by].astype(str)).all(axis=1)
            oom = (failed[by].astype(str) == p[by].astype(str)).all(axis=1)
            for kernel in FULL_KERNELS:
                full = f"{ANALYTIC_MODEL}:{kernel}{suffix}"
                record = {"source": source, "probsparse": p["model"], "full": full, **p[by]}
                record |= {"tokens": stage1_tokens(int(p["img_size"])), "batch": _images(p)}
                record["device_name"] = p.get("device_name")
                match = ok[same & (ok["model"] == full)]
                if not match.empty:
                    outcome, log_ratio = speed_outcome(p, match.iloc[0], spread_columns)
                    records.append(record | {"outcome": outcome, "ratio": math.exp(log_ratio)})
                elif (oom & (failed["model"] == full)).any():
                    records.append(record | {"outcome": "full attention out of memory"})
    return pd.DataFrame.from_records(records)


def _where(values: pd.Series, unit: str) -> str:
    numbers = sorted({int(v) for v in values})
    text = ", ".join(f"{n:,}" for n in numbers)
    return f"{text} {unit}"


def speed_lines(pairs: pd.DataFrame) -> list[str]:
    """One line per (source, ProbSparse, full attention, mode, dtype, batch or size): where it is
    faster, slower, not distinguishable, host-bound or alone in fitting."""
    lines = []
    varying = {"scaling": ("tokens", "tokens"), "latency": ("batch", "images per batch")}
    fixed = {"scaling": "batch_size", "latency": "img_size"}
    for source, of_source in pairs.groupby("source", sort=False):
        column, unit = varying[source]
        keys = ["probsparse", "full", "mode", "dtype", fixed[source]]
        keys += [c for c in ("compile",) if c in of_source and of_source[c].notna().any()]
        for key, group in of_source.groupby(keys, sort=False):
            parts = []
            for outcome, at in group.groupby("outcome", sort=False):
                ratios = at["ratio"].dropna() if "ratio" in at else pd.Series(dtype=float)
                factor = ""
                if outcome in ("faster", "slower") and not ratios.empty:
                    low, high = f"x{ratios.min():.3g}", f"x{ratios.max():.3g}"
                    factor = f" (time {low}" + (f" to {high}" if high != low else "") + ")"
                parts.append(f"{outcome} at {_where(at[column], unit)}{factor}")
            fixed_text = (f"batch {key[4]}" if source == "scaling" else f"{key[4]} px") + (
                f", {key[5]}" if len(key) > 5 else ""
            )
            lines.append(
                f"  - `{key[0]}` vs `{key[1]}` ({source}: {key[2]}, {key[3]}, {fixed_text}): "
                + "; ".join(parts)
            )
    return lines


def judge_faster(result: ClaimResult, root: Path, scaling: RunChoice | None) -> Reading:
    """ "ProbSparse is faster", from the scaling run's sizes and the latency run's batches."""
    name = "for 'ProbSparse is faster'"
    pairs, settings = [], []
    latency = choose_run(root, "latency", _has_speed_pair, required=LATENCY_COLUMNS)
    for choice, source in ((scaling, "scaling"), (latency, "latency")):
        if choice is None:
            continue
        found = speed_pairs(choice.rows, source)
        if found.empty:
            continue
        pairs.append(found)
        used = choice.rows[choice.rows["model"].isin(set(found["probsparse"]) | set(found["full"]))]
        settings.append(f"{source}: {setting_text(used[_ok(used)])}")
        result.add_runs([choice.run.label], [choice.run.path])
    if not pairs:
        result.to_test.append(
            _untested_run("latency", "python bench.py --suite latency --device cuda")
        )
        return Reading(name, UNTESTED, "no ProbSparse and full-attention timing in one run")
    table = pd.concat(pairs, ignore_index=True)
    result.figures.append(
        f"Speed: time per image of `{SEED_KERNEL}` against full attention at the same spatial "
        f"reduction, judged as `bench.py compare` judges a timing ({SPEED_RULE}), where the "
        "slower row is GPU-bound:"
    )
    result.figures += speed_lines(table)
    return Reading(name, *_faster_verdict(table), "; ".join(settings))


def _faster_verdict(table: pd.DataFrame) -> tuple[str, str]:
    judged = table[table["outcome"].isin(JUDGED_SPEED)]
    counts = judged["outcome"].value_counts()
    faster, slower = int(counts.get("faster", 0)), int(counts.get("slower", 0))
    why = (
        f"faster in {faster} of {len(judged)} judged pairs, slower in {slower}; "
        f"{int((table['outcome'] == 'host-bound').sum())} host-bound pairs not judged"
    )
    for outcome in ("faster", "slower"):
        places = [
            f"than `{full}` {_places(rows)}"
            for full, rows in judged[judged["outcome"] == outcome].groupby("full", sort=True)
        ]
        if places:
            why += f"; {outcome} " + ", ".join(places)
    if judged.empty:
        return UNTESTED, why
    verdict = HOLDS if faster == len(judged) else FAILS if faster == 0 else CONDITIONAL
    return verdict, why


def _places(rows: pd.DataFrame) -> str:
    """Where pairs were measured: tokens of the scaling run, settings of the latency run."""
    parts = []
    scaling = rows[rows["source"] == "scaling"]
    if not scaling.empty:
        parts.append(f"at {_where(scaling['tokens'], 'tokens')} (scaling)")
    latency = rows[rows["source"] == "latency"]
    if not latency.empty:
        settings = [
            f"{r['mode']} {r['dtype']} batch {int(r['batch']):,}" for _, r in latency.iterrows()
        ]
        parts.append(f"at {ANALYTIC_IMG_SIZE} px, {'; '.join(settings)} (latency)")
    return " and ".join(parts)


LATENCY_COLUMNS = ("model", "dtype", "batch_size", "mode", "img_size")


def _has_speed_pair(rows: pd.DataFrame) -> bool:
    done = set(rows.loc[_ok(rows), "model"])
    return any(
        f"{ANALYTIC_MODEL}:{SEED_KERNEL}{s}" in done
        and any(f"{ANALYTIC_MODEL}:{k}{s}" in done for k in FULL_KERNELS)
        for s in SPEED_SUFFIXES
    )


def nlogn_slope(low_tokens: float, high_tokens: float) -> float:
    """The log-log slope of N log N between two token counts: ``1 + ln(ln b / ln a) / ln(b / a)``."""
    return 1.0 + math.log(math.log(high_tokens) / math.log(low_tokens)) / math.log(
        high_tokens / low_tokens
    )


def _growth_verdict(exponent: float, tokens: pd.Series) -> tuple[bool, str]:
    """Whether ``exponent`` lies nearer N log N's slope over ``tokens`` than N^2's, and a line."""
    slope = nlogn_slope(tokens.min(), tokens.max())
    nearer = abs(exponent - slope) <= abs(exponent - 2.0)
    law = "N log N" if nearer else "N^2"
    return nearer, (
        f"tokens^{exponent:.2f} over {count(tokens.min())} to {count(tokens.max())} tokens "
        f"({tokens.nunique()} sizes; N log N: {slope:.2f}, N^2: 2): nearer {law}"
    )


def _analytic_growth(model: str, sizes: list[int]) -> tuple[float, pd.Series]:
    """Stage-1 global score elements of ``model`` (ProbSparse over every patch) per size, fitted."""
    import baselines
    import favit
    from suites.scaling import fit_growth_exponent

    parsed = baselines.parse_favit_name(model)
    tokens, elements = [], []
    for size in sizes:
        geometry = favit.stage_geometry(
            parsed.model, size, sr_ratios=parsed.sr_ratios, global_sr_ratios=parsed.global_sr_ratios
        )[0]
        tokens.append(geometry.N)
        elements.append(favit.attention_score_elements(geometry, SEED_KERNEL)["global"])
    series = pd.Series(tokens, dtype=float)
    return fit_growth_exponent(series, elements), series


def judge_nlogn(result: ClaimResult, scaling: RunChoice | None) -> Reading:
    """Growth as N log N: ProbSparse over every patch, analytic counts and measured exponents."""
    from suites.latency import tidy
    from suites.scaling import (
        DEFAULT_IMG_SIZES,
        fit_growth_exponent,
        launch_bound_rows,
        stage1_tokens,
    )

    name = "for growth as N log N"
    rows = pd.DataFrame()
    model = f"{ANALYTIC_MODEL}:{SEED_KERNEL}{EVERY_PATCH_SUFFIXES[-1]}"
    if scaling is not None:
        for suffix in EVERY_PATCH_SUFFIXES:  # like for like where measured
            candidate = f"{ANALYTIC_MODEL}:{SEED_KERNEL}{suffix}"
            found = scaling.rows[(scaling.rows["model"] == candidate) & _ok(scaling.rows)]
            if len(found) >= 2:
                model, rows = candidate, tidy(found)
                break
    sizes = sorted(int(s) for s in rows["img_size"]) if not rows.empty else DEFAULT_IMG_SIZES
    exponent, tokens = _analytic_growth(model, list(sizes))
    verdicts, lines = [], []
    nearer, line = _growth_verdict(exponent, tokens)
    lines.append(f"  - `{model}` analytic global score elements (stage 1): {line}")
    verdicts.append(nearer)
    if rows.empty:
        result.figures += ["Growth of ProbSparse over every patch:", *lines]
        command = "python bench.py --suite scaling --device cuda"
        result.to_test.append(_untested_run("scaling", command))
        return Reading(name, UNTESTED, "no scaling run of ProbSparse over every patch")
    measured_tokens = rows["img_size"].astype(int).map(stage1_tokens)
    bound = launch_bound_rows(rows)
    for label, keep, column in (
        ("step memory", pd.Series(True, index=rows.index), "step_mem_mib"),
        ("GPU-bound step time", ~bound, "step_ms"),
    ):
        at = rows[keep]
        if len(at) < 2:
            lines.append(f"  - `{model}` {label}: fewer than two sizes, not fitted")
            continue
        exponent = fit_growth_exponent(measured_tokens[keep], at[column])
        nearer, line = _growth_verdict(exponent, measured_tokens[keep])
        lines.append(f"  - `{model}` {label}: {line}")
        verdicts.append(nearer)
    result.figures += ["Growth of ProbSparse over every patch:", *lines]
    verdict = HOLDS if all(verdicts) else FAILS
    why = f"{sum(verdicts)} of {len(verdicts)} exponents nearer N log N than N^2"
    return Reading(name, verdict, why, setting_text(rows))


def judge_claim_5(root: Path) -> ClaimResult:
    """The counts (arithmetic from favit's geometry), then what the cost argument implies:
    ProbSparse is faster, and grows as N log N, from the scaling and latency runs."""
    result = ClaimResult(
        CLAIMS[4],
        f"the claim's figures against the same quantities computed by `favit` for "
        f"{ANALYTIC_MODEL} stage 1 at {ANALYTIC_IMG_SIZE}px, with and without the published "
        "spatial reduction; ProbSparse's step time and growth against full attention's",
    )
    counts = judge_counts(result)
    scaling = add_measured_growth(result, root)
    faster = judge_faster(result, root, scaling)
    nlogn = judge_nlogn(result, scaling)
    result.readings = [counts, faster, nlogn]
    return result


# --- the document ----------------------------------------------------------------------------------


def judge_claims(root: str | Path) -> list[ClaimResult]:
    """Every claim's verdict from the committed runs under ``root`` (``ResultsError`` if unreadable)."""
    root = Path(root)
    if not root.is_dir():
        raise ResultsError(f"{root}: no such results folder")
    accuracy = accuracy_rows(root)
    seed_model = f"{ANALYTIC_MODEL}:{SEED_KERNEL}+seed_compat"
    return [
        judge_claim_1(root, accuracy),
        judge_accuracy_claim(
            CLAIMS[1],
            accuracy,
            ANALYTIC_MODEL,
            CLAIMED_B1_EPOCHS,
            CLAIMED_B1_TOP1,
            lambda r: r["global_attn"] == SEED_KERNEL and not (r["sr1"] or r["gsr1"]),
            f"the seed's model (`{ANALYTIC_MODEL}:{SEED_KERNEL}`)",
            seeds_command([seed_model, f"{ANALYTIC_MODEL}:sdpa"], SEED_RECIPE),
        ),
        judge_accuracy_claim(
            CLAIMS[2],
            accuracy,
            "favit_b3",
            CLAIMED_B3_EPOCHS,
            CLAIMED_B3_TOP1,
            lambda r: True,
            "FaViT-B3",
            seeds_command(["favit_b3"], SEED_RECIPE, f" --set epochs={CLAIMED_B3_EPOCHS}"),
        ),
        judge_claim_4(accuracy),
        judge_claim_5(root),
    ]


RUN_RULE = (
    "Runs are read from `<results>/<machine>/<suite>-<UTC>/` (never `runs/`, the scratch folder). "
    "Memory, latency, scaling and accuracy figures come only from runs made on a GPU "
    "(`env.json`: `run.device == cuda`); FLOP counts from any machine. Among those, the full "
    "profile comes before the quick one, then the newest by the folder's UTC stamp. Each reading "
    "of the memory claim uses the first such run with finished rows for it (every ratio of a "
    "reading from that one run); accuracy rows are taken per (model, recipe, epochs, data, "
    "seed) from the first such run that has them (a run may train several seeds with the "
    "accuracy suite's `seed` axis, or one seed per run with `--seed`), leaving out smoke runs "
    "(quick profile); the seeds of a model at a budget give its mean and spread."
)


def render_claim(r: ClaimResult, document_dir: Path) -> list[str]:
    """One claim's section of CLAIMS.md."""
    lines = [f'## {r.claim.number}. "{r.claim.quote}"', "", f"**Verdict: {r.verdict}.**", ""]
    lines.append(f"- Tested by: {r.claim.tested_by}.")
    lines.append(f"- Comparison: {r.comparison}.")
    lines.append(f"- Rule: {r.claim.rule}")
    if len(r.readings) == 1:
        lines.append(f"- Verdict: {r.readings[0].line}.")
    else:
        lines.append("- Verdict per reading:")
        lines += [f"  - {reading.line}." for reading in r.readings]
    if r.figures:
        lines.append("- Figures:")
        lines += [f"  {f}" if f.startswith("  ") else f"  - {f}" for f in r.figures]
    if r.conditions:
        lines.append("- Conditions: " + "; ".join(r.conditions) + ".")
    if r.caveats:
        lines.append("- Caveats: " + "; ".join(r.caveats) + ".")
    if len(r.to_test) == 1:
        lines.append(f"- To test it: {r.to_test[0]}.")
    elif r.to_test:
        lines.append("- To test it:")
        lines += [f"  - {run}." for run in r.to_test]
    if r.sources:
        links = [relative_link(path, document_dir) for path in r.sources]
        lines.append("- Sources: " + ", ".join(f"[{link}]({link})" for link in links))
    return [*lines, ""]


def render_claims(results: list[ClaimResult], document_dir: Path) -> str:
    """CLAIMS.md's text; links are relative to ``document_dir``. Deterministic."""
    lines = [
        "# The seed README's claims, tested",
        "",
        "Generated by `python bench.py --suite claims` from the committed runs beside this file; "
        "do not edit by hand. Every number below comes from a `rows.csv` or from `favit`'s code.",
        "",
        "| # | claim | verdict |",
        "| ---: | --- | --- |",
    ]
    lines += [f"| {r.claim.number} | {r.claim.quote} | **{r.verdict}** |" for r in results]
    lines += ["", "## How verdicts are given", ""]
    lines += [f"- **{verdict}**: {rule}." for verdict, rule in VERDICT_RULES.items()]
    lines.append(
        "- A claim read several ways (against which baseline, at which scope) gets a verdict "
        "per reading, and its headline names them all."
    )
    lines += ["", "## Which runs are used", "", RUN_RULE, ""]
    for r in results:
        lines += render_claim(r, document_dir)
    return "\n".join(lines)


def write_claims(
    root: str | Path, extra_dirs: list[Path] | None = None
) -> tuple[list[ClaimResult], list[Path]]:
    """Judge the claims; write ``<root>/CLAIMS.md`` and a copy in each of ``extra_dirs``."""
    root = Path(root)
    results = judge_claims(root)
    written = []
    for folder in [root, *(extra_dirs or [])]:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / CLAIMS_FILE
        path.write_text(render_claims(results, folder))
        written.append(path)
    return results, written


def measure(cell: Cell, ctx: CellContext) -> list[Row]:
    """Write CLAIMS.md for the results root of the cell; one row per claim."""
    root = Path(cell["results"])
    try:
        results, _ = write_claims(root, [ctx.run_dir])
    except ResultsError as err:
        print(f"claims: error: {err}", file=sys.stderr)  # the row's reason says it too
        raise
    return [
        {
            "claim": r.claim.number,
            "verdict": r.verdict,
            "runs_used": "; ".join(r.runs),
            "claims_md": str(root / CLAIMS_FILE),
        }
        for r in results
    ]


SUITE = Suite(
    name="claims",
    description="verdicts on the seed README's five claims from the committed runs; writes results/CLAIMS.md",
    axes=[results_root_axis()],
    measure=measure,
    isolate=False,
    examples=(
        "python bench.py --suite claims",
        "python bench.py --suite claims --set results=results",
    ),
)
