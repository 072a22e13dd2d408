"""Reporting helpers: the facts a reader of every figure relies on."""

import pytest

from suites.engine.render import compact_count, model_palette


@pytest.mark.parametrize("n", [3, 13, 25])
def test_model_palette_gives_every_model_its_own_colour(n):
    # seaborn's default cycle repeats after 10 colours: the 13 models of the scaling matrix shared
    models = [f"model_{i}" for i in range(n)]
    palette = model_palette([*models, *models])  # repeats keep the first appearance's colour
    assert list(palette) == models
    assert len(set(palette.values())) == n


@pytest.mark.parametrize(
    ("value", "label"),
    [(3136, "3,136"), (9999, "9,999"), (12544, "13k"), (112896, "113k"), (200704, "201k")],
)
def test_compact_count_labels_counts_in_full_below_ten_thousand_and_in_thousands_above(
    value, label
):
    assert compact_count(value) == label
