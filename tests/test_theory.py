"""The theorem's quantities: δ*, α by enumeration, the information bound, E_m, the toy domain,
and the hold/snapshot training options its experiment uses."""

import itertools
import math
from collections import Counter

import numpy as np
import pytest

from sparling.annealing import density_key
from sparling.domains import Motif, Sample
from sparling.domains.digit_circle import DigitCircleDomain, theoretical_min_density
from sparling.domains.toy import ToySequenceConfig, ToySequenceDomain, slot_layouts
from sparling.experiments import (
    TOY_TRUE_DENSITY,
    get_experiment,
    get_or_train,
    theorem_points,
    training_state,
)
from sparling.metrics import (MapMotif, MotifConfusion, MotifIdentification, count_motif_matches, motif_errors,
                              motif_identification_error)
from sparling.store import RunStore
from sparling.theory import (
    AUTHORS_DIGIT_CIRCLE_LAYOUT,
    SlotLayout,
    authors_deletion_probability,
    binary_entropy_bits,
    channel_budget,
    density_target,
    information_bound_bits,
    minimal_density,
    minimal_density_from_samples,
    necessity_alpha,
    symbol_rates,
    theorem_k_scaling,
    toy_layout_entropy_bits,
)
from sparling.training import TrainingConfig, snapshot_name

# --- the per-channel budget ------------------------------------------------------------------


def _brute_force_ceiling(rates: dict[str, float], channels: int, per_channel: float) -> float:
    symbols = list(rates)
    best = 0.0
    for allocation in itertools.product(range(channels + 1), repeat=len(symbols)):
        if sum(allocation) <= channels:
            best = max(best, sum(min(rates[s], n * per_channel) for s, n in zip(symbols, allocation)))
    return best / sum(rates.values())


@pytest.mark.parametrize("case", range(40))
def test_channel_budget_greedy_is_the_best_allocation(case):
    rng = np.random.RandomState(case)
    rates = {f"s{i}": float(rng.choice([0.0, 0.2, 0.37, 0.5, 1.04, 2.0])) for i in range(rng.randint(1, 5))}
    if not sum(rates.values()):
        rates["s0"] = 0.4
    channels, positions = int(rng.randint(1, 7)), 100
    density = float(rng.choice([0.002, 0.0032, 0.005, 0.01]))
    budget = channel_budget(rates, channels, density, positions)
    assert budget.ceiling == pytest.approx(_brute_force_ceiling(rates, channels, density * positions))
    # the fewest channels with ceiling 1, by brute force over the channel count
    fewest = next(c for c in range(1, 40) if _brute_force_ceiling(rates, c, density * positions) >= 1 - 1e-12)
    assert budget.channels_to_cover == fewest
    assert sum(budget.channels.values()) <= channels


def test_channel_budget_of_equal_rates():
    # DigitCircle at its bar: each of the 10 digits occurs 0.449 times per image, each channel may
    # fire 0.502 times → one channel per digit covers everything; LaTeX-like rates do not fit.
    digits = {str(d): 0.4492 for d in range(10)}
    assert channel_budget(digits, 10, 5.022621e-05, 100 * 100).ceiling == 1.0
    assert channel_budget(digits, 10, 4.0e-05, 100 * 100).ceiling == pytest.approx(0.40 / 0.4492)
    skewed = {"(": 1.0, "x": 0.4}
    budget = channel_budget(skewed, 3, 0.4 / 1000, 1000)
    assert budget.channels == {"(": 2, "x": 1} and budget.ceiling == pytest.approx(1.2 / 1.4)
    assert budget.channels_to_cover == 4 and channel_budget(skewed, 4, 0.4 / 1000, 1000).ceiling == 1.0


def _identified(maps: list[np.ndarray], motifs: list[list[MapMotif]]) -> float:
    confusion = MotifConfusion()
    for m, truth in zip(maps, motifs):
        confusion.add(count_motif_matches(m, truth))
    errors = motif_errors(confusion, "majority")
    return (1 - errors.fne) * (1 - errors.ce)


@pytest.mark.parametrize("case", range(30))
def test_no_map_with_per_channel_budgets_beats_the_ceiling(case):
    # Random maps in which every channel fires exactly `per_channel · inputs` times, placed on the
    # true motifs as greedily as possible (each channel prefers one symbol), scored by the real
    # metrics: (1 − FNE)(1 − CE) never exceeds the ceiling of the empirical rates.
    rng = np.random.RandomState(case)
    inputs, length, channels = 6, 40, int(rng.randint(2, 5))
    symbols = ["a", "b", "c"][: rng.randint(1, 4)]
    motifs = []
    for _ in range(inputs):
        positions = rng.choice(length, size=rng.randint(1, 6), replace=False)
        weights = np.array([3.0, 1.0, 1.0])[: len(symbols)]
        motifs.append([MapMotif(str(rng.choice(symbols, p=weights / weights.sum())), (slice(p, p + 1),))
                       for p in positions])
    per_input = int(rng.randint(1, 3))
    maps = [np.zeros((channels, length)) for _ in range(inputs)]
    for c in range(channels):
        preferred = symbols[c % len(symbols)] if rng.rand() < 0.8 else str(rng.choice(symbols))
        spots = [(i, m.footprint[0].start) for i in range(inputs) for m in motifs[i] if m.symbol == preferred]
        spots += [(i, int(p)) for i in range(inputs) for p in rng.permutation(length)]  # then anywhere
        placed = set()
        for i, p in spots:
            if len(placed) == per_input * inputs:
                break
            if (i, p) not in placed:
                placed.add((i, p))
                maps[i][c, p] = 1.0 + rng.rand()
    rates = symbol_rates([Sample(np.zeros(length, np.float32), (), tuple(truth)) for truth in motifs])
    ceiling = channel_budget(rates, channels, per_input / length, length).ceiling
    assert _identified(maps, motifs) <= ceiling + 1e-12


def test_the_ceiling_is_reached_by_an_optimal_map():
    # One input, three "a" and one "b", two channels firing twice each: the ceiling gives "a" both
    # channels (3 of 4 motifs); a map doing exactly that identifies 3 of 4.
    truth = [MapMotif("a", (slice(p, p + 1),)) for p in (1, 3, 5)] + [MapMotif("b", (slice(7, 8),))]
    m = np.zeros((2, 10))
    m[0, [1, 3]] = 1.0
    m[1, [5, 9]] = 1.0
    budget = channel_budget({"a": 3.0, "b": 1.0}, 2, 2 / 10, 10)
    assert budget.ceiling == pytest.approx(0.75) and budget.channels == {"a": 2, "b": 0}
    assert _identified([m], [truth]) == pytest.approx(budget.ceiling)


@pytest.mark.parametrize("kwargs", [dict(channels=0), dict(positions=0), dict(density=0.0), dict(density=1.5),
                                    dict(rates={"a": -1.0, "b": 2.0}), dict(rates={"a": 0.0})])
def test_channel_budget_validation(kwargs):
    args = dict(rates={"a": 1.0}, channels=2, density=0.01, positions=100) | kwargs
    with pytest.raises(ValueError):
        channel_budget(**args)


def test_symbol_rates_count_per_input():
    samples = [Sample(np.zeros(1, np.float32), (), tuple(MapMotif(s, (slice(0, 1),)) for s in symbols))
               for symbols in (["a", "a", "b"], ["a"], [])]
    assert symbol_rates(samples) == {"a": 1.0, "b": 1 / 3}
    with pytest.raises(ValueError):
        symbol_rates([])


# --- δ* and the bar ------------------------------------------------------------------------------


def test_digit_circle_true_density_and_bar():
    delta = theoretical_min_density(DigitCircleDomain(), n=1000)
    assert delta == pytest.approx(4.492e-05, abs=5e-9)
    target = density_target(delta)
    assert density_key(target.bar) == "5.022621e-05"
    assert target.bar_index == 32
    assert target.bar == pytest.approx(0.5 * 0.75**32)
    assert target.bar_ratio == pytest.approx(1.118, abs=1e-3)


def test_minimal_density_from_samples_counts_motifs_per_position():
    domain = ToySequenceDomain()
    samples = [domain.sample_at(0, i) for i in range(200)]
    mean = np.mean([len(s.motifs) for s in samples])
    assert minimal_density_from_samples(samples, channels=4) == pytest.approx(mean / (4 * 64))
    with pytest.raises(ValueError, match="no samples"):
        minimal_density_from_samples([], channels=4)
    with pytest.raises(ValueError):
        minimal_density(-1.0, 4, 64)


# --- α-motif-necessity ---------------------------------------------------------------------------


def test_slot_layouts_match_the_authors_counts():
    assert [len(slot_layouts(11, k, 2)) for k in (3, 4, 5, 6)] == [84, 70, 21, 1]
    # an independent count: C(slots − (k−1)(gap−1), k)
    for slots, k, gap in itertools.product(range(1, 12), range(0, 5), range(1, 4)):
        assert len(slot_layouts(slots, k, gap)) == math.comb(max(slots - (k - 1) * (gap - 1), 0), k)


def test_authors_alpha_from_enumeration():
    alphas = necessity_alpha(AUTHORS_DIGIT_CIRCLE_LAYOUT, authors_deletion_probability)
    assert [round(alphas[k], 3) for k in (4, 5, 6)] == [0.198, 0.196, 0.071]
    assert round(sum(alphas.values()), 3) == 0.465


def test_alpha_with_symbols_equals_alpha_of_positions():
    """Brute force over (slots, symbols) layouts on a tiny case: symbols cancel out."""
    layout, symbols = SlotLayout(slots=5, min_gap=2, counts=(1, 2, 3)), 2
    expected = necessity_alpha(layout)
    for k in (2, 3):
        big = [(p, s) for p in slot_layouts(5, k, 2) for s in itertools.product(range(symbols), repeat=k)]
        small = [(p, s) for p in slot_layouts(5, k - 1, 2) for s in itertools.product(range(symbols), repeat=k - 1)]
        p_big, p_small = 1 / 3 / len(big), 1 / 3 / len(small)
        arrivals = Counter((tuple(x for j, x in enumerate(p) if j != i), tuple(x for j, x in enumerate(s) if j != i))
                           for p, s in big for i in range(k))
        brute = sum(min(n * p_big / k, p_small) for n in arrivals.values())
        assert brute == pytest.approx(expected[k])


def test_alpha_of_a_layout_with_one_count_is_empty():
    assert necessity_alpha(SlotLayout(8, 2, (3,))) == {}


# --- information bound ---------------------------------------------------------------------------


def test_binary_entropy_and_bound():
    assert binary_entropy_bits(0.5) == pytest.approx(1.0)
    assert binary_entropy_bits(0.0) == binary_entropy_bits(1.0) == 0.0
    assert information_bound_bits(0.5, 10, 2, 0.0) == pytest.approx(20.0)
    low, high = information_bound_bits([1e-3, 1e-2], 64, 4, 2.0)
    assert low < high
    with pytest.raises(ValueError):
        information_bound_bits(1.5, 10, 2, 1.0)


def test_toy_layout_entropy_by_brute_force():
    config = ToySequenceConfig(num_symbols=2, slots=4, cell=3, width=2, min_gap=2, counts=(1, 2), min_distance=1)
    # every (count, slots, symbols, offsets) outcome and its probability
    probabilities = []
    for k in config.counts:
        layouts = slot_layouts(config.slots, k, config.min_gap)
        outcomes = len(layouts) * config.num_symbols**k * (config.cell - config.width + 1) ** k
        probabilities += [1 / len(config.counts) / outcomes] * outcomes
    assert sum(probabilities) == pytest.approx(1.0)
    assert toy_layout_entropy_bits(config) == pytest.approx(-sum(p * math.log2(p) for p in probabilities))


def test_theorem_k_scaling():
    assert theorem_k_scaling(6, 4.5, 17 * 17, 100, 0.465) == pytest.approx(36 * 289 * 10_000 / (4.5 * 0.465**2))
    with pytest.raises(ValueError):
        theorem_k_scaling(6, 4.5, 289, 100, 0.0)


# --- E_m -----------------------------------------------------------------------------------------

SYMBOLS = ("a", "b")
MOTIFS = (Motif("a", (slice(2, 5),)), Motif("b", (slice(10, 13),)))


def one_hot_map(points, channels=2, length=16):
    m = np.zeros((channels, length), dtype=np.float32)
    for channel, position in points:
        m[channel, position] = 1.0
    return m


def motif_error(points, motifs=MOTIFS):
    return motif_identification_error([one_hot_map(points)], [motifs], SYMBOLS)


def test_motif_error_hand_built_cases():
    assert motif_error([(0, 3), (1, 11)]) == 0.0  # perfect
    assert motif_error([(0, 2), (1, 12)]) == 0.0  # shifted inside the footprints
    assert motif_error([(1, 4), (0, 10)]) == 0.0  # permuted channels
    assert motif_error([(0, 3), (0, 4), (1, 11)]) == pytest.approx(1 - 1 / 3)  # duplicate in one footprint
    assert motif_error([(0, 3), (1, 3), (1, 11)]) == pytest.approx(1 - 1 / 3)  # two channels in one footprint
    assert motif_error([(0, 3)]) == pytest.approx(0.5)  # a missing motif
    assert motif_error([(0, 3), (1, 11), (1, 7)]) == pytest.approx(1 - 2 / 3)  # an extra activation outside
    assert motif_error([(0, 3), (0, 11)]) == pytest.approx(0.5)  # one channel for both symbols
    assert motif_error([]) == 1.0


def test_motif_error_permutation_is_chosen_over_all_samples():
    result = MotifIdentification(SYMBOLS, 2)
    result.add(one_hot_map([(1, 3), (0, 11)]), MOTIFS)
    result.add(one_hot_map([(1, 3), (0, 11)]), MOTIFS)
    result.add(one_hot_map([(0, 3), (1, 11)]), MOTIFS)  # the minority assignment counts as wrong
    assert result.permutation == {"a": 1, "b": 0}
    assert result.error == pytest.approx(1 - 4 / 6)
    with pytest.raises(ValueError, match="channels"):
        result.add(np.zeros((3, 16)), MOTIFS)


# --- the toy domain ------------------------------------------------------------------------------

TOY = ToySequenceDomain()


def test_toy_is_deterministic_and_index_addressed():
    a, b = TOY.sample_at(3, 17), TOY.sample_at(3, 17)
    assert np.array_equal(a.x, b.x) and a.y == b.y and a.motifs == b.motifs
    assert not np.array_equal(a.x, TOY.sample_at(3, 18).x)
    assert a.x.shape == (64,) and a.x.dtype == np.float32


def test_toy_samples_satisfy_the_assumptions():
    config, rf = TOY.config, TOY.config.max_receptive_field
    counts = Counter()
    for i in range(500):
        sample = TOY.sample_at(0, i)
        counts[len(sample.motifs)] += 1
        starts = [m.footprint[0].start for m in sample.motifs]
        assert starts == sorted(starts)
        assert tuple(m.symbol for m in sample.motifs) == sample.y  # y lists every motif, left to right
        for m in sample.motifs:
            assert m.footprint[0].stop - m.footprint[0].start == config.width
        # non-overlapping receptive-field cells: [start − rf//2, stop + rf//2) are disjoint
        for left, right in zip(sample.motifs, sample.motifs[1:]):
            assert left.footprint[0].stop + rf // 2 <= right.footprint[0].start - rf // 2
    assert set(counts) == set(config.counts)
    assert min(counts.values()) > 120  # uniform over the counts


def test_toy_motif_is_its_pattern_plus_noise():
    clean = ToySequenceDomain(ToySequenceConfig(noise=0.0))
    sample = clean.sample_at(0, 5)
    for motif in sample.motifs:
        assert np.array_equal(sample.x[motif.footprint], clean.patterns[clean.symbols.index(motif.symbol)])
    mask = np.ones(64, bool)
    for motif in sample.motifs:
        mask[motif.footprint] = False
    assert not sample.x[mask].any()
    patterns = clean.patterns
    distances = [(p != q).sum() for i, p in enumerate(patterns) for q in patterns[i + 1:]]
    assert min(distances) >= clean.config.min_distance == 3


def test_toy_true_density():
    assert TOY_TRUE_DENSITY == pytest.approx(3 / (4 * 64))
    samples = [TOY.sample_at(-2, i) for i in range(3000)]
    assert minimal_density_from_samples(samples, 4) == pytest.approx(TOY_TRUE_DENSITY, rel=0.03)


@pytest.mark.parametrize("kwargs", [{"width": 9}, {"counts": (5,)}, {"noise": -1.0}, {"num_symbols": 0},
                                    {"num_symbols": 6}, {"min_distance": 6}])
def test_toy_config_validation(kwargs):
    with pytest.raises(ValueError):
        ToySequenceConfig(**kwargs)


# --- hold density and snapshots (the theorem's experiment, preset smoke) -------------------------


def test_hold_density_and_snapshots(tmp_path):
    experiment = get_experiment("toy_density_2x", "smoke")
    store = RunStore(tmp_path)
    run = get_or_train(experiment, 1, store, device="cpu", progress=False)
    state = training_state(run)
    hold = experiment.training.hold_density
    assert hold == pytest.approx(2 * TOY_TRUE_DENSITY)
    densities = [h["density"] for h in state.history]
    assert densities[:3] == pytest.approx([0.5, 0.375, 0.28125])  # annealing down the grid ...
    assert state.density == hold and densities[-1] == hold  # ... then held exactly at 2·δ*
    assert state.samples == experiment.training.max_samples
    every = experiment.training.snapshot_every
    assert [n for n in run.checkpoint_names() if n.startswith("snapshot-")] == \
        [snapshot_name(s) for s in range(every, state.samples + 1, every)]
    points = theorem_points(experiment, 1, 16, store, "cpu")
    held_from = next(h["samples"] for h in state.history if h["density"] == hold) - every  # the first held phase
    assert [p.samples for p in points] == list(range(held_from + every, state.samples + 1, every))
    assert points and all(p.density == hold for p in points)
    assert all(0 <= p.error <= 1 and 0 <= p.motif_error <= 1 for p in points)
    assert theorem_points(experiment, 1, 16, store, "cpu") == points  # cached


@pytest.mark.parametrize("kwargs, message", [
    ({"hold_density": 0.7}, "hold_density must be in (0, initial_density]"),
    ({"hold_density": -0.1}, "hold_density must be in (0, initial_density]"),
    ({"batch_size": 4, "snapshot_every": 6}, "snapshot_every (6) must be a positive multiple of batch_size"),
])
def test_hold_and_snapshot_validation(kwargs, message):
    with pytest.raises(ValueError) as error:
        TrainingConfig(**{"batch_size": 4, "val_every": 4, **kwargs})
    assert message in str(error.value)
