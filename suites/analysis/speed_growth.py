"""What claim 5's cost argument implies, measured: ProbSparse's time per image against full
attention's at the same spatial reduction (the scaling run's sizes, the latency run's batches;
judged as ``bench.py compare`` judges a timing, where the slower step is GPU-bound), and the growth
of ProbSparse over every patch with the token count, against N, N log N and N^2 (an exact count
by the nearest slope, a measured exponent by its fit's standard error).
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from suites.analysis.compare import (
    DEFAULT_CLASSES,
    DEFAULT_NOISE_K,
    judge_log_ratio,
    row_log_spread,
)
from suites.analysis.results_index import RunChoice, choose_run
from suites.analysis.verdicts import (
    ANALYTIC_IMG_SIZE,
    ANALYTIC_MODEL,
    CONDITIONAL,
    FAILS,
    FULL_KERNELS,
    HOLDS,
    NOT_SHOWN,
    SEED_KERNEL,
    SPREAD_SIGMAS,
    UNTESTED,
    ClaimResult,
    Reading,
    count,
    ok_rows,
    pct,
    setting_text,
    untested_run,
)
from suites.engine.timing import LAUNCH_BOUND_BUSY_SHARE

SPEED_RULE = (
    f"faster or slower when the log of the time-per-image ratio exceeds both "
    f"ln(1 + {DEFAULT_CLASSES['timing'].threshold:g}%) and {DEFAULT_NOISE_K:g} x the two rows' "
    "combined log spread; the same speed inside a threshold wider than the noise, not "
    "distinguishable inside a noise band wider than the threshold"
)
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
        return bool((ok_rows(rows) & rows["model"].isin(models)).any())

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
            f"Measured growth: not measured; run {untested_run('scaling', command)}."
        )
        return None
    rows = choice.rows[choice.rows["model"].isin(exponents["model"]) & ok_rows(choice.rows)]
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
        settings.append(f"{source}: {setting_text(used[ok_rows(used)])}")
        result.add_runs([choice.run.label], [choice.run.path])
    if not pairs:
        result.to_test.append(
            untested_run("latency", "python bench.py --suite latency --device cuda")
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
    done = set(rows.loc[ok_rows(rows), "model"])
    return any(
        f"{ANALYTIC_MODEL}:{SEED_KERNEL}{s}" in done
        and any(f"{ANALYTIC_MODEL}:{k}{s}" in done for k in FULL_KERNELS)
        for s in SPEED_SUFFIXES
    )


GROWTH_NAME = "for growth as N log N"
ANALYTIC_GROWTH = f"{GROWTH_NAME} in the analytic count"
MEASURED_GROWTH = f"{GROWTH_NAME} in the measured step"
SUB_QUADRATIC = "sub-quadratic: these runs cannot tell N log N from N"


def nlogn_slope(tokens: pd.Series) -> float:
    """The log-log slope a least-squares fit gives N log N over ``tokens`` (about 1 + 1 / ln N):
    what an exponent fitted over the same tokens is compared with."""
    from suites.scaling import fit_growth_exponent

    values = tokens.astype(float)
    return fit_growth_exponent(values, values * values.map(math.log))


def law_slopes(tokens: pd.Series) -> dict[str, float]:
    """The log-log slope of each growth law over ``tokens``."""
    return {"N": 1.0, "N log N": nlogn_slope(tokens), "N^2": 2.0}


def _over(tokens: pd.Series) -> str:
    slope = law_slopes(tokens)["N log N"]
    return (
        f"over {count(tokens.min())} to {count(tokens.max())} tokens ({tokens.nunique()} sizes; "
        f"N: 1, N log N: {slope:.2f}, N^2: 2)"
    )


def analytic_growth_outcome(exponent: float, tokens: pd.Series) -> tuple[bool, str]:
    """Whether an exact count's exponent lies nearest N log N's slope of the three laws, and a
    line: exact counts have no noise, so the nearest law is the count's."""
    slopes = law_slopes(tokens)
    nearest = min(slopes, key=lambda law: abs(exponent - slopes[law]))
    return nearest == "N log N", f"tokens^{exponent:.2f} {_over(tokens)}: nearest {nearest}"


def measured_growth_outcome(exponent: float, error: float, tokens: pd.Series) -> tuple[str, str]:
    """(outcome, line) of a fitted exponent and its standard error: ``above`` when it exceeds N log
    N's slope by more than ``SPREAD_SIGMAS`` errors, ``N log N`` when N log N's is the only slope
    within them, ``unresolved`` otherwise (no error, from two sizes, resolves nothing)."""
    slopes = law_slopes(tokens)
    reach = math.inf if math.isnan(error) else SPREAD_SIGMAS * error
    within = [law for law, slope in slopes.items() if abs(exponent - slope) <= reach]
    if exponent - reach > slopes["N log N"]:
        outcome = "above"
    else:
        outcome = "N log N" if within == ["N log N"] else "unresolved"
    if math.isinf(reach):
        where = "two sizes: no fit error, no law told apart"
    elif within:
        where = f"within {SPREAD_SIGMAS:g} standard errors of {' and '.join(within)}"
    else:
        where = _between(exponent, slopes) + f", beyond {SPREAD_SIGMAS:g} standard errors of each"
    error_text = "" if math.isnan(error) else f" ± {error:.2g}"
    return outcome, f"tokens^{exponent:.2f}{error_text} {_over(tokens)}: {where}"


def _between(exponent: float, slopes: dict[str, float]) -> str:
    """Where an exponent lies among the laws' slopes (ordered N, N log N, N^2)."""
    laws = list(slopes)
    above = [law for law in laws if slopes[law] < exponent]
    if not above:
        return f"below {laws[0]}'s slope"
    if len(above) == len(laws):
        return f"above {laws[-1]}'s slope"
    return f"between {above[-1]}'s and {laws[len(above)]}'s slopes"


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


def _every_patch_rows(scaling: RunChoice | None) -> tuple[str, pd.DataFrame]:
    """The ProbSparse-over-every-patch model of the scaling run (like for like where measured)
    and its finished rows (empty without such a run)."""
    from suites.latency import tidy

    for suffix in EVERY_PATCH_SUFFIXES if scaling is not None else ():
        candidate = f"{ANALYTIC_MODEL}:{SEED_KERNEL}{suffix}"
        found = scaling.rows[(scaling.rows["model"] == candidate) & ok_rows(scaling.rows)]
        if len(found) >= 2:
            return candidate, tidy(found)
    return f"{ANALYTIC_MODEL}:{SEED_KERNEL}{EVERY_PATCH_SUFFIXES[-1]}", pd.DataFrame()


def judge_nlogn(result: ClaimResult, scaling: RunChoice | None) -> list[Reading]:
    """Growth as N log N, ProbSparse over every patch: the analytic count (exact: the nearest
    law) and the measured step's memory and GPU-bound time (each exponent against its error)."""
    from suites.scaling import DEFAULT_IMG_SIZES

    model, rows = _every_patch_rows(scaling)
    sizes = sorted(int(s) for s in rows["img_size"]) if not rows.empty else DEFAULT_IMG_SIZES
    exponent, tokens = _analytic_growth(model, list(sizes))
    nearest, line = analytic_growth_outcome(exponent, tokens)
    result.figures.append("Growth of ProbSparse over every patch:")
    result.figures.append(f"  - `{model}` analytic global score elements (stage 1): {line}")
    why = f"the exact count grows as tokens^{exponent:.2f}: {line.rsplit(': ', 1)[1]}"
    setting = f"`favit` arithmetic, {ANALYTIC_MODEL} stage 1, batch 1, {joined_sizes(sizes)} px"
    analytic = Reading(ANALYTIC_GROWTH, HOLDS if nearest else FAILS, why, setting)
    if rows.empty:
        command = "python bench.py --suite scaling --device cuda"
        result.to_test.append(untested_run("scaling", command))
        measured = Reading(
            MEASURED_GROWTH, UNTESTED, "no scaling run of ProbSparse over every patch"
        )
        return [analytic, measured]
    return [analytic, _measured_growth_reading(result, model, rows)]


def joined_sizes(sizes: list[int]) -> str:
    return "/".join(str(s) for s in sorted(set(sizes)))


def _measured_growth_reading(result: ClaimResult, model: str, rows: pd.DataFrame) -> Reading:
    """The measured step's growth exponents, each judged against its fit error."""
    from suites.scaling import fit_growth, launch_bound_rows, stage1_tokens

    tokens = rows["img_size"].astype(int).map(stage1_tokens)
    bound = launch_bound_rows(rows)
    outcomes, sub_quadratic = [], True
    for label, keep, column in (
        ("step memory", pd.Series(True, index=rows.index), "step_mem_mib"),
        ("GPU-bound step time", ~bound, "step_ms"),
    ):
        if keep.sum() < 2:
            result.figures.append(f"  - `{model}` {label}: fewer than two sizes, not fitted")
            continue
        exponent, error = fit_growth(tokens[keep], rows.loc[keep, column])
        outcome, line = measured_growth_outcome(exponent, error, tokens[keep])
        result.figures.append(f"  - `{model}` {label}: {line}")
        outcomes.append(outcome)
        sub_quadratic &= exponent + SPREAD_SIGMAS * error < 2.0
    verdict, why, note = _measured_verdict(outcomes, sub_quadratic)
    return Reading(MEASURED_GROWTH, verdict, why, setting_text(rows), note)


def _measured_verdict(outcomes: list[str], sub_quadratic: bool) -> tuple[str, str, str]:
    """(verdict, why, headline note) from the measured exponents' outcomes."""
    why = (
        f"{outcomes.count('N log N')} of {len(outcomes)} exponents told apart as N log N, "
        f"{outcomes.count('above')} above its slope by more than {SPREAD_SIGMAS:g} standard errors"
    )
    if not outcomes:
        return UNTESTED, "no exponent fitted", ""
    if "above" in outcomes:
        return FAILS, why, ""
    if outcomes.count("N log N") == len(outcomes):
        return HOLDS, why, ""
    note = SUB_QUADRATIC if sub_quadratic else "these runs cannot tell N log N from N or N^2"
    return NOT_SHOWN, why, note
