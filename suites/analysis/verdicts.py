"""The vocabulary of the claims suite's verdicts: the verdict words and their rules, a claim, a
reading of it and its result, the subject the claims are about, and how figures are written
(percentages, top-1, the device, implementation, dtype, batch and size a figure was measured at).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from suites.analysis.results_index import needs_gpu, run_files

HOLDS = "holds"
CONDITIONAL = "holds only under stated conditions"
INDISTINGUISHABLE = "not distinguishable from the claim"
FAILS = "does not hold"
NOT_SHOWN = "not shown"
UNTESTED = "untested"
VERDICTS = (HOLDS, CONDITIONAL, INDISTINGUISHABLE, FAILS, NOT_SHOWN, UNTESTED)
# A gap to the claimed figure inside this many standard errors (of a mean, or of a fit) is not a
# verdict.
SPREAD_SIGMAS = 2.0
# Fewer seeds than this leave the seed-to-seed spread unknown: a top-1 on them settles nothing.
MIN_SEEDS = 3
# the subject of the claims: FaViT-B1 at its published input, ProbSparse as the seed applies it
ANALYTIC_MODEL = "favit_b1"
ANALYTIC_IMG_SIZE = 224
FULL_KERNELS = ("dense", "sdpa")  # full attention: one function, two kernels
SEED_KERNEL = "probsparse_seed"

VERDICT_RULES = {
    HOLDS: "every measured figure the claim rests on meets the claimed figure, under the claim's own conditions",
    CONDITIONAL: "the claimed figure is met only in part: at some levels, sizes or batches, against some comparisons, with another model variant, or only when the test set picks the epoch; the conditions are listed",
    INDISTINGUISHABLE: f"the figure misses the claimed one by less than {SPREAD_SIGMAS:g} standard errors of its mean (the spread over the seeds trained, at least the test set's binomial sampling error sqrt(p(1-p)/n), over the square root of the seeds): the runs cannot tell it from the claim",
    FAILS: "figures were measured under the claim's conditions and none meets the claimed figure (beyond their spread, where they have one)",
    NOT_SHOWN: f"figures were measured, but not enough to settle the claim: a top-1 from fewer than {MIN_SEEDS} seeds (the seed-to-seed spread unknown), or a growth exponent whose fit error cannot tell the claimed law from another; what the figures show is stated, and the run that would settle it is named",
    UNTESTED: "no committed run holds the figures; the run that would test the claim is named",
}


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
        self.sources += [p for p in run_sources(list(folders)) if p not in self.sources]

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


def ok_rows(rows: pd.DataFrame) -> pd.Series:
    return rows["status"].astype(str) == "ok"


def run_sources(choice_paths: list[Path]) -> list[Path]:
    """rows.csv, then the run's plots and tables, for each run folder (deduplicated, in order)."""
    out: list[Path] = []
    for folder in choice_paths:
        for path in [folder / "rows.csv", *run_files(folder)]:
            if path not in out:
                out.append(path)
    return out


def untested_run(suite: str, command: str) -> str:
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
