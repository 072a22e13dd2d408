"""FaViT B0-B3: a PVT v2 backbone whose blocks use factorized attention (``favit.attention``).

Layout after timm's ``pvt_v2``: a ``Stage`` owns its downsampling patch embedding, its blocks and
its final norm; ``FaViT.forward_features`` returns the pooled (B, C4) features and
``forward_head`` the logits; weights are initialised in one place (``FaViT._init_weights``);
variants are named configs in ``MODEL_CONFIGS`` built by ``create_model``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from timm.layers import DropPath, trunc_normal_
from torch import nn

from favit.attention import (
    DEFAULT_GLOBAL_ATTN,
    FactorizedAttention,
    GlobalAttention,
    check_global_attn,
    check_impl,
)

MODEL_NAMES: tuple[str, ...] = ("favit_b0", "favit_b1", "favit_b2", "favit_b3")


@dataclass(frozen=True)
class FaViTConfig:
    """Architecture and options of one FaViT (``docs/SUBJECT.md``, "Backbone")."""

    embed_dims: tuple[int, ...] = (64, 128, 256, 512)
    depths: tuple[int, ...] = (2, 2, 6, 2)
    num_heads: tuple[int, ...] = (1, 2, 4, 8)
    mlp_ratios: tuple[float, ...] = (8, 6, 4, 4)
    sr_ratios: tuple[int, ...] = (8, 4, 2, 1)  # channel split, dilation and global reduction
    # the global branch's reduction per stage, apart from the channel split; None: sr_ratios
    global_sr_ratios: tuple[int, ...] | None = None
    qkv_bias: bool = True
    norm_eps: float = 1e-6  # block and stage norms; patch-embed and global-branch norms use 1e-5
    in_chans: int = 3
    num_classes: int = 1000
    drop_rate: float = 0.0
    attn_drop_rate: float = 0.0
    drop_path_rate: float = 0.0
    global_attn: str = DEFAULT_GLOBAL_ATTN
    probsparse_factor: int = 5
    seed_compat: bool = False
    impl: str = "fast"  # "fast" or "reference" (favit.attention.IMPL_CHOICES): same math

    def __post_init__(self) -> None:
        check_global_attn(self.global_attn)
        check_impl(self.impl)
        lengths = {
            len(v)
            for v in (self.embed_dims, self.depths, self.num_heads, self.mlp_ratios, self.sr_ratios)
        }
        if len(lengths) != 1:
            raise ValueError(
                "embed_dims, depths, num_heads, mlp_ratios and sr_ratios need one entry per stage"
            )
        if any(s < 1 for s in self.sr_ratios):
            raise ValueError(f"sr_ratios must be >= 1, got {self.sr_ratios}")
        if self.global_sr_ratios is not None:
            if len(self.global_sr_ratios) != len(self.sr_ratios):
                raise ValueError(
                    f"global_sr_ratios {self.global_sr_ratios} must have {len(self.sr_ratios)} "
                    "entries, one per stage"
                )
            if any(s < 1 for s in self.global_sr_ratios):
                raise ValueError(f"global_sr_ratios must be >= 1, got {self.global_sr_ratios}")
        if self.probsparse_factor < 1:
            raise ValueError(f"probsparse_factor must be >= 1, got {self.probsparse_factor}")

    @property
    def effective_global_sr_ratios(self) -> tuple[int, ...]:
        """The global branch's spatial reduction per stage: ``global_sr_ratios``, else ``sr_ratios``."""
        return self.global_sr_ratios if self.global_sr_ratios is not None else self.sr_ratios


MODEL_CONFIGS: dict[str, FaViTConfig] = {
    "favit_b0": FaViTConfig(embed_dims=(32, 64, 128, 256), depths=(2, 2, 6, 2)),
    "favit_b1": FaViTConfig(embed_dims=(64, 128, 256, 512), depths=(2, 2, 6, 2)),
    "favit_b2": FaViTConfig(embed_dims=(64, 128, 256, 512), depths=(2, 3, 18, 3)),
    "favit_b3": FaViTConfig(embed_dims=(96, 192, 384, 768), depths=(2, 3, 14, 3)),
}


def model_config(name: str) -> FaViTConfig:
    """The named variant's config; ``ValueError`` listing ``MODEL_NAMES`` for an unknown name."""
    if name not in MODEL_CONFIGS:
        raise ValueError(f"unknown model {name!r}; valid choices: {', '.join(MODEL_NAMES)}")
    return MODEL_CONFIGS[name]


class Mlp(nn.Module):
    """Linear -> depthwise 3x3 conv on the token grid -> GELU -> Linear; (B, N, C) -> (B, N, C).

    ``impl="reference"`` computes it as written. ``impl="fast"`` (same math, equal in fp32) runs the
    conv on the channels-last view of the first Linear's output (no transposing copy in or out)
    and fuses GELU into the second Linear (``gelu_linear``), which keeps GELU's input for backward
    instead of its output: one activation of the widest layer fewer. With dropout active in
    training it defers to the reference.
    """

    def __init__(self, dim: int, hidden_dim: int, drop: float = 0.0, impl: str = "fast") -> None:
        super().__init__()
        self.impl = check_impl(impl)
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.dwconv = nn.Conv2d(hidden_dim, hidden_dim, 3, padding=1, groups=hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor, height: int, width: int) -> torch.Tensor:
        if self.impl == "fast" and not (self.training and self.drop.p > 0):
            hidden = self.fc1(x).unflatten(1, (height, width)).permute(0, 3, 1, 2)
            conv = self.dwconv(hidden)  # (B, hidden, H, W) with channels-last strides
            return gelu_linear(
                conv.permute(0, 2, 3, 1).flatten(1, 2), self.fc2.weight, self.fc2.bias
            )
        batch = x.shape[0]
        x = self.fc1(x)
        grid = x.transpose(1, 2).reshape(batch, -1, height, width)
        x = self.act(self.dwconv(grid).flatten(2).transpose(1, 2))
        return self.drop(self.fc2(self.drop(x)))


class _GeluLinear(torch.autograd.Function):
    """``linear(gelu(h), weight, bias)`` saving ``h``: backward recomputes ``gelu(h)`` (one
    elementwise pass) rather than keeping it, so the two share one saved activation."""

    @staticmethod
    def forward(ctx, h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None):
        ctx.save_for_backward(h, weight)
        return F.linear(F.gelu(h), weight, bias)  # under autocast: its casts, as nn.Linear's

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        h, weight = ctx.saved_tensors
        needs_h, needs_weight, needs_bias = ctx.needs_input_grad
        grad_rows = grad_out.reshape(-1, grad_out.shape[-1])
        # in the forward's compute dtype (bf16 under autocast); autograd casts each gradient to
        # its input's dtype, as autocast's own cast nodes would
        grad_h = grad_weight = grad_bias = None
        if needs_h:
            grad_h = torch.ops.aten.gelu_backward(grad_out @ weight.to(grad_out.dtype), h)
        if needs_weight:
            activation = F.gelu(h)  # recomputed, not saved
            grad_weight = grad_rows.t() @ activation.reshape(-1, activation.shape[-1])
        if needs_bias:  # False without a bias
            grad_bias = grad_rows.sum(0)
        return grad_h, grad_weight, grad_bias


def gelu_linear(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``F.linear(F.gelu(h), weight, bias)`` that saves only ``h`` for backward (``_GeluLinear``)."""
    return _GeluLinear.apply(h, weight, bias)


class Block(nn.Module):
    """``x + DropPath(Attn(LN(x)))``, then ``x + DropPath(MLP(LN(x)))``; (B, N, C) -> (B, N, C)."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float,
        sr_ratio: int,
        global_sr_ratio: int,
        config: FaViTConfig,
        drop_path: float,
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=config.norm_eps)
        self.attn = FactorizedAttention(
            dim,
            num_heads,
            sr_ratio,
            global_sr_ratio=global_sr_ratio,
            global_attn=config.global_attn,
            probsparse_factor=config.probsparse_factor,
            seed_compat=config.seed_compat,
            qkv_bias=config.qkv_bias,
            attn_drop=config.attn_drop_rate,
            proj_drop=config.drop_rate,
            impl=config.impl,
        )
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=config.norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=config.drop_rate, impl=config.impl)

    def forward(self, x: torch.Tensor, height: int, width: int) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x), height, width))
        return x + self.drop_path(self.mlp(self.norm2(x), height, width))


class OverlapPatchEmbed(nn.Module):
    """Overlapping patch embedding: Conv2d then LayerNorm; (B, C_in, H, W) -> (B, N, C), H', W'."""

    def __init__(self, in_chans: int, dim: int, kernel_size: int, stride: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, dim, kernel_size, stride=stride, padding=kernel_size // 2)
        self.norm = nn.LayerNorm(dim)  # eps 1e-5, as in the official code

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        x = self.proj(x)
        height, width = x.shape[-2:]
        return self.norm(x.flatten(2).transpose(1, 2)), height, width


class Stage(nn.Module):
    """Downsample (patch embedding), ``depth`` blocks, LayerNorm; (B, C_in, H, W) -> (B, C, H', W')."""

    def __init__(
        self,
        index: int,
        in_chans: int,
        config: FaViTConfig,
        drop_paths: list[float],
    ) -> None:
        super().__init__()
        dim = config.embed_dims[index]
        self.sr_ratio = config.sr_ratios[index]
        self.global_sr_ratio = config.effective_global_sr_ratios[index]
        first = index == 0
        self.downsample = OverlapPatchEmbed(
            in_chans, dim, kernel_size=7 if first else 3, stride=4 if first else 2
        )
        self.blocks = nn.ModuleList(
            Block(
                dim,
                config.num_heads[index],
                config.mlp_ratios[index],
                self.sr_ratio,
                self.global_sr_ratio,
                config,
                drop_path,
            )
            for drop_path in drop_paths
        )
        self.norm = nn.LayerNorm(dim, eps=config.norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, height, width = self.downsample(x)
        if height < self.global_sr_ratio or width < self.global_sr_ratio:
            raise ValueError(
                f"feature map {height}x{width} is smaller than sr_ratio {self.global_sr_ratio} "
                "of the global branch's reduction conv; the input is too small (the published "
                "FaViT needs at least 32x32)"
            )
        for block in self.blocks:
            x = block(x, height, width)
        x = self.norm(x)
        return x.transpose(1, 2).reshape(x.shape[0], -1, height, width)


class FaViT(nn.Module):
    """FaViT classifier. ``forward(x)``: (B, in_chans, H, W) -> (B, num_classes) logits.

    ``forward_features(x)`` -> (B, C4), the mean over stage-4 tokens after its norm;
    ``forward_head(features)`` -> logits. ``stages`` is an ``nn.ModuleList`` of ``Stage``.
    """

    def __init__(self, config: FaViTConfig) -> None:
        super().__init__()
        self.config = config
        self.num_classes = config.num_classes
        self.num_features = config.embed_dims[-1]
        total = sum(config.depths)
        # stochastic depth grows linearly from 0 to drop_path_rate over all blocks
        rates = [config.drop_path_rate * i / max(total - 1, 1) for i in range(total)]
        stages = []
        in_chans = config.in_chans
        for index, depth in enumerate(config.depths):
            start = sum(config.depths[:index])
            stages.append(Stage(index, in_chans, config, rates[start : start + depth]))
            in_chans = config.embed_dims[index]
        self.stages = nn.ModuleList(stages)
        self.head = (
            nn.Linear(self.num_features, config.num_classes)
            if config.num_classes > 0
            else nn.Identity()
        )
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        """PVT v2's init: trunc-normal(.02) Linear, fan-out normal Conv2d, unit LayerNorm."""
        if isinstance(module, nn.Linear):
            trunc_normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Conv2d):
            fan_out = module.kernel_size[0] * module.kernel_size[1] * module.out_channels
            fan_out //= module.groups
            nn.init.normal_(module.weight, 0.0, math.sqrt(2.0 / fan_out))
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self.stages:
            x = stage(x)
        return x.flatten(2).mean(dim=-1)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def set_generator(model: nn.Module, generator: torch.Generator | None) -> None:
    """Make every ProbSparse sampler in ``model`` draw from ``generator`` (None: the global RNG).

    The generator must live on the device of the model's inputs.
    """
    for module in model.modules():
        if isinstance(module, GlobalAttention):
            module.generator = generator


def create_model(
    name: str,
    num_classes: int = 1000,
    *,
    in_chans: int = 3,
    drop_rate: float = 0.0,
    attn_drop_rate: float = 0.0,
    drop_path_rate: float = 0.0,
    global_attn: str = DEFAULT_GLOBAL_ATTN,
    probsparse_factor: int = 5,
    sr_ratios: tuple[int, ...] | None = None,
    global_sr_ratios: tuple[int, ...] | None = None,
    seed_compat: bool = False,
    generator: torch.Generator | None = None,
    impl: str = "fast",
) -> FaViT:
    """Build a FaViT variant (``MODEL_NAMES``) with the given options.

    ``global_attn`` picks the global-branch kernel (``GLOBAL_ATTN_CHOICES``); ``sr_ratios``
    overrides the per-stage spatial reduction, which also sets the channel split (no dilated
    branch where it is 1), e.g. ``(1, 1, 1, 1)`` for global attention over all tokens;
    ``global_sr_ratios`` sets the global branch's reduction alone (None: ``sr_ratios``), e.g.
    ``(1, 1, 1, 1)`` for global attention over all tokens with the published channel split and
    dilated branches; ``seed_compat`` reproduces the seed's v layout in the global branch;
    ``generator`` is handed to ``set_generator``; ``impl`` picks the implementation (``"fast"``,
    the default, or ``"reference"``, the readable definition it equals; ``favit.attention``). Bad
    names and options raise ``ValueError`` listing the choices.
    """
    config = model_config(name)
    sr_ratios = per_stage_ratios("sr_ratios", sr_ratios, len(config.depths))
    global_sr_ratios = per_stage_ratios("global_sr_ratios", global_sr_ratios, len(config.depths))
    config = replace(
        config,
        num_classes=num_classes,
        in_chans=in_chans,
        drop_rate=drop_rate,
        attn_drop_rate=attn_drop_rate,
        drop_path_rate=drop_path_rate,
        global_attn=global_attn,
        probsparse_factor=probsparse_factor,
        sr_ratios=sr_ratios if sr_ratios is not None else config.sr_ratios,
        global_sr_ratios=global_sr_ratios,
        seed_compat=seed_compat,
        impl=impl,
    )
    model = FaViT(config)
    if generator is not None:
        set_generator(model, generator)
    return model


def per_stage_ratios(
    option: str, ratios: tuple[int, ...] | None, num_stages: int
) -> tuple[int, ...] | None:
    """``ratios`` as a tuple of ints (None stays None); ``ValueError`` unless one per stage."""
    if ratios is None:
        return None
    ratios = tuple(int(r) for r in ratios)
    if len(ratios) != num_stages:
        raise ValueError(f"{option} {ratios} must have {num_stages} entries, one per stage")
    return ratios
