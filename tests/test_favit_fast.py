"""The fast implementation equals the reference (fp32, forward and every gradient), and its pieces
equal the operations they replace."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

import favit
from favit.attention import (
    DENSE_SELECT_KEY_RATIO,
    pool_window_samples,
    probsparse_sizes,
    reflect_pad_right_bottom,
    window_geometry,
    window_pool_index,
    window_samples,
)

TOLERANCE = {"rtol": 1e-5, "atol": 1e-5}
SIZES = [(32, 32), (48, 48), (64, 64), (96, 128), (224, 224)]
# every branch, several heads (so the projection's column order is exercised), B0's layout
TINY = favit.FaViTConfig(
    embed_dims=(16, 32, 64, 64), depths=(1, 1, 1, 1), mlp_ratios=(2, 2, 2, 2), num_classes=10
)
# cheaper still, for 384 and 512
TINIER = replace(TINY, mlp_ratios=(1, 1, 1, 1))


def _pair(config: favit.FaViTConfig) -> tuple[favit.FaViT, favit.FaViT]:
    """A reference model and a fast model with the same weights."""
    torch.manual_seed(0)
    reference = favit.FaViT(replace(config, impl="reference"))
    fast = favit.FaViT(replace(config, impl="fast"))
    fast.load_state_dict(reference.state_dict())
    return reference, fast


def _run(model: favit.FaViT, x: torch.Tensor, train: bool, generator_seed: int | None):
    """Logits and every parameter's gradient of one forward/backward, from fixed RNG states."""
    model.train(train)
    torch.manual_seed(1)  # DropPath and (without a generator) ProbSparse draw from it
    generator = None if generator_seed is None else torch.Generator().manual_seed(generator_seed)
    favit.set_generator(model, generator)
    model.zero_grad(set_to_none=True)
    logits = model(x)
    (logits * torch.linspace(-1, 1, logits.shape[-1])).sum().backward()
    return logits.detach(), {n: p.grad for n, p in model.named_parameters()}


def _assert_equal_runs(reference, fast, x, train: bool, generator_seed: int | None) -> None:
    ref_logits, ref_grads = _run(reference, x, train, generator_seed)
    fast_logits, fast_grads = _run(fast, x, train, generator_seed)
    torch.testing.assert_close(fast_logits, ref_logits, **TOLERANCE)
    assert ref_grads.keys() == fast_grads.keys()
    for name, grad in ref_grads.items():
        assert grad is not None and fast_grads[name] is not None, name
        torch.testing.assert_close(fast_grads[name], grad, **TOLERANCE, msg=name)


@pytest.mark.parametrize("seed_compat", [False, True])
@pytest.mark.parametrize("global_attn", favit.GLOBAL_ATTN_CHOICES)
def test_fast_equals_reference_at_every_size_in_train_and_eval(
    global_attn: str, seed_compat: bool
) -> None:
    # train: DropPath active, ProbSparse from the global RNG (draws interleave); eval: a generator
    config = replace(TINY, global_attn=global_attn, seed_compat=seed_compat, drop_path_rate=0.2)
    reference, fast = _pair(config)
    for height, width in SIZES:
        x = torch.randn(2, 3, height, width)
        _assert_equal_runs(reference, fast, x, train=True, generator_seed=None)
        _assert_equal_runs(reference, fast, x, train=False, generator_seed=7)


@pytest.mark.parametrize("size", [384, 512])
def test_fast_equals_reference_at_large_inputs(size: int) -> None:
    reference, fast = _pair(replace(TINIER, global_attn="probsparse"))
    _assert_equal_runs(reference, fast, torch.randn(1, 3, size, size), train=True, generator_seed=3)


@pytest.mark.parametrize("global_attn", ["probsparse_seed", "probsparse"])
def test_fast_equals_reference_on_the_gather_path_of_sr1(global_attn: str) -> None:
    """With sr = 1 the keys are many: the fast path keeps the reference's sampled-key gather."""
    n_queries = 16 * 16  # stage 1 at 64x64
    n_sample, _ = probsparse_sizes(global_attn, n_queries, n_queries)
    assert n_queries > DENSE_SELECT_KEY_RATIO * n_sample
    reference, fast = _pair(replace(TINY, global_attn=global_attn, sr_ratios=(1, 1, 1, 1)))
    _assert_equal_runs(reference, fast, torch.randn(2, 3, 64, 64), train=True, generator_seed=5)


def test_fast_b1_equals_reference_at_224() -> None:
    reference, fast = _pair(replace(favit.model_config("favit_b1"), num_classes=10))
    _assert_equal_runs(reference, fast, torch.randn(1, 3, 224, 224), train=True, generator_seed=0)


@pytest.mark.parametrize("seed_compat", [False, True])
@pytest.mark.parametrize("global_attn", favit.GLOBAL_ATTN_CHOICES)
def test_fast_equals_reference_with_global_reduction_1(global_attn: str, seed_compat: bool) -> None:
    """``+gsr1``: the global branch over every token, the published channel split (dilated
    branches in stages 1-3); ProbSparse takes the gather path where the keys are many."""
    config = replace(
        TINY,
        global_attn=global_attn,
        seed_compat=seed_compat,
        global_sr_ratios=(1, 1, 1, 1),
        drop_path_rate=0.2,
    )
    reference, fast = _pair(config)
    assert [len(stage.blocks[0].attn.windows) for stage in fast.stages] == [2, 2, 2, 1]
    for height, width in [(32, 32), (64, 64), (96, 128)]:
        x = torch.randn(2, 3, height, width)
        _assert_equal_runs(reference, fast, x, train=True, generator_seed=None)
        _assert_equal_runs(reference, fast, x, train=False, generator_seed=7)


@pytest.mark.parametrize("global_attn", ["probsparse_seed", "dense"])
def test_fast_b1_with_global_reduction_1_equals_reference_at_224(global_attn: str) -> None:
    config = replace(
        favit.model_config("favit_b1"),
        num_classes=10,
        global_attn=global_attn,
        global_sr_ratios=(1, 1, 1, 1),
    )
    reference, fast = _pair(config)
    _assert_equal_runs(reference, fast, torch.randn(1, 3, 224, 224), train=True, generator_seed=0)


def test_attention_dropout_in_training_takes_the_reference_path() -> None:
    reference, fast = _pair(replace(TINY, attn_drop_rate=0.3))
    attn = fast.stages[0].blocks[0].attn
    assert attn.train().uses_fast_path() is False and attn.eval().uses_fast_path() is True
    _assert_equal_runs(reference, fast, torch.randn(2, 3, 64, 64), train=True, generator_seed=None)


@pytest.mark.parametrize("global_attn", ["probsparse_seed", "probsparse"])
def test_dense_select_picks_the_same_queries_and_fills_as_the_gather_path(global_attn: str) -> None:
    torch.manual_seed(0)
    attention = favit.GlobalAttention(16, 8, global_attn=global_attn)
    q, k, v = torch.randn(2, 1, 300, 16), torch.randn(2, 1, 49, 16), torch.randn(2, 1, 49, 16)
    n_sample, n_top = probsparse_sizes(global_attn, 300, 49)
    assert DENSE_SELECT_KEY_RATIO * n_sample >= 49  # the fast path's dense-select regime
    attention.generator = torch.Generator().manual_seed(11)
    gathered = attention._probsparse(q, k, v, n_sample, n_top)
    attention.generator = torch.Generator().manual_seed(11)
    selected = attention._probsparse_dense_select(q, k, v, n_sample, n_top)
    torch.testing.assert_close(selected, gathered, **TOLERANCE)
    fill = torch.zeros(2, 1, 1, 16) if global_attn == "probsparse_seed" else v.mean(2, keepdim=True)
    is_fill = (selected == fill).all(-1)  # (B, 1, N)
    assert (is_fill.sum(-1) == 300 - n_top).all()


def test_branch_outputs_equal_the_reference_branch_by_branch() -> None:
    torch.manual_seed(0)
    attention = favit.FactorizedAttention(64, 2, 4, global_attn="probsparse").eval()
    assert attention.proj_input_order is not None  # 2 heads x 2 branches: head-major differs
    x = torch.randn(2, 20 * 28, 64)
    attention.global_attn.generator = torch.Generator().manual_seed(2)
    fast = attention.branch_outputs(x, 20, 28)
    attention.global_attn.generator = torch.Generator().manual_seed(2)
    reference = attention.reference_branch_outputs(x, 20, 28)
    assert (
        [o.shape for o in fast]
        == [o.shape for o in reference]
        == [(2, 560, w) for w in (8, 28, 28)]
    )
    for ours, theirs in zip(fast, reference, strict=True):
        torch.testing.assert_close(ours, theirs, **TOLERANCE)


def test_impls_share_one_state_dict_layout() -> None:
    reference, fast = _pair(TINY)
    assert list(reference.state_dict()) == list(fast.state_dict())
    assert all(not name.endswith("proj_input_order") for name in fast.state_dict())


@pytest.mark.parametrize(
    ("height", "width", "dilation"),
    [
        (56, 56, 1),
        (56, 56, 8),
        (28, 28, 4),
        (14, 21, 2),
        (8, 8, 8),
        (8, 8, 1),
        (3, 5, 2),
        (1, 2, 4),
    ],
)
def test_window_samples_equal_unfold_of_the_padded_map(
    height: int, width: int, dilation: int
) -> None:
    kv_map = torch.randn(2, 6, height, width)
    stride, pad_bottom, pad_right, windows = window_geometry(height, width, dilation)
    padded = reflect_pad_right_bottom(kv_map, pad_bottom, pad_right)
    expected = F.unfold(padded, 7, dilation=dilation, stride=stride)  # (B, C * 49, nW)
    samples = window_samples(kv_map, dilation)  # (B, C, nH, 7, nW_w, 7)
    n_rows, n_cols = samples.shape[2], samples.shape[4]
    assert n_rows * n_cols == windows
    as_unfold = samples.permute(0, 1, 3, 5, 2, 4).reshape(2, 6 * 49, windows)
    torch.testing.assert_close(as_unfold, expected, rtol=0, atol=0)
    if pad_bottom == 0 and pad_right == 0:  # non-overlapping windows: a view, no copy
        assert samples.untyped_storage().data_ptr() == kv_map.untyped_storage().data_ptr()


@pytest.mark.parametrize(
    ("heads", "head_width", "grid"), [(1, 28, (8, 8)), (2, 7, (2, 3)), (4, 5, (1, 1))]
)
def test_reshape_mean_pooling_equals_adaptive_avg_pool(heads: int, head_width: int, grid) -> None:
    n_rows, n_cols = grid
    samples = torch.randn(2, heads * head_width, n_rows, 7, n_cols, 7)
    windows = n_rows * n_cols
    # the official layout: (B, heads, 49, nW * w), window outer and channel inner
    flat = samples.reshape(2, heads, head_width, n_rows, 7, n_cols, 7)
    flat = flat.permute(0, 1, 4, 6, 3, 5, 2).reshape(2, heads, 49, windows * head_width)
    expected = torch.nn.AdaptiveAvgPool2d((None, head_width))(flat)
    torch.testing.assert_close(pool_window_samples(samples, heads), expected, **TOLERANCE)


def test_bad_impl_lists_the_choices() -> None:
    with pytest.raises(ValueError, match=r"unknown impl 'slow'; valid choices: fast, reference"):
        favit.create_model("favit_b0", impl="slow")
    assert favit.create_model("favit_b0", impl="reference").config.impl == "reference"
    assert favit.create_model("favit_b0").config.impl == "fast"


@pytest.mark.parametrize("train", [False, True])
def test_fast_model_compiles_as_one_graph(train: bool) -> None:
    """fullgraph=True: no graph break (no generator set). Dynamo's capture only (backend 'eager')
    unless FAVIT_SLOW_TESTS=1, which compiles through inductor (about 1-2 min per mode here)."""
    backend = "inductor" if os.environ.get("FAVIT_SLOW_TESTS") == "1" else "eager"
    torch.manual_seed(0)
    model = favit.FaViT(TINY).train(train)
    x = torch.randn(2, 3, 64, 64)
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True, dynamic=False, backend=backend)
    if train:  # the same random draws (sampled keys, dropped paths) in both passes
        torch.manual_seed(1)
        with torch._inductor.config.patch(fallback_random=True):  # inductor: eager's generator
            compiled(x).sum().backward()
        grads = {name: p.grad.clone() for name, p in model.named_parameters()}
        model.zero_grad()
        torch.manual_seed(1)
        model(x).sum().backward()
        for name, p in model.named_parameters():
            torch.testing.assert_close(grads[name], p.grad, **TOLERANCE, msg=name)
    else:
        with torch.no_grad():
            torch.testing.assert_close(compiled(x), model(x), **TOLERANCE)


def test_ref_name_modifier_builds_the_reference_implementation() -> None:
    import baselines

    assert baselines.create("favit_b0+ref", 10, 64).config.impl == "reference"
    assert baselines.create("favit_b0:dense+sr1+ref", 10, 64).config.sr_ratios == (1, 1, 1, 1)
    assert baselines.create("favit_b0", 10, 64).config.impl == "fast"
    with pytest.raises(ValueError, match=r"unknown modifier '\+reff'.*\+ref"):
        baselines.validate_name("favit_b0+reff")


@pytest.mark.parametrize(("height", "width"), [(56, 56), (14, 21), (8, 8), (3, 5)])
def test_window_pool_index_gathers_every_branch_pooling_from_the_channels_last_map(
    height: int, width: int
) -> None:
    heads, local_width, dilated_width, dilation = 2, 6, 6, 4
    kv_map = torch.randn(2, height, width, local_width + dilated_width)  # channels-last
    branches = [(local_width, 1), (dilated_width, dilation)]
    index = window_pool_index(height, width, branches, heads, kv_map.device)
    gathered = kv_map.flatten(1).index_select(1, index)
    start = 0
    for (branch_width, branch_dilation), channels in zip(
        branches, kv_map.permute(0, 3, 1, 2).split([local_width, dilated_width], 1), strict=True
    ):
        expected = pool_window_samples(window_samples(channels, branch_dilation), heads)
        windows = window_geometry(height, width, branch_dilation)[3]
        size = branch_width * 49 * windows
        entries = gathered[:, start : start + size].view(2, heads, 49, branch_width // heads, -1)
        torch.testing.assert_close(entries.mean(-1), expected, rtol=0, atol=0)
        start += size
    assert start == index.numel()


def test_window_index_is_built_once_per_input_size_and_not_saved() -> None:
    attention = favit.FactorizedAttention(64, 2, 4)
    first = attention.window_index(28, 28, torch.device("cpu"))
    assert attention.window_index(28, 28, torch.device("cpu")) is first
    assert attention.window_index(14, 14, torch.device("cpu")).numel() < first.numel()
    assert list(attention.state_dict()) == list(favit.FactorizedAttention(64, 2, 4).state_dict())


@pytest.mark.parametrize(("global_attn", "fused"), [("dense", False), ("sdpa", True)])
def test_fast_dense_keeps_its_score_matrix(global_attn: str, fused: bool) -> None:
    """``dense`` is the variant that measures a materialized (N x L_K) score matrix, so its fast
    path keeps the explicit softmax; ``sdpa`` goes through the fused kernel."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class OpNames(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.names: set[str] = set()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.names.add(func.__name__)
            return func(*args, **(kwargs or {}))

    attention = favit.GlobalAttention(16, sr_ratio=2, global_attn=global_attn)
    q, x = torch.randn(2, 64, 16), torch.randn(2, 64, 16)
    with OpNames() as ops:
        attention.forward_fast(q, x, 8, 8)
    assert any("_softmax" in name for name in ops.names) is not fused
    assert any("scaled_dot_product" in name for name in ops.names) is fused


def test_fast_model_traces_for_cuda_graphs_of_its_eager_kernels() -> None:
    """``compile=cudagraph_eager`` is ``torch.compile(backend="cudagraphs")``: dynamo and
    AOTAutograd trace the fast model's training step (on the CPU no graph is captured and the
    traced kernels run), which must give the eager logits and gradients (fp32, 1e-5)."""
    torch.manual_seed(0)
    eager = favit.FaViT(TINY).train()
    traced = favit.FaViT(TINY).train()
    traced.load_state_dict(eager.state_dict())
    compiled = torch.compile(traced, backend="cudagraphs", dynamic=False)
    x = torch.randn(2, 3, 64, 64)
    logits = []
    for model in (eager, compiled):
        torch.manual_seed(1)  # the same ProbSparse draws
        out = model(x)
        out.square().sum().backward()
        logits.append(out.detach())
    torch.testing.assert_close(logits[1], logits[0], **TOLERANCE)
    for a, b in zip(eager.parameters(), traced.parameters(), strict=True):
        torch.testing.assert_close(b.grad, a.grad, **TOLERANCE)


def _saved_activation_bytes(module: torch.nn.Module, x: torch.Tensor) -> int:
    """Bytes of the distinct non-parameter tensors autograd saves for ``module``'s backward."""
    params = {p.untyped_storage().data_ptr() for p in module.parameters()}
    storages: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        pointer = tensor.untyped_storage().data_ptr()
        if pointer not in params:
            storages[pointer] = tensor.untyped_storage().nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        module(x, 8, 8)
    return sum(storages.values())


def test_fast_mlp_equals_reference_under_autocast_and_saves_one_activation_fewer() -> None:
    """bf16 autocast (CPU): bit for bit the reference's output and gradients; GELU's output is
    recomputed in backward instead of saved."""
    torch.manual_seed(0)
    reference = favit.model.Mlp(16, 64, impl="reference")
    fast = favit.model.Mlp(16, 64, impl="fast")
    fast.load_state_dict(reference.state_dict())
    x = torch.randn(2, 64, 16)
    results = []
    for module in (reference, fast):
        leaf = x.clone().requires_grad_()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = module(leaf, 8, 8)
        out.float().square().sum().backward()
        results.append((out, leaf.grad, [p.grad for p in module.parameters()]))
    (ref_out, ref_dx, ref_grads), (fast_out, fast_dx, fast_grads) = results
    assert fast_out.dtype == ref_out.dtype == torch.bfloat16
    assert torch.equal(fast_out, ref_out) and torch.equal(fast_dx, ref_dx)
    for ref_grad, fast_grad in zip(ref_grads, fast_grads, strict=True):
        assert fast_grad.dtype == ref_grad.dtype == torch.float32
        assert torch.equal(fast_grad, ref_grad)
    hidden_map = 2 * 64 * 64 * 4  # one (B, N, hidden) fp32 activation
    assert (
        _saved_activation_bytes(reference, x.requires_grad_()) - _saved_activation_bytes(fast, x)
        == hidden_map
    )
