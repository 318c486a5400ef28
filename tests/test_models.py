import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from vvjax import models


def test_shallow_shapes_and_formula(key):
    net = models.ShallowVVNet(3, 7, 4, rngs=nnx.Rngs(1))
    assert net.W.shape == (7, 3) and net.b.shape == (7,) and net.V.shape == (4, 7)
    assert net.c is None and (net.d_in, net.width, net.d_out) == (3, 7, 4)
    X = jax.random.normal(key, (5, 3))
    W, b, V = np.asarray(net.W[...]), np.asarray(net.b[...]), np.asarray(net.V[...])
    manual = sum(np.outer(np.maximum(np.asarray(X) @ W[k] - b[k], 0), V[:, k]) for k in range(7))
    np.testing.assert_allclose(np.asarray(net(X)), manual, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.asarray(net.features(X)) @ V.T, manual, rtol=1e-10, atol=1e-12)


def test_output_bias_is_unregularized_bias_variable():
    net = models.ShallowVVNet(2, 3, 2, rngs=nnx.Rngs(0), output_bias=True)
    net.c[...] = jnp.array([1.0, -2.0])
    x = jnp.zeros((1, 2))
    feats = net.features(x)
    np.testing.assert_allclose(net(x), feats @ net.V[...].T + jnp.array([[1.0, -2.0]]))
    _, weights, biases, _ = nnx.split(net, nnx.All(nnx.Param, nnx.Not(models.Bias)),
                                      models.Bias, ...)
    assert {k[0] for k, _ in nnx.to_flat_state(weights)} == {"W", "V"}
    assert {k[0] for k, _ in nnx.to_flat_state(biases)} == {"b", "c"}


def test_torch_init_bounds():
    net = models.ShallowVVNet(4, 200, 3, rngs=nnx.Rngs(0))
    assert float(jnp.max(jnp.abs(net.W[...]))) <= 0.5 and float(jnp.max(jnp.abs(net.b[...]))) <= 0.5
    assert float(jnp.max(jnp.abs(net.V[...]))) <= 1 / np.sqrt(200)


def test_from_params_roundtrip_and_seed_reproducible(key):
    a = models.ShallowVVNet(2, 5, 2, rngs=nnx.Rngs(3))
    b = models.ShallowVVNet(2, 5, 2, rngs=nnx.Rngs(3))
    X = jax.random.normal(key, (4, 2))
    np.testing.assert_array_equal(a(X), b(X))
    c = models.ShallowVVNet.from_params(models.params_of(a))
    np.testing.assert_array_equal(a(X), c(X))


def test_deep_activations_and_forward(key):
    net = models.DeepVVNet([3, 8, 6, 2], rngs=nnx.Rngs(0))
    X = jax.random.normal(key, (10, 3))
    acts = net.activations(X)
    assert [z.shape for z, _ in acts] == [(10, 8), (10, 6)]
    for z, h in acts:
        np.testing.assert_array_equal(h, jnp.maximum(z, 0))
    p = models.params_of(net)
    # Psi of the last hidden layer (= W_L Phi) plus the output bias is the network output.
    np.testing.assert_allclose(acts[-1][1] @ p.Ws[-1].T + p.bs[-1][None, :], net(X), rtol=1e-12)
    assert net.widths == [3, 8, 6, 2]


@pytest.mark.parametrize(
    "kwargs, match",
    [(dict(d_in=0, width=3, d_out=2), "d_in"), (dict(d_in=2, width=0, d_out=2), "width"),
     (dict(d_in=2, width=3, d_out=-1), "d_out"), (dict(d_in=2, width=2.5, d_out=1), "width")],
)
def test_bad_sizes(kwargs, match):
    with pytest.raises(ValueError, match=match):
        models.ShallowVVNet(**kwargs, rngs=nnx.Rngs(0))


def test_bad_init_and_widths():
    with pytest.raises(ValueError, match="init"):
        models.ShallowVVNet(2, 3, 2, rngs=nnx.Rngs(0), init="xavier")
    with pytest.raises(ValueError, match="widths"):
        models.DeepVVNet([3], rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"widths\[1\]"):
        models.DeepVVNet([3, 0, 2], rngs=nnx.Rngs(0))


def test_deep_load_roundtrip_and_bad_params_leave_the_model_unchanged(key):
    net = models.DeepVVNet([3, 5, 4, 2], rngs=nnx.Rngs(0))
    other = models.params_of(models.DeepVVNet([3, 5, 4, 2], rngs=nnx.Rngs(1)))
    before = models.params_of(net)
    bad_last = models.DeepParams(other.Ws[:2] + (other.Ws[2][:, :3],), other.bs)
    bad_bias = models.DeepParams(other.Ws, other.bs[:2] + (other.bs[2][:1],))
    for bad, match in ((bad_last, "layer 2"), (bad_bias, "layer 2"),
                       (models.DeepParams(other.Ws, other.bs[:2]), "3 weights and 2 biases")):
        with pytest.raises(ValueError, match=match):
            net.load(bad)
        for x, y in zip(models.params_of(net).Ws, before.Ws, strict=True):
            np.testing.assert_array_equal(x, y)  # nothing was written
    net.load(other)
    x = jax.random.normal(key, (7, 3))
    np.testing.assert_allclose(net(x), models.deep_forward(other, x))
