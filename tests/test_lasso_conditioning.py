"""Condition-number and magnitude sweeps for every lasso solver.

``Phi = U diag(s) W^T`` with orthonormal ``U``, ``W`` and singular values ``s`` spaced
geometrically from 1 to ``1 / cond``, ``cond`` in 1e2 ... 1e12 (as optax's linear-algebra tests
sweep). References:

* constrained solver, sparsest support: with ``Psi = A Phi`` and ``Phi`` of full column rank, the
  feasible set ``{V : V Phi = A Phi} = {V : (V - A) U = 0}`` depends on ``U`` only, so the optimum
  (and every restricted optimum) is the one for the perfectly conditioned ``Phi_0 = U``, which
  CVXPY + Clarabel solves accurately (it does not on the ill-conditioned ``Phi``: at cond 1e8 it
  reports ``optimal_inaccurate`` 18 % off);
* penalized solver: scikit-learn's ``MultiTaskLasso`` on the same data (any feasible point bounds
  the dual from above; our primal must not be above its objective by more than ``tol``).

Tolerances (stated per check below) scale with ``eps * cond`` where rounding of ``Lambda Phi^T``
is involved; certificates themselves are requested at ``tol`` and checked at that ``tol``.
"""

import itertools
import warnings

import numpy as np
import pytest

from vvjax import lasso

CONDS = [1e2, 1e4, 1e6, 1e8, 1e10, 1e12]
EPS = np.finfo(np.float64).eps


def _ill(seed, cond, K, N, D):
    """(Phi K x N with cond(Phi) = cond, full rank min(K, N); U; A D x K)."""
    rng = np.random.default_rng(seed)
    r = min(K, N)
    U, _ = np.linalg.qr(rng.standard_normal((K, r)))
    W, _ = np.linalg.qr(rng.standard_normal((N, r)))
    Phi = (U * np.geomspace(1.0, 1.0 / cond, r)) @ W.T
    return Phi, U, W, rng.standard_normal((D, K))


def _cvxpy_constrained(Phi, Psi):
    cp = pytest.importorskip("cvxpy")
    V = cp.Variable((Psi.shape[0], Phi.shape[0]))
    prob = cp.Problem(cp.Minimize(cp.sum(cp.norm(V, 2, axis=0))), [V @ Phi == Psi])
    prob.solve(solver=cp.CLARABEL)
    assert prob.status == "optimal"
    return prob.value


@pytest.fixture(scope="module")
def constrained_reference():
    """Optimum of the seed-0 problem from the perfectly conditioned equivalent (CVXPY)."""
    _, U, W, A = _ill(0, 1.0, 60, 10, 3)
    return _cvxpy_constrained(U @ W.T, A @ U @ W.T)


@pytest.mark.parametrize("cond", CONDS)
def test_constrained_ill_conditioned_feasible(cond, constrained_reference):
    """The issue's input: K=60, N=10, cond 1e8, Psi = A Phi (NumPy rank 10) was refused as
    infeasible; every cond up to 1e12 must solve to the well-conditioned optimum."""
    Phi, U, W, A = _ill(0, cond, 60, 10, 3)
    Psi = A @ Phi
    assert np.linalg.matrix_rank(Phi) == 10
    tol = 1e-6
    res = lasso.solve_constrained(Phi, Psi, tol=tol)
    assert res.converged and res.rel_gap <= tol
    # the optimum does not depend on cond: CVXPY on Phi_0 = U W^T, within the requested gap, plus
    # Clarabel's own 1e-8-level accuracy, plus eps * cond for the rounding of Psi = A @ Phi
    slack = 1e-7 + EPS * cond
    assert res.dual <= constrained_reference * (1 + slack)
    assert res.primal <= constrained_reference * (1 + tol + slack)
    # backward error of the fit: a few eps relative to ||Psi|| (here ||V|| ||Phi|| ~ ||Psi||)
    V = np.asarray(res.V)
    assert np.linalg.norm(V @ Phi - Psi) <= 1e3 * EPS * (np.linalg.norm(V) + np.linalg.norm(Psi))
    np.testing.assert_allclose(res.primal, np.linalg.norm(V, axis=0).sum(), rtol=1e-12)
    # Lambda feasible up to the rounding of Lambda Phi^T, which grows like eps * cond; the result
    # reports that infeasibility on the given Phi (computed here independently) and the bound
    # rel_gap + dual_infeasibility holds against the reference optimum
    Lam = np.asarray(res.Lambda)
    infeas = max(0.0, np.max(np.linalg.norm(Lam @ Phi.T, axis=0)) - 1)
    assert infeas <= 10 * EPS * cond
    np.testing.assert_allclose(res.dual_infeasibility, infeas, rtol=1e-6, atol=1e-15)
    assert res.primal <= constrained_reference * (1 + res.rel_gap + res.dual_infeasibility + slack)


@pytest.mark.parametrize("cond", CONDS)
def test_constrained_generic_targets(cond):
    """Psi Gaussian (K >= N: always fittable); the fit's normwise backward error stays at eps even
    though V grows like cond."""
    Phi, _, _, _ = _ill(1, cond, 60, 10, 3)
    Psi = np.random.default_rng(5).standard_normal((3, 10))
    res = lasso.solve_constrained(Phi, Psi)
    assert res.converged and res.rel_gap <= 1e-6
    V = np.asarray(res.V)
    backward = (np.linalg.norm(V @ Phi - Psi)
                / (np.linalg.norm(V) * np.linalg.norm(Phi, 2) + np.linalg.norm(Psi)))
    assert backward <= 1e3 * EPS
    assert np.max(np.linalg.norm(np.asarray(res.Lambda) @ Phi.T, axis=0)) <= 1 + 10 * EPS * cond
    assert res.dual <= res.primal * (1 + 1e-12)


@pytest.mark.parametrize("cond", CONDS)
def test_sparsify_ill_conditioned(cond):
    """Duplicated ill-conditioned features, weight split between the copies: sparsify keeps the
    objective and the fit (backward error 1e-9, the reduction's dependence threshold) and meets
    rank(Phi) rank(Psi) with NumPy's ranks."""
    Phi, _, _, A = _ill(2, cond, 30, 6, 2)
    Psi = A @ Phi
    res = lasso.solve_constrained(Phi, Psi, tol=1e-9)
    Phi2 = np.concatenate([Phi, Phi], axis=0)
    V = np.asarray(res.V)
    V2 = np.concatenate([0.3 * V, 0.7 * V], axis=1)
    Vs = lasso.sparsify(V2, Phi2, Psi)
    obj, obj_s = np.linalg.norm(V2, axis=0).sum(), np.linalg.norm(Vs, axis=0).sum()
    assert obj_s <= obj * (1 + 1e-12)
    np.testing.assert_allclose(obj_s, obj, rtol=1e-9)  # optimal in, optimal out
    fit = V2 @ Phi2
    assert np.linalg.norm(Vs @ Phi2 - fit) <= 1e-9 * np.linalg.norm(V2) * np.linalg.norm(Phi2, 2)
    nnz = int(np.sum(np.any(Vs != 0, axis=0)))
    assert nnz <= np.linalg.matrix_rank(Phi2) * np.linalg.matrix_rank(Psi)


@pytest.fixture(scope="module")
def bruteforce_reference():
    _, U, W, A = _ill(3, 1.0, 7, 3, 2)
    return lasso.sparsest_bruteforce(U @ W.T, A @ U @ W.T)


@pytest.mark.parametrize("cond", CONDS)
def test_bruteforce_ill_conditioned(cond, bruteforce_reference):
    """Every restricted problem is the well-conditioned one in disguise: same support, same
    optimum (to the search's tol) at every cond; the cond-1 result is checked against CVXPY.

    Fittability of a support is judged at ``feas_rtol``: the default ``sqrt(eps)`` = 1.5e-8 counts
    a support whose row space misses Psi by 1e-8 relative as fittable, which from cond 1e8 on is
    the size of the part of Psi carried by the smallest singular direction; ``feas_rtol=1e-13``
    tells the supports apart up to cond 1e12."""
    Phi, U, W, A = _ill(3, cond, 7, 3, 2)
    res = lasso.sparsest_bruteforce(Phi, A @ Phi, feas_rtol=1e-13)
    ref = bruteforce_reference
    assert res.n_nonzero == ref.n_nonzero and res.support == ref.support
    # Psi = A @ Phi is rounded, so its part along the smallest singular direction (relative size
    # 1/cond) is off by eps relative to Psi: the optimum moves by up to about eps * cond
    np.testing.assert_allclose(res.objective, ref.objective, rtol=1e-6 + 10 * EPS * cond)
    V = np.asarray(res.V)
    assert np.linalg.norm(V @ Phi - A @ Phi) <= 1e3 * EPS * (
        np.linalg.norm(V) * np.linalg.norm(Phi, 2) + np.linalg.norm(A @ Phi))


def test_bruteforce_reference_against_cvxpy(bruteforce_reference):
    _, U, W, A = _ill(3, 1.0, 7, 3, 2)
    Phi0 = U @ W.T
    Psi0 = A @ Phi0
    ref = bruteforce_reference
    np.testing.assert_allclose(_cvxpy_constrained(Phi0, Psi0), ref.objective, rtol=1e-6)
    np.testing.assert_allclose(_cvxpy_constrained(Phi0[list(ref.support)], Psi0), ref.objective,
                               rtol=1e-6)
    for S in itertools.combinations(range(7), ref.n_nonzero - 1):
        B = Phi0[list(S)]
        fit = np.linalg.lstsq(B.T, Psi0.T, rcond=None)[0].T @ B
        if np.linalg.norm(fit - Psi0) > 1e-8 * np.linalg.norm(Psi0):
            continue  # Psi not in the row space of the support: no V fits
        assert _cvxpy_constrained(B, Psi0) > ref.objective * (1 + 1e-5)


@pytest.mark.parametrize("shape, ratio", [((30, 100), 1e-3), ((60, 20), 1e-2), ((60, 20), 1e-4)],
                         ids=["K<N", "K>N", "K>N-small-lam"])
@pytest.mark.parametrize("cond", CONDS)
def test_penalized_ill_conditioned(cond, shape, ratio):
    from sklearn.linear_model import MultiTaskLasso

    K, N = shape
    Phi, _, _, A = _ill(4, cond, K, N, 3)
    rng = np.random.default_rng(6)
    Psi = A @ Phi + 0.1 * np.linalg.norm(Phi) / np.sqrt(K * N) * rng.standard_normal((3, N))
    lam = ratio * lasso.lam_max(Phi, Psi)
    tol = 1e-8
    res = lasso.solve_penalized(Phi, Psi, lam, tol=tol)
    assert res.converged and res.rel_gap <= tol

    def objective(V):
        return 0.5 * np.sum((V @ Phi - Psi) ** 2) / N + lam * np.linalg.norm(V, axis=0).sum()

    # the reported primal is the objective of the returned V, recomputed from the full data
    np.testing.assert_allclose(res.primal, objective(np.asarray(res.V)), rtol=1e-10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn may stop on max_iter at cond 1e12
        sk = MultiTaskLasso(alpha=lam, fit_intercept=False, tol=1e-12, max_iter=20_000)
        sk.fit(Phi.T, Psi.T)
    p_sk = objective(sk.coef_)
    assert res.dual <= p_sk * (1 + 1e-12)  # a valid lower bound on the optimum
    assert res.primal <= p_sk * (1 + tol)  # within tol of the optimum, so not above sklearn's


# ----------------------------------------------------------------------------- magnitudes

SCALES = [1e-150, 1e-100, 1e-30, 1e30, 1e100, 1e150]


@pytest.fixture(scope="module")
def unit_problem():
    rng = np.random.default_rng(7)
    Phi, Psi = rng.standard_normal((20, 200)), rng.standard_normal((3, 200))
    lam = 0.1 * lasso.lam_max(Phi, Psi)
    return Phi, Psi, lam, lasso.solve_penalized(Phi, Psi, lam, tol=1e-9)


@pytest.mark.parametrize("s", SCALES)
def test_penalized_any_magnitude(s, unit_problem):
    """Phi, Psi -> s Phi, s Psi: V is unchanged, lam_max and the objective scale by s^2."""
    Phi, Psi, lam, ref = unit_problem
    np.testing.assert_allclose(lasso.lam_max(s * Phi, s * Psi) / s**2, lam / 0.1, rtol=1e-13)
    res = lasso.solve_penalized(s * Phi, s * Psi, lam * s**2, tol=1e-9)
    assert res.converged and 0 <= res.rel_gap <= 1e-9 or abs(res.rel_gap) <= 1e-13
    np.testing.assert_allclose(res.primal / s**2, ref.primal, rtol=1e-9)
    np.testing.assert_allclose(np.asarray(res.V), np.asarray(ref.V), rtol=1e-6,
                               atol=1e-8 * np.abs(np.asarray(ref.V)).max())
    assert res.n_nonzero == ref.n_nonzero
    path = lasso.lasso_path(s * Phi, s * Psi, n_lams=3, eps=0.1, tol=1e-9)
    assert all(r.converged for r in path)
    np.testing.assert_allclose(path[-1].primal / s**2, ref.primal, rtol=1e-9)


@pytest.mark.parametrize("s", SCALES)
def test_penalized_mixed_magnitudes(s, unit_problem):
    """Phi -> s Phi, Psi -> Psi / s, same lam: V and the objective scale by 1/s^2."""
    Phi, Psi, lam, ref = unit_problem
    res = lasso.solve_penalized(s * Phi, Psi / s, lam, tol=1e-9)
    assert res.converged
    np.testing.assert_allclose(res.primal * s**2, ref.primal, rtol=1e-9)
    np.testing.assert_allclose(np.asarray(res.V) * s**2, np.asarray(ref.V), rtol=1e-6,
                               atol=1e-8 * np.abs(np.asarray(ref.V)).max())


@pytest.mark.parametrize("s", SCALES)
def test_constrained_reductions_any_magnitude(s):
    """V Phi = Psi with both scaled by s: V, the objective and the sparsest support unchanged."""
    rng = np.random.default_rng(8)
    Phi, Psi = rng.standard_normal((40, 6)), rng.standard_normal((2, 6))
    ref = lasso.solve_constrained(Phi, Psi)
    res = lasso.solve_constrained(s * Phi, s * Psi)
    assert res.converged and res.rel_gap <= 1e-6
    np.testing.assert_allclose(res.primal, ref.primal, rtol=1e-12)
    np.testing.assert_allclose(res.residual / s, ref.residual, rtol=0.5, atol=1e-14)
    np.testing.assert_allclose(np.asarray(res.Lambda) * s, np.asarray(ref.Lambda), rtol=1e-9,
                               atol=1e-12)
    V = np.asarray(ref.V)
    V2 = np.concatenate([0.3 * V, 0.7 * V], axis=1)
    Phi2 = np.concatenate([Phi, Phi])
    obj = np.linalg.norm(V2, axis=0).sum()
    for Vs, vs in [(lasso.sparsify(s * V2, s * Phi2, s * Psi), s),
                   (lasso.sparsify(V2 / s, s * Phi2), 1 / s)]:
        assert np.all(np.isfinite(Vs))
        np.testing.assert_allclose(np.linalg.norm(Vs / vs, axis=0).sum(), obj, rtol=1e-12)
        assert np.linalg.norm(Vs / vs @ Phi2 - V2 @ Phi2) <= 1e-12 * np.linalg.norm(Psi)
        assert np.sum(np.any(Vs != 0, axis=0)) <= 6 * 2
    small = (Phi[:7, :3], Psi[:, :3])
    bf = lasso.sparsest_bruteforce(*small)
    bf_s = lasso.sparsest_bruteforce(s * small[0], s * small[1])
    assert (bf_s.n_nonzero, bf_s.support) == (bf.n_nonzero, bf.support)
    np.testing.assert_allclose(bf_s.objective, bf.objective, rtol=1e-12)
