"""vvjax-reproduce end to end on the smoke presets: every figure and every report table, and a
rerun into the same folder that retrains nothing; sweeps expanded as Hydra's multirun expands
them."""

import csv
import itertools
import os
import re
import shutil
import subprocess
import sys

import pytest
from omegaconf import OmegaConf

from vvjax import reproduce

# every figure of the smoke run (the compression ones are asserted below by name as well)
NEW_FIGURES = [
    "width_sweep/fast/figures/width_vs_n.png",
    "width_sweep/fast/figures/width_vs_lambda.png",
    "width_sweep/fast/figures/sharing_vs_d.png",
    "width_sweep/linnerud/figures/width_vs_lambda.png",
    "m1_contrast/m1/figures/sharing_vs_d.png",
    "activations/activations/figures/activation_balance.png",
    "deep_widths/teacher/figures/widths_per_layer.png",
]
# section -> the header rows of its tables, each expected once
TABLES = {
    "width_sweep": ["| check | paper | vvjax | difference explained |",
                    "| data | N | D | members ok | learned | sparsified | certified |",
                    "| λ | members ok | learned | sparsified | certified |"],
    "m1_contrast": ["| D | VV: members ok | VV: active | VV: used by all outputs |",
                    "| quantity | paper | vvjax | difference explained |"],
    "activations": ["| activation | λ | members ok | (weight decay − VV) / VV |",
                    "| quantity | paper | vvjax | difference explained |"],
    "deep_widths": ["| check | paper | vvjax | difference explained |",
                    "| depth | λ | members ok | learned | certified |"],
}


def _section(md: str, key: str) -> str:
    """The report's text of one section (from its anchor to the next)."""
    start = md.index(f'<a id="{key}"></a>')
    nxt = md.find('<a id="', start + 1)
    return md[start:] if nxt < 0 else md[start:nxt]


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
    assert set(NEW_FIGURES) <= set(figures)
    for exp in reproduce.EXPERIMENTS:
        assert f'<a id="{exp.name}"></a>' in md
        for label in exp.job_set(smoke=True):
            folder = out / exp.name / label
            # a single job, or a sweep: its points' folders and the multirun's aggregation
            assert (folder / "metrics.json").is_file() or (folder / "summary.csv").is_file()
    assert md.count("| panel | paper (min–max) |") == 3  # Figs. 3, 4, 5
    # compression: the paper-style table with baselines, by width, joint, paper rows, targets
    assert md.count("| method | neurons kept | test accuracy before → after |") == 1
    assert md.count("| method | 25% (6) | 50% (12) |") == 1
    assert md.count("| method | widths | params |") == 1
    for key in ("neuron_sharing", "compress"):
        assert _section(md, key).count("| quantity | paper | vvjax |") == 1
    assert md.count("| target (issue 10, digits MLP 64-512-512-10) | measured | verdict |") == 1
    assert "compress/digits/figures/accuracy_vs_width.png" in figures
    for key, headers in TABLES.items():
        text = _section(md, key)
        for h in headers:
            assert text.count(h) == 1, (key, h)
    # the sweep ran as a multirun: 2 jobs (N = 4, D = 1, 2) x 2 lambdas x 2 seeds, aggregated
    with open(out / "width_sweep" / "fast" / "summary.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 8 and {r["d_out"] for r in rows} == {"1", "2"}
    # the sparsity theorem on every member: 12 width-sweep members, 4 VV members of the contrast
    ws = _section(md, "width_sweep")
    assert re.search(r"of its own fit [^|]*\| [^|]* \| 0 of 12 members above \| agrees \|", ws)
    assert re.search(r"sparsified width ≤ [^|]*\| [^|]* \| 0 of 12 members above \| agrees", ws)
    deep = _section(md, "deep_widths")
    assert re.search(r"\| 0 of 5 layers above \| agrees \|", deep)  # depths 2 + 3
    # members that did not converge are counted (the smoke runs are all not_converged)
    assert "| 12 of 12 (12 not_converged) |" in ws  # left out
    assert "| 4 of 4 (4 not_converged) / 4 of 4 (4 not_converged) |" in _section(md, "m1_contrast")
    stamps = {p: os.path.getmtime(p) for p in out.glob("**/metrics.json")}
    # 1 neuron sharing + 3 lasso + 3 width sweep + 2 M,1 + 2 activations + 1 deep + 1 compress
    assert len(stamps) == 13
    again = subprocess.run([*cmd, str(out), "--smoke"], capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("already finished") == n
    assert {p: os.path.getmtime(p) for p in out.glob("**/metrics.json")} == stamps


def test_sweeps_expand_like_a_multirun():
    # the preset's grid, read from its YAML, is the product Hydra's basic sweeper runs
    path = reproduce.conf_dir() / "width_sweep" / "preset" / "fast.yaml"
    params = OmegaConf.to_container(OmegaConf.load(path))["hydra"]["sweeper"]["params"]
    axes = [[f"{k}={v}" for v in str(vals).split(",")] for k, vals in params.items()]
    grid = reproduce.expand_sweep("width_sweep", ["preset=fast"])
    assert sorted(tuple(sorted(p[:3])) for _, p in grid) == sorted(
        tuple(sorted(p)) for p in itertools.product(*axes))
    assert len({name for name, _ in grid}) == len(grid) == 24
    # overrides replace the preset's axis of the same key; a plain value ends the sweep of it
    grid = reproduce.expand_sweep("width_sweep", ["preset=fast", "data.n=4", "data.d_out=1,2"])
    assert [name for name, _ in grid] == ["data.d_out=1,data.kind=teacher",
                                          "data.d_out=1,data.kind=random",
                                          "data.d_out=2,data.kind=teacher",
                                          "data.d_out=2,data.kind=random"]
    assert all("data.n=4" in p and "preset=fast" in p for _, p in grid)
    assert reproduce.expand_sweep("width_sweep", ["preset=linnerud"]) is None
    assert reproduce.expand_sweep("deep_widths", ["preset=digits"]) is None


@pytest.mark.slow
def test_every_fast_full_and_smoke_job_composes():
    names = set()
    for exp in reproduce.EXPERIMENTS:
        for mode in ({}, {"full": True}, {"smoke": True}):
            for overrides in exp.job_set(**mode).values():
                overrides = [*overrides, *(["debug=smoke"] if "smoke" in mode else [])]
                grid = reproduce.expand_sweep(exp.conf_name, overrides) or [("", overrides)]
                for _, point in grid:
                    cfg = reproduce._compose(exp.conf_name, point)
                    names.add(type(cfg).__name__)
    assert names == {"NeuronSharingConfig", "LassoBoundsConfig", "WidthSweepConfig",
                     "DeepWidthsConfig", "CompressConfig"}


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="only: unknown experiment"):
        reproduce.run("unused", only=["figure9"])
    with pytest.raises(ValueError, match=r"unknown experiment\(s\) \['figure9'\]"):
        reproduce.run("unused", only="compress,figure9")  # a string is split at commas
    proc = subprocess.run([sys.executable, "-m", "vvjax.reproduce", "--only", "nope"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "unknown experiment" in proc.stderr


def test_a_folder_holding_another_config_is_refused_before_any_work(tmp_path):
    """E.g. --full into a folder of a fast run: the shared label's folder holds another finished
    config; nothing runs, not even the experiments before it."""
    from vvjax.results import JobExistsError, save_json

    (tmp_path / "compress" / "digits").mkdir(parents=True)
    save_json(tmp_path / "compress" / "digits" / "metrics.json", {"config_hash": "0" * 16})
    with pytest.raises(JobExistsError, match="different config"):
        reproduce.run(tmp_path, only=["neuron_sharing", "compress"], smoke=True, log=lambda m: None)
    assert not (tmp_path / "neuron_sharing").exists()
