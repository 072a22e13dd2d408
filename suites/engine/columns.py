"""Every column of every suite's ``rows.csv``: its unit, its meaning, the suites that write it.

``COLUMNS`` is the schema; ``docs/COLUMNS.md`` is generated from it (``markdown()``; write it with
``python -m suites.engine.columns``) and a test keeps the two, and the suites, in step. One name
per quantity: where two suites measure the same thing they use one column name, and where a
column means what a column of timm's ``benchmark.py`` CSV means it takes timm's name (``timm``).
A name with ``{i}`` stands for one column per stage (``stage1_gmacs`` .. ``stage4_gmacs``).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

STEP_SUITES = ("latency", "scaling", "crosscheck")
MODEL_SUITES = ("memory", "flops", "latency", "scaling", "profile", "accuracy", "crosscheck")
ALL_SUITES = (*MODEL_SUITES, "claims", "paper")
DOC_PATH = Path("docs") / "COLUMNS.md"


@dataclass(frozen=True)
class Column:
    """One column: ``name`` (``{i}``: a stage number), ``unit`` (``-`` for text and flags),
    ``suites`` that write it, ``meaning``, and whether timm's ``benchmark.py`` CSV has it."""

    name: str
    unit: str
    suites: tuple[str, ...]
    meaning: str
    timm: bool = False

    def matches(self, column: str) -> bool:
        return re.fullmatch(re.escape(self.name).replace(r"\{i\}", "[0-9]+"), column) is not None


@dataclass(frozen=True)
class Section:
    title: str
    intro: str
    columns: tuple[Column, ...]


def _c(name: str, unit: str, suites: tuple[str, ...] | str, meaning: str, timm: bool = False):
    return Column(name, unit, (suites,) if isinstance(suites, str) else suites, meaning, timm)


RUNNER = Section(
    "Every row",
    "The runner writes these around what a cell measured.",
    (
        _c(
            "cell_id",
            "-",
            ALL_SUITES,
            "the cell: its axis values as `axis=value,...`; the rows of one cell share it",
        ),
        _c(
            "status",
            "-",
            ALL_SUITES,
            "`ok`, `oom` (out of memory), `error` or `skipped` (the cell does not apply, e.g. a size the model cannot take)",
        ),
        _c(
            "reason",
            "-",
            ALL_SUITES,
            "why a cell is not `ok`: the exception, or why it was skipped; empty when ok",
        ),
        _c(
            "model_id",
            "-",
            MODEL_SUITES,
            "the library-qualified name the model is built from: `timm:<timm name>`, `tv:<torchvision name>`, `favit:<FaViT size>` (the variant is in `model`), `package.module:factory`; a registry entry's options in parentheses, e.g. `timm:swin_tiny_patch4_window7_224(window_size=4)`. Less its `timm:` prefix, the `model` of timm's benchmark CSVs",
        ),
        _c("device_name", "-", ALL_SUITES, "the GPU the cell ran on, or the CPU's model"),
        _c(
            "gpu_index",
            "-",
            ALL_SUITES,
            "index of that GPU among the run's visible GPUs; empty on the CPU",
        ),
        _c(
            "wall_s",
            "s",
            ALL_SUITES,
            "the cell's time in its worker: building, warm-up, every measurement",
        ),
        _c("finished_utc", "-", ALL_SUITES, "when the row was written (UTC, ISO 8601)"),
    ),
)

AXES = Section(
    "Axes",
    "One column per axis of the suite's matrix, holding the cell's value (`bench.py --list` shows each suite's axes and defaults).",
    (
        _c(
            "model",
            "-",
            MODEL_SUITES,
            "the model as named on the command line: `favit_b1:sdpa`, `pvt_v2_b1`, `timm:convnext_atto`, `tv:resnet18`, `mypkg.nets:MyNet` (memory: a FaViT size)",
        ),
        _c(
            "img_size",
            "px",
            (*MODEL_SUITES,),
            "input pixels per side (flops: also `WxH`, e.g. `320x224`; accuracy: `-` keeps the recipe's)",
        ),
        _c(
            "batch_size",
            "images",
            ("memory", "latency", "scaling", "profile", "accuracy"),
            "images per step; latency: or `max`, the largest batch that fits (`batch_found`); accuracy: `-` keeps the recipe's",
        ),
        _c(
            "dtype",
            "-",
            ("memory", "latency", "scaling", "profile", "crosscheck"),
            "`fp32`; `bf16`/`fp16` under autocast with fp32 weights; `bf16_pure`, bf16 weights and inputs (inference); memory: weights and activations in that dtype",
        ),
        _c(
            "mode",
            "-",
            ("memory", "latency", "scaling", "profile", "crosscheck"),
            "`infer` (eval, no gradients) or `train` (forward, backward, AdamW step)",
        ),
        _c("channels_last", "-", "latency", "`on`: model and input in channels-last memory format"),
        _c(
            "compile",
            "-",
            ("latency", "profile", "accuracy"),
            "`eager`, `compile` (torch.compile, inductor), `cudagraph` (inductor with CUDA graphs), `cudagraph_eager` (CUDA graphs of the eager kernels)",
        ),
        _c(
            "level",
            "-",
            "memory",
            "`analytic` (score elements by formula), `global` (the global branch), `attention` (one block's attention), `model` (the whole model)",
        ),
        _c(
            "variant",
            "-",
            "memory",
            "FaViT's global attention: `probsparse_seed`, `probsparse`, `dense`, `sdpa`, each also with `+gsr1` (the global branch over every patch); `dense+sr1`, `sdpa+sr1` (reduction 1 in every stage); `as_named` (a model measured as named)",
        ),
        _c(
            "impl",
            "-",
            "memory",
            "FaViT's implementation at the model level: `reference` (the readable one, what the stage levels measure) or `fast`",
        ),
        _c(
            "seed",
            "-",
            "accuracy",
            "the training's seed (`-`: the run's `--seed`); one cell per seed",
        ),
        _c(
            "recipe",
            "-",
            "accuracy",
            "training recipe: `seed` (the seed's, at 224 px) or `native32` (32 px)",
        ),
        _c(
            "data",
            "-",
            "accuracy",
            "the data: a .npz JPEG pack, a torchvision CIFAR-10 folder, or `synthetic`",
        ),
        _c("epochs", "epochs", "accuracy", "epochs to train (`-`: the recipe's)"),
        _c("lr", "-", "accuracy", "peak learning rate (`-`: the recipe's)"),
        _c("weight_decay", "-", "accuracy", "AdamW weight decay (`-`: the recipe's)"),
        _c("warmup_epochs", "epochs", "accuracy", "linear warm-up epochs (`-`: the recipe's)"),
        _c("ema_decay", "-", "accuracy", "EMA decay of the weights (`-`: the recipe's)"),
        _c(
            "extra",
            "-",
            "accuracy",
            "further recipe overrides as `name:value+name:value` (`-`: none)",
        ),
        _c("train_images", "images", "accuracy", "random training subset (0: all)"),
        _c("test_images", "images", "accuracy", "random test subset (0: all)"),
        _c("results", "-", ("claims", "paper"), "the results root read"),
    ),
)

MODEL = Section(
    "The model",
    "",
    (
        _c(
            "param_count",
            "M",
            ("memory", "flops", "latency", "scaling", "accuracy", "crosscheck"),
            "parameters, in millions (flops: exact to the parameter)",
            timm=True,
        ),
        _c(
            "family",
            "-",
            "flops",
            "`favit`, `vit`, `swin`, `pvt_v2`, `resnet` for the registry's models; the defining module otherwise (timm's `convnext`, torchvision's `mobilenetv3`, ...); `user` for a factory",
        ),
        _c(
            "published_params_m",
            "M",
            "flops",
            "parameters as published (empty for a model without published figures)",
        ),
        _c(
            "published_gmacs",
            "GMACs",
            "flops",
            "compute per image at 224x224 as published, in multiply-accumulates (papers print it as FLOPs)",
        ),
        _c("params_vs_published", "ratio", "flops", "`param_count` / `published_params_m`"),
        _c(
            "gmacs_vs_published",
            "ratio",
            "flops",
            "`fvcore_gmacs` / `published_gmacs`, at 224x224 only",
        ),
    ),
)

FLOPS = Section(
    "Compute (flops suite)",
    "One forward pass at batch 1, fp32, eval mode, counted twice. MACs are multiply-accumulates; FLOPs = 2 x MACs. FaViT rows count its reference implementation.",
    (
        _c("img_h", "px", "flops", "input height"),
        _c("img_w", "px", "flops", "input width"),
        _c(
            "fvcore_gmacs",
            "GMACs",
            "flops",
            "fvcore's count, scaled_dot_product_attention included",
        ),
        _c(
            "fvcore_skipped_ops",
            "-",
            "flops",
            "operators fvcore skipped, with their counts (`aten::add x102; ...`)",
        ),
        _c(
            "fvcore_macs_by_op",
            "-",
            "flops",
            "fvcore's MACs per operator (`linear=466617616; conv=...`)",
        ),
        _c("flop_counter_gflops", "GFLOPs", "flops", "torch.utils.flop_counter's count"),
        _c("flop_counter_gmacs", "GMACs", "flops", "`flop_counter_gflops` / 2"),
        _c(
            "flop_counter_attn_gmacs",
            "GMACs",
            "flops",
            "flop_counter's attention matmuls (bmm and SDPA kernels)",
        ),
        _c(
            "flop_counter_uncounted_ops",
            "-",
            "flops",
            "executed operators flop_counter has no formula for, with their counts",
        ),
        _c("flop_counter_flops_by_op", "-", "flops", "flop_counter's FLOPs per aten operator"),
        _c(
            "flop_counter_fast_gmacs",
            "GMACs",
            "flops",
            "FaViT: flop_counter's count of the fast path (`impl=fast`, the default, what latency runs)",
        ),
        _c(
            "depthwise_conv_gmacs",
            "GMACs",
            "flops",
            "fvcore MACs of grouped (depthwise) convolutions",
        ),
        _c(
            "attn_analytic_gmacs",
            "GMACs",
            "flops",
            "FaViT: analytic Q K^T and A V MACs of every branch and block (`favit.attention_macs`)",
        ),
        _c(
            "official_attn_formula_gmacs",
            "GMACs",
            "flops",
            "FaViT: the attention term of the official get_flops.py",
        ),
        _c("stage{i}_gmacs", "GMACs", "flops", "FaViT: fvcore MACs of stage i"),
        _c(
            "stage{i}_attn_analytic_gmacs",
            "GMACs",
            "flops",
            "FaViT: analytic attention MACs of stage i",
        ),
    ),
)

STEP = Section(
    "The measured step (latency, scaling)",
    "One training or inference step (`suites.engine.step`), timed in rounds until two rounds' medians agree. `infer_*` columns are filled in `infer` rows, `train_*` in `train` rows.",
    (
        _c(
            "infer_samples_per_sec",
            "img/s",
            STEP_SUITES,
            "inference throughput: batch / median step time",
            timm=True,
        ),
        _c("infer_step_time", "ms", STEP_SUITES, "median inference step time", timm=True),
        _c(
            "infer_batch_size",
            "images",
            STEP_SUITES,
            "batch of the timed inference step",
            timm=True,
        ),
        _c("infer_img_size", "px", STEP_SUITES, "input size of the inference step", timm=True),
        _c(
            "infer_gmacs",
            "GMACs",
            (*STEP_SUITES, "accuracy"),
            "forward MACs per image (flop_counter, fp32, the model's default implementation)",
            timm=True,
        ),
        _c(
            "train_samples_per_sec",
            "img/s",
            (*STEP_SUITES, "accuracy"),
            "training throughput: batch / median step time (accuracy: images per second of training over the run)",
            timm=True,
        ),
        _c(
            "train_step_time",
            "ms",
            STEP_SUITES,
            "median training step time (forward, backward, optimizer)",
            timm=True,
        ),
        _c(
            "train_batch_size",
            "images",
            (*STEP_SUITES, "accuracy"),
            "batch of the training step",
            timm=True,
        ),
        _c(
            "train_img_size",
            "px",
            (*STEP_SUITES, "accuracy"),
            "input size of the training step",
            timm=True,
        ),
        _c("step_p10_ms", "ms", STEP_SUITES, "10th percentile of the timed steps"),
        _c("step_p90_ms", "ms", STEP_SUITES, "90th percentile of the timed steps"),
        _c("step_mean_ms", "ms", STEP_SUITES, "mean of the timed steps"),
        _c(
            "step_cv",
            "ratio",
            STEP_SUITES,
            "coefficient of variation of the timed steps (std / mean)",
        ),
        _c(
            "timed_steps_n", "steps", STEP_SUITES, "steps the statistics pool (the last two rounds)"
        ),
        _c("timing_rounds", "rounds", STEP_SUITES, "rounds of warm-up + timed steps run"),
        _c("round1_median_ms", "ms", STEP_SUITES, "median of the first compared round"),
        _c("round2_median_ms", "ms", STEP_SUITES, "median of the second compared round"),
        _c("repeat_spread_pct", "%", STEP_SUITES, "difference of the two rounds' medians"),
        _c(
            "spread_target_pct",
            "%",
            STEP_SUITES,
            "the agreement the rounds ran for: rounds repeat until two medians are this close",
        ),
        _c(
            "unstable",
            "-",
            STEP_SUITES,
            "the compared rounds never agreed within `spread_target_pct` (a host-bound step stops at two)",
        ),
        _c(
            "profiled_steps",
            "steps",
            (*STEP_SUITES, "profile"),
            "steps in the profiled window (latency, scaling: the memory and busy-share profile, one for a step of 50 ms or more)",
        ),
        _c(
            "model_reused",
            "-",
            STEP_SUITES,
            "the worker's model of an earlier cell (same name and size), restored to as built",
        ),
        _c(
            "flops_cached",
            "-",
            STEP_SUITES,
            "the FLOP count came from the run's flops.json (counted once per model, size and mode)",
        ),
        _c(
            "first_step_s",
            "s",
            STEP_SUITES,
            "the first step: lazy initialization and compilation (for `max`, the first step at the batch found)",
        ),
        _c("setup_s", "s", STEP_SUITES, "building, moving and FLOP-counting the model"),
        _c("rounds_s", "s", STEP_SUITES, "the timing rounds"),
        _c("meters_s", "s", STEP_SUITES, "the memory step and the busy-share profile"),
        _c(
            "host_op_us",
            "us",
            STEP_SUITES,
            "host time to dispatch one tiny op: rows of one run should agree; a slower host slows every launch-bound step",
        ),
        _c(
            "gflops_per_step",
            "GFLOPs",
            STEP_SUITES,
            "FLOPs of one step at the cell's batch (forward, plus backward in train)",
        ),
        _c("achieved_tflops", "TFLOP/s", STEP_SUITES, "`gflops_per_step` / median step time"),
        _c(
            "device_peak_bf16_tflops",
            "TFLOP/s",
            STEP_SUITES,
            "the device's measured bf16 matmul rate",
        ),
        _c(
            "mfu",
            "ratio",
            STEP_SUITES,
            "`achieved_tflops` / `device_peak_bf16_tflops`, whatever the dtype",
        ),
        _c(
            "fp32_matmul_precision",
            "-",
            STEP_SUITES,
            "torch's float32 matmul precision (`highest`, `high`)",
        ),
        _c("batch_found", "images", "latency", "batch `max`: the largest batch that ran two steps"),
        _c(
            "batch_failed",
            "images",
            "latency",
            "batch `max`: the smallest batch that ran out of memory (empty when the start fitted)",
        ),
        _c(
            "tokens",
            "tokens",
            "scaling",
            "stage-1 tokens of the PVT layout, (H / 4) x (W / 4): the x axis of the exponents",
        ),
        _c(
            "gpu_busy_share",
            "ratio",
            (*STEP_SUITES, "profile"),
            "device busy time per step / median step time; empty on the CPU",
        ),
        _c(
            "launch_bound",
            "-",
            (*STEP_SUITES, "profile"),
            "`gpu_busy_share` below 0.7: the host, not the GPU, sets the pace",
        ),
    ),
)

MEMORY = Section(
    "Memory",
    "On a GPU the CUDA caching allocator's readings around one step; on the CPU exact tensor accounting (`mem_source` says which). 1 MiB = 2^20 bytes.",
    (
        _c(
            "peak_mem_mib",
            "MiB",
            (*STEP_SUITES, "memory", "accuracy"),
            "allocator peak of a steady-state step, weights, gradients and optimizer state included (accuracy: over the run; under CUDA graphs the reserved peak); empty on the CPU",
        ),
        _c(
            "step_mem_mib",
            "MiB",
            (*STEP_SUITES, "memory"),
            "the step's peak above the memory held before it (weights, optimizer state, the last step's gradients): activations and temporaries",
        ),
        _c(
            "steady_mem_mib",
            "MiB",
            (*STEP_SUITES, "memory"),
            "allocated before the step: what lives between steps",
        ),
        _c(
            "reserved_mem_mib",
            "MiB",
            (*STEP_SUITES, "memory"),
            "the caching allocator's peak reservation",
        ),
        _c(
            "mem_source",
            "-",
            (*STEP_SUITES, "memory"),
            "where the memory columns come from: `cuda_allocator`, `cuda_reserved` (CUDA graphs), `tensor_accounting` (CPU), `none`",
        ),
        _c(
            "nvml_used_mib",
            "MiB",
            (*STEP_SUITES, "memory"),
            "NVML: this process's GPU memory (CUDA context included), else the device's",
        ),
        _c("nvml_source", "-", (*STEP_SUITES, "memory"), "`process`, `device` or `unavailable`"),
        _c(
            "acct_peak_live_mib",
            "MiB",
            "memory",
            "exact accounting: the most step-created tensor storage alive at once",
        ),
        _c(
            "acct_end_live_mib",
            "MiB",
            "memory",
            "exact accounting: step-created storage alive when the step ended (gradients, outputs)",
        ),
        _c(
            "acct_allocated_mib",
            "MiB",
            "memory",
            "exact accounting: every step-created storage summed (allocation traffic)",
        ),
        _c(
            "acct_saved_mib",
            "MiB",
            "memory",
            "exact accounting: storages autograd saved for backward, weights and inputs included",
        ),
        _c(
            "acct_saved_activation_mib",
            "MiB",
            "memory",
            "exact accounting: the part of `acct_saved_mib` created during the step",
        ),
        _c(
            "acct_num_storages",
            "storages",
            "memory",
            "exact accounting: storages created during the step",
        ),
        _c(
            "acct_over_allocator",
            "ratio",
            "memory",
            "`acct_peak_live_mib` / `step_mem_mib` on a GPU",
        ),
    ),
)

MEMORY_SUITE = Section(
    "Attention scores (memory suite)",
    "Levels `analytic`, `global` and `attention` give one row per stage (batch 1, forward + backward); `model` one row per cell.",
    (
        _c("stage", "-", "memory", "FaViT stage, 1-4 (`all` at level model)"),
        _c("global_attn", "-", "memory", "the global-attention kernel measured"),
        _c("sr_ratio", "-", "memory", "the stage's spatial reduction"),
        _c(
            "global_sr_ratio",
            "-",
            "memory",
            "the global branch's spatial reduction (1 under `+gsr1`, else `sr_ratio`)",
        ),
        _c("queries", "tokens", "memory", "queries (tokens) of the stage, N = H x W"),
        _c("global_keys", "tokens", "memory", "keys of the global branch after spatial reduction"),
        _c(
            "global_score_elements",
            "elements",
            "memory",
            "attention-score elements of the global branch, one block, one image",
        ),
        _c(
            "global_sample_elements",
            "elements",
            "memory",
            "its ProbSparse sampled scores, N x n_sample (0 for dense and sdpa)",
        ),
        _c(
            "global_topu_elements",
            "elements",
            "memory",
            "its ProbSparse top-u full rows, u x L_K (0 for dense and sdpa)",
        ),
        _c(
            "window_score_elements",
            "elements",
            "memory",
            "scores of the local and dilated window branches, one block, one image",
        ),
        _c(
            "stage_score_elements",
            "elements",
            "memory",
            "all branches, every block of the stage, at the cell's batch",
        ),
        _c("stage_score_mib", "MiB", "memory", "`stage_score_elements` in the cell's dtype"),
    ),
)

PROFILE = Section(
    "Kernels (profile suite)",
    "Steps under torch.profiler after warm-up.",
    (
        _c(
            "kernels_per_step",
            "kernels",
            "profile",
            "device kernel launches per step (0 on the CPU)",
        ),
        _c(
            "device_ms_per_step",
            "ms",
            "profile",
            "summed device time of those kernels per step (empty on the CPU)",
        ),
        _c(
            "cpu_ops_per_step",
            "ops",
            "profile",
            "`aten::` operator calls per step on the host, nested calls included",
        ),
        _c(
            "profiled_step_ms",
            "ms",
            "profile",
            "host wall time per profiled step, profiler overhead included",
        ),
        _c(
            "eager_ops_per_step",
            "ops",
            "profile",
            "eager cells: ATen ops one step dispatches (views and bare allocations left out)",
        ),
        _c(
            "eager_traffic_gib_per_step",
            "GiB",
            "profile",
            "eager cells: bytes of those ops' tensor inputs and outputs",
        ),
        _c(
            "inductor_kernels",
            "kernels",
            "profile",
            "compiled cells: kernels inductor generated for the step",
        ),
        _c(
            "top_source",
            "-",
            "profile",
            "what `top_kernels` ranks: device kernels (GPU) or `aten::` ops by self CPU time (CPU)",
        ),
        _c(
            "top_kernels",
            "-",
            "profile",
            "the top 3 by time as `name (share%)`; the top 30 are in the cell's top_kernels.csv",
        ),
    ),
)

ACCURACY = Section(
    "Training (accuracy suite)",
    "CIFAR-10; the last epoch's accuracy is the result, the best epoch's is optimistic (picked on the test set).",
    (
        _c("top1", "%", "accuracy", "test top-1 of the last epoch's weights"),
        _c("top1_ema", "%", "accuracy", "test top-1 of the last epoch's EMA weights"),
        _c("top1_best_optimistic", "%", "accuracy", "the best epoch's test top-1"),
        _c("best_epoch", "epoch", "accuracy", "that epoch"),
        _c("top1_ema_best_optimistic", "%", "accuracy", "the best epoch's EMA test top-1"),
        _c("best_epoch_ema", "epoch", "accuracy", "that epoch"),
        _c("final_train_loss", "-", "accuracy", "training loss of the last epoch"),
        _c("epochs_trained", "epochs", "accuracy", "epochs run"),
        _c(
            "train_seed",
            "-",
            "accuracy",
            "the seed the model's weights and the data order came from",
        ),
        _c("train_s", "s", "accuracy", "time in training epochs"),
        _c("train_wall_s", "s", "accuracy", "training and evaluation time"),
        _c(
            "steady_samples_per_sec",
            "img/s",
            "accuracy",
            "median epoch throughput, the first epoch left out",
        ),
        _c("base_lr", "-", "accuracy", "the learning rate used"),
        _c("train_ema_decay", "-", "accuracy", "the EMA decay used"),
        _c("augment_side_stream", "-", "accuracy", "augmentation ran on a side CUDA stream"),
        _c("world_size", "processes", "accuracy", "data-parallel processes"),
        _c("dataset", "-", "accuracy", "the data actually read"),
        _c("smoke_run", "-", "accuracy", "a quick-profile run: its accuracies mean nothing"),
    ),
)

ANALYSIS = Section(
    "Claims and paper",
    "",
    (
        _c("claim", "-", "claims", "the claim's number"),
        _c(
            "verdict",
            "-",
            ("claims", "crosscheck"),
            "claims: the verdict on the claim (results/CLAIMS.md); crosscheck: `agree`, `ours higher`, `ours lower`, `too noisy to judge` or `no figure`",
        ),
        _c("runs_used", "-", "claims", "the committed runs it was judged from"),
        _c("claims_md", "-", "claims", "the CLAIMS.md written"),
        _c("files_written", "files", "paper", "paper tables and figures written"),
        _c("paper_dir", "-", "paper", "where"),
    ),
)

CROSSCHECK = Section(
    "Against timm's benchmark.py (crosscheck suite)",
    "timm's own `benchmark.py` and our step on the same model and settings, in one cell; our side's figures are in the step columns above.",
    (
        _c("timm_model", "-", "crosscheck", "the name the model was registered under for timm"),
        _c("optimizer", "-", "crosscheck", "our step's optimizer (`timm_adamw`: timm's own AdamW)"),
        _c("timm_img_s", "img/s", "crosscheck", "timm's samples_per_sec, mean over its repeats"),
        _c("timm_step_ms", "ms", "crosscheck", "timm's step_time, mean over its repeats"),
        _c("timm_repeat_img_s", "img/s", "crosscheck", "each repeat's samples_per_sec, `;`-joined"),
        _c("timm_spread_pct", "%", "crosscheck", "range of the repeats' img/s over their mean"),
        _c(
            "timm_window_spread_pct",
            "%",
            "crosscheck",
            "largest range of the five window means in one repeat's log",
        ),
        _c("timm_param_count", "M", "crosscheck", "parameters timm counted (must equal ours)"),
        _c(
            "sync_img_s",
            "img/s",
            "crosscheck",
            "our step timed timm's way: host clock, a synchronize each step",
        ),
        _c("sync_step_ms", "ms", "crosscheck", "that step's mean time"),
        _c("sync_ratio", "ratio", "crosscheck", "`sync_img_s` / `timm_img_s`"),
        _c("ratio", "ratio", "crosscheck", "our img/s (batch / median step) / `timm_img_s`"),
        _c("diff_pct", "%", "crosscheck", "100 x (`ratio` - 1)"),
        _c(
            "combined_spread_pct",
            "%",
            "crosscheck",
            "the two tools' log spreads combined (root sum of squares), as a percent",
        ),
        _c(
            "tolerance_pct",
            "%",
            "crosscheck",
            "the ratio allowed, x/÷ (1 + it / 100): 5% or the noise band (3 x the combined log spread), the wider",
        ),
        _c("agrees", "-", "crosscheck", "`verdict` is `agree`"),
        _c(
            "cudnn_benchmark",
            "-",
            "crosscheck",
            "cuDNN autotuning on in our step (timm turns it on)",
        ),
        _c("tf32_matmul", "-", "crosscheck", "TF32 matmuls on in our step (timm turns them on)"),
        _c("benchmark_py_blob", "-", "crosscheck", "git blob hash of the benchmark.py that ran"),
        _c("timm_version", "-", "crosscheck", "the installed timm"),
        _c("warmup_steps", "steps", "crosscheck", "warm-up steps, both tools"),
        _c(
            "timed_steps_per_round",
            "steps",
            "crosscheck",
            "timed steps per timm repeat and per round of ours",
        ),
        _c("timm_repeats", "runs", "crosscheck", "timm's benchmark.py runs per cell"),
    ),
)

SECTIONS = (
    RUNNER, AXES, MODEL, FLOPS, STEP, MEMORY, MEMORY_SUITE, PROFILE, ACCURACY, CROSSCHECK,
    ANALYSIS,
)  # fmt: skip
COLUMNS: tuple[Column, ...] = tuple(c for section in SECTIONS for c in section.columns)


def find(column: str) -> Column | None:
    """The schema entry of a ``rows.csv`` column name (``stage2_gmacs`` -> ``stage{i}_gmacs``)."""
    return next((c for c in COLUMNS if c.matches(column)), None)


def markdown() -> str:
    """The text of ``docs/COLUMNS.md``."""
    lines = [
        "# Columns of rows.csv",
        "",
        "Every column a suite writes to its `rows.csv`, generated from `suites/engine/columns.py`",
        "(`python -m suites.engine.columns` rewrites this file). Units: `M` millions, `MiB` 2^20",
        "bytes, `GMACs` 10^9 multiply-accumulates, `GFLOPs` 10^9 floating-point operations",
        "(2 per MAC), `-` text or a flag. A column marked timm has the name and meaning of the",
        "column of timm's `benchmark.py` CSV. Empty cells are values a row does not have.",
    ]
    for section in SECTIONS:
        lines += ["", f"## {section.title}", ""]
        if section.intro:
            lines += [section.intro, ""]
        lines += ["| column | unit | suites | meaning |", "| --- | --- | --- | --- |"]
        for c in section.columns:
            suites = "all" if c.suites == ALL_SUITES else ", ".join(c.suites)
            timm = " (timm)" if c.timm else ""
            lines.append(f"| `{c.name}`{timm} | {c.unit} | {suites} | {c.meaning} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write ``docs/COLUMNS.md`` (under the repository root, or the folder given)."""
    args = sys.argv[1:] if argv is None else argv
    root = Path(args[0]) if args else Path(__file__).resolve().parents[2]
    path = root / DOC_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(markdown())
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
