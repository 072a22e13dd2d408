"""Reporting helpers shared by every suite: tables as Markdown and LaTeX, figures as PNG and PDF."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd


def _format_cell(value: object, digits: int) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        return f"{value:,.{digits}f}"
    return str(value)


def format_frame(table: pd.DataFrame, digits: int | dict[str, int] = 2) -> pd.DataFrame:
    """Every value as text, floats with a fixed number of decimals (per column when a dict)."""
    out = table.copy().astype(object)
    for column in table.columns:
        d = digits.get(column, 2) if isinstance(digits, dict) else digits
        out[column] = [_format_cell(v, d) for v in table[column]]
    return out


def markdown_table(table: pd.DataFrame, digits: int | dict[str, int] = 2) -> str:
    """A GitHub-flavoured Markdown table, numbers right-aligned."""
    text = format_frame(table, digits)
    numeric = [pd.api.types.is_numeric_dtype(table[c]) for c in table.columns]
    header = "| " + " | ".join(str(c) for c in text.columns) + " |"
    rule = "| " + " | ".join("---:" if n else "---" for n in numeric) + " |"
    body = ["| " + " | ".join(row) + " |" for row in text.itertuples(index=False, name=None)]
    return "\n".join([header, rule, *body]) + "\n"


def _latex_escape(text: str) -> str:
    for char, escaped in (
        ("\\", r"\textbackslash{}"),
        ("_", r"\_"),
        ("%", r"\%"),
        ("&", r"\&"),
        ("#", r"\#"),
        ("†", r"\textdagger{}"),
        ("‡", r"\textdaggerdbl{}"),
        ("§", r"\S{}"),
        ("¶", r"\P{}"),
        ("µ", r"\textmu{}"),
    ):
        text = text.replace(char, escaped)
    return text


def latex_table(
    table: pd.DataFrame, caption: str = "", label: str = "", digits: int | dict[str, int] = 2
) -> str:
    """A booktabs table (``\\usepackage{booktabs}``), numbers right-aligned."""
    text = format_frame(table, digits)
    align = "".join("r" if pd.api.types.is_numeric_dtype(table[c]) else "l" for c in table.columns)
    lines = [r"\begin{table}[t]", r"\centering"]
    if caption:
        lines.append(rf"\caption{{{_latex_escape(caption)}}}")
    if label:
        lines.append(rf"\label{{{label}}}")
    lines += [rf"\begin{{tabular}}{{{align}}}", r"\toprule"]
    lines.append(" & ".join(_latex_escape(str(c)) for c in text.columns) + r" \\")
    lines.append(r"\midrule")
    lines += [
        " & ".join(_latex_escape(v) for v in row) + r" \\"
        for row in text.itertuples(index=False, name=None)
    ]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def write_table(
    table: pd.DataFrame,
    path_stem: Path,
    caption: str = "",
    digits: int | dict[str, int] = 2,
) -> list[Path]:
    """Write ``<stem>.md`` and ``<stem>.tex``; returns the paths written."""
    path_stem = Path(path_stem)
    path_stem.parent.mkdir(parents=True, exist_ok=True)
    md = path_stem.with_suffix(".md")
    tex = path_stem.with_suffix(".tex")
    md.write_text((f"{caption}\n\n" if caption else "") + markdown_table(table, digits))
    tex.write_text(
        latex_table(table, caption=caption, label=f"tab:{path_stem.name}", digits=digits)
    )
    return [md, tex]


def save_figure(fig, path_stem: Path, formats: Sequence[str] = ("png", "pdf")) -> list[Path]:
    """Save a matplotlib figure as ``<stem>.png`` and ``<stem>.pdf`` and close it."""
    import matplotlib.pyplot as plt

    path_stem = Path(path_stem)
    path_stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [path_stem.with_suffix(f".{fmt}") for fmt in formats]
    for path in paths:
        fig.savefig(
            path,
            dpi=150,
            bbox_inches="tight",
            metadata={"CreationDate": None} if path.suffix == ".pdf" else None,
        )
    plt.close(fig)
    return paths


def plot_style() -> None:
    """One look for every figure: seaborn's paper context, readable fonts, non-interactive backend."""
    import matplotlib

    matplotlib.use("Agg")
    import seaborn as sns

    sns.set_theme(context="paper", style="whitegrid", font_scale=1.3)


def model_palette(models: Iterable[str]) -> dict[str, tuple[float, float, float]]:
    """One distinct colour per model, in order of first appearance: seaborn's default cycle has 10
    colours, so an 11th model would share the first one's; tab20 then husl take over."""
    import seaborn as sns

    names = list(dict.fromkeys(models))
    n = len(names)
    colours = sns.color_palette(None if n <= 10 else "tab20" if n <= 20 else "husl", n_colors=n)
    return dict(zip(names, colours, strict=True))


def compact_count(value: float) -> str:
    """A count for a tick label: in full below 10,000 (3,136), in thousands above (113k)."""
    return f"{value:,.0f}" if value < 10_000 else f"{value / 1000:,.0f}k"


def log_x_at_values(ax, values: Sequence[float]) -> None:
    """A log x-axis ticked at the measured values only (e.g. the token counts of the input sizes),
    labelled compactly (``compact_count``): matplotlib's own ticks put overlapping labels on an
    axis under a decade or two, and six-digit labels in full overlap at a 1.8x step."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter, NullLocator

    ticks = sorted({float(v) for v in values if float(v) > 0})
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: compact_count(value)))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())


def log_x_if_wide(ax, values: Sequence[float], span: float = 10.0) -> None:
    """A log x-axis when the positive values span ``span``x or more (32 px and 224 px runs differ
    50x in GMACs; on a linear axis the small ones collapse onto one point)."""
    positive = [float(v) for v in values if float(v) > 0]
    if positive and max(positive) >= span * min(positive):
        from matplotlib.ticker import FuncFormatter, NullFormatter

        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())  # labelled minor ticks overlap
