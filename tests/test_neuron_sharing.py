"""End-to-end: the neuron-sharing runner and its Hydra entry point."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vvjax import results
from vvjax.runs.neuron_sharing import NeuronSharingConfig, TeacherDataConfig, run_neuron_sharing

ROOT = Path(__file__).resolve().parent.parent
ENTRY = ROOT / "experiments" / "neuron_sharing.py"


def _smoke(**kw):
    return NeuronSharingConfig(data=TeacherDataConfig(n=12), steps=300, log_every=100, **kw)


def test_runner_writes_files_and_resumes(tmp_path):
    cfg = _smoke()
    m = run_neuron_sharing(cfg, tmp_path)
    for name in ("metrics.json", "arrays.npz", "history.npz", "figures/neurons_weight_decay.png",
                 "figures/neurons_no_weight_decay.png", "figures/training_curves.png"):
        assert (tmp_path / name).is_file(), name
    stored = json.loads((tmp_path / "metrics.json").read_text())
    assert stored["representer_bound"] == 12 ** 2
    assert stored["representer_bound_sharp"] == min(12 ** 2, 12 * 2)
    for run in ("weight_decay", "no_weight_decay"):
        r = stored["runs"][run]
        assert r["width"] == 24 and 0 <= r["n_shared_all"] <= r["n_shared"] <= r["n_active"] <= 24
        assert np.isfinite(r["mse"]) and r["vv_norm"] > 0
    assert stored["config"]["steps"] == 300 and stored["seed"] == cfg.seed
    assert stored["provenance"]["versions"]["flax"] and "git_commit" in stored["provenance"]
    mtime = os.path.getmtime(tmp_path / "metrics.json")
    assert run_neuron_sharing(cfg, tmp_path)["config_hash"] == m["config_hash"]
    assert os.path.getmtime(tmp_path / "metrics.json") == mtime
    with pytest.raises(results.JobExistsError):
        run_neuron_sharing(_smoke(seed=1), tmp_path)


def test_same_config_and_seed_give_same_numbers(tmp_path):
    a = run_neuron_sharing(_smoke(figures=False), tmp_path / "a")
    b = run_neuron_sharing(_smoke(figures=False), tmp_path / "b")
    assert a["runs"] == b["runs"]
    with np.load(tmp_path / "a" / "arrays.npz") as za, np.load(tmp_path / "b" / "arrays.npz") as zb:
        for k in za.files:
            np.testing.assert_array_equal(za[k], zb[k])


def test_weight_decay_shares_neurons_and_no_decay_keeps_all(tmp_path):
    """The paper's qualitative result on a reduced problem (N=20, width 40, 60k steps)."""
    cfg = NeuronSharingConfig(data=TeacherDataConfig(n=20, teacher_width=3), steps=60_000,
                              log_every=5_000, figures=False)
    m = run_neuron_sharing(cfg, tmp_path)
    wd, plain = m["runs"]["weight_decay"], m["runs"]["no_weight_decay"]
    assert plain["n_active"] == plain["width"] == 40
    assert wd["n_active"] <= 20  # weight decay prunes most of the 40 neurons ...
    assert wd["n_shared_all"] == wd["n_active"]  # ... and every survivor serves both outputs
    assert wd["n_active"] <= m["representer_bound"]


def _run(args, timeout=600):
    env = {**os.environ, "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, str(ENTRY), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.mark.slow
def test_entry_point_run_and_resumable_sweep(tmp_path):
    _run(["debug=smoke", f"hydra.run.dir={tmp_path / 'run'}"])
    assert (tmp_path / "run" / "metrics.json").is_file()
    assert (tmp_path / "run" / ".hydra" / "config.yaml").is_file()

    sweep = tmp_path / "sweep"
    args = ["-m", "debug=smoke", "seed=1,2", f"hydra.sweep.dir={sweep}"]
    _run(args)
    recs = results.load_sweep(sweep)
    assert [r["config.seed"] for r in recs] == [1, 2]
    mtimes = [os.path.getmtime(sweep / r["job"] / "metrics.json") for r in recs]
    _run(args)  # resume: nothing is recomputed or overwritten
    assert [os.path.getmtime(sweep / r["job"] / "metrics.json") for r in recs] == mtimes

    proc = subprocess.run([sys.executable, str(ROOT / "experiments" / "aggregate.py"), str(sweep)],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert len((sweep / "summary.jsonl").read_text().splitlines()) == 2


@pytest.mark.slow
def test_entry_point_rejects_unknown_key(tmp_path):
    proc = subprocess.run([sys.executable, str(ENTRY), "debug=smoke", "stepz=3",
                           f"hydra.run.dir={tmp_path}"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode != 0 and "stepz" in proc.stderr
