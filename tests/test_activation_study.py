"""The activation study and the ||.||_{M,1} contrast on the width sweep's runner.

Weight decay trained by full-batch gradient descent: for a positively homogeneous activation
(leaky ReLU) the loss is invariant to the rescaling (a w_k, a b_k, v_k / a), so its gradient
conserves ||(w_k, b_k)||^2 - ||v_k||^2 and the decay shrinks that imbalance by about
exp(-2 lam lr t): at the end the weight-decay penalty equals the VV norm (``docs/paper.md``
§3.2). For GELU there is no such symmetry and the trained network stays measurably unbalanced.
"""

import pytest

from vvjax.runs import WidthSweepConfig, run_width_sweep
from vvjax.runs.width_sweep import SweepDataConfig

# lam lr t = 3e-2 * 0.05 * 4000 = 6: the imbalance of a homogeneous net is down by ~exp(-12)
STUDY = dict(regularizer="weight_decay", optimizer="sgd", lr=0.05, lr_rule="fixed",
             lams=[3e-2], seeds=[0], steps=4000, log_every=200, certify=False, figures=False,
             data=SweepDataConfig(kind="teacher", n=8, d_out=2, n_test=50))
BALANCED = 1e-4
"""Stated tolerance: relative gap (weight decay - VV norm) / VV norm of a balanced network."""


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("act")
    return {act: run_width_sweep(WidthSweepConfig(activation=act, **STUDY), root / act)
            for act in ("leaky_relu", "gelu")}


def test_leaky_relu_ends_balanced_gelu_does_not(study):
    leaky = study["leaky_relu"]["members"][0]
    gelu = study["gelu"]["members"][0]
    assert leaky["status"] != "collapsed" and gelu["status"] != "collapsed"
    assert 0 <= leaky["wd_vv_gap"] < BALANCED
    assert leaky["balance_median"] == pytest.approx(1.0, abs=1e-3)
    assert gelu["wd_vv_gap"] > 10 * BALANCED  # measured: 8.3e-3, 1000x the leaky ReLU's
    assert abs(gelu["balance_median"] - 1.0) > 1e-2


def test_non_homogeneous_runs_say_how_widths_were_counted(study):
    m = study["gelu"]
    assert "non-homogeneous" in m["width_rule"]
    r = m["members"][0]
    assert r["certified_width"] is None and r["sparsified_width"] is None
    assert r["test_error"] is not None and r["test_error"] >= 0
    assert study["leaky_relu"]["width_rule"].startswith("activity rule (rescaling invariant)")


def test_m1_shares_less_than_vv(tmp_path):
    """Independent random labels in 3 outputs: the VV norm rewards a neuron serving several
    outputs (||v_k||_2 < ||v_k||_1), ||.||_{M,1} does not, so its neurons serve fewer outputs."""
    kw = dict(optimizer="sgd", lr=0.05, lr_rule="fixed", lams=[1e-2], seeds=[0, 1],
              steps=4000, log_every=200, certify=False, figures=False,
              data=SweepDataConfig(kind="random", n=6, d_out=3))
    vv = run_width_sweep(WidthSweepConfig(regularizer="vv", **kw), tmp_path / "vv")
    m1 = run_width_sweep(WidthSweepConfig(regularizer="m1", **kw), tmp_path / "m1")
    for a, b in zip(vv["members"], m1["members"], strict=True):
        assert b["n_shared_all"] <= a["n_shared_all"] / 2  # measured: 3 vs 17-19
        assert b["shared_fraction"] < a["shared_fraction"]
        assert b["certified_width"] is None
        assert "M,1" in b["certified_skipped"]
