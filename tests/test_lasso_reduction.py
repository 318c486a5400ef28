"""Rank-bound reduction (sparsify) and the exhaustive sparsest-support search."""

import itertools

import numpy as np
import pytest

from vvjax.lasso import BruteForceResult, solve_constrained, sparsest_bruteforce, sparsify


def _obj(V):
    return float(np.linalg.norm(np.asarray(V), axis=0).sum())


def _nnz(V):
    return int(np.sum(np.any(np.asarray(V) != 0, axis=0)))


def _rank(M):
    return int(np.linalg.matrix_rank(np.asarray(M)))


def _check_sparsified(V, Vs, Phi, Psi, *, optimal_obj=None):
    """The three promises of sparsify: objective not raised, same fit, rank bound."""
    Vs = np.asarray(Vs)
    assert Vs.shape == np.asarray(V).shape
    assert _obj(Vs) <= _obj(V) * (1 + 1e-12)
    fit = np.asarray(V) @ Phi
    assert np.linalg.norm(Vs @ Phi - fit) <= 1e-9 * np.linalg.norm(fit)
    assert _nnz(Vs) <= _rank(Phi) * _rank(Psi)
    assert _nnz(Vs) >= _rank(Psi)  # lower bound: a fit needs rank(Psi) columns
    if optimal_obj is not None:  # optimal in, optimal out
        np.testing.assert_allclose(_obj(Vs), optimal_obj, rtol=1e-9)


@pytest.mark.parametrize("seed", range(3))
def test_sparsify_solver_solution(seed):
    rng = np.random.default_rng(seed)
    Phi, Psi = rng.standard_normal((80, 5)), rng.standard_normal((2, 5))
    res = solve_constrained(Phi, Psi, tol=1e-9)
    Vs = sparsify(res.V, Phi, Psi)
    _check_sparsified(res.V, Vs, Phi, Psi, optimal_obj=float(res.primal))


def _split_duplicates(V, Phi, rng, copies=2):
    """Features repeated ``copies`` times with each active column's weight split at random."""
    K = Phi.shape[0]
    w = rng.dirichlet(np.ones(copies), size=K).T  # copies x K, rows sum to 1
    V2 = np.concatenate([np.asarray(V) * w[c] for c in range(copies)], axis=1)
    return V2, np.concatenate([Phi] * copies, axis=0)


@pytest.mark.parametrize("seed", range(3))
def test_sparsify_non_sparse_optimal_solutions(seed):
    # duplicated features with the weight split between the copies: same objective (still optimal),
    # but the support is multiplied and exceeds rank(Phi) * rank(Psi); sparsify must bring it back
    rng = np.random.default_rng(seed)
    Phi, Psi = rng.standard_normal((40, 4)), rng.standard_normal((2, 4))
    res = solve_constrained(Phi, Psi, tol=1e-9)
    V2, Phi2 = _split_duplicates(res.V, Phi, rng, copies=3)
    bound = _rank(Phi2) * _rank(Psi)
    assert _nnz(V2) > bound  # the construction really is non-sparse
    np.testing.assert_allclose(_obj(V2), float(res.primal), rtol=1e-12)
    assert np.linalg.norm(V2 @ Phi2 - Psi) <= 1e-10 * np.linalg.norm(Psi)
    # ... and optimal for the duplicated problem (checked against an independent solve)
    np.testing.assert_allclose(float(solve_constrained(Phi2, Psi, tol=1e-9).primal), _obj(V2),
                               rtol=1e-7)
    Vs = sparsify(V2, Phi2, Psi)
    _check_sparsified(V2, Vs, Phi2, Psi, optimal_obj=_obj(V2))


@pytest.mark.parametrize("r", [1, 2, 3])
def test_sparsify_rank_constrained_phi(r):
    rng = np.random.default_rng(10 + r)
    Phi = rng.standard_normal((60, r)) @ rng.standard_normal((r, 10))
    Psi = rng.standard_normal((4, 60)) @ Phi
    res = solve_constrained(Phi, Psi, tol=1e-9)
    # also from a non-sparse optimal point (duplicates), where the bound r * min(r, D) binds
    V2, Phi2 = _split_duplicates(res.V, Phi, rng, copies=2)
    for V, P in [(res.V, Phi), (V2, Phi2)]:
        Vs = sparsify(V, P, Psi)
        _check_sparsified(V, Vs, P, Psi, optimal_obj=float(res.primal))
        assert _nnz(Vs) <= r * min(r, 4)


def test_sparsify_non_optimal_input_never_increases():
    # the dense minimum-Frobenius-norm fit is far from optimal;
    # sparsify may only lower the objective
    rng = np.random.default_rng(7)
    Phi, Psi = rng.standard_normal((50, 4)), rng.standard_normal((3, 4))
    V0 = Psi @ np.linalg.pinv(Phi)
    Vs = sparsify(V0, Phi, Psi)
    _check_sparsified(V0, Vs, Phi, Psi)
    assert _obj(Vs) < _obj(V0)


def test_sparsify_default_psi_is_the_fit():
    rng = np.random.default_rng(8)
    Phi, Psi = rng.standard_normal((30, 3)), rng.standard_normal((2, 3))
    res = solve_constrained(Phi, Psi, tol=1e-9)
    V2, Phi2 = _split_duplicates(res.V, Phi, rng, copies=3)
    assert _nnz(V2) > _rank(Phi2) * _rank(Psi)
    Vs = sparsify(V2, Phi2)  # Psi defaults to the fit V2 Phi2 (= Psi here)
    _check_sparsified(V2, Vs, Phi2, Psi, optimal_obj=_obj(V2))


def test_sparsify_bad_inputs():
    rng = np.random.default_rng(0)
    Phi, V = rng.standard_normal((6, 3)), rng.standard_normal((2, 6))
    with pytest.raises(ValueError, match="share K"):
        sparsify(V[:, :5], Phi)
    with pytest.raises(ValueError, match="Psi"):
        sparsify(V, Phi, np.zeros((2, 4)))
    bad = V.copy()
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="V contains NaN"):
        sparsify(bad, Phi)


def _cvxpy_restricted(Phi, Psi, support):
    cp = pytest.importorskip("cvxpy")
    S = list(support)
    V = cp.Variable((Psi.shape[0], len(S)))
    prob = cp.Problem(cp.Minimize(cp.sum(cp.norm(V, 2, axis=0))), [V @ Phi[S] == Psi])
    prob.solve(solver=cp.CLARABEL)
    return prob.value if prob.status in ("optimal", "optimal_inaccurate") else np.inf


@pytest.mark.parametrize("seed,K", [(0, 7), (1, 7), (2, 8), (3, 9)])
def test_bruteforce(seed, K):
    rng = np.random.default_rng(100 + seed)
    Phi, Psi = rng.standard_normal((K, 3)), rng.standard_normal((2, 3))
    tol = 1e-6
    res = sparsest_bruteforce(Phi, Psi, tol=tol)
    assert isinstance(res, BruteForceResult)
    n = res.n_nonzero
    assert n == len(res.support) and list(res.support) == sorted(res.support)
    assert _rank(Psi) <= n <= _rank(Phi) * _rank(Psi)
    # the optimum is the constrained solver's, and V attains it on the support
    full = solve_constrained(Phi, Psi, tol=1e-9)
    np.testing.assert_allclose(res.objective, float(full.primal), rtol=1e-7)
    V = np.asarray(res.V)
    off = np.setdiff1d(np.arange(K), res.support)
    assert np.all(V[:, off] == 0)
    assert np.linalg.norm(V @ Phi - Psi) <= 1e-9 * np.linalg.norm(Psi)
    np.testing.assert_allclose(_obj(V), res.objective, rtol=tol)
    # independent check with CVXPY: the support attains the optimum, no smaller support does
    np.testing.assert_allclose(_cvxpy_restricted(Phi, Psi, res.support), res.objective, rtol=1e-5)
    smaller = [_cvxpy_restricted(Phi, Psi, S) for S in itertools.combinations(range(K), n - 1)]
    assert min(smaller) > res.objective * (1 + 1e-5)
    # the sparsest optimal solution is at least as sparse as the reduced solver solution
    assert n <= _nnz(sparsify(full.V, Phi, Psi))


def test_bruteforce_guard():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="max_k"):
        sparsest_bruteforce(rng.standard_normal((21, 3)), rng.standard_normal((2, 3)))
    with pytest.raises(ValueError, match="row space"):
        sparsest_bruteforce(rng.standard_normal((2, 3)), rng.standard_normal((2, 3)))


def test_sparsify_stays_float64_without_x64():
    """sparsify is a NumPy float64 routine: it must not round its inputs to float32 when JAX's
    x64 mode is off (the objective must not rise, the fit must not move)."""
    import jax

    rng = np.random.default_rng(7)
    Phi = rng.normal(size=(9, 3))
    Phi = np.vstack([Phi, Phi[:4]])  # duplicated features: non-sparse optimal solutions exist
    Psi = rng.normal(size=(2, 3))
    V = np.linalg.lstsq(Phi.T, Psi.T, rcond=None)[0].T  # a dense exact fit
    jax.config.update("jax_enable_x64", False)
    try:
        V2 = sparsify(V, Phi, Psi)
    finally:
        jax.config.update("jax_enable_x64", True)
    assert V2.dtype == np.float64
    assert np.linalg.norm(V2, axis=0).sum() <= np.linalg.norm(V, axis=0).sum() * (1 + 1e-12)
    np.testing.assert_allclose(V2 @ Phi, V @ Phi, rtol=0, atol=1e-12)


def test_bruteforce_compiles_once_per_shape():
    import jax

    compiled = []

    def listener(event, duration, **kw):
        if event == "/jax/core/compile/backend_compile_duration":
            compiled.append(kw.get("fun_name", "?"))

    rng = np.random.default_rng(5)
    sparsest_bruteforce(rng.standard_normal((7, 3)), rng.standard_normal((2, 3)))  # warm up
    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        for _ in range(3):  # new data, same shapes: the search reuses its compiled programs
            sparsest_bruteforce(rng.standard_normal((7, 3)), rng.standard_normal((2, 3)))
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    assert compiled == []


@pytest.mark.parametrize("seed, K, max_iter", [(2, 9, 20), (2, 9, 60), (12, 7, 40), (12, 7, 60),
                                               (24, 7, 20)])
def test_bruteforce_unconverged_restricted_solves_are_not_skipped(seed, K, max_iter):
    """With a small ADMM budget the restricted solves stop unconverged, above the target objective.
    The search used to skip those supports and reported 5, 6 or 7 columns (7 > rank(Phi)
    rank(Psi) = 6) on these inputs; an undecided support is now solved again with 20x the budget,
    and the answer is the sparsest optimal support, 4 columns (checked with CVXPY)."""
    rng = np.random.default_rng(seed)
    Phi, Psi = rng.standard_normal((K, 3)), rng.standard_normal((2, 3))
    res = sparsest_bruteforce(Phi, Psi, max_iter=max_iter)
    ref = sparsest_bruteforce(Phi, Psi)  # default budget: every restricted solve converges
    assert (res.n_nonzero, res.support) == (ref.n_nonzero, ref.support) and res.n_nonzero == 4
    np.testing.assert_allclose(res.objective, ref.objective, rtol=1e-12)
    np.testing.assert_allclose(_cvxpy_restricted(Phi, Psi, res.support), res.objective, rtol=1e-5)
    smaller = [_cvxpy_restricted(Phi, Psi, S) for S in itertools.combinations(range(K), 3)]
    assert min(smaller) > res.objective * (1 + 1e-5)


def test_bruteforce_undecided_support_raises():
    """A budget so small that even the retry cannot decide a support: a RuntimeError naming the
    support and max_iter, not a silently larger count."""
    rng = np.random.default_rng(24)
    Phi, Psi = rng.standard_normal((7, 3)), rng.standard_normal((2, 3))
    with pytest.raises(RuntimeError, match=r"restricted problem on support \(.*\) is undecided "
                                           r"after 20 iterations.*raise max_iter"):
        sparsest_bruteforce(Phi, Psi, max_iter=1)
