"""Baselines at equal width, each against a value computed independently on a hand-built layer."""

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from vvjax import compress
from vvjax.compress import baselines as bl
from vvjax.compress.layers import layer_problem
from vvjax.models import DeepParams, DeepVVNet

RNG = np.random.default_rng(7)


def _layer(K=7, N=40, D=3, n_in=5, dead=()):
    """A hand-built hidden layer: W_in, b_in, V and X with chosen never-active neurons."""
    W = RNG.normal(size=(K, n_in))
    b = RNG.normal(size=K) * 0.3
    b[list(dead)] = -50.0
    V = RNG.normal(size=(D, K))
    X = RNG.normal(size=(N, n_in))
    Phi = np.maximum(W @ X.T + b[:, None], 0.0)
    return W, b, V, X, Phi


def _net(W, b, V, n_out_bias=None):
    """The 2-layer DeepVVNet with that hidden layer (output bias as given)."""
    c = np.zeros(V.shape[0]) if n_out_bias is None else n_out_bias
    p = DeepParams((jnp.asarray(W), jnp.asarray(V)), (jnp.asarray(b), jnp.asarray(c)))
    return DeepVVNet.from_params(p)


def test_magnitude_and_activation_keep_the_largest_scores():
    W, b, V, X, Phi = _layer(dead=(2,))
    alive = np.any(Phi > 0, axis=1)
    size = np.array([np.linalg.norm(V[:, k]) * np.linalg.norm(np.r_[W[k], b[k]])
                     for k in range(7)])
    act = np.array([Phi[k].mean() * np.linalg.norm(V[:, k]) for k in range(7)])
    for scores, method in ((size, "magnitude"), (act, "activation")):
        ranked = [k for k in np.argsort(-scores) if alive[k]]
        want = np.sort(ranked[:3])
        res = compress.prune(_net(W, b, V), X, method=method, width=3, time_inference=False)
        np.testing.assert_array_equal(res.layers[0].kept, want)
        # no refit: the network is the original with the other columns set to zero
        Vz = V * np.isin(np.arange(7), want)[None, :]
        ref = np.maximum(X @ W.T + b, 0) @ Vz.T
        np.testing.assert_allclose(res.model(X), ref, rtol=1e-12, atol=1e-12)
        # refit: least squares of V Phi on the kept rows
        rf = compress.prune(_net(W, b, V), X, method=method, width=3, refit=True,
                            time_inference=False)
        Vls = np.linalg.lstsq(Phi[want].T, (V @ Phi).T, rcond=None)[0].T
        np.testing.assert_allclose(rf.model.layers[1].W[...], Vls, rtol=1e-9, atol=1e-12)
    assert res.layers[0].n_never_active == 1 and 2 not in res.layers[0].kept


def _greedy_pivots(A, k):
    """Businger-Golub pivoting by hand: repeatedly take the column of A (N x K) with the largest
    norm after projecting out the columns already taken."""
    R = A.copy()
    chosen = []
    for _ in range(k):
        j = int(np.argmax(np.linalg.norm(R, axis=0)))
        chosen.append(j)
        q = R[:, j] / np.linalg.norm(R[:, j])
        R = R - np.outer(q, q @ R)
    return chosen


def test_interpolative_decomposition_matches_greedy_pivoting_and_least_squares():
    W, b, V, X, Phi = _layer(K=8, N=30)
    for k in (2, 4, 6):
        kept, Vk = bl.interpolative(Phi, V, k, np.ones(8, bool))
        want = np.sort(_greedy_pivots(Phi.T, k))
        np.testing.assert_array_equal(kept, want)
        # T is the least-squares interpolation of every row of Phi from the kept ones
        T = np.linalg.lstsq(Phi[want].T, Phi.T, rcond=None)[0].T  # K x k
        np.testing.assert_allclose(Vk, V @ T, rtol=1e-8, atol=1e-10)
    # exact when k >= rank(Phi): a rank-3 layer is reproduced by 3 neurons
    Phi3 = RNG.normal(size=(8, 3)) @ np.abs(RNG.normal(size=(3, 30)))
    kept, Vk = bl.interpolative(Phi3, V, 3, np.ones(8, bool))
    np.testing.assert_allclose(Vk @ Phi3[kept], V @ Phi3, rtol=1e-8, atol=1e-9)


def _obs_bruteforce(Phi, V, k, damp):
    """Greedy backward elimination by brute force: at each step try every removal and keep the
    one whose compensated least-squares error ||(V' - V) Phi||^2 / N + delta ||V' - V||^2 (the
    OBS quadratic with H = Phi Phi^T / N + delta I) is smallest."""
    K, N = Phi.shape
    H = Phi @ Phi.T / N
    delta = damp * np.mean(np.diag(H))
    Hd = H + delta * np.eye(K)
    L = np.linalg.cholesky(Hd)  # E(V') = ||(V' - V) L||_F^2

    def best(S):  # min over V'_S with V'_rest = 0 of ||(V' - V) L||^2
        A = L[S].T  # (K x |S|): V'_S L_S
        target = V @ L  # D x K
        sol = np.linalg.lstsq(A, target.T, rcond=None)[0].T
        return float(np.sum((sol @ L[S] - target) ** 2)), sol

    S = list(range(K))
    while len(S) > k:
        errs = [best([s for s in S if s != j])[0] for j in S]
        S.remove(S[int(np.argmin(errs))])
    return np.array(S), best(S)[1]


@pytest.mark.parametrize("damp", [1e-2, 1e-6])
def test_obs_is_greedy_backward_elimination(damp):
    W, b, V, X, Phi = _layer(K=7, N=25)
    path = bl.obs_path(Phi, V, np.ones(7, bool), [5, 3, 1], damp=damp)
    for k in (5, 3, 1):
        want_S, want_V = _obs_bruteforce(Phi, V, k, damp)
        kept, Vk = path[k]
        np.testing.assert_array_equal(kept, np.sort(want_S))
        np.testing.assert_allclose(Vk, want_V[:, np.argsort(want_S)], rtol=1e-7, atol=1e-9)


def test_merging_is_exact_for_a_scaled_copy_and_respects_the_threshold():
    W, b, V, X, _ = _layer(K=5, N=50)
    W[3], b[3] = 2.5 * W[0], 2.5 * b[0]  # neuron 3 = 2.5 x neuron 0: relu(2.5 z) = 2.5 relu(z)
    V[:, 3] *= 0.01  # ... and the smallest by size, so it is pruned first
    W[4] = -W[1]  # neuron 4 anti-aligned with everything that matters (cosine < threshold)
    b[4] = -b[1]
    V[:, 4] *= 0.01
    Phi = np.maximum(W @ X.T + b[:, None], 0.0)
    alive = np.any(Phi > 0, axis=1)
    sizes = bl.neuron_sizes(W, b, V)
    assert set(np.argsort(sizes)[:2]) == {3, 4}
    kept, Vk = bl.merge(W, b, V, 3, alive)
    np.testing.assert_array_equal(kept, [0, 1, 2])
    U = np.c_[W, b]
    cos = (U[4] / np.linalg.norm(U[4])) @ (U[:3] / np.linalg.norm(U[:3], axis=1)[:, None]).T
    assert cos.max() < bl.MERGE_THRESHOLD  # neuron 4 has no partner: dropped uncompensated
    want = V[:, :3].copy()
    want[:, 0] += 2.5 * V[:, 3]
    np.testing.assert_allclose(Vk, want, rtol=1e-12)
    # the merged network equals the original one without neuron 4, on any input
    Xn = RNG.normal(size=(100, 5)) * 2
    res = compress.prune(_net(W, b, V), X, method="merge", width=3, time_inference=False)
    Vz = V.copy()
    Vz[:, 4] = 0
    ref = np.maximum(Xn @ W.T + b, 0) @ Vz.T
    np.testing.assert_allclose(res.model(Xn), ref, rtol=1e-10, atol=1e-12)


def test_sweep_equals_the_single_calls():
    net = DeepVVNet([5, 12, 9, 2], rngs=nnx.Rngs(2))
    X = RNG.normal(size=(60, 5))
    methods = ["lasso", "lasso+refit", "magnitude", "interpolative", "obs", "obs+refit", "merge"]
    out = compress.sweep(net, X, widths=[2, 4], methods=methods, layer=0)
    for j, k in enumerate((2, 4)):
        one = compress.compress(net, X, layers=0, width=k, time_inference=False)
        np.testing.assert_array_equal(out["lasso"][j].layers[0].kept, one.layers[0].kept)
        for m in ("magnitude", "interpolative", "obs", "merge"):
            single = compress.prune(net, X, method=m, layers=0, width=k, time_inference=False)
            np.testing.assert_array_equal(out[m][j].layers[0].kept, single.layers[0].kept)
            np.testing.assert_allclose(out[m][j].model(X), single.model(X), rtol=1e-12)
        assert out["obs+refit"][j].layers[0].reconstruction_error <= \
            out["obs"][j].layers[0].reconstruction_error + 1e-12
    prob = layer_problem(net, X, 0)
    assert all(r.layers[0].width_before == prob.width for r in out["lasso"])
    assert [r.layers[0].width_after for r in out["merge"]] == [2, 4]


def test_array_baselines_name_bad_arguments():
    W, b, V, X, Phi = _layer(K=4)
    alive = np.ones(4, bool)
    with pytest.raises(ValueError, match=r"alive must be a boolean array of shape \(4,\)"):
        bl.magnitude(W, b, V, 2, np.ones(3, bool))
    with pytest.raises(ValueError, match="k must be an integer >= 1"):
        bl.obs(Phi, V, 0, alive)
    with pytest.raises(ValueError, match=r"Phi must have shape \(4, \?\)"):
        bl.interpolative(Phi[:3], V, 2, alive)
    with pytest.raises(ValueError, match=r"b_in must have shape \(4\)"):
        bl.merge(W, b[:2], V, 2, alive)
