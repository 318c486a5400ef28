"""Array-likes at every public entry point: scipy.sparse, lists, ``__array__`` objects, integers.

Each public function that takes data must give, on a ``scipy.sparse`` (or list, or integer) input,
the result it gives on the equal dense float array; the penalized solver also matches
scikit-learn's ``MultiTaskLasso`` fitted on the sparse input itself (``alpha = lam``,
``X = Phi.T``, ``Y = Psi.T``).
"""

import numpy as np
import pytest
import scipy.sparse as sp
from flax import nnx

from vvjax import analysis, lasso, train
from vvjax.models import ShallowVVNet


class ArrayLike:
    def __init__(self, a):
        self._a = np.asarray(a)

    def __array__(self, dtype=None, copy=None):
        return self._a if dtype is None else self._a.astype(dtype)


@pytest.fixture(scope="module")
def sparse_problem():
    """The issue's input: Phi a 60 x 200 csr matrix, 10 % dense; Psi dense Gaussian."""
    rng = np.random.default_rng(0)
    Phi = sp.random(60, 200, density=0.1, format="csr", random_state=rng)
    Psi = rng.standard_normal((2, 200))
    return Phi, Psi


def _same(a, b):
    for f in a._fields:
        x, y = getattr(a, f), getattr(b, f)
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=f)


def test_penalized_sparse_equals_dense_and_sklearn(sparse_problem):
    from sklearn.linear_model import MultiTaskLasso

    Phi, Psi = sparse_problem
    dense = Phi.toarray()
    lmax = lasso.lam_max(Phi, Psi)
    assert lmax == lasso.lam_max(dense, Psi)
    lam = 0.1 * lmax
    res = lasso.solve_penalized(Phi, Psi, lam, tol=1e-10)
    _same(res, lasso.solve_penalized(dense, Psi, lam, tol=1e-10))
    assert res.converged
    sk = MultiTaskLasso(alpha=lam, fit_intercept=False, tol=1e-12, max_iter=100_000)
    try:
        sk.fit(Phi.T.tocsr(), Psi.T)  # recent scikit-learn fits the sparse input
    except TypeError:  # scikit-learn < 1.5 (the lowest supported) wants it dense
        sk.fit(dense.T, Psi.T)
    N = Phi.shape[1]

    def objective(V):
        return (0.5 * np.sum((V @ dense - Psi) ** 2) / N
                + lam * np.sum(np.linalg.norm(V, axis=0)))

    # certified to 1e-10: not worse than scikit-learn, and both at the optimum to 1e-8
    assert res.primal <= objective(sk.coef_) * (1 + 1e-10)
    np.testing.assert_allclose(res.primal, objective(sk.coef_), rtol=1e-8)
    path = lasso.lasso_path(Phi, Psi, lams=[lam, 2 * lam], tol=1e-10)
    for a, b in zip(path, lasso.lasso_path(dense, Psi, lams=[lam, 2 * lam], tol=1e-10),
                    strict=True):
        _same(a, b)


def test_constrained_and_reductions_sparse_equal_dense():
    rng = np.random.default_rng(1)
    Phi = sp.random(40, 6, density=0.5, format="csr", random_state=rng)
    Phi = Phi + sp.eye(40, 6, format="csr")  # full column rank: every Psi is fittable
    dense = Phi.toarray()
    Psi = rng.standard_normal((2, 6))
    res = lasso.solve_constrained(Phi, Psi)
    _same(res, lasso.solve_constrained(dense, Psi))
    assert res.converged
    batch = lasso.solve_constrained_batch([dense.tolist()], Psi[None])  # nested lists
    np.testing.assert_allclose(batch.primal[0], res.primal, rtol=1e-12)
    V = np.asarray(res.V)
    np.testing.assert_array_equal(lasso.sparsify(sp.csr_matrix(V), Phi, sp.csr_matrix(Psi)),
                                  lasso.sparsify(V, dense, Psi))
    small = sp.csr_matrix(dense[:7, :3])
    a = lasso.sparsest_bruteforce(small, Psi[:, :3])
    b = lasso.sparsest_bruteforce(dense[:7, :3], Psi[:, :3])
    assert (a.n_nonzero, a.support, a.objective) == (b.n_nonzero, b.support, b.objective)
    assert int(analysis.rank_bound(Phi, sp.csr_matrix(Psi))) == int(
        analysis.rank_bound(dense, Psi)) == 6 * 2


def test_train_fit_sparse_equals_dense():
    rng = np.random.default_rng(2)
    X = sp.random(30, 3, density=0.5, format="csr", random_state=rng)
    Y = rng.standard_normal((30, 2))
    model = ShallowVVNet(3, 8, 2, rngs=nnx.Rngs(0))
    m_sparse, h_sparse = train.fit(model, X, Y, steps=2, lr=0.1)
    m_dense, h_dense = train.fit(model, X.toarray(), Y, steps=2, lr=0.1)
    np.testing.assert_array_equal(np.asarray(m_sparse.V[...]), np.asarray(m_dense.V[...]))
    np.testing.assert_array_equal(np.asarray(h_sparse.loss), np.asarray(h_dense.loss))


def test_lists_and_array_protocol_objects():
    rng = np.random.default_rng(3)
    Phi, Psi = rng.standard_normal((12, 30)), rng.standard_normal((2, 30))
    lam = 0.2 * lasso.lam_max(Phi, Psi)
    ref = lasso.solve_penalized(Phi, Psi, lam)
    _same(lasso.solve_penalized(Phi.tolist(), ArrayLike(Psi), lam), ref)
    con = lasso.solve_constrained(ArrayLike(Phi.T), Psi[:, :12].tolist())
    _same(con, lasso.solve_constrained(Phi.T, Psi[:, :12]))


def test_integer_and_bool_data_give_the_float_results():
    rng = np.random.default_rng(4)
    Phi_i = rng.integers(-3, 4, size=(30, 8))
    Psi_i = rng.integers(-2, 3, size=(2, 8))
    Phi_f, Psi_f = Phi_i.astype(float), Psi_i.astype(float)
    lam = 0.1 * lasso.lam_max(Phi_f, Psi_f)
    assert lasso.lam_max(Phi_i, Psi_i) == lasso.lam_max(Phi_f, Psi_f)
    _same(lasso.solve_penalized(Phi_i, Psi_i, lam), lasso.solve_penalized(Phi_f, Psi_f, lam))
    _same(lasso.solve_constrained(Phi_i, Psi_i), lasso.solve_constrained(Phi_f, Psi_f))
    Phi_b = rng.random((25, 6)) < 0.5
    Phi_b[:6] |= np.eye(6, dtype=bool)  # full column rank
    _same(lasso.solve_constrained(Phi_b, Psi_i[:, :6]),
          lasso.solve_constrained(Phi_b.astype(float), Psi_f[:, :6]))
    bf_i = lasso.sparsest_bruteforce(Phi_i[:7, :3], Psi_i[:, :3])
    bf_f = lasso.sparsest_bruteforce(Phi_f[:7, :3], Psi_f[:, :3])
    assert (bf_i.n_nonzero, bf_i.support, bf_i.objective) == (bf_f.n_nonzero, bf_f.support,
                                                              bf_f.objective)


@pytest.mark.parametrize("fn", ["lam_max", "solve_penalized", "lasso_path", "solve_constrained",
                                "sparsify", "sparsest_bruteforce"])
def test_non_numeric_input_names_the_argument(fn):
    rng = np.random.default_rng(5)
    Phi, Psi = rng.standard_normal((7, 3)), rng.standard_normal((2, 3))
    f = getattr(lasso, fn)
    extra = {"solve_penalized": (0.1,)}.get(fn, ())
    first = "V" if fn == "sparsify" else "Phi"
    args = (np.zeros((2, 7)), Phi) if fn == "sparsify" else (Phi, Psi)
    with pytest.raises(TypeError, match=f"{first} must be real"):
        f(args[0] + 1j, args[1], *extra)
    with pytest.raises(ValueError, match=f"{first} could not be converted"):
        f([[1.0, 2.0], [3.0]], args[1], *extra)
    with pytest.raises(TypeError, match=f"{first} must be a numeric array"):
        f("data.csv", args[1], *extra)


@pytest.mark.parametrize("shape_phi, shape_psi, name", [((0, 5), (2, 5), "Phi"),
                                                       ((3, 5), (0, 5), "Psi"),
                                                       ((3, 0), (2, 0), "Phi")])
def test_empty_problems_are_refused_by_name(shape_phi, shape_psi, name):
    """An empty layer (no active neuron) or no samples: a named error, not a NumPy one."""
    for solve in (lambda P, S: lasso.solve_constrained(P, S),
                  lambda P, S: lasso.solve_penalized(P, S, 0.1)):
        with pytest.raises(ValueError, match=f"^{name} must be"):
            solve(np.zeros(shape_phi), np.zeros(shape_psi))
