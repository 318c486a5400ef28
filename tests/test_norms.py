import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from vvjax import models, norms


def _random_params(key, K=9, d=3, D=4):
    kW, kb, kV = jax.random.split(key, 3)
    return (jax.random.normal(kW, (K, d)), jax.random.normal(kb, (K,)),
            jax.random.normal(kV, (D, K)))


@pytest.mark.parametrize("include_bias", [True, False])
def test_rescaling_leaves_function_and_vv_norm_unchanged(key, include_bias):
    W, b, V = _random_params(key)
    alpha = jnp.exp(jax.random.normal(jax.random.key(5), (W.shape[0],)))
    X = jax.random.normal(jax.random.key(6), (20, W.shape[1]))
    f = models.shallow_forward(models.ShallowParams(W, b, V), X)
    Va = V / alpha[None, :]
    g = models.shallow_forward(models.ShallowParams(W * alpha[:, None], b * alpha, Va), X)
    np.testing.assert_allclose(f, g, rtol=1e-10, atol=1e-12)
    for norm in (norms.vv_norm, norms.m1_norm):
        np.testing.assert_allclose(norm(W, b, V, include_bias=include_bias),
                                   norm(W * alpha[:, None], b * alpha, V / alpha[None, :],
                                        include_bias=include_bias), rtol=1e-12)
    # ... while the weight-decay penalty itself is not rescaling invariant.
    assert not np.isclose(norms.weight_decay_penalty(W, b, V),
                          norms.weight_decay_penalty(W * alpha[:, None], b * alpha,
                                                     V / alpha[None, :]))


@pytest.mark.parametrize("include_bias", [True, False])
def test_balance_makes_weight_decay_equal_vv_norm(key, include_bias):
    W, b, V = _random_params(key)
    V = V.at[:, 2].set(0.0)  # a dead neuron
    Wb, bb, Vb = norms.balance(W, b, V, include_bias=include_bias)
    np.testing.assert_allclose(norms.weight_decay_penalty(Wb, bb, Vb, include_bias=include_bias),
                               norms.vv_norm(W, b, V, include_bias=include_bias), rtol=1e-12)
    np.testing.assert_allclose(norms.input_norms(Wb, bb, include_bias=include_bias),
                               norms.output_norms(Vb), rtol=1e-12, atol=1e-15)
    X = jax.random.normal(jax.random.key(1), (30, W.shape[1]))
    np.testing.assert_allclose(models.shallow_forward(models.ShallowParams(Wb, bb, Vb), X),
                               models.shallow_forward(models.ShallowParams(W, b, V), X), atol=1e-12)
    # AM-GM: weight decay >= VV norm for any scaling, with equality when balanced.
    assert norms.weight_decay_penalty(W, b, V, include_bias=include_bias) >= \
        norms.vv_norm(W, b, V, include_bias=include_bias)


def test_norm_closed_forms():
    W = jnp.array([[3.0, 0.0], [0.0, 0.0]])
    b = jnp.array([4.0, 1.0])
    V = jnp.array([[1.0, 2.0], [-1.0, 0.0]])
    np.testing.assert_allclose(norms.vv_norm(W, b, V), 5 * np.sqrt(2) + 1 * 2)
    np.testing.assert_allclose(norms.vv_norm(W, b, V, include_bias=False), 3 * np.sqrt(2))
    np.testing.assert_allclose(norms.m1_norm(W, b, V), 5 * 2 + 1 * 2)
    np.testing.assert_allclose(norms.weight_decay_penalty(W, b, V), 0.5 * (25 + 1 + 1 + 1 + 4))
    np.testing.assert_allclose(norms.weight_decay_penalty(W, b, V, include_bias=False),
                               0.5 * (9 + 6))


def test_m1_versus_vv_sharing_toy():
    # One shared neuron feeding both outputs costs sqrt(2) under VV, 2 under M,1
    # (docs/paper.md §3.3).
    W, b = jnp.array([[1.0, 0.0]]), jnp.array([0.0])
    V = jnp.array([[1.0], [1.0]])
    np.testing.assert_allclose(norms.vv_norm(W, b, V), np.sqrt(2))
    np.testing.assert_allclose(norms.m1_norm(W, b, V), 2.0)
    # Two separate neurons computing the same function cost 2 under both.
    W2, b2, V2 = jnp.array([[1.0, 0.0], [1.0, 0.0]]), jnp.zeros(2), jnp.eye(2)
    np.testing.assert_allclose(norms.vv_norm(W2, b2, V2), 2.0)
    np.testing.assert_allclose(norms.m1_norm(W2, b2, V2), 2.0)


def test_deep_layer_norms_and_balance(key):
    net = models.DeepVVNet([3, 7, 5, 2], rngs=nnx.Rngs(2))
    p = models.params_of(net)
    X = jax.random.normal(key, (12, 3))
    for layer in (0, 1):
        q = norms.balance_layer(p, layer)
        np.testing.assert_allclose(models.deep_forward(q, X), models.deep_forward(p, X), atol=1e-12)
        np.testing.assert_allclose(norms.layer_vv_norms(q)[layer], norms.layer_vv_norms(p)[layer],
                                   rtol=1e-12)
        # The balanced layer's share of the weight-decay penalty equals its VV norm.
        share = 0.5 * (jnp.sum(q.Ws[layer] ** 2) + jnp.sum(q.Ws[layer + 1] ** 2))
        np.testing.assert_allclose(share, norms.layer_vv_norms(q)[layer], rtol=1e-12)
    np.testing.assert_allclose(norms.deep_weight_decay_penalty(p),
                               0.5 * sum(float(jnp.sum(W ** 2)) for W in p.Ws))
    with pytest.raises(ValueError, match="layer"):
        norms.balance_layer(p, 2)


def test_output_norm_order():
    with pytest.raises(ValueError, match="ord"):
        norms.output_norms(jnp.ones((2, 2)), ord=3)
