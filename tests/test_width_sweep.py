"""The width sweep's runner (vvjax.runs.width_sweep): config checks before any work, the student
width rule, the certified width against independent references, and a tiny job end to end."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from flax import nnx

from vvjax import analysis, norms, train
from vvjax.configs import to_config
from vvjax.models import ShallowVVNet, layer_io, params_of
from vvjax.runs import ConfigError, WidthSweepConfig, run_width_sweep
from vvjax.runs.width_sweep import (
    SweepDataConfig,
    balance_stats,
    certified_width,
    required_width,
    student_width,
    unit_features,
)

SMOKE = dict(lams=[1e-3, 1e-2], seeds=[0, 1], steps=600, log_every=100, figures=False)


# ------------------------------------------------------------------ bad input, before any work

@pytest.mark.parametrize("override, key", [
    ({"data": {"n": "many"}}, "data.n"),
    ({"data": {"n": 0}}, "data.n"),
    ({"data": {"d_out": 0}}, "data.d_out"),
    ({"lams": [1e-3, -1e-3]}, "lams"),
    ({"lams": [0.0, 1e-3]}, "lams"),  # certify=true: the lasso re-solve needs lambda > 0
    ({"data": {"kind": "mnist"}}, "data.kind"),
    ({"activation": "swish"}, "activation"),
    ({"width": 5}, "width"),  # below min(N^2, N D) + N = 24 for N=8, D=2, no cap
    ({"data": {"kind": "linnerud"}}, "data.n"),  # Linnerud is N=20, d=3, D=3
    ({"regularizer": "prox", "activation": "gelu"}, "activation"),
    ({"seeds": [1, 1]}, "seeds"),
    ({"stepz": 10}, "stepz"),
])
def test_bad_config_is_refused_by_name(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        to_config(override, "width_sweep")


def test_bad_config_fails_before_any_training(tmp_path):
    cfg = WidthSweepConfig(data=SweepDataConfig(n=4, d_out=2), width=3)
    with pytest.raises(ConfigError, match="width=3 is below"):
        run_width_sweep(cfg, tmp_path / "job")
    assert not (tmp_path / "job").exists()  # nothing was claimed, trained or written


def test_student_width_rule_and_cap():
    assert required_width(8, 2) == min(64, 16) + 8 == 24
    assert required_width(4, 8) == min(16, 32) + 4 == 20
    cfg = WidthSweepConfig(data=SweepDataConfig(n=8, d_out=2))
    assert student_width(cfg) == (24, 24, False)
    assert student_width(dataclasses.replace(cfg, width=40)) == (40, 24, False)
    assert student_width(dataclasses.replace(cfg, width_cap=10)) == (10, 24, True)
    assert student_width(dataclasses.replace(cfg, width=5, width_cap=100)) == (5, 24, True)
    assert student_width(dataclasses.replace(cfg, width_cap=100)) == (24, 24, False)


# ------------------------------------------------------------------ the maths, against references

def test_unit_features_keep_the_network(key):
    net = ShallowVVNet(3, 20, 2, rngs=nnx.Rngs(1))
    X = np.random.default_rng(0).standard_normal((15, 3))
    p = params_of(net)
    Phi, Psi = layer_io(net, X)
    n = np.asarray(norms.input_norms(p.W, p.b))
    Phi_u = unit_features(Phi, n)
    U = np.asarray(p.V) * n[None, :]
    np.testing.assert_allclose(U @ Phi_u, np.asarray(Psi), rtol=1e-12, atol=1e-12)
    # rows really are the features of unit-norm (w_k, b_k)
    unit = ShallowVVNet.from_params(p._replace(W=p.W / n[:, None], b=p.b / n))
    np.testing.assert_allclose(Phi_u, np.asarray(layer_io(unit, X)[0]), atol=1e-12)
    assert np.all(unit_features(Phi, np.where(np.arange(20) == 3, 0.0, n))[3] == 0)


def test_certified_width_against_scikit_learn_and_the_rank_bound():
    sklearn = pytest.importorskip("sklearn.linear_model")
    rng = np.random.default_rng(3)
    N, K, D = 12, 40, 3
    Phi = np.maximum(rng.standard_normal((K, 2)) @ rng.standard_normal((2, N))
                     + rng.standard_normal((K, 1)), 0.0)  # ReLU features of 2-D data
    Y_T = rng.standard_normal((D, N))
    lam = 0.02
    out = certified_width(Phi, Y_T, lam, tol=1e-10)
    ref = sklearn.MultiTaskLasso(alpha=lam, fit_intercept=False, tol=1e-12, max_iter=200_000)
    ref.fit(Phi.T, Y_T.T)
    V = ref.coef_
    p_ref = 0.5 / N * np.sum((V @ Phi - Y_T) ** 2) + lam * np.sum(np.linalg.norm(V, axis=0))
    assert out["lasso_converged"]
    assert out["lasso_objective"] <= p_ref + 1e-9  # the sparsified optimum is optimal too
    assert out["lasso_objective"] >= p_ref - 1e-6
    r_phi = int(analysis.numerical_rank(Phi, rtol=1e-8))
    assert out["certified_width"] <= out["certified_bound"] <= r_phi * D
    assert out["certified_width"] <= out["lasso_width"]


def test_balance_stats_closed_form():
    rng = np.random.default_rng(0)
    W, b, V = rng.standard_normal((6, 2)), rng.standard_normal(6), rng.standard_normal((3, 6))
    Wb, bb, Vb = (np.asarray(a) for a in norms.balance(W, b, V))
    s = balance_stats(Wb, bb, Vb, np.ones(6, bool))
    assert s["balance_median"] == pytest.approx(1.0, rel=1e-12)
    assert abs(s["wd_vv_gap"]) < 1e-12
    # every neuron scaled by a = 2 from balance: beta = a^2 = 4, wd = (a^2 + 1/a^2)/2 * vv
    s = balance_stats(2 * Wb, 2 * bb, Vb / 2, np.ones(6, bool))
    assert s["balance_median"] == pytest.approx(4.0, rel=1e-12)
    assert s["wd_vv_gap"] == pytest.approx((4 + 0.25) / 2 - 1, rel=1e-12)


# ------------------------------------------------------------------ a tiny job end to end

@pytest.fixture(scope="module")
def tiny_job(tmp_path_factory):
    cfg = WidthSweepConfig(data=SweepDataConfig(kind="random", n=5, d_out=3), **SMOKE)
    out = tmp_path_factory.mktemp("ws") / "job"
    return cfg, out, run_width_sweep(cfg, out)


def test_tiny_job_records_every_member_within_the_bounds(tiny_job):
    cfg, out, m = tiny_job
    N, D = 5, 3
    assert (m["width"], m["width_required"], m["cap_bound"]) == (20, 20, False)
    assert m["representer_bound_sharp"] == min(N * N, N * D)
    rows = m["members"]
    assert [(r["lam"], r["init_seed"]) for r in rows] == [(l, s) for l in cfg.lams
                                                          for s in cfg.seeds]
    for r in rows:
        assert r["certified_width"] <= r["rank_bound"] <= min(N * N, N * D)
        assert r["certified_width"] <= r["certified_bound"]
        assert r["rank_phi"] <= N and r["rank_psi"] <= min(N, D)
        assert r["n_shared_all"] <= r["n_shared"] <= r["n_active"] <= m["width"]
        assert len(r["per_output"]) == D
        assert r["status"] in ("ok", "not_converged", "collapsed", "diverged")
    n_above = sum(r["n_active"] > r["rank_bound"] for r in rows)
    assert m["n_learned_above_rank_bound"] == n_above
    assert m["n_certified_above_rank_bound"] == 0
    assert m["n_ok"] + sum(m["flagged"].values()) == len(rows)
    arrays = np.load(out / "arrays.npz")
    assert arrays["W"].shape == (len(rows), 20, 2) and arrays["V"].shape == (len(rows), D, 20)


def test_members_are_single_fits_of_their_grid_point(tiny_job):
    """One fit_batch for the grid; member i is the plain fit of (lam_i, seed_i, lr_i)."""
    cfg, out, m = tiny_job
    arrays = np.load(out / "arrays.npz")
    i = 3
    r = m["members"][i]
    net = ShallowVVNet(2, m["width"], 3, rngs=nnx.Rngs(r["init_seed"]))
    single, _ = train.fit(net, arrays["X"], arrays["Y"], steps=cfg.steps, lr=r["lr"],
                          lam=r["lam"], regularizer="prox", optimizer=cfg.optimizer,
                          decay="weights_and_biases", log_every=cfg.log_every)
    np.testing.assert_array_equal(np.asarray(single.W[...]), arrays["W"][i])
    np.testing.assert_array_equal(np.asarray(single.V[...]), arrays["V"][i])
    n_active = int(analysis.n_active(single.W[...], -single.b[...], single.V[...]))
    assert n_active == r["n_active"]


def test_finished_job_is_reused(tiny_job):
    cfg, out, m = tiny_job
    again = run_width_sweep(cfg, out)
    assert again["finished_at"] == m["finished_at"]


def test_cap_is_recorded(tmp_path):
    cfg = WidthSweepConfig(data=SweepDataConfig(n=3, d_out=2), width_cap=4, certify=False,
                           lams=[1e-2], seeds=[0], steps=100, log_every=50, figures=False)
    m = run_width_sweep(cfg, tmp_path / "job")
    assert (m["width"], m["width_required"], m["width_cap"], m["cap_bound"]) == (4, 9, 4, True)
    assert m["members"][0]["certified_width"] is None
    assert m["members"][0]["certified_skipped"] == "certify=false"


def test_lasso_certificates_are_reported(tiny_job):
    cfg, _, m = tiny_job
    done = [r for r in m["members"] if r["lasso_converged"]]
    assert m["n_lasso_not_converged"] == len(m["members"]) - len(done)
    assert done, "no lasso re-solve certified on the tiny job"
    for r in done:
        assert r["lasso_rel_gap"] <= cfg.lasso_tol
        assert r["suboptimality"] >= -1e-9  # the trained layer is never better than the optimum
        assert r["lasso_objective"] <= r["trained_objective"] + 1e-12
    for r in m["members"]:  # sparsify never adds a neuron and respects the bound
        assert r["sparsified_width"] <= min(r["n_active"], r["rank_bound"])


@pytest.mark.parametrize("preset", ["default", "full", "linnerud", "m1", "activations"])
def test_presets_compose_and_validate(preset):
    from hydra import compose, initialize_config_dir

    from vvjax.configs import register_configs

    register_configs()
    conf = Path(__file__).resolve().parent.parent / "conf" / "width_sweep"
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        dict_cfg = compose("config", overrides=[f"preset={preset}", "debug=smoke"])
    cfg = to_config(dict_cfg)
    assert isinstance(cfg, WidthSweepConfig) and cfg.steps == 600  # debug=smoke applies last
    if preset == "linnerud":
        assert (cfg.data.kind, cfg.data.n, cfg.data.d_out) == ("linnerud", 20, 3)
    if preset == "activations":
        assert cfg.regularizer == "weight_decay" and cfg.data.n_test == 200
