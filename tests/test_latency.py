"""The latency suite on tiny stand-in models (CPU): columns, relations, ratios, bad axis values."""

from __future__ import annotations

import math
import weakref

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

import baselines
from suites import latency
from suites.engine import step as step_engine
from suites.engine.suite import CellContext, CellSkipped


class TinyNet(nn.Module):
    """(B, 3, H, W) -> (B, num_classes): one conv, global mean, one linear."""

    def __init__(self, num_classes: int = 1000, width: int = 8) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3, padding=1)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.conv(x).relu().mean(dim=(2, 3)))


class Unsupported(Exception):
    pass


@pytest.fixture
def stand_in_baselines(monkeypatch):
    """``baselines.create``/``validate_name`` replaced by two tiny models, whatever baselines holds."""
    widths = {"tiny_a": 8, "pvt_v2_b1": 16}

    def create(name: str, num_classes: int = 1000, img_size: int = 224) -> nn.Module:
        if img_size > 64:
            raise Unsupported(f"{name} takes at most 64 px, got {img_size}")
        return TinyNet(num_classes, widths[name])

    def validate_name(name: str) -> str:
        if name not in widths:
            raise ValueError(f"unknown model {name!r}; valid: {', '.join(widths)}")
        return name

    monkeypatch.setattr(baselines, "create", create, raising=False)
    monkeypatch.setattr(baselines, "validate_name", validate_name, raising=False)
    monkeypatch.setattr(baselines, "UnsupportedInput", Unsupported, raising=False)
    monkeypatch.setattr(step_engine, "device_peak_tflops", lambda run_dir, device: _FakePeak())
    step_engine.forget_models()  # a model another test's baselines built is not these
    yield widths
    step_engine.forget_models()


class _FakePeak:
    tflops = 0.5


def _ctx(tmp_path) -> CellContext:
    return CellContext(device="cpu", run_dir=tmp_path, cell_id="c", quick=True)


def _cell(**overrides):
    cell = dict(
        model="tiny_a",
        img_size=16,
        batch_size=2,
        dtype="fp32",
        mode="infer",
        channels_last="off",
        compile="eager",
    )
    cell.update(overrides)
    return cell


@pytest.mark.parametrize("mode", ["infer", "train"])
def test_measure_returns_documented_columns_with_sane_relations(stand_in_baselines, tmp_path, mode):
    row = latency.measure(_cell(mode=mode), _ctx(tmp_path))
    median_ms = row[f"{mode}_step_time"]
    assert row["step_p10_ms"] <= median_ms <= row["step_p90_ms"]
    assert row[f"{mode}_samples_per_sec"] == pytest.approx(2 / (median_ms / 1000))
    assert row[f"{mode}_batch_size"] == 2 and row[f"{mode}_img_size"] == 16
    assert row["timed_steps_n"] == 2 * 3  # two rounds of the quick profile's 3 steps, pooled
    assert row["host_op_us"] > 0
    assert row["setup_s"] > 0 and row["meters_s"] > 0
    # the rounds' time holds the pooled timed steps (mean x n), and their warm-ups
    assert row["rounds_s"] >= row["step_mean_ms"] * row["timed_steps_n"] / 1000
    assert row["repeat_spread_pct"] >= 0 and row["step_cv"] >= 0
    assert row["achieved_tflops"] == pytest.approx(row["gflops_per_step"] / median_ms)
    assert row["mfu"] == pytest.approx(row["achieved_tflops"] / 0.5)
    assert math.isnan(row["gpu_busy_share"]) and row["launch_bound"] is None  # no GPU here
    assert math.isnan(row["peak_mem_mib"])


def test_a_run_counts_each_models_flops_once_per_size_and_the_cache_equals_a_fresh_count(
    stand_in_baselines, tmp_path, monkeypatch
):
    counted = []
    count = step_engine.count_flops

    def counting(model, spec, device, part):
        counted.append((spec.model, spec.img_size, part))
        return count(model, spec, device, part)

    monkeypatch.setattr(step_engine, "_FLOPS", {})
    monkeypatch.setattr(step_engine, "count_flops", counting)
    settings = ({}, {"batch_size": 4}, {"dtype": "bf16"}, {"mode": "train"}, {"img_size": 32})
    rows = [latency.measure(_cell(**s), _ctx(tmp_path)) for s in settings]
    assert counted == [
        ("tiny_a", 16, "forward"),
        ("tiny_a", 16, "train_step"),  # the train cell reuses the forward count
        ("tiny_a", 32, "forward"),  # another size is counted again
    ]
    assert [r["flops_cached"] for r in rows] == [False, True, True, False, False]
    assert rows[0]["gflops_per_step"] * 2 == pytest.approx(rows[1]["gflops_per_step"])
    # a fresh worker of the same run reads the run folder's cache: nothing is counted again
    monkeypatch.setattr(step_engine, "_FLOPS", {})
    again = latency.measure(_cell(mode="train"), _ctx(tmp_path))
    assert len(counted) == 3 and again["flops_cached"]
    # and the cached figures are those a count now gives
    spec = step_engine.StepSpec.from_cell(_cell(mode="train"))
    forward, step = count(TinyNet(1000, 8), spec, "cpu", "forward"), None
    step = count(TinyNet(1000, 8), spec, "cpu", "train_step")
    assert again["infer_gmacs"] == forward / 2 / 1e9
    assert again["gflops_per_step"] == step * 2 / 1e9
    assert step_engine.count_flops_per_sample(TinyNet(1000, 8), spec, "cpu") == (forward, step)


def test_a_model_taken_back_by_a_reused_worker_gives_the_row_a_fresh_build_gives(
    stand_in_baselines, tmp_path, monkeypatch
):
    deterministic = ("param_count", "gflops_per_step", "infer_gmacs", "step_mem_mib")
    step_engine.forget_models()
    fresh = latency.measure(_cell(mode="train"), _ctx(tmp_path))
    latency.measure(_cell(mode="train", batch_size=4), _ctx(tmp_path))  # trains the kept model
    reused = latency.measure(_cell(mode="train"), _ctx(tmp_path))
    assert not fresh["model_reused"] and reused["model_reused"]
    assert {k: reused[k] for k in deterministic} == {k: fresh[k] for k in deterministic}
    # the weights, buffers and the generator are those of a fresh build
    spec = step_engine.StepSpec.from_cell(_cell(mode="train"))
    model, restore, reused_flag = step_engine.cell_model(spec, seed=0)
    restore()
    after_restore = torch.get_rng_state()
    torch.manual_seed(0)
    built = step_engine.create_model("tiny_a", 16)
    assert reused_flag and torch.equal(after_restore, torch.get_rng_state())
    assert all(
        torch.equal(a, b)
        for a, b in zip(model.state_dict().values(), built.state_dict().values(), strict=True)
    )
    # another model, size or a compiled cell drops the kept model: never two on the device
    step_engine.cell_model(step_engine.StepSpec.from_cell(_cell(model="pvt_v2_b1")), seed=0)
    assert [kept.key for kept in step_engine._LAST_MODEL] == [("pvt_v2_b1", 16, 0)]
    step_engine.forget_models()


def test_a_row_says_its_spread_target_and_whether_its_rounds_missed_it(
    stand_in_baselines, tmp_path
):
    row = latency.measure(_cell(), _ctx(tmp_path))
    assert row["spread_target_pct"] == 3.0
    assert row["unstable"] == (row["repeat_spread_pct"] > 3.0)
    ctx = _ctx(tmp_path)
    ctx.options = {"spread_target_pct": "0"}  # no two rounds agree that closely on a CPU
    row = latency.measure(_cell(), ctx)
    assert row["spread_target_pct"] == 0.0 and row["unstable"] == (row["repeat_spread_pct"] > 0)


def test_flops_count_matches_hand_count(stand_in_baselines):
    # conv 3->8, 3x3 on 16x16: 16*16*8*3*9 MACs; linear 8->1000: 8000 MACs (bias and relu not counted)
    macs = 16 * 16 * 8 * 3 * 9 + 8 * 1000
    spec = step_engine.StepSpec.from_cell(_cell(mode="train"))
    forward, step = step_engine.count_flops_per_sample(TinyNet(1000, 8), spec, "cpu")
    assert forward == 2 * macs
    # backward: grad of input skipped for the first conv (input needs no grad), weight grads for both,
    # input grad of the linear: conv weight grad + linear input grad + linear weight grad = 3 extra terms
    assert step == 2 * macs + 2 * (16 * 16 * 8 * 3 * 9) + 2 * 2 * 8000


def test_train_flops_of_a_depthwise_conv_count_groups():
    # 3x3 depthwise conv over 8 channels on a (1, 8, 16, 16) activation that needs its gradient
    model = nn.Sequential(
        nn.Conv2d(3, 8, 1),
        nn.Conv2d(8, 8, 3, padding=1, groups=8),
        nn.Flatten(),
        nn.LazyLinear(1000),
    )
    spec = step_engine.StepSpec("tiny_a", img_size=16, batch_size=2, mode="train")
    model(torch.zeros(1, 3, 16, 16))  # materialize the lazy linear
    forward, step = step_engine.count_flops_per_sample(model, spec, "cpu")
    pointwise, depthwise, linear = 2 * 256 * 8 * 3, 2 * 256 * 8 * 9, 2 * 2048 * 1000
    assert forward == pointwise + depthwise + linear
    # backward: pointwise weight grad; depthwise input and weight grads; linear input and weight grads
    assert step == forward + pointwise + 2 * depthwise + 2 * linear


def test_unsupported_size_is_skipped(stand_in_baselines, tmp_path):
    with pytest.raises(CellSkipped, match="at most 64 px"):
        latency.measure(_cell(img_size=128), _ctx(tmp_path))


def test_max_batch_and_cudagraph_need_cuda(stand_in_baselines, tmp_path):
    with pytest.raises(CellSkipped, match="CUDA"):
        latency.measure(_cell(batch_size="max"), _ctx(tmp_path))
    for mode in step_engine.CUDA_GRAPH_MODES:
        with pytest.raises(CellSkipped, match=f"compile={mode} needs a CUDA device"):
            latency.measure(_cell(compile=mode), _ctx(tmp_path))


@pytest.mark.parametrize(
    ("axis", "value", "message"),
    [
        ("dtype", "fp64", "bad dtype 'fp64'; valid: fp32, bf16, fp16"),
        ("mode", "eval", "bad mode 'eval'; valid: infer, train"),
        ("compile", "jit", "bad compile 'jit'; valid: eager, compile, cudagraph, cudagraph_eager"),
        ("channels_last", "yes", "bad channels_last 'yes'; valid: off, on"),
        ("batch_size", "0", "bad batch_size '0'"),
        ("batch_size", "big", "bad batch_size 'big'"),
        ("img_size", "2.5", "bad img_size '2.5'"),
        ("model", "nope", "unknown model 'nope'"),
    ],
)
def test_bad_axis_values_are_rejected(stand_in_baselines, axis, value, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        step_engine.StepSpec.from_cell(_cell(**{axis: value}))
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        latency.SUITE.axis(axis).kind(value)


def test_axis_kinds_parse_command_line_strings(stand_in_baselines):
    assert step_engine.parse_batch_size("64") == 64
    assert step_engine.parse_batch_size("max") == "max"
    assert latency.SUITE.axis("img_size").kind("224") == 224
    assert latency.SUITE.axis("batch_size").values(quick=True) == [1, 2]


def _fake_rows() -> pd.DataFrame:
    rows = []
    for model, speed, mem in (("favit_b1", 300.0, 900.0), ("pvt_v2_b1", 200.0, 1000.0)):
        for batch in (32, 128):
            rows.append(
                dict(model=model, img_size=224, batch_size=batch, dtype="bf16", mode="train", channels_last="off",
                     compile="eager", status="ok", train_samples_per_sec=speed * batch / 32,
                     train_step_time=1000 * batch / (speed * batch / 32), train_batch_size=batch,
                     peak_mem_mib=mem * batch / 32, infer_gmacs=2.0 if model == "favit_b1" else 2.1)
            )  # fmt: skip
    rows.append(dict(model="favit_b0", img_size=224, batch_size=32, dtype="bf16", mode="infer", channels_last="off",
                     compile="eager", status="ok", infer_samples_per_sec=1000.0, infer_step_time=32.0,
                     infer_batch_size=32, peak_mem_mib=100.0, infer_gmacs=0.6))  # fmt: skip
    rows.append(dict(model="favit_b3", img_size=224, batch_size="max", dtype="bf16", mode="train",
                     channels_last="off", compile="eager", status="oom", reason="CUDA out of memory"))  # fmt: skip
    return pd.DataFrame(rows)


def test_reference_ratios_pair_rows_with_the_same_settings():
    ok = latency.add_reference_ratios(latency.tidy(_fake_rows()))
    favit = ok[ok["model"] == "favit_b1"].set_index("batch")
    assert favit.loc[128, "vs_pvt_v2_b1"] == pytest.approx(1.5)
    assert favit.loc[128, "mem_vs_pvt_v2_b1"] == pytest.approx(0.9)
    assert math.isnan(ok[ok["model"] == "favit_b0"]["vs_pvt_v2_b1"].iloc[0])  # no pvt infer row
    assert "favit_b3" not in set(ok["model"])  # oom rows are not in the table


def test_pareto_front():
    assert latency.pareto_front([1.0, 2.0, 3.0, 2.0], [10.0, 20.0, 5.0, 15.0]) == [
        True,
        True,
        False,
        False,
    ]


def test_report_leaves_out_ratio_columns_without_the_reference_model(tmp_path):
    rows = _fake_rows()
    latency.report(rows[rows["model"] != "pvt_v2_b1"], tmp_path)
    table = (tmp_path / "latency.md").read_text()
    assert "favit_b1" in table and "vs_pvt_v2_b1" not in table


def test_report_writes_table_and_figures(tmp_path):
    latency.report(_fake_rows(), tmp_path)
    table = (tmp_path / "latency.md").read_text()
    assert "vs_pvt_v2_b1" in table and "1.50" in table
    assert (tmp_path / "latency.tex").exists()
    for stem in ("throughput_vs_batch", "memory_vs_batch", "pareto_throughput_gmacs"):
        assert (tmp_path / f"{stem}.png").stat().st_size > 0
        assert (tmp_path / f"{stem}.pdf").stat().st_size > 0


def test_report_table_says_what_a_max_batch_is_only_when_there_is_one(tmp_path):
    rows = _fake_rows()
    latency.report(rows, tmp_path)
    header = (tmp_path / "latency.md").read_text().splitlines()[2]
    assert "batch_failed" not in header and "batch_size" not in header  # no ok max row
    found = dict(model="favit_b1", img_size=224, batch_size="max", dtype="bf16", mode="infer",
                 channels_last="off", compile="eager", status="ok", infer_samples_per_sec=900.0,
                 infer_step_time=800.0, infer_batch_size=720, batch_found=720, batch_failed=768,
                 peak_mem_mib=100.0, infer_gmacs=2.3)  # fmt: skip
    latency.report(pd.concat([rows, pd.DataFrame([found])], ignore_index=True), tmp_path)
    lines = (tmp_path / "latency.md").read_text().splitlines()
    columns = [c.strip() for c in lines[2].strip("|").split("|")]
    row = next(line for line in lines if "| max |" in line)
    cells = dict(zip(columns, [c.strip() for c in row.strip("|").split("|")], strict=True))
    assert (cells["batch_size"], cells["batch"], cells["batch_failed"]) == ("max", "720", "768")
    assert "batch_failed the smallest tried that ran out of memory" in lines[0]


def test_report_plots_memory_against_batch_from_step_memory_without_an_allocator_peak(tmp_path):
    rows = _fake_rows()  # as on the CPU: no allocator peak, the step's exact tensor peak instead
    rows["step_mem_mib"], rows["peak_mem_mib"] = rows["peak_mem_mib"] / 2, math.nan
    latency.report(rows, tmp_path)
    assert (tmp_path / "memory_vs_batch.png").stat().st_size > 0


def test_bf16_pure_runs_inference_in_bf16_weights_and_skips_training(stand_in_baselines, tmp_path):
    from torch.utils._python_dispatch import TorchDispatchMode

    spec = step_engine.StepSpec.from_cell(_cell(dtype="bf16_pure"))
    model = step_engine.prepare_model(TinyNet(1000, 8), spec, "cpu", step_engine.TimingOptions())
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}

    class Casts(TorchDispatchMode):
        count = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            Casts.count += func.__name__.startswith("_to_copy")
            return func(*args, **(kwargs or {}))

    step = step_engine.build_step(model, spec, 2, "cpu")
    with Casts():
        step()
    assert Casts.count == 0  # no weight is cast per step
    row = latency.measure(_cell(dtype="bf16_pure"), _ctx(tmp_path))
    assert row["infer_samples_per_sec"] > 0 and row["gflops_per_step"] > 0
    with pytest.raises(CellSkipped, match="dtype bf16_pure measures inference only"):
        latency.measure(_cell(dtype="bf16_pure", mode="train"), _ctx(tmp_path))


def test_throughput_drops_name_rows_slower_than_a_smaller_batch_of_the_same_settings(tmp_path):
    rows = _fake_rows()  # every sweep there gains throughput with the batch: no drop
    latency.report(rows, tmp_path)
    assert not (tmp_path / "throughput_drops.md").exists()
    assert "throughput_drops" not in (tmp_path / "latency.md").read_text()
    slower = []
    for batch, speed in ((256, 500.0), (512, 470.0), (1024, 700.0), (2048, 300.0)):
        slower.append(dict(model="favit_b2", img_size=224, batch_size=batch, dtype="bf16", mode="train",
                           channels_last="off", compile="eager", status="ok", train_samples_per_sec=speed,
                           train_step_time=1000 * batch / speed, train_batch_size=batch,
                           peak_mem_mib=float(batch), infer_gmacs=2.0))  # fmt: skip
    latency.report(pd.concat([rows, pd.DataFrame(slower)], ignore_index=True), tmp_path)
    drops = latency.throughput_drops(latency.tidy(pd.concat([rows, pd.DataFrame(slower)])))
    # 512 is 6% below 256 (the best smaller), 1024 gains, 2048 is 57% below 1024
    assert drops[["batch", "best_smaller_batch"]].values.tolist() == [[512, 256], [2048, 1024]]
    assert drops["drop_pct"].tolist() == pytest.approx([6.0, 100 * (1 - 300 / 700)])
    assert (drops["model"] == "favit_b2").all() and (drops["mode"] == "train").all()
    table = (tmp_path / "throughput_drops.md").read_text()
    assert "| favit_b2 | train | bf16 | eager | off | 224 | 2,048 | 300.00 |" in table
    assert "2 rows give more than 5% fewer img/s" in (tmp_path / "latency.md").read_text()
    latency.report(rows, tmp_path)  # rewritten without the drops: the old table goes
    assert not (tmp_path / "throughput_drops.md").exists()
    assert not (tmp_path / "throughput_drops.tex").exists()


# ----------------------------------------------------------------------------- batch "max"


class _SimulatedDevice:
    """A device of ``capacity`` units that ``build_step`` is replaced by: a step built at batch b
    holds b units (inputs, targets) while it lives, and ``STATE`` more once it has run (AdamW
    makes its state at the end of the first step); a run needs 4 b more for its activations."""

    STATE = 50

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.steps: weakref.WeakSet = weakref.WeakSet()  # the steps alive now
        self.alive_at_build: list[int] = []  # steps alive when each one was built
        self.runs: list[tuple[int, int]] = []  # (batch, run of that step)

    def held(self) -> int:
        return sum(step.batch + (self.STATE if step.ran else 0) for step in self.steps)

    def build_step(self, model, spec, batch_size, device, seed=0):
        self.alive_at_build.append(len(self.steps))
        step = _SimulatedStep(self, batch_size)
        self.steps.add(step)
        return step


class _SimulatedStep:
    def __init__(self, device: _SimulatedDevice, batch: int) -> None:
        self.device, self.batch, self.ran = device, batch, 0

    def __call__(self) -> None:
        self.device.runs.append((self.batch, self.ran + 1))
        if self.device.held() + 4 * self.batch > self.device.capacity:
            raise torch.cuda.OutOfMemoryError(f"CUDA out of memory (batch {self.batch})")
        self.ran += 1


@pytest.mark.parametrize("compile_mode", ["eager", "compile"])
def test_max_batch_tries_alone_two_steps_each_and_builds_the_timed_step_once(
    stand_in_baselines, monkeypatch, compile_mode
):
    # alone, batch b runs its first step in 5 b units and its second in 5 b + 50: in 1000 units
    # the largest batch that runs two steps is 190; 191..200 run one step, then fail
    device = _SimulatedDevice(capacity=1000)
    monkeypatch.setattr(step_engine, "build_step", device.build_step)
    spec = step_engine.StepSpec.from_cell(
        _cell(batch_size="max", mode="train", compile=compile_mode)
    )
    options = step_engine.TimingOptions(max_batch_start=256, max_batch_rel_tol=0.0)
    built = step_engine.step_to_time(TinyNet(), spec, "cpu", options)
    assert (built.batch, built.columns) == (190, {"batch_found": 190, "batch_failed": 191})
    assert any(run == (b, 2) for b in range(191, 201) for run in device.runs)  # one step fitted
    # no step was built while another was alive, the timed one included; only it is left
    assert device.alive_at_build == [0] * len(device.alive_at_build)
    step = built.step  # the last try (191) failed: built again at 190, run once
    assert list(device.steps) == [step] and step.batch == 190 and step.ran == 1
    assert built.first_step_s >= 0 and built.warm_step_s is None


class _MemoryLimit(TorchDispatchMode):
    """A simulated device memory: the bytes of the storages ops create inside it (the inputs,
    targets, activations, gradients and AdamW state of a real step; the weights are outside),
    freed when their storage dies; an op that takes them past ``limit`` raises a CUDA OOM."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit, self.live, self.bytes, self.peak = limit, {}, 0, 0

    def _release(self, key: int) -> None:
        self.bytes -= self.live.pop(key, 0)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        from suites.engine.meters import _storage_key, _storages

        out = func(*args, **(kwargs or {}))
        inputs = {_storage_key(s) for s in _storages((args, kwargs))}
        for storage in _storages(out):
            key = _storage_key(storage)
            if key not in inputs and key not in self.live:
                self.live[key] = storage.nbytes()
                self.bytes += storage.nbytes()
                weakref.finalize(storage, self._release, key)
        self.peak = max(self.peak, self.bytes)
        if self.bytes > self.limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return out


def test_max_batch_of_a_real_training_step_is_the_largest_that_runs_two_steps_alone(
    stand_in_baselines,
):
    model, limit = TinyNet(), 1_000_000
    spec = step_engine.StepSpec.from_cell(_cell(batch_size="max", mode="train"))

    def fits_alone(batch: int, steps: int) -> bool:
        with _MemoryLimit(limit):
            try:
                step_engine.fits_in_memory(model, spec, batch, "cpu", steps=steps)
            except torch.cuda.OutOfMemoryError:
                return False
        return True

    options = step_engine.TimingOptions(max_batch_start=256, max_batch_rel_tol=0.0)
    with _MemoryLimit(limit) as memory:
        batch, failed, _ = step_engine.search_max_batch(model, spec, "cpu", options)
        assert memory.bytes == 0  # nothing of the search is left
    assert failed == batch + 1 and fits_alone(batch, 2) and not fits_alone(batch + 1, 2)
    assert fits_alone(batch + 1, 1)  # its first step fits: AdamW's state comes at its end


def _simulated_memory_model(monkeypatch, memory: _MemoryLimit, capacity: int | None) -> None:
    """The step engine's allocator readings and capacity, from a ``_MemoryLimit`` instead of CUDA."""
    import contextlib

    @contextlib.contextmanager
    def peak_meter(device):
        reading, memory.peak, held = {}, memory.bytes, memory.bytes
        yield reading
        reading.update(held=float(held), peak=float(memory.peak))

    monkeypatch.setattr(step_engine, "peak_meter", peak_meter)
    monkeypatch.setattr(step_engine, "device_capacity_bytes", lambda device: capacity)


def _search_on_a_simulated_device(monkeypatch, limit, predicting, rel_tol):
    model = TinyNet()
    spec = step_engine.StepSpec.from_cell(_cell(batch_size="max", mode="train"))
    options = step_engine.TimingOptions(max_batch_start=256, max_batch_rel_tol=rel_tol)
    with _MemoryLimit(limit) as memory:
        _simulated_memory_model(monkeypatch, memory, limit if predicting else None)
        batch, failed, tries = step_engine.search_max_batch(model, spec, "cpu", options)
        tries.release()
        assert memory.bytes == 0  # nothing of the search is left
    return batch, failed, list(tries.first_step_s)


@pytest.mark.parametrize("limit", [1_000_000, 3_000_000, 6_000_000])
def test_max_batch_from_a_memory_model_is_the_bisections_batch_on_a_simulated_device(
    stand_in_baselines, monkeypatch, limit
):
    plain = _search_on_a_simulated_device(monkeypatch, limit, predicting=False, rel_tol=0.0)
    modelled = _search_on_a_simulated_device(monkeypatch, limit, predicting=True, rel_tol=0.0)
    assert modelled[:2] == plain[:2] and modelled[1] == modelled[0] + 1
    assert len(modelled[2]) < len(plain[2])  # the prediction, not timm's ladder, led there
    batch, failed, tried = _search_on_a_simulated_device(
        monkeypatch, limit, predicting=True, rel_tol=1 / 16
    )
    assert batch <= plain[0] < failed and failed - batch <= max(1, batch // 16)
    assert len(tried) < len(plain[2])


def test_a_max_cell_fits_its_memory_model_to_the_workers_readings_at_fixed_batches(
    stand_in_baselines, monkeypatch
):
    monkeypatch.setattr(step_engine, "_PEAKS", {})
    spec = step_engine.StepSpec.from_cell(_cell(batch_size="max", mode="train"))
    fixed = step_engine.StepSpec.from_cell(_cell(batch_size=32, mode="train"))
    mib = step_engine.MIB
    for batch in (32, 128):  # 100 MiB held, 2 MiB a sample
        reading = {"mem_source": "cuda_allocator", "steady_mem_mib": 100.0}
        step_engine.record_peak(fixed, batch, {**reading, "peak_mem_mib": 100.0 + 2 * batch})
    step_engine.record_peak(fixed, 8, {"mem_source": "tensor_accounting"})  # no allocator: left out
    monkeypatch.setattr(step_engine, "device_capacity_bytes", lambda device: 1101.0 * mib)
    monkeypatch.setattr(step_engine, "probe_peak", lambda *a, **k: pytest.fail("probed"))
    options = step_engine.TimingOptions()
    usable = 1101.0 * (1 - step_engine.MAX_BATCH_MARGIN)  # MiB
    assert step_engine.predict_max_batch(TinyNet(), spec, "cuda", options) == int(
        (usable - 100) / 2
    )
    # no reading of the inference step: one probe at max_batch_start // 16 = 128, its line through
    # the memory held before its step less its inputs
    other = step_engine.StepSpec.from_cell(_cell(batch_size="max", mode="infer"))
    monkeypatch.setattr(step_engine, "probe_peak", lambda *a, **k: (100.0 * mib, 164.0 * mib))
    fixed = 100.0 - step_engine.input_bytes(other, 128) / mib
    assert step_engine.input_bytes(other, 128) == 128 * 3 * 16 * 16 * 4
    expected = int((usable - fixed) / ((164.0 - fixed) / 128))
    assert step_engine.predict_max_batch(TinyNet(), other, "cuda", options) == expected


def test_the_step_timed_at_the_max_batch_is_the_last_try_when_that_try_found_it(
    stand_in_baselines, monkeypatch
):
    device = _SimulatedDevice(capacity=1000)  # 190 is the largest batch that runs two steps
    monkeypatch.setattr(step_engine, "build_step", device.build_step)
    spec = step_engine.StepSpec.from_cell(_cell(batch_size="max", mode="train"))
    options = step_engine.TimingOptions(max_batch_start=256, max_batch_rel_tol=1 / 16)
    monkeypatch.setattr(step_engine, "predict_max_batch", lambda *a, **k: 190)
    built = step_engine.step_to_time(TinyNet(), spec, "cpu", options)
    assert (built.batch, built.columns) == (190, {"batch_found": 190, "batch_failed": 201})
    # predicted before any try (the worker's readings): above it, then it; the start never
    assert [b for b, _ in device.runs if _ == 1] == [201, 190]
    step = built.step  # the try at 190: not built again, its second step a warm one
    assert list(device.steps) == [step] and step.ran == step_engine.FIT_STEPS
    assert device.alive_at_build == [0, 0] and built.warm_step_s >= 0


def test_a_max_batch_try_frees_its_inputs_optimizer_and_gradients(stand_in_baselines, monkeypatch):
    built = []
    build = step_engine.build_step

    def keeping_weakrefs(*args, **kwargs):
        step = build(*args, **kwargs)
        kept = [c.cell_contents for c in step.__closure__]
        built.extend(
            weakref.ref(obj)
            for obj in kept
            if isinstance(obj, torch.Tensor | torch.optim.Optimizer | torch.amp.GradScaler)
        )
        return step

    monkeypatch.setattr(step_engine, "build_step", keeping_weakrefs)
    model = TinyNet()
    spec = step_engine.StepSpec.from_cell(_cell(mode="train"))
    first_step_s = step_engine.fits_in_memory(model, spec, 4, "cpu")
    kinds = {type(ref()).__name__ for ref in built}  # nothing: all of them died
    assert len(built) == 4 and kinds == {"NoneType"}  # inputs, targets, AdamW, the grad scaler
    assert all(p.grad is None for p in model.parameters()) and first_step_s > 0


# ----------------------------------------------------------------------------- memory, FLOPs


def test_cpu_step_memory_leaves_out_the_gradients_that_live_between_steps(stand_in_baselines):
    from suites.engine.meters import TensorAccountant

    model = TinyNet()
    spec = step_engine.StepSpec.from_cell(_cell(mode="train"))
    step = step_engine.build_step(model, spec, 2, "cpu")
    step(), step()  # steady state: AdamW's state and the last step's gradients live
    grad_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad(set_to_none=True)  # a step with no gradient to free first: what it allocates
    with TensorAccountant() as acct:
        step()
    allocated_peak = acct.result().peak_live_bytes
    acct.detach()
    assert allocated_peak > grad_bytes  # the new gradients are in it
    memory = step_engine.step_memory(step, "cpu", "eager", model)
    # the step frees the old gradients first: as on the GPU, they are part of the baseline
    assert memory["step_mem_mib"] * step_engine.MIB == allocated_peak - grad_bytes
    assert memory["mem_source"] == "tensor_accounting"


def test_flops_are_counted_in_fp32_without_autocast_whatever_the_dtype(stand_in_baselines):
    seen = []

    class Recording(TinyNet):
        def forward(self, x):
            seen.append((x.dtype, self.head.weight.dtype, torch.is_autocast_enabled("cpu")))
            return super().forward(x)

    counts = {}
    for dtype in ("fp32", "bf16", "fp16", "bf16_pure"):
        spec = step_engine.StepSpec.from_cell(_cell(dtype=dtype))
        model = step_engine.prepare_model(Recording(), spec, "cpu", step_engine.TimingOptions())
        weights = [p.detach().clone() for p in model.parameters()]
        counts[dtype] = step_engine.count_flops_per_sample(model, spec, "cpu")
        # bf16_pure's weights come back as they were, bit for bit
        assert all(
            p.dtype == w.dtype and torch.equal(p, w)
            for p, w in zip(model.parameters(), weights, strict=True)
        )
    assert set(seen) == {(torch.float32, torch.float32, False)}
    assert len(set(counts.values())) == 1


class _Attention(nn.Module):
    def forward(self, q, k, v):
        return F.scaled_dot_product_attention(q, k, v)


def test_sdpa_backward_is_counted_on_the_cpu_as_torch_counts_it_on_cuda():
    from torch.utils.flop_counter import (
        FlopCounterMode,
        sdpa_backward_flop_count,
        sdpa_flop_count,
    )

    from suites.engine.flop_count import flop_counter_extra_formulas

    aten = torch.ops.aten
    q, k, v = (torch.randn(2, 3, n, 8, requires_grad=True) for n in (10, 6, 6))
    with FlopCounterMode(display=False, custom_mapping=flop_counter_extra_formulas()) as counter:
        _Attention()(q, k, v).sum().backward()
    counts = counter.get_flop_counts()["Global"]
    forward = sdpa_flop_count(q.shape, k.shape, v.shape)
    backward = sdpa_backward_flop_count(q.shape, q.shape, k.shape, v.shape)
    assert counts == {
        aten._scaled_dot_product_flash_attention_for_cpu: forward,  # the CPU kernels ran
        aten._scaled_dot_product_flash_attention_for_cpu_backward: backward,
    }
    assert forward == 2 * 2 * 3 * 10 * 6 * (8 + 8)
    assert backward >= 2 * forward  # dQ, dK, dV and dP: four matmuls of the forward's size
    if hasattr(aten, "_scaled_dot_product_fused_attention_overrideable_backward"):
        assert aten._scaled_dot_product_fused_attention_overrideable_backward in (
            flop_counter_extra_formulas()
        )


# ----------------------------------------------------------------------------- options, report


def test_full_profile_gets_full_timing_on_the_cpu_too():
    full = step_engine.TimingOptions.for_device("cpu", quick=False)
    assert (
        full == step_engine.TimingOptions() == step_engine.TimingOptions.for_device("cuda", False)
    )
    timing = (full.warmup_steps, full.max_warmup_s, full.timed_steps, full.min_round_s)
    assert timing == (10, 1.0, 2, 0.3) and full.max_rounds == 4
    for device in ("cpu", "cuda"):
        quick = step_engine.TimingOptions.for_device(device, quick=True)
        assert (quick.warmup_steps, quick.timed_steps, quick.max_rounds) == (1, 3, 2)


def _header(path) -> list[str]:
    return [c.strip() for c in path.read_text().splitlines()[2].strip("|").split("|")]


def test_report_shows_mem_source_where_peaks_are_measured_two_ways(tmp_path, monkeypatch):
    for plot in ("_plot_by_batch", "_plot_pareto"):  # the table only
        monkeypatch.setattr(latency, plot, lambda *args: None)
    rows = _fake_rows()
    rows["mem_source"] = "cuda_allocator"
    latency.report(rows, tmp_path)
    assert "mem_source" not in _header(tmp_path / "latency.md")  # one way: the allocated peak
    graphs = rows[rows["model"] == "favit_b1"].assign(
        compile="cudagraph", mem_source="cuda_reserved"
    )
    latency.report(pd.concat([rows, graphs], ignore_index=True), tmp_path)
    table = tmp_path / "latency.md"
    columns = _header(table)
    assert "mem_source" in columns
    sources = {
        line.strip("|").split("|")[columns.index("mem_source")].strip()
        for line in table.read_text().splitlines()[4:]
        if line.startswith("|")
    }
    assert sources == {"cuda_allocator", "cuda_reserved"}
    assert "cuda_reserved (CUDA-graph rows), its reserved peak" in table.read_text()
    latency.report(graphs, tmp_path)  # reserved peaks only: still named
    assert "mem_source" in _header(table)


def test_report_marks_host_bound_and_unstable_rows_and_shows_the_host_speed(tmp_path):
    rows = _fake_rows()
    rows["host_op_us"], rows["gpu_busy_share"], rows["repeat_spread_pct"] = 2.5, 0.9, 1.0
    batch32 = (rows["model"] == "favit_b1") & (rows["batch_size"] == 32)
    rows.loc[batch32, "gpu_busy_share"] = 0.4  # host-bound
    rows.loc[rows["model"] == "favit_b0", "repeat_spread_pct"] = 7.0  # rounds never agreed
    latency.report(rows, tmp_path)
    lines = (tmp_path / "latency.md").read_text().splitlines()
    columns = [c.strip() for c in lines[2].strip("|").split("|")]
    cells = {
        (r[0], r[columns.index("batch")]): dict(zip(columns, r, strict=True))
        for r in ([c.strip() for c in line.strip("|").split("|")] for line in lines[4:])
    }
    assert cells["favit_b1", "32"]["flags"] == "host-bound"
    assert cells["favit_b1", "32"]["host_op_us"] == "2.50"
    assert cells["favit_b1", "128"]["flags"] == ""
    assert cells["favit_b0", "32"]["flags"] == "unstable"
    assert "2 of 5 rows are flagged; flags: host-bound = GPU busy < 0.7" in lines[0]
    assert (tmp_path / "throughput_vs_batch.png").stat().st_size > 0


def test_report_flags_the_host_bound_points_of_its_plots(tmp_path, monkeypatch):
    drawn = []
    monkeypatch.setattr(
        latency,
        "mark_flagged_points",
        lambda ax, rows, x, y: drawn.append((x, y, len(rows), int(rows["launch_bound"].sum()))),
    )
    rows = _fake_rows()
    rows["gpu_busy_share"] = 0.5
    latency.report(rows, tmp_path)
    # throughput and memory against batch (one panel per dtype x mode: 2), Pareto (2 panels)
    assert [(x, y) for x, y, _, _ in drawn] == [("batch", "samples_per_sec")] * 2 + [
        ("batch", "peak_mem_mib")
    ] * 2 + [("infer_gmacs", "samples_per_sec")] * 2
    assert sum(n for *_, n in drawn[:2]) == 5 and all(n == b for *_, n, b in drawn)
