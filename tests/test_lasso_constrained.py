"""Constrained multi-task lasso: certificate (KKT/duality),
agreement with CVXPY, batching, errors."""

import jax
import numpy as np
import pytest

from vvjax.lasso import ConstrainedResult, solve_constrained, solve_constrained_batch


def _gaussian(seed, K=60, N=8, D=3):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((K, N)), rng.standard_normal((D, N))


def _low_rank(seed, K=60, N=12, D=5, r=3):
    rng = np.random.default_rng(seed)
    Phi = rng.standard_normal((K, r)) @ rng.standard_normal((r, N))
    return Phi, rng.standard_normal((D, K)) @ Phi


def _wide(seed, K=6, N=10, D=3):  # K < N: Phi has rank K, Psi = A Phi
    rng = np.random.default_rng(seed)
    Phi = rng.standard_normal((K, N))
    return Phi, rng.standard_normal((D, K)) @ Phi


def _relu(seed, K=80, N=15, D=4):  # ill-conditioned post-ReLU features
    rng = np.random.default_rng(seed)
    Phi = np.maximum(rng.standard_normal((K, 3)) @ rng.standard_normal((3, N)) + 0.5, 0.0)
    Phi = np.concatenate([Phi, rng.standard_normal((K, N))], 0)[:K]
    return Phi, rng.standard_normal((D, N))


PROBLEMS = {"gaussian": _gaussian, "low_rank": _low_rank, "wide": _wide, "relu": _relu}


def _rank(M):
    return np.linalg.matrix_rank(np.asarray(M))


@pytest.mark.parametrize("kind", sorted(PROBLEMS))
def test_certificate(kind):
    Phi, Psi = PROBLEMS[kind](1)
    tol = 1e-7
    res = solve_constrained(Phi, Psi, tol=tol)
    assert isinstance(res, ConstrainedResult)
    V, Lam = np.asarray(res.V), np.asarray(res.Lambda)
    assert V.shape == (Psi.shape[0], Phi.shape[0]) and Lam.shape == Psi.shape
    assert bool(res.converged)
    norms = np.linalg.norm(V, axis=0)
    # primal: the reported objective is that of V, which fits Psi to machine precision
    np.testing.assert_allclose(float(res.primal), norms.sum(), rtol=1e-12)
    resid = np.linalg.norm(V @ Phi - Psi)
    np.testing.assert_allclose(float(res.residual), resid, rtol=1e-6, atol=1e-14)
    assert resid <= 1e-10 * np.linalg.norm(Psi)
    # dual: feasible, and its objective is <Lambda, Psi>
    assert np.max(np.linalg.norm(Lam @ Phi.T, axis=0)) <= 1 + 1e-12
    np.testing.assert_allclose(float(res.dual), np.sum(Lam * Psi), rtol=1e-12)
    # weak duality (up to the residual) and the requested relative gap
    assert float(res.gap) >= -1e-9 * float(res.primal)
    assert float(res.gap) <= tol * float(res.primal)
    np.testing.assert_allclose(float(res.gap), float(res.primal) - float(res.dual), rtol=1e-12)
    # complementary slackness: active columns align with Lambda phi_k, whose norm is ~1 there
    act = norms > 0
    G = Lam @ Phi.T
    assert np.all(np.linalg.norm(G[:, act], axis=0) >= 1 - 1e-3)
    cos = np.sum(V[:, act] * G[:, act], 0) / (norms[act] * np.linalg.norm(G[:, act], axis=0))
    assert np.all(cos >= 1 - 1e-3)
    # exact zeros: n_nonzero counts columns that are not identically zero; lower bound rank(Psi)
    assert int(res.n_nonzero) == int(np.sum(np.any(V != 0, axis=0)))
    assert int(res.n_nonzero) >= _rank(Psi)
    if kind == "gaussian":  # K = 60 > rank(Phi) * rank(Psi) = 24: the solution is sparse
        assert int(res.n_nonzero) < Phi.shape[0]


def test_lower_bound_rank_psi_is_tight_for_low_rank_targets():
    # Psi = A Phi with rank(Phi) = 2: every feasible V needs >= 2 = rank(Psi) columns
    for seed in range(3):
        Phi, Psi = _low_rank(seed, K=80, N=10, D=6, r=2)
        res = solve_constrained(Phi, Psi)
        assert bool(res.converged)
        assert _rank(Psi) == 2
        assert 2 <= int(res.n_nonzero) <= 4  # between rank(Psi) and rank(Phi) * rank(Psi)


def test_matches_cvxpy():
    cp = pytest.importorskip("cvxpy")
    for seed in range(3):
        Phi, Psi = _gaussian(seed + 10, K=150, N=12, D=4)
        V = cp.Variable((Psi.shape[0], Phi.shape[0]))
        prob = cp.Problem(cp.Minimize(cp.sum(cp.norm(V, 2, axis=0))), [V @ Phi == Psi])
        prob.solve(solver=cp.CLARABEL)
        res = solve_constrained(Phi, Psi)
        assert bool(res.converged)
        np.testing.assert_allclose(float(res.primal), prob.value, rtol=1e-5)
        # our certified dual bound is below CVXPY's (near-feasible) optimum, up to its accuracy
        assert float(res.dual) <= prob.value * (1 + 1e-7)


def test_scale_invariance():
    Phi, Psi = _gaussian(3)
    a = solve_constrained(Phi, Psi)
    b = solve_constrained(100.0 * Phi, 0.01 * Psi)
    np.testing.assert_allclose(float(b.primal), float(a.primal) * 1e-4, rtol=1e-6)
    assert int(a.n_nonzero) == int(b.n_nonzero)


def test_zero_targets():
    Phi, Psi = _gaussian(4)
    res = solve_constrained(Phi, np.zeros_like(Psi))
    assert bool(res.converged) and float(res.primal) == 0.0 and int(res.n_nonzero) == 0
    assert np.all(np.asarray(res.V) == 0)


@pytest.mark.parametrize("method", ["loop", "vmap"])
def test_batch_equals_individual(method):
    pairs = [_gaussian(s, K=40, N=6, D=3) for s in range(3)]
    Phi = np.stack([p[0] for p in pairs])
    Psi = np.stack([p[1] for p in pairs])
    batch = solve_constrained_batch(Phi, Psi, method=method)
    assert np.asarray(batch.V).shape == (3, 3, 40) and np.asarray(batch.Lambda).shape == (3, 3, 6)
    for i in range(3):
        one = solve_constrained(Phi[i], Psi[i])
        for f in ConstrainedResult._fields:
            np.testing.assert_allclose(np.asarray(getattr(batch, f))[i],
                                       np.asarray(getattr(one, f)), rtol=1e-9, atol=1e-12,
                                       err_msg=f)


def test_infeasible_targets_raise():
    rng = np.random.default_rng(0)
    Phi = rng.standard_normal((5, 8))  # rank 5 < N = 8: a generic Psi is not in the row space
    Psi = rng.standard_normal((2, 8))
    with pytest.raises(ValueError, match="not in the row space of Phi"):
        solve_constrained(Phi, Psi)
    Phi_b = np.stack([rng.standard_normal((5, 8)) for _ in range(2)])
    Psi_b = np.stack([rng.standard_normal((2, 5)) @ Phi_b[0], Psi])
    with pytest.raises(ValueError, match="batch item 1"):
        solve_constrained_batch(Phi_b, Psi_b)


def test_bad_inputs_name_the_argument():
    Phi, Psi = _gaussian(0, K=10, N=4, D=2)
    with pytest.raises(ValueError, match="Phi"):
        solve_constrained(Phi[0], Psi)
    bad = Psi.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="Psi contains NaN"):
        solve_constrained(Phi, bad)
    with pytest.raises(ValueError, match="same number of columns"):
        solve_constrained(Phi, Psi[:, :3])
    with pytest.raises(ValueError, match="tol"):
        solve_constrained(Phi, Psi, tol=-1.0)
    with pytest.raises(ValueError, match="max_iter"):
        solve_constrained(Phi, Psi, max_iter=0)
    with pytest.raises(ValueError, match="Psi"):
        solve_constrained_batch(Phi[None], Psi)
    with pytest.raises(ValueError, match="method"):
        solve_constrained_batch(Phi[None], Psi[None], method="pmap")


def test_result_types_and_rel_gap():
    """One convention for both result types: arrays are JAX arrays, the certificate fields host
    scalars (batch: NumPy arrays), rel_gap = gap / primal."""
    Phi, Psi = _gaussian(6)
    res = solve_constrained(Phi, Psi)
    for f in ("primal", "dual", "gap", "rel_gap", "residual"):
        assert type(getattr(res, f)) is float, f
    assert type(res.n_nonzero) is int and type(res.n_iter) is int
    assert type(res.converged) is bool
    assert isinstance(res.V, jax.Array) and isinstance(res.Lambda, jax.Array)
    np.testing.assert_allclose(res.rel_gap, res.gap / res.primal, rtol=1e-15)
    batch = solve_constrained_batch(Phi[None], Psi[None])
    for f in ("primal", "dual", "gap", "rel_gap", "residual", "n_nonzero", "n_iter", "converged"):
        assert isinstance(getattr(batch, f), np.ndarray) and getattr(batch, f).shape == (1,), f
    assert isinstance(batch.V, jax.Array) and batch.V.shape == (1, 3, 60)


@pytest.mark.parametrize("max_iter, check_every", [(20, 10), (25, 10), (7, 10), (1, 3)])
def test_max_iter_is_never_exceeded(max_iter, check_every):
    """max_iter = 25 with checks every 10 iterations used to run 30."""
    Phi, Psi = _gaussian(5)
    res = solve_constrained(Phi, Psi, tol=1e-12, max_iter=max_iter, check_every=check_every)
    assert res.n_iter == max_iter and not res.converged
    batch = solve_constrained_batch(Phi[None], Psi[None], tol=1e-12, max_iter=max_iter,
                                    check_every=check_every, method="vmap")
    assert int(batch.n_iter[0]) == max_iter


def test_max_iter_reports_not_converged():
    Phi, Psi = _gaussian(5)
    res = solve_constrained(Phi, Psi, tol=1e-12, max_iter=20, check_every=10)
    assert not bool(res.converged) and int(res.n_iter) == 20
    # still a valid (feasible) primal point and a feasible dual point
    assert float(res.residual) <= 1e-9 * np.linalg.norm(Psi)
    assert np.max(np.linalg.norm(np.asarray(res.Lambda) @ Phi.T, axis=0)) <= 1 + 1e-12
    assert float(res.gap) > 0
