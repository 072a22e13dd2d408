"""env.json's record of the code: the commit, whether it was dirty, and the tree hash of the files."""

from __future__ import annotations

import subprocess

import pytest

from suites.engine.environment import git_state


def git(repo, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path):
    git(tmp_path, "init", "-q")
    (tmp_path / ".gitignore").write_text("ignored/\n")
    (tmp_path / "code.py").write_text("a = 1\n")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-qm", "first")
    return tmp_path


def test_a_clean_checkout_records_its_commit_and_that_commits_tree(repo):
    state = git_state(repo)
    assert state == {
        "commit": git(repo, "rev-parse", "HEAD"),
        "dirty": False,
        "tree": git(repo, "rev-parse", "HEAD^{tree}"),
    }


def test_the_tree_hash_follows_the_files_that_travel_and_leaves_the_index_alone(repo):
    clean = git_state(repo)["tree"]
    index_before = (repo / ".git" / "index").read_bytes()
    (repo / "code.py").write_text("a = 2\n")
    edited = git_state(repo)
    assert edited["dirty"] is True and edited["tree"] != clean
    (repo / "new.py").write_text("b = 1\n")  # untracked, not ignored: it travels, so it counts
    assert git_state(repo)["tree"] not in (clean, edited["tree"])
    (repo / "new.py").unlink()
    (repo / "ignored").mkdir()
    (repo / "ignored" / "data.npz").write_bytes(b"\0" * 10)  # ignored: it does not count
    assert git_state(repo)["tree"] == edited["tree"]
    (repo / "code.py").write_text("a = 1\n")
    assert git_state(repo)["tree"] == clean
    assert (repo / ".git" / "index").read_bytes() == index_before


def test_files_of_a_later_commit_on_an_older_checkout_name_the_later_commit(repo):
    """A copied tree whose .git is older than its files (a remote machine's copy)."""
    first = git(repo, "rev-parse", "HEAD")
    (repo / "code.py").write_text("a = 3\n")
    git(repo, "commit", "-qam", "second")
    second_tree = git(repo, "rev-parse", "HEAD^{tree}")
    git(repo, "reset", "-q", "--soft", first)  # HEAD back at the first commit, files of the second
    state = git_state(repo)
    assert state["commit"] == first and state["dirty"] is True
    assert state["tree"] == second_tree


def test_outside_a_git_checkout_every_field_is_none(tmp_path):
    assert git_state(tmp_path) == {"commit": None, "dirty": None, "tree": None}
