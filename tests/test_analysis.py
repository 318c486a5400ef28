import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vvjax import analysis


def _hand_built():
    # 5 neurons, 3 outputs; unit input weights so contributions are |v_jk|.
    W = jnp.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8], [1.0, 0.0], [0.0, 2.0]])
    b = jnp.zeros(5)
    V = jnp.array([
        [1.0, 0.5, 0.0, 0.0, 0.0],
        [1.0, 0.0, 0.0, 1e-5, 0.0],
        [1.0, 0.2, 0.0, 0.0, 0.0],
    ])
    return W, b, V


def test_counts_on_hand_built_network():
    W, b, V = _hand_built()
    A = analysis.activity_matrix(W, b, V)
    np.testing.assert_array_equal(A, np.array([[1, 1, 0, 0, 0],
                                               [1, 0, 0, 0, 0],
                                               [1, 1, 0, 0, 0]], bool))
    assert int(analysis.n_active(W, b, V)) == 2
    assert int(analysis.n_shared(W, b, V)) == 2
    assert int(analysis.n_shared_all(W, b, V)) == 1
    np.testing.assert_array_equal(analysis.per_output_counts(W, b, V), [2, 1, 2])
    s = analysis.sharing_summary(W, b, V)
    assert s == {"width": 5, "d_out": 3, "n_active": 2, "n_shared": 2, "n_shared_all": 1,
                 "per_output": [2, 1, 2], "shared_fraction": 1.0}
    # A tiny absolute tolerance makes the 1e-5 entry count; a relative one can remove the 0.2 entry.
    assert int(analysis.n_active(W, b, V, atol=1e-8)) == 3
    assert int(analysis.n_shared(W, b, V, rtol=0.3, atol=0.0)) == 1


def test_activity_is_rescaling_invariant(key):
    kW, kb, kV, ka = jax.random.split(key, 4)
    W, b, V = (jax.random.normal(kW, (30, 2)), jax.random.normal(kb, (30,)),
               jax.random.normal(kV, (2, 30)))
    V = V * (jax.random.uniform(ka, (1, 30)) > 0.5)
    alpha = jnp.linspace(0.1, 10.0, 30)
    np.testing.assert_array_equal(analysis.activity_matrix(W, b, V),
                                  analysis.activity_matrix(W * alpha[:, None], b * alpha,
                                                           V / alpha[None, :]))


def test_counts_jit_and_vmap(key):
    W, b, V = _hand_built()
    Vs = jnp.stack([V, V.at[:, 0].set(0.0)])
    counts = jax.vmap(lambda v: analysis.n_active(W, b, v))(Vs)
    np.testing.assert_array_equal(counts, [2, 1])
    assert int(jax.jit(analysis.n_shared_all)(W, b, V)) == 1


@pytest.mark.parametrize("N, D, sharp", [(50, 2, 100), (3, 10, 9), (10, 10, 100), (1, 1, 1)])
def test_representer_bounds(N, D, sharp):
    assert analysis.representer_bound(N) == N * N  # the paper's theorem: independent of D
    assert analysis.representer_bound_sharp(N, D) == sharp  # min(N^2, N D)


def test_representer_bound_bad_input():
    with pytest.raises(ValueError, match="N"):
        analysis.representer_bound(0)
    with pytest.raises(ValueError, match="D"):
        analysis.representer_bound_sharp(3, 1.5)


def test_active_but_used_by_no_single_output():
    """An active neuron's size sqrt(2) 0.8e-3 exceeds 1e-3 while each output's share is 0.8e-3:
    active (the l2 rule of the paper's counts), used by no output, shared by none."""
    W, b, V = jnp.eye(2), jnp.zeros(2), jnp.array([[0.8e-3, 1.0], [0.8e-3, 0.0]])
    s = analysis.sharing_summary(W, b, V)
    assert s["n_active"] == 2 and s["per_output"] == [1, 0] and s["n_shared"] == 0
    np.testing.assert_allclose(analysis.neuron_sizes(W, b, V), [np.sqrt(2) * 0.8e-3, 1.0])


def test_rank_bound(key):
    k1, k2, k3 = jax.random.split(key, 3)
    U, B = jax.random.normal(k1, (40, 3)), jax.random.normal(k2, (3, 25))
    Phi = U @ B  # rank 3
    Psi = jax.random.normal(k3, (2, 40)) @ Phi  # rank 2
    assert int(analysis.numerical_rank(Phi)) == 3
    assert int(analysis.rank_bound(Phi, Psi)) == 6
    assert int(analysis.numerical_rank(jnp.zeros((4, 5)))) == 0
    with pytest.raises(ValueError, match="N"):
        analysis.rank_bound(Phi, Psi[:, :-1])


def test_neuron_locations():
    W = jnp.array([[1.0, 0.0], [0.0, -2.0], [-1.0, 1.0]])
    b = jnp.array([0.5, 1.0, 0.0])
    loc = np.asarray(analysis.neuron_locations(W, b))
    np.testing.assert_allclose(loc[:, 0], [0.0, 1.5 * np.pi, 0.75 * np.pi])
    np.testing.assert_allclose(loc[:, 1], [0.5, 0.5, 0.0])
    with pytest.raises(ValueError, match="W"):
        analysis.neuron_locations(jnp.ones((3, 3)), b)


@pytest.mark.parametrize("bad, match", [
    (dict(V=jnp.ones((2, 4))), "V"), (dict(b=jnp.ones(4)), "b"),
    (dict(W=jnp.full((5, 2), jnp.nan)), "W"),
])
def test_bad_shapes_and_nan(bad, match):
    W, b, V = _hand_built()
    args = dict(W=W, b=b, V=V) | bad
    with pytest.raises(ValueError, match=match):
        analysis.activity_matrix(**args)
