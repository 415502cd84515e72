"""Set-up files agree with each other, and the CLI's reproduce command behaves."""

import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

from sparling import cli

ROOT = Path(__file__).resolve().parent.parent


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "python=3.11" in env["dependencies"]
    wanted = set(project["dependencies"]) | set(project["optional-dependencies"]["dev"]) | {"-e ."}
    assert set(pip) == wanted
    assert "torch==2.13.0" in project["dependencies"]
    assert project["name"] != "sparling"  # the authors' PyPI distribution


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make reproduce" in readme


def test_reproduce_without_notebooks_says_so(tmp_path, capsys):
    assert cli.main(["reproduce", "--notebooks", str(tmp_path), "--output", str(tmp_path / "out")]) == 0
    assert "nothing to reproduce" in capsys.readouterr().out


def test_unknown_preset_is_a_clear_error_before_any_work(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "sparling", "reproduce", "--preset", "huge", "--output", str(tmp_path / "out")],
        capture_output=True, text=True,
    )
    assert result.returncode == 2
    assert "unknown preset 'huge'" in result.stderr
    assert not (tmp_path / "out").exists()
