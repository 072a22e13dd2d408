"""Every model the suite compares, built by name: ``baselines.create("favit_b1:sdpa")``."""

from baselines.registry import (
    FAVIT_MODELS,
    PUBLISHED,
    RATIO_BASELINE,
    REFERENCE_MODELS,
    FavitName,
    ModelInfo,
    PublishedFigures,
    UnsupportedInput,
    as_hw,
    check_input,
    create,
    info,
    is_favit,
    names,
    parse_favit_name,
    validate_name,
)

__all__ = [
    "FAVIT_MODELS",
    "PUBLISHED",
    "RATIO_BASELINE",
    "REFERENCE_MODELS",
    "FavitName",
    "ModelInfo",
    "PublishedFigures",
    "UnsupportedInput",
    "as_hw",
    "check_input",
    "create",
    "info",
    "is_favit",
    "names",
    "parse_favit_name",
    "validate_name",
]
