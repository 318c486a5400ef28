"""Activations: the table, homogeneity, and the operations refused for non-homogeneous ones."""

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from scipy.special import erf

from vvjax import activations, analysis, norms, objectives, train
from vvjax.models import DeepVVNet, ShallowVVNet, params_of

ROOT = Path(__file__).resolve().parent.parent
T = np.linspace(-4.0, 4.0, 81)


@pytest.mark.parametrize("name,reference", [
    ("relu", lambda t: np.maximum(t, 0.0)),
    ("leaky_relu", lambda t: np.where(t >= 0, t, 0.2 * t)),
    ("gelu", lambda t: 0.5 * t * (1.0 + erf(t / np.sqrt(2.0)))),
    ("silu", lambda t: t / (1.0 + np.exp(-t))),
    ("softplus", lambda t: np.log1p(np.exp(t))),
    ("tanh", np.tanh),
])
def test_activations_match_closed_forms(name, reference):
    np.testing.assert_allclose(activations.apply(name, jnp.asarray(T), 0.2), reference(T),
                               rtol=1e-12, atol=1e-14)


def test_homogeneity_flags_are_true_exactly_for_homogeneous_functions():
    for name in activations.ACTIVATIONS:
        f = activations.get(name, 0.1)
        scaled_equal = np.allclose(f(2.5 * T), 2.5 * f(T), rtol=1e-12, atol=1e-14)
        assert activations.is_homogeneous(name) == scaled_equal, name
    assert set(activations.HOMOGENEOUS) == {"relu", "leaky_relu"}
    for cls in (lambda a: ShallowVVNet(2, 3, 2, rngs=nnx.Rngs(0), activation=a),
                lambda a: DeepVVNet([2, 3, 2], rngs=nnx.Rngs(0), activation=a)):
        assert cls("leaky_relu").homogeneous and not cls("silu").homogeneous


def test_leaky_relu_keeps_rescaling_invariance_and_balance(key):
    net = ShallowVVNet(3, 9, 2, rngs=nnx.Rngs(2), activation="leaky_relu", negative_slope=0.3)
    W, b, V, _ = params_of(net)
    X = jax.random.normal(key, (11, 3))
    alpha = jnp.linspace(0.2, 5.0, 9)
    scaled = ShallowVVNet.from_params(params_of(net)._replace(W=W * alpha[:, None], b=b * alpha,
                                                              V=V / alpha[None, :]),
                                      activation="leaky_relu", negative_slope=0.3)
    np.testing.assert_allclose(scaled(X), net(X), rtol=1e-12, atol=1e-14)
    sp = params_of(scaled)
    np.testing.assert_array_equal(analysis.activity_matrix(sp.W, sp.b, sp.V, atol=0.05),
                                  analysis.activity_matrix(W, b, V, atol=0.05))
    np.testing.assert_allclose(norms.vv_norm(sp.W, sp.b, sp.V), norms.vv_norm(W, b, V),
                               rtol=1e-12)
    Wb, bb, Vb = norms.balance(W, b, V, activation="leaky_relu")
    balanced = ShallowVVNet.from_params(params_of(net)._replace(W=Wb, b=bb, V=Vb),
                                        activation="leaky_relu", negative_slope=0.3)
    np.testing.assert_allclose(balanced(X), net(X), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(norms.weight_decay_penalty(Wb, bb, Vb), norms.vv_norm(W, b, V),
                               rtol=1e-12)
    assert analysis.layer_summaries(balanced)[0]["width"] == 9


def test_gelu_raises_where_the_theory_needs_homogeneity(key):
    net = ShallowVVNet(2, 5, 2, rngs=nnx.Rngs(0), activation="gelu")
    W, b, V, _ = params_of(net)
    X = np.asarray(jax.random.normal(key, (8, 2)))
    Y = np.asarray(net(X))
    calls = {
        "norms.balance": lambda: norms.balance(W, b, V, activation="gelu"),
        "balance_params": lambda: norms.balance_params(params_of(net), activation="gelu"),
        "regularizer='prox'": lambda: train.fit(net, X, Y, steps=2, lr=0.1, lam=1e-3,
                                               regularizer="prox"),
        "layer_summaries": lambda: analysis.layer_summaries(net),
        "lasso_lam": lambda: objectives.lasso_lam(1e-3, 2, activation="gelu"),
    }
    for what, call in calls.items():
        with pytest.raises(activations.NonHomogeneousError, match="positively homogeneous") as e:
            call()
        assert "gelu" in str(e.value), what
    # ... but counting with an explicit opt-in works, and training with penalties works
    assert analysis.layer_summaries(net, allow_nonhomogeneous=True)[0]["width"] == 5
    _, h = train.fit(net, X, Y + 0.1, steps=50, lr=0.05, lam=1e-3, regularizer="weight_decay")
    assert np.isfinite(h.loss[-1])


def test_bad_activation_names_and_slopes():
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        ShallowVVNet(2, 3, 2, rngs=nnx.Rngs(0), activation="swish")
    with pytest.raises(ValueError, match="negative_slope"):
        DeepVVNet([2, 3, 2], rngs=nnx.Rngs(0), activation="leaky_relu", negative_slope=1.5)
    with pytest.raises(ValueError, match="unknown activation"):
        activations.is_homogeneous("ReLU")


def test_no_hard_coded_relu_outside_the_activation_table():
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "vvjax").rglob("*.py")
                 if p.name != "activations.py" and ("jax.nn.relu" in p.read_text()
                                                    or "nn.relu(" in p.read_text())]
    assert offenders == []
