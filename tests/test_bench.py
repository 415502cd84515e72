"""The benchmark scripts run end to end at preset smoke (their figures are measured, not tested)."""

import re
import subprocess
import sys
from pathlib import Path

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
