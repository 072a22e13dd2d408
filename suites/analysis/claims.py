"""The claims suite (``--suite claims``): a verdict on each claim of the seed README, from committed runs.

A report-only suite: one cell per results root (axis ``results``, default ``results``), run in the
parent process (``isolate=False``). Its ``measure`` reads the committed runs of the other suites
(``suites.analysis.results_index``: which run, by a documented rule), judges each claim, writes
``<results>/CLAIMS.md`` and a copy in the run folder (links are relative to each file's folder), and
returns one row per claim (number, headline verdict, runs used). No figure is typed by hand: every
measured number comes from a ``rows.csv`` and every analytic one from ``favit``'s code; the only
literals are the claimed figures themselves, quoted from the seed. Same results in, same bytes out.

A claim that can be read several ways (against which baseline, at which scope) gets one verdict per
reading (``suites.analysis.verdicts.Reading``), and its headline names each of them: never the
kindest alone. Accuracy figures are judged on the mean over the seeds trained and their spread
(``suites.analysis.trainings.SeedStats``): a gap inside two standard errors of the mean is "not
distinguishable from the claim"; with one seed the spread is the test set's binomial sampling
error. Timings are compared on the log of their ratio against the runs' noise band, as
``bench.py compare`` judges them (``suites.analysis.speed_growth``). Every verdict line names the
device, implementation, dtype, batch and input size of its figures.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from suites.analysis.compare import ALLOCATOR_TOLERANCE_PCT
from suites.analysis.results_index import (
    ResultsError,
    RunChoice,
    choose_run,
    relative_link,
    results_root_axis,
)
from suites.analysis.speed_growth import (
    SPEED_RULE,
    add_measured_growth,
    judge_faster,
    judge_nlogn,
)
from suites.analysis.trainings import (
    SeedStats,
    accuracy_caveats,
    accuracy_line,
    accuracy_rows,
    judge_gap,
    one_seed_note,
    pair_seeds_text,
    same_budget,
    seed_stats,
    seeds_command,
    training_setting,
)
from suites.analysis.verdicts import (
    ANALYTIC_IMG_SIZE,
    ANALYTIC_MODEL,
    CONDITIONAL,
    FAILS,
    FULL_KERNELS,
    HOLDS,
    INDISTINGUISHABLE,
    MIN_SEEDS,
    NOT_SHOWN,
    SEED_KERNEL,
    SPREAD_SIGMAS,
    UNTESTED,
    VERDICT_RULES,
    Claim,
    ClaimResult,
    Reading,
    count,
    joined,
    ok_rows,
    pct,
    setting_text,
    top1,
    untested_run,
)
from suites.engine.suite import Cell, CellContext, Row, Suite
from suites.engine.timing import LAUNCH_BOUND_BUSY_SHARE

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
MINIMAL = "minimal"
LOSS_AT_BOUND = f"not distinguishable from the {MINIMAL_LOSS_POINTS:g}-point bound"
# a measured peak within compare's allocator tolerance of the comparison's is the same memory
MEMORY_TOLERANCE_PCT = ALLOCATOR_TOLERANCE_PCT
SEED_RECIPE = "seed"
VIT_FAMILY = "vit"  # the "standard ViT baselines": plain ViTs (baselines family ``vit``)
# A ViT counts as a baseline at an input that gives it at least this token grid: 4-px patches on
# 32-px CIFAR-10 (8x8), DeiT-Tiny / ViT-S in 16-px patches at 224 (14x14); 16-px patches on 32 px
# (2x2) starve it of tokens.
VIT_MIN_GRID = 8
VIT_SUITED = ((SEED_RECIPE, 16), ("native32", 4))  # (recipe, patch px) that give it such a grid
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
        "otherwise; analytic score counts are listed, not judged; a peak within "
        f"{MEMORY_TOLERANCE_PCT:g}% of the comparison's (compare's allocator tolerance) is the "
        "same memory. Accuracy part: the top-1 points FaViT-B1 with ProbSparse loses against B1 "
        "trained with that reading's full attention at the same recipe, epochs and data (mean "
        f"over seeds), minimal when the loss plus {SPREAD_SIGMAS:g} standard errors of the "
        f"difference is <= {MINIMAL_LOSS_POINTS:g} point, not minimal when the loss minus them is "
        f"above it, {LOSS_AT_BOUND} otherwise. A reading does not hold when a measured part does "
        "not (memory nowhere >= the claim, or no accuracy pair minimal or at the bound); holds "
        "only under stated conditions when its memory part holds only in part, whatever the "
        "accuracy; is untested when memory is not measured, or holds everywhere and the accuracy "
        "is not measured; holds when both parts hold; is not distinguishable when memory holds "
        "and the loss is at the bound; otherwise holds only under stated conditions. The "
        "headline gives every reading's verdict.",
    ),
    Claim(
        2,
        f"FaViT-B1 reaches {CLAIMED_B1_TOP1}% CIFAR-10 top-1 in {CLAIMED_B1_EPOCHS} epochs from "
        "scratch (images upsampled to 224)",
        f"the accuracy suite (GPU), recipe `{SEED_RECIPE}`, {CLAIMED_B1_EPOCHS} epochs, FaViT-B1",
        "per seed's model (`favit_b1:probsparse_seed`, with or without `+seed_compat`; one "
        "verdict each): holds when the mean final-epoch top-1 over its seeds (raw or EMA "
        f"weights) reaches the claim; not distinguishable when it falls short by less than "
        f"{SPREAD_SIGMAS:g} standard errors of the mean (the spread over seeds, at least the test "
        "set's binomial sampling error, over the square root of the seeds); holds only under stated conditions when only the test-picked "
        "best epoch, or only another B1 variant, reaches it; does not hold otherwise. With "
        f"fewer than {MIN_SEEDS} seeds the seed-to-seed spread is unknown: a verdict other than "
        "not distinguishable is not shown, with the gap stated and the run that settles it named.",
    ),
    Claim(
        3,
        f"FaViT-B3 'projected' {CLAIMED_B3_TOP1:g}%+ in {CLAIMED_B3_EPOCHS} epochs (never tested)",
        f"the accuracy suite (GPU), recipe `{SEED_RECIPE}`, {CLAIMED_B3_EPOCHS} epochs, FaViT-B3",
        "per FaViT-B3 variant: holds when the mean final-epoch top-1 over its seeds (raw or EMA) "
        f"reaches the claim; not distinguishable when short by less than {SPREAD_SIGMAS:g} "
        "standard errors of the mean; holds only under stated conditions when only the test-picked best "
        f"epoch does; does not hold otherwise; not shown on fewer than {MIN_SEEDS} seeds, as "
        "for claim 2.",
    ),
    Claim(
        4,
        "B1 outperforms standard ViT baselines (~70-80% early in training without big data)",
        "the accuracy suite (GPU): FaViT-B1 against plain ViTs trained with the same recipe, "
        "epochs and data, at an input that suits them: 16-px patches (DeiT-Tiny, ViT-S/16) on "
        "the 224-px seed recipe, 4-px patches on 32-px CIFAR-10 (`native32`)",
        f"a ViT counts only where it sees at least a {VIT_MIN_GRID}x{VIT_MIN_GRID} token grid "
        "(a ViT trained on fewer tokens is listed, not counted). Per pair (means over seeds): B1 "
        f"ahead or behind when the gap exceeds {SPREAD_SIGMAS:g} standard errors of the "
        "difference, else not distinguishable. Holds when B1 is ahead in every pair; holds only "
        "under stated conditions when in some; does not hold when it is ahead in none and "
        "behind in one or more; not distinguishable when every pair is; untested without a pair "
        f"that counts; not shown when a side has fewer than {MIN_SEEDS} seeds, as for claim 2. "
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
        "four readings. The counts: does not hold when the token count, its square (to the "
        "claim's one decimal in millions) or the seed's top-u differ from the claim; holds when "
        "they agree and the published design's global branch compares every patch with every "
        "patch; holds only under stated conditions when they agree but it compares fewer pairs. "
        "ProbSparse is faster: `probsparse_seed` against full attention at the same spatial "
        f"reduction, per size and batch, as `bench.py compare` judges a timing ({SPEED_RULE}); a "
        "pair is judged only where the slower row is GPU-bound (busy >= "
        f"{pct(LAUNCH_BOUND_BUSY_SHARE)}: a launch-bound step times the host); holds when faster "
        "in every judged pair, does not hold when in none, holds only under stated conditions "
        "otherwise (where it is faster is listed). N log N, two readings of ProbSparse over "
        "every patch against tokens, each log-log exponent set beside the slopes N (1), N log N "
        "(a least-squares fit of N ln N over the same tokens, about 1 + 1 / ln N) and N^2 (2): "
        "the analytic score count, exact, holds when N log N's slope is the nearest of the "
        "three; the measured step memory and GPU-bound step time, each with its fit's standard "
        f"error, hold when N log N's slope is the only one within {SPREAD_SIGMAS:g} standard "
        "errors of every exponent, do not hold when one exceeds it by more, and are not shown "
        "otherwise (the headline says whether the growth is sub-quadratic).",
    ),
)


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
# the claim is about the algorithm: FaViT's reference implementation materializes what the seed's
# code does (sampled keys gathered, top-u rows scattered into a fill); the fast path is a speed choice
JUDGED_IMPL = "reference"


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
    ratios = with_readings(ratios)
    if ratios.empty:
        return ratios
    mine = ratios[
        (ratios["reading"] == reading.key)
        & (ratios["probsparse"] == reading.probsparse)
        & ratios["comparison"].isin(reading.comparisons)
    ]
    if "impl" in mine:
        mine = mine[mine["impl"].astype(str) == JUDGED_IMPL]
    return mine.reset_index(drop=True)


def memory_reductions(root: Path, reading: MemoryReading) -> tuple[RunChoice | None, pd.DataFrame]:
    """The first memory run (rule order) with a finished comparison for ``reading``, and its rows
    of ``suites.memory.reduction_table`` (``reduction`` NaN where the comparison failed)."""
    from suites import memory

    found: dict[int, pd.DataFrame] = {}

    def has_reading(rows: pd.DataFrame) -> bool:
        done = rows[ok_rows(rows)]
        if not (done["variant"] == reading.probsparse).any():
            return False
        found[id(rows)] = reading_ratios(memory.reduction_table(rows), reading)
        return bool(found[id(rows)]["reduction"].notna().any())

    choice = choose_run(root, "memory", has_reading, required=["level", "variant", "model"])
    if choice is None:
        return None, pd.DataFrame()
    return choice, found[id(choice.rows)]


def reduction_summary(ratios: pd.DataFrame) -> pd.DataFrame:
    """``suites.memory.reduction_summary`` per (reading, implementation, dtype, level, metric,
    ProbSparse variant, comparison), readings and levels in their own order, the rest by name."""
    from suites.memory import LEVELS
    from suites.memory import reduction_summary as memory_summary

    keys = [k for k in SUMMARY_KEYS if k in ratios]
    groups = memory_summary(ratios, by=keys).rename(
        columns={"min_reduction": "min", "max_reduction": "max", "holds_98": "meeting"}
    )
    orders = {"reading": [r.key for r in MEMORY_READINGS], "level": list(LEVELS)}
    by = []
    for key in keys:
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
    summary: str = ""  # the figures in a few words, for the headline


def _dtype_text(group: object) -> str:
    """``, fp32`` for a summary row that names its dtype (a run may measure several)."""
    dtype = getattr(group, "dtype", None)
    return f", {dtype}" if isinstance(dtype, str) and dtype else ""


def memory_part(ratios: pd.DataFrame, device: str) -> Part:
    """Claim 1's memory part for one reading's rows (measured on ``device``): the measured peaks
    that reach the claim."""
    finished = ratios.dropna(subset=["reduction"])
    lines = [
        f"    - {g.level} ({g.metric}{_dtype_text(g)}) vs `{g.comparison}`: {pct(g.min)} to "
        f"{pct(g.max)} over {g.settings} settings; >= {pct(CLAIMED_MEMORY_REDUCTION)} in {g.meeting}"
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
    impl = joined(ratios["impl"]) if "impl" in ratios else JUDGED_IMPL
    setting = setting_text(ratios.assign(device_name=device), impl=impl)
    summary = (
        f"memory >= {pct(CLAIMED_MEMORY_REDUCTION)} in {meeting} of {len(done)} measured peaks"
    )
    return Part(verdict, why, lines, setting, summary=summary)


def memory_side(reduction: float) -> str:
    """ "more", "less" or "same": ProbSparse's measured peak against the comparison's, the same when
    the two lie within ``MEMORY_TOLERANCE_PCT`` of the comparison's (``reduction`` = 1 - ratio)."""
    if abs(reduction) * 100 <= MEMORY_TOLERANCE_PCT:
        return "same"
    return "less" if reduction > 0 else "more"


def _more_memory_lines(done: pd.DataFrame) -> list[str]:
    """Per comparison, the levels where ProbSparse's measured peak is nowhere below it beyond the
    allocator tolerance: more in every setting, or more in some and the same in the rest."""
    lines = []
    same = f"the same within {MEMORY_TOLERANCE_PCT:g}%"
    for comparison, rows in done.groupby("comparison", sort=True):
        parts = []
        for level in MEMORY_JUDGED_LEVELS:
            sides = rows.loc[rows["level"] == level, "reduction"].map(memory_side)
            more, total = int((sides == "more").sum()), len(sides)
            if total == 0 or (sides == "less").any():
                continue
            if more == total:
                parts.append(f"more memory in every setting at level {level}")
            elif more:
                parts.append(
                    f"more memory in {more} of {total} settings at level {level}, {same} in the rest"
                )
            else:
                parts.append(f"{same} in every setting at level {level}")
        if parts:
            lines.append(f"  - ProbSparse against `{comparison}`: " + "; ".join(parts))
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


def loss_outcome(loss: float, spread: float) -> str:
    """The accuracy part's word for one pair's top-1 loss (points) and its spread: minimal only
    when ``SPREAD_SIGMAS`` spreads above the loss stay within the bound, not minimal when as many
    below it are beyond the bound, else not distinguishable from the bound."""
    if loss + SPREAD_SIGMAS * spread <= MINIMAL_LOSS_POINTS:
        return MINIMAL
    if loss - SPREAD_SIGMAS * spread > MINIMAL_LOSS_POINTS:
        return "not minimal"
    return LOSS_AT_BOUND


def _accuracy_pair_line(p: SeedStats, d: SeedStats) -> tuple[str, str]:
    """(outcome, figure line) of one ProbSparse / full-attention training pair."""
    loss = d.mean() - p.mean()
    spread = math.hypot(p.mean_error, d.mean_error)
    outcome = loss_outcome(loss, spread)
    other = " (the pair also differs in `+seed_compat`)" * bool(
        p.first["seed_compat"] != d.first["seed_compat"]
    )
    line = (
        f"  - accuracy: `{p.model}` {top1(p.mean())} vs `{d.model}` {top1(d.mean())} (recipe "
        f"`{p.first['recipe']}`, {int(p.first['epochs_run'])} epochs, final-epoch raw top-1; "
        f"{pair_seeds_text(p, d)}): loss {loss:+.2f} ± {spread:.2f} points, {outcome}{other} "
        f"[{training_setting(pd.concat([p.rows, d.rows]))}]"
    )
    return outcome, line


def accuracy_part(stats: list[SeedStats], reading: MemoryReading) -> Part:
    """Claim 1's accuracy part: the top-1 ProbSparse loses against the same full attention."""
    pairs = _reading_accuracy(stats, reading)
    if not pairs:
        return Part(
            UNTESTED,
            "accuracy untested (no training pair)",
            [f"  - accuracy: untested (no `{'`, `'.join(reading.accuracy_models())}` trained "
             "at one budget)"],
        )  # fmt: skip
    outcomes, lines = zip(*(_accuracy_pair_line(p, d) for p, d in pairs), strict=True)
    minimal, close = outcomes.count(MINIMAL), outcomes.count(LOSS_AT_BOUND)
    if minimal == len(pairs):
        verdict = HOLDS
    elif minimal + close == len(pairs):
        verdict = INDISTINGUISHABLE
    else:
        verdict = FAILS if minimal + close == 0 else CONDITIONAL
    why = (
        f"accuracy loss minimal (+ {SPREAD_SIGMAS:g} standard errors <= "
        f"{MINIMAL_LOSS_POINTS:g} point) in {minimal} of {len(pairs)} pairs"
    )
    if close:
        why += f" ({close} {LOSS_AT_BOUND})"
    stats_used = list(dict.fromkeys(s for pair in pairs for s in pair))
    return Part(verdict, why, list(lines), stats=stats_used)


def reading_verdict(memory: Part, accuracy: Part) -> str:
    """Claim 1's verdict for one reading from its memory and accuracy parts (the claim's rule): a
    measured part that fails fails the conjunction; memory that holds only in part caps it there,
    whatever the accuracy; only memory that holds everywhere leaves the verdict to the accuracy."""
    if FAILS in (memory.verdict, accuracy.verdict):
        return FAILS
    if memory.verdict == UNTESTED:
        return UNTESTED
    if memory.verdict != HOLDS:
        return CONDITIONAL
    if accuracy.verdict in (HOLDS, INDISTINGUISHABLE, UNTESTED):
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
        result.to_test.append(untested_run("memory", command))
    else:
        memory = memory_part(ratios, joined(choice.rows.get("device_name", []), ", "))
        memory.lines.insert(0, f"  - memory (`{choice.run.label}`, {memory.setting}):")
        result.add_runs([choice.run.label], [choice.run.path])
        if reading.caveat:
            result.add_caveats([reading.caveat])
    accuracy = accuracy_part(stats, reading)
    if accuracy.verdict == UNTESTED and memory.verdict != FAILS:
        command = seeds_command(reading.accuracy_models(), SEED_RECIPE)
        result.to_test.append(untested_run("accuracy", command))
    for s in accuracy.stats:
        result.add_runs(s.runs, s.folders)
    if accuracy.stats:
        result.add_caveats(accuracy_caveats(pd.concat([s.rows for s in accuracy.stats])))
    result.figures += [f"{reading.name.capitalize()}: {reading.what}:", *memory.lines]
    result.figures += accuracy.lines
    verdict = reading_verdict(memory, accuracy)
    why = "; ".join(part.why for part in (memory, accuracy))
    setting = f"memory: {memory.setting or 'no run'}"
    if accuracy.stats:
        setting += f"; accuracy: {training_setting(pd.concat([s.rows for s in accuracy.stats]))}"
    return Reading(reading.name, verdict, why, setting, _reading_note(memory, accuracy))


def _reading_note(memory: Part, accuracy: Part) -> str:
    """The headline's note on a claim-1 reading that memory does not decide alone: how much of
    the memory part holds (and that accuracy is untested), and a one-seed accuracy figure."""
    if memory.verdict in (FAILS, UNTESTED):
        return ""
    notes = []
    if memory.verdict == CONDITIONAL:
        notes.append(memory.summary)
        notes += ["accuracy untested"] if accuracy.verdict == UNTESTED else []
    notes += [one_seed_note(accuracy.stats)] if one_seed_note(accuracy.stats) else []
    return ", ".join(notes)  # "; " separates the headline's readings


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
        result.to_test = [untested_run("accuracy", command)]
        return result
    result.add_caveats(accuracy_caveats(pd.concat([s.rows for s in stats])))
    result.figures = [accuracy_line(s) for s in stats]
    for s in stats:
        result.add_runs(s.runs, s.folders)
    primary = [s for s in stats if is_primary(s.first)]
    others = [s.model for s in stats if s not in primary and s.final >= claimed_top1]
    if not primary:
        result.readings = [Reading("", UNTESTED, f"{primary_name} not trained")]
        result.to_test = [untested_run("accuracy", command)]
        if others:
            result.conditions.append("reached only by " + ", ".join(f"`{m}`" for m in others))
        return result
    named = len(primary) > 1
    result.readings = [
        _accuracy_reading(s, claimed_top1, others, f"for `{s.model}`" if named else "")
        for s in primary
    ]
    if any(r.verdict == NOT_SHOWN for r in result.readings):
        result.to_test = [untested_run("accuracy", command)]
    return result


def _accuracy_reading(stats: SeedStats, claimed: float, others: list[str], name: str) -> Reading:
    """One model's verdict on a claimed top-1 (``CLAIMS[1].rule``)."""
    gap = stats.final - claimed
    why = f"final-epoch top-1 {top1(stats.final)}, {gap:+.2f} points from the claim ({stats.spread_text})"
    verdict = judge_gap(stats.final, claimed, stats.mean_error)
    note = one_seed_note([stats])
    if verdict == FAILS and stats.best >= claimed:
        verdict = CONDITIONAL
        why += f"; reaches {top1(claimed)} only when the test set picks the epoch"
    elif verdict == FAILS and others:
        verdict = CONDITIONAL
        why += "; reached only by another variant: " + ", ".join(f"`{m}`" for m in others)
    if stats.seeds < MIN_SEEDS and verdict in (HOLDS, FAILS, CONDITIONAL):
        verdict, note = NOT_SHOWN, unsettled_note(stats, gap)
    return Reading(name, verdict, why, training_setting(stats.rows), note)


def unsettled_note(stats: SeedStats, gap: float) -> str:
    """The headline's note on a top-1 from too few seeds: the gap, and what is missing."""
    side = "above" if gap >= 0 else "below"
    spread = "unmeasured" if stats.seeds < 2 else f"from {stats.seeds} seeds only"
    return (
        f"{stats.seeds_text}: {abs(gap):.2f} points {side} the claim, seed-to-seed spread "
        f"{spread}, needs {MIN_SEEDS} seeds"
    )


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


def vit_grid(model: str, train_img_size: object) -> int | None:
    """Tokens per side of a ViT's training images, if its patch and input size are known."""
    size = pd.to_numeric(pd.Series([train_img_size]), errors="coerce").iloc[0]
    patch = vit_patch(model)
    if patch is None or math.isnan(size):
        return None
    return int(size) // patch


def vit_not_counted(model: str, train_img_size: object) -> str:
    """Why a top-1 of ``model`` trained at ``train_img_size`` px is no ViT baseline (fewer than
    ``VIT_MIN_GRID`` tokens per side); "" when it counts or ``model`` is not a plain ViT."""
    import baselines

    try:
        if baselines.info(model).family != VIT_FAMILY:
            return ""
    except ValueError:
        return ""
    grid = vit_grid(model, train_img_size)
    if grid is None:
        return "its token grid is not known"
    return f"a {grid}x{grid} token grid starves the ViT" if grid < VIT_MIN_GRID else ""


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
            runs.append(untested_run("accuracy", command))
        else:
            runs.append(
                f"a ViT with {patch}-px patches for recipe `{recipe}` (no registry entry in "
                "`baselines` yet)"
            )
    return runs


def _pair_outcome(b1: SeedStats, vit: SeedStats) -> tuple[str, float, float]:
    gap = b1.mean() - vit.mean()
    spread = math.hypot(b1.mean_error, vit.mean_error)
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
    counted = [(f, v) for f, v in pairs if not _not_counted(v)]
    low, high = CLAIMED_VIT_TOP1_RANGE
    outcomes = []
    for f, v in pairs:
        outcome, gap, spread = _pair_outcome(f, v)
        if not _not_counted(v):
            outcomes.append(outcome)
        inside = "inside" if low <= v.mean() <= high else "outside"
        note = f"; not counted: {_not_counted(v)}" if _not_counted(v) else ""
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


def _not_counted(vit: SeedStats) -> str:
    return vit_not_counted(vit.model, vit.first.get("train_img_size"))


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
    fewest = min(s.seeds for pair in counted for s in pair)
    if fewest < MIN_SEEDS and verdict != INDISTINGUISHABLE:
        verdict = NOT_SHOWN
        why += f" (a side of {fewest} seed{'s' * (fewest > 1)}: seed-to-seed spread unmeasured)"
    rows = pd.concat([s.rows for pair in counted for s in pair])
    note = one_seed_note(s for pair in counted for s in pair)
    return Reading("", verdict, why, training_setting(rows), note)


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
    result.readings = [counts, faster, *judge_nlogn(result, scaling)]
    return result


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
