"""vvjax-reproduce end to end on the smoke presets: every figure and every report table, and a
rerun into the same folder that retrains nothing."""

import os
import re
import shutil
import subprocess
import sys

import pytest

from vvjax import reproduce


@pytest.mark.slow
def test_reproduce_smoke_end_to_end_and_resume(tmp_path):
    out = tmp_path / "rep"
    exe = shutil.which("vvjax-reproduce")
    cmd = [exe] if exe else [sys.executable, "-m", "vvjax.reproduce"]
    first = subprocess.run([*cmd, str(out), "--smoke"], capture_output=True, text=True,
                           timeout=900)
    assert first.returncode == 0, first.stderr[-3000:]
    n = len(reproduce.EXPERIMENTS)
    assert re.search(rf"\[{n}/{n}\] \w+: \d+ job\(s\) in [0-9.]+ s", first.stdout)
    md = (out / "REPORT.md").read_text()
    page = (out / "REPORT.html").read_text()
    figures = re.findall(r"!\[[^]]*\]\(([^)]+\.png)\)", md)
    assert figures and all((out / f).is_file() for f in figures)
    assert page.count("data:image/png;base64,") == len(figures)  # self-contained
    for exp in reproduce.EXPERIMENTS:
        assert f'<a id="{exp.name}"></a>' in md
        for label in exp.jobs:
            assert (out / exp.name / label / "metrics.json").is_file()
    assert md.count("| panel | paper (min–max) |") == 3  # Figs. 3, 4, 5
    # compression: the paper-style table with baselines, by width, joint, paper rows, targets
    assert md.count("| method | neurons kept | test accuracy before → after |") == 1
    assert md.count("| method | 25% (6) | 50% (12) |") == 1
    assert md.count("| method | widths | params |") == 1
    assert md.count("| quantity | paper | vvjax |") == 2  # neuron sharing and compression
    assert md.count("| target (issue 10, digits MLP 64-512-512-10) | measured | verdict |") == 1
    assert "compress/digits/figures/accuracy_vs_width.png" in figures
    stamps = {p: os.path.getmtime(p) for p in out.glob("*/*/metrics.json")}
    again = subprocess.run([*cmd, str(out), "--smoke"], capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("already finished") == n
    assert {p: os.path.getmtime(p) for p in out.glob("*/*/metrics.json")} == stamps


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="only: unknown experiment"):
        reproduce.run("unused", only=["figure9"])
    proc = subprocess.run([sys.executable, "-m", "vvjax.reproduce", "--only", "nope"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "unknown experiment" in proc.stderr
