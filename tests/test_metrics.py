"""Tests for sparling.metrics (spec §6.1–§6.5), on hand-built motif maps."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparling.metrics import (
    NONE,
    MotifConfusion,
    bootstrap_mean,
    channel_to_symbol_hungarian,
    channel_to_symbol_majority,
    confusion_error_hungarian,
    confusion_error_majority,
    count_motif_matches,
    default_channel_names,
    edit_distance_accuracy,
    end_to_end_error,
    exact_match_accuracy,
    false_negative_error,
    false_positive_error,
    match_motifs,
    motif_errors,
)


@dataclass(frozen=True)
class M:
    symbol: str
    footprint: tuple[slice, ...]


def box(r0: int, r1: int, c0: int, c1: int) -> tuple[slice, slice]:
    return (slice(r0, r1), slice(c0, c1))


MOTIFS = [M("0", box(0, 3, 0, 3)), M("1", box(5, 8, 5, 8))]


def empty_map(channels: int = 3, size: int = 10) -> np.ndarray:
    return np.zeros((channels, size, size), dtype=np.float32)


def perfect_map() -> np.ndarray:
    m = empty_map()
    m[0, 1, 1] = 1.0  # A inside "0"
    m[1, 6, 6] = 2.0  # B inside "1"
    return m


def conf_of(*pair_lists) -> MotifConfusion:
    c = MotifConfusion()
    for pairs in pair_lists:
        c.add(pairs)
    return c


def reference_match(mot, motifs, names):
    """Literal transcription of the spec §6.1 pseudocode (dense, slow)."""
    mot = np.array(mot, copy=True)
    out = []
    for s in motifs:
        region = mot[(slice(None),) + s.footprint].reshape(mot.shape[0], -1)
        v = region.max(axis=1) if region.shape[1] else np.zeros(mot.shape[0])
        mot[(slice(None),) + s.footprint] = 0
        out.append((NONE if np.all(v == 0) else names[int(np.argmax(v))], s.symbol))
    for idx in zip(*np.nonzero(mot)):
        out.append((names[idx[0]], NONE))
    return out


# --- matching -------------------------------------------------------------------------------


def test_perfect_map():
    pairs = match_motifs(perfect_map(), MOTIFS)
    assert pairs == [("A", "0"), ("B", "1")]
    e = motif_errors(conf_of(pairs), "hungarian")
    assert (e.fpe, e.fne, e.ce, e.ce_method) == (0.0, 0.0, 0.0, "hungarian")
    assert confusion_error_majority(conf_of(pairs)) == 0.0


def test_permuted_channels_give_zero_ce():
    m = empty_map()
    m[2, 1, 1] = 1.0  # C detects "0"
    m[0, 6, 6] = 1.0  # A detects "1"
    conf = conf_of(match_motifs(m, MOTIFS), match_motifs(m, MOTIFS))
    assert channel_to_symbol_hungarian(conf) == {"C": "0", "A": "1"}
    assert channel_to_symbol_majority(conf) == {"C": "0", "A": "1"}
    assert confusion_error_hungarian(conf) == 0.0
    assert confusion_error_majority(conf) == 0.0


def test_spurious_activation_outside_footprints():
    m = perfect_map()
    m[1, 9, 9] = 0.5  # leftover -> (B, none)
    pairs = match_motifs(m, MOTIFS)
    assert pairs == [("A", "0"), ("B", "1"), ("B", NONE)]
    conf = conf_of(pairs)
    # FPE = #(true none) / #(pred != none) = 1 / (2 matched + 1 leftover) = 1/3
    assert false_positive_error(conf) == pytest.approx(1 / 3)
    assert false_negative_error(conf) == 0.0
    # CE ignores pairs with a "none" side
    assert confusion_error_hungarian(conf) == 0.0


def test_deleted_motif_fne():
    motifs = [M(s, box(0, 2, 2 * i, 2 * i + 2)) for i, s in enumerate("0123")]
    m = np.zeros((4, 2, 8))
    for i in range(3):  # motif "3" has no activation
        m[i, 0, 2 * i] = 1.0
    pairs = match_motifs(m, motifs)
    assert pairs[-1] == (NONE, "3")
    conf = conf_of(pairs)
    assert false_negative_error(conf) == pytest.approx(1 / 4)
    assert false_positive_error(conf) == 0.0


def test_one_channel_two_symbols():
    m = empty_map()
    m[0, 1, 1] = 1.0
    m[0, 6, 6] = 1.0  # A detects both "0" and "1"
    conf = conf_of(match_motifs(m, MOTIFS))
    # core matrix (rows 0,1; col A) = [[1],[1]]: Hungarian matches 1 of 2 -> CE 1/2
    assert confusion_error_hungarian(conf) == pytest.approx(0.5)
    # majority: A -> "0" (tie, first seen) -> the "1" pair is wrong -> CE 1/2
    assert channel_to_symbol_majority(conf) == {"A": "0"}
    assert confusion_error_majority(conf) == pytest.approx(0.5)


def test_majority_below_hungarian_when_many_to_one():
    # A: "0" x3; B: "0" x2, "1" x1. Core matrix rows (0,1) x cols (A,B) = [[3,2],[0,1]].
    # Hungarian: A->0, B->1 matches 3+1 = 4 of 6 -> CE 1/3.
    # Majority: A->0, B->0 matches 3+2 = 5 of 6 -> CE 1/6.
    conf = conf_of([("A", "0")] * 3 + [("B", "0")] * 2 + [("B", "1")])
    assert channel_to_symbol_hungarian(conf) == {"A": "0", "B": "1"}
    assert channel_to_symbol_majority(conf) == {"A": "0", "B": "0"}
    assert confusion_error_hungarian(conf) == pytest.approx(1 / 3)
    assert confusion_error_majority(conf) == pytest.approx(1 / 6)
    assert motif_errors(conf, "majority").ce == pytest.approx(1 / 6)


def test_majority_tie_break_first_seen():
    conf = conf_of([("A", "1"), ("A", "0"), ("B", "0")], [("A", "0"), ("A", "1")])
    assert channel_to_symbol_majority(conf) == {"A": "1", "B": "0"}


def test_several_activations_in_one_footprint_count_once():
    m = empty_map()
    m[0, 0, 0] = 1.0
    m[0, 2, 2] = 1.0
    m[1, 1, 1] = 3.0  # strongest -> B wins
    m[2, 1, 2] = 0.5
    assert match_motifs(m, MOTIFS[:1]) == [("B", "0")]


def test_channel_tie_goes_to_lowest_index():
    m = empty_map()
    m[2, 0, 0] = 1.0
    m[1, 2, 2] = 1.0
    assert match_motifs(m, MOTIFS[:1]) == [("B", "0")]


def test_activations_are_consumed():
    motifs = [M("0", box(0, 4, 0, 4)), M("1", box(2, 6, 2, 6))]
    m = empty_map()
    m[0, 3, 3] = 1.0  # inside both footprints: consumed by "0"
    assert match_motifs(m, motifs) == [("A", "0"), (NONE, "1")]
    m[1, 5, 5] = 1.0  # only inside "1"
    assert match_motifs(m, motifs) == [("A", "0"), ("B", "1")]
    # the consumed footprint is zeroed in all channels
    m[2, 0, 0] = 5.0
    assert match_motifs(m, motifs) == [("C", "0"), ("B", "1")]


def test_one_dimensional_maps():
    m = np.zeros((2, 20))
    m[1, 3] = 1.0
    m[0, 12] = 1.0
    m[0, 19] = 1.0  # leftover
    motifs = [M("x", (slice(0, 5),)), M("y", (slice(10, 15),)), M("z", (slice(15, 18),))]
    assert match_motifs(m, motifs) == [("B", "x"), ("A", "y"), (NONE, "z"), ("A", NONE)]


def test_input_not_modified_and_names():
    m = perfect_map()
    before = m.copy()
    assert match_motifs(m, MOTIFS, channel_names=["#0", "#1", "#2"]) == [("#0", "0"), ("#1", "1")]
    np.testing.assert_array_equal(m, before)
    assert default_channel_names(10)[-1] == "J"
    assert default_channel_names(26)[-1] == "Z"
    assert default_channel_names(32)[:2] == ["#0", "#1"]


def test_leftovers_and_counts():
    m = perfect_map()
    m[2, 9, 0:5] = 1.0
    m[0, 9, 9] = 1.0
    pairs = match_motifs(m, MOTIFS)
    assert pairs == [("A", "0"), ("B", "1"), ("A", NONE)] + [("C", NONE)] * 5
    assert count_motif_matches(m, MOTIFS) == Counter(pairs)
    assert list(count_motif_matches(m, MOTIFS)) == list(Counter(pairs))


def test_bad_input():
    with pytest.raises(ValueError, match="motif_map"):
        match_motifs(np.zeros(5), [])
    with pytest.raises(ValueError, match="footprint"):
        match_motifs(np.zeros((2, 4, 4)), [M("0", (slice(0, 2),))])
    with pytest.raises(ValueError, match="footprint"):
        match_motifs(np.zeros((2, 4, 4)), [M("0", (slice(0, 4, 2), slice(0, 2)))])
    with pytest.raises(ValueError, match="non-negative"):
        match_motifs(-np.ones((2, 4, 4)), [])
    with pytest.raises(ValueError, match="non-negative"):
        match_motifs(np.full((2, 4, 4), np.nan), [])
    with pytest.raises(ValueError, match="channel_names"):
        match_motifs(np.zeros((2, 4, 4)), [], channel_names=["A"])
    with pytest.raises(ValueError, match="ce_method"):
        motif_errors(MotifConfusion(), "bogus")  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 4),
    st.lists(st.integers(1, 6), min_size=1, max_size=2),
    st.data(),
)
def test_matches_reference_pseudocode(channels, spatial, data):
    shape = (channels, *spatial)
    size = int(np.prod(shape))
    flat = data.draw(st.lists(st.sampled_from([0.0, 0.0, 0.0, 0.5, 1.0, 2.0]), min_size=size, max_size=size))
    m = np.array(flat).reshape(shape)
    motifs = []
    for i in range(data.draw(st.integers(0, 4))):
        fp = []
        for n in spatial:
            a = data.draw(st.integers(0, n - 1))
            fp.append(slice(a, data.draw(st.integers(a + 1, n))))
        motifs.append(M(str(i % 3), tuple(fp)))
    names = default_channel_names(channels)
    assert match_motifs(m, motifs) == reference_match(m, motifs, names)


# --- confusion table ------------------------------------------------------------------------


def test_table_orientation_rows_true_columns_pred():
    conf = conf_of([("A", "0"), ("A", "0"), ("B", NONE), (NONE, "1")])
    t = conf.table()
    assert list(t.index) == ["0", "1", NONE] and t.index.name == "true"
    assert list(t.columns) == ["A", "B", NONE] and t.columns.name == "pred"
    assert t.loc["0", "A"] == 2
    assert t.loc[NONE, "B"] == 1
    assert t.loc["1", NONE] == 1
    assert t.to_numpy().sum() == 4
    rn = conf.row_normalised()
    np.testing.assert_allclose(rn.sum(axis=1).to_numpy(), [1.0, 1.0, 1.0])


def test_table_declared_order_and_merge():
    a = MotifConfusion(channels=["A", "B", "C"], symbols=["0", "1"]).add([("B", "1")])
    b = MotifConfusion().add({("A", "0"): 3, ("D", "2"): 1})
    t = a.merge(b).table()
    assert list(t.columns) == ["A", "B", "C", "D", NONE]
    assert list(t.index) == ["0", "1", "2", NONE]
    assert t.loc["0", "A"] == 3 and t.loc["1", "B"] == 1 and t["C"].sum() == 0
    assert a.total == 1 and a.merge(b).total == 5


def test_empty_confusion_is_nan():
    conf = MotifConfusion()
    e = motif_errors(conf, "hungarian")
    assert math.isnan(e.fpe) and math.isnan(e.fne) and math.isnan(e.ce)
    assert math.isnan(confusion_error_majority(conf))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["A", "B", "C", NONE]), st.sampled_from(["0", "1", "2", "3", NONE]))))
def test_error_ranges(pairs):
    pairs = [p for p in pairs if p != (NONE, NONE)]
    conf = conf_of(pairs)
    h, mj = confusion_error_hungarian(conf), confusion_error_majority(conf)
    for v in (h, mj, false_positive_error(conf), false_negative_error(conf)):
        assert math.isnan(v) or 0.0 <= v <= 1.0
    assert math.isnan(h) == math.isnan(mj)
    if not math.isnan(h):
        assert h >= mj - 1e-12


# --- end to end -----------------------------------------------------------------------------


def test_edit_distance_accuracy():
    assert edit_distance_accuracy("abc", "abc") == 1.0
    assert edit_distance_accuracy("abc", "abd") == pytest.approx(2 / 3)
    assert edit_distance_accuracy([], []) == 1.0
    assert edit_distance_accuracy([], ["a"]) == 0.0
    assert edit_distance_accuracy("ab", "ba") == 0.0
    assert edit_distance_accuracy(["\\frac", "x"], ["\\frac"]) == 0.5  # tokens, not chars
    assert edit_distance_accuracy([1, 2, 3, 4], [1, 3, 4]) == 0.75


def test_end_to_end_and_exact():
    preds = [["1", "2"], ["3"], []]
    trues = [["1", "2"], ["4"], []]
    assert end_to_end_error(preds, trues) == pytest.approx(1 - (1 + 0 + 1) / 3)
    assert exact_match_accuracy(preds, trues) == pytest.approx(2 / 3)
    assert exact_match_accuracy([("1",)], [["1"]]) == 1.0
    with pytest.raises(ValueError, match="length"):
        end_to_end_error([["1"]], [])


# --- bootstrap ------------------------------------------------------------------------------


def test_bootstrap_constant_zero_width():
    mean, low, high = bootstrap_mean([0.3] * 9)
    assert mean == pytest.approx(0.3) and low == pytest.approx(0.3) and high == pytest.approx(0.3)


def test_bootstrap_matches_direct_numpy():
    values = [0.1, 0.5, 0.2, 0.9, 0.3, float("nan"), 0.4]
    clean = np.array([v for v in values if not math.isnan(v)])
    means = np.random.RandomState(0).choice(clean, size=(1000, len(clean))).mean(axis=1)
    expected = (clean.mean(), np.quantile(means, 0.025), np.quantile(means, 0.975))
    assert bootstrap_mean(values) == pytest.approx(expected, abs=0)
    assert bootstrap_mean(values) == bootstrap_mean(clean.tolist())
    lo, hi = bootstrap_mean(values, count=200, confidence=0.2)[1:]
    means200 = np.random.RandomState(0).choice(clean, size=(200, len(clean))).mean(axis=1)
    assert (lo, hi) == (np.quantile(means200, 0.1), np.quantile(means200, 0.9))


def test_bootstrap_empty():
    assert all(math.isnan(v) for v in bootstrap_mean([]))
    assert all(math.isnan(v) for v in bootstrap_mean([float("nan")]))


def test_motifs_on_map_are_the_blocks_a_footprint_touches():
    from sparling.metrics import motifs_on_map

    motif = SimpleNamespace(symbol="7", footprint=(slice(5, 13), slice(8, 12)))
    (coarse,) = motifs_on_map([motif], 4)
    assert coarse.symbol == "7" and coarse.footprint == (slice(1, 4), slice(2, 3))
    assert motifs_on_map([motif], 1) == [motif]
    with pytest.raises(ValueError, match="stride must be >= 1"):
        motifs_on_map([motif], 0)


def test_a_strided_map_activation_inside_the_touched_block_is_a_match():
    from sparling.metrics import motifs_on_map

    motif = SimpleNamespace(symbol="7", footprint=(slice(5, 13), slice(8, 12)))
    coarse_map = np.zeros((2, 6, 6))
    coarse_map[1, 3, 2] = 1.0  # block rows 12..15, cols 8..11: touches the footprint's last row
    assert match_motifs(coarse_map, motifs_on_map([motif], 4)) == [("B", "7")]
    coarse_map[1, 3, 2], coarse_map[0, 4, 2] = 0.0, 1.0  # rows 16..19: outside
    assert match_motifs(coarse_map, motifs_on_map([motif], 4)) == [("none", "7"), ("A", "none")]
