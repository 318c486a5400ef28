"""Penalized multi-task lasso: optimality (KKT),
agreement with scikit-learn, honest certificates."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vvjax.lasso import lam_max, lasso_path, solve_penalized
from vvjax.lasso import penalized as pz


def _relu_problem(K=40, N=300, D=3, d=5, seed=0):
    """Post-ReLU features (ill-conditioned: a shared mean direction) and noisy linear targets."""
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((K, d))
    W /= np.linalg.norm(W, axis=1, keepdims=True)
    Phi = np.maximum(W @ rng.standard_normal((d, N)), 0.0)
    Psi = rng.standard_normal((D, K)) @ Phi / np.sqrt(K)
    Psi += 0.05 * Psi.std() * rng.standard_normal(Psi.shape)
    return Phi, Psi


def _primal_dual(Phi, Psi, V, lam):
    """Independent float64 numpy certificate from the full data (not from the Gram matrix)."""
    N = Phi.shape[1]
    R = Psi - V @ Phi
    primal = 0.5 * np.sum(R * R) / N + lam * np.linalg.norm(V, axis=0).sum()
    c = min(1.0, lam / np.linalg.norm(R @ Phi.T / N, axis=0).max())
    dual = c * np.vdot(R, Psi) / N - 0.5 * c * c * np.sum(R * R) / N
    return primal, dual


@pytest.fixture(scope="module")
def problem():
    Phi, Psi = _relu_problem()
    return Phi, Psi, 0.1 * lam_max(Phi, Psi)


@pytest.fixture(scope="module")
def solution(problem):
    Phi, Psi, lam = problem
    return solve_penalized(Phi, Psi, lam, tol=1e-10)


def test_kkt_conditions(problem, solution):
    Phi, Psi, lam = problem
    V = np.asarray(solution.V)
    assert solution.converged and solution.rel_gap <= 1e-10
    H = (Psi - V @ Phi) @ Phi.T / Phi.shape[1]  # column k: (1/N) (Psi - V Phi) phi_k
    nrm = np.linalg.norm(V, axis=0)
    active = nrm > 0
    assert 0 < active.sum() < V.shape[1]
    np.testing.assert_allclose(H[:, active], lam * V[:, active] / nrm[active], rtol=0,
                               atol=1e-6 * lam)
    assert np.all(np.linalg.norm(H[:, ~active], axis=0) <= lam * (1 + 1e-6))


def test_inactive_columns_are_exact_zeros(solution):
    V = np.asarray(solution.V)
    nrm = np.linalg.norm(V, axis=0)
    assert np.any(nrm == 0.0)
    assert np.all(V[:, nrm == 0.0] == 0.0)
    assert solution.n_nonzero == int(np.sum(nrm > 0))


def test_objective_matches_sklearn(problem, solution):
    from sklearn.linear_model import MultiTaskLasso

    Phi, Psi, lam = problem
    sk = MultiTaskLasso(alpha=lam, fit_intercept=False, tol=1e-14, max_iter=200_000)
    sk.fit(Phi.T, Psi.T)
    p_sk, _ = _primal_dual(Phi, Psi, sk.coef_, lam)
    p_us, _ = _primal_dual(Phi, Psi, np.asarray(solution.V), lam)
    assert abs(p_us - p_sk) <= 1e-6 * p_sk
    assert p_us <= p_sk + 1e-12 * p_sk  # certified to 1e-10: not worse than sklearn
    np.testing.assert_allclose(np.asarray(solution.V), sk.coef_, atol=1e-4 * np.abs(sk.coef_).max())


def test_certificate_is_honest(problem, solution):
    Phi, Psi, lam = problem
    primal, dual = _primal_dual(Phi, Psi, np.asarray(solution.V), lam)
    p0 = 0.5 * np.sum(Psi**2) / Phi.shape[1]
    np.testing.assert_allclose(solution.primal, primal, rtol=1e-10)
    assert solution.dual <= primal + 1e-12 * p0  # a valid lower bound...
    assert solution.dual >= dual - 1e-12 * p0  # ...at least as good as the rescaled residual's
    assert solution.gap >= -1e-12 * p0
    # rel_gap is relative to the primal (the convention of ConstrainedResult too); host scalars
    np.testing.assert_allclose(solution.rel_gap, solution.gap / solution.primal, rtol=1e-12)
    for f in ("primal", "dual", "gap", "rel_gap"):
        assert type(getattr(solution, f)) is float, f
    assert type(solution.n_nonzero) is int and type(solution.n_iter) is int
    assert type(solution.converged) is bool


def test_early_stop_reports_an_honest_gap(problem):
    Phi, Psi, lam = problem
    res = pz._solve_stats(pz._gram_stats(Phi, Psi), lam, None, tol=1e-12, max_iter=5, polish=False)
    assert not res.converged and res.rel_gap > 1e-12
    primal, dual = _primal_dual(Phi, Psi, np.asarray(res.V), lam)
    np.testing.assert_allclose(res.primal, primal, rtol=1e-10)
    assert res.dual <= primal and res.primal >= res.dual


def test_coordinate_descent_alone_converges(problem, solution):
    Phi, Psi, lam = problem
    res = pz._solve_stats(pz._gram_stats(Phi, Psi), lam, None, tol=1e-8, max_iter=100_000,
                          polish=False)
    assert res.converged and res.n_iter > 0
    p0 = 0.5 * np.sum(Psi**2) / Phi.shape[1]
    assert abs(res.primal - solution.primal) <= 1e-8 * p0


def test_lam_max_is_the_zero_threshold():
    Phi, Psi = _relu_problem(K=30, N=200, D=2, seed=1)
    lmax = lam_max(Phi, Psi)
    np.testing.assert_allclose(lmax, np.linalg.norm(Psi @ Phi.T, axis=0).max() / Phi.shape[1])
    at = solve_penalized(Phi, Psi, lmax)
    assert at.n_nonzero == 0 and np.all(np.asarray(at.V) == 0.0) and at.converged
    below = solve_penalized(Phi, Psi, 0.98 * lmax)
    assert below.n_nonzero >= 1 and below.converged


def test_warm_start_from_solution_needs_no_iterations(problem, solution):
    Phi, Psi, lam = problem
    again = solve_penalized(Phi, Psi, lam, tol=1e-8, V0=solution.V)
    assert again.converged and again.n_iter == 0
    np.testing.assert_array_equal(np.asarray(again.V), np.asarray(solution.V))


def test_path_is_warm_started_and_grows_the_support():
    Phi, Psi = _relu_problem(K=30, N=200, D=2, seed=2)
    path = lasso_path(Phi, Psi, n_lams=8, eps=0.05, tol=1e-8)
    assert len(path) == 8 and all(r.converged for r in path)
    assert path[0].n_nonzero == 0
    counts = np.array([r.n_nonzero for r in path])
    assert counts[-1] > counts[1] > 0
    assert np.sum(np.diff(counts) < 0) <= 2  # monotone-ish: the group lasso path may drop a column
    primals = np.array([r.primal for r in path])
    assert np.all(np.diff(primals) < 0)  # the optimal value decreases with lam
    explicit = lasso_path(Phi, Psi, lams=[0.3 * lam_max(Phi, Psi)], tol=1e-8)
    single = solve_penalized(Phi, Psi, 0.3 * lam_max(Phi, Psi), tol=1e-8)
    assert abs(explicit[0].primal - single.primal) <= 1e-8 * abs(single.primal)


def test_accepts_jax_arrays_and_solver_core_vmaps(problem):
    Phi, Psi, lam = problem
    res = solve_penalized(jnp.asarray(Phi), jnp.asarray(Psi), lam, tol=1e-6)
    assert res.converged and res.V.dtype == jnp.float64
    st = pz._gram_stats(Phi, Psi)
    K, D = st.Ct.shape
    lams = jnp.array([lam, 2 * lam])
    out = jax.vmap(pz._inner_solve, (None, None, None, None, 0, None, None, None))(
        jnp.zeros((K, D)), st.G, st.Ct, st.yy2n, lams, K, 1e-9, 20_000)
    for i, lam_i in enumerate([lam, 2 * lam]):
        ref = solve_penalized(Phi, Psi, float(lam_i), tol=1e-9)
        np.testing.assert_allclose(_primal_dual(Phi, Psi, np.asarray(out[0][i]).T, float(lam_i))[0],
                                   ref.primal, rtol=1e-8)


@pytest.mark.parametrize("kwargs, name", [
    (dict(lam=-1.0), "lam"),
    (dict(lam=0.0), "lam must be > 0"),
    (dict(tol=1e-16), "tol"),
    (dict(lam=float("nan")), "lam"),
    (dict(tol=0.0), "tol"),
    (dict(max_iter=0), "max_iter"),
    (dict(V0=np.zeros((3, 7))), "V0"),
    (dict(V0=np.full((3, 40), np.nan)), "V0"),
])
def test_bad_arguments_raise(problem, kwargs, name):
    Phi, Psi, lam = problem
    args = dict(lam=lam) | kwargs
    with pytest.raises(ValueError, match=name):
        solve_penalized(Phi, Psi, **args)


def test_bad_data_raise(problem):
    Phi, Psi, lam = problem
    bad = Phi.copy()
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="Phi"):
        solve_penalized(bad, Psi, lam)
    with pytest.raises(ValueError, match="Psi"):
        solve_penalized(Phi, Psi[:, :-1], lam)
    with pytest.raises(ValueError, match="Psi"):
        lam_max(Phi, Psi[0])
    with pytest.raises(ValueError, match="lams"):
        lasso_path(Phi, Psi, lams=[-1.0])
    with pytest.raises(ValueError, match="eps"):
        lasso_path(Phi, Psi, eps=2.0)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_nonfinite_phi_raises_after_gram(problem, value):
    """Phi's NaN/inf scan is read off the Gram diagonal:
    still raised, naming Phi, on every route."""
    Phi, Psi, lam = problem
    bad = Phi.copy()
    bad[3, 7] = value
    with pytest.raises(ValueError, match="Phi"):
        solve_penalized(bad, Psi, lam)
    with pytest.raises(ValueError, match="Phi"):
        lasso_path(bad, Psi, lams=[lam])


def test_finite_data_whose_squares_overflow_is_solved(problem, solution):
    """1e200 Phi (its Gram matrix overflows) used to be refused; it is the same problem with
    V -> V / 1e200 and lam -> 1e200 lam."""
    Phi, Psi, lam = problem
    res = solve_penalized(1e200 * Phi, Psi, 1e200 * lam, tol=1e-10)
    assert res.converged
    np.testing.assert_allclose(res.primal, solution.primal, rtol=1e-9)
    np.testing.assert_allclose(np.asarray(res.V) * 1e200, np.asarray(solution.V), rtol=1e-6,
                               atol=1e-8 * np.abs(np.asarray(solution.V)).max())


def test_lam_zero_is_refused_by_name():
    """The issue's input: K=20 < N=200 at lam = 0 ran its whole budget (6.7 s) and returned the
    least-squares V with converged=False; lam = 0 has no group-lasso certificate here."""
    rng = np.random.default_rng(0)
    Phi, Psi = rng.standard_normal((20, 200)), rng.standard_normal((3, 200))
    with pytest.raises(ValueError, match=r"lam must be > 0, got 0.*numpy\.linalg\.lstsq"):
        solve_penalized(Phi, Psi, 0.0)
    with pytest.raises(ValueError, match="lams must be > 0"):
        lasso_path(Phi, Psi, lams=[0.5, 0.1, 0.0])
    # a tiny positive lam is certified (the dual point is then the nearly least-squares residual)
    tiny = 1e-8 * lam_max(Phi, Psi)
    res = solve_penalized(Phi, Psi, tiny, tol=1e-8)
    assert res.converged
    V_ls = np.linalg.lstsq(Phi.T, Psi.T, rcond=None)[0].T
    np.testing.assert_allclose(np.asarray(res.V), V_ls, atol=1e-6 * np.abs(V_ls).max())


@pytest.mark.parametrize("max_iter", [1, 3, 7, 12, 23])
def test_max_iter_is_never_exceeded(problem, max_iter):
    """Epochs run in blocks of 5; the last block used to overshoot max_iter (7 -> 10)."""
    Phi, Psi, lam = problem
    for polish in (True, False):
        res = pz._solve_stats(pz._gram_stats(Phi, Psi), lam, None, tol=1e-14, max_iter=max_iter,
                              polish=polish)
        assert res.n_iter <= max_iter
    res = solve_penalized(Phi, Psi, lam, tol=1e-14, max_iter=max_iter)
    assert res.n_iter <= max_iter
    path = lasso_path(Phi, Psi, n_lams=3, tol=1e-14, max_iter=max_iter)
    assert all(r.n_iter <= max_iter for r in path)


def test_progress_guard_stops_a_stalled_loop(problem, monkeypatch):
    """A kernel that makes no progress (0 epochs, no change) used to spin the outer loop for ever
    (epochs never reach max_iter); the guard stops after 10 rounds without a gap decrease."""
    Phi, Psi, lam = problem
    calls = []

    def stalled(Vt, G, Ct, yy2n, lam, n_act, eps, max_epochs):
        calls.append(1)
        if len(calls) > 1000:
            raise AssertionError("the outer loop did not stop")
        return Vt, Vt, np.int64(0)

    monkeypatch.setattr(pz, "_inner_solve", stalled)
    res = pz._solve_stats(pz._gram_stats(Phi, Psi), lam, None, tol=1e-8, max_iter=100_000)
    assert not res.converged and res.n_iter == 0 and len(calls) <= 11
    primal, _ = _primal_dual(Phi, Psi, np.asarray(res.V), lam)
    np.testing.assert_allclose(res.primal, primal, rtol=1e-12)  # still an honest certificate


def test_newton_polish_matches_kkt_on_support(problem):
    """The Woodbury-preconditioned Newton polish reaches the support-restricted optimum."""
    Phi, Psi, lam = problem
    stats = pz._gram_stats(Phi, Psi)
    res = solve_penalized(Phi, Psi, lam, tol=1e-12)
    Vt = np.asarray(res.V).T
    S = np.flatnonzero(np.any(Vt != 0, axis=1))
    G, Ct = np.asarray(stats.G), np.asarray(stats.Ct)
    Vs = pz._newton_polish(Vt[S] * 0.9, G[np.ix_(S, S)], Ct[S], lam)
    assert Vs is not None
    g = G[np.ix_(S, S)] @ Vs - Ct[S] + lam * Vs / np.linalg.norm(Vs, axis=1, keepdims=True)
    assert np.linalg.norm(g) <= 1e-9 * np.linalg.norm(Ct[S])
