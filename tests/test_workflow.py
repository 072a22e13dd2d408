"""The GitHub Actions workflow in .github/workflows/: it parses, triggers on pull requests, and every
step runs something this repository has (the README's test command, the reference check, the
paths it reports and uploads)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
README_TEST_COMMAND = (
    "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/python -m pytest -q"
)


def load(path: Path) -> dict:
    workflow = yaml.safe_load(path.read_text())
    assert isinstance(workflow, dict), f"{path.name}: not a YAML mapping"
    return workflow


def steps(workflow: dict) -> list[dict]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def run_commands(workflow: dict) -> list[str]:
    return [step["run"] for step in steps(workflow) if "run" in step]


def optional_dependencies() -> list[str]:
    """The extras pyproject.toml defines (``name = [`` lines of its optional-dependencies table)."""
    text = (ROOT / "pyproject.toml").read_text()
    table = text.split("[project.optional-dependencies]", 1)[1].split("\n[", 1)[0]
    return re.findall(r"^(\w+)\s*=", table, flags=re.MULTILINE)


def test_there_is_a_workflow() -> None:
    assert [p.name for p in WORKFLOWS] == ["ci.yml"]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_it_parses_and_runs_on_every_pull_request(path: Path) -> None:
    workflow = load(path)
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert "pull_request" in triggers
    assert workflow["permissions"] == {"contents": "read"}  # a fork's token needs no more
    for name, job in workflow["jobs"].items():
        assert job["runs-on"] == "ubuntu-latest", name  # a CPU runner every fork has
        for step in job["steps"]:
            assert ("uses" in step) != ("run" in step), step
            if "uses" in step:
                assert re.fullmatch(r"actions/[\w-]+@v\d+", step["uses"]), step["uses"]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_it_runs_the_readmes_test_command_and_the_reference_check(path: Path) -> None:
    commands = run_commands(load(path))
    assert README_TEST_COMMAND in (ROOT / "README.md").read_text()  # the command users are told
    assert README_TEST_COMMAND in commands
    check = next(c for c in commands if "results/reference/check.sh" in c)
    assert check.startswith("PYTHON=.venv/bin/python bash ")


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_file_a_step_names_exists(path: Path) -> None:
    workflow = load(path)
    for command in run_commands(workflow):
        for script in re.findall(r"[\w./-]+\.(?:sh|py)\b", command):
            assert (ROOT / script).is_file(), f"{path.name} runs {script}, which is missing"
        for extras in re.findall(r"-e '\.\[([\w,]+)\]'", command):
            for extra in extras.split(","):
                assert extra in optional_dependencies(), f"pyproject.toml has no extra {extra!r}"
    # what the workflow reports and uploads is where the reference check writes its runs
    check = (ROOT / "results" / "reference" / "check.sh").read_text()
    assert 'run="results/runs/ci-$suite-cpu-quick"' in check and '--out "$run/compare.md"' in check
    summary = next(c for c in run_commands(workflow) if "GITHUB_STEP_SUMMARY" in c)
    assert "results/runs/ci-*/compare.md" in summary
    [upload] = [s for s in steps(workflow) if s.get("uses", "").startswith("actions/upload")]
    assert upload["with"]["path"] == "results/runs/" and upload["if"] == "always()"
