"""Channel votes (models/votes.py): the noisy-OR presence loss that asks each channel to mean one
symbol, its gradient, its place in the model and the run key."""

import json
from dataclasses import replace

import pytest
import torch

from sparling.experiments import get_experiment
from sparling.models import SparlingModel, VoteConfig
from sparling.models.votes import ChannelVotes
from sparling.store import _plain, run_key


def one_hot_votes(symbols: tuple[str, ...], channels: int) -> ChannelVotes:
    """Channel c votes (almost surely) for symbol c."""
    votes = ChannelVotes(VoteConfig(symbols=symbols), channels, symbols)
    with torch.no_grad():
        votes.vote_logits.copy_(torch.eye(channels, len(symbols)) * 20 - 10)
    return votes


def maps_and_presence():
    """Four inputs over symbols (a, b): a alone, b alone, both, neither; channel 0 fires on a, 1 on b."""
    m = torch.zeros(4, 2, 6, 6)
    m[0, 0, 1, 1] = m[1, 1, 2, 2] = m[2, 0, 1, 1] = m[2, 1, 4, 4] = 8.0
    return m, torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]])


def test_pure_channels_cost_little_and_a_channel_firing_on_the_wrong_symbol_costs_more():
    votes = one_hot_votes(("a", "b"), 2)
    m, present = maps_and_presence()
    pure = votes.loss(m, present)
    mixed = m.clone()
    mixed[1, 0, 3, 3] = 8.0  # channel 0 (votes a) also fires on the b of input 1
    assert pure < 0.01
    assert votes.loss(mixed, present) > 10 * pure


def test_the_gradient_lowers_the_wrong_activation_and_raises_a_missing_one():
    votes = one_hot_votes(("a", "b"), 2)
    m, present = maps_and_presence()
    m[1, 0, 3, 3] = 0.5  # channel 0 fires weakly where only b is
    m[2, 1, 4, 4] = 0.5  # channel 1 fires weakly on the b of input 2
    m.requires_grad_(True)
    votes.loss(m, present).backward()
    assert m.grad[1, 0, 3, 3] > 0  # descent lowers it
    assert m.grad[2, 1, 4, 4] < 0  # descent raises it
    assert m.grad[3].abs().sum() == 0  # an empty map in an input with no symbol: nothing to change


def test_two_channels_cannot_combine_into_a_third_symbol():
    """With votes a distribution per channel and no negative evidence, 'a and b both fire' can
    only predict a and b present, never c: the loss stays high however the votes are trained."""
    votes = ChannelVotes(VoteConfig(symbols=("a", "b", "c")), 2, ("a", "b", "c"))
    m = torch.zeros(8, 2, 3, 3)
    m[:, :, 1, 1] = 8.0
    present = torch.tensor([[0.0, 0.0, 1.0]]).expand(8, 3)
    optimizer = torch.optim.Adam(votes.parameters(), lr=0.1)
    for _ in range(200):
        loss = votes.loss(m, present)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    p = votes.presence_probability(m)[0].detach()
    assert p[2] > 0.9 and p[:2].max() < 0.1  # both channels learned to vote c...
    m_a = torch.zeros(1, 2, 3, 3)
    m_a[0, 0, 1, 1] = 8.0
    assert votes.presence_probability(m_a)[0, 2] > 0.9  # ...so either alone also says c: no combination code


def test_the_model_adds_the_loss_once_the_density_is_low_enough():
    base = get_experiment("digit_circle_mt", "smoke")
    symbols = tuple("0123456789")
    x = torch.randn(2, 1, 100, 100)
    ys = [("1", "2", "3"), ("4", "5", "6")]

    def loss_at(start_density: float) -> float:
        config = replace(base.model, votes=VoteConfig(symbols=symbols, weight=5.0, start_density=start_density))
        torch.manual_seed(0)
        model = SparlingModel(config, symbols, max_output_length=8, density=0.5).eval()
        with torch.no_grad():
            return float(model.loss(x, ys)[0])

    assert loss_at(0.5) > loss_at(0.1)  # at density 0.5 the votes add their loss; below it, not yet


def test_vote_symbols_must_be_output_symbols():
    base = get_experiment("digit_circle_mt", "smoke")
    with pytest.raises(ValueError, match="not output symbols"):
        SparlingModel(replace(base.model, votes=VoteConfig(symbols=("x",))), tuple("0123456789"), 8)


def test_votes_are_part_of_the_run_key_and_absent_votes_add_nothing_to_it():
    paper = get_experiment("digit_circle_mt", "paper").run_config()
    on = replace(paper, model=replace(paper.model, votes=VoteConfig(symbols=("1",))))
    assert run_key("digit_circle_mt.paper", on, 1) != run_key("digit_circle_mt.paper", paper, 1)
    assert "votes" not in json.dumps(_plain(paper))


@pytest.mark.parametrize("bad", [dict(symbols=()), dict(symbols=("a", "a")), dict(symbols=("a",), weight=0.0),
                                 dict(symbols=("a",), start_density=0.0), dict(symbols=("a",), start_density=1.5)])
def test_bad_vote_configs_are_refused(bad):
    with pytest.raises(ValueError):
        VoteConfig(**bad)
