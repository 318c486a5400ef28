"""Deep-network layer widths (vvjax.runs.deep_widths): config checks, the per-layer certified
width (function kept, layer norm not raised, within rank(Phi) rank(Psi)), a tiny job."""

import numpy as np
import pytest
from flax import nnx

from vvjax import analysis, norms
from vvjax.configs import to_config
from vvjax.models import DeepVVNet, layer_io, params_of
from vvjax.runs import ConfigError, DeepWidthsConfig, run_deep_widths
from vvjax.runs.deep_widths import DeepDataConfig, layer_certified_width


@pytest.mark.parametrize("override, key", [
    ({"data": {"kind": "digits"}}, "data.d_in"),
    ({"data": {"kind": "cifar"}}, "data.kind"),
    ({"activation": "gelu"}, "activation"),
    ({"depths": [2, 0]}, "depths"),
    ({"lams": [-1.0]}, "lams"),
    ({"lams": [0.0, 1e-2]}, "lams"),  # certify=true: the last layer's lasso needs lambda > 0
    ({"hidden_width": 0}, "hidden_width"),
    ({"regularizer": "prox"}, "regularizer"),
])
def test_bad_config_is_refused_by_name(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        to_config(override, "deep_widths")


def test_layer_certificate_keeps_the_layer_and_its_bound():
    rng = np.random.default_rng(0)
    net = DeepVVNet([2, 30, 30, 2], rngs=nnx.Rngs(0))
    X = rng.standard_normal((10, 2))
    p = params_of(net)
    for l in range(2):
        Phi, Psi = layer_io(net, X, l)
        n = np.asarray(norms.input_norms(p.Ws[l], p.bs[l]))
        out = layer_certified_width(Phi, Psi, n, tol=1e-8)
        r = int(analysis.rank_bound(Phi, Psi, rtol=1e-8))
        assert out["constrained_converged"]
        assert out["certified_width"] <= r <= 10 * 10
        trained = float(np.sum(np.linalg.norm(np.asarray(p.Ws[l + 1]) * n[None, :], axis=0)))
        assert out["certified_layer_norm"] <= trained * (1 + 1e-6)


def test_out_of_budget_solve_falls_back_on_the_trained_layer():
    """One ADMM iteration cannot certify: the width then comes from the trained layer (a feasible
    point, sparsified: no larger penalty, within the rank bound), flagged as not proved optimal."""
    rng = np.random.default_rng(1)
    net = DeepVVNet([2, 30, 2], rngs=nnx.Rngs(1))
    X = rng.standard_normal((10, 2))
    p = params_of(net)
    Phi, Psi = layer_io(net, X, 0)
    n = np.asarray(norms.input_norms(p.Ws[0], p.bs[0]))
    U = np.asarray(p.Ws[1], np.float64) * n[None, :]
    out = layer_certified_width(Phi, Psi, n, max_iter=1, U_trained=U)
    assert not out["constrained_certified"] and out["constrained_rel_gap"] > 1e-6
    assert out["certified_layer_norm"] <= np.sum(np.linalg.norm(U, axis=0)) * (1 + 1e-12)
    assert out["certified_width"] <= int(analysis.rank_bound(Phi, Psi, rtol=1e-8))


def test_dead_layer_is_width_zero_not_a_crash(tmp_path):
    """A lambda so large that weight decay kills every neuron: its layers record width 0 instead
    of crashing the job."""
    cfg = DeepWidthsConfig(data=DeepDataConfig(n=8), depths=[2], hidden_width=8, lams=[10.0],
                           seeds=[0], steps=400, lr=0.05, log_every=50, figures=False)
    m = run_deep_widths(cfg, tmp_path / "job")
    (r,) = m["members"]
    assert r["n_active"] == [0, 0] and r["certified_width"] == [0, 0]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    cfg = DeepWidthsConfig(data=DeepDataConfig(n=8), depths=[2, 3], hidden_width=12,
                           lams=[1e-2], seeds=[0], steps=300, log_every=50)
    out = tmp_path_factory.mktemp("dw") / "job"
    return cfg, out, run_deep_widths(cfg, out)


def test_tiny_job_per_layer_records(tiny):
    cfg, out, m = tiny
    assert m["representer_bound"] == 64 and m["n_members"] == 2
    for r in m["members"]:
        L = r["depth"]
        for k in ("n_active", "rank_phi", "rank_psi", "rank_bound", "certified_width"):
            assert len(r[k]) == L, k
        for a, c, b in zip(r["n_active"], r["certified_width"], r["rank_bound"], strict=True):
            assert c <= min(a, b) and a <= cfg.hidden_width and b <= 8 * 8
        for t, c in zip(r["trained_layer_norm"], r["certified_layer_norm"], strict=True):
            assert c <= t * (1 + 1e-9)  # never worse than the trained layer (a feasible point)
        assert all(isinstance(c, bool) for c in r["constrained_certified"])
        assert r["rank_psi"][-1] <= 2  # the last hidden layer feeds D = 2 outputs
        assert r["certified_width_penalized"] <= r["certified_bound_penalized"]
        assert r["penalized_converged"] in (True, False)
    assert m["n_certified_above_rank_bound"] == 0
    assert 0 <= m["n_layers_certified"] <= m["n_layers"] == 5
    assert (out / "figures" / "widths_per_layer.png").stat().st_size > 0


@pytest.mark.parametrize("preset", ["default", "random", "digits"])
def test_presets_compose_and_validate(preset):
    from pathlib import Path

    from hydra import compose, initialize_config_dir

    from vvjax.configs import register_configs

    register_configs()
    conf = Path(__file__).resolve().parent.parent / "conf" / "deep_widths"
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        cfg = to_config(compose("config", overrides=[f"preset={preset}"]))
    assert isinstance(cfg, DeepWidthsConfig)
    assert cfg.data.kind == {"default": "teacher"}.get(preset, preset)
