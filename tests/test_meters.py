"""Exact tensor accounting on a toy module whose activation bytes are known by hand."""

from __future__ import annotations

import pytest
import torch

from suites.engine.meters import GpuMemoryMeter, OpTraffic, TensorAccountant, is_out_of_memory

FP32 = 4
BATCH, IN, HIDDEN, OUT = 8, 64, 128, 10


def toy_module() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(IN, HIDDEN), torch.nn.ReLU(), torch.nn.Linear(HIDDEN, OUT)
    )


def test_forward_with_grad_counts_activations_exactly():
    model, x = toy_module(), torch.randn(BATCH, IN)
    with TensorAccountant() as acct:
        out = model(x)
    result = acct.result()
    pre_relu = hidden = BATCH * HIDDEN * FP32  # addmm output, then relu's new output
    logits = BATCH * OUT * FP32
    # peak: pre-activation and relu output alive together; then the pre-activation dies
    assert result.peak_live_bytes == pre_relu + hidden
    assert result.end_live_bytes == hidden + logits  # relu output kept for backward, and the output
    assert result.allocated_bytes == pre_relu + hidden + logits
    assert result.num_storages == 3
    # saved for backward: the input (for fc1's weight grad), relu's output (once, although relu
    # and fc2 both save it) and fc2's weight; fc1's weight is not saved since x needs no grad
    assert result.saved_bytes == BATCH * IN * FP32 + hidden + OUT * HIDDEN * FP32
    assert result.saved_activation_bytes == hidden
    del out


def test_no_grad_saves_nothing_and_frees_the_hidden_layer():
    model, x = toy_module(), torch.randn(BATCH, IN)
    with torch.no_grad(), TensorAccountant() as acct:
        out = model(x)
    result = acct.result()
    assert result.peak_live_bytes == 2 * BATCH * HIDDEN * FP32
    assert result.end_live_bytes == out.untyped_storage().nbytes() == BATCH * OUT * FP32
    assert result.saved_bytes == 0


def test_training_step_ends_with_exactly_the_gradients_and_the_loss():
    model, x = toy_module(), torch.randn(BATCH, IN)
    with TensorAccountant() as acct:
        loss = model(x).sum()
        loss.backward()
    result = acct.result()
    grads = sum(p.numel() for p in model.parameters()) * FP32
    assert result.end_live_bytes == grads + loss.untyped_storage().nbytes()
    # while fc1's weight grad is computed, the grad of the pre-activation is alive too
    assert result.peak_live_bytes >= grads + BATCH * HIDDEN * FP32
    acct.detach()


def test_views_and_in_place_ops_are_free():
    x = torch.randn(256)
    with TensorAccountant() as acct:
        y = x * 2  # 1 KiB
        y.view(16, 16).t().add_(1)
        y.relu_()
    assert acct.result().allocated_bytes == 256 * FP32


def test_op_traffic_counts_kernels_and_their_bytes_by_hand():
    linear = torch.nn.Linear(8, 4)
    x = torch.randn(2, 8)
    with OpTraffic() as forward:
        linear(x)
    # one addmm: reads x (2x8), the weight (4x8) and the bias (4), writes (2x4)
    assert (forward.ops, forward.bytes) == (1, (16 + 32 + 4 + 8) * FP32)
    with OpTraffic() as free:
        x.view(4, 4).t()[0]  # views
        torch.empty(3, 5)  # a bare allocation
    assert (free.ops, free.bytes) == (0, 0)
    with OpTraffic() as written:
        x.add_(1)  # reads and writes x in place
        torch.zeros_like(x)  # writes only: x gives the shape
    assert (written.ops, written.bytes) == (2, (16 + 16 + 16) * FP32)


def test_out_of_memory_classification():
    assert is_out_of_memory(torch.cuda.OutOfMemoryError("CUDA out of memory"))
    assert is_out_of_memory(RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried"))
    assert is_out_of_memory(MemoryError())
    assert not is_out_of_memory(ValueError("shape mismatch"))


def test_gpu_meter_refuses_a_cpu_device():
    with pytest.raises(ValueError, match="'cpu'"):
        GpuMemoryMeter("cpu")


def test_baseline_storages_freed_in_the_block_give_their_bytes_back():
    # between two training steps a gradient lives; the step frees it (zero_grad(set_to_none=True)),
    # makes an activation, then the new gradient
    holder = {"grad": torch.zeros(1000)}

    def step() -> None:
        holder["grad"] = None  # -4000 bytes
        activation = torch.ones(500)  # +2000
        holder["grad"] = torch.zeros(1000)  # +4000
        del activation  # -2000

    with TensorAccountant() as plain:
        step()
    assert (plain.result().peak_live_bytes, plain.result().end_live_bytes) == (6000, 4000)
    plain.detach()
    with TensorAccountant(baseline=(holder["grad"],)) as acct:
        step()
    result = acct.result()
    # above what lived before the block, as an allocator's peak minus its baseline
    assert result.peak_live_bytes == 500 * FP32 + 1000 * FP32 - 1000 * FP32
    assert result.end_live_bytes == 0  # a gradient of the same size as before
    assert result.allocated_bytes == 6000 and result.num_storages == 2
    acct.detach()


def test_saved_storages_are_counted_once_each_even_where_a_dead_ones_address_is_taken_again():
    w = torch.randn(64, 64, requires_grad=True)
    with TensorAccountant() as acct:
        for _ in range(20):  # exp saves its output; each dies with its node, freeing its address
            y = (w * 1.0).exp()
            del y
    saved = acct.result().saved_bytes
    acct.detach()
    assert saved == 20 * 64 * 64 * 4
