"""The logic behind the result notebooks: tidy result frames, summaries with bootstrap
intervals, provenance-carrying tables, and the paper's numbers (clearly labelled).

A tidy results frame has one row per (experiment, model, seed, density, metric) with the
error ``value`` in % (the paper's unit). Densities are fractions (0.5 = 50 %).
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import sparling
from sparling.annealing import density_key, grid_index, steps_above_bar
from sparling.domains import TEST_SPLIT
from sparling.evaluation import Evaluation, load_model_at, trained_densities
from sparling.experiments import TOY_DOMAIN, Experiment, check_seed, evaluate, get_experiment, get_or_train, theorem_points
from sparling.metrics import METRIC_NAMES, NONE, bootstrap_mean, channel_to_symbol_hungarian, channel_to_symbol_majority
from sparling.store import atomic_write, check_name
from sparling.theory import (AUTHORS_DIGIT_CIRCLE_LAYOUT, SlotLayout, authors_deletion_probability, channel_budget,
                             necessity_alpha, symbol_rates)
from sparling.training import resolve_device

__all__ = [
    "METRICS",
    "PAPER_LABEL",
    "PAPER_COLUMN",
    "MODEL_LABELS",
    "eval_samples",
    "seeds_to_use",
    "at_bar",
    "passed_densities",
    "results_frame",
    "summary_table",
    "paper_digit_circle_numbers",
    "paper_numbers",
    "PAPER_MEANS",
    "compare_with_paper",
    "tables_dir",
    "write_table",
    "provenance",
    "first_sample_with",
    "load_trained_model",
    "motif_map_of",
    "predict_one",
    "full_confusion",
    "channel_map",
    "model_label",
    "density_percent",
    "theorem_frame",
    "empirical_k",
    "counting_floor",
    "theorem_summary",
    "theorem_conclusion",
    "alpha_table",
    "channel_budget_table",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
METRICS = METRIC_NAMES
_FIELDS = {"FPE": "fpe", "FNE": "fne", "CE": "ce", "E2EE": "e2ee"}
MODEL_LABELS = {"digit_circle_mt": "MT", "digit_circle_st": "ST", "latex_ocr_mt": "MT", "audio_digits_mt": "MT"}
PAPER_LABEL = "paper (9 seeds, GPU)"
PAPER_COLUMN = f"{PAPER_LABEL} [%]"
SMOKE_EVAL_SAMPLES = 50


def eval_samples(preset: str, n: int) -> int:
    """How many samples to evaluate on: ``n``, except at the smoke preset (at most 50)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    return min(n, SMOKE_EVAL_SAMPLES) if preset == "smoke" else n


def seeds_to_use(default: Iterable[int], seeds: object = None) -> list[int]:
    """The run seeds a notebook uses: ``default`` (the preset's) when ``seeds`` is None, else
    ``seeds`` as a list of ints. Also takes one int and the strings papermill's ``-p`` passes
    ("[1, 2, 3]", "1,2,3", "1 2 3"), so ``-p seeds "[1, 2, 3]"`` means what it says."""
    if seeds is None:
        chosen = list(default)
    elif isinstance(seeds, str):
        try:
            chosen = [int(part) for part in seeds.strip().strip("[]()").replace(",", " ").split()]
        except ValueError:
            raise ValueError(f"seeds must be integers, e.g. \"[1, 2, 3]\"; got {seeds!r}") from None
    elif isinstance(seeds, int) and not isinstance(seeds, bool):
        chosen = [seeds]
    elif isinstance(seeds, Iterable):
        chosen = list(seeds)
    else:
        chosen = []
    if not chosen:
        raise ValueError(f"seeds must be a non-empty list of integers, got {seeds!r}")
    return [check_seed(seed) for seed in chosen]


def model_label(experiment: Experiment) -> str:
    """"MT" / "ST" for the main DigitCircle experiments, else the experiment's name."""
    return MODEL_LABELS.get(experiment.name, experiment.name)


# --- which densities ----------------------------------------------------------------------------


def at_bar(experiment: Experiment, run) -> list[float]:
    """The evaluation density of the paper's main numbers: the experiment's bar."""
    return [experiment.bar]


STEPS_ABOVE_BAR = 10


def passed_densities(experiment: Experiment, run) -> list[float]:
    """The densities of the paper's error-vs-density figure that the run completed: δ = 0.5
    (dense) and the bar up to ``STEPS_ABOVE_BAR`` grid steps above it, densest first."""
    wanted = {density_key(experiment.training.initial_density)}
    wanted |= {density_key(steps_above_bar(experiment.training.stop_density, k)) for k in range(STEPS_ABOVE_BAR + 1)}
    return [d for d in trained_densities(run.checkpoint_names()) if density_key(d) in wanted]


def _has_phase(run, density: float) -> bool:
    return density_key(density) in {density_key(d) for d in trained_densities(run.checkpoint_names())}


def _steps_above_bar(experiment: Experiment, density: float) -> float:
    try:
        return float(grid_index(experiment.bar) - grid_index(density))
    except ValueError:
        return float("nan")


DensityFn = Callable[[Experiment, object], "float | Iterable[float]"]


def results_frame(experiments: Sequence[Experiment], seeds: Iterable[int] | None = None,
                  density_fn: DensityFn = at_bar, n: int = 10_000, device: str = "auto",
                  progress: bool = False) -> pd.DataFrame:
    """Train (if needed) and evaluate every experiment × seed at the densities
    ``density_fn(experiment, run)``; a tidy frame with columns experiment, model, seed,
    density, steps_above_bar, n, metric, value (error in %).

    ``seeds=None`` takes each experiment's default seeds. A density whose phase the run never
    completed (e.g. a run that hit ``max_samples`` above the bar) gives NaN values and a
    warning, as the paper treats such seeds as missing (spec §6.7)."""
    rows = []
    for experiment in experiments:
        for seed in (experiment.seeds if seeds is None else seeds):
            run = get_or_train(experiment, seed, device=device, progress=progress)
            densities = density_fn(experiment, run)
            densities = [densities] if isinstance(densities, (int, float)) else list(densities)
            for density in densities:
                base = {"experiment": experiment.name, "model": model_label(experiment), "seed": seed,
                        "density": float(density), "steps_above_bar": _steps_above_bar(experiment, density), "n": n}
                if _has_phase(run, density):
                    result = evaluate(experiment, seed, density, n, device=device)
                    values = {m: 100 * getattr(result, f) for m, f in _FIELDS.items()}
                else:
                    warnings.warn(f"{experiment.name} seed {seed} never completed density {density_key(density)}; "
                                  "its errors are NaN", stacklevel=2)
                    values = dict.fromkeys(METRICS, float("nan"))
                rows += [{**base, "metric": m, "value": v} for m, v in values.items()]
    return pd.DataFrame(rows, columns=["experiment", "model", "seed", "density", "steps_above_bar", "n", "metric",
                                       "value"])


def summary_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds and 95 % bootstrap interval (``bootstrap_mean``: NaNs dropped) per
    model × metric (× density, where the frame has several): columns model, [density,
    steps_above_bar,] metric, mean, ci_low, ci_high, seeds (how many finite)."""
    keys = [k for k in ("experiment", "model", "density", "steps_above_bar") if k in frame.columns]
    rows = []
    metric_order = {m: i for i, m in enumerate(METRICS)}
    for key, group in frame.groupby(keys + ["metric"], sort=False, dropna=False):
        mean, low, high = bootstrap_mean(group["value"])
        rows.append({**dict(zip(keys + ["metric"], key)), "mean": mean, "ci_low": low, "ci_high": high,
                     "seeds": int(group["value"].notna().sum())})
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    out["_m"] = out["metric"].map(lambda m: metric_order.get(m, len(metric_order)))
    sort = [k for k in ("model", "density") if k in out.columns]
    out = out.sort_values(sort + ["_m"], ascending=[True] + [False] * (len(sort) - 1) + [True], kind="stable")
    return out.drop(columns="_m").reset_index(drop=True)


# --- the paper's numbers ------------------------------------------------------------------------


PAPER_MEANS: dict[str, dict[str, float]] = {
    "digit_circle_mt": {"FPE": 1.48, "FNE": 0.42, "CE": 1.16, "E2EE": 0.74},
    "digit_circle_st": {"FPE": 0.0025, "FNE": 0.98, "CE": 22.19, "E2EE": 2.11},
    "latex_ocr_mt": {"FPE": 0.53, "FNE": 14.20, "CE": 2.50, "E2EE": 0.98},
    "audio_digits_mt": {"FPE": 0.00, "FNE": 4.46, "CE": 5.47, "E2EE": 8.65},
}
"""The paper's 9-seed means at the bar (REPRODUCTION_SPEC §7.1, on GPUs, in %)."""

PAPER_NOTES = {
    "latex_ocr_mt": "pdflatex renders",
    "audio_digits_mt": "real AudioMNIST speakers",
}
"""Where the paper's setting differs from ours in a way the numbers depend on."""


def paper_numbers(experiments: Iterable[str] | None = None) -> pd.DataFrame:
    """The paper's means at the bar, in a column labelled as the paper's: columns experiment,
    model, metric, ``PAPER_COLUMN``, paper setting."""
    names = list(PAPER_MEANS) if experiments is None else list(experiments)
    unknown = [n for n in names if n not in PAPER_MEANS]
    if unknown:
        raise ValueError(f"the paper reports no numbers for {unknown}")
    return pd.DataFrame([{"experiment": name, "model": MODEL_LABELS.get(name, name), "metric": metric,
                          PAPER_COLUMN: value, "paper setting": PAPER_NOTES.get(name, "")}
                         for name in names for metric, value in PAPER_MEANS[name].items()])


def paper_digit_circle_numbers() -> pd.DataFrame:
    """The paper's DigitCircle MT and ST means at the bar: columns model, metric, ``PAPER_COLUMN``."""
    return paper_numbers(["digit_circle_mt", "digit_circle_st"])[["model", "metric", PAPER_COLUMN]]


def compare_with_paper(summary: pd.DataFrame) -> pd.DataFrame:
    """``summary_table`` at the bar beside the paper's numbers, in separate labelled columns:
    model, metric, ours mean / CI [%], seeds, ``PAPER_COLUMN`` (and the paper's setting where
    it differs from ours)."""
    ours = summary.rename(columns={"mean": "ours mean [%]", "ci_low": "ours 95% CI low [%]",
                                   "ci_high": "ours 95% CI high [%]", "seeds": "ours seeds"})
    paper = paper_numbers([e for e in ours["experiment"].unique() if e in PAPER_MEANS])
    merged = ours.merge(paper.drop(columns="model"), on=["experiment", "metric"], how="left")
    if not merged["paper setting"].fillna("").astype(bool).any():
        merged = merged.drop(columns="paper setting")
    return merged.drop(columns=[c for c in ("experiment", "steps_above_bar") if c in merged.columns])


# --- tables with provenance ---------------------------------------------------------------------


def tables_dir() -> Path:
    """``$SPARLING_TABLES`` if set, else ``<repo>/tables`` (created if missing)."""
    folder = Path(os.environ.get("SPARLING_TABLES") or REPO_ROOT / "tables")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def provenance(preset: str, seeds: Iterable[int], n: int, **extra: object) -> dict:
    """The provenance of a table: preset, seeds, evaluation samples, package version, date."""
    return {"preset": preset, "seeds": " ".join(str(s) for s in seeds), "n samples": n,
            "package version": sparling.__version__, "date": _dt.date.today().isoformat(), **extra}


def write_table(df: pd.DataFrame, name: str, provenance: Mapping[str, object]) -> Path:
    """Write ``df`` to ``<tables_dir()>/<name>.csv`` atomically, led by one ``# key: value``
    line per provenance entry (package version and date are added if missing). Read it back
    with ``pd.read_csv(path, comment="#")``."""
    if name.endswith(".csv"):
        name = name[: -len(".csv")]
    check_name("table name", name)
    info = {"package version": sparling.__version__, "date": _dt.date.today().isoformat(), **provenance}
    lines = []
    for key, value in info.items():
        text = f"{key}: {value}"
        if "\n" in text or "\r" in text:
            raise ValueError(f"provenance entry {key!r} must be on one line")
        lines.append(f"# {text}\n")
    text_cells = (str(v) for c in df.columns if not pd.api.types.is_numeric_dtype(df[c]) for v in df[c])
    if any("#" in str(c) for c in df.columns) or any("#" in v for v in text_cells):
        raise ValueError("table cells and headers may not contain '#' (it starts a comment when read back)")
    path = tables_dir() / f"{name}.csv"
    csv = "".join(lines) + df.to_csv(index=False)
    atomic_write(path, lambda f: f.write(csv.encode()))
    return path


# --- single samples and models ------------------------------------------------------------------


def first_sample_with(domain, n_symbols: int, limit: int = 100):
    """(i, sample) for the first ``RandomState(i)``, i < limit, whose output has ``n_symbols``."""
    for i in range(limit):
        sample = domain.sample(np.random.RandomState(i))
        if len(sample.y) == n_symbols:
            return i, sample
    raise ValueError(f"no sample with {n_symbols} symbols among RandomState(0..{limit - 1})")


def load_trained_model(experiment: Experiment, seed: int, density: float, device: str = "auto"):
    """The trained model of ``experiment``/``seed`` (trained if needed) at ``density``, eval mode."""
    run = get_or_train(experiment, seed, device=device, progress=False)
    return load_model_at(experiment.build_model(seed), run, density).to(resolve_device(device))


def _one(model, x: np.ndarray) -> torch.Tensor:
    """One input as a batch of one: x (*spatial) for single-channel inputs, else (C_in, *spatial)."""
    x = torch.from_numpy(np.asarray(x, dtype=np.float32))
    x = x[None, None] if model.config.motif_net.in_channels == 1 else x[None]
    return x.to(next(model.parameters()).device)


@torch.no_grad()
def motif_map_of(model, x: np.ndarray) -> np.ndarray:
    """The motif map (C, *spatial) of one input ``x`` (a sample's x)."""
    return model.motif_map(_one(model, x))[0].float().cpu().numpy()


@torch.no_grad()
def predict_one(model, x: np.ndarray) -> tuple[str, ...]:
    """Greedy output of one input ``x``."""
    return tuple(model.predict(_one(model, x))[0])


def full_confusion(evaluation: Evaluation) -> pd.DataFrame:
    """The evaluation's confusion counts: every symbol × every channel, "none" last on both axes."""
    return evaluation.confusion_table().table()


def channel_map(evaluation: Evaluation) -> dict[str, str]:
    """Channel → symbol by the evaluation's own CE method (Hungarian or majority) on its confusion."""
    if evaluation.ce_method == "majority":
        return channel_to_symbol_majority(evaluation.confusion_table())
    return channel_to_symbol_hungarian(evaluation.confusion_table())


def merged_confusion(evaluation: Evaluation) -> pd.DataFrame:
    """The confusion counts with the channels that the majority map sends to the same symbol
    merged into one column named by them (e.g. "#19/#9/#10"), as the paper shows LaTeX;
    channels that never fired on a motif are merged into "unmapped"."""
    table = full_confusion(evaluation)
    mapping = channel_to_symbol_majority(evaluation.confusion_table())
    channels = [c for c in table.columns if c != NONE]
    groups: dict[str, list[str]] = {}
    for channel in channels:
        groups.setdefault(mapping.get(channel, "unmapped"), []).append(channel)
    merged = pd.DataFrame({("unmapped" if symbol == "unmapped" else "/".join(members)): table[members].sum(axis=1)
                           for symbol, members in groups.items()})
    merged[NONE] = table[NONE]
    return merged


def missed_by_symbol(evaluation: Evaluation) -> pd.DataFrame:
    """Where the false negatives are: per true symbol, its motifs per sample, the share of them
    no channel identified ("missed [%]", the symbol's own FNE) and its share of all misses
    ("share of FNE [%]"; sums to 100). Sorted by that share, largest first."""
    table = full_confusion(evaluation).drop(index=NONE)
    table = table[table.sum(axis=1) > 0]
    motifs, missed = table.sum(axis=1), table[NONE]
    out = pd.DataFrame({"motifs per sample": motifs / evaluation.n, "missed [%]": 100 * missed / motifs,
                        "share of FNE [%]": 100 * missed / max(int(missed.sum()), 1)})
    out.index.name = "symbol"
    return out.sort_values("share of FNE [%]", ascending=False).reset_index()


def channel_use(evaluation: Evaluation, share: float = 0.5, mix: float = 0.1) -> dict[str, str]:
    """How the channels cover the symbols: "off-target channels" never fire, or more than
    ``share`` of their activations fall outside every footprint; "merging channels" fire on more
    than ``mix`` of the motifs of each of two or more symbols, listed after the channel, the most
    covered first (e.g. "D (6 2)"); "lost symbols" have more than ``share`` of their motifs missed
    (largest share of all misses first). Space-separated names, "-" for none."""
    table = full_confusion(evaluation)
    fired = table.sum(axis=0)
    channels = [c for c in table.columns if c != NONE]
    off = [c for c in channels if fired[c] == 0 or table.loc[NONE, c] > share * fired[c]]
    true = table.drop(index=NONE)
    true = true[true.sum(axis=1) > 0]
    coverage = true.div(true.sum(axis=1), axis=0)  # the share of each symbol's motifs (found or missed) per channel
    merging = []
    for channel in channels:
        covered = coverage[channel].sort_values(ascending=False, kind="stable")
        carried = list(covered.index[covered > mix])
        if len(carried) > 1:
            merging.append(f"{channel} ({' '.join(carried)})")
    missed = missed_by_symbol(evaluation)
    lost = list(missed.symbol[missed["missed [%]"] > 100 * share])
    return {"off-target channels": " ".join(off) or "-", "merging channels": " ".join(merging) or "-",
            "lost symbols": " ".join(lost) or "-"}


def channel_use_table(experiments: Sequence[Experiment], seeds: Iterable[int] | None, n: int,
                      device: str = "auto") -> pd.DataFrame:
    """``channel_use`` at the bar for every experiment × seed, beside its CE and FNE (in %)."""
    rows = []
    for experiment in experiments:
        for seed in (experiment.seeds if seeds is None else seeds):
            result = evaluate(experiment, seed, experiment.bar, n, device=device)
            rows.append({"model": model_label(experiment), "seed": seed, "CE [%]": 100 * result.ce,
                         "FNE [%]": 100 * result.fne, **channel_use(result)})
    return pd.DataFrame(rows)


def density_percent(density: float) -> str:
    """A density as a short percentage, e.g. 0.00502 %."""
    return f"{100 * density:.3g} %" if math.isfinite(density) else "nan"


# --- the theorem's setting (notebooks/theorem_setting.ipynb) ------------------------------------


def theorem_frame(multiples: Sequence[int], preset: str, seeds: Iterable[int] | None = None, n: int = 1000,
                  device: str = "auto", progress: bool = False) -> pd.DataFrame:
    """Train (if needed) the toy runs held at each multiple of δ* and evaluate their held snapshots:
    columns multiple, seed, samples, density, held (the density is the held one), E, E_m, E2EE
    (fractions)."""
    rows = []
    for multiple in multiples:
        experiment = get_experiment(f"toy_density_{multiple}x", preset)
        for seed in (experiment.seeds if seeds is None else seeds):
            get_or_train(experiment, seed, device=device, progress=progress)
            for p in theorem_points(experiment, seed, n, device=device):
                rows.append({"multiple": multiple, "seed": seed, "samples": p.samples, "density": p.density,
                             "held": p.density == experiment.training.hold_density,
                             "E": p.error, "E_m": p.motif_error, "E2EE": p.e2ee})
    return pd.DataFrame(rows, columns=["multiple", "seed", "samples", "density", "held", "E", "E_m", "E2EE"])


def empirical_k(frame: pd.DataFrame, n: int) -> pd.Series:
    """Per multiple, the smallest k with E_m ≤ k·max(E, 1/n) at every held snapshot (E is
    measured in steps of 1/n, so E = 0 reads as E < 1/n)."""
    held = frame[frame.held]
    return (held.E_m / held.E.clip(lower=1 / n)).groupby(held.multiple).max().rename("k")


def counting_floor(multiple: float) -> float:
    """The least E_m of any map with ``multiple`` activations per true motif: the denominator
    Σ max(#activations, #true) is multiple·#true while at most #true motifs are covered, so
    E_m ≥ 1 − 1/multiple."""
    return max(0.0, 1.0 - 1.0 / multiple)


def theorem_summary(frame: pd.DataFrame, n: int, low_error: float = 0.05) -> pd.DataFrame:
    """Per multiple, over held snapshots: how many, how many with E ≤ ``low_error``, their mean
    and max E_m, the counting floor and the empirical k."""
    held = frame[frame.held]
    rows = []
    k = empirical_k(frame, n)
    for multiple, group in held.groupby("multiple"):
        good = group[group.E <= low_error]
        rows.append({"multiple": multiple, "snapshots": len(group), "with small E": len(good),
                     "min E": group.E.min(), "mean E_m (small E)": good.E_m.mean() if len(good) else float("nan"),
                     "max E_m (small E)": good.E_m.max() if len(good) else float("nan"),
                     "counting floor": counting_floor(multiple), "empirical k": k.get(multiple, float("nan"))})
    return pd.DataFrame(rows)


def theorem_conclusion(summary: pd.DataFrame, low_error: float = 0.05) -> str:
    """A plain-language reading of ``theorem_summary``, computed from it."""
    by = summary.set_index("multiple")
    if 1 not in by.index or by.loc[1, "with small E"] == 0:
        reached = "never" if 1 in by.index else "not trained"
        return (f"At δ* no held snapshot reached E ≤ {low_error:.0%} ({reached}): the theorem's premise "
                "(small end-to-end error at the true density) was not met at this preset, so it is not tested here.")
    at_true = by.loc[1]
    lines = [f"At δ = δ*, {int(at_true['with small E'])} of {int(at_true['snapshots'])} held snapshots reach "
             f"E ≤ {low_error:.0%}; their motif error E_m is at most {at_true['max E_m (small E)']:.3f} "
             f"(mean {at_true['mean E_m (small E)']:.3f}); empirical k = {at_true['empirical k']:.2f}."]
    denser = by.drop(index=1)
    separated = True
    for multiple, row in denser.iterrows():
        if row["with small E"] == 0:
            lines.append(f"At {multiple}·δ*, no held snapshot reached E ≤ {low_error:.0%}.")
            continue
        lines.append(f"At {multiple}·δ*, {int(row['with small E'])} snapshots reach E ≤ {low_error:.0%} with E_m "
                     f"between {row['mean E_m (small E)']:.3f} (mean) and {row['max E_m (small E)']:.3f} (max); "
                     f"the counting floor is {row['counting floor']:.3f}.")
        separated &= row["mean E_m (small E)"] > 2 * at_true["max E_m (small E)"]
    lines.append("Small end-to-end error pins the motif map down only at the true density: the separation holds."
                 if separated and len(denser) else
                 "The separation between δ* and denser runs does NOT show clearly at this preset.")
    return "\n".join(lines)


def alpha_table() -> pd.DataFrame:
    """α-motif-necessity by enumeration: the authors' DigitCircle layout with their /5 (their
    0.465), the same layout with a uniform choice of the deleted motif (1/k), and the toy domain."""
    toy = SlotLayout(TOY_DOMAIN.slots, TOY_DOMAIN.min_gap, TOY_DOMAIN.counts)
    cases = [("DigitCircle layout, authors' /5", necessity_alpha(AUTHORS_DIGIT_CIRCLE_LAYOUT, authors_deletion_probability)),
             ("DigitCircle layout, 1/k", necessity_alpha(AUTHORS_DIGIT_CIRCLE_LAYOUT)),
             ("toy domain, 1/k", necessity_alpha(toy))]
    rows = [{"layout": name, **{f"alpha_{k}": v for k, v in alphas.items()}, "alpha": sum(alphas.values())}
            for name, alphas in cases]
    return pd.DataFrame(rows)


# --- the per-channel budget at the bar ----------------------------------------------------------------


def channel_budget_table(experiments: Sequence[Experiment], n: int = 1000) -> pd.DataFrame:
    """For each experiment, what per-channel thresholds allow at its bar (``theory.channel_budget``):
    the motif map, the bar, the activations each channel may fire per input there, and the ceiling
    of (1 − FNE)(1 − CE) with the best possible channel allocation. Symbol rates from the first
    ``n`` test samples of each experiment's domain."""
    rows, rates_of = [], {}
    for experiment in experiments:
        domain = experiment.build_domain()
        if experiment.domain not in rates_of:
            rates_of[experiment.domain] = symbol_rates(domain.sample_at(TEST_SPLIT, i) for i in range(n))
        rates = rates_of[experiment.domain]
        stride = experiment.model.motif_net.map_stride
        shape = tuple(size // stride for size in domain.input_shape)
        budget = channel_budget(rates, experiment.model.motif_net.num_motifs, experiment.bar, math.prod(shape))
        rows.append({
            "preset": experiment.preset, "motif map": "×".join(map(str, shape)), "bar": f"{experiment.bar:.6e}",
            "bar / δ_min": experiment.bar / experiment.training.stop_density,
            "activations per channel per input": budget.per_channel,
            "channels": experiment.model.motif_net.num_motifs,
            "channels to cover every symbol": budget.channels_to_cover,
            "ceiling of (1−FNE)(1−CE)": budget.ceiling,
        })
    return pd.DataFrame(rows)
