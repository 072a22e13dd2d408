"""Counting MACs and FLOPs of one forward pass: fvcore, torch.utils.flop_counter, and what each skips.

- fvcore's ``FlopCountAnalysis`` traces the model with TorchScript and counts **MACs** (one
  multiply-add = 1) for matmul/linear/conv/einsum, plus a few elementwise ops it has handles for
  (norms, upsampling, adaptive average pooling). ``aten::scaled_dot_product_attention`` has no
  handle in fvcore; we register one with the exact formula, so fused attention is counted, not
  skipped (``sdpa_fvcore_macs``).
- ``torch.utils.flop_counter.FlopCounterMode`` intercepts aten ops at dispatch and counts
  **FLOPs** (2 per MAC) for matmul/conv/attention kernels only. We add the SDPA kernels it lacks
  (the CPU flash kernel, the "overrideable" backend; forward and backward) with its own
  formulas, and a dispatch mode below it lists every executed op that has no formula (views and
  plain copies left out).
- On CUDA, SDPA's flash backend (fp16/bf16 only) pads the head width to a multiple of 8 before
  its kernel, and FlopCounterMode sees the padded width (28 counted as 32); count in fp32 without
  autocast, where no backend pads, for the model's own width (``suites.engine.step`` does).
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten

# Ops that move or allocate memory but do no arithmetic: never reported as "uncounted".
_NO_ARITHMETIC_OPS = frozenset(
    {
        "aten._to_copy",
        "aten._unsafe_view",
        "aten.alias",
        "aten.cat",
        "aten.clone",
        "aten.contiguous",
        "aten.copy_",
        "aten.detach",
        "aten.empty",
        "aten.empty_like",
        "aten.empty_strided",
        "aten.fill_",
        "aten.full",
        "aten.lift_fresh",
        "aten.lift_fresh_copy",
        "aten.new_empty",
        "aten.new_empty_strided",
        "aten.new_zeros",
        "aten.ones",
        "aten.ones_like",
        "aten.scalar_tensor",
        "aten.stack",
        "aten.zero_",
        "aten.zeros",
        "aten.zeros_like",
        "prim.device",
    }
)


def sdpa_macs(
    query_shape: Iterable[int], key_shape: Iterable[int], value_shape: Iterable[int]
) -> int:
    """MACs of softmax(Q K^T) V: Q (..., Hq, Lq, E), K (..., Hkv, S, E), V (..., Hkv, S, Ev).

    QK^T costs Lq*S*E and AV costs Lq*S*Ev per (batch, query head); key/value heads shared by
    several query heads (GQA) are broadcast, so the count follows the query's batch dims.
    """
    q, k, v = list(query_shape), list(key_shape), list(value_shape)
    batch = math.prod(q[:-2])
    return batch * q[-2] * k[-2] * (q[-1] + v[-1])


def _sdpa_fvcore_handle(inputs: list[Any], outputs: list[Any]) -> int:
    from fvcore.nn.jit_handles import get_shape

    return sdpa_macs(get_shape(inputs[0]), get_shape(inputs[1]), get_shape(inputs[2]))


def fvcore_op_handles() -> dict[str, Any]:
    """Handles we add to fvcore's defaults: fused attention, counted exactly."""
    return {"aten::scaled_dot_product_attention": _sdpa_fvcore_handle}


def _sdpa_flop_formula(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    return 2 * sdpa_macs(query_shape, key_shape, value_shape)


def grouped_conv_backward_flop(
    grad_out_shape, x_shape, w_shape, _bias, _stride, _padding, _dilation, transposed,
    _output_padding, _groups, output_mask, out_shape=None, **kwargs,
) -> int:  # fmt: skip
    """FLOPs of ``aten.convolution_backward``: each gradient asked for (input, weight) costs what
    the forward convolution costs. torch.utils.flop_counter's own formula counts the weight
    gradient of a grouped convolution as if ``groups`` were 1 (a depthwise 3x3 over C channels
    comes out C times too large), which inflates the training FLOPs of every model with depthwise
    convolutions (PVT v2, FaViT); this one uses the forward formula, whose weight shape
    ``(C_out, C_in / groups, k, k)`` already carries the groups."""
    from torch.utils.flop_counter import conv_flop_count

    forward = conv_flop_count(x_shape, w_shape, grad_out_shape, transposed=transposed)
    return forward * (int(bool(output_mask[0])) + int(bool(output_mask[1])))


def _sdpa_backward_flop_formula(
    grad_out_shape, query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs
) -> int:
    """torch.utils.flop_counter's own SDPA backward formula (the one it registers for the CUDA
    kernels: the scores recomputed, then the gradients of both matmuls), so that a CPU training
    step counts its attention backward as a CUDA one does."""
    from torch.utils.flop_counter import sdpa_backward_flop_count

    return sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape)


# SDPA kernels FlopCounterMode has no formula for; each takes (query, key, value, ...) forward
# and (grad_out, query, key, value, ...) backward. Those missing from a torch build are skipped.
_SDPA_FORWARD_KERNELS = (
    "_scaled_dot_product_flash_attention_for_cpu",
    "_scaled_dot_product_fused_attention_overrideable",
)
_SDPA_BACKWARD_KERNELS = (
    "_scaled_dot_product_flash_attention_for_cpu_backward",
    "_scaled_dot_product_fused_attention_overrideable_backward",
)


def flop_counter_extra_formulas() -> dict[Any, Any]:
    """Formulas for FlopCounterMode: the SDPA kernels it has none for, forward and backward (those
    that exist in this torch), and a groups-aware ``convolution_backward`` in place of its own."""
    formulas: dict[Any, Any] = {}
    for names, formula in (
        (_SDPA_FORWARD_KERNELS, _sdpa_flop_formula),
        (_SDPA_BACKWARD_KERNELS, _sdpa_backward_flop_formula),
    ):
        formulas.update({getattr(aten, n): formula for n in names if hasattr(aten, n)})
    formulas[aten.convolution_backward] = grouped_conv_backward_flop
    return formulas


@dataclass
class FvcoreCount:
    """fvcore's count of one forward pass, in MACs."""

    total_macs: int
    by_module_macs: dict[str, int]  # "" is the whole model; "stages.0", "stages.0.blocks.1", ...
    skipped_ops: Counter[
        str
    ]  # op -> times seen without a handle (fvcore's own ignore list removed)
    by_operator_macs: dict[str, int]  # "linear", "layer_norm", ...: counted operators only


def fvcore_count(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> FvcoreCount:
    """Trace ``model(*inputs)`` with fvcore and count MACs per module and per operator; list the
    skipped ops."""
    from fvcore.nn import FlopCountAnalysis

    analysis = (
        FlopCountAnalysis(model, inputs)
        .set_op_handle(**fvcore_op_handles())
        .unsupported_ops_warnings(False)
        .uncalled_modules_warnings(False)
        .tracer_warnings("none")
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript deprecation and tracer warnings
        total_macs = int(analysis.total())
    return FvcoreCount(
        total_macs=total_macs,
        by_module_macs={k: int(v) for k, v in analysis.by_module().items()},
        skipped_ops=Counter(analysis.unsupported_ops()),
        by_operator_macs={k: int(v) for k, v in analysis.by_operator().items() if v},
    )


class _ExecutedOpsMode(TorchDispatchMode):
    """Records every aten op that reaches it (placed below FlopCounterMode: after decomposition)."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter[Any] = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops[func] += 1
        return func(*args, **(kwargs or {}))


@dataclass
class FlopCounterCount:
    """torch.utils.flop_counter's count of one forward pass, in FLOPs (2 per MAC)."""

    total_flops: int
    by_op_flops: dict[str, int]  # "aten.bmm" -> FLOPs, whole model
    uncounted_ops: Counter[str] = field(
        default_factory=Counter
    )  # executed, no formula, not a view/copy


def _op_name(packet: Any) -> str:
    return str(getattr(packet, "_qualified_op_name", packet)).replace("::", ".")


def flop_counter_count(
    model: nn.Module | Any, inputs: tuple[torch.Tensor, ...]
) -> FlopCounterCount:
    """Run ``model(*inputs)`` under FlopCounterMode; also list executed ops it has no formula for."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False, custom_mapping=flop_counter_extra_formulas())
    recorder = _ExecutedOpsMode()
    # recorder entered first sits below the counter: it sees the ops the counter lets through,
    # i.e. after the counter's own decompositions.
    with recorder, counter:
        model(*inputs)
    uncounted: Counter[str] = Counter()
    for func, times in recorder.ops.items():
        packet = func._overloadpacket
        name = _op_name(packet)
        if packet in counter.flop_registry or func.is_view or name in _NO_ARITHMETIC_OPS:
            continue
        uncounted[name] += times
    by_op = {_op_name(op): int(v) for op, v in counter.get_flop_counts().get("Global", {}).items()}
    return FlopCounterCount(int(counter.get_total_flops()), by_op, uncounted)


def format_ops(ops: Counter[str]) -> str:
    """``Counter({'aten::topk': 4, 'aten::unfold': 12})`` -> ``"aten::unfold x12; aten::topk x4"``."""
    return "; ".join(f"{op} x{n}" for op, n in sorted(ops.items(), key=lambda kv: (-kv[1], kv[0])))


def parameter_count(model: nn.Module) -> int:
    """Number of parameter elements (shared parameters once)."""
    return sum(p.numel() for p in model.parameters())
