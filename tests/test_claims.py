"""Symbol claims (models/claims.py): pairing free channels with unclaimed symbols from labels only,
the multiple-instance loss that pulls a free channel onto its symbol, and the training hook."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from sparling.experiments import get_experiment, get_or_train, get_run
from sparling.models import ClaimConfig
from sparling.models.claims import SymbolClaims, correlation, free_channel_targets, near_peaks
from sparling.store import RunStore, _plain, run_key
from sparling.training import LATEST


def test_correlation_is_pearson_and_zero_for_constant_columns():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(50, 3)), rng.normal(size=(50, 2))
    a[:, 2] = 1.5  # a channel that never changes
    corr = correlation(torch.tensor(a), torch.tensor(b)).numpy()
    expected = np.corrcoef(a[:, :2].T, b.T)[:2, 2:]
    assert np.allclose(corr[:2], expected)
    assert np.all(corr[2] == 0)


def test_a_duplicate_channel_is_paired_with_the_symbol_no_channel_carries():
    rng = np.random.default_rng(1)
    present = torch.tensor(rng.random((400, 4)) < 0.4, dtype=torch.float32)
    noise = torch.tensor(rng.random((400, 4)), dtype=torch.float32) * 0.2
    # channels 0-2 carry symbols 2, 0, 1; channel 3 duplicates symbol 2; symbol 3 is carried by none
    maxima = torch.stack([present[:, 2], present[:, 0], present[:, 1], present[:, 2]], 1) + noise
    targets = free_channel_targets(maxima, present, min_correlation=0.5)
    # either copy of symbol 2 may be the one set free; the other keeps it
    assert targets.tolist() in ([-1, -1, -1, 3], [3, -1, -1, -1])
    assert free_channel_targets(maxima, present[:, [0, 1, 2, 2]], min_correlation=0.5).tolist() == [-1, -1, -1, -1]


def test_near_peaks_marks_the_window_around_each_firing_channels_peak():
    m = torch.zeros(1, 2, 20, 20)
    m[0, 0, 5, 7] = 3.0
    m[0, 0, 15, 15] = 1.0  # weaker than the peak: not marked
    near = near_peaks(m, radius=2)
    assert near[0, 0].sum() == 25 and near[0, 0, 3:8, 5:10].all()
    assert not near[0, 1].any()  # a channel that does not fire has no peak


def test_loss_reaches_only_the_free_channel_away_from_other_peaks():
    claims = SymbolClaims(ClaimConfig(exclusion_radius=1), channels=3)
    z = torch.randn(4, 3, 10, 10, requires_grad=True)
    m = torch.zeros(4, 3, 10, 10)
    m[:, 0, 2, 2] = 1.0
    present = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]])
    assert claims.loss(z, m, present).item() == 0.0  # no free channel: no loss
    claims.targets[2] = 1
    claims.loss(z, m, present).backward()
    grad = z.grad.abs().sum(0)
    assert grad[2].sum() > 0 and grad[:2].sum() == 0
    assert grad[2, 1:4, 1:4].sum() == 0  # the window around channel 0's peak is left out
    assert (grad[2] > 0).sum() == 100 - 9


def test_leave_weight_pushes_a_free_channel_down_at_another_channels_peak():
    z = torch.zeros(2, 2, 10, 10)
    z[:, 1, 2, 2] = 5.0  # the free channel's strongest response sits on channel 0's peak
    z[:, 1, 7, 7] = 1.0
    m = torch.zeros(2, 2, 10, 10)
    m[:, 0, 2, 2] = 1.0
    present = torch.tensor([[1.0], [0.0]])
    grads = []
    for leave in (0.0, 1.0):
        claims = SymbolClaims(ClaimConfig(exclusion_radius=1, leave_weight=leave), channels=2)
        claims.targets[1] = 0
        zz = z.clone().requires_grad_(True)
        claims.loss(zz, m, present).backward()
        grads.append(zz.grad[:, 1, 2, 2])
    assert (grads[0] == 0).all()  # without it, the claimed spot gets no gradient
    assert (grads[1] > 0).all()  # with it, descent lowers the response there


def test_the_loss_trains_a_free_channel_onto_its_symbol():
    """A 1×1 conv over two input features; the symbol is a bump in feature 1 at a random place,
    present in half the inputs, and feature 0 is noise. The free channel's peak must land on the bump."""
    torch.manual_seed(0)
    n, size = 64, 16

    def inputs():
        x = torch.randn(n, 2, size, size) * 0.3
        present = (torch.rand(n) < 0.5).float()
        where = torch.randint(2, size - 2, (n, 2))
        for i in range(n):
            if present[i]:
                x[i, 1, where[i, 0], where[i, 1]] += 3.0
        return x, present, where

    conv = torch.nn.Conv2d(2, 2, 1)
    with torch.no_grad():  # the free channel starts on the noise feature
        conv.weight.copy_(torch.tensor([[[[0.0]], [[0.0]]], [[[1.0]], [[-0.5]]]]))
    claims = SymbolClaims(ClaimConfig(), channels=2)
    claims.targets[1] = 0
    optimizer = torch.optim.Adam([*conv.parameters(), *claims.parameters()], lr=0.05)
    for _ in range(150):
        x, present, _ = inputs()
        loss = claims.loss(conv(x), torch.zeros(n, 2, size, size), present.unsqueeze(1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    x, present, where = inputs()
    with torch.no_grad():
        peak = conv(x)[:, 1].flatten(1).argmax(1)
    hits = [divmod(int(peak[i]), size) == tuple(where[i].tolist()) for i in range(n) if present[i]]
    assert sum(hits) / len(hits) > 0.9


def test_training_pairs_channels_and_checkpoints_the_pairing(tmp_path):
    base = get_experiment("digit_circle_mt", "smoke")
    # min_correlation 1.0: no channel of a smoke run correlates perfectly, so every paired channel is free
    experiment = replace(base, model=replace(base.model, claims=ClaimConfig(start_samples=16, min_correlation=1.0)))
    store = RunStore(tmp_path)
    get_or_train(experiment, 1, store, device="cpu", progress=False)
    targets = get_run(experiment, 1, store).load_checkpoint(LATEST)["model"]["claims.targets"]
    assert sorted(targets.tolist()) == list(range(10))  # 10 channels, 10 symbols: all paired, all free
    # before start_samples nothing is paired: a run that stops earlier keeps the -1s
    early = replace(experiment, training=replace(experiment.training, max_samples=8))
    get_or_train(early, 1, store, device="cpu", progress=False)
    assert (get_run(early, 1, store).load_checkpoint(LATEST)["model"]["claims.targets"] == -1).all()


def test_claims_are_part_of_the_run_key_and_absent_claims_add_nothing_to_it():
    paper = get_experiment("digit_circle_mt", "paper").run_config()  # a preset without claims
    on = replace(paper, model=replace(paper.model, claims=ClaimConfig()))
    assert run_key("digit_circle_mt.paper", on, 1) != run_key("digit_circle_mt.paper", paper, 1)
    # the key of a config without claims is the one it had before the field existed
    assert "claims" not in json.dumps(_plain(paper))


@pytest.mark.parametrize("bad", [dict(start_samples=-1), dict(min_correlation=1.5), dict(weight=0.0),
                                 dict(sharpness=-1.0), dict(exclusion_radius=-1), dict(leave_weight=-0.5)])
def test_bad_claim_configs_are_refused(bad):
    with pytest.raises(ValueError):
        ClaimConfig(**bad)
