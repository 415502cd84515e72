"""Figure functions on small synthetic data, confusion reordering, tables with provenance,
summaries, and the paper's numbers (sparling.plots, sparling.reports)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

import sparling
from sparling import plots, reports
from sparling.domains import Motif, Sample
from sparling.experiments import get_experiment
from sparling.metrics import NONE, bootstrap_mean


@pytest.fixture(autouse=True)
def output_folders(tmp_path, monkeypatch):
    monkeypatch.setenv("SPARLING_FIGURES", str(tmp_path / "figures"))
    monkeypatch.setenv("SPARLING_TABLES", str(tmp_path / "tables"))
    yield tmp_path
    plt.close("all")


def tidy_frame(seeds=(1, 2, 3), densities=(0.5, 0.375, 0.28125)):
    rng = np.random.RandomState(0)
    rows = []
    for model in ("MT", "ST"):
        for seed in seeds:
            for density in densities:
                for metric in reports.METRICS:
                    rows.append({"experiment": f"digit_circle_{model.lower()}", "model": model, "seed": seed,
                                 "density": density, "steps_above_bar": 0.0, "n": 10, "metric": metric,
                                 "value": float(rng.rand() * 10 * (1 + density))})
    return pd.DataFrame(rows)


def saved_png(fig, name):
    path = plots.save(fig, name)
    assert path == plots.figures_dir() / f"{name}.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temp files left
    return path


def test_save_writes_png_into_env_folder(output_folders):
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    path = saved_png(fig, "line")
    assert path.parent == output_folders / "figures"
    assert oct(path.stat().st_mode & 0o777) != oct(0o600)  # readable by others, like any file
    with pytest.raises(ValueError):
        plots.save(fig, "../escape")


def test_digit_circle_sample_and_motif_dots():
    x = np.zeros((40, 40), dtype=np.float32)
    x[5:17, 5:13] = 1
    sample = Sample(x, ("3", "7"), (Motif("3", (slice(5, 17), slice(5, 13))), Motif("7", (slice(20, 32), slice(25, 33)))))
    motif_map = np.zeros((3, 40, 40), dtype=np.float32)
    motif_map[0, 11, 9] = 2.0  # a lone maximum
    motif_map[1, 26, 29] = 1.5  # a maximum with a weaker neighbour (crowded)
    motif_map[2, 27, 30] = 0.5
    plots.set_theme()
    fig, axes = plt.subplots(1, 3, figsize=(9, 3))
    plots.digit_circle_sample(sample, axes[0], title="footprints")
    dots = plots.motif_map_dots(x, motif_map, {"A": "3", "B": "7"}, axes[1], title="dots")
    plots.sequence_comparison(sample.y, ("3", "1"), axes[2])
    saved_png(fig, "sample")
    assert list(dots["channel"]) == ["A", "B"]
    assert list(dots["crowded"]) == [False, True]
    assert (dots[["row", "col"]].to_numpy() == [[11, 9], [26, 29]]).all()


def test_motif_dots_of_a_strided_map_sit_at_block_centres():
    plots.set_theme()
    fig, ax = plt.subplots()
    m = np.zeros((2, 5, 10))
    m[1, 2, 7] = 1.0
    dots = plots.motif_map_dots(np.ones((20, 40)), m, {"B": "+"}, ax, stride=4)
    plt.close(fig)
    assert list(zip(dots.channel, dots.row, dots.col)) == [("B", 9.5, 29.5)]  # block rows 8..11, cols 28..31


def test_merged_confusion_groups_channels_by_their_majority_symbol():
    from sparling.evaluation import Evaluation

    confusion = {"#0|(": 8, "#1|(": 5, "#1|)": 1, "#2|)": 7, "#0|none": 2, "#3|none": 4, "none|+": 3}
    evaluation = Evaluation(density=1e-4, n=10, fpe=0.0, fne=0.0, ce=0.0, ce_method="majority", e2ee=0.0,
                            exact_accuracy=0.0, realised_density=0.0, confusion=confusion,
                            channels=["#0", "#1", "#2", "#3"], symbols=["(", ")", "+"])
    merged = reports.merged_confusion(evaluation)
    assert list(merged.columns) == ["#0/#1", "#2", "unmapped", "none"]
    assert merged.loc["(", "#0/#1"] == 13 and merged.loc[")", "#0/#1"] == 1 and merged.loc[")", "#2"] == 7
    assert merged.loc["none", "#0/#1"] == 2 and merged.loc["none", "unmapped"] == 4 and merged.loc["+", "none"] == 3
    assert merged.to_numpy().sum() == sum(confusion.values())


def test_missed_by_symbol_splits_the_fne_by_true_symbol():
    from sparling.evaluation import Evaluation
    from sparling.metrics import false_negative_error

    confusion = {"#0|(": 8, "none|(": 2, "#1|)": 1, "none|)": 3, "#0|none": 5, "none|+": 5, "#1|+": 5}
    evaluation = Evaluation(density=1e-4, n=4, fpe=0.0, fne=0.0, ce=0.0, ce_method="majority", e2ee=0.0,
                            exact_accuracy=0.0, realised_density=0.0, confusion=confusion,
                            channels=["#0", "#1"], symbols=["(", ")", "+", "FRACBAR"])
    table = reports.missed_by_symbol(evaluation).set_index("symbol")
    assert list(table.index) == ["+", ")", "("]  # by share of misses; FRACBAR never occurred
    assert table.loc[")", "missed [%]"] == 75.0 and table.loc["(", "motifs per sample"] == 2.5
    assert table.loc["+", "share of FNE [%]"] == 50.0 and table["share of FNE [%]"].sum() == 100.0
    weights = table["motifs per sample"] / table["motifs per sample"].sum()
    assert (weights * table["missed [%]"]).sum() == pytest.approx(100 * false_negative_error(evaluation.confusion_table()))


def test_channel_use_names_off_target_channels_merging_channels_and_lost_symbols():
    from sparling.evaluation import Evaluation

    # #1 fires outside every footprint 9 times in 10, #2 never fires, #0 is off target 1 time in 5;
    # "8" is missed 3 times in 4, "3" once in 4; #0 fires on 3 of the 4 "3"s and 1 of the 4 "8"s
    confusion = {"#0|3": 3, "none|3": 1, "#0|8": 1, "none|8": 3, "#0|none": 1, "#1|5": 1, "#1|none": 9}
    evaluation = Evaluation(density=1e-4, n=4, fpe=0.0, fne=0.0, ce=0.0, ce_method="hungarian", e2ee=0.0,
                            exact_accuracy=0.0, realised_density=0.0, confusion=confusion,
                            channels=["#0", "#1", "#2"], symbols=["3", "8", "5"])
    assert reports.channel_use(evaluation) == {"off-target channels": "#1 #2", "merging channels": "#0 (3 8)",
                                               "lost symbols": "8"}
    assert reports.channel_use(evaluation, share=0.95, mix=0.25) == {
        "off-target channels": "#2", "merging channels": "-", "lost symbols": "-"}  # #0 covers exactly 1/4 of the "8"s


def test_local_maxima_caps_and_checks():
    m = np.zeros((2, 30, 30))
    m[0, 5, 5], m[0, 5, 8], m[1, 20, 20] = 1.0, 0.9, 3.0  # (5, 8) is within radius 5 of a larger one
    dots = plots.local_maxima(m, radius=5)
    assert list(zip(dots.channel, dots.row, dots.col)) == [("B", 20, 20), ("A", 5, 5)]
    with pytest.raises(ValueError):
        plots.local_maxima(np.zeros((30, 30)))


def test_error_bars_and_errors_vs_density_and_scatter():
    frame = tidy_frame()
    fig, ax = plt.subplots()
    plots.error_bars(frame[frame.density == 0.5], ax, title="bars")
    saved_png(fig, "bars")
    with pytest.raises(ValueError):  # several densities per model: ambiguous
        plots.error_bars(frame, ax)
    fig, ax = plt.subplots()
    plots.errors_vs_density(frame[frame.model == "MT"], ax, bar=0.28125)
    assert ax.xaxis_inverted() and ax.get_xscale() == "log"
    saved_png(fig, "density")
    fig, ax = plt.subplots()
    plots.errors_vs_density(frame[(frame.model == "MT") & (frame.seed == 1)], ax)  # one seed: no band
    saved_png(fig, "density_one_seed")
    fig, ax = plt.subplots()
    plots.paired_scatter(frame[frame.density == 0.5], ax)
    saved_png(fig, "scatter")


# δ = 0.5 and the eleven grid densities from 10 steps above the LaTeX bar down to it, as the notebooks plot
LATEX_CURVE_DENSITIES = [0.5] + [1.190547e-04 / 0.75 ** k for k in range(11)]


def test_errors_vs_density_tick_labels_do_not_overlap():
    densities = LATEX_CURVE_DENSITIES
    frame = pd.DataFrame([{"density": d, "metric": m, "seed": s, "value": 10.0 + s}
                          for d in densities for m in ("FPE", "E2EE") for s in (1, 2)])
    fig, ax = plt.subplots(figsize=(8, 4.8))
    plots.errors_vs_density(frame, ax, bar=1.190547e-04)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = sorted((label.get_window_extent(renderer) for label in ax.get_xticklabels() if label.get_text()),
                   key=lambda box: box.x0)
    assert len(boxes) == len(densities)
    assert all(left.x1 <= right.x0 for left, right in zip(boxes, boxes[1:]))
    plt.close(fig)


def test_errors_vs_density_names_the_bar_on_its_own_tick():
    # the bar is the sparsest density, so it sits at the right edge of the reversed axis, where the
    # legend goes when the curves leave the top right free (as the LaTeX-OCR curves do) and where a
    # long title ends (a label above the axes ran into the audio figure's title)
    frame = pd.DataFrame([{"density": d, "metric": m, "seed": 1, "value": v}
                          for d in LATEX_CURVE_DENSITIES for m, v in (("FNE", 20.0), ("FPE", 5.0))])
    plots.set_theme()  # the notebooks' fonts and figure size
    fig, ax = plt.subplots(figsize=(8, 4.8))
    plots.errors_vs_density(frame, ax, bar=1.190547e-04, title="AudioMNISTSequence: errors against density (preset cpu)")
    fig.canvas.draw()
    named = [(tick.get_loc(), tick.label1.get_text()) for tick in ax.xaxis.get_major_ticks() if "bar" in tick.label1.get_text()]
    assert named == [(pytest.approx(100 * 1.190547e-04), "0.0119 (bar)")]
    assert not [text for text in ax.texts if "bar" in text.get_text()]  # no second label
    plt.close(fig)


def test_errors_vs_density_names_the_bar_inside_the_axes_when_ticks_are_decades():
    densities = [0.5 * 0.75 ** k for k in range(20)]  # more than 12: decade ticks, the bar is none of them
    frame = pd.DataFrame([{"density": d, "metric": "FNE", "seed": 1, "value": 10.0} for d in densities])
    plots.set_theme()
    fig, ax = plt.subplots(figsize=(8, 4.8))
    plots.errors_vs_density(frame, ax, bar=densities[-1])
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    assert not [t for t in ax.xaxis.get_major_ticks() if "bar" in t.label1.get_text()]
    (label,) = [text for text in ax.texts if text.get_text().strip() == "bar"]
    box, inside = label.get_window_extent(renderer), ax.get_window_extent(renderer)
    assert inside.x0 <= box.x0 and box.x1 <= inside.x1 and inside.y0 <= box.y0 and box.y1 <= inside.y1
    plt.close(fig)


def confusion_counts():
    """True digits 0..3 map to channels C, A, D, B (plus leakage), and a 'none' row/column."""
    symbols, channels = ["2", "0", "3", "1"], ["A", "B", "C", "D", "E"]
    table = pd.DataFrame(0, index=symbols + [NONE], columns=channels + [NONE])
    main = {"0": "C", "1": "A", "2": "D", "3": "B"}
    for s, c in main.items():
        table.loc[s, c] = 90
        table.loc[s, "E"] = 4
        table.loc[s, NONE] = 6
    table.loc["3", "C"] = 30  # the second-largest in its row
    table.loc[NONE, "A"] = 3
    return table


def test_reorder_confusion_puts_row_maxima_on_the_diagonal():
    out = plots.reorder_confusion(confusion_counts())
    assert list(out.index) == ["0", "1", "2", "3", NONE]
    assert list(out.columns) == ["C", "A", "D", "B", "E", NONE]
    core = out.drop(index=NONE, columns=NONE).to_numpy()
    for i in range(core.shape[0]):
        assert core[i].argmax() == i
    sums = out.sum(axis=1)
    assert np.allclose(sums[sums > 0], 100.0)
    assert out.loc[NONE, "A"] == pytest.approx(100.0)


def test_confusion_matrix_figure():
    fig, ax = plt.subplots(figsize=(6, 5))
    percent = plots.confusion_matrix(confusion_counts(), ax, title="confusion")
    assert [t.get_text() for t in ax.get_xticklabels()] == list(percent.columns)
    assert ax.get_yticklabels()[-1].get_text().startswith(NONE)
    saved_png(fig, "confusion")


def test_write_table_provenance_and_round_trip(output_folders):
    df = pd.DataFrame({"model": ["MT", "ST"], "metric": ["CE", "CE"], "value": [1.25, 20.5]})
    info = reports.provenance("smoke", [1, 2], 50)
    path = reports.write_table(df, "example", info)
    assert path == output_folders / "tables" / "example.csv"
    lines = path.read_text().splitlines()
    header = [line for line in lines if line.startswith("# ")]
    assert lines[: len(header)] == header  # provenance leads
    keys = {line[2:].split(":", 1)[0] for line in header}
    assert {"preset", "seeds", "n samples", "package version", "date"} <= keys
    assert f"# package version: {sparling.__version__}" in header and "# preset: smoke" in header
    pd.testing.assert_frame_equal(pd.read_csv(path, comment="#"), df)
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]
    with pytest.raises(ValueError):
        reports.write_table(df, "a/b", info)


def test_summary_table_bootstrap_matches_bootstrap_mean():
    frame = tidy_frame()
    frame.loc[0, "value"] = np.nan  # a missing seed is dropped, as in bootstrap_mean
    summary = reports.summary_table(frame)
    assert len(summary) == 2 * 3 * 4
    for row in summary.itertuples():
        values = frame[(frame.model == row.model) & (frame.density == row.density) & (frame.metric == row.metric)]["value"]
        assert (row.mean, row.ci_low, row.ci_high) == pytest.approx(bootstrap_mean(values), nan_ok=True)
        assert row.seeds == values.notna().sum()
    assert list(summary.metric[:4]) == list(reports.METRICS)


def test_paper_numbers_are_labelled_as_the_papers():
    paper = reports.paper_digit_circle_numbers()
    value_columns = [c for c in paper.columns if c not in ("model", "metric")]
    assert value_columns == [reports.PAPER_COLUMN]
    assert "paper" in reports.PAPER_COLUMN and "9 seeds" in reports.PAPER_COLUMN
    values = paper.set_index(["model", "metric"])[reports.PAPER_COLUMN]
    assert values[("MT", "CE")] == 1.16 and values[("ST", "CE")] == 22.19 and values[("ST", "FPE")] == 0.0025
    ours = reports.summary_table(tidy_frame(densities=(0.5,)))
    compared = reports.compare_with_paper(ours)
    assert reports.PAPER_COLUMN in compared.columns
    assert not any("paper" in c for c in compared.columns if c != reports.PAPER_COLUMN)
    assert all(c.startswith("ours") for c in compared.columns if c not in ("model", "metric", "density", reports.PAPER_COLUMN))


def test_eval_samples_scales_down_only_at_smoke():
    assert reports.eval_samples("smoke", 10_000) < 10_000
    assert reports.eval_samples("cpu", 10_000) == 10_000
    assert reports.eval_samples("smoke", 10) == 10


@pytest.mark.parametrize("given, expected", [
    (None, [1, 2]), ("[3, 4]", [3, 4]), ("3,4", [3, 4]), ("3 4", [3, 4]), ("7", [7]), (7, [7]), ([5, 6], [5, 6]),
])
def test_seeds_to_use_reads_what_papermill_passes(given, expected):
    # papermill's -p passes "[1, 2, 3]" as a string: read as characters it would be seeds "[", "1", ","...
    assert reports.seeds_to_use((1, 2), given) == expected


@pytest.mark.parametrize("bad", ["[1, x]", "", "[]", [], [1.5], True, [-1]])
def test_seeds_to_use_rejects_what_is_not_a_list_of_seeds(bad):
    with pytest.raises(ValueError, match="seed"):
        reports.seeds_to_use((1,), bad)


def test_channel_budget_table_at_the_bar():
    # DigitCircle: each channel may fire bar·10⁴ ≈ 0.50 times per image, every digit occurs
    # ≈ 0.45 times → ceiling ≈ 1 (200 samples: a digit may come out above 0.50 by chance). The
    # paper's LaTeX map: 0.386 per channel, above every letter's and digit's rate (≈ 0.37).
    dc, latex = get_experiment("digit_circle_mt", "cpu"), get_experiment("latex_ocr_mt", "paper")
    table = reports.channel_budget_table([dc, latex], n=200).set_index("motif map")
    assert table.loc["100×100", "activations per channel per input"] == pytest.approx(dc.bar * 100 * 100)
    assert table.loc["100×100", "ceiling of (1−FNE)(1−CE)"] > 0.99
    assert table.loc["120×360", "activations per channel per input"] == pytest.approx(latex.bar * 120 * 360)
    assert table.loc["120×360", "bar / δ_min"] == pytest.approx(1.2819, abs=1e-3)
    assert table.loc["120×360", "ceiling of (1−FNE)(1−CE)"] > 0.99
