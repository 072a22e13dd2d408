"""The measured step that the latency, scaling, profile and memory suites share: build, time, meter.

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
  benchmark does with ``--precision bfloat16``: no per-layer weight casts), inference only.
- ``compile``: ``eager``; ``compile`` = ``torch.compile(model, dynamic=False)`` in inductor's
  default mode (option ``inductor_mode`` picks e.g. ``max-autotune-no-cudagraphs``); ``cudagraph`` =
  ``torch.compile(model, mode="reduce-overhead", dynamic=False)``, inductor with CUDA graphs for
  the fixed shapes (CUDA only); ``cudagraph_eager`` = ``torch.compile(model,
  backend="cudagraphs")``, CUDA graphs of the eager kernels (no inductor code generation: seconds
  to prepare instead of minutes). Only the model is compiled; the loss and optimizer step stay
  eager.
- ``batch_size`` ``max``: the largest batch that fits (``suites.engine.timing.find_max_batch``
  from ``max_batch_start``, to within ``max_batch_rel_tol``, 1/16 by default, 0 for the exact
  batch); the row's ``batch_found`` says which, ``batch_failed`` the smallest batch that ran out
  of memory (NaN when the start fitted). A memory model (peak = fixed + batch x per-sample)
  predicts the limit: from this worker's earlier cells of the same step at fixed batches before
  any try (a prediction below the start spares the start's try), else from one probe try once
  the start ran out of memory; two tries around it (one tolerance above must run out of memory)
  usually end the search. A try builds the step, runs two steps (the optimizer's state appears
  at the end of the first) and frees it all before the next try; the last try, when it is at the
  batch found, is the step that is timed (else that step is built once, at the batch found).

Memory (``step_memory``, the one definition for the latency, scaling and memory suites): one
steady-state step, after at least one full step, with Python's garbage collector paused.
``step_mem_mib`` is the allocator's peak during that step minus the memory allocated just before
it (weights, optimizer state, inputs, targets and the last step's gradients, which a training step
frees first); ``peak_mem_mib`` the absolute peak, ``mem_source`` ``cuda_allocator``. On the CPU
exact tensor accounting (``suites.engine.meters.TensorAccountant``, the gradients as its
baseline) gives the same ``step_mem_mib`` and no absolute peak (``tensor_accounting``). Under CUDA
graphs the reserved peak (``cuda_reserved``; see ``step_memory``).

Per cell (see ``suites.engine.timing``): a first step (``first_step_s``: lazy init and compilation; for
``max``, the first step of the try at the batch found), the host's time to dispatch one tiny op
(``host_op_us``: rows of one run should agree; a slower host slows every launch-bound step), then
independent rounds of timed steps until the last two rounds' medians agree within
``spread_target_pct`` (3%, the GPU target) or ``max_rounds`` (4; 2 on the quick profile, the
CPU's default; ``--full`` gets the full timing on any device) have run (``timing_rounds``). The
warm-up runs before round 1 only: up to ``warmup_steps`` steps, the steps already run counted
(the first; a kept ``max`` try's two), ending once ``max_warmup_s`` has passed (their time
counted), at least one unless a warm step already ran; a round lasts ``min_round_s`` and at least
``timed_steps`` steps, later rounds as many steps as round 1 after one warm step (none for a step
of ``suites.engine.timing.LONG_STEP_S``, 0.5 s, or more). Where round 2 disagrees with round 1,
the busy share is measured then: a launch-bound step (busy share < 0.7, host-bound) stops at two
rounds, its spread reported. Each
row records its ``spread_target_pct`` and ``unstable`` (its compared rounds never agreed within
the target). The step statistics pool the last two rounds; ``round1_median_ms``,
``round2_median_ms`` and their spread ``repeat_spread_pct`` are theirs. Memory and the GPU busy
share come from the same profiled steps (one, or ``busy_steps`` for a step under
``ONE_PROFILED_STEP_MS``): ``step_memory`` on the first of them. FLOPs come from
``torch.utils.flop_counter.FlopCounterMode`` on one eager step at batch 2 in fp32 without autocast
whatever the cell's dtype (the same math; under fp16/bf16, CUDA's flash attention would be
counted at its padded head width): the forward, plus the forward and backward of a training
step in train mode, with a groups-aware convolution-backward formula and SDPA's backward on every
device; the optimizer's elementwise work is not counted; counted per sample once per (model,
input size) in a run (``<run_dir>/flops.json``, shared by its workers) and scaled to the batch.
In a reused worker an eager cell of the same model and input size as the worker's last one takes
that model back with its initial weights restored (``model_reused``): the same model a build
would give.
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
from pathlib import Path
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
    MemoryModel,
    RoundsResult,
    device_peak_tflops,
    find_max_batch,
    free_device_memory,
    garbage_collector_paused,
    host_op_us,
    is_cuda,
    profiled_busy_ms,
    read_run_cache,
    synchronize,
    time_rounds,
    update_run_cache,
)

DTYPES: dict[str, torch.dtype | None] = {  # the autocast dtype of each precision
    "fp32": None,
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
}
# weights and inputs in this dtype, no autocast (timm benchmark's --precision bfloat16); inference only
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

    warmup_steps: int = 10  # before round 1, the first step counted
    max_warmup_s: float = 1.0  # the warm-up ends early after this long, the first step counted
    # a round: at least timed_steps steps and min_round_s seconds, so a step under 0.15 s is timed
    # 3 times or more a round and a long one (a batch-max cell's step can take 2 s) twice; rounds
    # that disagree get another round
    timed_steps: int = 2
    min_round_s: float = 0.3
    max_steps: int = 2000
    busy_steps: int = 3  # profiled steps of a step under ONE_PROFILED_STEP_MS (else one)
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


# ---------------------------------------------------------------------------------------- model


@dataclass
class _BuiltModel:
    """The model a worker built for its last eager cell, and what restores it to as built."""

    key: tuple[str, int, int]  # (model, img_size, seed)
    model: nn.Module
    initial_state: dict[str, torch.Tensor]  # on the CPU, as built
    rng_state: torch.Tensor  # the CPU generator right after the build


_LAST_MODEL: list[_BuiltModel] = []  # at most one: a worker's cells run model by model


def cell_model(spec: StepSpec, seed: int) -> tuple[nn.Module, Callable[[], None], bool]:
    """The cell's eager model as ``create_model`` builds it after ``torch.manual_seed(seed)``:
    (model, restore, reused).

    An eager cell of the same model, input size and seed as the worker's last eager cell takes
    that model back instead of building it again; call ``restore()`` after ``prepare_model``: it
    loads the weights and buffers as built (training moved them), drops the gradients and sets
    the CPU generator where the build left it, so the cell measures what a fresh build would give.
    Any other cell drops the kept model first (two models never share the device).
    """
    key = (spec.model, spec.img_size, seed)
    if _LAST_MODEL and (_LAST_MODEL[0].key != key or spec.compile != "eager"):
        _LAST_MODEL.clear()
        gc.collect()
    if _LAST_MODEL:
        kept = _LAST_MODEL[0]

        def restore() -> None:
            kept.model.load_state_dict(kept.initial_state)
            kept.model.zero_grad(set_to_none=True)
            torch.set_rng_state(kept.rng_state)

        return kept.model, restore, True
    torch.manual_seed(seed)
    model = create_model(spec.model, spec.img_size)
    if spec.compile == "eager":
        state = {name: t.detach().clone() for name, t in model.state_dict().items()}
        _LAST_MODEL.append(_BuiltModel(key, model, state, torch.get_rng_state()))
    return model, _nothing, False


def _nothing() -> None:
    pass


def forget_models() -> None:
    """Drop the model a worker keeps for its next cell (``cell_model``)."""
    _LAST_MODEL.clear()


# ---------------------------------------------------------------------------------------- FLOPs

FLOPS_CACHE = "flops.json"  # in the run folder: per-sample counts, shared by the run's workers
_FLOPS: dict[str, dict[str, float]] = {}  # this process's view of that cache


def _flop_counter():
    from torch.utils.flop_counter import FlopCounterMode

    from suites.engine.flop_count import flop_counter_extra_formulas

    return FlopCounterMode(display=False, custom_mapping=flop_counter_extra_formulas())


def count_flops(model: nn.Module, spec: StepSpec, device: str, part: str) -> float:
    """FLOPs per sample from ``FlopCounterMode`` on one eager step at batch 2: ``part`` ``forward``
    (eval mode, no grad) or ``train_step`` (train mode: forward, cross-entropy, backward).

    It runs in fp32 without autocast whatever the cell's dtype: the count is the same math in every
    dtype, but on CUDA under fp16/bf16 SDPA's flash backend pads the head width to a multiple of 8
    and the counter sees the padded width (``suites.engine.flop_count``). A model with bf16
    weights (``bf16_pure``) is cast to fp32 for the count and back (exact: a bf16 value is an
    fp32 value).
    """
    batch = 2
    x = torch.randn(batch, 3, spec.img_size, spec.img_size, device=device)
    if spec.channels_last == "on":
        x = x.contiguous(memory_format=torch.channels_last)
    weights_dtype = _weights_dtype(spec)
    was_training = model.training
    if weights_dtype != torch.float32:
        model.float()
    try:
        if part == "forward":
            model.eval()
            with _flop_counter() as counter, torch.no_grad():
                model(x)
        else:
            model.train()
            with _flop_counter() as counter:
                logits = model(x)
                targets = torch.zeros(batch, dtype=torch.long, device=device)
                F.cross_entropy(logits.float(), targets).backward()
            model.zero_grad(set_to_none=True)
    finally:
        if weights_dtype != torch.float32:
            model.to(dtype=weights_dtype)
        model.train(was_training)
    return counter.get_total_flops() / batch


def count_flops_per_sample(model: nn.Module, spec: StepSpec, device: str) -> tuple[float, float]:
    """(forward FLOPs, step FLOPs) per sample, counted now (``count_flops``): the step is the
    forward in ``infer`` mode, the training step in ``train`` mode."""
    forward = count_flops(model, spec, device, "forward")
    step = count_flops(model, spec, device, "train_step") if spec.mode == "train" else forward
    return forward, step


def flops_per_sample(
    model: nn.Module, spec: StepSpec, device: str, run_dir: Path, param_count_m: float
) -> tuple[float, float, bool]:
    """``count_flops_per_sample``'s pair, each part counted once per (model, input size) in a run:
    (forward, step, whether both came from the cache).

    The parts live in ``<run_dir>/flops.json`` (and in this process), so a fresh worker, an
    ``infer`` and a ``train`` cell of one model, every batch size, dtype, layout and compile mode
    share them: none of those changes the per-sample count. The input size does, and not in
    proportion (attention grows with the square of the tokens, ProbSparse's sampling with their
    logarithm), so every size is counted. The parameter count is in the key: it tells apart
    models that share a name (tests' stand-ins).
    """
    key = f"{spec.model}|{spec.img_size}|{param_count_m:.6f}"
    parts = ("forward", "train_step") if spec.mode == "train" else ("forward",)
    path = Path(run_dir) / FLOPS_CACHE
    known = _FLOPS.setdefault(key, {})
    if not all(p in known for p in parts):
        known.update(read_run_cache(path).get(key, {}))
    cached = all(p in known for p in parts)
    for part in parts:
        if part not in known:
            known[part] = count_flops(model, spec, device, part)
    if not cached:
        update_run_cache(path, key, {**read_run_cache(path).get(key, {}), **known})
    forward = known["forward"]
    return forward, known["train_step"] if spec.mode == "train" else forward, cached


# ---------------------------------------------------------------------------------------- memory


def step_memory(
    step: Callable[[], None],
    device: str,
    compile_mode: str = "eager",
    model: nn.Module | None = None,
) -> dict[str, Any]:
    """Memory of one steady-state step (run it after at least one full step): the one definition
    of ``step_mem_mib`` for the latency, scaling and memory suites. Runs ``step`` once, with
    Python's garbage collector collected first and paused (a collection inside the step would
    free earlier garbage there and lower its peak).

    On the GPU the CUDA allocator (``suites.engine.meters.GpuMemoryMeter``): ``step_mem_mib`` is the
    peak during the step minus the memory allocated just before it, ``peak_mem_mib`` the absolute
    peak, ``steady_mem_mib`` that baseline. On the CPU exact tensor accounting
    (``suites.engine.meters.TensorAccountant``) gives ``step_mem_mib`` and no absolute peak.

    What lives between steps includes the last step's gradients, which a training step frees
    (``zero_grad(set_to_none=True)``) before it makes new ones: the allocator's baseline holds
    them, and on the CPU ``model``'s gradients are the accountant's baseline, so that their death
    gives their bytes back there too and both devices' ``step_mem_mib`` mean the same.

    Under CUDA graphs (``CUDA_GRAPH_MODES``) a replay allocates nothing: the graphs' activations
    live in a private pool that the allocator counts as reserved, not allocated. Those cells report
    the reserved peak (``mem_source`` ``cuda_reserved``), which holds the pool, the weights and the
    optimizer state.
    """
    from suites.engine.meters import GpuMemoryMeter, TensorAccountant

    nan = float("nan")
    if is_cuda(device):
        with garbage_collector_paused(), GpuMemoryMeter(device) as meter:
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
    with garbage_collector_paused(), accountant:
        step()
    memory["step_mem_mib"] = accountant.result().peak_live_bytes / MIB
    accountant.detach()
    return {**memory, "mem_source": "tensor_accounting"}


# a step at least this long is profiled alone: one step's kernels are thousands of samples
ONE_PROFILED_STEP_MS = 50.0


class StepMeters:
    """The step's memory (``step_memory``) and GPU busy time, measured once, on the same steps:
    a profiled window of ``busy_steps`` steps (one for a step of ``ONE_PROFILED_STEP_MS`` or
    more) whose first step is the memory step. ``busy_steps`` 0, or the CPU: the memory step
    alone, no busy share. ``seconds`` is the time the meters took."""

    def __init__(
        self,
        step: Callable[[], None],
        device: str,
        compile_mode: str,
        model: nn.Module,
        busy_steps: int,
    ) -> None:
        self.step, self.device, self.compile_mode, self.model = step, device, compile_mode, model
        self.busy_steps = busy_steps if is_cuda(device) else 0
        self.memory: dict[str, Any] | None = None
        self.busy_ms: float | None = None
        self.profiled_steps = 0
        self.seconds = 0.0

    def measure(self, step_ms: float) -> None:
        """Meter the step now (once; a later call does nothing). ``step_ms``: its median time."""
        if self.memory is not None:
            return
        start = time.perf_counter()
        if self.busy_steps == 0:
            self.memory = step_memory(self.step, self.device, self.compile_mode, self.model)
        else:
            steps = 1 if step_ms >= ONE_PROFILED_STEP_MS else self.busy_steps
            memory: dict[str, Any] = {}

            def window() -> None:
                memory.update(step_memory(self.step, self.device, self.compile_mode, self.model))
                for _ in range(steps - 1):
                    self.step()

            self.busy_ms = profiled_busy_ms(window, steps, self.device)
            self.memory, self.profiled_steps = memory, steps
        self.seconds += time.perf_counter() - start

    def busy_share(self, step_ms: float) -> float:
        """Busy time over ``step_ms`` (unprofiled wall time per step); NaN when not profiled."""
        return math.nan if self.busy_ms is None else min(1.0, self.busy_ms / step_ms)

    def host_bound(self, rounds: RoundsResult) -> bool:
        """``time_rounds``' question after two rounds that disagree: is the GPU busy less than
        ``LAUNCH_BOUND_BUSY_SHARE`` of the step (its time the host's)? Meters the step now."""
        step_ms = rounds.stats.median_ms
        self.measure(step_ms)
        return self.busy_share(step_ms) < LAUNCH_BOUND_BUSY_SHARE


# ---------------------------------------------------------------------------------------- max batch


def _reset_compiled(device: str) -> None:
    """Drop dynamo's compiled code and inductor's CUDA-graph trees, then the memory they held
    (their graphs' private pools)."""
    torch._dynamo.reset()
    free_device_memory(device)


# a batch fits when this many steps run: fused AdamW makes its state (2 x the fp32 parameters) at
# the end of step 1, so step 2 peaks higher than step 1 (timm's benchmark runs a few steps too)
FIT_STEPS = 2


def run_try(
    model: nn.Module, spec: StepSpec, batch: int, device: str, seed: int = 0, steps: int = FIT_STEPS
) -> tuple[Callable[[], None], float, float]:
    """One try of the ``max`` search: build the cell's step at ``batch`` and run ``steps`` steps.
    Returns (the step, its first and its last step's seconds); the caller frees it
    (``release_step``). An OOM
    frees the try before it propagates. A compiled try keeps its code (and CUDA graphs) until the
    next reset, at the next try's start or, unless the step to time reuses it, in
    ``step_to_time``."""
    if spec.compile != "eager":
        _reset_compiled(device)  # one compilation per tried batch, never the recompile limit
    step = build_step(model, spec, batch, device, seed=seed)
    try:
        first_step_s = last_step_s = _timed_once(step, device)
        for _ in range(steps - 1):
            last_step_s = _timed_once(step, device)
    except BaseException:
        del step
        release_step(model, device)
        raise
    return step, first_step_s, last_step_s


def release_step(model: nn.Module, device: str) -> None:
    """Free what a dropped step left: gradients, the optimizer's cycles, the allocator's cache."""
    model.zero_grad(set_to_none=True)
    gc.collect()  # the optimizer's cycles, on any device
    free_device_memory(device)


def fits_in_memory(
    model: nn.Module,
    spec: StepSpec,
    batch: int,
    device: str,
    seed: int = 0,
    steps: int = FIT_STEPS,
) -> float:
    """``run_try``, then free all of it (inputs, targets, optimizer and its state, gradients, the
    allocator's cache), fitted or not. Returns the first step's seconds; an OOM propagates."""
    step, first_step_s, _ = run_try(model, spec, batch, device, seed=seed, steps=steps)
    del step
    release_step(model, device)
    return first_step_s


class _Tries:
    """The ``max`` search's tries (``try_batch`` of ``find_max_batch``). Each frees the step of the
    one before it first, then keeps its own step, so that the last try, when it is at the batch
    found, is the step to time: nothing is built twice and no try runs beside another."""

    def __init__(self, model: nn.Module, spec: StepSpec, device: str, seed: int) -> None:
        self.model, self.spec, self.device, self.seed = model, spec, device, seed
        self.first_step_s: dict[int, float] = {}  # batch -> its try's first step (NaN: OOM)
        self.kept: tuple[int, Callable[[], None], float] | None = None  # batch, step, last step s

    def __call__(self, batch: int) -> None:
        self.release()
        self.first_step_s[batch] = math.nan
        step, self.first_step_s[batch], last_step_s = run_try(
            self.model, self.spec, batch, self.device, seed=self.seed
        )
        self.kept = (batch, step, last_step_s)

    def take(self, batch: int) -> tuple[Callable[[], None], float] | None:
        """The kept step and its last (warm) step's seconds if it is at ``batch`` (else None, and
        nothing is kept any more)."""
        kept, self.kept = self.kept, None
        if kept is not None and kept[0] == batch:
            return kept[1], kept[2]
        del kept
        release_step(self.model, self.device)
        return None

    def release(self) -> None:
        if self.kept is not None:
            self.kept = None
            release_step(self.model, self.device)


# (model, img_size, dtype, mode, channels_last, compile) -> batch -> (bytes held before a steady
# step, its peak): the allocator's readings of this worker's cells at fixed batches, which the
# `max` cell of the same step fits its memory model to
_PEAKS: dict[tuple[str, ...], dict[int, tuple[float, float]]] = {}
# the search aims this share below the predicted limit: the allocator's blocks and the model's
# error (within 1.3% of the peak on the committed rows) make the prediction a little high
MAX_BATCH_MARGIN = 0.02


def _peaks_key(spec: StepSpec) -> tuple[str, ...]:
    return (spec.model, str(spec.img_size), spec.dtype, spec.mode, spec.channels_last, spec.compile)


def record_peak(spec: StepSpec, batch: int, memory: Mapping[str, Any]) -> None:
    """Keep a fixed-batch cell's allocator reading for the ``max`` cell of the same step."""
    if memory.get("mem_source") == "cuda_allocator":
        held, peak = memory["steady_mem_mib"] * MIB, memory["peak_mem_mib"] * MIB
        _PEAKS.setdefault(_peaks_key(spec), {})[batch] = (held, peak)


def device_capacity_bytes(device: str) -> float | None:
    """Bytes the allocator could hold now: the device's free memory and what it has reserved
    (None off CUDA: no allocator to fill)."""
    if not is_cuda(device):
        return None
    free, _total = torch.cuda.mem_get_info(torch.device(device))
    return float(free + torch.cuda.memory_reserved(torch.device(device)))


@contextlib.contextmanager
def peak_meter(device: str) -> Any:
    """Yields a dict that holds, once the block ends, ``held`` (bytes allocated when it began) and
    ``peak`` (the most allocated inside it): the allocator's readings on CUDA."""
    from suites.engine.meters import GpuMemoryMeter

    reading: dict[str, float] = {}
    with GpuMemoryMeter(device) as meter:
        yield reading
    reading.update(held=meter.result.baseline_allocated_mib * MIB)
    reading.update(peak=meter.result.peak_allocated_mib * MIB)


def probe_peak(
    model: nn.Module, spec: StepSpec, batch: int, device: str, seed: int = 0
) -> tuple[float, float]:
    """(bytes held before a steady step, its peak) of the step at ``batch``: a try whose second
    step is metered (``peak_meter``), freed before it returns; an OOM propagates."""
    step, _, _ = run_try(model, spec, batch, device, seed=seed, steps=1)
    try:
        with peak_meter(device) as reading:
            step()
    finally:
        del step
        release_step(model, device)
    return reading["held"], reading["peak"]


def predict_max_batch(
    model: nn.Module,
    spec: StepSpec,
    device: str,
    options: TimingOptions,
    seed: int = 0,
    probe: bool = True,
) -> int | None:
    """The memory model's largest batch (``MemoryModel``: least squares over this worker's
    readings of the same step at fixed batches, else, with ``probe``, through one probe at
    ``max_batch_start // 16`` and the memory held before its step less its inputs),
    ``MAX_BATCH_MARGIN`` below the device's capacity; None off CUDA, without readings or a probe,
    or when the probe runs out of memory."""
    from suites.engine.meters import is_out_of_memory

    capacity = device_capacity_bytes(device)
    readings = dict(_PEAKS.get(_peaks_key(spec), {}))
    if capacity is None or not (readings or probe):
        return None
    if not readings:
        batch = max(1, options.max_batch_start // 16)
        try:
            readings[batch] = probe_peak(model, spec, batch, device, seed=seed)
        except Exception as error:
            if not is_out_of_memory(error):
                raise
            free_device_memory(device)
            return None
    points = [(b, peak) for b, (_, peak) in readings.items()]
    if len(points) == 1:  # the memory held before the step, less its inputs: the line at batch 0
        batch = points[0][0]
        points.append((0, readings[batch][0] - input_bytes(spec, batch)))
    line = MemoryModel.fit(points)
    return None if line is None else line.max_batch(capacity, MAX_BATCH_MARGIN)


def input_bytes(spec: StepSpec, batch: int) -> int:
    """Bytes of the inputs and targets ``build_step`` makes at ``batch``."""
    pixels = 3 * spec.img_size * spec.img_size * _weights_dtype(spec).itemsize
    targets = 8 if spec.mode == "train" else 0  # int64 class indices
    return batch * (pixels + targets)


def search_max_batch(
    model: nn.Module, spec: StepSpec, device: str, options: TimingOptions, seed: int = 0
) -> tuple[int, int | None, _Tries]:
    """``find_max_batch`` over ``_Tries`` from ``options.max_batch_start``, with the memory model's
    prediction (``predict_max_batch``): from this worker's readings before any try (a prediction
    below the start spares the start's try), else from a probe once the start ran out of memory.
    Returns (largest batch that fits, smallest that did not or None, the tries: first step of each
    batch tried, in order, and the last fitting try's step, kept)."""
    tries = _Tries(model, spec, device, seed)
    try:
        batch, failed = find_max_batch(
            tries,
            options.max_batch_start,
            device,
            rel_tol=options.max_batch_rel_tol,
            predict=lambda: predict_max_batch(model, spec, device, options, seed=seed),
            guess=predict_max_batch(model, spec, device, options, seed=seed, probe=False),
        )
    except BaseException:
        tries.release()
        raise
    return batch, failed, tries


def _timed_once(step: Callable[[], None], device: str) -> float:
    """Seconds of one step, synchronized before and after."""
    synchronize(device)
    start = time.perf_counter()
    step()
    synchronize(device)
    return time.perf_counter() - start


@dataclass
class StepToTime:
    """The cell's step, built and run, ready to be timed."""

    step: Callable[[], None]
    batch: int
    first_step_s: float  # for ``max``, the first step of the try at the batch found
    warm_step_s: (
        float | None
    )  # a warm step after the first one already ran (a kept try): its seconds
    columns: Row  # ``max``: batch_found, batch_failed


def step_to_time(
    model: nn.Module, spec: StepSpec, device: str, options: TimingOptions, seed: int = 0
) -> StepToTime:
    """The cell's step, built once at its batch and run at least once.

    For ``max`` the batch comes from ``search_max_batch``: the step is its last try when that try
    was at the batch found (it ran ``FIT_STEPS`` steps: ``warm_step_s``), else built again there
    (its code compiled again too: dynamo is reset). ``first_step_s`` is the first step of the try
    at that batch (its compilation, when compiled).
    """
    if spec.batch_size != MAX_BATCH:
        batch = int(spec.batch_size)
        if spec.compile != "eager":
            _reset_compiled(device)
        step = build_step(model, spec, batch, device, seed=seed)
        return StepToTime(step, batch, _timed_once(step, device), None, {})
    batch, failed, tries = search_max_batch(model, spec, device, options, seed=seed)
    columns: Row = {
        "batch_found": batch,
        "batch_failed": failed if failed is not None else math.nan,
    }
    kept = tries.take(batch)
    if kept is not None:
        step, warm_step_s = kept
    else:
        if spec.compile != "eager":
            _reset_compiled(device)
        step, warm_step_s = build_step(model, spec, batch, device, seed=seed), None
        _timed_once(step, device)
    return StepToTime(step, batch, tries.first_step_s[batch], warm_step_s, columns)


def _stop_compile_workers() -> None:
    """End inductor's pool of compile processes once the step is compiled, so that no process of
    ours but the one timed is left on the host during the timed rounds (a later recompilation
    starts a new pool)."""
    from torch._inductor import async_compile

    shutdown = getattr(async_compile, "shutdown_compile_workers", None)  # private API: may move
    if shutdown is not None:
        shutdown()


# ---------------------------------------------------------------------------------------- a cell


def check_step(spec: StepSpec, device: str) -> None:
    """``CellSkipped`` for a step this device or dtype cannot measure."""
    if spec.dtype in PURE_DTYPES and spec.mode == "train":
        raise CellSkipped(
            f"dtype {spec.dtype} measures inference only (training keeps fp32 weights)"
        )
    if spec.batch_size == MAX_BATCH and not is_cuda(device):
        raise CellSkipped(
            "batch_size=max backs off on CUDA out-of-memory errors; it needs a CUDA device"
        )
    if spec.compile in CUDA_GRAPH_MODES and not is_cuda(device):
        raise CellSkipped(f"compile={spec.compile} needs a CUDA device")


@dataclass
class _Setup:
    """A cell's model, prepared, and its per-sample FLOPs."""

    model: nn.Module
    param_count_m: float
    forward_flops: float
    step_flops: float
    model_reused: bool
    flops_cached: bool
    seconds: float


def set_up(spec: StepSpec, ctx: CellContext, options: TimingOptions) -> _Setup:
    """Build (or take back, ``cell_model``) and prepare the model; count (or look up) its FLOPs."""
    start = time.perf_counter()
    eager_model, restore, reused = cell_model(spec, ctx.seed)
    param_count_m = sum(p.numel() for p in eager_model.parameters()) / 1e6
    model = prepare_model(eager_model, spec, ctx.device, options)
    restore()
    forward, step, cached = flops_per_sample(
        eager_model, spec, ctx.device, ctx.run_dir, param_count_m
    )
    free_device_memory(ctx.device)
    seconds = time.perf_counter() - start
    return _Setup(model, param_count_m, forward, step, reused, cached, seconds)


def time_step(
    built: StepToTime, device: str, options: TimingOptions, meters: StepMeters
) -> RoundsResult:
    """``time_rounds`` with the options' rules: the warm-up before round 1 counts the steps already
    run (the first step; a kept try's two) among ``warmup_steps`` and their seconds within
    ``max_warmup_s``; on a GPU, a host-bound step (``StepMeters.host_bound``) stops after two
    rounds that disagree."""
    ran = 1 if built.warm_step_s is None else FIT_STEPS
    spent = built.first_step_s + (built.warm_step_s or 0.0)
    return time_rounds(
        built.step,
        device,
        spread_target_pct=options.spread_target_pct,
        max_rounds=options.max_rounds,
        host_bound=meters.host_bound if meters.busy_steps > 0 else None,
        warmup_steps=max(0, options.warmup_steps - ran),
        max_warmup_s=options.max_warmup_s,
        warmup_spent_s=spent,
        warm_step_s=built.warm_step_s,
        timed_steps=options.timed_steps,
        min_round_s=options.min_round_s,
        max_steps=options.max_steps,
    )


def measure_step(
    spec: StepSpec, ctx: CellContext, options: TimingOptions, busy_share: bool = True
) -> Row:
    """Build, time and meter one cell's step; the row every latency/scaling cell returns."""
    device = ctx.device
    check_step(spec, device)
    setup = set_up(spec, ctx, options)
    built = step_to_time(setup.model, spec, device, options, seed=ctx.seed)
    if spec.compile != "eager":
        _stop_compile_workers()
    host_us = host_op_us(device)
    meters = StepMeters(
        built.step, device, spec.compile, setup.model, options.busy_steps if busy_share else 0
    )
    rounds_start = time.perf_counter()
    timing = time_step(built, device, options, meters)
    rounds_s = time.perf_counter() - rounds_start - meters.seconds
    meters.measure(timing.stats.median_ms)
    if spec.batch_size != MAX_BATCH:
        record_peak(spec, built.batch, meters.memory)
    return {
        **built.columns,
        **step_row(spec, setup, built.batch, timing, meters, ctx.run_dir, device),
        "first_step_s": built.first_step_s,
        "setup_s": setup.seconds,
        "rounds_s": rounds_s,
        "meters_s": meters.seconds,
        "host_op_us": host_us,
    }


def step_row(
    spec: StepSpec,
    setup: _Setup,
    batch: int,
    timing: RoundsResult,
    meters: StepMeters,
    run_dir: Path,
    device: str,
) -> Row:
    """The measured columns of a step's row (timm's names where they mean the same)."""
    stats = timing.stats
    first_round, second_round = timing.compared
    gflops_per_step = setup.step_flops * batch / 1e9
    achieved_tflops = gflops_per_step / stats.median_ms  # GFLOP per ms = TFLOP/s
    peak = device_peak_tflops(run_dir, device)
    busy = meters.busy_share(stats.median_ms)
    prefix = spec.mode
    return {
        "param_count": round(setup.param_count_m, 3),
        f"{prefix}_samples_per_sec": batch / (stats.median_ms / 1e3),
        f"{prefix}_step_time": stats.median_ms,
        f"{prefix}_batch_size": batch,
        f"{prefix}_img_size": spec.img_size,
        "infer_gmacs": setup.forward_flops / 2 / 1e9,
        "step_p10_ms": stats.p10_ms,
        "step_p90_ms": stats.p90_ms,
        "step_mean_ms": stats.mean_ms,
        "step_cv": stats.cv,
        "timed_steps_n": stats.n,
        "timing_rounds": len(timing.rounds),
        "round1_median_ms": first_round.median_ms,
        "round2_median_ms": second_round.median_ms,
        "repeat_spread_pct": timing.spread_pct,
        "spread_target_pct": timing.spread_target_pct,
        "unstable": timing.unstable,
        **meters.memory,
        "gflops_per_step": gflops_per_step,
        "achieved_tflops": achieved_tflops,
        "device_peak_bf16_tflops": peak.tflops,
        "mfu": achieved_tflops / peak.tflops,
        "gpu_busy_share": busy,
        "launch_bound": bool(busy < LAUNCH_BOUND_BUSY_SHARE) if not math.isnan(busy) else None,
        "profiled_steps": meters.profiled_steps,
        "model_reused": setup.model_reused,
        "flops_cached": setup.flops_cached,
        "fp32_matmul_precision": torch.get_float32_matmul_precision(),
    }


def is_eager_cell(cell: Cell) -> bool:
    """Eager cells may share a worker (``Suite.reuse_worker``); a compiled cell gets its own, so no
    compiled graphs, CUDA-graph pools or inductor caches carry over into the next cell."""
    return str(cell.get("compile", "eager")) == "eager"
