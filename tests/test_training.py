"""The training loop at preset smoke: annealing, phase checkpoints, resume, determinism."""

import json
from dataclasses import replace

import pytest
import torch

import sparling.experiments
from sparling.annealing import bar_density, grid_density, grid_index
from sparling.experiments import get_experiment, get_or_train, get_run, training_state
from sparling.store import RunStore, _plain
from sparling.training import (
    LATEST,
    NearBarPhasesConfig,
    TrainingConfig,
    phase_checkpoint_name,
    resolve_device,
    train,
    training_summary,
)

_SMOKE = get_experiment("digit_circle_mt", "smoke")
# the loop itself, without the preset's spare channels (tests/test_spare_channels.py trains those)
EXPERIMENT = replace(_SMOKE, model=replace(_SMOKE.model, spare_channels=None))
DENSITY_BUFFER = "bottleneck._density"


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    """Seed 1 trained to completion in one go."""
    return get_or_train(EXPERIMENT, 1, RunStore(tmp_path_factory.mktemp("full")), device="cpu", progress=False)


def assert_same_tensors(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def without_wall_time(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in entry.items() if k != "wall_seconds"} for entry in history]


# --- the smoke schedule ---------------------------------------------------------------------------


def test_smoke_annealer_fires_at_every_validation(full_run):
    state = training_state(full_run)
    config = EXPERIMENT.training
    assert [h["density"] for h in state.history] == pytest.approx([0.5 * 0.75**k for k in range(4)], rel=1e-12)
    assert [h["samples"] for h in state.history] == [8, 16, 24, 32]
    assert {h["threads"] for h in state.history} == {torch.get_num_threads()}  # CPU results depend on it
    assert state.density == pytest.approx(0.5 * 0.75**4, rel=1e-12)
    assert state.density < config.stop_density <= grid_density(3)
    assert state.samples == 32 < config.max_samples
    assert full_run.is_complete
    assert full_run.read_json("history") == json.loads(json.dumps(state.history))
    summary = training_summary(state, config)
    assert (summary["samples"], summary["optimizer_steps"], summary["densities_passed"]) == (32, 8, 4)
    assert summary["final_density"] == state.density
    assert summary["wall_seconds"] == state.wall_seconds > 0
    assert summary["threads"] == [torch.get_num_threads()]


def test_one_phase_checkpoint_per_trained_density(full_run):
    densities = [grid_density(k) for k in range(4)]
    assert set(full_run.checkpoint_names()) == {LATEST, *(phase_checkpoint_name(d) for d in densities)}
    for k, density in enumerate(densities):
        checkpoint = full_run.load_checkpoint(phase_checkpoint_name(density))
        assert checkpoint["density"] == pytest.approx(density, rel=1e-12)
        # The weights as trained at δ: the bottleneck's density buffer is δ, not the next density.
        assert checkpoint["model"][DENSITY_BUFFER].item() == pytest.approx(density, rel=1e-12)
        assert checkpoint["samples"] == 8 * (k + 1)
        assert 0.0 <= checkpoint["accuracy"] <= 1.0
    latest = full_run.load_checkpoint(LATEST)
    assert latest["model"][DENSITY_BUFFER].item() == pytest.approx(grid_density(4), rel=1e-12)
    # The last phase's weights are the final weights (nothing was trained after it).
    last_phase = full_run.load_checkpoint(phase_checkpoint_name(grid_density(3)))["model"]
    assert_same_tensors({k: v for k, v in last_phase.items() if k != DENSITY_BUFFER},
                        {k: v for k, v in latest["model"].items() if k != DENSITY_BUFFER})


def test_a_finished_run_is_not_trained_again(full_run, monkeypatch):
    monkeypatch.setattr(sparling.experiments, "train", lambda *a, **k: pytest.fail("trained a finished run"))
    again = get_or_train(EXPERIMENT, 1, RunStore(full_run.path.parent.parent), device="cpu", progress=False)
    assert again.path == full_run.path


def test_phases_near_the_bar_last_at_least_near_bar_samples(tmp_path):
    # smoke: a validation every 8 samples, and the annealer steps at each; the bar is grid density 3
    near_bar = NearBarPhasesConfig(steps=2, samples=16)
    experiment = replace(EXPERIMENT, training=replace(EXPERIMENT.training, near_bar=near_bar))
    assert experiment.run_config() != EXPERIMENT.run_config()
    assert "near_bar" not in str(_plain(EXPERIMENT.training))  # off, it adds nothing to any run's key
    run = get_or_train(experiment, 1, RunStore(tmp_path), device="cpu", progress=False)
    state = training_state(run)
    # densities 1 and 2 (one and two steps above the bar) hold for two validations; 0 and the bar do not
    assert [(h["samples"], grid_index(h["density"])) for h in state.history] == [
        (8, 0), (16, 1), (24, 1), (32, 2), (40, 2), (48, 3)]
    assert grid_index(state.density) == 4 and run.is_complete


def test_near_bar_holds_only_the_phases_it_names():
    stop = grid_density(10) * 0.99
    assert bar_density(stop) == grid_density(10)
    near_bar = NearBarPhasesConfig(steps=3, samples=100)
    assert [near_bar.holds(grid_density(k), stop, 99) for k in range(5, 12)] == [
        False, False, True, True, True, False, False]  # 7, 8, 9 are within 3 steps; 10 is the bar
    assert not near_bar.holds(grid_density(8), stop, 100)


@pytest.mark.parametrize("kwargs, message", [
    ({"steps": 0, "samples": 10}, "steps must be >= 1"),
    ({"steps": 2, "samples": 0}, "samples must be >= 1"),
])
def test_bad_near_bar_configs_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        NearBarPhasesConfig(**kwargs)


# --- resume ----------------------------------------------------------------------------------------


def test_interrupted_run_resumes_bitwise_equal(full_run, tmp_path, interrupt_at_third_validation):
    store = RunStore(tmp_path)
    interrupt_at_third_validation(EXPERIMENT, store)

    run = get_run(EXPERIMENT, 1, store)
    assert not run.is_complete
    assert training_state(run).samples == 16  # the latest checkpoint is the second validation's
    with run.lock():  # the interrupted process released its lock
        pass
    # Phase checkpoints of two fresh runs of the same seed are identical.
    for density in (grid_density(0), grid_density(1)):
        assert_same_tensors(run.load_checkpoint(phase_checkpoint_name(density))["model"],
                            full_run.load_checkpoint(phase_checkpoint_name(density))["model"])

    resumed = get_or_train(EXPERIMENT, 1, store, device="cpu", progress=False)
    assert resumed.is_complete
    assert resumed.checkpoint_names() == full_run.checkpoint_names()
    ours, theirs = resumed.load_checkpoint(LATEST), full_run.load_checkpoint(LATEST)
    assert_same_tensors(ours["model"], theirs["model"])
    for a, b in zip(ours["optimizer"]["state"].values(), theirs["optimizer"]["state"].values()):
        assert_same_tensors(a, b)
    assert ours["annealer"] == theirs["annealer"]
    assert (ours["samples"], ours["density"]) == (theirs["samples"], theirs["density"])
    assert without_wall_time(ours["history"]) == without_wall_time(theirs["history"])
    assert without_wall_time(resumed.read_json("history")) == without_wall_time(full_run.read_json("history"))
    for name in full_run.checkpoint_names():
        if name != LATEST:
            assert_same_tensors(resumed.load_checkpoint(name)["model"], full_run.load_checkpoint(name)["model"])


# --- determinism -----------------------------------------------------------------------------------


def first_phase(seed: int, root) -> dict:
    """Weights at the end of the first density phase (8 samples) of a fresh run with ``seed``."""
    config = replace(EXPERIMENT.training, max_samples=8)
    run = RunStore(root).run("determinism", config, seed)
    state = train(EXPERIMENT.build_model(seed), EXPERIMENT.build_domain(), config, seed, run, "cpu", progress=False)
    assert state.samples == 8 and run.is_complete
    return run.load_checkpoint(phase_checkpoint_name(0.5))["model"]


def test_fresh_runs_of_one_seed_are_identical_and_seeds_differ(full_run, tmp_path):
    seed_1 = first_phase(1, tmp_path)
    assert_same_tensors(seed_1, full_run.load_checkpoint(phase_checkpoint_name(0.5))["model"])
    seed_2 = first_phase(2, tmp_path)
    assert seed_1.keys() == seed_2.keys()
    assert not torch.equal(seed_1["motif_net.conv_in.weight"], seed_2["motif_net.conv_in.weight"])
    assert not torch.equal(seed_1["head.classify.weight"], seed_2["head.classify.weight"])


# --- config and device -----------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, message", [
    ({"batch_size": 4, "val_every": 10}, "val_every (10) must be a multiple of batch_size (4)"),
    ({"batch_size": 0}, "batch_size must be >= 1"),
    ({"max_samples": 0}, "max_samples must be >= 1"),
    ({"val_every": 0}, "val_every must be >= 1"),
    ({"val_samples": 0}, "val_samples must be >= 1"),
    ({"val_batch_size": -1}, "val_batch_size must be >= 1"),
    ({"learning_rate": 0.0}, "learning_rate must be > 0"),
    ({"initial_density": 0.0}, "initial_density must be in (0, 1]"),
    ({"initial_density": 1.5}, "initial_density must be in (0, 1]"),
    ({"stop_density": 0.0, "near_bar": NearBarPhasesConfig(steps=2, samples=8)}, "near_bar needs a stop_density"),
])
def test_training_config_validation(kwargs, message):
    with pytest.raises(ValueError) as error:
        TrainingConfig(**kwargs)
    assert message in str(error.value)


def test_training_config_defaults_are_the_papers():
    config = TrainingConfig()
    assert (config.batch_size, config.learning_rate, config.val_every, config.val_samples) == (10, 1e-5, 20_000, 10_000)
    assert (config.max_samples, config.initial_density, config.stop_density) == (6_000_000, 0.5, 4.492e-5)


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
@pytest.mark.parametrize("device", ["cuda", "cuda:0"])
def test_resolve_cuda_without_cuda(device):
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_device(device)
