"""Motif and end-to-end metrics (spec §6.1–§6.5), in pure numpy/scipy.

Motif maps are arrays of shape ``(C, *spatial)`` (any number of spatial axes), non-negative,
as produced by the sparse layer in eval mode. Ground-truth motifs are any objects with a
``symbol`` and a rectangular ``footprint`` (one slice per spatial axis).

Confusion orientation: ``MotifConfusion.table()`` has **rows = true symbols (+ "none")** and
**columns = predicted channels (+ "none")**.

All errors are fractions in [0, 1] (multiply by 100 for the paper's percentages). A ratio
whose denominator is 0 is ``nan``.
"""

from __future__ import annotations

import string
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import editdistance
import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

__all__ = [
    "NONE",
    "METRIC_NAMES",
    "CEMethod",
    "MotifLike",
    "MotifConfusion",
    "MotifErrors",
    "default_channel_names",
    "MapMotif",
    "motifs_on_map",
    "match_motifs",
    "count_motif_matches",
    "false_negative_error",
    "false_positive_error",
    "channel_to_symbol_hungarian",
    "channel_to_symbol_majority",
    "confusion_error_hungarian",
    "confusion_error_majority",
    "motif_errors",
    "edit_distance_accuracy",
    "end_to_end_error",
    "exact_match_accuracy",
    "bootstrap_mean",
    "MotifIdentification",
    "motif_identification_error",
]

METRIC_NAMES = ("FPE", "FNE", "CE", "E2EE")
"""The reported errors, in the paper's order."""

NONE = "none"
"""Label for "no prediction" (pred side) and "no true motif" (true side)."""

CEMethod = Literal["hungarian", "majority"]
Pair = tuple[str, str]


class MotifLike(Protocol):
    """A ground-truth motif: a symbol and a rectangle in the map's spatial axes."""

    @property
    def symbol(self) -> str: ...

    @property
    def footprint(self) -> tuple[slice, ...]: ...


# ---------------------------------------------------------------------------------------------
# §6.1 matching
# ---------------------------------------------------------------------------------------------


def default_channel_names(num_channels: int) -> list[str]:
    """'A', 'B', ... for at most 26 channels, else '#0', '#1', ...."""
    if num_channels <= len(string.ascii_uppercase):
        return list(string.ascii_uppercase[:num_channels])
    return [f"#{i}" for i in range(num_channels)]


def _footprint_bounds(footprint: Sequence[slice], spatial: tuple[int, ...]) -> np.ndarray:
    """Resolve a footprint to half-open bounds, shape (len(spatial), 2), numpy semantics."""
    footprint = tuple(footprint)
    if len(footprint) != len(spatial):
        raise ValueError(
            f"footprint {footprint!r} has {len(footprint)} slices but motif_map has "
            f"{len(spatial)} spatial dims {spatial}"
        )
    bounds = np.empty((len(spatial), 2), dtype=np.int64)
    for d, (s, size) in enumerate(zip(footprint, spatial)):
        if not isinstance(s, slice) or s.step not in (None, 1):
            raise ValueError(f"footprint entries must be slices with step 1, got {s!r}")
        start, stop, _ = s.indices(size)
        bounds[d] = start, stop
    return bounds


@dataclass(frozen=True)
class MapMotif:
    """A ground-truth motif with its footprint in the coordinates of a coarser motif map."""

    symbol: str
    footprint: tuple[slice, ...]


def motifs_on_map(true_motifs: Iterable[MotifLike], stride: int) -> list[MotifLike]:
    """Footprints in input pixels → footprints on a map with one position per ``stride``-wide
    block (a strided ĝ): the blocks the footprint touches. ``stride`` 1 returns the motifs."""
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    if stride == 1:
        return list(true_motifs)
    return [MapMotif(m.symbol, tuple(slice(f.start // stride, -(-f.stop // stride)) for f in m.footprint))
            for m in true_motifs]


def _match(
    motif_map: np.ndarray,
    true_motifs: Iterable[MotifLike],
    channel_names: Sequence[str] | None,
) -> tuple[list[Pair], list[str], np.ndarray]:
    """Core of §6.1 on the nonzero entries only (no copy of the dense map).

    Returns (pairs for the true motifs in order, channel names, leftover nonzero count per
    channel, shape (C,)).
    """
    m = np.asarray(motif_map)
    if m.ndim < 2:
        raise ValueError(f"motif_map must have shape (C, *spatial) with >= 1 spatial dim, got {m.shape}")
    num_channels, spatial = m.shape[0], m.shape[1:]
    names = default_channel_names(num_channels) if channel_names is None else list(channel_names)
    if len(names) != num_channels:
        raise ValueError(f"channel_names has {len(names)} names but motif_map has {num_channels} channels")

    # C-order flat indices of nonzeros (negatives and NaNs included); the boolean route is
    # ~30x faster than np.nonzero on a float map.
    flat = np.flatnonzero(m != 0)
    values = m.reshape(-1)[flat]
    if values.size and not np.all(values > 0):
        raise ValueError("motif_map must be non-negative (and not NaN)")
    channels, *spatial_idx = np.unravel_index(flat, m.shape)
    coords = np.stack(spatial_idx, axis=0)  # (ndim_spatial, K)
    alive = np.ones(values.shape[0], dtype=bool)

    pairs: list[Pair] = []
    for motif in true_motifs:
        bounds = _footprint_bounds(motif.footprint, spatial)
        inside = alive & np.all((coords >= bounds[:, :1]) & (coords < bounds[:, 1:]), axis=0)
        if not inside.any():
            pairs.append((NONE, motif.symbol))
            continue
        idx = np.flatnonzero(inside)
        vals = values[idx]
        # argmax over channels of the per-channel max = lowest channel attaining the overall max
        best = channels[idx[vals == vals.max()]].min()
        pairs.append((names[best], motif.symbol))
        alive[idx] = False  # consumed in every channel
    leftover = np.bincount(channels[alive], minlength=num_channels)
    return pairs, names, leftover


def match_motifs(
    motif_map: np.ndarray,
    true_motifs: Iterable[MotifLike],
    channel_names: Sequence[str] | None = None,
) -> list[Pair]:
    """Spec §6.1: (pred, true) pairs for one sample.

    ``motif_map``: (C, *spatial), non-negative. For each true motif, in order: the channel
    with the largest value inside its footprint (ties -> lowest channel index), or "none" if
    the footprint is all zero; the footprint is then zeroed in all channels. Then one
    (channel, "none") pair per remaining nonzero element, in C order (grouped by channel).
    The input is not modified.
    """
    pairs, names, leftover = _match(motif_map, true_motifs, channel_names)
    for name, n in zip(names, leftover.tolist()):
        pairs.extend([(name, NONE)] * n)
    return pairs


def count_motif_matches(
    motif_map: np.ndarray,
    true_motifs: Iterable[MotifLike],
    channel_names: Sequence[str] | None = None,
) -> Counter[Pair]:
    """Same as ``Counter(match_motifs(...))`` (same key order) without building the list.

    Use this on the hot path: leftover false positives are counted per channel.
    """
    pairs, names, leftover = _match(motif_map, true_motifs, channel_names)
    counts: Counter[Pair] = Counter(pairs)
    for name, n in zip(names, leftover.tolist()):
        if n:
            counts[(name, NONE)] += n
    return counts


# ---------------------------------------------------------------------------------------------
# confusion accumulation
# ---------------------------------------------------------------------------------------------


class MotifConfusion:
    """Counts of (pred, true) pairs accumulated over samples.

    ``channels`` / ``symbols`` optionally fix the leading column / row order of ``table()``
    (e.g. to show channels that never fire); others follow in first-seen order, and "none"
    is always last. The first-seen order of (pred, true) keys is kept: it is the tie-break
    of the majority map (as ``Counter.most_common`` on the pair stream in the original).
    """

    def __init__(self, channels: Sequence[str] = (), symbols: Sequence[str] = ()) -> None:
        self.channels = [c for c in channels if c != NONE]
        self.symbols = [s for s in symbols if s != NONE]
        self.counts: Counter[Pair] = Counter()

    def add(self, pairs: Iterable[Pair] | Mapping[Pair, int]) -> MotifConfusion:
        """Add pairs (an iterable of (pred, true)) or a mapping (pred, true) -> count."""
        self.counts.update(pairs)
        return self

    def merge(self, other: MotifConfusion) -> MotifConfusion:
        """A new confusion with both counts (self's keys first)."""
        out = MotifConfusion(
            self.channels + [c for c in other.channels if c not in self.channels],
            self.symbols + [s for s in other.symbols if s not in self.symbols],
        )
        out.counts.update(self.counts)
        out.counts.update(other.counts)
        return out

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def _labels(self) -> tuple[list[str], list[str]]:
        """(row labels = true symbols, column labels = pred channels), each without "none"."""
        rows, cols = dict.fromkeys(self.symbols), dict.fromkeys(self.channels)
        for pred, true in self.counts:
            if true != NONE:
                rows.setdefault(true)
            if pred != NONE:
                cols.setdefault(pred)
        return list(rows), list(cols)

    def table(self) -> pd.DataFrame:
        """Counts, rows = true symbols + "none", columns = predicted channels + "none"."""
        rows, cols = self._labels()
        rows, cols = rows + [NONE], cols + [NONE]
        r, c = {s: i for i, s in enumerate(rows)}, {s: i for i, s in enumerate(cols)}
        mat = np.zeros((len(rows), len(cols)), dtype=np.int64)
        for (pred, true), n in self.counts.items():
            mat[r[true], c[pred]] += n
        df = pd.DataFrame(mat, index=pd.Index(rows, name="true"), columns=pd.Index(cols, name="pred"))
        return df

    def row_normalised(self) -> pd.DataFrame:
        """``table()`` with each row divided by its sum (all-zero rows stay 0)."""
        t = self.table().astype(float)
        sums = t.sum(axis=1)
        return t.div(sums.where(sums > 0, 1.0), axis=0)

    def __repr__(self) -> str:
        return f"MotifConfusion(total={self.total}, pairs={len(self.counts)})"


# ---------------------------------------------------------------------------------------------
# §6.2 FNE / FPE, §6.3 CE
# ---------------------------------------------------------------------------------------------


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den else float("nan")


def false_negative_error(conf: MotifConfusion) -> float:
    """FNE = #(true motif, pred "none") / #true motifs. nan if there are no true motifs."""
    missed = sum(n for (p, t), n in conf.counts.items() if t != NONE and p == NONE)
    total = sum(n for (p, t), n in conf.counts.items() if t != NONE)
    return _ratio(missed, total)


def false_positive_error(conf: MotifConfusion) -> float:
    """FPE = #(pred channel, true "none") / #(pred != "none"). nan if nothing was predicted."""
    spurious = sum(n for (p, t), n in conf.counts.items() if p != NONE and t == NONE)
    predicted = sum(n for (p, t), n in conf.counts.items() if p != NONE)
    return _ratio(spurious, predicted)


def _core_matrix(conf: MotifConfusion) -> tuple[np.ndarray, list[str], list[str]]:
    """Counts without "none", shape (#symbols, #channels), with (symbols, channels)."""
    table = conf.table()
    core = table.drop(index=NONE, columns=NONE)
    return core.to_numpy(), list(core.index), list(core.columns)


def channel_to_symbol_hungarian(conf: MotifConfusion) -> dict[str, str]:
    """One-to-one channel -> symbol map maximising matched counts (Hungarian, rectangular).

    Only assigned channels appear (min(#channels, #symbols) of them); an assignment may have
    count 0.
    """
    mat, symbols, channels = _core_matrix(conf)
    if mat.size == 0:
        return {}
    rows, cols = linear_sum_assignment(-mat)
    return {channels[c]: symbols[r] for r, c in zip(rows, cols)}


def channel_to_symbol_majority(conf: MotifConfusion) -> dict[str, str]:
    """Many-to-one map: each channel -> its most common true symbol (non-"none" pairs).

    Ties -> the symbol first seen together with that channel during accumulation (what
    ``Counter.most_common`` does on the pair stream). Channels with no such pair are absent.
    """
    best: dict[str, tuple[int, str]] = {}
    for (pred, true), n in conf.counts.items():  # insertion (first-seen) order
        if pred == NONE or true == NONE or n <= 0:
            continue
        if pred not in best or n > best[pred][0]:
            best[pred] = (n, true)
    return {c: s for c, (_, s) in best.items()}


def _confusion_error_from_map(conf: MotifConfusion, mapping: Mapping[str, str]) -> float:
    """Fraction of non-"none" pairs whose true symbol != mapping[channel] (unmapped = wrong)."""
    total = wrong = 0
    for (pred, true), n in conf.counts.items():
        if pred == NONE or true == NONE:
            continue
        total += n
        if mapping.get(pred) != true:
            wrong += n
    return _ratio(wrong, total)


def confusion_error_hungarian(conf: MotifConfusion) -> float:
    """§6.3 DigitCircle/splicing CE = 1 - (Hungarian-matched count) / (non-"none" total)."""
    return _confusion_error_from_map(conf, channel_to_symbol_hungarian(conf))


def confusion_error_majority(conf: MotifConfusion) -> float:
    """§6.3 LaTeX/Audio CE: fraction of non-"none" pairs disagreeing with the majority map."""
    return _confusion_error_from_map(conf, channel_to_symbol_majority(conf))


@dataclass(frozen=True)
class MotifErrors:
    """FPE, FNE, CE as fractions (nan where undefined) and the CE method used."""

    fpe: float
    fne: float
    ce: float
    ce_method: CEMethod


_CE_FUNCTIONS = {"hungarian": confusion_error_hungarian, "majority": confusion_error_majority}


def motif_errors(conf: MotifConfusion, ce_method: CEMethod) -> MotifErrors:
    """FPE, FNE and CE (``ce_method``: "hungarian" for DigitCircle, "majority" for LaTeX/Audio)."""
    if ce_method not in _CE_FUNCTIONS:
        raise ValueError(f"ce_method must be one of {sorted(_CE_FUNCTIONS)}, got {ce_method!r}")
    return MotifErrors(
        fpe=false_positive_error(conf),
        fne=false_negative_error(conf),
        ce=_CE_FUNCTIONS[ce_method](conf),
        ce_method=ce_method,
    )


# ---------------------------------------------------------------------------------------------
# §6.4 end-to-end
# ---------------------------------------------------------------------------------------------


def edit_distance_accuracy(pred: Sequence, true: Sequence) -> float:
    """1 - editdistance(pred, true) / max(len(pred), len(true)) on token sequences; both empty -> 1."""
    pred, true = list(pred), list(true)
    longest = max(len(pred), len(true))
    if longest == 0:
        return 1.0
    return 1.0 - editdistance.eval(pred, true) / longest


def _check_same_length(preds: Sequence, trues: Sequence) -> None:
    if len(preds) != len(trues):
        raise ValueError(f"preds and trues differ in length: {len(preds)} vs {len(trues)}")


def end_to_end_error(preds: Sequence[Sequence], trues: Sequence[Sequence]) -> float:
    """E2EE as a fraction: 1 - mean edit-distance accuracy over samples (nan if empty)."""
    _check_same_length(preds, trues)
    if not len(preds):
        return float("nan")
    return 1.0 - float(np.mean([edit_distance_accuracy(p, t) for p, t in zip(preds, trues)]))


def exact_match_accuracy(preds: Sequence[Sequence], trues: Sequence[Sequence]) -> float:
    """Fraction of samples whose token sequence equals the truth exactly (nan if empty)."""
    _check_same_length(preds, trues)
    if not len(preds):
        return float("nan")
    return float(np.mean([list(p) == list(t) for p, t in zip(preds, trues)]))


# ---------------------------------------------------------------------------------------------
# the theorem's motif error E_m
# ---------------------------------------------------------------------------------------------


class MotifIdentification:
    """The Motif Identifiability Theorem's IoU-style motif error, accumulated over samples.

    Operational definition: a true motif is *uniquely covered* by channel c when its footprint
    holds exactly one activation (one nonzero entry, over all channels) and it is in channel c.
    ``unique[s, c]`` counts the true motifs of symbol s uniquely covered by channel c. After the
    channel ↔ symbol permutation that maximises them (Hungarian), u = Σ unique[s, π(s)] and

        E_m = 1 − u / Σ_samples max(#activations, #true motifs).

    So a shift inside the footprint and a renaming of channels cost nothing; a second activation
    in a footprint, a missing motif, a wrong channel or an activation outside every footprint
    all raise E_m.
    """

    def __init__(self, symbols: Sequence[str], num_channels: int) -> None:
        self.symbols = list(symbols)
        self.index = {s: i for i, s in enumerate(self.symbols)}
        self.unique = np.zeros((len(self.symbols), num_channels), dtype=np.int64)
        self.denominator = 0

    def add(self, motif_map: np.ndarray, true_motifs: Iterable[MotifLike]) -> "MotifIdentification":
        """One sample: ``motif_map`` (C, *spatial), non-negative; its true motifs."""
        m = np.asarray(motif_map)
        if m.shape[0] != self.unique.shape[1]:
            raise ValueError(f"motif_map has {m.shape[0]} channels, expected {self.unique.shape[1]}")
        active = np.argwhere(m > 0)  # (K, 1 + spatial dims)
        motifs = list(true_motifs)
        for motif in motifs:
            bounds = _footprint_bounds(motif.footprint, m.shape[1:])
            inside = np.all((active[:, 1:] >= bounds[:, 0]) & (active[:, 1:] < bounds[:, 1]), axis=1)
            if inside.sum() == 1:
                self.unique[self.index[motif.symbol], active[inside][0, 0]] += 1
        self.denominator += max(len(active), len(motifs))
        return self

    @property
    def permutation(self) -> dict[str, int]:
        """symbol → channel maximising the uniquely covered motifs."""
        rows, cols = linear_sum_assignment(self.unique, maximize=True)
        return {self.symbols[r]: int(c) for r, c in zip(rows, cols)}

    @property
    def error(self) -> float:
        rows, cols = linear_sum_assignment(self.unique, maximize=True)
        return 1.0 - _ratio(float(self.unique[rows, cols].sum()), float(self.denominator))


def motif_identification_error(motif_maps: Iterable[np.ndarray], motifs: Iterable[Iterable[MotifLike]],
                               symbols: Sequence[str]) -> float:
    """E_m over samples (see ``MotifIdentification``); ``nan`` when there is nothing to count."""
    result: MotifIdentification | None = None
    for m, true in zip(motif_maps, motifs):
        result = result or MotifIdentification(symbols, np.asarray(m).shape[0])
        result.add(m, true)
    return float("nan") if result is None else result.error


# ---------------------------------------------------------------------------------------------
# §6.5 bootstrap
# ---------------------------------------------------------------------------------------------


def bootstrap_mean(
    values: Iterable[float], count: int = 1000, confidence: float = 0.05
) -> tuple[float, float, float]:
    """(mean, low, high): NaNs dropped, ``count`` resamples from RandomState(0), linear quantiles
    of the resample means at confidence/2 and 1 - confidence/2. Empty -> (nan, nan, nan)."""
    arr = np.asarray(list(values), dtype=float).ravel()
    arr = arr[~np.isnan(arr)]
    if arr.size == 0:
        nan = float("nan")
        return nan, nan, nan
    means = np.random.RandomState(0).choice(arr, size=(count, arr.size)).mean(axis=1)
    low, high = np.quantile(means, [confidence / 2, 1 - confidence / 2])
    return float(arr.mean()), float(low), float(high)
