"""Per-stage geometry of FaViT's attention and analytic counts built on it.

``stage_geometry`` derives, from shapes alone, what each stage's factorized attention sees (token
counts, branch widths, window strides, padding, window counts); ``attention_score_elements`` and
``attention_macs`` turn one stage's geometry into the size of the attention score matrices one
image materializes and the multiply-accumulates of ``Q K^T`` and ``A V``, per branch. They use the
same helpers as the forward pass (``favit.attention``), so they cannot drift from it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from favit.attention import (
    WINDOW_SIZE,
    channel_groups,
    check_global_attn,
    check_impl,
    probsparse_sizes,
    scores_every_key,
    window_geometry,
)
from favit.model import FaViTConfig, model_config, per_stage_ratios


@dataclass(frozen=True)
class StageGeometry:
    """What one stage's attention sees for one input size (every block of a stage is alike).

    Window fields of the dilated branch are 0 when the stage has none (``sr_ratio == 1``).
    """

    stage: int  # 0-based
    H: int  # token grid of the stage
    W: int
    N: int  # queries, H * W
    dim: int
    num_heads: int
    depth: int  # blocks in the stage
    sr_ratio: int  # sets the channel split and the dilated branch's dilation
    global_sr_ratio: int  # the global branch's spatial reduction (sr_ratio unless set apart)
    global_width: int  # channels of the global branch (one head)
    global_H: int  # reduced grid, H // global_sr_ratio
    global_W: int
    global_keys: int  # keys of the global branch after spatial reduction
    local_width: int  # channels of the local window branch (all heads)
    dilated_width: int  # channels of the dilated window branch (all heads); 0 if none
    head_width: int  # per-head width of the window branches
    window_tokens: int  # tokens per head each window query attends to (49)
    local_stride: int
    local_pad_bottom: int
    local_pad_right: int
    local_windows: int
    dilated_dilation: int
    dilated_stride: int
    dilated_pad_bottom: int
    dilated_pad_right: int
    dilated_windows: int

    @property
    def has_dilated(self) -> bool:
        return self.dilated_width > 0


def _as_config(name_or_config: str | FaViTConfig) -> FaViTConfig:
    if isinstance(name_or_config, FaViTConfig):
        return name_or_config
    return model_config(name_or_config)


def _conv_out(size: int, kernel: int, stride: int) -> int:
    return (size + 2 * (kernel // 2) - kernel) // stride + 1


def stage_geometry(
    name_or_config: str | FaViTConfig,
    img_size: int | tuple[int, int],
    sr_ratios: tuple[int, ...] | None = None,
    global_sr_ratios: tuple[int, ...] | None = None,
) -> list[StageGeometry]:
    """Geometry of each stage for an input of ``img_size`` (int or (H, W)).

    ``sr_ratios`` and ``global_sr_ratios`` override the config's, as ``create_model``'s options of
    those names do: ``global_sr_ratios=(1, 1, 1, 1)`` gives global keys = N in every stage with
    the channel split (and dilated branches) of the config's ``sr_ratios``.
    """
    config = _as_config(name_or_config)
    height, width = (img_size, img_size) if isinstance(img_size, int) else img_size
    sr_ratios = per_stage_ratios("sr_ratios", sr_ratios, len(config.depths))
    global_sr_ratios = per_stage_ratios("global_sr_ratios", global_sr_ratios, len(config.depths))
    if sr_ratios is not None:
        config = replace(config, sr_ratios=sr_ratios)
    if global_sr_ratios is not None:
        config = replace(config, global_sr_ratios=global_sr_ratios)
    sr_ratios, global_sr_ratios = config.sr_ratios, config.effective_global_sr_ratios
    stages = []
    for index, dim in enumerate(config.embed_dims):
        kernel, stride = (7, 4) if index == 0 else (3, 2)
        height, width = _conv_out(height, kernel, stride), _conv_out(width, kernel, stride)
        sr, global_sr = sr_ratios[index], global_sr_ratios[index]
        heads = config.num_heads[index]
        if height < global_sr or width < global_sr:
            raise ValueError(
                f"stage {index + 1} map {height}x{width} is smaller than sr_ratio {global_sr} "
                "of the global branch's reduction conv; the input is too small"
            )
        global_width, local_width, *rest = channel_groups(dim, sr)
        dilated_width = rest[0] if rest else 0
        local_stride, local_pad_b, local_pad_r, local_windows = window_geometry(height, width, 1)
        if dilated_width:
            dil_stride, dil_pad_b, dil_pad_r, dil_windows = window_geometry(height, width, sr)
        else:
            dil_stride = dil_pad_b = dil_pad_r = dil_windows = 0
        stages.append(
            StageGeometry(
                stage=index,
                H=height,
                W=width,
                N=height * width,
                dim=dim,
                num_heads=heads,
                depth=config.depths[index],
                sr_ratio=sr,
                global_sr_ratio=global_sr,
                global_width=global_width,
                global_H=height // global_sr,
                global_W=width // global_sr,
                global_keys=(height // global_sr) * (width // global_sr),
                local_width=local_width,
                dilated_width=dilated_width,
                head_width=local_width // heads,
                window_tokens=WINDOW_SIZE * WINDOW_SIZE,
                local_stride=local_stride,
                local_pad_bottom=local_pad_b,
                local_pad_right=local_pad_r,
                local_windows=local_windows,
                dilated_dilation=sr if dilated_width else 0,
                dilated_stride=dil_stride,
                dilated_pad_bottom=dil_pad_b,
                dilated_pad_right=dil_pad_r,
                dilated_windows=dil_windows,
            )
        )
    return stages


def attention_score_elements(
    geometry: StageGeometry, global_attn: str, probsparse_factor: int = 5
) -> dict[str, int]:
    """Attention-score elements one image materializes in ONE block of this stage, per branch.

    Keys: ``global`` (the branch total), its parts ``global_sample`` (the ProbSparse sampled
    scores, N x n_sample) and ``global_topu`` (the u full rows, u x L_K) -- both 0 for dense/sdpa,
    whose ``global`` is N x L_K -- and ``local`` / ``dilated`` (heads x N x 49; 0 without a dilated
    branch). Do not add the parts to ``global``. ``sdpa`` is counted as dense: the math is the
    same, although a fused kernel may never materialize the matrix. Multiply by ``depth`` for the
    stage and by the batch size for a batch.
    """
    check_global_attn(global_attn)
    n, keys = geometry.N, geometry.global_keys
    sizes = probsparse_sizes(global_attn, n, keys, probsparse_factor)
    if sizes is None:
        sample, topu, total = 0, 0, n * keys
    else:
        n_sample, n_top = sizes
        sample, topu = n * n_sample, n_top * keys
        total = sample + topu
    window = geometry.num_heads * n * geometry.window_tokens
    return {
        "global": total,
        "global_sample": sample,
        "global_topu": topu,
        "local": window,
        "dilated": window if geometry.has_dilated else 0,
    }


def attention_macs(
    geometry: StageGeometry, global_attn: str, probsparse_factor: int = 5, impl: str = "reference"
) -> dict[str, int]:
    """Analytic MACs of ``Q K^T`` and ``A V`` in ONE block of this stage, for one image.

    Keys ``global_qk`` (for ProbSparse: sampled scores plus the u full rows; its sampled part also
    as ``global_sample_qk``), ``global_av``, ``local_qk``, ``local_av``, ``dilated_qk``,
    ``dilated_av``. Projections, convs and pooling are not included.

    ``impl`` is the implementation counted (``favit.attention``): the reference, or the fast path,
    which does other work only where its ProbSparse scores every key (``scores_every_key``): the
    full N x L_K score matrix for the selection, then SDPA over every query (``Q K^T`` and
    ``A V`` over every key), so ``global_qk`` is 2 x N x L_K x width (its sampled scores are a
    gather of that matrix, no MACs) and ``global_av`` N x L_K x width.
    """
    check_impl(impl)
    scores = attention_score_elements(geometry, global_attn, probsparse_factor)
    global_rows = scores["global_topu"] if scores["global_sample"] else scores["global"]
    macs = {
        "global_qk": scores["global"] * geometry.global_width,
        "global_sample_qk": scores["global_sample"] * geometry.global_width,
        "global_av": global_rows * geometry.global_width,
        "local_qk": scores["local"] * geometry.head_width,
        "local_av": scores["local"] * geometry.head_width,
        "dilated_qk": scores["dilated"] * geometry.head_width,
        "dilated_av": scores["dilated"] * geometry.head_width,
    }
    n, keys = geometry.N, geometry.global_keys
    if impl == "fast" and scores_every_key(global_attn, n, keys, probsparse_factor):
        full_scores = n * keys * geometry.global_width
        macs.update(global_qk=2 * full_scores, global_sample_qk=0, global_av=full_scores)
    return macs
