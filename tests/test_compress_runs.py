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
    m = run_train_classifier(TrainClassifierConfig(model=SMALL, log_every=40), out)
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
    rows = list(csv.DictReader(open(tmp_path / "results.csv")))
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


def test_compress_config_errors_are_named(tmp_path):
    cases = [
        (dict(target_fraction=0.3), "target_fraction 0.3 must be one of fractions"),
        (dict(fractions=[0.5, 1.5], target_fraction=0.5), r"must be in \(0, 1\)"),
        (dict(methods=["lasso", "prune_everything"]), "methods: unknown method"),
        (dict(methods=["magnitude"]), "methods must include 'lasso'"),
        (dict(checkpoints=["a", "b"]), "checkpoints must give one trained model per seed"),
        (dict(data=DataConfig(name="imagenet")), "data.name must be one of"),
        (dict(data=DataConfig(name="cifar10")), "data.root must name the local CIFAR-10"),
        (dict(data=DataConfig(name="digits", root="/x")), "data.root is for cifar10 only"),
        (dict(joint=JointConfig(layers=[0, 1], fractions=[0.5])), "one fraction per"),
    ]
    for kw, match in cases:
        with pytest.raises(ValueError, match=match):
            run_compress(_cfg(**kw), tmp_path / "x")
    assert not (tmp_path / "x").exists()  # refused before the job started
    with pytest.raises(ValueError, match="data.root .* is not a folder"):
        run_compress(_cfg(data=DataConfig(name="cifar10", root=str(tmp_path / "none"))),
                     tmp_path / "y")


def test_checkpoint_of_another_data_set_is_refused(tmp_path):
    from flax import nnx

    from vvjax.models import DeepVVNet

    path = checkpoint.save(DeepVVNet([40, 8, 10], rngs=nnx.Rngs(0)), tmp_path / "m.vvjax")
    with pytest.raises(ValueError, match=r"checkpoints\[0\].*maps 40 inputs"):
        run_compress(_cfg(checkpoints=[str(path)]), tmp_path / "run")


def _run(script, args, timeout=600):
    env = {**os.environ, "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, str(ROOT / "experiments" / script), *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.mark.slow
def test_entry_points_train_then_compress(tmp_path):
    proc = _run("train_classifier.py", ["debug=smoke", f"hydra.run.dir={tmp_path / 'train'}"])
    assert "test accuracy" in proc.stdout
    model = tmp_path / "train" / "model.vvjax"
    assert model.is_file()
    proc = _run("compress.py", ["debug=smoke", "model.hidden=[16,16]",
                                f"checkpoints=[{model}]", f"hydra.run.dir={tmp_path / 'c'}"])
    assert "lasso keeps" in proc.stdout
    m = json.loads((tmp_path / "c" / "metrics.json").read_text())
    assert m["width"] == 16 and m["targets"]["lasso_width"] == 8
    assert (tmp_path / "c" / ".hydra" / "config.yaml").is_file()
    bad = subprocess.run([sys.executable, str(ROOT / "experiments" / "compress.py"),
                          "debug=smoke", "fractionz=[0.1]", f"hydra.run.dir={tmp_path / 'b'}"],
                         cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode != 0 and "fractionz" in bad.stderr
