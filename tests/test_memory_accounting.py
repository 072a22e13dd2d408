"""Exact accounting facts that tie the memory suite to the step that latency and scaling time.

The accountant's saved-tensor hook must not keep the very tensor autograd saves: a saved output
holds its own ``grad_fn`` (a reference cycle through C++ that gc cannot break), so a branch of the
graph that backward never reaches -- ProbSparse's query selection, which ends in ``topk``
indices -- would stay alive after the step and through its peak.
"""

from __future__ import annotations

import gc
import weakref

import pytest
import torch

from suites.engine import step as step_engine
from suites.engine.meters import TensorAccountant
from suites.engine.suite import CellContext

SIZE, BATCH = 64, 2  # favit_b0 at 64 px: stages 1 and 2 have more than 25 queries (ProbSparse on)


def test_a_saved_output_on_a_branch_backward_never_reaches_dies_with_the_step():
    w = torch.randn(16, 8, requires_grad=True)
    x = torch.randn(32, 16)
    kept: list[weakref.ref] = []
    with TensorAccountant() as acct:
        h = x @ w  # (32, 8)
        score = h.amax(dim=-1)  # amax saves its output: the tensor whose grad_fn saves it
        kept.append(weakref.ref(score))
        top = score.topk(4).indices  # no gradient flows back through indices
        h.gather(0, top.unsqueeze(-1).expand(-1, 8)).sum().backward()
        del h, score, top
    gc.collect()
    assert kept[0]() is None
    assert acct.result().end_live_bytes == w.grad.untyped_storage().nbytes()
    acct.detach()


def test_after_a_probsparse_training_step_only_the_gradients_stay_alive():
    torch.manual_seed(0)
    model = step_engine.create_model("favit_b0:probsparse_seed+ref", SIZE).train()
    images, labels = torch.randn(BATCH, 3, SIZE, SIZE), torch.randint(0, 1000, (BATCH,))
    with TensorAccountant() as acct:
        torch.nn.functional.cross_entropy(model(images), labels).backward()
    gc.collect()
    grads = sum(p.grad.untyped_storage().nbytes() for p in model.parameters())
    assert acct.result().end_live_bytes == grads
    acct.detach()


@pytest.mark.parametrize(
    ("variant", "impl", "dtype"),
    [
        ("probsparse_seed", "reference", "fp32"),
        ("probsparse+gsr1", "fast", "fp32"),
        ("dense", "fast", "bf16"),
    ],
)
def test_the_memory_latency_and_scaling_suites_give_one_step_memory(tmp_path, variant, impl, dtype):
    """For the same model, implementation, size, batch, dtype and mode, the three suites' training
    and inference ``step_mem_mib`` are one number (exact accounting makes it exact equality)."""
    from suites import latency, memory, scaling

    ctx = CellContext(device="cpu", run_dir=tmp_path, cell_id="c", quick=True)
    for mode in ("train", "infer"):
        cell = {"level": "model", "model": "favit_b0", "variant": variant, "impl": impl}
        cell.update(img_size=SIZE, batch_size=BATCH, mode=mode, dtype=dtype)
        memory_row = memory.measure(cell, ctx)
        step_cell = {"model": memory.model_name(cell), "img_size": SIZE, "batch_size": BATCH}
        step_cell.update(dtype=dtype, mode=mode)
        latency_row = latency.measure(step_cell, ctx)
        scaling_row = scaling.measure(step_cell, ctx)
        values = [r["step_mem_mib"] for r in (memory_row, latency_row, scaling_row)]
        assert values[0] > 0 and values == [values[0]] * 3, (mode, values)
        assert {r["mem_source"] for r in (memory_row, latency_row)} == {"tensor_accounting"}
        # the accounting step after it gives the same peak, and nothing outlives a step
        assert memory_row["acct_peak_live_mib"] == values[0]
        assert memory_row["acct_end_live_mib"] == 0.0
