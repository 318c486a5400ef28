"""End-to-end: the neuron-sharing runner and its Hydra entry point."""

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from vvjax import results
from vvjax.runs.neuron_sharing import NeuronSharingConfig, TeacherDataConfig, run_neuron_sharing

ROOT = Path(__file__).resolve().parent.parent
ENTRY = ROOT / "experiments" / "neuron_sharing.py"


def _smoke(**kw):
    return NeuronSharingConfig(data=TeacherDataConfig(n=12), steps=300, log_every=100, **kw)


def _numpy_summary(W, b, V, X, Y, atol=1e-3):
    """The runner's counts and fits, recomputed with NumPy from the saved arrays (the paper's
    rule: neuron k is active when ||v_k|| ||(w_k, b_k)|| > atol and serves output j when
    |v_jk| ||(w_k, b_k)|| > atol)."""
    W, b, V, X, Y = (np.asarray(a, np.float64) for a in (W, b, V, X, Y))
    size = np.sqrt(np.sum(W ** 2, axis=1) + b ** 2)  # ||(w_k, b_k)||, shape (K,)
    A = np.abs(V) * size[None, :] > atol  # (D, K)
    active = np.linalg.norm(V, axis=0) * size > atol
    out = V @ np.maximum(W @ X.T - b[:, None], 0.0)  # (D, N)
    return {"n_active": int(active.sum()), "n_shared": int((A.sum(0) >= 2).sum()),
            "n_shared_all": int(A.all(0).sum()), "mse": float(np.mean((out - Y.T) ** 2)),
            "vv_norm": float(np.sum(np.linalg.norm(V, axis=0) * size))}


def test_runner_writes_files_and_resumes(tmp_path):
    cfg = _smoke()
    m = run_neuron_sharing(cfg, tmp_path)
    for name in ("metrics.json", "arrays.npz", "history.npz", "figures/neurons_weight_decay.png",
                 "figures/neurons_no_weight_decay.png", "figures/training_curves.png"):
        assert (tmp_path / name).is_file(), name
    stored = json.loads((tmp_path / "metrics.json").read_text())
    assert stored["representer_bound"] == 12 ** 2
    assert stored["representer_bound_sharp"] == min(12 ** 2, 12 * 2)
    with np.load(tmp_path / "arrays.npz") as z, np.load(tmp_path / "history.npz") as h:
        for run in ("weight_decay", "no_weight_decay"):
            r = stored["runs"][run]
            ref = _numpy_summary(z[f"{run}/W"], z[f"{run}/b"], z[f"{run}/V"], z["X"], z["Y"])
            for k in ("n_active", "n_shared", "n_shared_all"):
                assert r[k] == ref[k], (run, k)
            assert r["width"] == 24 and r["mse"] == pytest.approx(ref["mse"], rel=1e-5)
            assert r["vv_norm"] == pytest.approx(ref["vv_norm"], rel=1e-5)
            # the convergence verdict follows the stated criterion on the saved curves
            loss = h[f"{run}/loss"].astype(np.float64)
            base = float(np.mean(z["Y"].astype(np.float64) ** 2))
            assert r["fit_ratio"] == pytest.approx(h[f"{run}/data_fit"][-1] / base, rel=1e-6)
            assert len(loss) == 4  # 300 steps logged every 100: too short for a 5-block window
            assert r["status"] == "not_converged" and r["rel_change"] == "nan"
    assert stored["flagged_runs"] == {"weight_decay": "not_converged",
                                      "no_weight_decay": "not_converged"}
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
    """The paper's claim on the ``preset=jax`` run (N=50, width 100, 400k steps; the config's
    defaults), which converges: with weight decay a few neurons survive and every survivor
    serves both outputs; without, all 100 stay active."""
    m = run_neuron_sharing(NeuronSharingConfig(figures=False), tmp_path)
    wd, plain = m["runs"]["weight_decay"], m["runs"]["no_weight_decay"]
    assert wd["status"] == plain["status"] == "ok" and m["flagged_runs"] == {}
    assert plain["n_active"] == plain["width"] == 100
    assert 1 <= wd["n_active"] <= 10  # weight decay prunes at least 90 of the 100 neurons ...
    assert wd["n_shared_all"] == wd["n_active"]  # ... and every survivor serves both outputs
    assert wd["fit_ratio"] < 1e-3 and plain["fit_ratio"] < 1e-5  # both fit the teacher


def test_collapsed_run_is_flagged_not_counted(tmp_path):
    """Issue 12, item 2: ``preset=jax data.n=6 data.d_out=1 width=60`` with weight decay ends at
    a network that outputs 0 on every sample (its data fit equals mean(Y^2)) while some
    neurons keep large weights and count as "active". The run is reported as collapsed."""
    cfg = NeuronSharingConfig(data=TeacherDataConfig(n=6, d_out=1), width=60, steps=4_000,
                              log_every=500)
    m = run_neuron_sharing(cfg, tmp_path)
    wd = m["runs"]["weight_decay"]
    with np.load(tmp_path / "arrays.npz") as z:
        X, Y = z["X"].astype(np.float64), z["Y"].astype(np.float64)
        W, b, V = (z[f"weight_decay/{k}"].astype(np.float64) for k in "WbV")
    out = V @ np.maximum(W @ X.T - b[:, None], 0.0)
    assert np.all(out == 0.0)  # the network's output is exactly 0 on the data ...
    assert wd["mse"] == pytest.approx(np.mean(Y ** 2), rel=1e-6)
    assert wd["n_active"] >= 1  # ... yet the weight rule counts neurons
    assert wd["status"] == "collapsed" and wd["collapsed"]
    assert wd["fit_ratio"] == pytest.approx(1.0, rel=1e-6)
    assert m["flagged_runs"] == {"weight_decay": "collapsed"}
    assert m["runs"]["no_weight_decay"]["status"] == "ok"  # fits (ratio 0.04) and is flat


def _run(args, timeout=600, check=True):
    env = {**os.environ, "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, str(ENTRY), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    if check:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def _mtimes(sweep):
    return {p.parent.name: os.path.getmtime(p) for p in sweep.glob("*/metrics.json")}


@pytest.mark.slow
def test_entry_point_run_and_a_sweep_that_grows(tmp_path):
    """Issue 12, item 1: a finished sweep extended with one more value runs only the new
    config; job folders are named by config hash; job logs hold the run's lines; aggregation
    names duplicates and unfinished jobs."""
    _run(["debug=smoke", "steps=2e3", f"hydra.run.dir={tmp_path / 'run'}"])  # 2e3: an integer
    stored = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert stored["config"]["steps"] == 2000
    assert (tmp_path / "run" / ".hydra" / "config.yaml").is_file()
    log = (tmp_path / "run" / "neuron_sharing.log").read_text()
    assert "[neuron_sharing] weight_decay: " in log and "finished in" in log

    sweep = tmp_path / "sweep"
    base = ["-m", "debug=smoke", "figures=false", f"hydra.sweep.dir={sweep}"]
    lam = "runs.weight_decay.lam"
    _run([*base, f"{lam}=1e-4,3e-4"])
    first = _mtimes(sweep)
    recs = results.load_sweep(sweep)
    assert [r[f"config.{lam}"] for r in recs] == [1e-4, 3e-4]
    assert sorted(first) == sorted(r["config_hash"] for r in recs)  # folder = config hash
    # one more value *between* the old ones (it would take job number 1): only 2e-4 runs
    _run([*base, f"{lam}=1e-4,2e-4,3e-4"])
    grown = _mtimes(sweep)
    assert {k: grown[k] for k in first} == first and len(grown) == 3
    assert [r[f"config.{lam}"] for r in results.load_sweep(sweep)] == [1e-4, 3e-4, 2e-4]
    for job in grown:
        assert "[neuron_sharing] weight_decay: " in (sweep / job / "neuron_sharing.log").read_text()

    shutil.copytree(sweep / recs[0]["job"], sweep / "0")  # an old-layout copy of a finished job
    (sweep / "7").mkdir()
    (sweep / "7" / "neuron_sharing.log").write_text("")  # a job killed before it started
    proc = subprocess.run([sys.executable, str(ROOT / "experiments" / "aggregate.py"), str(sweep)],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert f"duplicate: 0 has the config of {recs[0]['job']}" in proc.stderr
    assert "unfinished: 7: " in proc.stderr
    status = json.loads((sweep / "summary_status.json").read_text())
    assert status["duplicates"] == {"0": recs[0]["job"]} and list(status["unfinished"]) == ["7"]
    assert len((sweep / "summary.jsonl").read_text().splitlines()) == 3
    with open(sweep / "summary.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [float(r[f"config.{lam}"]) for r in rows] == [1e-4, 3e-4, 2e-4]
    counts = json.loads(rows[0]["runs.weight_decay.per_output"])  # lists: JSON text
    assert len(counts) == 2 and all(isinstance(c, int) for c in counts)


@pytest.mark.slow
def test_entry_point_rejects_unknown_keys_and_bad_sweeps_before_work(tmp_path):
    proc = _run(["debug=smoke", "stepz=3", f"hydra.run.dir={tmp_path / 'a'}"], check=False)
    assert proc.returncode != 0 and "stepz" in proc.stderr
    # issue 8, item 5: ++ composes, then the entry point stops with the key's name
    proc = _run(["debug=smoke", "++runs.weight_decay.lamda=1e-4",
                 f"hydra.run.dir={tmp_path / 'b'}"], check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "unknown config key 'runs.weight_decay.lamda'" in proc.stderr
    assert not (tmp_path / "b" / "metrics.json").exists()
    assert not (tmp_path / "b" / ".hydra").exists()
    # issue 12, item 6: a bad value anywhere in a sweep stops it before the first job
    sweep = tmp_path / "sweep"
    proc = _run(["-m", "debug=smoke", "runs.weight_decay.lam=1e-4,-1", f"hydra.sweep.dir={sweep}"],
                check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "1 of 2 sweep jobs have a bad config; nothing was run" in proc.stderr
    assert "runs.weight_decay.lam must be >= 0, got -1.0" in proc.stderr
    assert not list(sweep.glob("*/metrics.json"))


@pytest.mark.slow
def test_two_entry_points_in_one_folder(tmp_path):
    """Issue 8, item 6: two runs started at once into one hydra.run.dir: one finishes, the
    other is refused with a clear error, and the folder's record agrees with its result."""
    env = {**os.environ, "MPLBACKEND": "Agg"}
    procs = [subprocess.Popen([sys.executable, str(ENTRY), "debug=smoke", "figures=false",
                               f"seed={seed}", f"hydra.run.dir={tmp_path}"], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for seed in (1, 2)]
    outs = [p.communicate(timeout=600) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 1], outs
    refused = outs[[p.returncode for p in procs].index(1)][1]
    assert f"{tmp_path} is in use by pid" in refused or "different config" in refused, refused
    seed = json.loads((tmp_path / "metrics.json").read_text())["seed"]
    hydra_seed = OmegaConf.load(tmp_path / ".hydra" / "config.yaml").seed
    assert seed == hydra_seed == [1, 2][[p.returncode for p in procs].index(0)]
