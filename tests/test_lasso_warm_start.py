"""Warm starts from trained layers: dead neurons (all-zero features) carrying weight, supports
whose Newton system is singular, and support columns of negligible norm solve without a warning
(pytest turns every warning into an error; the width sweep once printed scipy's ``LinAlgWarning:
... Singular matrix``, and NaN ``RuntimeWarning``s from the Newton polish, on such layers), to
scikit-learn's optimum."""

import numpy as np
import pytest
from sklearn.linear_model import Lasso, MultiTaskLasso

from vvjax.lasso import penalized as pz
from vvjax.lasso import solve_penalized


def _objective(V, Phi, Psi, lam):
    N = Phi.shape[1]
    return 0.5 / N * np.sum((V @ Phi - Psi) ** 2) + lam * np.linalg.norm(V, axis=0).sum()


def _reference(Phi, Psi, lam):
    est = (Lasso if Psi.shape[0] == 1 else MultiTaskLasso)(
        alpha=lam, fit_intercept=False, tol=1e-14, max_iter=1_000_000)
    est.fit(Phi.T, Psi[0] if Psi.shape[0] == 1 else Psi.T)
    return np.atleast_2d(est.coef_)


@pytest.mark.parametrize("D", [1, 2])
def test_warm_start_on_dead_features(D):
    # The member of `width_sweep.py data.kind=random data.n=4 data.d_out=1` that warned: 2 live
    # features out of 6, tiny lambda, the dead neurons' trained weights in the warm start.
    rng = np.random.default_rng(0)
    N, K, lam = 4, 6, 5e-5
    Phi = np.zeros((K, N))
    Phi[[3, 5]] = np.abs(rng.standard_normal((2, N)))
    Psi = rng.standard_normal((D, N))
    ref = _reference(Phi, Psi, lam)
    dead = np.all(Phi == 0, axis=1)
    V0 = ref + np.where(dead, rng.choice([-1.5, 1.3], K), 0.0)[None, :]
    res = solve_penalized(Phi, Psi, lam, V0=V0, tol=1e-10)
    V = np.asarray(res.V)
    assert res.converged and np.all(np.isfinite(V))
    assert np.all(V[:, dead] == 0.0)
    p_ref = _objective(ref, Phi, Psi, lam)
    assert _objective(V, Phi, Psi, lam) <= p_ref * (1 + 1e-9)
    np.testing.assert_allclose(V, ref, atol=1e-6)


def test_warm_start_on_duplicate_features():
    # D = 1 with two equal features on the support: the Newton Hessian on the support is G_SS,
    # singular; the optimum is unique in objective and fitted values, not in V.
    rng = np.random.default_rng(1)
    N, lam = 4, 1e-3
    f = np.abs(rng.standard_normal((2, N)))
    Phi = np.stack([f[0], f[0], f[1]])
    Psi = rng.standard_normal((1, N))
    ref = _reference(Phi, Psi, lam)
    split = np.array([[ref[0, 0] + ref[0, 1], ref[0, 0] + ref[0, 1], 2 * ref[0, 2]]]) / 2
    res = solve_penalized(Phi, Psi, lam, V0=split * (1 + 1e-4), tol=1e-10)
    V = np.asarray(res.V)
    assert res.converged
    p_ref = _objective(ref, Phi, Psi, lam)
    assert abs(_objective(V, Phi, Psi, lam) - p_ref) <= 1e-9 * p_ref
    np.testing.assert_allclose(V @ Phi, ref @ Phi, atol=1e-6)


def test_newton_polish_with_a_negligible_support_column():
    # A weight-decay-trained layer's inactive neurons decay to norms like 1e-53 without reaching
    # 0; on the support they make lam / ||v_k|| ~ 1e50 and the conjugate gradients of the Newton
    # step broke down (0/0: "invalid value encountered in scalar divide", the activation study's
    # leaky ReLU members). The polish must then return a finite point no worse than its input.
    rng = np.random.default_rng(0)
    K, N, D = 48, 16, 2
    X = rng.standard_normal((N, 2))
    W = rng.standard_normal((K, 3))
    W /= np.linalg.norm(W, axis=1, keepdims=True)
    pre = W[:, :2] @ X.T - W[:, 2:]
    Phi = np.where(pre > 0, pre, 0.01 * pre)  # leaky ReLU: every feature nonzero, rank N < K
    G, C = Phi @ Phi.T / N, Phi @ rng.standard_normal((N, D)) / N
    lam = 0.03 * np.linalg.norm(C, axis=1).max()
    Vs = 0.1 * rng.standard_normal((K, D))
    Vs[0] *= 1e-52

    def P(V):  # the lasso objective in Gram form, up to a constant
        return 0.5 * np.vdot(V, G @ V) - np.vdot(V, C) + lam * np.linalg.norm(V, axis=1).sum()

    out = pz._newton_polish(Vs.copy(), G, C, lam)
    assert out is not None and np.all(np.isfinite(out))
    assert P(out) <= P(Vs)
