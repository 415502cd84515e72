"""Figure functions (one seaborn theme) and saving under stable names.

Every figure function takes plain data (DataFrames, arrays, samples), never runs, and draws
into a given matplotlib ``ax``; ``save(fig, name)`` writes ``figures/<name>.png``.

Tidy frames (as built by ``sparling.reports.results_frame``) have one row per
(model, seed, density, metric) with the error ``value`` in %.

Paper conventions (REPRODUCTION_SPEC §6.5, §7.1, §7.6, §7.11, §7.12):

- bars = mean over seeds, dots = seeds, error bars = the bootstrap interval of the mean
  (``sparling.metrics.bootstrap_mean``) drawn as centre ± half-width;
- errors against density on a reversed log axis (dense → sparse, the training direction);
- confusion matrices normalised over each true symbol's row, columns reordered so that each
  row's largest entry sits on the diagonal, with a "none" row (false positives) and column
  (false negatives).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator
from scipy import ndimage
from scipy.optimize import linear_sum_assignment

from sparling.metrics import METRIC_NAMES, NONE, bootstrap_mean, default_channel_names
from sparling.store import atomic_write, check_name

__all__ = [
    "METRICS",
    "METRIC_COLOURS",
    "set_theme",
    "figures_dir",
    "save",
    "input_image",
    "digit_circle_sample",
    "local_maxima",
    "motif_map_dots",
    "sequence_comparison",
    "error_bars",
    "errors_vs_density",
    "reorder_confusion",
    "confusion_matrix",
    "paired_scatter",
    "theorem_scatter",
    "information_bound",
    "spectrogram_motifs",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
METRICS = METRIC_NAMES
_PALETTE = sns.color_palette("colorblind")
METRIC_COLOURS = {m: _PALETTE[i] for i, m in enumerate(METRICS)}
_MODEL_COLOURS = {"MT": _PALETTE[0], "ST": _PALETTE[1]}
DPI = 150


# --- theme and saving ---------------------------------------------------------------------------


def set_theme() -> None:
    """The one theme of every figure: seaborn whitegrid, colourblind palette, notebook context."""
    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind",
                  rc={"figure.dpi": 100, "savefig.dpi": DPI, "axes.titleweight": "bold", "legend.frameon": True})


def figures_dir() -> Path:
    """``$SPARLING_FIGURES`` if set, else ``<repo>/figures`` (created if missing)."""
    folder = Path(os.environ.get("SPARLING_FIGURES") or REPO_ROOT / "figures")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def save(fig: plt.Figure, name: str) -> Path:
    """Write ``fig`` to ``<figures_dir()>/<name>.png`` (dpi 150, atomically) and return the path."""
    if name.endswith(".png"):
        name = name[: -len(".png")]
    path = figures_dir() / f"{check_name('figure name', name)}.png"
    atomic_write(path, lambda f: fig.savefig(f, dpi=DPI, bbox_inches="tight", format="png"))
    return path


# --- inputs and motif maps ----------------------------------------------------------------------


def input_image(x: np.ndarray, ax: plt.Axes, alpha: float = 1.0, title: str | None = None) -> plt.Axes:
    """A 2-D input in ``gray_r`` (ink dark), without axes."""
    ax.imshow(np.asarray(x), cmap="gray_r", alpha=alpha, interpolation="nearest", vmin=0, vmax=1)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    if title:
        ax.set_title(title)
    return ax


def digit_circle_sample(sample, ax: plt.Axes, title: str | None = None, alpha: float = 0.25) -> plt.Axes:
    """The paper's figure 1 (right panel): the input faint, each ground-truth footprint
    filled in a distinct colour with its symbol above it and a dot at its centre.

    ``sample`` has ``x`` (2-D) and ``motifs`` (``symbol`` and a ``footprint`` of two slices).
    """
    input_image(sample.x, ax, alpha=alpha, title=title)
    colours = sns.color_palette("husl", max(len(sample.motifs), 1))
    for colour, motif in zip(colours, sample.motifs):
        rows, cols = motif.footprint
        top, left = rows.start, cols.start
        height, width = rows.stop - rows.start, cols.stop - cols.start
        ax.add_patch(Rectangle((left - 0.5, top - 0.5), width, height, facecolor=colour, edgecolor=colour,
                               alpha=0.55, linewidth=1.5))
        centre = (left + (width - 1) / 2, top + (height - 1) / 2)
        ax.plot(*centre, "o", color="black", markersize=3)
        ax.text(centre[0], top - 1.5, motif.symbol, ha="center", va="bottom", fontsize=11, fontweight="bold",
                color=colour)
    return ax


def _disk(radius: int) -> np.ndarray:
    r = np.arange(-radius, radius + 1)
    return (r[:, None] ** 2 + r[None, :] ** 2) <= radius**2


def local_maxima(motif_map: np.ndarray, radius: int = 5, channel_names: Sequence[str] | None = None) -> pd.DataFrame:
    """The nonzero activations of a (C, H, W) motif map that are the largest value (over all
    channels) within ``radius`` of their position (spec §7.12).

    Returns a DataFrame (channel, row, col, value, crowded), largest value first; ``crowded``
    is True when another nonzero activation (any channel) lies within ``radius``.
    """
    m = np.asarray(motif_map, dtype=float)
    if m.ndim != 3:
        raise ValueError(f"motif_map must have shape (C, H, W), got {m.shape}")
    names = default_channel_names(m.shape[0]) if channel_names is None else list(channel_names)
    if len(names) != m.shape[0]:
        raise ValueError(f"{len(names)} channel names for {m.shape[0]} channels")
    disk = _disk(radius)
    best = m.max(axis=0)
    neighbourhood_max = ndimage.maximum_filter(best, footprint=disk, mode="constant", cval=0.0)
    neighbours = ndimage.correlate((m != 0).sum(axis=0), disk.astype(int), mode="constant", cval=0)
    rows, cols = np.nonzero((best > 0) & (best >= neighbourhood_max))
    channel = m[:, rows, cols].argmax(axis=0) if rows.size else np.zeros(0, dtype=int)
    frame = pd.DataFrame({
        "channel": [names[c] for c in channel], "row": rows, "col": cols, "value": best[rows, cols],
        "crowded": neighbours[rows, cols] > 1,
    })
    return frame.sort_values("value", ascending=False, kind="stable").reset_index(drop=True)


def motif_map_dots(sample_x: np.ndarray, motif_map: np.ndarray, channel_to_symbol: Mapping[str, str], ax: plt.Axes,
                   radius: int = 5, max_dots: int = 60, channel_names: Sequence[str] | None = None,
                   title: str | None = None, stride: int = 1) -> pd.DataFrame:
    """The input faint and every local-max activation (``local_maxima``) as a dot coloured by
    channel, labelled "<channel>→<mapped symbol>" ("?" if the channel has no symbol, "*" when
    another activation lies within ``radius`` pixels). At most ``max_dots`` dots (the largest)
    are drawn; returns the dots drawn (in input pixels). ``stride``: the map has one position
    per stride×stride block of the input (a strided ĝ); dots sit at the blocks' centres."""
    input_image(sample_x, ax, alpha=0.2, title=title)
    dots = local_maxima(motif_map, max(1, radius // stride), channel_names)
    dots["row"] = dots["row"] * stride + (stride - 1) / 2
    dots["col"] = dots["col"] * stride + (stride - 1) / 2
    total = len(dots)
    dots = dots.head(max_dots)
    names = default_channel_names(motif_map.shape[0]) if channel_names is None else list(channel_names)
    colours = dict(zip(names, sns.color_palette("husl", len(names))))
    for dot in dots.itertuples():
        colour = colours[dot.channel]
        ax.plot(dot.col, dot.row, "o", color=colour, markersize=6, markeredgecolor="black", markeredgewidth=0.6)
        label = f"{dot.channel}→{channel_to_symbol.get(dot.channel, '?')}" + ("*" if dot.crowded else "")
        text = ax.annotate(label, (dot.col, dot.row), xytext=(0, 6), textcoords="offset points", ha="center",
                           va="bottom", fontsize=9, fontweight="bold", color=colour, annotation_clip=True,
                           bbox=dict(boxstyle="round,pad=0.1", facecolor="white", edgecolor="none", alpha=0.7))
        text.set_clip_on(True)
    if total > len(dots):
        ax.text(0.01, 0.01, f"{len(dots)} largest of {total} local maxima", transform=ax.transAxes, fontsize=8,
                va="bottom", ha="left", bbox=dict(facecolor="white", edgecolor="none", alpha=0.8))
    return dots


def sequence_comparison(truth: Sequence[str], predicted: Sequence[str], ax: plt.Axes, title: str | None = None) -> plt.Axes:
    """A text panel: the true output above the prediction, wrong predicted tokens in red."""
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    longest = max(len(truth), len(predicted), 1)
    step = min(0.1, 0.9 / longest)

    def tokens(seq: Sequence[str], y: float, colours: Sequence[str]) -> None:
        for k, (token, colour) in enumerate(zip(seq, colours)):
            ax.text(0.5 + (k - (len(seq) - 1) / 2) * step, y, token, fontsize=15, ha="center", va="center",
                    transform=ax.transAxes, family="monospace", fontweight="bold", color=colour)

    ax.text(0.5, 0.82, "truth y", fontsize=12, ha="center", va="center", transform=ax.transAxes)
    tokens(truth, 0.68, ["black"] * len(truth))
    ax.text(0.5, 0.44, "model output ŷ", fontsize=12, ha="center", va="center", transform=ax.transAxes)
    tokens(predicted, 0.30, ["tab:green" if k < len(truth) and truth[k] == t else "tab:red" for k, t in enumerate(predicted)])
    if not len(predicted):
        ax.text(0.5, 0.30, "(empty)", fontsize=12, ha="center", va="center", transform=ax.transAxes, color="tab:red")
    exact = tuple(truth) == tuple(predicted)
    ax.text(0.5, 0.08, "exact match" if exact else "mismatch", fontsize=11, ha="center", transform=ax.transAxes,
            color="tab:green" if exact else "tab:red")
    return ax


# --- errors -------------------------------------------------------------------------------------


def _ordered(values: Sequence[str], preferred: Sequence[str]) -> list[str]:
    present = list(dict.fromkeys(values))
    return [v for v in preferred if v in present] + [v for v in present if v not in preferred]


def _check_columns(df: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"data frame lacks columns {missing}; it has {list(df.columns)}")


def error_bars(df: pd.DataFrame, ax: plt.Axes, title: str | None = None, legend: bool = True) -> plt.Axes:
    """Bars = mean over seeds per metric (x) and model (colour), dots = seeds, error bars =
    bootstrap interval of the mean. ``df``: columns model, metric, seed, value (error in %).
    The legend (``legend=True``) sits outside the axes, on the right."""
    _check_columns(df, ["model", "metric", "seed", "value"])
    if "density" in df.columns and df.groupby("model")["density"].nunique().max() > 1:
        raise ValueError("error_bars takes one density per model; select it first")
    metrics = _ordered(df["metric"], METRICS)
    models = _ordered(df["model"], ("MT", "ST"))
    width = 0.8 / len(models)
    rng = np.random.RandomState(0)
    for j, model in enumerate(models):
        colour = _MODEL_COLOURS.get(model, _PALETTE[(j + 2) % len(_PALETTE)])
        for i, metric in enumerate(metrics):
            values = df[(df["model"] == model) & (df["metric"] == metric)]["value"].to_numpy(float)
            mean, low, high = bootstrap_mean(values)
            x = i - 0.4 + width * (j + 0.5)
            ax.bar(x, mean, width * 0.9, color=colour, label=model if i == 0 else None, alpha=0.85)
            if np.isfinite(low):
                ax.errorbar(x, (low + high) / 2, yerr=(high - low) / 2, fmt="none", ecolor="black", capsize=4,
                            linewidth=1.2)
            finite = values[np.isfinite(values)]
            jitter = (rng.rand(finite.size) - 0.5) * width * 0.4
            ax.scatter(x + jitter, finite, s=14, color="black", zorder=3, linewidths=0)
    ax.set_xticks(range(len(metrics)))
    ax.set_xticklabels(metrics)
    ax.set_ylabel("error [%]")
    ax.set_ylim(bottom=0)
    ax.set_ylim(0, ax.get_ylim()[1] * 1.05)
    if legend:
        handles, labels = ax.get_legend_handles_labels()
        handles += [Line2D([], [], marker="o", color="black", linestyle="none", markersize=4),
                    Line2D([], [], color="black", marker="_", markersize=8, linewidth=1.2)]
        labels += ["seeds", "95% bootstrap CI"]
        ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1), borderaxespad=0)
    if title:
        ax.set_title(title)
    return ax


def errors_vs_density(df: pd.DataFrame, ax: plt.Axes, bar: float | None = None, title: str | None = None) -> plt.Axes:
    """Lines of FPE/FNE/CE/E2EE (mean over seeds) against density in %, log x reversed
    (dense → sparse), with a shaded bootstrap band when there is more than one seed.
    ``df``: columns density (a fraction), metric, seed, value (error in %); ``bar``: the
    evaluation density, drawn as a dashed line and named on its tick ("0.0119 (bar)"; inside the
    axes when the ticks are decades)."""
    _check_columns(df, ["density", "metric", "seed", "value"])
    several_seeds = df["seed"].nunique() > 1
    for metric in _ordered(df["metric"], METRICS):
        rows = []
        for density, group in df[df["metric"] == metric].groupby("density"):
            rows.append((100 * density, *bootstrap_mean(group["value"])))
        curve = np.array(sorted(rows), dtype=float).reshape(-1, 4)
        colour = METRIC_COLOURS.get(metric)
        ax.plot(curve[:, 0], curve[:, 1], "o-", color=colour, label=metric, markersize=4)
        if several_seeds:
            ax.fill_between(curve[:, 0], curve[:, 2], curve[:, 3], color=colour, alpha=0.2, linewidth=0)
    ax.set_xscale("log")
    points = np.unique(100 * df["density"].to_numpy(float))
    ticks_are_points = len(points) <= 12
    if ticks_are_points:  # label the evaluated densities themselves
        ax.xaxis.set_major_locator(FixedLocator(points))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.tick_params(axis="x", labelrotation=90)  # grid densities are 0.75× apart: level labels would collide
    bar_is_a_tick = bar is not None and ticks_are_points and bool(np.isclose(points, 100 * bar, rtol=1e-6).any())

    def density_label(value: float, _) -> str:
        # the bar is the sparsest density, at the right edge of the reversed axis, where the legend
        # and the end of the title sit: its tick's label names it
        named = bar_is_a_tick and np.isclose(value, 100 * bar, rtol=1e-6)
        return f"{value:.3g} (bar)" if named else f"{value:.3g}"

    ax.xaxis.set_major_formatter(FuncFormatter(density_label))
    if bar is not None:
        ax.axvline(100 * bar, color="gray", linestyle="--", linewidth=1)
        if not bar_is_a_tick:  # decade ticks: name the line inside the axes, at its foot
            ax.text(100 * bar, 0.02, " bar", transform=ax.get_xaxis_transform(), color="gray", rotation=90,
                    ha="right", va="bottom")
    if not ax.xaxis_inverted():
        ax.invert_xaxis()
    ax.set_xlabel("density δ [%]  (dense → sparse, as in training)")
    ax.set_ylabel("error [%]")
    ax.legend(title="mean ± 95% CI" if several_seeds else None)
    if title:
        ax.set_title(title)
    return ax


def paired_scatter(df: pd.DataFrame, ax: plt.Axes, x_model: str = "ST", y_model: str = "MT", metric: str = "CE",
                   title: str | None = None) -> plt.Axes:
    """One dot per seed: ``metric`` of ``x_model`` (x) against ``y_model`` (y), with each
    model's mean ± bootstrap CI as a cross and the line y = x (spec §7.1 st-vs-mt)."""
    _check_columns(df, ["model", "metric", "seed", "value"])
    sel = df[df["metric"] == metric]
    wide = sel.pivot_table(index="seed", columns="model", values="value", aggfunc="mean")
    if x_model not in wide or y_model not in wide:
        raise ValueError(f"need both {x_model} and {y_model} for {metric}; have {list(wide.columns)}")
    xs, ys = wide[x_model].to_numpy(float), wide[y_model].to_numpy(float)
    ax.scatter(xs, ys, s=30, color=METRIC_COLOURS.get(metric, _PALETTE[0]), label="seeds", zorder=3)
    for seed, x, y in zip(wide.index, xs, ys):
        ax.annotate(str(seed), (x, y), xytext=(3, 3), textcoords="offset points", fontsize=8)
    (mx, xl, xh), (my, yl, yh) = bootstrap_mean(xs), bootstrap_mean(ys)
    ax.errorbar(mx, my, xerr=[[mx - xl], [xh - mx]], yerr=[[my - yl], [yh - my]], fmt="x", color="black",
                capsize=3, label="mean ± 95% CI")
    finite = np.concatenate([xs, ys, [xl, xh, yl, yh]])
    finite = finite[np.isfinite(finite)]
    positive = finite[finite > 0]
    if finite.size and (finite > 0).all():
        ax.set_xscale("log")
        ax.set_yscale("log")
        lo, hi = positive.min() / 2, positive.max() * 2
    else:
        lo, hi = 0.0, (finite.max() * 1.1 if finite.size and finite.max() > 0 else 1.0)
    ax.plot([lo, hi], [lo, hi], color="gray", linestyle="--", linewidth=1, label="y = x")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel(f"{x_model} {metric} [%]")
    ax.set_ylabel(f"{y_model} {metric} [%]")
    ax.legend(loc="upper left")
    if title:
        ax.set_title(title)
    return ax


# --- confusion ----------------------------------------------------------------------------------


def _natural_key(label: str) -> tuple:
    try:
        return (0, float(label), "")
    except ValueError:
        return (1, 0.0, str(label))


def reorder_confusion(table: pd.DataFrame) -> pd.DataFrame:
    """Counts (rows = true symbols + "none", columns = channels + "none") → % of each row,
    rows sorted (symbols, then "none"), columns reordered so that row i's assigned channel is
    column i: a maximum-weight one-to-one assignment of channels to symbols, which puts each
    row's largest channel entry on the diagonal whenever those maxima lie in distinct
    columns. Unassigned channels follow, then "none"."""
    counts = table.astype(float).copy()
    if NONE not in counts.index:
        counts.loc[NONE] = 0.0
    if NONE not in counts.columns:
        counts[NONE] = 0.0
    symbols = sorted((s for s in counts.index if s != NONE), key=_natural_key)
    channels = [c for c in counts.columns if c != NONE]
    counts = counts.loc[symbols + [NONE], channels + [NONE]]
    sums = counts.sum(axis=1)
    percent = 100 * counts.div(sums.where(sums > 0, 1.0), axis=0)
    core = percent.loc[symbols, channels].to_numpy()
    order: list[str] = []
    if core.size:
        rows, cols = linear_sum_assignment(-core)
        assigned = dict(zip(rows.tolist(), cols.tolist()))
        order = [channels[assigned[r]] for r in range(len(symbols)) if r in assigned]
    order += [c for c in channels if c not in order]
    out = percent.loc[:, order + [NONE]]
    out.index.name, out.columns.name = "true", "pred"
    return out


def _short_percent(value: float) -> str:
    return f"{value:.1f}%" if value >= 0.1 or value == 0 else f"{value:.2g}%"


def confusion_matrix(table: pd.DataFrame, ax: plt.Axes, title: str | None = None, annotate: bool = True,
                     cbar: bool = True) -> pd.DataFrame:
    """Heatmap of ``reorder_confusion(table)`` (counts in, % of each true row shown), with each
    row's share of all entries in its label; returns the reordered % table."""
    percent = reorder_confusion(table)
    counts = table.astype(float)
    shares = 100 * counts.sum(axis=1) / max(counts.to_numpy().sum(), 1.0)
    labels = np.full(percent.shape, "", dtype=object)
    values = percent.to_numpy()
    labels[values >= 0.05] = [f"{v:.1f}" for v in values[values >= 0.05]]
    labels[(values > 0) & (values < 0.05)] = "<.1"
    sns.heatmap(percent, ax=ax, cmap="Blues", vmin=0, vmax=100, annot=labels if annotate else False, fmt="",
                annot_kws={"fontsize": 7}, linewidths=0.4, linecolor="white", cbar=cbar,
                cbar_kws={"label": "% of the true symbol's row"})
    ax.set_yticklabels([f"{s} ({_short_percent(shares.get(s, 0.0))})" for s in percent.index], rotation=0)
    ax.set_xticklabels(list(percent.columns), rotation=0)
    ax.set_xlabel("learned channel (reordered)")
    ax.set_ylabel("true symbol (share of all entries)")
    if title:
        ax.set_title(title)
    return percent


# --- the theorem's setting ----------------------------------------------------------------------


def theorem_scatter(frame: pd.DataFrame, ax: plt.Axes, k: float | None = None,
                    floors: Mapping[int, float] | None = None, title: str | None = None) -> plt.Axes:
    """E_m against E for the held snapshots, one colour per multiple of δ*; the line E_m = k·E
    (the empirical k at δ*) and each multiple's counting floor (dotted)."""
    _check_columns(frame, ["multiple", "held", "E", "E_m"])
    held = frame[frame.held]
    palette = dict(zip(sorted(held.multiple.unique()), _PALETTE))
    for multiple, group in held.groupby("multiple"):
        label = "δ = δ*" if multiple == 1 else f"δ = {multiple}·δ*"
        ax.scatter(group.E, group.E_m, s=18, alpha=0.75, color=palette[multiple], label=label)
        if floors and multiple in floors and floors[multiple] > 0:
            ax.axhline(floors[multiple], color=palette[multiple], ls=":", lw=1)
    if k is not None and np.isfinite(k):
        e = np.linspace(0, 1, 100)
        ax.plot(e, np.minimum(k * e, 1), color="0.3", lw=1.2, ls="--", label=f"E_m = {k:.2f}·E (δ*)")
    ax.set(xlim=(-0.02, 1.02), ylim=(-0.02, 1.02), xlabel="end-to-end error E (exact match)",
           ylabel="motif error E_m", title=title)
    ax.legend(loc="lower right", fontsize="small")
    return ax


def information_bound(densities: np.ndarray, curves: Mapping[str, np.ndarray], needed_bits: float, ax: plt.Axes,
                      marks: Mapping[str, float] | None = None, title: str | None = None) -> plt.Axes:
    """Bits a motif map can carry against δ (one curve per η) with the bits the true layout needs
    (horizontal line) and vertical marks (e.g. δ*)."""
    for label, bits in curves.items():
        ax.plot(densities, bits, label=label)
    ax.axhline(needed_bits, color="0.2", lw=1.2, ls="--", label=f"layout entropy {needed_bits:.1f} bits")
    for label, density in (marks or {}).items():
        ax.axvline(density, color="0.5", lw=1, ls=":")
        ax.annotate(label, (density, needed_bits), textcoords="offset points", xytext=(3, 6), fontsize="small")
    ax.set(xscale="log", yscale="log", xlabel="density δ", ylabel="bits per input", title=title)
    ax.legend(fontsize="small")
    return ax


# --- 1-D domains ----------------------------------------------------------------------------------


def spectrogram_motifs(spectrogram: np.ndarray, motif_map: np.ndarray, channel_to_symbol: Mapping[str, str],
                       motifs: Sequence, ax: plt.Axes, frames_per_second: float | None = None,
                       channel_names: Sequence[str] | None = None, title: str | None = None) -> plt.Axes:
    """A log-mel spectrogram (mels, frames) with the true motifs as shaded frame intervals labelled by
    their symbol (bottom) and every nonzero motif-map activation (C, frames) as a dot above it,
    labelled "<channel>→<mapped symbol>". Time in seconds when ``frames_per_second`` is given."""
    mels, frames = spectrogram.shape
    scale = 1.0 / frames_per_second if frames_per_second else 1.0
    ax.imshow(spectrogram, origin="lower", aspect="auto", cmap="magma", extent=(0, frames * scale, 0, mels))
    for motif in motifs:
        span = motif.footprint[0]
        ax.axvspan(span.start * scale, span.stop * scale, ymin=0, ymax=0.08, color="white", alpha=0.8)
        ax.text((span.start + span.stop) / 2 * scale, mels * 0.04, motif.symbol, ha="center", va="center",
                fontsize=10, fontweight="bold", color="black")
    names = default_channel_names(motif_map.shape[0]) if channel_names is None else list(channel_names)
    colours = dict(zip(names, sns.color_palette("husl", len(names))))
    channels, positions = np.nonzero(motif_map)
    for channel, position in zip(channels, positions):
        name = names[channel]
        y = mels * (0.2 + 0.7 * channel / max(len(names) - 1, 1))
        ax.plot(position * scale, y, "o", color=colours[name], markersize=6, markeredgecolor="black",
                markeredgewidth=0.6)
        ax.annotate(f"{name}→{channel_to_symbol.get(name, '?')}", (position * scale, y), xytext=(0, 6),
                    textcoords="offset points", ha="center", fontsize=8, fontweight="bold", color="white")
    ax.set(xlabel="time [s]" if frames_per_second else "frame", ylabel="mel band", title=title)
    ax.grid(False)
    return ax
