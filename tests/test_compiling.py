"""The shared compile modes: inductor settings, what combines, which modes mark steps."""

from __future__ import annotations

import pytest
import torch

from suites.engine import compiling


def test_inductor_config_parses_typed_settings_and_rejects_unknown_names():
    assert compiling.parse_inductor_config(
        "freezing=1,combo_kernels=false,max_autotune_gemm_backends=ATEN"
    ) == {
        "freezing": True,
        "combo_kernels": False,
        "max_autotune_gemm_backends": "ATEN",
    }
    assert compiling.parse_inductor_config("") == {}
    with pytest.raises(ValueError, match="bad inductor_config item 'freezing'; valid: name=value"):
        compiling.parse_inductor_config("freezing")
    with pytest.raises(ValueError, match="bad inductor_config item 'no_such_knob=1'"):
        compiling.parse_inductor_config("no_such_knob=1")


def test_compile_model_refuses_settings_that_do_not_apply():
    layer = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError, match="inductor_mode and inductor_config cannot be combined"):
        compiling.compile_model(layer, "compile", "max-autotune", {"freezing": True})
    for mode in ("eager", "cudagraph_eager"):
        with pytest.raises(ValueError, match=f"apply to inductor, not {mode}"):
            compiling.compile_model(layer, mode, inductor_settings={"freezing": True})
    with pytest.raises(ValueError, match="bad compile mode 'jit'; valid: eager, compile"):
        compiling.compile_model(layer, "jit")
    assert compiling.compile_model(layer, "eager") is layer


def test_only_cuda_graph_modes_mark_steps():
    assert compiling.step_mark("cudagraph") is torch.compiler.cudagraph_mark_step_begin
    assert compiling.step_mark("cudagraph_eager") is torch.compiler.cudagraph_mark_step_begin
    assert compiling.step_mark("compile") is compiling.step_mark("eager")
    assert compiling.step_mark("eager")() is None
