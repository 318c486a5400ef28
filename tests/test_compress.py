"""vvjax.compress: the certified lasso per layer gives a smaller network of the same class."""

import subprocess
import sys
import warnings

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from vvjax import checkpoint, compress, lasso
from vvjax.compress.layers import layer_problem, zero_columns
from vvjax.models import DeepVVNet, ShallowParams, ShallowVVNet, deep_forward

RNG = np.random.default_rng(0)
X = RNG.normal(size=(80, 6))
Y = RNG.integers(0, 3, size=80)
X_TEST = RNG.normal(size=(40, 6))
Y_TEST = RNG.integers(0, 3, size=40)


@pytest.fixture(scope="module")
def deep():
    return DeepVVNet([6, 24, 20, 3], rngs=nnx.Rngs(1))


def _rel(a, b):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(np.asarray(b))))


def test_deleting_zero_columns_changes_no_output(deep):
    res = compress.compress(deep, X, lam_ratio=0.05, Y=Y, X_test=X_TEST, Y_test=Y_TEST)
    (lc,) = res.layers
    assert type(res.model) is DeepVVNet and res.model.activation == deep.activation
    zero = zero_columns(deep, 1, lc.V)  # original widths, W_2 = V with zero columns
    X_new = RNG.normal(size=(200, 6)) * 3  # also off the training set
    for data in (X, X_TEST, X_new):
        assert _rel(res.model(data), deep_forward(zero, data)) <= 1e-6
    # the certificate, and the widths equal the nonzero-column counts
    assert lc.converged and lc.rel_gap <= 1e-6 and lc.lam < lc.lam_max
    nonzero = np.flatnonzero(np.linalg.norm(lc.V, axis=0) > 0)
    np.testing.assert_array_equal(lc.kept, nonzero)
    assert res.model.widths == [6, 24, len(nonzero), 3] == res.widths_after
    assert lc.width_after == len(nonzero) < lc.width_before == 20
    np.testing.assert_array_equal(res.model.layers[1].W[...], deep.layers[1].W[...][nonzero])
    np.testing.assert_array_equal(res.model.layers[2].W[...], lc.V[:, nonzero])
    # the reported numbers, recomputed independently
    f0, f1 = np.asarray(deep(X)), np.asarray(res.model(X))
    assert res.max_output_change_train == pytest.approx(np.abs(f1 - f0).max(), rel=1e-12)
    assert res.train_before.accuracy == pytest.approx(np.mean(f0.argmax(1) == Y))
    logp = f1 - f1.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    assert res.train_after.loss == pytest.approx(-logp[np.arange(80), Y].mean(), rel=1e-10)
    prob = layer_problem(deep, X, 1)
    assert lc.reconstruction_error == pytest.approx(
        np.linalg.norm(lc.V @ prob.Phi - prob.Psi) / np.linalg.norm(prob.Psi), rel=1e-10)
    assert res.params_after == res.params_before - (20 - len(nonzero)) * (24 + 1 + 3)
    assert res.inference_time_before_s > 0 and res.inference_time_after_s > 0
    assert res.kept == {1: lc.kept} and res.theory_covered


def test_the_certificate_is_the_lasso_optimum(deep):
    """Same lam, same objective as a solve on the full data; the lasso's own optimality."""
    res = compress.compress(deep, X, layers=0, lam_ratio=0.1, time_inference=False)
    lc = res.layers[0]
    prob = layer_problem(deep, X, 0)
    alive = ~prob.never_active
    ref = lasso.solve_penalized(prob.Phi[alive], prob.Psi, lc.lam, tol=1e-10)

    def P(V):
        N = X.shape[0]
        return (np.sum((V @ prob.Phi - prob.Psi) ** 2) / (2 * N)
                + lc.lam * np.linalg.norm(V, axis=0).sum())

    assert P(lc.V) <= ref.primal * (1 + 2e-6)
    assert lc.lam == pytest.approx(0.1 * lasso.lam_max(prob.Phi, prob.Psi), rel=1e-12)


def test_a_tiny_lam_keeps_the_predictions(deep):
    res = compress.compress(deep, X, lam_ratio=1e-7, Y=Y, time_inference=False)
    f0 = np.asarray(deep(X))
    assert res.max_output_change_train <= 1e-4 * np.abs(f0).max()
    assert res.train_after.accuracy == res.train_before.accuracy
    assert res.layers[0].reconstruction_error <= 1e-4


def test_refit_is_least_squares_on_the_support(deep):
    plain = compress.compress(deep, X, lam_ratio=0.1, time_inference=False)
    refit = compress.compress(deep, X, lam_ratio=0.1, refit=True, time_inference=False)
    a, b = plain.layers[0], refit.layers[0]
    np.testing.assert_array_equal(a.kept, b.kept)
    prob = layer_problem(deep, X, 1)
    ref = np.linalg.lstsq(prob.Phi[a.kept].T, prob.Psi.T, rcond=None)[0].T
    np.testing.assert_allclose(refit.model.layers[2].W[...], ref, rtol=1e-9, atol=1e-12)
    assert b.reconstruction_error < a.reconstruction_error
    assert b.method == "lasso+refit" and a.method == "lasso"


def _orthogonal_net():
    """A shallow ReLU layer with orthogonal features: neuron k is active on its own samples only.

    The lasso then decouples: column k enters at lam_k = ||phi_k||^2 ||V_k|| / N. Neuron 0 enters
    alone, neurons 1 and 2 (equal norms) together, neuron 3 last: widths 0, 1, 3, 4."""
    counts = [6, 4, 4, 5]
    X = np.concatenate([np.tile(np.eye(4)[k], (n, 1)) for k, n in enumerate(counts)])
    V = np.array([[3.0, 1.0, 0.0, 0.2], [0.0, 0.0, 1.0, 0.0]])
    net = ShallowVVNet.from_params(ShallowParams(jnp.eye(4), jnp.zeros(4), jnp.asarray(V), None))
    N = X.shape[0]
    enter = [counts[k] * np.linalg.norm(V[:, k]) / N for k in range(4)]
    return net, X, enter


def test_width_search_returns_exact_or_the_nearest_pair():
    net, X, enter = _orthogonal_net()
    assert enter[0] > enter[1] == enter[2] > enter[3]
    for k in (1, 3):
        res = compress.compress(net, X, width=k, time_inference=False)
        lc = res.layers[0]
        assert lc.width_after == k and lc.width_search.exact
        assert type(res.model) is ShallowVVNet and res.model.width == k
    lo, hi = sorted([enter[1], enter[0]])
    lc = compress.compress(net, X, width=1, time_inference=False).layers[0]
    assert lo < lc.lam < hi  # the lam interval of width 1, from the closed form
    with pytest.warns(UserWarning, match="no lam gives exactly width 2"):
        res = compress.compress(net, X, width=2, time_inference=False)
    s = res.layers[0].width_search
    assert not s.exact and s.below[0] == 1 and s.above[0] == 3
    assert enter[1] < s.below[1] < enter[0] and enter[3] < s.above[1] < enter[1]
    assert res.layers[0].width_after == 1  # never more neurons than asked for


def test_shallow_net_keeps_its_output_bias_and_class():
    net = ShallowVVNet(6, 15, 2, rngs=nnx.Rngs(3), output_bias=True, activation="leaky_relu",
                       negative_slope=0.1)
    net.c[...] = jnp.array([0.5, -1.0])
    Yr = RNG.normal(size=(80, 2))
    res = compress.compress(net, X, width=5, refit=True, Y=Yr, time_inference=False)
    new = res.model
    assert type(new) is ShallowVVNet and new.width == 5 and new.activation == "leaky_relu"
    assert new.negative_slope == 0.1
    np.testing.assert_array_equal(new.c[...], net.c[...])
    assert res.train_after.accuracy is None and res.train_after.loss > 0  # MSE for float targets
    kept = res.layers[0].kept
    np.testing.assert_array_equal(new.b[...], net.b[...][kept])  # the paper's sign convention


def test_several_layers_in_order_recompute_phi(deep):
    both = compress.compress(deep, X, layers=[0, 1], width=[12, 8], time_inference=False)
    assert both.model.widths == [6, 12, 8, 3]
    first = compress.compress(deep, X, layers=0, width=12, time_inference=False)
    second = compress.compress(first.model, X, layers=1, width=8, time_inference=False)
    np.testing.assert_array_equal(both.layers[1].kept, second.layers[0].kept)
    np.testing.assert_allclose(both.model(X), second.model(X), rtol=1e-9, atol=1e-12)
    assert set(both.kept) == {0, 1}


def test_reweighting_is_certified_at_each_step(deep):
    res = compress.compress(deep, X, width=6, reweight=2, refit=True, time_inference=False)
    lc = res.layers[0]
    assert lc.method == "rwlasso+refit" and lc.width_after == 6
    assert len(lc.reweight_history) == 3 and all(g <= 1e-6 for _, _, g in lc.reweight_history)


def test_non_homogeneous_activation_needs_force():
    net = DeepVVNet([6, 12, 3], rngs=nnx.Rngs(0), activation="gelu")
    from vvjax.activations import NonHomogeneousError

    with pytest.raises(NonHomogeneousError, match="allow_nonhomogeneous"):
        compress.compress(net, X, lam_ratio=0.1)
    res = compress.compress(net, X, lam_ratio=0.1, allow_nonhomogeneous=True,
                            time_inference=False)
    assert not res.theory_covered
    zero = zero_columns(net, 0, res.layers[0].V)
    assert _rel(res.model(X), deep_forward(zero, X, activation="gelu")) <= 1e-6


def test_save_and_load_in_a_fresh_process(deep, tmp_path):
    res = compress.compress(deep, X, width=7, time_inference=False)
    path = res.save(tmp_path / "small.vvjax")
    np.save(tmp_path / "X.npy", X)
    code = ("import sys, numpy as np, jax; jax.config.update('jax_enable_x64', True);"
            "from vvjax import checkpoint; m = checkpoint.load(sys.argv[1]);"
            "np.save(sys.argv[3], np.asarray(m(np.load(sys.argv[2])))); print(m.widths)")
    out = subprocess.run([sys.executable, "-c", code, str(path), str(tmp_path / "X.npy"),
                          str(tmp_path / "f.npy")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[6, 24, 7, 3]"
    np.testing.assert_array_equal(np.load(tmp_path / "f.npy"), np.asarray(res.model(X)))
    meta = checkpoint.read_metadata(path)["compressed"]
    assert meta["layers"][0]["kept"] == res.layers[0].kept.tolist()
    assert meta["widths_before"] == [6, 24, 20, 3]


def test_float32_model_stays_float32(deep):
    net32 = DeepVVNet([6, 24, 20, 3], rngs=nnx.Rngs(1), dtype=jnp.float32)
    res = compress.compress(net32, X, width=9, time_inference=False)
    assert res.model.layers[0].W[...].dtype == jnp.float32 and res.model.widths[2] == 9
    assert res.layers[0].rel_gap <= 1e-6  # analysed in float64 (x64 on)


def test_bad_input_is_named_before_any_solve(deep, monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("a solve ran")

    monkeypatch.setattr(lasso, "solve_penalized", refuse)
    cases = [
        (dict(layers=2, width=3), "layers: 2 is the output layer"),
        (dict(layers=5, width=3), "layers: 5 is out of range"),
        (dict(layers=-1, width=3), "out of range"),
        (dict(layers=[1, 1], width=3), "layers must be distinct"),
        (dict(layers=[], width=3), "layers must be"),
        (dict(width=0), r"width must be in \[1, 19\]"),
        (dict(width=20), r"width must be in \[1, 19\]"),
        (dict(width=2.5), "width must be an integer"),
        (dict(layers=[0, 1], width=[3]), "one value or one per layer"),
        (dict(), "exactly one of lam, lam_ratio and width"),
        (dict(lam=0.1, width=3), "exactly one of"),
        (dict(lam=-1.0), "lam must be a finite number > 0"),
        (dict(lam_ratio=1.5), r"lam_ratio must be in \(0, 1\)"),
        (dict(width=3, tol=0.0), "tol must be"),
        (dict(width=3, reweight=-1), "reweight must be"),
        (dict(width=3, Y=np.zeros(5, int)), "Y must have one label per input row"),
        (dict(width=3, Y=np.full(80, 7)), r"Y labels must lie in \[0, 3\)"),
        (dict(width=3, Y_test=Y_TEST), "Y_test needs X_test"),
        (dict(width=3, X_test=np.ones((4, 5))), r"X_test must have shape \(N, 6\)"),
    ]
    for kw, match in cases:
        with pytest.raises(ValueError, match=match):
            compress.compress(deep, X, **kw)
    with pytest.raises(ValueError, match=r"X must have shape \(N, 6\).*does not match the model"):
        compress.compress(deep, np.ones((10, 5)), width=3)
    with pytest.raises(TypeError, match="model must be"):
        compress.compress(object(), X, width=3)
    with pytest.raises(ValueError, match="method must be one of"):
        compress.prune(deep, X, method="random", width=3)
    with pytest.raises(ValueError, match="merge.*refit"):
        compress.prune(deep, X, method="merge", width=3, refit=True)
    with pytest.raises(ValueError, match="methods: unknown method"):
        compress.sweep(deep, X, widths=[3], methods=["lasso+retrain"])
    with pytest.raises(ValueError, match="widths must be in"):
        compress.sweep(deep, X, widths=[3, 20])


def test_lam_at_or_above_lam_max_would_delete_every_neuron(deep):
    prob = layer_problem(deep, X, 1)
    lmax = lasso.lam_max(prob.Phi, prob.Psi)
    with pytest.raises(ValueError, match="lam must be < lam_max"):
        compress.compress(deep, X, lam=1.01 * lmax)


def test_never_active_neurons_are_reported_and_deleted():
    net = DeepVVNet([6, 10, 2], rngs=nnx.Rngs(0))
    net.layers[0].b[...] = net.layers[0].b[...].at[:3].set(-100.0)  # 3 neurons never fire
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        res = compress.compress(net, X, lam_ratio=1e-6, time_inference=False)
        pr = compress.prune(net, X, method="magnitude", width=9, time_inference=False)
    assert res.layers[0].n_never_active == 3 and not set(res.layers[0].kept) & {0, 1, 2}
    assert pr.layers[0].width_after == 7 and not set(pr.layers[0].kept) & {0, 1, 2}
