"""Any model by name, through the command line and the Python API: timm:<name> (wildcards too),
tv:<name>, the user's package.module:factory, @FILE; each row with its model_id."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import timm

import bench
from suites.engine import runner
from suites.engine.run_folder import read_rows

REPO_ROOT = Path(__file__).resolve().parent.parent
USER_MODULE = '''
"""A user's own models, in a module of the current directory."""
import torch
from torch import nn


class TinyNet(nn.Module):
    def __init__(self, num_classes: int = 1000, img_size=(32, 32)):
        super().__init__()
        self.img_size = img_size
        self.conv = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.head = nn.Linear(8, num_classes)

    def forward(self, x):
        return self.head(self.conv(x).relu().mean((2, 3)))


def tiny(num_classes):
    """A factory function; it takes no img_size."""
    return TinyNet(num_classes)
'''


def run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """``python bench.py ARGS`` in ``cwd``, with this checkout's packages first on the path."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "bench.py"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.fixture
def user_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "mynets.py").write_text(USER_MODULE)
    monkeypatch.delitem(sys.modules, "mynets", raising=False)  # each test imports its own
    return tmp_path


COMMON = ["--device", "cpu", "--quick", "--no-progress", "--workers", "2"]


def test_flops_measures_timm_torchvision_wildcard_and_user_models(user_dir: Path) -> None:
    models = "timm:convnext_atto,timm:test_convnext?,tv:mobilenet_v3_small,mynets:TinyNet"
    models += ",timm:efficientformer_l1"  # its attention biases are sized for 224: skipped at 32
    done = run_cli(
        ["--suite", "flops", *COMMON, "--models", models, "--img-size", "32", "--out", "run"],
        user_dir,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = read_rows(user_dir / "run").set_index("model")
    assert rows["model_id"].to_dict() == {
        "timm:convnext_atto": "timm:convnext_atto",
        "timm:test_convnext2": "timm:test_convnext2",  # the wildcard, expanded
        "timm:test_convnext3": "timm:test_convnext3",
        "tv:mobilenet_v3_small": "tv:mobilenet_v3_small",
        "mynets:TinyNet": "mynets:TinyNet",
        "timm:efficientformer_l1": "timm:efficientformer_l1",
    }
    ok = rows[rows["status"] == "ok"]
    assert len(ok) == 5 and (ok["fvcore_gmacs"] > 0).all()
    timm_model = timm.create_model("convnext_atto", pretrained=False)
    parameters = sum(p.numel() for p in timm_model.parameters())
    assert round(ok.loc["timm:convnext_atto", "param_count"] * 1e6) == parameters
    assert ok.loc["mynets:TinyNet", "family"] == "user"
    assert ok["published_gmacs"].isna().all()  # no published figures: absent, not zero
    skipped = rows.loc["timm:efficientformer_l1"]
    assert skipped["status"] == "skipped"
    assert "at 32x32: its forward pass fails" in skipped["reason"]


def test_latency_measures_models_named_in_a_file(user_dir: Path) -> None:
    (user_dir / "models.txt").write_text(
        "# models to time\ntimm:convnext_atto\ntv:mobilenet_v3_small\n\nmynets:tiny\n"
    )
    args = ["--suite", "latency", *COMMON, "--models", "@models.txt", "--img-size", "32"]
    done = run_cli([*args, "--batch-size", "2", "--mode", "infer", "--out", "run"], user_dir)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = read_rows(user_dir / "run")
    assert (rows["status"] == "ok").all(), rows["reason"].tolist()
    assert sorted(rows["model_id"]) == [
        "mynets:tiny",
        "timm:convnext_atto",
        "tv:mobilenet_v3_small",
    ]
    assert (rows["infer_samples_per_sec"] > 0).all() and (rows["infer_img_size"] == 32).all()


@pytest.mark.parametrize(
    ("models", "message"),
    [
        ("timm:convnxt_atto", "no such model in timm"),
        ("timm:nothing_like_this_*", "matches no model"),
        ("tv:resnet5", "did you mean tv:resnet50"),
        ("mynets:Missing", "module 'mynets' has no 'Missing'"),
        ("nosuchpackage.nets:Net", "cannot import module 'nosuchpackage.nets'"),
        ("@missing.txt", "cannot read the names file"),
    ],
)
def test_a_bad_model_is_one_line_and_exit_2_before_any_cell(
    user_dir: Path,
    models: str,
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    monkeypatch.chdir(user_dir)  # mynets.py is found in the current directory
    monkeypatch.setattr(sys, "path", list(sys.path))
    code = bench.main(["--suite", "latency", "--models", models, "--out", "run"])
    assert code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bench.py: error: --models:")
    assert message in lines[0]
    assert not (user_dir / "run").exists()


def test_a_factory_in_the_current_directory_gets_the_size_it_names(
    user_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import baselines

    monkeypatch.chdir(user_dir)
    monkeypatch.setattr(sys, "path", list(sys.path))
    model = baselines.create("mynets:TinyNet", num_classes=7, img_size=(32, 48))
    assert model.img_size == (32, 48) and model.head.out_features == 7 and model.training
    assert str(user_dir) in sys.path
    assert baselines.create("mynets:tiny", num_classes=3, img_size=16).head.out_features == 3


NOTEBOOK_EXAMPLE = """
import bench

rows = bench.run("latency", models=["mynets:TinyNet", "timm:test_convnext2"], img_size=32,
                 batch_size=2, dtype="fp32", mode="infer", out="api-run", progress=False)
print(type(rows).__name__, rows.attrs["run_dir"])
print(rows[["model", "model_id", "batch_size", "infer_samples_per_sec"]].to_string())
"""


@pytest.mark.parametrize("how", ["script without a main guard", "notebook-like (-c)"])
def test_the_python_api_example_runs_from_a_script_or_a_notebook(user_dir: Path, how: str) -> None:
    """bench.run returns the rows; its workers never run the calling program again (a script
    without ``if __name__ == "__main__":`` used to start its run again in every worker)."""
    code = "print('top level ran')" + NOTEBOOK_EXAMPLE
    if how.startswith("script"):
        (user_dir / "example.py").write_text(code)
        command = [sys.executable, "example.py"]
    else:
        command = [sys.executable, "-c", code]
    env = {**os.environ, "PYTHONPATH": f"{REPO_ROOT}{os.pathsep}{user_dir}"}
    done = subprocess.run(
        command, cwd=user_dir, env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("top level ran") == 1
    assert "DataFrame api-run" in done.stdout
    rows = read_rows(user_dir / "api-run")
    assert (rows["status"] == "ok").all(), rows["reason"].tolist()
    assert rows["model_id"].tolist() == ["mynets:TinyNet", "timm:test_convnext2"]


def test_api_returns_the_rows_and_says_what_was_wrong_in_one_line(tmp_path: Path) -> None:
    rows = bench.run(
        "flops",
        models="resnet50",
        img_size=32,
        device="cpu",
        quick=True,
        out=tmp_path / "run",
        isolate=False,
        progress=False,
    )
    assert isinstance(rows, pd.DataFrame) and rows.attrs["run_dir"] == tmp_path / "run"
    assert rows.loc[0, "model_id"] == "tv:resnet50" and rows.loc[0, "status"] == "ok"
    with pytest.raises(ValueError, match=r"^models: bad value 'timm:nope'") as error:
        bench.run("flops", models=["timm:nope"], out=tmp_path / "other")
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match="unknown suite 'speed'; valid: memory, flops"):
        bench.run("speed")
    with pytest.raises(ValueError, match="already holds a run"):
        bench.run("flops", models="resnet50", out=tmp_path / "run")


def test_api_called_inside_a_worker_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "_IN_WORKER", True)
    with pytest.raises(RuntimeError, match=r'put that call under `if __name__ == "__main__":`'):
        bench.run("flops")


def test_help_lists_the_commands_and_model_names() -> None:
    text = bench.build_parser().format_help()
    for command in ("compare", "report"):
        assert command in text
    assert "timm:<name>" in text and "@FILE" in text
    listing = bench.list_suites()
    assert "timm:<any timm model>" in listing and "vit_tiny_p4" in listing


def test_console_command_is_bench_cli() -> None:
    text = (REPO_ROOT / "pyproject.toml").read_text()
    assert '[project.scripts]\nfavit-bench = "bench:cli"\n' in text
    assert callable(bench.cli)
