"""FaViT (Factorized Vision Transformer) B0-B3 with every global-attention variant.

Quick use::

    import favit
    model = favit.create_model("favit_b1", num_classes=10, global_attn="probsparse_seed")
    logits = model(images)  # (B, 3, H, W) -> (B, 10), any H, W >= 32

See ``favit.attention`` for the four global-attention kernels and the small-map padding rule,
``favit.geometry`` for analytic per-stage counts, ``favit.checkpoint`` for loading original files.
"""

from favit.attention import (
    DEFAULT_GLOBAL_ATTN,
    GLOBAL_ATTN_CHOICES,
    IMPL_CHOICES,
    FactorizedAttention,
    GlobalAttention,
    WindowAttention,
    probsparse_sizes,
    scores_every_key,
)
from favit.checkpoint import load_checkpoint, original_state_dict
from favit.geometry import StageGeometry, attention_macs, attention_score_elements, stage_geometry
from favit.model import (
    MODEL_CONFIGS,
    MODEL_NAMES,
    FaViT,
    FaViTConfig,
    Stage,
    create_model,
    model_config,
    set_generator,
)

__all__ = [
    "DEFAULT_GLOBAL_ATTN",
    "GLOBAL_ATTN_CHOICES",
    "IMPL_CHOICES",
    "MODEL_CONFIGS",
    "MODEL_NAMES",
    "FaViT",
    "FaViTConfig",
    "FactorizedAttention",
    "GlobalAttention",
    "Stage",
    "StageGeometry",
    "WindowAttention",
    "attention_macs",
    "attention_score_elements",
    "create_model",
    "load_checkpoint",
    "model_config",
    "original_state_dict",
    "probsparse_sizes",
    "scores_every_key",
    "set_generator",
    "stage_geometry",
]
