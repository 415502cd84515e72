"""Spare motif channels (models/spare_channels.py): which channels are kept, how they are cut out of
ĝ, the bottleneck, the head and the optimizer, and the training hook (resume included)."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from sparling.experiments import get_experiment, get_or_train, get_run, training_state
from sparling.models import SpareChannelsConfig
from sparling.models.spare_channels import channel_axes, correlation, paired_channels, select_along
from sparling.store import RunStore, _plain, run_key
from sparling.training import LATEST, _drop_spare_channels, _optimizer, train, training_summary

SMOKE = get_experiment("digit_circle_mt", "smoke")
SPARE = SpareChannelsConfig(count=3, select_samples=16)  # the smoke run's second validation of four


def with_spare(experiment=SMOKE, spare=SPARE):
    return replace(experiment, model=replace(experiment.model, spare_channels=spare))


def test_correlation_is_pearson_and_zero_for_constant_columns():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(50, 3)), rng.normal(size=(50, 2))
    a[:, 2] = 1.5  # a channel that never changes
    corr = correlation(torch.tensor(a), torch.tensor(b)).numpy()
    expected = np.corrcoef(a[:, :2].T, b.T)[:2, 2:]
    assert np.allclose(corr[:2], expected)
    assert np.all(corr[2] == 0)


def test_the_kept_channels_are_the_ones_paired_with_symbols_not_their_duplicates():
    rng = np.random.default_rng(0)
    present = torch.tensor(rng.random((400, 3)) < 0.4, dtype=torch.float32)
    noise = torch.tensor(rng.random((400, 5)), dtype=torch.float32)
    # channel 0: background; 1 and 3 both on symbol 0 (3 more cleanly); 2 on symbol 2; 4 on symbol 1
    maxima = torch.stack([noise[:, 0], present[:, 0] + noise[:, 1], present[:, 2] + 0.3 * noise[:, 2],
                          present[:, 0] + 0.1 * noise[:, 3], present[:, 1] + 0.3 * noise[:, 4]], 1)
    assert paired_channels(maxima, present, keep=3) == [2, 3, 4]
    assert paired_channels(maxima, present, keep=2) == [3, 4] or paired_channels(maxima, present, keep=2) == [2, 3]
    # more channels kept than symbols: the rest are the unpaired channels closest to some symbol
    assert paired_channels(maxima, present, keep=4) == [1, 2, 3, 4]
    with pytest.raises(ValueError, match="keep must be in"):
        paired_channels(maxima, present, keep=5)
    with pytest.raises(ValueError, match="inputs"):
        paired_channels(maxima, present[:10], keep=3)


def test_channel_axes_are_found_by_comparing_shapes():
    larger = {"w": torch.zeros(5, 4), "v": torch.zeros(3, 5), "same": torch.zeros(2)}
    smaller = {"w": torch.zeros(3, 4), "v": torch.zeros(3, 3), "same": torch.zeros(2)}
    assert channel_axes(larger, smaller) == {"w": 0, "v": 1}
    with pytest.raises(ValueError, match="more than one axis"):
        channel_axes({"sq": torch.zeros(5, 5)}, {"sq": torch.zeros(3, 3)})
    assert torch.equal(select_along(torch.arange(10).view(2, 5), 1, [4, 0]), torch.tensor([[4, 0], [9, 5]]))


def test_a_model_with_spare_channels_cuts_them_out_everywhere_and_keeps_the_rest_exactly():
    model = with_spare().build_model(1)
    wanted = SMOKE.model.motif_net.num_motifs
    assert model.channels == wanted + SPARE.count
    x = torch.from_numpy(SMOKE.build_domain().batch(1, 0, 4)[0])
    model.train()
    model.loss(x, [("1",)] * 4)  # batch-norm statistics and thresholds move off their initial values
    model.eval()
    keep = [12, 0, 3, 5, 1, 7, 8, 9, 10, 11]
    before, state = model.motif_map(x), model.state_dict()
    axes = model.select_channels(keep)
    assert model.channels == wanted
    assert {"motif_net.conv_out.weight", "bottleneck.threshold", "head.channel_embedding"} <= axes.keys()
    # ĝ's kept channels and their thresholds are unchanged: the map is the old map's kept channels
    assert torch.equal(model.motif_map(x), before[:, keep])
    assert torch.equal(model.state_dict()["head.channel_embedding"], state["head.channel_embedding"][keep])
    assert not model.training  # the new parts keep the model's mode
    assert len(model.predict(x)) == 4
    with pytest.raises(ValueError, match="no spare ones"):
        model.select_channels(range(wanted))
    # a fresh model with spare channels loads the state saved after the cut, and computes the same map
    loaded = with_spare().build_model(2)
    loaded.load_state_dict(model.state_dict())
    assert loaded.channels == wanted and torch.equal(loaded.eval().motif_map(x), before[:, keep])


def test_bad_keeps_are_refused_before_anything_changes():
    model = with_spare().build_model(1)
    for keep in ([0] * 10, list(range(9)), list(range(4, 14))):
        with pytest.raises(ValueError, match="distinct channels"):
            model.select_channels(keep)
    assert model.channels == 13


def test_the_optimizer_keeps_its_moments_for_the_kept_channels():
    model = with_spare().build_model(1)
    optimizer = _optimizer(model, SMOKE.training)
    x, ys, _ = SMOKE.build_domain().batch(1, 0, 4)
    model.loss(torch.from_numpy(x), ys)[0].backward()
    optimizer.step()
    old = optimizer.state[model.motif_net.conv_out.weight]["exp_avg"].clone()
    old_conv_in = optimizer.state[model.motif_net.conv_in.weight]["exp_avg"].clone()
    keep = list(range(3, 13))
    optimizer = _drop_spare_channels(model, optimizer, SMOKE.training, keep)
    assert optimizer.param_groups[0]["params"][0] is next(model.parameters())
    assert torch.equal(optimizer.state[model.motif_net.conv_out.weight]["exp_avg"], old[keep])
    assert torch.equal(optimizer.state[model.motif_net.conv_in.weight]["exp_avg"], old_conv_in)
    model.loss(torch.from_numpy(x), ys)[0].backward()
    optimizer.step()  # and it steps


@pytest.fixture(scope="module")
def spare_run(tmp_path_factory):
    return get_or_train(with_spare(), 1, RunStore(tmp_path_factory.mktemp("spare")), device="cpu", progress=False)


def test_training_drops_the_spare_channels_at_their_validation(spare_run):
    history = training_state(spare_run).history
    kept = [h for h in history if "kept_channels" in h]
    assert [h["samples"] for h in kept] == [SPARE.select_samples]
    assert training_summary(training_state(spare_run), with_spare().training)["kept_channels"] == {
        "samples": SPARE.select_samples, "channels": kept[0]["kept_channels"]}
    assert len(kept[0]["kept_channels"]) == 10 and len(set(kept[0]["kept_channels"])) == 10
    channels = {name: spare_run.load_checkpoint(name)["model"]["motif_net.conv_out.weight"].shape[0]
                for name in spare_run.checkpoint_names()}
    # the density held until the cut, so no phase closed with spare channels: latest and 4 phases, all cut
    assert [h["density"] for h in history[:2]] == [SMOKE.training.initial_density] * 2
    assert [h["samples"] for h in history][:2] == [SPARE.select_samples // 2, SPARE.select_samples]
    assert list(channels.values()) == [10] * 5
    # every checkpoint loads into a freshly built model of the experiment
    for name in spare_run.checkpoint_names():
        with_spare().build_model(1).load_state_dict(spare_run.load_checkpoint(name)["model"])


def test_a_run_interrupted_after_the_cut_resumes_bitwise_equal(spare_run, tmp_path, interrupt_at_third_validation):
    store = RunStore(tmp_path)
    interrupt_at_third_validation(with_spare(), store)
    assert training_state(get_run(with_spare(), 1, store)).samples == SPARE.select_samples  # saved after the cut
    resumed = get_or_train(with_spare(), 1, store, device="cpu", progress=False)
    ours, theirs = resumed.load_checkpoint(LATEST), spare_run.load_checkpoint(LATEST)
    for key in theirs["model"]:
        assert torch.equal(ours["model"][key], theirs["model"][key]), key
    for a, b in zip(ours["optimizer"]["state"].values(), theirs["optimizer"]["state"].values()):
        assert torch.equal(a["exp_avg_sq"], b["exp_avg_sq"])


def test_a_selection_between_validations_is_refused_before_training(tmp_path):
    experiment = with_spare(spare=SpareChannelsConfig(count=2, select_samples=12))
    run = RunStore(tmp_path).run("x", experiment.run_config(), 1)
    with pytest.raises(ValueError, match="multiple of val_every"):
        train(experiment.build_model(1), experiment.build_domain(), experiment.training, 1, run, "cpu", progress=False)
    assert not run.checkpoint_names()


def test_spare_channels_are_part_of_the_run_key_and_absent_ones_add_nothing_to_it():
    paper = get_experiment("digit_circle_mt", "paper").run_config()
    on = replace(paper, model=replace(paper.model, spare_channels=SpareChannelsConfig()))
    assert run_key("digit_circle_mt.paper", on, 1) != run_key("digit_circle_mt.paper", paper, 1)
    assert "spare_channels" not in str(_plain(paper))


@pytest.mark.parametrize("bad", [dict(count=0), dict(select_samples=0)])
def test_bad_spare_channel_configs_are_refused(bad):
    with pytest.raises(ValueError):
        SpareChannelsConfig(**bad)
