"""The benchmark scripts run end to end at preset smoke (their figures are measured, not tested)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


def run_bench(script: str, *args: str) -> str:
    done = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_time_to_bar_trains_evaluates_and_says_when_it_reprints_a_stored_run(tmp_path):
    args = ("--preset", "smoke", "--n", "8", "--store", str(tmp_path), "--st")
    first = run_bench("time_to_bar.py", *args)
    assert first.count("== digit_circle_") == 2
    assert len(re.findall(r"^wall time +\d+\.\d min \(training", first, re.M)) == 2  # measured this time
    assert "not measured" not in first and "cached" not in first
    assert first.count("motif net body     fp32") == 2  # the smoke preset runs the body in fp32
    # the preset's spare channels are cut at its 2nd validation (8 samples each), 10 kept of 20
    kept = re.findall(r"^spare channels +dropped at 16 samples; kept \[([\d, ]+)\] of 20$", first, re.M)
    assert len(kept) == 2 and all(len(channels.split(",")) == 10 for channels in kept)
    for metric in ("E2EE", "FPE", "FNE", "CE", "FPE+FNE+CE"):
        assert f"\n{metric} " in first
    again = run_bench("time_to_bar.py", *args)
    assert again.count("not measured: the run was in the store") == 2
    assert again.count("evaluation         cached on 8 samples") == 2
    # the same numbers from the store
    e2ee_rows = [[line for line in out.splitlines() if line.startswith("E2EE")] for out in (first, again)]
    assert e2ee_rows[0] == e2ee_rows[1] and len(e2ee_rows[0]) == 2


def test_precision_speed_measures_both_bodies_of_each_experiment():
    out = run_bench("precision_speed.py", "--preset", "smoke", "--steps", "1", "--threads", "1",
                    "--experiments", "digit_circle_mt", "latex_ocr_mt")
    assert re.search(r"the cpu preset's body here: (bf16|fp32)$", out.splitlines()[0])
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[2:]}
    assert set(rows) == {"digit_circle_mt", "latex_ocr_mt"}
    for bf16, fp32, ratio in rows.values():
        assert float(bf16) > 0 and float(fp32) > 0
        assert abs(float(ratio) - float(fp32) / float(bf16)) < 0.01 + 0.01 * float(ratio)


def test_latex_false_positives_agree_with_the_metric(tmp_path):
    """The script's own geometry (activations outside every footprint) must give the FPE that the
    metric's matching gives: spec §6.1 consumes every activation inside any footprint."""
    train = subprocess.run([sys.executable, "-m", "sparling", "train", "latex_ocr_mt", "--preset", "smoke", "--seed", "1"],
                           capture_output=True, text=True, timeout=600, env={**os.environ, "SPARLING_STORE": str(tmp_path)})
    assert train.returncode == 0, train.stderr
    out = run_bench("latex_false_positives.py", "--preset", "smoke", "--store", str(tmp_path), "--steps", "1", "--n", "30")
    value = {key: float(re.search(rf"^{key} +([\d.]+)", out, re.M).group(1))
             for key in ("activations per sample", "matched motifs per sample", "outside every footprint",
                         r"FPE \(the metric\)")}
    outside, matched = value["outside every footprint"], value["matched motifs per sample"]
    assert 0 < outside <= value["activations per sample"]  # the smoke map is dense: some lie outside
    assert abs(100 * outside / (matched + outside) - value[r"FPE \(the metric\)"]) < 0.1
    rows = [line.split() for line in out.splitlines() if re.match(r"^ +#\d+ ", line)]
    # the channels with leftovers (acts/sample, % outside, both rounded) add up to the leftovers
    assert rows
    rounding = sum(0.005 * float(r[1]) + 0.01 for r in rows)
    assert sum(float(r[1]) * float(r[2]) / 100 for r in rows) == pytest.approx(outside, abs=rounding)


def test_latex_false_positives_refuses_a_missing_run(tmp_path):
    done = subprocess.run([sys.executable, str(BENCH / "latex_false_positives.py"), "--preset", "smoke",
                           "--store", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "no finished run of latex_ocr_mt/smoke seed 1" in done.stderr


def test_st_contrast_pooled_head_trains_mt_and_st_with_the_pooled_head_and_prints_their_evaluations(tmp_path):
    import importlib.util

    from sparling.experiments import evaluate, get_experiment, get_run
    from sparling.store import RunStore

    spec = importlib.util.spec_from_file_location("st_contrast_pooled_head", BENCH / "st_contrast_pooled_head.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    args = ("--preset", "smoke", "--n", "8", "--steps", "0", "1", "--store", str(tmp_path))
    out = run_bench("st_contrast_pooled_head.py", *args)
    assert out.count("== digit_circle_") == 2
    rows = re.findall(r"^ +(\d) +(\S+) +(MT|ST) +([\d.]+) +([\d.]+) +([\d.]+) +([\d.]+)  \S", out, re.M)
    assert [(steps, kind) for steps, _, kind, *_ in rows] == [("1", "MT"), ("1", "ST"), ("0", "MT"), ("0", "ST")]
    store = RunStore(tmp_path)
    for _, density, kind, fpe, fne, ce, e2ee in rows:
        variant = script.pooled_head_variant(f"digit_circle_{kind.lower()}", "smoke")
        assert f"(run {get_run(variant, 1, store).path})" in out  # the script trained the variant, not the preset
        result = evaluate(variant, 1, float(density), 8, store)  # the script's cached evaluation
        printed = [float(v) for v in (fpe, fne, ce, e2ee)]
        assert printed == pytest.approx([100 * result.fpe, 100 * result.fne, 100 * result.ce, 100 * result.e2ee], abs=0.006)
    # the variant's runs have their own keys: the preset's are not in the store
    assert not get_run(get_experiment("digit_circle_mt", "smoke"), 1, store).path.exists()
    # a second call reprints the stored runs and evaluations
    assert run_bench("st_contrast_pooled_head.py", *args).splitlines()[-6:] == out.splitlines()[-6:]
