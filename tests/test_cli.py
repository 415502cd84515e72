"""`python -m sparling train / evaluate / list` at preset smoke, and every kind of bad input."""

import re
import shutil
from pathlib import Path

import pytest
import torch

from sparling import cli
from sparling.annealing import density_key, grid_density
from sparling.experiments import get_experiment, get_run
from sparling.store import RunStore

EXPERIMENT = "digit_circle_mt"


def train_argv(seed: int = 1) -> list[str]:
    return ["train", EXPERIMENT, "--preset", "smoke", "--seed", str(seed), "--device", "cpu", "--no-progress"]


TRAIN = train_argv(1)
EVALUATE = ["evaluate", EXPERIMENT, "--preset", "smoke", "--seed", "1", "--device", "cpu"]


def files_under(path: Path) -> dict[str, bytes]:
    """Every file's bytes, except the (empty) lock files that taking a run's lock creates."""
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file() and p.name != ".lock"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A store holding the smoke run of seed 1, trained through the CLI; (root, exit code, stdout)."""
    import contextlib
    import io

    root = tmp_path_factory.mktemp("store")
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(out):
        mp.setenv("SPARLING_STORE", str(root))
        code = cli.main(TRAIN)
    return root, code, out.getvalue()


@pytest.fixture
def store(trained, tmp_path, monkeypatch):
    """A private copy of the trained store, set as SPARLING_STORE."""
    root = tmp_path / "store"
    shutil.copytree(trained[0], root)
    monkeypatch.setenv("SPARLING_STORE", str(root))
    return root


@pytest.fixture
def empty_store(tmp_path, monkeypatch):
    root = tmp_path / "empty"
    monkeypatch.setenv("SPARLING_STORE", str(root))
    return root


def smoke_run(root: Path, seed: int = 1):
    return get_run(get_experiment(EXPERIMENT, "smoke"), seed, RunStore(root))


# --- happy paths ------------------------------------------------------------------------------


def test_train_prints_where_and_summary(trained):
    root, code, out = trained
    assert code == 0
    run = smoke_run(root)
    assert run.is_complete
    assert str(run.path) in out
    # the density holds until the spare channels are cut at the 2nd validation (16 samples), then steps at each
    assert re.search(r"^seed 1: kept channels \[[\d, ]+\] of 20 at 16 samples$", out, re.M)
    assert re.search(r"samples:\s+40\b", out)
    assert re.search(r"optimizer steps:\s+10\b", out)
    assert re.search(r"wall time:\s+\S+s", out)
    assert f"final density:    {density_key(grid_density(4))}" in out
    assert re.search(r"densities passed:\s+4\b", out)


def test_train_again_reports_the_finished_run_without_training(store, capsys, monkeypatch):
    import sparling.experiments

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run must not be trained again")

    monkeypatch.setattr(sparling.experiments, "train", no_training)
    before = files_under(store)
    assert cli.main(TRAIN) == 0
    out = capsys.readouterr().out
    assert "Found finished run" in out and str(smoke_run(store).path) in out
    assert files_under(store) == before


def test_evaluate_at_the_bar_then_steps_above_it(store, capsys):
    experiment = get_experiment(EXPERIMENT, "smoke")
    assert cli.main([*EVALUATE, "--n", "3"]) == 0
    out = capsys.readouterr().out
    assert f"density {density_key(experiment.bar)} on 3 samples" in out
    for metric in ("FPE", "FNE", "CE", "E2EE"):
        assert re.search(rf"^\s+{metric}\s+\d+\.\d\d %$", out, re.M), metric
    assert "realised density" in out
    run = smoke_run(store)
    assert (run.path / f"eval-{density_key(experiment.bar)}-n3.json").is_file()

    assert cli.main([*EVALUATE, "--n", "3", "--steps-above-bar", "2"]) == 0
    out = capsys.readouterr().out
    assert f"density {density_key(grid_density(1))} on 3 samples" in out  # the bar is δ_3

    assert cli.main([*EVALUATE, "--n", "3", "--density", "0.5"]) == 0
    assert f"density {density_key(0.5)} on 3 samples" in capsys.readouterr().out


def test_list_shows_experiments_presets_and_runs(store, capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    run = smoke_run(store)
    for name in ("digit_circle_mt", "digit_circle_st", "smoke", "cpu", "paper"):
        assert name in out
    assert str(store) in out
    line = next(line for line in out.splitlines() if run.key in line)
    assert line.split() == ["digit_circle_mt.smoke", "1", run.key, "5", "yes"]
    assert out.index("digit_circle_st") < out.index(run.key)  # experiments first, then runs


def test_list_of_an_empty_store(empty_store, capsys):
    assert cli.main(["list"]) == 0
    assert "none" in capsys.readouterr().out
    assert not empty_store.exists()


# --- bad input: exit code 2, a message naming the problem, nothing written ------------------------


BAD_INPUT = [
    (["train", "digit_circle_xx", "--preset", "smoke", "--seed", "1"], "unknown experiment 'digit_circle_xx'"),
    (["train", EXPERIMENT, "--preset", "huge", "--seed", "1"], "unknown preset 'huge'"),
    (["train", EXPERIMENT, "--preset", "smoke", "--seed", "one"], "seed must be an integer, got 'one'"),
    (["train", EXPERIMENT, "--preset", "smoke", "--seed", "1.5"], "seed must be an integer, got '1.5'"),
    (["train", EXPERIMENT, "--preset", "smoke", "--seed", "-2"], "seed must be >= 0"),
    (["train", EXPERIMENT, "--preset", "smoke"], "--seed"),
    (["train", EXPERIMENT, "--preset", "smoke", "--seed", "1", "--device", "tpu"], "unknown device 'tpu'"),
    (["evaluate", "nope", "--preset", "smoke", "--seed", "1"], "unknown experiment 'nope'"),
    (["evaluate", EXPERIMENT, "--preset", "gpu", "--seed", "1"], "unknown preset 'gpu'"),
    (["evaluate", EXPERIMENT, "--preset", "smoke", "--seed", "x"], "seed must be an integer, got 'x'"),
    ([*EVALUATE, "--n", "-5"], "--n must be a positive number of samples, got -5"),
    ([*EVALUATE, "--n", "0"], "--n must be a positive number of samples, got 0"),
    ([*EVALUATE, "--density", "0"], "--density must be in (0, 1], got 0.0"),
    ([*EVALUATE, "--density", "1.5"], "--density must be in (0, 1], got 1.5"),
    ([*EVALUATE, "--density", "-0.1"], "--density must be in (0, 1], got -0.1"),
    ([*EVALUATE, "--density", "nan"], "--density must be in (0, 1], got nan"),
    ([*EVALUATE, "--steps-above-bar", "-1"], "--steps-above-bar must be >= 0, got -1"),
    ([*EVALUATE, "--density", "0.5", "--steps-above-bar", "1"], "not allowed with argument"),
    (["bogus"], "invalid choice: 'bogus'"),
]


@pytest.mark.parametrize("argv, message", BAD_INPUT, ids=[" ".join(a[:1] + a[-2:]) for a, _ in BAD_INPUT])
def test_bad_input_exits_2_before_any_work(argv, message, empty_store, capsys, monkeypatch):
    import sparling.experiments

    def no_work(*args, **kwargs):
        raise AssertionError("bad input must be rejected before any work")

    monkeypatch.setattr(sparling.experiments.Experiment, "build_model", no_work)
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert captured.out == ""
    assert not empty_store.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_without_cuda_is_bad_input(empty_store, capsys):
    assert cli.main([*TRAIN, "--device", "cuda"]) == 2
    assert "CUDA is not available" in capsys.readouterr().err
    assert not empty_store.exists()


def test_evaluate_never_trained_run_does_not_train(empty_store, capsys, monkeypatch):
    import sparling.experiments

    monkeypatch.setattr(sparling.experiments, "train", lambda *a, **k: pytest.fail("evaluate must not train"))
    assert cli.main([*EVALUATE, "--n", "2"]) == 2
    err = capsys.readouterr().err
    assert "never trained" in err and "python -m sparling train digit_circle_mt --preset smoke --seed 1" in err
    assert not empty_store.exists()


def test_evaluate_density_never_reached(store, capsys):
    before = files_under(store)
    assert cli.main([*EVALUATE, "--n", "2", "--density", "0.01"]) == 2
    err = capsys.readouterr().err
    assert f"never finished density {density_key(0.01)}" in err
    assert density_key(grid_density(3)) in err  # the finished densities are listed
    assert files_under(store) == before


# --- store errors: exit code 2, the store left intact ----------------------------------------------


def test_corrupt_checkpoint_is_reported_and_kept(store, capsys):
    run = smoke_run(store)
    latest = run.path / "checkpoints" / "latest.pt"
    garbage = b"this is not a torch checkpoint\x00\xff" * 10
    latest.write_bytes(garbage)
    (run.path / "COMPLETE").unlink()  # so that `train` tries to resume from latest.pt
    before = files_under(store)
    assert cli.main(TRAIN) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: corrupt checkpoint") and str(latest) in err
    assert latest.read_bytes() == garbage
    assert files_under(store) == before


def test_checkpoint_of_another_run_is_reported(store, capsys):
    source = smoke_run(store, seed=1)
    target = smoke_run(store, seed=2)
    assert source.key != target.key
    (target.path / "checkpoints").mkdir(parents=True)
    shutil.copy(source.path / "checkpoints" / "latest.pt", target.path / "checkpoints" / "latest.pt")
    before = files_under(store)
    assert cli.main(train_argv(2)) == 2
    err = capsys.readouterr().err
    assert "mismatched checkpoint" in err and source.key in err and target.key in err
    assert files_under(store) == before


def test_run_locked_by_another_process(store, capsys):
    run = smoke_run(store)
    (run.path / "COMPLETE").unlink()
    with run.lock():  # a second open file description: flock conflicts as with another process
        assert cli.main(TRAIN) == 2
    assert "locked by another process" in capsys.readouterr().err
    assert not (run.path / "COMPLETE").exists()


def test_help_exits_0(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("train", "evaluate", "list", "reproduce"):
        assert command in out


def test_interrupted_training_says_how_to_resume_and_resumes(empty_store, capsys, monkeypatch, interrupt_at_validation):
    interrupt_at_validation(2)
    assert cli.main(TRAIN) == 130
    assert "resume" in capsys.readouterr().err
    run = smoke_run(empty_store)
    assert not run.is_complete and run.has_checkpoint("latest")
    monkeypatch.undo()
    monkeypatch.setenv("SPARLING_STORE", str(empty_store))
    assert cli.main(TRAIN) == 0
    assert re.search(r"samples:\s+40\b", capsys.readouterr().out)
    assert run.is_complete
