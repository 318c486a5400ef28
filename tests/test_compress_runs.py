"""End-to-end: the train_classifier and compress runners and their Hydra entry points."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vvjax import checkpoint, results
from vvjax.configs import to_config
from vvjax.runs import ConfigError, validate
from vvjax.runs.compress import CompressConfig, JointConfig, run_compress
from vvjax.runs.train_classifier import (
    ClassifierConfig,
    DataConfig,
    TrainClassifierConfig,
    run_train_classifier,
)

ROOT = Path(__file__).resolve().parent.parent
SMALL = ClassifierConfig(hidden=[20, 20], steps=120)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("clf")
    m = run_train_classifier(TrainClassifierConfig(model=SMALL, log_every=20), out)
    return out, m


def test_train_classifier_writes_a_loadable_model(trained):
    out, m = trained
    model = checkpoint.load(out / "model.vvjax")
    assert model.widths == m["widths"] == [64, 20, 20, 10]
    from vvjax import data

    d = data.digits()
    acc = float(np.mean(np.asarray(model(d.X_test)).argmax(1) == d.Y_test))
    assert m["test_accuracy"] == pytest.approx(acc) and acc > 0.5  # it learned something
    assert len(m["n_active"]) == 2 and m["config"]["model"]["lam"] == 5e-3
    with np.load(out / "history.npz") as h:
        assert h["step"][-1] == 120 and h["n_active"].shape[1] == 2
        loss, fit = h["loss"], h["data_fit"]
    # the convergence verdict, recomputed from the logged curves by its stated formula: spread of
    # the objective over the last window + 1 log points against max(|last|, floor * log 10), the
    # zero predictor's cross-entropy (uniform probabilities)
    crit = TrainClassifierConfig().convergence
    tail = loss[-(crit.window + 1):]
    rel = (tail.max() - tail.min()) / max(abs(tail[-1]), crit.floor * np.log(10))
    assert m["rel_change"] == pytest.approx(rel, rel=1e-12)
    assert m["fit_ratio"] == pytest.approx(fit[-1] / np.log(10), rel=1e-12)
    assert m["fit_ratio"] < 0.8 and not m["collapsed"]  # learned: below uniform guessing
    assert m["status"] == ("ok" if rel <= crit.rtol else "not_converged")
    assert checkpoint.read_metadata(out / "model.vvjax")["convergence"]["status"] == m["status"]


def _cfg(**kw):
    base = dict(seeds=[0], model=SMALL, fractions=[0.25, 0.5], target_fraction=0.5,
                methods=["lasso", "lasso+refit", "magnitude", "obs", "merge"],
                joint=JointConfig(layers=[0, 1], fractions=[0.5, 0.5],
                                  methods=["lasso", "magnitude+refit"]),
                figures=True)
    base.update(kw)
    return CompressConfig(**base)


def test_compress_runner_on_a_trained_checkpoint(trained, tmp_path):
    out, m_train = trained
    cfg = _cfg(checkpoints=[str(out / "model.vvjax")])
    m = run_compress(cfg, tmp_path)
    for name in ("metrics.json", "results.csv", "table.csv", "table.md",
                 "figures/accuracy_vs_width.png", "figures/output_change_vs_width.png",
                 "models/lasso_seed0.vvjax", "models/lasso_refit_seed0.vvjax"):
        assert (tmp_path / name).is_file(), name
    assert m["base"][0]["test_accuracy"] == pytest.approx(m_train["test_accuracy"])
    assert m["base"][0]["status"] == m_train["status"]  # from the checkpoint's metadata
    assert m["flagged_seeds"] == ({} if m_train["status"] == "ok" else {"0": m_train["status"]})
    assert m["training"]["0"]["status"] == m_train["status"]
    with open(tmp_path / "results.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    sweep = [r for r in rows if r["fraction"]]
    assert len(sweep) == 5 * 2 and len(rows) == 5 * 2 + 2
    by = {(r["method"], float(r["fraction"])): r for r in sweep}
    for f, k in ((0.25, 5), (0.5, 10)):
        lasso = by[("lasso", f)]
        assert int(lasso["width_requested"]) == k and float(lasso["rel_gap"]) <= 1e-6
        for meth in ("magnitude", "obs", "merge"):  # baselines at the lasso's width
            assert by[(meth, f)]["width"] == lasso["width"]
        drop = 100 * (float(lasso["test_accuracy_before"]) - float(lasso["test_accuracy_after"]))
        assert float(lasso["accuracy_drop_points"]) == pytest.approx(drop)
    small = checkpoint.load(tmp_path / "models" / "lasso_seed0.vvjax")
    meta = checkpoint.read_metadata(tmp_path / "models" / "lasso_seed0.vvjax")
    assert small.widths[2] == int(by[("lasso", 0.5)]["width"])
    assert len(meta["compressed"]["layers"][0]["kept"]) == small.widths[2]
    t = m["targets"]
    assert t["lasso_width"] == float(by[("lasso", 0.5)]["width"])
    assert t["lasso_minus_magnitude_points"] == pytest.approx(
        100 * (float(by[("lasso", 0.5)]["test_accuracy_after"])
               - float(by[("magnitude", 0.5)]["test_accuracy_after"])))
    joint = {r["method"]: r for r in m["joint"]}
    assert joint["lasso"]["widths"] == [10, 10] and joint["lasso"]["params_after"] == (
        64 * 10 + 10 + 10 * 10 + 10 + 10 * 10 + 10)
    md = (tmp_path / "table.md").read_text()
    assert "| lasso | 20 → 10.0 |" in md and "Hidden layers compressed together" in md
    # resume: the finished job is returned, nothing is rewritten; another config is refused
    mtime = os.path.getmtime(tmp_path / "metrics.json")
    assert run_compress(cfg, tmp_path)["config_hash"] == m["config_hash"]
    assert os.path.getmtime(tmp_path / "metrics.json") == mtime
    with pytest.raises(results.JobExistsError):
        run_compress(_cfg(checkpoints=[str(out / "model.vvjax")], tol=1e-7), tmp_path)


@pytest.mark.parametrize(("change", "message"), [
    (dict(target_fraction=0.3), r"target_fraction 0.3 must be one of fractions"),
    (dict(fractions=[0.5, 1.5], target_fraction=0.5),
     r"fractions must be a non-empty list of fractions in \(0, 1\), got \[0.5, 1.5\]"),
    (dict(fractions=[]), r"fractions must be a non-empty list"),
    (dict(methods=["lasso", "prune_everything"]), r"methods\[1\]: unknown method"),
    (dict(methods=["lasso", "merge+refit"]), r"methods\[1\]: 'merge\+refit' is"),
    (dict(methods=["lasso", "lasso"]), r"methods must be a non-empty list of distinct"),
    (dict(methods=["magnitude"]), r"methods must include 'lasso'"),
    (dict(checkpoints=["a", "b"]), r"checkpoints must give one trained model per seed"),
    (dict(seeds=[0, 0]), r"seeds must be a non-empty list of distinct seeds >= 0"),
    (dict(seeds=[1.5]), r"seeds\[0\] must be an integer, got 1.5"),
    (dict(layer=2), r"layer must be a hidden layer in \[0, 1\] of the 2-hidden-layer"),
    (dict(reweight=0), r"reweight must be >= 1, got 0"),
    (dict(tol=0.0), r"tol must be in \(0, 1\), got 0.0"),
    (dict(precision="float16"), r"precision must be one of \('float32', 'float64'\)"),
    (dict(figures="yes"), r"figures must be true or false"),
    (dict(data=DataConfig(name="imagenet")), r"data.name must be one of"),
    (dict(data=DataConfig(name="mnist1d", n_samples=10)), r"data.n_samples must be >= 20"),
    (dict(data=DataConfig(name="cifar10")), r"data.root must name the local CIFAR-10"),
    (dict(data=DataConfig(name="digits", root="/x")), r"data.root is for cifar10 only"),
    (dict(model=ClassifierConfig(hidden=[])), r"model.hidden must be a non-empty list"),
    (dict(model=ClassifierConfig(regularizer="prox")), r"model.regularizer must be one of"),
    (dict(model=ClassifierConfig(lr=0.0)), r"model.lr must be > 0"),
    (dict(model=ClassifierConfig(batch_size=0)), r"model.batch_size must be >= 1"),
    (dict(joint=JointConfig(layers=[0, 1], fractions=[0.5])),
     r"joint.fractions must give one fraction per joint.layers entry \(2\), got 1"),
    (dict(joint=JointConfig(layers=[0, 2], fractions=[0.5, 0.5])),
     r"joint.layers must be hidden layers in \[0, 1\]"),
    (dict(joint=JointConfig(layers=[1, 1], fractions=[0.5, 0.5])), r"joint.layers must be"),
    (dict(joint=JointConfig(methods=["rwlasso"])), r"joint.methods: use 'lasso'"),
    (dict(joint=JointConfig(methods=["lasso", "nope"])), r"joint.methods\[1\]: unknown"),
])
def test_bad_compress_values_fail_before_any_work(change, message, tmp_path):
    with pytest.raises(ConfigError, match=message):
        run_compress(_cfg(**change), tmp_path / "job")
    assert not (tmp_path / "job").exists()  # refused before the job started


@pytest.mark.parametrize(("change", "message"), [
    (dict(seed=-1), r"seed must be >= 0"),
    (dict(log_every=0), r"log_every must be >= 1"),
    (dict(model=ClassifierConfig(steps=0)), r"model.steps must be >= 1"),
    (dict(model=ClassifierConfig(activation="swish")), r"model.activation must be one of"),
    (dict(model=ClassifierConfig(dtype="float16")), r"model.dtype must be one of"),
    (dict(model=ClassifierConfig(decay="all")), r"model.decay must be one of"),
    (dict(data=DataConfig(seed=-2)), r"data.seed must be >= 0"),
])
def test_bad_train_classifier_values_fail_before_any_work(change, message, tmp_path):
    with pytest.raises(ConfigError, match=message):
        run_train_classifier(TrainClassifierConfig(**change), tmp_path / "job")
    assert not (tmp_path / "job").exists()


def test_missing_files_fail_before_the_job_starts(tmp_path):
    with pytest.raises(ConfigError, match=r"data.root .* is not a folder.*never downloads"):
        run_compress(_cfg(data=DataConfig(name="cifar10", root=str(tmp_path / "none"))),
                     tmp_path / "job")
    (tmp_path / "cifar").mkdir()
    with pytest.raises(ConfigError, match=r"data_batch_1.* is missing"):
        run_train_classifier(TrainClassifierConfig(
            data=DataConfig(name="cifar10", root=str(tmp_path / "cifar"))), tmp_path / "job")
    with pytest.raises(ConfigError, match=r"checkpoints\[0\] \(.*nowhere.vvjax\)"):
        run_compress(_cfg(checkpoints=[str(tmp_path / "nowhere.vvjax")]), tmp_path / "job")
    assert not (tmp_path / "job").exists()


def test_checkpoint_that_does_not_fit_is_refused_before_the_job_starts(tmp_path):
    from flax import nnx

    from vvjax.models import DeepVVNet

    path = checkpoint.save(DeepVVNet([40, 8, 10], rngs=nnx.Rngs(0)), tmp_path / "m.vvjax")
    with pytest.raises(ConfigError, match=r"checkpoints\[0\].*maps 40 inputs to 10 outputs; "
                                          r"data set digits has 64 inputs"):
        run_compress(_cfg(checkpoints=[str(path)]), tmp_path / "run")
    path = checkpoint.save(DeepVVNet([64, 8, 10], rngs=nnx.Rngs(0)), tmp_path / "one.vvjax")
    with pytest.raises(ConfigError, match=r"joint.layers for checkpoints\[0\]"):
        run_compress(_cfg(checkpoints=[str(path)]), tmp_path / "run")  # one hidden layer only
    assert not (tmp_path / "run").exists()


def test_unknown_keys_are_named_and_integral_floats_accepted():
    with pytest.raises(ConfigError, match="unknown config key 'joint.kk'"):
        to_config({"joint": {"kk": 1}}, "compress")
    with pytest.raises(ConfigError, match="unknown config key 'model.lamda'"):
        to_config({"model": {"lamda": 1e-3}}, "train_classifier")
    cfg = validate(CompressConfig(seeds=[0.0, 1e1], model=ClassifierConfig(steps=2e3)))
    assert cfg.seeds == [0, 10] and cfg.model.steps == 2000 and type(cfg.model.steps) is int
    assert results.config_hash(cfg) == results.config_hash(CompressConfig(
        seeds=[0, 10], model=ClassifierConfig(steps=2000)))
    # figures and save_models change no number: not in the config hash
    assert results.config_hash(CompressConfig(figures=False, save_models=False)) == \
        results.config_hash(CompressConfig())


def _run(script, args, timeout=600):
    env = {**os.environ, "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, str(ROOT / "experiments" / script), *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.mark.slow
def test_entry_points_train_then_compress(tmp_path):
    sweep = tmp_path / "train"
    proc = _run("train_classifier.py", ["-m", "debug=smoke", "seed=0",
                                        f"hydra.sweep.dir={sweep}"])
    (job,) = [p for p in sweep.iterdir() if p.is_dir()]
    m_train = json.loads((job / "metrics.json").read_text())
    assert job.name == m_train["config_hash"]  # the folder is the config hash
    assert "test accuracy" in proc.stdout and m_train["status"] in proc.stdout
    assert (job / ".hydra" / "config.yaml").is_file()
    # the smoke training logs 4 points, fewer than the criterion's window: not converged, flagged
    assert m_train["status"] == "not_converged"
    agg = subprocess.run([sys.executable, str(ROOT / "experiments" / "aggregate.py"), str(sweep)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert agg.returncode == 0, agg.stderr
    assert f"flagged: {job.name}: training not_converged" in agg.stderr
    model = job / "model.vvjax"
    proc = _run("compress.py", ["debug=smoke", f"checkpoints=[{model}]",
                                f"hydra.run.dir={tmp_path / 'c'}"])
    assert "lasso keeps" in proc.stdout
    m = json.loads((tmp_path / "c" / "metrics.json").read_text())
    assert m["width"] == 16 and m["targets"]["lasso_width"] == 8
    assert m["base"][0]["status"] == m_train["status"]
    assert (tmp_path / "c" / ".hydra" / "config.yaml").is_file()
    bad = subprocess.run([sys.executable, str(ROOT / "experiments" / "compress.py"),
                          "debug=smoke", "+fractionz=[0.1]", f"hydra.run.dir={tmp_path / 'b'}"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "unknown config key 'fractionz'" in bad.stderr
    assert not any((tmp_path / "b").glob("*.json")) and not (tmp_path / "b" / ".hydra").exists()
    # a sweep with one bad job runs nothing
    bad = subprocess.run([sys.executable, str(ROOT / "experiments" / "train_classifier.py"), "-m",
                          "debug=smoke", "model.lr=1e-3,0", f"hydra.sweep.dir={tmp_path / 's'}"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2, bad.stdout + bad.stderr
    assert "1 of 2 sweep jobs have a bad config; nothing was run" in bad.stderr
    assert "model.lr must be > 0, got 0" in bad.stderr
    assert not (tmp_path / "s").exists() or not any((tmp_path / "s").rglob("metrics.json"))
