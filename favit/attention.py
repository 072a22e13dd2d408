"""Factorized attention of FaViT with four global-attention kernels, ProbSparse among them.

FaViT: Qin et al., "Factorization Vision Transformer: Modeling Long Range Dependency with Local
Window Cost"; ProbSparse: Zhou et al., "Informer" (AAAI 2021).

One block's attention splits the channels into groups (``docs/SUBJECT.md``, "Factorized attention"):

- a *global* group (one head) attends to a spatially reduced map (``Conv2d(k=sr, s=sr)`` then
  LayerNorm), through one of four kernels chosen by ``global_attn``. Its reduction is the block's
  ``sr`` unless ``global_sr_ratio`` sets it apart from the channel split; at 1 the conv is a 1x1
  conv (a per-token linear map) and the keys are all N tokens, the global path of the official
  code's sr == 1 stage:

  ``"probsparse_seed"``
      the seed script's ProbSparse: 25 sampled keys per query (uniform, with replacement, shared
      over batch and heads), sparsity ``M = max - mean`` of the sampled unscaled scores, the top
      ``u = int(factor * ln N)`` queries get full attention, every other query gets ZERO output;
      active only when ``N > 25`` (dense otherwise).
  ``"probsparse"``
      Informer's ProbSparse (Zhou et al., AAAI 2021): ``factor * ceil(ln L_K)`` sampled keys,
      ``M = max - sum / L_K``, ``u = factor * ceil(ln N)``, unselected queries get the mean of V.
  ``"dense"``
      explicit ``softmax(Q K^T * scale) V`` with the score matrix materialized.
  ``"sdpa"``
      ``torch.nn.functional.scaled_dot_product_attention`` (same math as dense; PyTorch may pick a
      fused kernel that never materializes the score matrix).

- a *local window* group and, when ``sr > 1``, a *dilated window* group (``num_heads`` heads each,
  dilation ``sr``): every query attends to 49 tokens pooled from 7x7 windows of a conv-projected
  map. The channel split and the dilation follow ``sr``, never ``global_sr_ratio``.

Small feature maps (the rule this package adds; at 224, 384 and 512 input it never triggers, so
there the model is numerically the published design): the window branches reflection-pad the map
on the right and bottom up to a multiple of the window stride ``s = 6 * d + 1``. ``nn.ReflectionPad2d`` needs
``pad < size``; the seed crashes when it is not (e.g. the dilated branch on an 8x8 map, pad 41).
Here, when ``pad >= size`` the padding *keeps reflecting* (the periodic mirror extension that
``numpy.pad(mode="reflect")`` uses for long pads: index ``i`` maps to ``i mod 2(size-1)`` folded
back), and a map of size 1 is replicated. Window count, stride and dilation are unchanged, so the
layout and the parameter shapes never depend on the input size. The global branch needs the map
to be at least its reduction wide (``H // sr >= 1``), which holds from 32x32 input up.

``seed_compat=True`` changes one thing, in the global branch only and under every kernel: v is
reshaped from (tokens, channels) to (channels, H', W') without a transpose before its depthwise
conv, as the seed does (the official FaViT transposes).

ProbSparse sampling draws from ``GlobalAttention.generator`` when set (``favit.set_generator``),
else from the global RNG. Sample and top-u counts are Python ints from shapes, so the forward has
no host sync; under ``torch.compile`` the global RNG compiles without graph breaks, while an
explicit ``torch.Generator`` costs one graph break per ProbSparse block.

Two implementations of the same math, chosen by ``impl`` (``IMPL_CHOICES``):

``"reference"``
    the readable definition of correct: ``F.unfold`` windows, explicit softmax attention per branch,
    ProbSparse by gathering the sampled keys and scattering the top-u rows into a fill tensor.
``"fast"`` (default)
    equal to the reference in fp32 (forward and gradients, to ~1e-6), with fewer kernels and less
    memory traffic (the GPU step is launch-bound, so the count of ops matters most): q and the
    block input are cut into global and window channels by ``split`` (one ``cat`` in backward,
    not a zero-filled copy per slice); the window kv map's depthwise conv runs on the block
    input's channels-last view and its 1x1 conv as a ``Linear`` on channels-last rows; every
    branch's pooling entries (the windows' taps, reflected where padded, in the official pooling
    layout) are ONE ``index_select`` from that map with an index built once per input size
    (``window_pool_index``, cached on the module), then one mean per branch -- no unfold, no padded
    copy, no per-step index arithmetic; the branches' fc and kv Linears run as batched matmuls
    over the branch axis and their v convs as one grouped conv; local and dilated branches
    run as ONE ``scaled_dot_product_attention`` call (heads stacked, widths equal), its output kept
    head-major and the projection's columns permuted to match instead of a reordering copy; the
    global branch uses SDPA (except ``dense``, which keeps its explicit (N x L_K) score matrix: it
    is the variant that measures one), and ProbSparse over few keys (``scores_every_key``:
    ``n_keys <= DENSE_SELECT_KEY_RATIO * n_sample``) computes the full score matrix once under
    ``no_grad`` (sampled scores are a gather of it: same M, same top-u), attends with every query
    and keeps the selected rows with ``torch.where`` -- no gathered-key tensor, no scatter into
    zeros. Over many keys (global reduction 1) the reference's gather path is cheaper and is
    used. With ``attn_drop > 0`` in training the fast path defers to the reference (its dropout
    masks follow the explicit softmax's layout).
    Both make the same random draws in the same order.

Tensor layouts: tokens are ``(B, N, C)`` with ``N = H * W`` in row-major order.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

GLOBAL_ATTN_CHOICES: tuple[str, ...] = ("probsparse_seed", "probsparse", "dense", "sdpa")
DEFAULT_GLOBAL_ATTN = "probsparse"  # Informer's ProbSparse: every model's and module's default
IMPL_CHOICES: tuple[str, ...] = ("fast", "reference")

WINDOW_SIZE = 7  # window side of the local/dilated branches; 49 tokens per head
SEED_SAMPLE_KEYS = 25  # keys the seed samples per query
SEED_MIN_QUERIES = 25  # the seed uses ProbSparse only when N > 25
# fast ProbSparse scores every key (N x L_K) instead of gathering n_sample keys per query while
# L_K <= this ratio * n_sample: the full score row is then at most a few times the sampled one
DENSE_SELECT_KEY_RATIO = 4


def check_global_attn(global_attn: str) -> str:
    """Return ``global_attn`` or raise ``ValueError`` listing the valid choices."""
    if global_attn not in GLOBAL_ATTN_CHOICES:
        raise ValueError(
            f"unknown global_attn {global_attn!r}; valid choices: {', '.join(GLOBAL_ATTN_CHOICES)}"
        )
    return global_attn


def check_impl(impl: str) -> str:
    """Return ``impl`` or raise ``ValueError`` listing the valid choices."""
    if impl not in IMPL_CHOICES:
        raise ValueError(f"unknown impl {impl!r}; valid choices: {', '.join(IMPL_CHOICES)}")
    return impl


def channel_groups(dim: int, sr_ratio: int) -> tuple[int, ...]:
    """Channel widths of the branches: (global, local, dilated) if ``sr_ratio > 1`` else (global, local).

    ``mul = [2, 7, 7]`` or ``[1, 7]``; width ``i`` is ``dim // sum(mul) * mul[i]``.
    """
    mul = (2, 7, 7) if sr_ratio > 1 else (1, 7)
    if sr_ratio < 1:
        raise ValueError(f"sr_ratio must be >= 1, got {sr_ratio}")
    if dim % sum(mul) != 0:
        raise ValueError(f"dim {dim} must be divisible by {sum(mul)} for sr_ratio {sr_ratio}")
    return tuple(dim // sum(mul) * m for m in mul)


def probsparse_sizes(
    global_attn: str, n_queries: int, n_keys: int, factor: int = 5
) -> tuple[int, int] | None:
    """``(sampled keys per query, top-u queries)`` of a ProbSparse kernel, or None when it runs dense.

    Plain Python ints from shapes, so the forward never syncs with the device.
    - ``probsparse_seed``: ``(min(25, L_K), clamp(int(factor * ln N), 1, N))``; None when N <= 25.
    - ``probsparse``: ``(clamp(factor * ceil(ln L_K), 1, L_K), clamp(factor * ceil(ln N), 1, N))``.
    - ``dense`` / ``sdpa``: None.
    """
    if global_attn == "probsparse_seed":
        if n_queries <= SEED_MIN_QUERIES:
            return None
        n_top = int(factor * math.log(n_queries))
        return min(SEED_SAMPLE_KEYS, n_keys), max(1, min(n_top, n_queries))
    if global_attn == "probsparse":
        n_sample = factor * math.ceil(math.log(n_keys))
        n_top = factor * math.ceil(math.log(n_queries))
        return max(1, min(n_sample, n_keys)), max(1, min(n_top, n_queries))
    return None


def scores_every_key(global_attn: str, n_queries: int, n_keys: int, factor: int = 5) -> bool:
    """Whether the fast path's ProbSparse runs dense-then-select: over few keys
    (``n_keys <= DENSE_SELECT_KEY_RATIO * n_sample``) it computes the full N x L_K score matrix
    for the selection and lets every query attend, instead of gathering the sampled keys."""
    sizes = probsparse_sizes(global_attn, n_queries, n_keys, factor)
    return sizes is not None and n_keys <= DENSE_SELECT_KEY_RATIO * sizes[0]


def reflect_pad_right_bottom(x: torch.Tensor, pad_bottom: int, pad_right: int) -> torch.Tensor:
    """Reflection-pad ``x`` (B, C, H, W) on the right and bottom; pads may exceed the map size.

    Equals ``nn.ReflectionPad2d((0, pad_right, 0, pad_bottom))`` whenever that is defined
    (``pad < size``); beyond it the mirror keeps repeating (period ``2 * (size - 1)``), and a map
    of size 1 is replicated.
    """
    height, width = x.shape[-2:]
    if pad_bottom < height and pad_right < width:
        if pad_bottom == 0 and pad_right == 0:
            return x
        return F.pad(x, (0, pad_right, 0, pad_bottom), mode="reflect")
    rows = _reflected_indices(height, pad_bottom, x.device)
    cols = _reflected_indices(width, pad_right, x.device)
    return x.index_select(-2, rows).index_select(-1, cols)


def _reflected_indices(size: int, pad: int, device: torch.device) -> torch.Tensor:
    """Source index of each position 0 .. size + pad - 1 under a repeated mirror of 0 .. size - 1."""
    positions = torch.arange(size + pad, device=device)
    if size == 1:
        return torch.zeros_like(positions)
    period = 2 * (size - 1)
    folded = positions % period
    return torch.where(folded < size, folded, period - folded)


def window_geometry(height: int, width: int, dilation: int) -> tuple[int, int, int, int]:
    """``(stride, pad_bottom, pad_right, windows)`` of a 7x7 window branch with this dilation."""
    stride = dilation * (WINDOW_SIZE - 1) + 1
    pad_bottom = (stride - height % stride) % stride
    pad_right = (stride - width % stride) % stride
    windows = ((height + pad_bottom) // stride) * ((width + pad_right) // stride)
    return stride, pad_bottom, pad_right, windows


def _window_axis(x: torch.Tensor, dim: int, pad: int, dilation: int) -> torch.Tensor:
    """Split axis ``dim`` (size L) of ``x`` into (windows, 7) tap positions ``w * s + t * d``.

    ``s = 6 d + 1``; positions past the end follow ``reflect_pad_right_bottom``'s mirror. Without
    padding this is a strided view; with it, an ``index_select`` of only the sampled positions.
    """
    stride = dilation * (WINDOW_SIZE - 1) + 1
    size = x.shape[dim]
    windows = (size + pad) // stride
    if pad == 0:
        taps = [slice(None)] * (x.dim() + 1)
        taps[dim + 1] = slice(0, stride, dilation)
        return x.unflatten(dim, (windows, stride))[tuple(taps)]
    index = _reflected_indices(size, pad, x.device).view(windows, stride)[:, ::dilation]
    return x.index_select(dim, index.reshape(-1)).unflatten(dim, (windows, WINDOW_SIZE))


def window_samples(kv_map: torch.Tensor, dilation: int) -> torch.Tensor:
    """The 7x7 dilated window samples of a map, as ``F.unfold`` of the reflection-padded map takes them.

    ``kv_map`` (B, C, H, W), any memory layout -> (B, C, nH, 7, nW_w, 7): entry
    ``[b, c, i, ky, j, kx]`` is the padded map at row ``i * s + ky * d``, column ``j * s + kx * d``
    (``s = 6 d + 1``). The windows do not overlap, so without padding this is a view of ``kv_map``.
    """
    height, width = kv_map.shape[-2:]
    _, pad_bottom, pad_right, _ = window_geometry(height, width, dilation)
    rows = _window_axis(kv_map, 2, pad_bottom, dilation)  # (B, C, nH, 7, W)
    return _window_axis(rows, 4, pad_right, dilation)


def window_pool_layout(samples: torch.Tensor, num_heads: int) -> torch.Tensor:
    """Window samples in the official pooling's layout: (B, heads * w, nH, 7, nW_w, 7) ->
    (B, heads, 49, w, nW); pooled channel j of a head is the mean over the last axis.

    The official layout is (B, heads, 49, nW * w), window outer and channel inner; its
    ``AdaptiveAvgPool`` down to w averages runs of nW consecutive entries, i.e. the last axis of
    this reshape to (..., w, nW).
    """
    batch, channels, n_rows, _, n_cols, _ = samples.shape
    head_width = channels // num_heads
    windows = n_rows * n_cols
    per_head = samples.unflatten(1, (num_heads, head_width))  # (B, h, w, nH, 7, nW_w, 7)
    flat = per_head.permute(0, 1, 4, 6, 3, 5, 2).reshape(
        batch, num_heads, WINDOW_SIZE * WINDOW_SIZE, windows * head_width
    )
    return flat.unflatten(-1, (head_width, windows))


def pool_window_samples(samples: torch.Tensor, num_heads: int) -> torch.Tensor:
    """The official pooling of window samples: (B, heads * w, nH, 7, nW_w, 7) -> (B, heads, 49, w).

    ``window_pool_layout`` then a mean over its last axis (== ``AdaptiveAvgPool``).
    """
    return window_pool_layout(samples, num_heads).mean(-1)


def window_pool_index(
    height: int,
    width: int,
    branches: list[tuple[int, int]],
    num_heads: int,
    device: torch.device,
) -> torch.Tensor:
    """Gather index of every window branch's pooling entries in a channels-last map.

    ``branches``: (channel width, dilation) of each branch, in channel order of the
    (B, H, W, C_w) map, ``C_w`` their sum. Returns a 1-D int64 index into the map's flattened
    (H * W * C_w) axis: branch after branch, each ``window_pool_layout``'s (heads, 49, w, nW)
    entries (the reflected rows and columns of padded windows included). So
    ``map.flatten(1).index_select(1, index)``, cut per branch, viewed as (B, heads, 49, w, nW) and
    averaged over the last axis, is ``pool_window_samples(window_samples(branch map))``.
    """
    channels = sum(branch_width for branch_width, _ in branches)
    positions = torch.arange(height * width * channels, device=device)
    position_map = positions.view(1, height, width, channels).permute(0, 3, 1, 2)
    parts, start = [], 0
    for branch_width, dilation in branches:
        samples = window_samples(position_map[:, start : start + branch_width], dilation)
        parts.append(window_pool_layout(samples, num_heads).reshape(-1))
        start += branch_width
    return torch.cat(parts)


def _batched_linear(rows: torch.Tensor, linears: list[nn.Linear]) -> torch.Tensor:
    """``linears[i](rows[i])`` for every i as one batched matmul; rows (n, R, in) -> (n, R, out)."""
    weight = torch.stack([linear.weight for linear in linears]).transpose(1, 2)  # (n, in, out)
    if linears[0].bias is None:
        return torch.bmm(rows, weight)
    bias = torch.stack([linear.bias for linear in linears]).unsqueeze(1)  # (n, 1, out)
    return torch.baddbmm(bias, rows, weight)


class GlobalAttention(nn.Module):
    """The global branch: one head over ``width`` channels, keys from a spatially reduced map.

    Args:
        width: channels of the branch (``C_g``).
        sr_ratio: spatial reduction; keys come from ``Conv2d(k=sr, s=sr)`` of the (H, W) map, then
            LayerNorm (at 1: a 1x1 conv, one key per token).
        global_attn: one of ``GLOBAL_ATTN_CHOICES`` (see the module docstring).
        probsparse_factor: ``factor`` of the ProbSparse kernels.
        seed_compat: reproduce the seed's v layout before the depthwise conv (a reshape of v from
            (tokens, channels) to (channels, H, W) without transposing, which scrambles space).
        qkv_bias: bias of the kv projection.
        attn_drop: dropout on attention probabilities.

    ``forward(q, x, H, W)``: ``q`` (B, N, C_g) queries, ``x`` (B, N, C_g) the block input's global
    channels, ``N = H * W``; returns (B, N, C_g). ``self.generator`` (set by ``favit.set_generator``,
    default None) is the ``torch.Generator`` that ProbSparse sampling draws from; it must live on
    the input's device.
    """

    def __init__(
        self,
        width: int,
        sr_ratio: int,
        *,
        global_attn: str = DEFAULT_GLOBAL_ATTN,
        probsparse_factor: int = 5,
        seed_compat: bool = False,
        qkv_bias: bool = True,
        attn_drop: float = 0.0,
    ) -> None:
        super().__init__()
        if sr_ratio < 1:
            raise ValueError(f"sr_ratio must be >= 1, got {sr_ratio}")
        self.width = width
        self.sr_ratio = sr_ratio
        self.global_attn = check_global_attn(global_attn)
        self.probsparse_factor = probsparse_factor
        self.seed_compat = seed_compat
        self.scale = width**-0.5
        self.attn_drop_p = attn_drop
        self.generator: torch.Generator | None = None
        self.sr = nn.Conv2d(width, width, kernel_size=sr_ratio, stride=sr_ratio)
        self.norm = nn.LayerNorm(width)  # eps 1e-5, as in the official code
        self.kv = nn.Linear(width, 2 * width, bias=qkv_bias)
        self.v_conv = nn.Conv2d(width, width, kernel_size=3, padding=1, groups=width)
        self.attn_drop = nn.Dropout(attn_drop)

    def extra_repr(self) -> str:
        return (
            f"sr_ratio={self.sr_ratio}, global_attn={self.global_attn!r}, "
            f"probsparse_factor={self.probsparse_factor}, seed_compat={self.seed_compat}"
        )

    def keys_values(
        self, x: torch.Tensor, height: int, width: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values (B, 1, L_K, C_g) from the block input's global channels (B, N, C_g)."""
        batch, _, channels = x.shape
        grid = x.transpose(1, 2).reshape(batch, channels, height, width)
        reduced = self.sr(grid)  # (B, C_g, H // sr, W // sr)
        reduced_h, reduced_w = reduced.shape[-2:]
        tokens = self.norm(reduced.flatten(2).transpose(1, 2))  # (B, L_K, C_g)
        k, v = self.kv(tokens).unsqueeze(1).chunk(2, dim=-1)  # each (B, 1, L_K, C_g)
        if self.seed_compat:
            # the seed's layout: (L_K, C_g) memory read as (C_g, H', W'); the result goes back
            # transposed, so the conv mixes scrambled positions
            conv_in = v.reshape(batch, channels, reduced_h, reduced_w)
        else:
            conv_in = v.squeeze(1).transpose(1, 2).reshape(batch, channels, reduced_h, reduced_w)
        v = v + self.v_conv(conv_in).flatten(2).transpose(1, 2).unsqueeze(1)
        return k, v

    def forward(self, q: torch.Tensor, x: torch.Tensor, height: int, width: int) -> torch.Tensor:
        batch, n_queries, channels = q.shape
        k, v = self.keys_values(x, height, width)
        q = q.unsqueeze(1)  # (B, 1, N, C_g)
        sizes = probsparse_sizes(self.global_attn, n_queries, k.shape[2], self.probsparse_factor)
        if sizes is not None:
            out = self._probsparse(q, k, v, *sizes)
        elif self.global_attn == "sdpa":
            drop = self.attn_drop_p if self.training else 0.0
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=drop, scale=self.scale)
        else:  # dense, and probsparse_seed at N <= 25
            attn = (q @ k.transpose(-2, -1)) * self.scale  # (B, 1, N, L_K)
            out = self.attn_drop(attn.softmax(dim=-1)) @ v
        return out.reshape(batch, n_queries, channels)

    def _probsparse(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, n_sample: int, n_top: int
    ) -> torch.Tensor:
        """ProbSparse attention; q (B, h, N, D), k and v (B, h, L_K, D) -> (B, h, N, D)."""
        top_queries = self.probsparse_select_queries(q, k, n_sample, n_top)  # (B, h, u)
        gather_index = top_queries.unsqueeze(-1).expand(-1, -1, -1, q.shape[-1])
        q_top = q.gather(2, gather_index)  # (B, h, u, D)
        attn = (q_top @ k.transpose(-2, -1)) * self.scale  # (B, h, u, L_K)
        out_top = self.attn_drop(attn.softmax(dim=-1)) @ v  # (B, h, u, D)
        if self.global_attn == "probsparse_seed":
            fill = torch.zeros_like(q)
        else:
            fill = v.mean(dim=-2, keepdim=True).expand_as(q)
        return fill.scatter(2, gather_index, out_top)

    def probsparse_select_queries(
        self, q: torch.Tensor, k: torch.Tensor, n_sample: int, n_top: int
    ) -> torch.Tensor:
        """Indices (B, h, u) of the ``n_top`` queries with the largest sparsity measurement M.

        Each query scores ``n_sample`` keys drawn uniformly with replacement (one draw per query,
        shared over batch and heads), on unscaled scores. ``M = max - mean`` (seed) or
        ``M = max - sum / L_K`` (Informer).
        """
        n_keys = k.shape[2]
        sample_index = self.draw_sample_index(q, n_keys, n_sample)
        k_sample = k[:, :, sample_index, :]  # (B, h, N, n_sample, D)
        scores_sample = (q.unsqueeze(-2) @ k_sample.transpose(-2, -1)).squeeze(-2)
        sparsity = self.sparsity_measure(scores_sample, n_keys)
        return sparsity.topk(n_top, dim=-1, sorted=False).indices

    def draw_sample_index(self, q: torch.Tensor, n_keys: int, n_sample: int) -> torch.Tensor:
        """(N, n_sample) key indices, uniform with replacement, from ``self.generator`` or the global RNG."""
        generator = self.generator
        if generator is not None and generator.device != q.device:
            raise ValueError(
                f"the ProbSparse generator is on {generator.device} but the input is on "
                f"{q.device}; pass a torch.Generator(device={str(q.device)!r})"
            )
        return torch.randint(n_keys, (q.shape[2], n_sample), device=q.device, generator=generator)

    def sparsity_measure(self, scores_sample: torch.Tensor, n_keys: int) -> torch.Tensor:
        """M (..., N) from sampled unscaled scores (..., N, n_sample): seed or Informer form."""
        if self.global_attn == "probsparse_seed":
            return scores_sample.amax(dim=-1) - scores_sample.mean(dim=-1)
        return scores_sample.amax(dim=-1) - scores_sample.sum(dim=-1) / n_keys

    def forward_fast(
        self, q: torch.Tensor, x: torch.Tensor, height: int, width: int
    ) -> torch.Tensor:
        """``forward``'s math through SDPA; ProbSparse over few keys as dense-then-select.

        ``q`` (B, N, C_g) (any strides), ``x`` (B, N, C_g) -> (B, N, C_g). Same random draws as
        ``forward``. Dropout on the attention probabilities is not applied here (see the module
        docstring: the caller uses ``forward`` when it is active).
        """
        batch, n_queries, channels = q.shape
        k, v = self.keys_values(x, height, width)
        q = q.unsqueeze(1)  # (B, 1, N, C_g)
        n_keys = k.shape[2]
        sizes = probsparse_sizes(self.global_attn, n_queries, n_keys, self.probsparse_factor)
        if sizes is None and self.global_attn == "dense":
            # the variant that measures a materialized score matrix keeps it
            out = (q @ k.transpose(-2, -1) * self.scale).softmax(dim=-1) @ v
        elif sizes is None:
            out = F.scaled_dot_product_attention(q, k, v, scale=self.scale)
        elif scores_every_key(self.global_attn, n_queries, n_keys, self.probsparse_factor):
            out = self._probsparse_dense_select(q, k, v, *sizes)
        else:
            out = self._probsparse(q, k, v, *sizes)
        return out.reshape(batch, n_queries, channels)

    def _probsparse_dense_select(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, n_sample: int, n_top: int
    ) -> torch.Tensor:
        """ProbSparse as ``_probsparse`` computes it, for few keys; q (B, h, N, D) -> (B, h, N, D).

        The sampled scores are gathered from the full (B, h, N, L_K) score matrix (the selection
        carries no gradient, so it runs under ``no_grad``); every query attends, and
        ``torch.where`` keeps the top-u rows and the fill (0 or mean of V) elsewhere.
        """
        n_keys = k.shape[2]
        sample_index = self.draw_sample_index(q, n_keys, n_sample)
        with torch.no_grad():
            scores = q @ k.transpose(-2, -1)  # (B, h, N, L_K), unscaled
            scores_sample = scores.gather(-1, sample_index.expand(*scores.shape[:2], -1, -1))
            top = self.sparsity_measure(scores_sample, n_keys).topk(n_top, dim=-1, sorted=False)
            selected = torch.zeros(scores.shape[:-1], dtype=torch.bool, device=q.device)
            # a tensor source, not a Python bool: fvcore's JIT tracer has no schema for scatter(bool)
            ones = torch.ones_like(top.indices, dtype=torch.bool)
            selected = selected.scatter(-1, top.indices, ones).unsqueeze(-1)  # (B, h, N, 1)
        out = F.scaled_dot_product_attention(q, k, v, scale=self.scale)
        if self.global_attn == "probsparse_seed":
            return torch.where(selected, out, 0.0)
        return torch.where(selected, out, v.mean(dim=-2, keepdim=True))


class WindowAttention(nn.Module):
    """One window branch (local: dilation 1; dilated: dilation sr) over ``num_heads`` heads.

    ``forward(q, kv_map)``: ``q`` (B, heads, N, w) queries, ``kv_map`` (B, heads * w, H, W) this
    branch's channels of the conv-projected map; returns (B, N, heads * w). Every query attends to
    the same 49 tokens per head, pooled from the 7x7 windows as the official FaViT does.
    """

    def __init__(
        self, width: int, num_heads: int, dilation: int, *, qkv_bias: bool = True, attn_drop=0.0
    ) -> None:
        super().__init__()
        if width % num_heads != 0:
            raise ValueError(f"branch width {width} must be divisible by num_heads {num_heads}")
        self.width = width
        self.num_heads = num_heads
        self.head_width = width // num_heads
        self.dilation = dilation
        self.scale = self.head_width**-0.5
        self.fc = nn.Linear(self.head_width, self.head_width, bias=qkv_bias)
        self.kv = nn.Linear(self.head_width, 2 * self.head_width, bias=qkv_bias)
        self.v_conv = nn.Conv2d(width, width, kernel_size=3, padding=1, groups=width)
        self.attn_drop = nn.Dropout(attn_drop)

    def extra_repr(self) -> str:
        return f"dilation={self.dilation}"

    def pooled_window_tokens(self, kv_map: torch.Tensor) -> torch.Tensor:
        """The official pooling: (B, heads * w, H, W) -> (B, heads, 49, w).

        Unfold 7x7 windows (nW of them), lay them out as (B, heads, 49, nW * w) with the window
        index outer and the channel inner, and average-pool that axis to w: output channel j is
        the mean of entries j * nW .. (j + 1) * nW - 1, a run of neighbouring channels.
        """
        batch, _, height, width = kv_map.shape
        stride, pad_bottom, pad_right, windows = window_geometry(height, width, self.dilation)
        padded = reflect_pad_right_bottom(kv_map, pad_bottom, pad_right)
        patches = F.unfold(padded, WINDOW_SIZE, dilation=self.dilation, stride=stride)
        tokens = WINDOW_SIZE * WINDOW_SIZE
        patches = patches.reshape(batch, self.num_heads, self.head_width, tokens, windows)
        flat = patches.permute(0, 1, 3, 4, 2).reshape(batch, self.num_heads, tokens, -1)
        # AdaptiveAvgPool to w over nW * w entries == mean over consecutive runs of nW
        return flat.reshape(batch, self.num_heads, tokens, self.head_width, windows).mean(-1)

    def keys_values(self, pooled: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys and values (B, heads, 49, w) from the pooled window tokens (B, heads, 49, w)."""
        batch = pooled.shape[0]
        kv = self.kv(self.fc(pooled))  # (B, heads, 49, 2w)
        k, v = kv.chunk(2, dim=-1)
        v_grid = v.transpose(2, 3).reshape(batch, self.width, WINDOW_SIZE, WINDOW_SIZE)
        v_conv = self.v_conv(v_grid).reshape(batch, self.num_heads, self.head_width, -1)
        return k, v + v_conv.transpose(2, 3)

    def forward(self, q: torch.Tensor, kv_map: torch.Tensor) -> torch.Tensor:
        batch, _, n_queries, _ = q.shape
        k, v = self.keys_values(self.pooled_window_tokens(kv_map))
        attn = (q @ k.transpose(-2, -1)) * self.scale  # (B, heads, N, 49)
        out = self.attn_drop(attn.softmax(dim=-1)) @ v  # (B, heads, N, w)
        return out.transpose(1, 2).reshape(batch, n_queries, self.width)


class FactorizedAttention(nn.Module):
    """FaViT's factorized attention for one block: global + local window (+ dilated window).

    ``forward(x, H, W)``: x (B, N, C) with ``N = H * W`` -> (B, N, C). ``self.global_attn`` is the
    ``GlobalAttention``; ``self.windows`` holds the local (and, when ``sr_ratio > 1``, dilated)
    ``WindowAttention``. ``sr_ratio`` sets the channel split and the dilation; the global branch
    reduces its keys by ``global_sr_ratio`` (None: ``sr_ratio``). The global kernel options only
    change ``self.global_attn``.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        sr_ratio: int,
        *,
        global_sr_ratio: int | None = None,
        global_attn: str = DEFAULT_GLOBAL_ATTN,
        probsparse_factor: int = 5,
        seed_compat: bool = False,
        qkv_bias: bool = True,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        impl: str = "fast",
    ) -> None:
        super().__init__()
        self.dim = dim
        self.num_heads = num_heads
        self.sr_ratio = sr_ratio
        self.global_sr_ratio = sr_ratio if global_sr_ratio is None else global_sr_ratio
        self.impl = check_impl(impl)
        self.attn_drop_p = attn_drop
        self.groups = channel_groups(dim, sr_ratio)
        global_width, *window_widths = self.groups
        self.global_width = global_width
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.global_attn = GlobalAttention(
            global_width,
            self.global_sr_ratio,
            global_attn=global_attn,
            probsparse_factor=probsparse_factor,
            seed_compat=seed_compat,
            qkv_bias=qkv_bias,
            attn_drop=attn_drop,
        )
        window_channels = dim - global_width
        # one depthwise 3x3 + pointwise 1x1 map feeds both window branches
        self.kv_depthwise = nn.Conv2d(
            window_channels, window_channels, 3, padding=1, groups=window_channels
        )
        self.kv_pointwise = nn.Conv2d(window_channels, window_channels, 1)
        dilations = (1, sr_ratio)[: len(window_widths)]
        self.windows = nn.ModuleList(
            WindowAttention(w, num_heads, d, qkv_bias=qkv_bias, attn_drop=attn_drop)
            for w, d in zip(window_widths, dilations, strict=True)
        )
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        # the fast path's window output is head-major, (head, branch, w); proj input column k is
        # this reference channel (None: the orders agree, one head or one branch)
        head_width = window_widths[0] // num_heads
        head_major = [
            global_width + branch * num_heads * head_width + head * head_width + j
            for head in range(num_heads)
            for branch in range(len(window_widths))
            for j in range(head_width)
        ]
        order = None
        if head_major != list(range(global_width, dim)):
            order = torch.tensor([*range(global_width), *head_major])
        self.register_buffer("proj_input_order", order, persistent=False)
        # window_pool_index per (H, W, device): built once per input size, reused every step
        self._window_index_cache: dict[tuple[int, int, torch.device], torch.Tensor] = {}

    def extra_repr(self) -> str:
        return f"impl={self.impl!r}"

    def uses_fast_path(self) -> bool:
        """True when ``forward`` takes the fast path (``impl="fast"``, no active attention dropout)."""
        return self.impl == "fast" and not (self.training and self.attn_drop_p > 0)

    def branch_outputs(self, x: torch.Tensor, height: int, width: int) -> list[torch.Tensor]:
        """Each branch's output before the projection: [global, local(, dilated)], each (B, N, group).

        Computed by the path ``forward`` takes (``uses_fast_path``).
        """
        if self.uses_fast_path():
            global_out, window_out = self.fast_outputs(x, height, width)
            batch, n_tokens, _ = x.shape
            per_branch = window_out.reshape(batch, n_tokens, self.num_heads, len(self.windows), -1)
            return [global_out] + [
                per_branch[:, :, :, index].reshape(batch, n_tokens, branch.width)
                for index, branch in enumerate(self.windows)
            ]
        return self.reference_branch_outputs(x, height, width)

    def reference_branch_outputs(
        self, x: torch.Tensor, height: int, width: int
    ) -> list[torch.Tensor]:
        """``branch_outputs`` by the reference implementation."""
        batch, n_tokens, _ = x.shape
        q = self.q(x)
        g = self.global_width
        outputs = [self.global_attn(q[..., :g], x[..., :g], height, width)]
        # q: heads first, each head's channels [local w, dilated w]
        q_windows = q[..., g:].reshape(batch, n_tokens, self.num_heads, -1).transpose(1, 2)
        # kv map: groups first (local channels, then dilated), heads inside each group
        x_windows = x[..., g:].transpose(1, 2).reshape(batch, -1, height, width)
        kv_map = self.kv_pointwise(self.kv_depthwise(x_windows))
        q_start = map_start = 0
        for branch in self.windows:
            q_branch = q_windows[..., q_start : q_start + branch.head_width]
            map_branch = kv_map[:, map_start : map_start + branch.width]
            outputs.append(branch(q_branch, map_branch))
            q_start += branch.head_width
            map_start += branch.width
        return outputs

    def window_index(self, height: int, width: int, device: torch.device) -> torch.Tensor:
        """``window_pool_index`` of this block's window branches for an (H, W) map, cached.

        Built on ``device`` from shapes only (no host sync), once per (H, W, device); under
        ``torch.compile`` it is built in the graph (constant-folded) and not cached.
        """
        branches = [(branch.width, branch.dilation) for branch in self.windows]
        if torch.compiler.is_compiling():
            return window_pool_index(height, width, branches, self.num_heads, device)
        key = (height, width, device)
        if key not in self._window_index_cache:
            self._window_index_cache[key] = window_pool_index(
                height, width, branches, self.num_heads, device
            )
        return self._window_index_cache[key]

    def window_keys_values(self, pooled: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Every window branch's ``WindowAttention.keys_values`` at once, for the fast path.

        ``pooled`` (branches, B, heads, 49, w) -> k, v (B, heads * branches, 49, w), heads in
        (head, branch) order. The branches' fc and kv Linears run as batched matmuls over the
        branch axis and their depthwise v convs as one grouped conv: three kernels where the
        branches took three each.
        """
        n_branches, batch, heads, tokens, head_width = pooled.shape
        rows = pooled.reshape(n_branches, -1, head_width)  # (branches, B * heads * 49, w)
        hidden = _batched_linear(rows, [branch.fc for branch in self.windows])
        kv = _batched_linear(hidden, [branch.kv for branch in self.windows])
        k, v = kv.view(n_branches, batch, heads, tokens, 2 * head_width).chunk(2, dim=-1)
        # each branch's v as its (heads * w, 7, 7) grid, channel (head, j), branch after branch
        grid = v.permute(1, 0, 2, 4, 3).reshape(
            batch, n_branches * heads * head_width, WINDOW_SIZE, WINDOW_SIZE
        )
        convs = [branch.v_conv for branch in self.windows]
        conv = F.conv2d(
            grid,
            torch.cat([c.weight for c in convs]),
            torch.cat([c.bias for c in convs]),
            padding=1,
            groups=grid.shape[1],
        )
        v = v + conv.view(batch, n_branches, heads, head_width, tokens).permute(1, 0, 2, 4, 3)
        # (branches, B, heads, 49, w) -> (B, heads * branches, 49, w)
        k, v = (t.permute(1, 2, 0, 3, 4).flatten(1, 2) for t in (k, v))
        return k, v

    def fast_outputs(
        self, x: torch.Tensor, height: int, width: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The fast path before the projection: global (B, N, C_g) and window (B, N, C - C_g) outputs.

        The window output is head-major: channel ``(head, branch, j)``, branches local then dilated.
        """
        batch, n_tokens, dim = x.shape
        g = self.global_width
        # splits, not slices: their backward is one cat, a slice's a zero-filled copy each
        q_global, q_windows = self.q(x).split([g, dim - g], dim=-1)
        x_global, x_windows = x.split([g, dim - g], dim=-1)
        # a copy of the few global channels: SDPA saves its q for backward, and a view would keep
        # all of q (B, N, C) alive
        global_out = self.global_attn.forward_fast(q_global.contiguous(), x_global, height, width)

        # kv map: depthwise conv on the window channels' (B, C_w, H, W) view (channels-last
        # strides), then the pointwise conv as a Linear on the channels-last rows (B * H * W, C_w)
        hidden = self.kv_depthwise(x_windows.transpose(1, 2).unflatten(2, (height, width)))
        pointwise = self.kv_pointwise
        kv_map = F.linear(
            hidden.permute(0, 2, 3, 1).flatten(0, 2), pointwise.weight.flatten(1), pointwise.bias
        )  # (B * H * W, C_w): the map channels-last

        # every branch's pooling entries in one gather, then one mean per branch
        index = self.window_index(height, width, x.device)
        gathered = kv_map.view(batch, -1).index_select(1, index)
        windows = [window_geometry(height, width, b.dilation)[3] for b in self.windows]
        sizes = [
            b.width * WINDOW_SIZE * WINDOW_SIZE * n
            for b, n in zip(self.windows, windows, strict=True)
        ]
        pooled = torch.stack(
            [
                entries.view(
                    batch, self.num_heads, WINDOW_SIZE * WINDOW_SIZE, branch.head_width, n_windows
                ).mean(-1)
                for branch, n_windows, entries in zip(
                    self.windows, windows, gathered.split(sizes, dim=1), strict=True
                )
            ]
        )  # (branches, B, heads, 49, w)
        k, v = self.window_keys_values(pooled)
        n_branches = len(self.windows)
        head_width = self.windows[0].head_width
        q_windows = q_windows.unflatten(-1, (self.num_heads * n_branches, head_width))
        out = F.scaled_dot_product_attention(
            q_windows.transpose(1, 2), k, v, scale=self.windows[0].scale
        )  # (B, heads * branches, N, w)
        return global_out, out.transpose(1, 2).reshape(batch, n_tokens, dim - g)

    def forward(self, x: torch.Tensor, height: int, width: int) -> torch.Tensor:
        if not self.uses_fast_path():
            out = torch.cat(self.reference_branch_outputs(x, height, width), dim=-1)
            return self.proj_drop(self.proj(out))
        global_out, window_out = self.fast_outputs(x, height, width)
        weight = self.proj.weight
        if self.proj_input_order is not None:
            weight = weight.index_select(1, self.proj_input_order)
        out = F.linear(torch.cat([global_out, window_out], dim=-1), weight, self.proj.bias)
        return self.proj_drop(out)
