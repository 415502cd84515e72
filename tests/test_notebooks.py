"""The notebooks run end to end at preset ``smoke`` (papermill, kernel ``sparling``)
and write their figures and tables; their first code cell is the papermill parameters cell."""

from pathlib import Path

import nbformat
import pandas as pd
import pytest

from sparling.experiments import get_experiment

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
KERNEL = "sparling"
FIG1 = "fig1_digit_circle.ipynb"
RESULTS = "digit_circle_results.ipynb"
THEOREM = "theorem_setting.ipynb"
AUDIO = "audio_results.ipynb"
LATEX = "latex_ocr_results.ipynb"


def first_code_cell(path: Path):
    notebook = nbformat.read(path, as_version=4)
    return next(cell for cell in notebook.cells if cell.cell_type == "code")


def test_every_notebook_is_smoke_tested():
    assert {p.name for p in NOTEBOOKS.glob("*.ipynb")} == {FIG1, RESULTS, THEOREM, AUDIO, LATEX}


@pytest.mark.parametrize("name", [FIG1, RESULTS, THEOREM, AUDIO, LATEX])
def test_first_code_cell_is_tagged_parameters(name):
    cell = first_code_cell(NOTEBOOKS / name)
    assert "parameters" in cell.metadata.get("tags", [])
    for parameter in ("preset", "seeds", "device", "n_eval"):
        assert f"{parameter} =" in cell.source


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    """One store for both notebooks, so the results notebook reuses fig1's MT seed-1 run."""
    from jupyter_client.kernelspec import KernelSpecManager

    if KERNEL not in KernelSpecManager().find_kernel_specs():
        pytest.fail(f"Jupyter kernel {KERNEL!r} is not registered; run "
                    f"`.venv/bin/python -m ipykernel install --sys-prefix --name {KERNEL}`")
    root = tmp_path_factory.mktemp("notebooks")
    return {"store": root / "runs", "figures": root / "figures", "tables": root / "tables", "executed": root / "executed"}


def execute(name: str, outputs: dict, monkeypatch, **parameters) -> str:
    import papermill

    monkeypatch.setenv("SPARLING_STORE", str(outputs["store"]))
    monkeypatch.setenv("SPARLING_FIGURES", str(outputs["figures"]))
    monkeypatch.setenv("SPARLING_TABLES", str(outputs["tables"]))
    outputs["executed"].mkdir(exist_ok=True)
    out = outputs["executed"] / name
    papermill.execute_notebook(str(NOTEBOOKS / name), str(out), parameters={"preset": "smoke", **parameters},
                               kernel_name=KERNEL, cwd=str(NOTEBOOKS), progress_bar=False)
    executed = nbformat.read(out, as_version=4)
    return "".join(o.get("text", "") for c in executed.cells if c.cell_type == "code" for o in c.outputs
                   if o.get("output_type") == "stream" and o.get("name") == "stdout")


def assert_written(path: Path, stdout: str) -> None:
    assert path.is_file() and path.stat().st_size > 0, path
    assert str(path) in stdout, f"{path} was not printed"


def test_fig1_notebook_smoke(outputs, monkeypatch):
    stdout = execute(FIG1, outputs, monkeypatch)
    assert "RandomState(6): y = 0 7 2 6 3 4" in stdout
    assert_written(outputs["figures"] / "fig1_digit_circle.png", stdout)


def test_results_notebook_smoke(outputs, monkeypatch):
    stdout = execute(RESULTS, outputs, monkeypatch)
    for figure in ("digit_circle_motif_errors", "digit_circle_errors_vs_density", "digit_circle_confusion"):
        assert_written(outputs["figures"] / f"{figure}.png", stdout)
    for table in ("digit_circle_results", "digit_circle_errors_vs_density", "digit_circle_channel_use"):
        path = outputs["tables"] / f"{table}.csv"
        assert_written(path, stdout)
        assert "# preset: smoke" in path.read_text().splitlines()
        assert len(pd.read_csv(path, comment="#")) > 0
    results = pd.read_csv(outputs["tables"] / "digit_circle_results.csv", comment="#")
    assert set(results["model"]) == {"MT", "ST"}
    assert "paper (9 seeds, GPU) [%]" in results.columns
    use = pd.read_csv(outputs["tables"] / "digit_circle_channel_use.csv", comment="#")
    assert set(use["model"]) == {"MT", "ST"} and {"off-target channels", "merging channels", "lost symbols"} <= set(use.columns)
    densities = pd.read_csv(outputs["tables"] / "digit_circle_errors_vs_density.csv", comment="#")
    assert densities["density"].max() == 0.5 and densities["steps_above_bar"].min() == 0


def test_theorem_notebook_smoke(outputs, monkeypatch):
    stdout = execute(THEOREM, outputs, monkeypatch)
    for figure in ("theorem_information_bound", "theorem_motif_vs_end_to_end"):
        assert_written(outputs["figures"] / f"{figure}.png", stdout)
    for table in ("theorem_density_targets", "theorem_alpha", "theorem_points", "theorem_summary"):
        assert_written(outputs["tables"] / f"{table}.csv", stdout)
    alphas = pd.read_csv(outputs["tables"] / "theorem_alpha.csv", comment="#")
    assert round(alphas.alpha.iloc[0], 3) == 0.465
    points = pd.read_csv(outputs["tables"] / "theorem_points.csv", comment="#")
    assert set(points.multiple) == {1, 2, 4, 8} and points.held.any()
    assert "theorem's k scaling for the toy" in stdout


def test_audio_notebook_smoke(outputs, monkeypatch):
    stdout = execute(AUDIO, outputs, monkeypatch)
    for figure in ("audio_motif_errors", "audio_errors_vs_density", "audio_confusion", "audio_examples"):
        assert_written(outputs["figures"] / f"{figure}.png", stdout)
    for table in ("audio_results", "audio_errors_vs_density"):
        assert_written(outputs["tables"] / f"{table}.csv", stdout)
    results = pd.read_csv(outputs["tables"] / "audio_results.csv", comment="#")
    assert set(results.speakers) == {"synthesized"}
    assert set(results["paper setting"]) == {"real AudioMNIST speakers"}
    assert results.set_index("metric").loc["CE", "paper (9 seeds, GPU) [%]"] == 5.47


def test_latex_notebook_smoke(outputs, monkeypatch):
    stdout = execute(LATEX, outputs, monkeypatch, seeds="[1]")  # a string, as `-p seeds "[1]"` passes it
    assert "seeds [1]," in stdout
    for figure in ("latex_ocr_motif_errors", "latex_ocr_errors_vs_density", "latex_ocr_confusion", "latex_ocr_examples"):
        assert_written(outputs["figures"] / f"{figure}.png", stdout)
    for table in ("latex_ocr_results", "latex_ocr_errors_vs_density", "latex_ocr_channel_budget", "latex_ocr_missed_by_symbol"):
        assert_written(outputs["tables"] / f"{table}.csv", stdout)
    missed = pd.read_csv(outputs["tables"] / "latex_ocr_missed_by_symbol.csv", comment="#")
    assert missed["share of FNE [%]"].is_monotonic_decreasing
    assert set(missed.symbol) <= set(get_experiment("latex_ocr_mt", "smoke").build_domain().motif_symbols)
    budget = pd.read_csv(outputs["tables"] / "latex_ocr_channel_budget.csv", comment="#").set_index("preset")
    assert budget.loc["paper", "motif map"] == "120×360"
    assert budget.loc["smoke", "motif map"] != "120×360"
    results = pd.read_csv(outputs["tables"] / "latex_ocr_results.csv", comment="#")
    assert set(results.renderer) == {"mathtext"}
    assert set(results["paper setting"]) == {"pdflatex renders"}
    assert results.set_index("metric").loc["FNE", "paper (9 seeds, GPU) [%]"] == 14.20
