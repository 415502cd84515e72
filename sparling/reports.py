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
from sparling.evaluation import Evaluation, load_model_at, trained_densities
from sparling.experiments import Experiment, evaluate, get_or_train
from sparling.metrics import METRIC_NAMES, bootstrap_mean, channel_to_symbol_hungarian
from sparling.store import atomic_write, check_name
from sparling.training import resolve_device

__all__ = [
    "METRICS",
    "PAPER_LABEL",
    "PAPER_COLUMN",
    "MODEL_LABELS",
    "eval_samples",
    "at_bar",
    "passed_densities",
    "results_frame",
    "summary_table",
    "paper_digit_circle_numbers",
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
]

REPO_ROOT = Path(__file__).resolve().parent.parent
METRICS = METRIC_NAMES
_FIELDS = {"FPE": "fpe", "FNE": "fne", "CE": "ce", "E2EE": "e2ee"}
MODEL_LABELS = {"digit_circle_mt": "MT", "digit_circle_st": "ST"}
PAPER_LABEL = "paper (9 seeds, GPU)"
PAPER_COLUMN = f"{PAPER_LABEL} [%]"
SMOKE_EVAL_SAMPLES = 50


def eval_samples(preset: str, n: int) -> int:
    """How many samples to evaluate on: ``n``, except at the smoke preset (at most 50)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    return min(n, SMOKE_EVAL_SAMPLES) if preset == "smoke" else n


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


def paper_digit_circle_numbers() -> pd.DataFrame:
    """The paper's DigitCircle means at the bar (REPRODUCTION_SPEC §7.1 / §13: 9 seeds, on a
    GPU, in %), in a column labelled as the paper's: columns model, metric, ``PAPER_COLUMN``."""
    numbers = {
        "MT": {"FPE": 1.48, "FNE": 0.42, "CE": 1.16, "E2EE": 0.74},
        "ST": {"FPE": 0.0025, "FNE": 0.98, "CE": 22.19, "E2EE": 2.11},
    }
    return pd.DataFrame([{"model": model, "metric": metric, PAPER_COLUMN: value}
                         for model, row in numbers.items() for metric, value in row.items()])


def compare_with_paper(summary: pd.DataFrame) -> pd.DataFrame:
    """``summary_table`` at the bar beside the paper's numbers, in separate labelled columns:
    model, metric, ours mean / CI [%], seeds, ``PAPER_COLUMN``."""
    ours = summary.rename(columns={"mean": "ours mean [%]", "ci_low": "ours 95% CI low [%]",
                                   "ci_high": "ours 95% CI high [%]", "seeds": "ours seeds"})
    ours = ours.drop(columns=[c for c in ("experiment", "steps_above_bar") if c in ours.columns])
    return ours.merge(paper_digit_circle_numbers(), on=["model", "metric"], how="left")


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


@torch.no_grad()
def motif_map_of(model, x: np.ndarray) -> np.ndarray:
    """The motif map (C, *spatial) of one input ``x`` (spatial shape, no channel axis)."""
    device = next(model.parameters()).device
    return model.motif_map(torch.from_numpy(np.asarray(x, dtype=np.float32))[None, None].to(device))[0].float().cpu().numpy()


@torch.no_grad()
def predict_one(model, x: np.ndarray) -> tuple[str, ...]:
    """Greedy output of one input ``x``."""
    device = next(model.parameters()).device
    return tuple(model.predict(torch.from_numpy(np.asarray(x, dtype=np.float32))[None, None].to(device))[0])


def full_confusion(evaluation: Evaluation) -> pd.DataFrame:
    """The evaluation's confusion counts: every symbol × every channel, "none" last on both axes."""
    return evaluation.confusion_table().table()


def channel_map(evaluation: Evaluation) -> dict[str, str]:
    """Channel → symbol by the Hungarian assignment on the evaluation's confusion."""
    return channel_to_symbol_hungarian(evaluation.confusion_table())


def density_percent(density: float) -> str:
    """A density as a short percentage, e.g. 0.00502 %."""
    return f"{100 * density:.3g} %" if math.isfinite(density) else "nan"
