"""The compile modes the suites share: how a model is wrapped for each, and the step mark.

- ``eager``: the model as it is;
- ``compile``: ``torch.compile(model, dynamic=False)``, inductor (its ``mode``, e.g.
  ``max-autotune-no-cudagraphs``, or its config settings, may be given);
- ``cudagraph``: inductor with CUDA graphs (``mode="reduce-overhead"``; with settings, the same as
  ``triton.cudagraphs=True``), the fixed-shape step replayed without per-kernel launches;
- ``cudagraph_eager``: CUDA graphs of the eager kernels (dynamo's ``cudagraphs`` backend): no
  inductor code generation, so seconds to prepare where inductor takes minutes.

The two CUDA-graph modes need a CUDA device (their callers say so in their own terms), a
``step_mark`` before each step, and keep their activations in a private pool the allocator counts
as reserved.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

COMPILE_MODES = ("eager", "compile", "cudagraph", "cudagraph_eager")
CUDA_GRAPH_MODES = ("cudagraph", "cudagraph_eager")


def parse_inductor_config(text: str | None) -> dict[str, Any]:
    """``"freezing=1,combo_kernels=true"`` -> ``{"freezing": True, "combo_kernels": True}``.

    Names are ``torch._inductor.config`` keys (dotted ones too, e.g. ``triton.cudagraphs``);
    values ``true``/``false``/``1``/``0``, other integers, floats, or text. An unknown name raises
    ``ValueError``.
    """
    if not text:
        return {}
    from torch._inductor import config as inductor_config

    known = inductor_config.get_config_copy()
    settings: dict[str, Any] = {}
    for item in text.split(","):
        name, sep, raw = item.strip().partition("=")
        if not sep or name not in known:
            raise ValueError(
                f"bad inductor_config item {item.strip()!r}; valid: name=value pairs joined by ',', "
                "each name a key of torch._inductor.config (e.g. freezing=1,combo_kernels=1)"
            )
        lowered = raw.lower()
        if lowered in ("true", "1", "false", "0") and isinstance(known[name], bool):
            settings[name] = lowered in ("true", "1")
            continue
        for convert in (int, float):
            try:
                settings[name] = convert(raw)
                break
            except ValueError:
                continue
        else:
            settings[name] = raw
    return settings


def compile_model(
    model: nn.Module,
    mode: str,
    inductor_mode: str | None = None,
    inductor_settings: dict[str, Any] | None = None,
) -> nn.Module:
    """``model`` wrapped for ``mode`` (one of ``COMPILE_MODES``); ``inductor_mode`` or
    ``inductor_settings`` (``torch.compile``'s ``options``, exclusive with its ``mode``) tune
    inductor and do not apply to ``eager`` or ``cudagraph_eager``."""
    if mode not in COMPILE_MODES:
        raise ValueError(f"bad compile mode {mode!r}; valid: {', '.join(COMPILE_MODES)}")
    settings = dict(inductor_settings or {})
    if mode in ("eager", "cudagraph_eager") and (settings or inductor_mode):
        raise ValueError(f"inductor_mode and inductor_config apply to inductor, not {mode}")
    if settings and inductor_mode:
        raise ValueError("inductor_mode and inductor_config cannot be combined (torch.compile)")
    if mode == "eager":
        return model
    if mode == "cudagraph_eager":
        return torch.compile(model, backend="cudagraphs", dynamic=False)
    if not settings:
        return torch.compile(
            model, mode="reduce-overhead" if mode == "cudagraph" else inductor_mode, dynamic=False
        )
    if mode == "cudagraph":
        settings = {"triton.cudagraphs": True, **settings}
    return torch.compile(model, options=settings, dynamic=False)


def step_mark(mode: str) -> Callable[[], None]:
    """What to call at the start of each step: under CUDA graphs, a new step begins (the last
    step's graph outputs may be overwritten); otherwise nothing."""
    if mode in CUDA_GRAPH_MODES:
        return torch.compiler.cudagraph_mark_step_begin
    return _nothing


def _nothing() -> None:
    """No step to mark."""
