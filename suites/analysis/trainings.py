"""Accuracy rows for the claims and the paper: the committed trainings per (model, recipe, epochs,
data, seed), a model's seeds at one budget (``SeedStats``: their mean and one training's spread, at
least the test set's binomial sampling error ``sqrt(p (1 - p) / n)``), and how they are judged
against a claimed figure and written.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from suites.analysis.results_index import choose_rows_per_key
from suites.analysis.verdicts import (
    FAILS,
    HOLDS,
    INDISTINGUISHABLE,
    MIN_SEEDS,
    SPREAD_SIGMAS,
    impl_of,
    joined,
    ok_rows,
    setting_text,
    top1,
)

# CIFAR-10's test split; an accuracy row's ``test_images`` is 0 for the whole split.
CIFAR10_TEST_IMAGES = 10_000


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
        keep=lambda rows: ok_rows(rows) & _not_smoke(rows),
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
    import favit

    global_attn = parsed.global_attn or favit.DEFAULT_GLOBAL_ATTN
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
    def mean_error(self) -> float:
        """The standard error of the mean top-1 in points: one training's spread over the square
        root of the seeds (with one seed, the test set's sampling error)."""
        return self.spread / math.sqrt(self.seeds)

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
    ``SPREAD_SIGMAS`` times ``spread`` (a mean's standard error); else FAILS."""
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


# the compile mode the committed trainings of each recipe ran with: eager's math in a fraction of
# its time on a GPU (inductor with CUDA graphs at 224 px; CUDA graphs of the eager kernels at 32)
RECIPE_COMPILE = {"seed": "cudagraph", "native32": "cudagraph_eager"}


def seeds_command(models: Iterable[str], recipe: str, extra: str = "") -> str:
    """The accuracy run that trains ``models`` with ``MIN_SEEDS`` seeds into one run folder."""
    compile_mode = f" --set compile={RECIPE_COMPILE[recipe]}" if recipe in RECIPE_COMPILE else ""
    return (
        f"python bench.py --suite accuracy --device cuda --models {','.join(models)} "
        f"--set recipe={recipe}"
        f"{extra}{compile_mode} --set seed={','.join(map(str, range(MIN_SEEDS)))}"
    )
