"""Memory meters: the CUDA allocator and NVML on the GPU, exact tensor accounting on any device.

``GpuMemoryMeter`` reads what the CUDA caching allocator and NVML report around a step.
``TensorAccountant`` counts tensor storages themselves, so it works on the CPU as well:

- peak live bytes: a ``TorchDispatchMode`` sees every op's outputs; an output storage that is new
  (not one the op received, so views and in-place results are free) is counted once, and a
  finalizer on the storage subtracts it when it dies. Storages that existed before the step
  (parameters, inputs) are the baseline and are never counted; those of them named in
  ``baseline`` (gradients that ``zero_grad(set_to_none=True)`` frees) subtract their bytes when
  they die inside the block, so the peak is the peak above what lived before the block, as the
  CUDA allocator's peak minus its baseline is.
- bytes saved for backward: ``torch.autograd.graph.saved_tensors_hooks`` sees every tensor autograd
  saves; each storage is counted once while it lives (all of them, and those created during the
  step; a storage saved after another died at its address counts too).

Both are exact in bytes of storage (``UntypedStorage.nbytes``); the allocator adds its rounding
(blocks of 512 bytes) and its cache, which is why both are reported side by side on the GPU.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

MIB = 1024.0**2


def _storages(tree: Any) -> list[torch.UntypedStorage]:
    flat, _ = tree_flatten(tree)
    return [
        t.untyped_storage()
        for t in flat
        if isinstance(t, torch.Tensor) and t.layout == torch.strided
    ]


def _storage_key(storage: torch.UntypedStorage) -> int:
    return storage._cdata  # the address of the C++ StorageImpl: unique while the storage lives


@dataclass
class TensorMemory:
    """Exact tensor accounting of one step, in bytes (``_mib`` properties for reports)."""

    # step-created storages alive, less the ``baseline`` storages freed (TensorAccountant):
    peak_live_bytes: int  # the most at once
    end_live_bytes: int  # when the step ended (grads, outputs)
    allocated_bytes: int  # every step-created storage summed (total allocation traffic)
    saved_bytes: int  # unique storages autograd saved for backward, weights and inputs included
    saved_activation_bytes: int  # the part of saved_bytes created during the step
    num_storages: int  # storages created during the step

    def as_row(self, prefix: str = "acct_") -> dict[str, float]:
        """Row columns: byte counts as ``<prefix><name>_mib``, the storage count as is."""
        row: dict[str, float] = {}
        for name, value in asdict(self).items():
            if name.endswith("_bytes"):
                row[f"{prefix}{name.removesuffix('_bytes')}_mib"] = value / MIB
            else:
                row[f"{prefix}{name}"] = value
        return row


# ops that allocate without writing (no kernel runs): left out of OpTraffic like views
_ALLOCATIONS = frozenset(
    {
        "aten::empty",
        "aten::empty_strided",
        "aten::empty_like",
        "aten::new_empty",
        "aten::new_empty_strided",
    }
)


def _tensor_bytes(tree: Any) -> int:
    flat, _ = tree_flatten(tree)
    return sum(t.numel() * t.element_size() for t in flat if isinstance(t, torch.Tensor))


def _writes_an_input(func) -> bool:
    """True when ``func``'s schema marks an argument as written (``Tensor(a!)``: in-place and out=
    ops). The schema, not ``torch.Tag.inplace``: torch 2.11 has no such tag."""
    return any(
        arg.alias_info is not None and arg.alias_info.is_write for arg in func._schema.arguments
    )


class OpTraffic(TorchDispatchMode):
    """Count the ATen ops a block dispatches and the bytes their tensors hold.

    Views (``OpOverload.is_view``, and ops whose outputs only alias their inputs without writing,
    such as ``_unsafe_view``) and bare allocations (``empty``...) launch no kernel and are left
    out. Every other op counts once, with the bytes of its tensor inputs and outputs (elements
    times element size; an in-place op's written input counts as an output too; ``*_like`` and
    ``new_*`` ops read no input, only its shape): in eager execution, about one kernel each and the
    memory traffic they need at least. The count is exact and, in fp32, the same on any device;
    under autocast each device's cast policy applies (CUDA runs LayerNorm in fp32, the CPU's
    policy differs), and fused kernels differ by name, not by count.

    >>> with OpTraffic() as traffic:
    ...     model(x).sum().backward()
    >>> traffic.ops, traffic.bytes
    """

    def __init__(self) -> None:
        super().__init__()
        self.ops = 0
        self.bytes = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = func._schema.name
        if func.is_view or name in _ALLOCATIONS:
            return out
        inplace = _writes_an_input(func)
        inputs = {_storage_key(s) for s in _storages((args, kwargs))}
        outputs = {_storage_key(s) for s in _storages(out)}
        if outputs and outputs <= inputs and not inplace:
            return out  # an alias made without the view tag
        self.ops += 1
        template_only = name.endswith("_like") or name.startswith("aten::new_")  # shape, no read
        self.bytes += _tensor_bytes(out) + (0 if template_only else _tensor_bytes((args, kwargs)))
        return out


class TensorAccountant(TorchDispatchMode):
    """Count tensor storages created and saved for backward inside a ``with`` block.

    ``baseline``: tensors alive before the block that the block may free (a training step's
    gradients, freed by ``zero_grad(set_to_none=True)``); a baseline storage that dies in the block
    gives its bytes back, so live bytes are those above what lived before the block (negative
    once more died than was created) and the peak is the block's peak above its start. Only their
    storages' addresses are kept: pass an iterable that holds no reference after it is consumed,
    or the tensors cannot die.

    >>> with TensorAccountant(baseline=(p.grad for p in model.parameters())) as acct:
    ...     step()
    >>> acct.result().peak_live_bytes
    """

    def __init__(self, baseline: Iterable[torch.Tensor | None] = ()) -> None:
        super().__init__()
        self._live: dict[int, int] = {}  # storage key -> nbytes, step-created storages alive now
        self._num_created = 0
        self._finalizers: list[weakref.finalize] = []
        self._saved_keys: set[int] = set()
        self._saved_bytes = 0
        self._saved_activation_bytes = 0
        self._live_bytes = 0
        self._peak_bytes = 0
        self._allocated_bytes = 0
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t)
        self._baseline: dict[int, int] = {}  # storage key -> nbytes, baseline storages alive now
        for tensor in baseline:
            if tensor is not None and tensor.layout == torch.strided:
                self._watch_baseline(tensor.untyped_storage())

    def _watch_baseline(self, storage: torch.UntypedStorage) -> None:
        key = _storage_key(storage)
        if key not in self._baseline:
            self._baseline[key] = storage.nbytes()
            self._finalizers.append(weakref.finalize(storage, self._release_baseline, key))

    def _release_baseline(self, key: int) -> None:
        self._live_bytes -= self._baseline.pop(key, 0)

    # -- dispatch: every op's outputs -------------------------------------------------------
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = {_storage_key(s) for s in _storages((args, kwargs))}
        for storage in _storages(out):
            key = _storage_key(storage)
            if key in inputs or key in self._live or key in self._baseline:
                continue  # a view, an in-place result or a baseline storage: no new memory
            self._track(storage, key)
        return out

    def _track(self, storage: torch.UntypedStorage, key: int) -> None:
        nbytes = storage.nbytes()
        self._live[key] = nbytes
        self._num_created += 1
        self._live_bytes += nbytes
        self._allocated_bytes += nbytes
        self._peak_bytes = max(self._peak_bytes, self._live_bytes)
        self._finalizers.append(weakref.finalize(storage, self._release, key))

    def _release(self, key: int) -> None:
        nbytes = self._live.pop(key, 0)
        self._live_bytes -= nbytes

    # -- saved tensors: what autograd keeps for backward -------------------------------------
    def _pack(self, tensor: torch.Tensor) -> torch.Tensor:
        if tensor.layout == torch.strided:
            storage = tensor.untyped_storage()
            key = _storage_key(storage)
            if key not in self._saved_keys:
                self._saved_keys.add(key)
                # a storage's key is its address: once it dies, another may take it
                self._finalizers.append(weakref.finalize(storage, self._saved_keys.discard, key))
                self._saved_bytes += storage.nbytes()
                if key in self._live:
                    self._saved_activation_bytes += storage.nbytes()
        # A detached alias (same storage), never ``tensor`` itself: a saved *output* (amax's,
        # softmax's...) carries its own grad_fn, so keeping it would close the loop node ->
        # SavedVariable -> tensor -> grad_fn -> node, through C++, which gc cannot break. Backward
        # frees the saved tensors of the nodes it runs, but not of a branch it never reaches
        # (ProbSparse's query selection, which ends in topk indices that carry no gradient), so
        # that branch would stay alive after the step and through its peak. Autograd itself
        # saves outputs without their grad_fn; unpacking gives the grad_fn back.
        return tensor.detach()

    def __enter__(self) -> TensorAccountant:
        self._hooks.__enter__()
        return super().__enter__()

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        self._hooks.__exit__(*exc)

    def result(self) -> TensorMemory:
        return TensorMemory(
            peak_live_bytes=self._peak_bytes,
            end_live_bytes=self._live_bytes,
            allocated_bytes=self._allocated_bytes,
            saved_bytes=self._saved_bytes,
            saved_activation_bytes=self._saved_activation_bytes,
            num_storages=self._num_created,
        )

    def detach(self) -> None:
        """Stop listening for storage deaths (call once the result is read)."""
        for fin in self._finalizers:
            fin.detach()
        self._finalizers.clear()


@dataclass
class GpuMemory:
    """What the CUDA allocator and NVML report around one step, in MiB."""

    baseline_allocated_mib: float  # allocated before the step: weights, optimizer state, inputs
    peak_above_baseline_mib: float  # allocator peak during the step minus the baseline
    peak_allocated_mib: float  # allocator peak including weights and optimizer state
    peak_reserved_mib: float  # the caching allocator's peak reservation
    nvml_used_mib: float  # NVML: this process's memory, else the whole device's used memory
    nvml_source: str  # "process" | "device" | "unavailable"

    def as_row(self) -> dict[str, float | str]:
        """Row columns under the names every suite uses for these quantities (docs/COLUMNS.md):
        ``peak_mem_mib`` (allocator peak, weights included), ``step_mem_mib`` (that peak above
        the pre-step baseline), ``steady_mem_mib`` (the baseline), ``reserved_mem_mib``,
        ``mem_source`` ``cuda_allocator``, ``nvml_used_mib`` and ``nvml_source``."""
        return {
            "peak_mem_mib": self.peak_allocated_mib,
            "step_mem_mib": self.peak_above_baseline_mib,
            "steady_mem_mib": self.baseline_allocated_mib,
            "reserved_mem_mib": self.peak_reserved_mib,
            "mem_source": "cuda_allocator",
            "nvml_used_mib": self.nvml_used_mib,
            "nvml_source": self.nvml_source,
        }


def _nvml_handle(device: torch.device, pynvml: Any) -> Any:
    uuid = getattr(torch.cuda.get_device_properties(device), "uuid", None)
    if uuid is not None:
        text = str(uuid)
        try:
            return pynvml.nvmlDeviceGetHandleByUUID(
                text if text.startswith("GPU-") else f"GPU-{text}"
            )
        except pynvml.NVMLError:
            pass
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    entries = [e.strip() for e in visible.split(",") if e.strip()]
    index = device.index or 0
    physical = int(entries[index]) if index < len(entries) and entries[index].isdigit() else index
    return pynvml.nvmlDeviceGetHandleByIndex(physical)


def nvml_memory_mib(device: torch.device) -> tuple[float, str]:
    """This process's GPU memory from NVML (``"process"``), else the device's used memory (``"device"``).

    Inside a container the process table often lists host pids only, hence the labelled fallback.
    """
    try:
        import pynvml  # nvidia-ml-py
    except ImportError:
        return float("nan"), "unavailable"
    try:
        pynvml.nvmlInit()
    except Exception:
        return float("nan"), "unavailable"
    try:
        handle = _nvml_handle(device, pynvml)
        for proc in pynvml.nvmlDeviceGetComputeRunningProcesses(handle):
            if proc.pid == os.getpid() and proc.usedGpuMemory is not None:
                return proc.usedGpuMemory / MIB, "process"
        return pynvml.nvmlDeviceGetMemoryInfo(handle).used / MIB, "device"
    except Exception:
        return float("nan"), "unavailable"
    finally:
        pynvml.nvmlShutdown()


class GpuMemoryMeter:
    """Allocator and NVML memory around a step on a CUDA device.

    >>> with GpuMemoryMeter("cuda:0") as meter:
    ...     step()
    >>> meter.result.peak_above_baseline_mib
    """

    def __init__(self, device: str | torch.device) -> None:
        self.device = torch.device(device)
        if self.device.type != "cuda":
            raise ValueError(f"GpuMemoryMeter needs a CUDA device, got {str(self.device)!r}")
        self.result: GpuMemory | None = None
        self._baseline = 0

    def __enter__(self) -> GpuMemoryMeter:
        torch.cuda.synchronize(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)
        self._baseline = torch.cuda.memory_allocated(self.device)
        return self

    def __exit__(self, *exc: object) -> None:
        torch.cuda.synchronize(self.device)
        peak = torch.cuda.max_memory_allocated(self.device)
        nvml_mib, source = nvml_memory_mib(self.device)
        self.result = GpuMemory(
            baseline_allocated_mib=self._baseline / MIB,
            peak_above_baseline_mib=(peak - self._baseline) / MIB,
            peak_allocated_mib=peak / MIB,
            peak_reserved_mib=torch.cuda.max_memory_reserved(self.device) / MIB,
            nvml_used_mib=nvml_mib,
            nvml_source=source,
        )


def is_out_of_memory(exc: BaseException) -> bool:
    """True for a CUDA OOM, a CPU allocation failure, or any error whose message says out of memory."""
    if isinstance(exc, MemoryError | torch.cuda.OutOfMemoryError):
        return True
    text = str(exc).lower()
    return (
        "out of memory" in text or "can't allocate memory" in text or "failed to allocate" in text
    )
