"""float32 (``jax_enable_x64`` off): tolerances scale with the dtype or are refused by name.

References are independent float64 solves (CVXPY + Clarabel, or the solvers run with x64 on, whose
float64 results the other test files check against CVXPY and scikit-learn).
"""

import contextlib
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from vvjax import lasso
from vvjax.runs.lasso_bounds import run_lasso_bounds

sys.path.insert(0, str(Path(__file__).parent))
from test_lasso_bounds import _smoke  # noqa: E402

F32_FLOOR = lasso.TOL_FLOOR_EPS * float(np.finfo(np.float32).eps)  # 1.2e-5


@contextlib.contextmanager
def float32():
    jax.config.update("jax_enable_x64", False)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", True)


def _cvxpy(Phi, Psi):
    cp = pytest.importorskip("cvxpy")
    V = cp.Variable((Psi.shape[0], Phi.shape[0]))
    prob = cp.Problem(cp.Minimize(cp.sum(cp.norm(V, 2, axis=0))), [V @ Phi == Psi])
    prob.solve(solver=cp.CLARABEL)
    return prob.value


def _issue_problem(seed=0):
    """The issue's input: K=60, N=8, D=3 Gaussian."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((60, 8)), rng.standard_normal((3, 8))


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("tol", [None, 1e-3])
def test_constrained_float32_is_certified_and_right(seed, tol):
    """Was: the starting point after 5000 iterations, 60/60 columns, 31 % above CVXPY, at tol
    1e-6 and 1e-3. Now: converged, sparse, within tol of CVXPY's optimum."""
    Phi, Psi = _issue_problem(seed)
    ref = _cvxpy(Phi, Psi)
    with float32():
        res = lasso.solve_constrained(Phi, Psi, tol=tol)
    want = F32_FLOOR if tol is None else tol
    assert res.converged and res.rel_gap <= want and res.n_iter < 5000
    assert res.V.dtype == np.float32 and res.Lambda.dtype == np.float32
    assert res.n_nonzero <= np.linalg.matrix_rank(Phi) * np.linalg.matrix_rank(Psi) < 60
    # certificate (float64, on the returned float32 V): dual below the optimum, primal within tol
    assert res.dual <= ref * (1 + 1e-7)
    assert res.primal <= ref * (1 + want + 1e-6)
    # the float32 V fits to float32 precision
    V = np.asarray(res.V, np.float64)
    assert np.linalg.norm(V @ Phi - Psi) <= 1e-5 * np.linalg.norm(Psi)


def test_constrained_float32_refuses_uncertifiable_tol():
    Phi, Psi = _issue_problem()
    with float32(), pytest.raises(ValueError, match=r"tol=1e-06 is below what a float32 solve can "
                                                    r"certify \(tol >= 1\.2e-05"):
        lasso.solve_constrained(Phi, Psi, tol=1e-6)
    with float32(), pytest.raises(ValueError, match="tol"):
        lasso.solve_constrained_batch(Phi[None], Psi[None], tol=1e-7)
    with pytest.raises(ValueError, match="below what a float64 solve"):
        lasso.solve_constrained(Phi, Psi, tol=1e-15)


@pytest.mark.parametrize("method", ["loop", "vmap"])
def test_constrained_batch_float32_matches_float64(method):
    pairs = [_issue_problem(s) for s in range(3)]
    Phi, Psi = np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])
    ref = lasso.solve_constrained_batch(Phi, Psi, tol=1e-9)
    with float32():
        res = lasso.solve_constrained_batch(Phi, Psi, method=method)
    assert np.all(res.converged) and np.all(res.rel_gap <= F32_FLOOR)
    assert np.all(res.dual <= ref.primal * (1 + 1e-9))
    assert np.all(res.primal <= ref.primal * (1 + F32_FLOOR + 1e-6))


def test_bruteforce_float32():
    """Was: "numerical trouble" on every input (a fixed 1e-8 residual test). Now the default tol
    in float32 is 100 x the floor (1.2e-3) and the search agrees with float64's."""
    rng = np.random.default_rng(1)
    problems = [(rng.standard_normal((K, 3)), rng.standard_normal((2, 3))) for K in (7, 8, 9)]
    refs = [lasso.sparsest_bruteforce(*p) for p in problems]
    with float32():
        outs = [lasso.sparsest_bruteforce(*p) for p in problems]
        with pytest.raises(ValueError, match=r"tol=1e-06 is too small for a float32 search.*"
                                             r"use tol >= 1\.2e-03"):
            lasso.sparsest_bruteforce(*problems[0], tol=1e-6)
    for out, ref in zip(outs, refs, strict=True):
        assert (out.n_nonzero, out.support) == (ref.n_nonzero, ref.support)
        np.testing.assert_allclose(out.objective, ref.objective, rtol=1e-5)


def test_penalized_float32_certifies_like_float64():
    """The float32 kernel only proposes iterates; statistics, polish and certificate are float64,
    so a 1e-8 certificate holds for the returned (float32-rounded) V."""
    rng = np.random.default_rng(2)
    W = rng.standard_normal((40, 5))
    Phi = np.maximum(W @ rng.standard_normal((5, 300)), 0.0)  # post-ReLU features
    Psi = rng.standard_normal((3, 40)) @ Phi / np.sqrt(40) + 0.05 * rng.standard_normal((3, 300))
    lam = 0.1 * lasso.lam_max(Phi, Psi)
    ref = lasso.solve_penalized(Phi, Psi, lam, tol=1e-12)
    with float32():
        res = lasso.solve_penalized(Phi, Psi, lam, tol=1e-8)
        path = lasso.lasso_path(Phi, Psi, n_lams=4, eps=0.1, tol=1e-8)
    assert res.converged and res.rel_gap <= 1e-8 and res.V.dtype == np.float32
    V = np.asarray(res.V, np.float64)
    N = Phi.shape[1]
    primal = 0.5 * np.sum((V @ Phi - Psi) ** 2) / N + lam * np.linalg.norm(V, axis=0).sum()
    np.testing.assert_allclose(res.primal, primal, rtol=1e-12)  # the rounded V's objective
    assert ref.primal <= res.primal <= ref.primal * (1 + 1e-8)
    assert res.dual <= ref.primal * (1 + 1e-12)
    assert res.n_nonzero == ref.n_nonzero
    assert all(r.converged and r.rel_gap <= 1e-8 for r in path)


def test_runner_float32(tmp_path):
    """lasso_bounds precision=float32 (an allowed config value) reported 60/60 columns; now the
    default tol 1e-6 is refused by name, and tol=1e-4 gives certified counts within the bounds."""
    with pytest.raises(ValueError, match="tol=1e-06 is below what a float32 solve can certify"):
        run_lasso_bounds(_smoke("random", precision="float32", figures=False), tmp_path / "a")
    m = run_lasso_bounds(_smoke("random", precision="float32", tol=1e-4, figures=False),
                         tmp_path / "b")
    for p in m["panels"].values():
        assert p["n_not_converged"] == 0 and p["max_rel_gap"] <= 1e-4
        assert p["solver"]["frac_within_bounds"] == 1.0
        assert p["solver"]["max"] < 60


@pytest.mark.parametrize("cond", [1e2, 1e4, 1e6, 1e8])
def test_constrained_float32_ill_conditioned(cond):
    """cond(Phi) = 1e2 with Psi = A Phi was refused as infeasible in float32 (a Gram-matrix basis
    squares the condition number); the basis is now a float64 SVD, the iterations float32."""
    rng = np.random.default_rng(3)
    U, _ = np.linalg.qr(rng.standard_normal((60, 10)))
    W, _ = np.linalg.qr(rng.standard_normal((10, 10)))
    A = rng.standard_normal((3, 60))
    Phi = (U * np.geomspace(1.0, 1.0 / cond, 10)) @ W.T
    ref = _cvxpy(U @ W.T, A @ U @ W.T)  # same feasible set, perfectly conditioned
    with float32():
        res = lasso.solve_constrained(Phi, A @ Phi)
    assert res.converged and res.rel_gap <= F32_FLOOR
    slack = 1e-7 + float(np.finfo(np.float64).eps) * cond
    assert res.dual <= ref * (1 + slack)
    assert res.primal <= ref * (1 + F32_FLOOR + 1e-6 + slack)
