"""The measured step that the latency, scaling and profile suites share: build, time, meter.

A step is (model, img_size, batch_size, dtype, mode, channels_last, compile) (``StepSpec``). It is
the same code for every model:
- ``infer``: ``model.eval()``; under ``torch.no_grad()`` and autocast, ``model(x)``.
- ``train``: ``model.train()``; ``zero_grad``; under autocast, ``model(x)``; cross-entropy on fp32
  logits; backward; ``torch.optim.AdamW`` step (lr 1e-3, weight decay 0.05; ``fused=True`` on
  every device: a few multi-tensor kernels instead of foreach's per-op passes and temporaries, as
  a tuned training loop runs it; ``StepSpec.optimizer`` ``timm_adamw`` builds timm benchmark.py's
  instead); fp16 goes through ``torch.amp.GradScaler``, a no-op for bf16/fp32.
- ``dtype``: weights stay fp32; ``bf16``/``fp16`` run the step under ``torch.autocast``; ``fp32``
  runs without autocast at PyTorch's default float32 matmul precision (recorded per row);
  ``bf16_pure`` casts the weights and inputs to bf16 once and runs without autocast (as timm's
  benchmark does with ``--model-dtype``: no per-layer weight casts), inference only.
- ``compile``: ``eager``; ``compile`` = ``torch.compile(model, dynamic=False)`` in inductor's
  default mode (option ``inductor_mode`` picks e.g. ``max-autotune-no-cudagraphs``); ``cudagraph`` =
  ``torch.compile(model, mode="reduce-overhead", dynamic=False)``, inductor with CUDA graphs for
  the fixed shapes (CUDA only); ``cudagraph_eager`` = ``torch.compile(model,
  backend="cudagraphs")``, CUDA graphs of the eager kernels (no inductor code generation: seconds
  to prepare instead of minutes). Only the model is compiled; the loss and optimizer step stay
  eager.
- ``batch_size`` ``max``: the largest batch that fits, found by backing off on OOM from
  ``max_batch_start`` (timm's ladder, then a bisection to within ``max_batch_rel_tol``, 1/16 by
  default, 0 for the exact batch); the row's ``batch_found`` says which, ``batch_failed`` the
  smallest batch that ran out of memory (NaN when the start fitted). A try builds the step, runs
  two steps (the optimizer's state appears at the end of the first) and frees it all before the
  next try; the step that is timed is built once, at the batch found.

Per cell (see ``suites.engine.timing``): a first step (``first_step_s``: lazy init and compilation; for
``max``, the first step of the try at the batch found), the host's time to dispatch one tiny op
(``host_op_us``: rows of one run should agree; a slower host slows every launch-bound step), then
independent rounds of warm-up + timed steps until the last two rounds' medians agree within
``spread_target_pct`` (3%, the GPU target) or ``max_rounds`` (4; 2 on the quick profile, the
CPU's default; ``--full`` gets the full timing on any device) have run (``timing_rounds``). The
step statistics pool the last two rounds; ``round1_median_ms``, ``round2_median_ms`` and their
spread ``repeat_spread_pct`` are theirs. Then one step after a peak-memory reset
(``peak_mem_mib``: allocator peak of a steady-state step including weights, gradients and
optimizer state, or under CUDA graphs the reserved peak: ``mem_source`` says which;
``step_mem_mib``: that peak above the memory held between steps, the last step's gradients
included), and a few profiled steps for ``gpu_busy_share``/``launch_bound``. FLOPs come from
``torch.utils.flop_counter.FlopCounterMode`` on one eager step at batch 2 in fp32 without autocast
whatever the cell's dtype (the same math; under fp16/bf16, CUDA's flash attention would be
counted at its padded head width): forward, plus backward in train mode, with a groups-aware
convolution-backward formula and SDPA's backward on every device; the optimizer's elementwise
work is not counted; scaled to the batch.
Where a cell's time goes: ``setup_s`` (build, move, FLOP count), the first step (or, for ``max``,
the batch search), ``rounds_s`` (timing), ``meters_s`` (memory step and busy-share profile); the
runner's ``wall_s`` holds them all and the worker's start.
``mfu`` = achieved TFLOP/s over the device's measured bf16 matmul rate, whatever the cell's dtype.

Options (``ctx.options``): ``warmup_steps``, ``max_warmup_s``, ``timed_steps``, ``min_round_s``, ``max_steps``,
``spread_target_pct``, ``max_rounds``, ``busy_steps``, ``max_batch_start``, ``max_batch_rel_tol``,
``inductor_mode``, ``inductor_config`` (inductor settings for compiled cells, e.g. ``freezing=1``
for inference or ``combo_kernels=1``).
"""

from __future__ import annotations

import contextlib
import gc
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from suites.engine.compiling import (
    COMPILE_MODES,
    CUDA_GRAPH_MODES,
    compile_model,
    parse_inductor_config,
    step_mark,
)
from suites.engine.suite import Cell, CellContext, CellSkipped, Row, square_image_size
from suites.engine.timing import (
    LAUNCH_BOUND_BUSY_SHARE,
    device_peak_tflops,
    find_max_batch,
    free_device_memory,
    gpu_busy_share,
    host_op_us,
    is_cuda,
    synchronize,
    time_rounds,
)

DTYPES: dict[str, torch.dtype | None] = {  # the autocast dtype of each precision
    "fp32": None,
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
}
# weights and inputs in this dtype, no autocast (timm benchmark's --model-dtype); inference only
PURE_DTYPES: dict[str, torch.dtype] = {"bf16_pure": torch.bfloat16}
MODES = ("infer", "train")
CHANNELS_LAST = ("off", "on")
MAX_BATCH = "max"
NUM_CLASSES = 1000
MIB = 1024.0**2


def _choice(value: str, choices: tuple[str, ...], what: str) -> str:
    if value not in choices:
        raise ValueError(f"bad {what} {value!r}; valid: {', '.join(choices)}")
    return value


def parse_batch_size(value: str | int) -> int | str:
    """A positive int, or ``"max"`` (the largest batch that fits)."""
    if value == MAX_BATCH:
        return MAX_BATCH
    try:
        batch = int(value)
    except (TypeError, ValueError):
        batch = 0
    if batch < 1 or str(batch) != str(value).strip():
        raise ValueError(f"bad batch_size {value!r}; valid: a positive integer or {MAX_BATCH!r}")
    return batch


def parse_dtype(value: str) -> str:
    return _choice(value, (*DTYPES, *PURE_DTYPES), "dtype")


def parse_mode(value: str) -> str:
    return _choice(value, MODES, "mode")


def parse_compile(value: str) -> str:
    return _choice(value, COMPILE_MODES, "compile")


def parse_channels_last(value: str) -> str:
    return _choice(value, CHANNELS_LAST, "channels_last")


@dataclass(frozen=True)
class StepSpec:
    """One step to measure: the axis values of a latency (or scaling) cell, validated."""

    model: str
    img_size: int
    batch_size: int | str  # int or "max"
    dtype: str = "bf16"
    mode: str = "infer"
    channels_last: str = "off"
    compile: str = "eager"
    optimizer: str = "adamw_fused"  # the training step's optimizer: see OPTIMIZERS

    @classmethod
    def from_cell(cls, cell: Mapping[str, Any]) -> StepSpec:
        """Validate a cell's values; a bad one raises ``ValueError`` naming it and the valid choices."""
        names = {f.name for f in fields(cls)}
        defaults = {
            "dtype": "bf16",
            "mode": "infer",
            "channels_last": "off",
            "compile": "eager",
            "optimizer": "adamw_fused",
        }
        values = {**defaults, **{k: v for k, v in cell.items() if k in names}}
        import baselines

        return cls(
            model=baselines.validate_name(values["model"]),
            img_size=square_image_size(values["img_size"]),
            batch_size=parse_batch_size(values["batch_size"]),
            dtype=parse_dtype(values["dtype"]),
            mode=parse_mode(values["mode"]),
            channels_last=parse_channels_last(values["channels_last"]),
            compile=parse_compile(values["compile"]),
            optimizer=_choice(values["optimizer"], OPTIMIZERS, "optimizer"),
        )


@dataclass(frozen=True)
class TimingOptions:
    """How long to measure: ``for_device`` picks the quick or the full profile's timing, and
    ``ctx.options`` override it."""

    warmup_steps: int = 10
    max_warmup_s: float = 3.0  # a round's warm-up ends early after this long: long steps warm fast
    # at least; fast steps run more, to fill min_round_s. 5 keeps a long step's round short (a
    # batch-max cell's step can take 2 s) while rounds that disagree get another round
    timed_steps: int = 5
    min_round_s: float = 1.0
    max_steps: int = 2000
    busy_steps: int = 3
    max_batch_start: int = 2048
    # batch_size=max stops bisecting once the smallest failed batch is within this share of the
    # largest fitting one: each try near the limit costs a first step (a compile, when compiled)
    max_batch_rel_tol: float = 1 / 16
    # rounds run until the last two medians agree within spread_target_pct (at most max_rounds)
    spread_target_pct: float = 3.0
    max_rounds: int = 4
    inductor_mode: str | None = None
    inductor_config: str | None = None  # "name=value,name=value": see parse_inductor_config

    @classmethod
    def for_device(
        cls,
        device: str,
        quick: bool,
        options: Mapping[str, Any] | None = None,
        full_defaults: Mapping[str, Any] | None = None,
    ) -> TimingOptions:
        """The quick profile's short rounds with ``quick``; else, on any device, the class defaults
        updated by ``full_defaults`` (a suite's own); ``options`` (``--option``) override both.
        ``device`` picks nothing: a CPU run is quick unless ``--full`` asks for the full profile,
        whose timing (warm-up, rounds of at least ``min_round_s``, the two-round rule) it then
        gets as a GPU run does."""
        base = (
            dict(full_defaults or {})
            if not quick
            else {
                "warmup_steps": 1,
                "timed_steps": 3,
                "min_round_s": 0.0,
                "max_steps": 50,
                "max_rounds": 2,
            }
        )
        known = {f.name: f.type for f in fields(cls)}
        given = {k: v for k, v in (options or {}).items() if k in known and v is not None}
        for key, value in given.items():
            text_option = key in ("inductor_mode", "inductor_config")  # parsed where used
            given[key] = value if text_option else TIMING_OPTION_KINDS[key](str(value))
        return cls(**{**base, **given})


def parse_int_option(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError("expected an integer") from None


def parse_float_option(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError("expected a number") from None


def parse_round_count_option(text: str) -> int:
    value = parse_int_option(text)
    if value < 2:
        raise ValueError("expected an integer >= 2 (two rounds are compared)")
    return value


def parse_fraction_option(text: str) -> float:
    value = parse_float_option(text)
    if not 0.0 <= value < 1.0:
        raise ValueError("expected a number from 0 (inclusive) to 1 (exclusive)")
    return value


def create_model(name: str, img_size: int) -> nn.Module:
    """``baselines.create`` at 1000 classes; a model that cannot take the size becomes ``CellSkipped``."""
    import baselines

    try:
        return baselines.create(name, num_classes=NUM_CLASSES, img_size=img_size)
    except baselines.UnsupportedInput as error:
        raise CellSkipped(str(error)) from error


def _autocast(device: str, dtype: str) -> Callable[[], contextlib.AbstractContextManager]:
    amp_dtype = DTYPES.get(dtype)  # None: fp32, or a pure dtype
    if amp_dtype is None:
        return contextlib.nullcontext
    return lambda: torch.autocast(torch.device(device).type, dtype=amp_dtype)


# the --option keys of the latency and scaling suites: TimingOptions' fields
TIMING_OPTION_KINDS: dict[str, Callable[[str], Any]] = {
    **{
        f.name: parse_float_option if isinstance(f.default, float) else parse_int_option
        for f in fields(TimingOptions)
        if f.default is not None
    },
    "max_batch_rel_tol": parse_fraction_option,
    "max_rounds": parse_round_count_option,
    "inductor_mode": str,
    "inductor_config": parse_inductor_config,
}


def _weights_dtype(spec: StepSpec) -> torch.dtype:
    """The dtype of the model's weights and inputs: fp32 but under a pure dtype."""
    return PURE_DTYPES.get(spec.dtype, torch.float32)


def prepare_model(
    model: nn.Module, spec: StepSpec, device: str, options: TimingOptions
) -> nn.Module:
    """Move to the device (channels_last if asked) and wrap for the cell's compile mode
    (``suites.engine.compiling.compile_model``, with the options' inductor mode or settings)."""
    if spec.compile in CUDA_GRAPH_MODES and not is_cuda(device):
        raise CellSkipped(f"compile={spec.compile} needs a CUDA device")
    memory_format = torch.channels_last if spec.channels_last == "on" else torch.contiguous_format
    model = model.to(device=device, dtype=_weights_dtype(spec), memory_format=memory_format)
    model.train(spec.mode == "train")
    return compile_model(
        model, spec.compile, options.inductor_mode, parse_inductor_config(options.inductor_config)
    )


# StepSpec.optimizer: "adamw_fused", AdamW (lr 1e-3, weight decay 0.05) fused, as a tuned training
# loop runs it; "timm_adamw", what timm's benchmark.py --opt adamw builds, built by the same call
# (create_optimizer_v2(model, "adamw", lr=1e-4): torch's AdamW, no weight decay, torch's default
# implementation, foreach on CUDA)
OPTIMIZERS = ("adamw_fused", "timm_adamw")


def make_optimizer(model: nn.Module, name: str) -> torch.optim.Optimizer:
    """The training step's optimizer called ``name`` (``OPTIMIZERS``) over ``model``'s parameters."""
    if name == "timm_adamw":
        from timm.optim import create_optimizer_v2

        return create_optimizer_v2(model, opt="adamw", lr=1e-4)
    _choice(name, OPTIMIZERS, "optimizer")
    return torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05, fused=True)


def build_step(
    model: nn.Module, spec: StepSpec, batch_size: int, device: str, seed: int = 0
) -> Callable[[], None]:
    """The cell's step as a closure over its inputs (B, 3, H, W), targets (B,) and optimizer."""
    generator = torch.Generator(device=device).manual_seed(seed)
    x = torch.randn(batch_size, 3, spec.img_size, spec.img_size, device=device, generator=generator)
    x = x.to(_weights_dtype(spec))
    if spec.channels_last == "on":
        x = x.contiguous(memory_format=torch.channels_last)
    autocast = _autocast(device, spec.dtype)
    mark_step = step_mark(spec.compile)

    if spec.mode == "infer":

        def infer_step() -> None:
            mark_step()
            with torch.no_grad(), autocast():
                model(x)

        return infer_step

    targets = torch.randint(0, NUM_CLASSES, (batch_size,), device=device, generator=generator)
    optimizer = make_optimizer(model, spec.optimizer)
    scaler = torch.amp.GradScaler(torch.device(device).type, enabled=spec.dtype == "fp16")

    def train_step() -> None:
        mark_step()
        optimizer.zero_grad(set_to_none=True)
        with autocast():
            logits = model(x)
        loss = F.cross_entropy(logits.float(), targets)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    return train_step


# (model, img_size, mode, parameters) -> count_flops_per_sample's pair: cells sharing a worker
# (--reuse-workers) count each model once, not once per batch size, dtype and compile mode
_FLOPS_PER_SAMPLE: dict[tuple[str, int, str, float], tuple[float, float]] = {}


def count_flops_per_sample(model: nn.Module, spec: StepSpec, device: str) -> tuple[float, float]:
    """(forward FLOPs, step FLOPs) per sample from ``FlopCounterMode`` on one eager step at batch 2.

    The step is the forward in ``infer`` mode and forward + backward in ``train`` mode. It runs in
    fp32 without autocast whatever the cell's dtype: the count is the same math in every dtype, but
    on CUDA under fp16/bf16 SDPA's flash backend pads the head width to a multiple of 8 and the
    counter sees the padded width (``suites.engine.flop_count``). A model with bf16 weights
    (``bf16_pure``) is cast to fp32 for the count and back (exact: a bf16 value is an fp32 value).
    """
    from torch.utils.flop_counter import FlopCounterMode

    from suites.engine.flop_count import flop_counter_extra_formulas

    def counter() -> FlopCounterMode:
        return FlopCounterMode(display=False, custom_mapping=flop_counter_extra_formulas())

    batch = 2
    x = torch.randn(batch, 3, spec.img_size, spec.img_size, device=device)
    if spec.channels_last == "on":
        x = x.contiguous(memory_format=torch.channels_last)
    weights_dtype = _weights_dtype(spec)
    was_training = model.training
    if weights_dtype != torch.float32:
        model.float()
    try:
        model.eval()
        with counter() as forward_count, torch.no_grad():
            model(x)
        forward_flops = forward_count.get_total_flops() / batch
        step_flops = forward_flops
        if spec.mode == "train":
            model.train()
            with counter() as step_count:
                logits = model(x)
                F.cross_entropy(
                    logits.float(), torch.zeros(batch, dtype=torch.long, device=device)
                ).backward()
            step_flops = step_count.get_total_flops() / batch
            model.zero_grad(set_to_none=True)
    finally:
        if weights_dtype != torch.float32:
            model.to(dtype=weights_dtype)
        model.train(was_training)
    return forward_flops, step_flops


def _memory_mib(
    device: str, step: Callable[[], None], compile_mode: str, model: nn.Module | None = None
) -> dict[str, Any]:
    """Memory of one steady-state step: the CUDA allocator (``suites.engine.meters.GpuMemoryMeter``) on
    the GPU; exact tensor accounting (``suites.engine.meters.TensorAccountant``) on the CPU, which gives
    the step's peak above what lives between steps (``step_mem_mib``) but no absolute peak.

    What lives between steps includes the last step's gradients, which a training step frees
    (``zero_grad(set_to_none=True)``) before it makes new ones: the allocator's baseline holds
    them, and on the CPU ``model``'s gradients are the accountant's baseline, so that their death
    gives their bytes back there too and both devices' ``step_mem_mib`` mean the same.

    Under CUDA graphs (``CUDA_GRAPH_MODES``) a replay allocates nothing: the graphs' activations live in a private pool
    that the allocator counts as reserved, not allocated. Those cells report the reserved peak
    (``mem_source`` ``cuda_reserved``), which holds the pool, the weights and the optimizer state.
    """
    from suites.engine.meters import GpuMemoryMeter, TensorAccountant

    nan = float("nan")
    if is_cuda(device):
        with GpuMemoryMeter(device) as meter:
            step()
        gpu = meter.result
        if compile_mode in CUDA_GRAPH_MODES:
            return {
                "peak_mem_mib": gpu.peak_reserved_mib,
                "step_mem_mib": nan,
                "steady_mem_mib": gpu.baseline_allocated_mib,
                "reserved_mem_mib": gpu.peak_reserved_mib,
                "mem_source": "cuda_reserved",
            }
        return gpu.as_row()
    memory = {
        "peak_mem_mib": nan,
        "step_mem_mib": nan,
        "steady_mem_mib": nan,
        "reserved_mem_mib": nan,
    }
    if compile_mode != "eager":  # a dispatch mode around a compiled step would measure tracing
        return {**memory, "mem_source": "none"}
    parameters = model.parameters() if model is not None else ()
    accountant = TensorAccountant(baseline=(p.grad for p in parameters))
    del parameters  # the accountant keeps the gradients' addresses only: they may die in the step
    with accountant:
        step()
    memory["step_mem_mib"] = accountant.result().peak_live_bytes / MIB
    accountant.detach()
    return {**memory, "mem_source": "tensor_accounting"}


def _reset_compiled(device: str) -> None:
    """Drop dynamo's compiled code and inductor's CUDA-graph trees, then the memory they held
    (their graphs' private pools)."""
    torch._dynamo.reset()
    free_device_memory(device)


# a batch fits when this many steps run: fused AdamW makes its state (2 x the fp32 parameters) at
# the end of step 1, so step 2 peaks higher than step 1 (timm's benchmark runs a few steps too)
FIT_STEPS = 2


def fits_in_memory(
    model: nn.Module,
    spec: StepSpec,
    batch: int,
    device: str,
    seed: int = 0,
    steps: int = FIT_STEPS,
) -> float:
    """One try of the ``max`` search: build the cell's step at ``batch``, run ``steps`` steps, then
    free all of it (inputs, targets, optimizer and its state, gradients, the allocator's cache)
    before returning, fitted or not. Returns the first step's seconds; an OOM propagates. A
    compiled try keeps its code (and CUDA graphs) until the next reset, at the next try's start
    or, unless the step to time reuses it, in ``step_to_time``."""
    if spec.compile != "eager":
        _reset_compiled(device)  # one compilation per tried batch, never the recompile limit
    step = build_step(model, spec, batch, device, seed=seed)
    try:
        synchronize(device)
        start = time.perf_counter()
        step()
        synchronize(device)
        first_step_s = time.perf_counter() - start
        for _ in range(steps - 1):
            step()
        synchronize(device)
    finally:
        del step
        model.zero_grad(set_to_none=True)
        gc.collect()  # the optimizer's cycles, on any device
        free_device_memory(device)
    return first_step_s


def search_max_batch(
    model: nn.Module, spec: StepSpec, device: str, options: TimingOptions, seed: int = 0
) -> tuple[int, int | None, dict[int, float]]:
    """``find_max_batch`` over ``fits_in_memory`` tries from ``options.max_batch_start``: (largest
    batch that fits, smallest that did not or None, first-step seconds of each batch tried, in
    order). Nothing of a try outlives it: the caller builds the step to time at the batch found."""
    tried: dict[int, float] = {}  # batch -> its try's first step (NaN: it ran out of memory)

    def try_batch(batch: int) -> None:
        tried[batch] = math.nan
        tried[batch] = fits_in_memory(model, spec, batch, device, seed=seed)

    batch, failed = find_max_batch(
        try_batch, options.max_batch_start, device, rel_tol=options.max_batch_rel_tol
    )
    return batch, failed, tried


def step_to_time(
    model: nn.Module, spec: StepSpec, device: str, options: TimingOptions, seed: int = 0
) -> tuple[Callable[[], None], int, float, Row]:
    """The cell's step, built once at its batch and run once: (step, batch, ``first_step_s``, the
    ``max`` columns ``batch_found``/``batch_failed``, empty for a fixed batch).

    For ``max`` the batch comes from ``search_max_batch``, whose tries leave nothing alive, and
    ``first_step_s`` is the first step of the try at that batch (its compilation, when compiled).
    A compiled step keeps the last try's code when that try was at this batch; else dynamo is reset
    and the step compiles again here, outside the timed rounds' warm-up.
    """
    max_columns: Row = {}
    reset_compiled = True
    if spec.batch_size == MAX_BATCH:
        batch, failed, tried = search_max_batch(model, spec, device, options, seed=seed)
        max_columns = {
            "batch_found": batch,
            "batch_failed": failed if failed is not None else math.nan,
        }
        reset_compiled = list(tried)[-1] != batch
    else:
        batch = int(spec.batch_size)
    if spec.compile != "eager" and reset_compiled:
        _reset_compiled(device)
    step = build_step(model, spec, batch, device, seed=seed)
    synchronize(device)
    start = time.perf_counter()
    step()
    synchronize(device)
    first_step_s = time.perf_counter() - start
    if spec.batch_size == MAX_BATCH:
        first_step_s = tried[batch]
    return step, batch, first_step_s, max_columns


def _stop_compile_workers() -> None:
    """End inductor's pool of compile processes once the step is compiled, so that no process of
    ours but the one timed is left on the host during the timed rounds (a later recompilation
    starts a new pool)."""
    from torch._inductor import async_compile

    shutdown = getattr(async_compile, "shutdown_compile_workers", None)  # private API: may move
    if shutdown is not None:
        shutdown()


def measure_step(
    spec: StepSpec, ctx: CellContext, options: TimingOptions, busy_share: bool = True
) -> Row:
    """Build, time and meter one cell's step; the row every latency/scaling cell returns."""
    device = ctx.device
    cell_start = time.perf_counter()
    torch.manual_seed(ctx.seed)
    eager_model = create_model(spec.model, spec.img_size)
    param_count_m = sum(p.numel() for p in eager_model.parameters()) / 1e6
    if spec.dtype in PURE_DTYPES and spec.mode == "train":
        raise CellSkipped(
            f"dtype {spec.dtype} measures inference only (training keeps fp32 weights)"
        )
    if spec.batch_size == MAX_BATCH and not is_cuda(device):
        raise CellSkipped(
            "batch_size=max backs off on CUDA out-of-memory errors; it needs a CUDA device"
        )

    model = prepare_model(eager_model, spec, device, options)
    # dtype, layout and compile change no count; the parameter count tells apart models that share
    # a name (tests' stand-ins)
    flops_key = (spec.model, spec.img_size, spec.mode, param_count_m)
    if flops_key not in _FLOPS_PER_SAMPLE:
        _FLOPS_PER_SAMPLE[flops_key] = count_flops_per_sample(eager_model, spec, device)
    forward_flops, step_flops_per_sample = _FLOPS_PER_SAMPLE[flops_key]
    free_device_memory(device)
    setup_s = time.perf_counter() - cell_start

    step, batch, first_step_s, max_columns = step_to_time(
        model, spec, device, options, seed=ctx.seed
    )
    row: Row = dict(max_columns)

    if spec.compile != "eager":
        _stop_compile_workers()
    host_us = host_op_us(device)
    rounds_start = time.perf_counter()
    timing = time_rounds(
        step,
        device,
        spread_target_pct=options.spread_target_pct,
        max_rounds=options.max_rounds,
        warmup_steps=options.warmup_steps,
        max_warmup_s=options.max_warmup_s,
        timed_steps=options.timed_steps,
        min_round_s=options.min_round_s,
        max_steps=options.max_steps,
    )
    stats = timing.stats
    first_round, second_round = timing.compared
    meters_start = time.perf_counter()
    rounds_s = meters_start - rounds_start
    memory = _memory_mib(device, step, spec.compile, model)
    busy = (
        gpu_busy_share(step, device, options.busy_steps, step_ms=stats.median_ms)
        if busy_share and options.busy_steps > 0
        else float("nan")
    )
    meters_s = time.perf_counter() - meters_start

    gflops_per_step = step_flops_per_sample * batch / 1e9
    achieved_tflops = gflops_per_step / stats.median_ms  # GFLOP per ms = TFLOP/s
    peak = device_peak_tflops(ctx.run_dir, device)
    prefix = spec.mode
    row.update(
        {
            "param_count": round(param_count_m, 3),
            f"{prefix}_samples_per_sec": batch / (stats.median_ms / 1e3),
            f"{prefix}_step_time": stats.median_ms,
            f"{prefix}_batch_size": batch,
            f"{prefix}_img_size": spec.img_size,
            "infer_gmacs": forward_flops / 2 / 1e9,
            "step_p10_ms": stats.p10_ms,
            "step_p90_ms": stats.p90_ms,
            "step_mean_ms": stats.mean_ms,
            "step_cv": stats.cv,
            "timed_steps_n": stats.n,
            "timing_rounds": len(timing.rounds),
            "round1_median_ms": first_round.median_ms,
            "round2_median_ms": second_round.median_ms,
            "repeat_spread_pct": timing.spread_pct,
            "first_step_s": first_step_s,
            "setup_s": setup_s,
            "rounds_s": rounds_s,
            "meters_s": meters_s,
            "host_op_us": host_us,
            **memory,
            "gflops_per_step": gflops_per_step,
            "achieved_tflops": achieved_tflops,
            "device_peak_bf16_tflops": peak.tflops,
            "mfu": achieved_tflops / peak.tflops,
            "gpu_busy_share": busy,
            "launch_bound": bool(busy < LAUNCH_BOUND_BUSY_SHARE) if not math.isnan(busy) else None,
            "fp32_matmul_precision": torch.get_float32_matmul_precision(),
        }
    )
    return row


def is_eager_cell(cell: Cell) -> bool:
    """Eager cells may share a worker (``Suite.reuse_worker``); a compiled cell gets its own, so no
    compiled graphs, CUDA-graph pools or inductor caches carry over into the next cell."""
    return str(cell.get("compile", "eager")) == "eager"
