"""One meaning of lambda: a trained output layer solves the multi-task lasso at the converted
weight (docs/paper.md §4.3)."""

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from vvjax import data, lasso, models, objectives, train


@pytest.fixture(scope="module")
def converged_prox():
    """The paper's proximal method run to convergence on a small 3-output teacher problem."""
    X, Y, _ = data.teacher_data(3, n=20, d_in=2, d_out=3, teacher_width=4)
    net = models.ShallowVVNet(2, 40, 3, rngs=nnx.Rngs(0))
    lam = 1e-3
    trained, hist = train.fit(net, X, Y, steps=100_000, lr=0.1, lam=lam, regularizer="prox",
                              log_every=10_000)
    return X, Y, lam, trained, hist


def test_prox_output_layer_satisfies_the_lasso_kkt_at_the_converted_lam(converged_prox):
    X, Y, lam, trained, hist = converged_prox
    N, D = Y.shape
    lam_l = objectives.lasso_lam(lam, D)
    assert lam_l == pytest.approx(lam * D / 2)
    Phi, _ = models.layer_io(trained, X)  # unit-norm features: ||(w_k, b_k)|| = 1
    p = models.params_of(trained)
    np.testing.assert_allclose(np.linalg.norm(np.c_[p.W, p.b], axis=1), 1.0, rtol=1e-12)
    V, Psi = np.asarray(p.V), np.asarray(Y).T
    # KKT of min 1/(2N) ||V Phi - Psi||^2 + lam_l sum_k ||v_k||:  G = (Psi - V Phi) Phi^T / N
    G = (Psi - V @ np.asarray(Phi)) @ np.asarray(Phi).T / N
    norms = np.linalg.norm(V, axis=0)
    act = norms > 0
    assert 2 <= act.sum() < 40
    stationarity = np.linalg.norm(G[:, act] - lam_l * V[:, act] / norms[act], axis=0)
    assert stationarity.max() <= 1e-2 * lam_l  # stated tolerance: 1 % of lam
    assert np.linalg.norm(G[:, ~act], axis=0).max() <= lam_l * (1 + 1e-6)
    # an independent solve from scratch finds the same support (and objective)
    res = lasso.solve_penalized(Phi, jnp.asarray(Psi), lam_l, tol=1e-10)
    support = np.linalg.norm(np.asarray(res.V), axis=0) > 1e-8 * np.abs(res.V).max()
    np.testing.assert_array_equal(support, act)
    obj = 0.5 / N * np.sum((V @ np.asarray(Phi) - Psi) ** 2) + lam_l * norms.sum()
    np.testing.assert_allclose(float(res.primal), obj, rtol=1e-5)
    # and the training objective at the end is D/2-scaled lasso objective
    np.testing.assert_allclose(hist.loss[-1], obj * 2 / D, rtol=1e-10)


def test_lasso_lam_bad_input():
    with pytest.raises(ValueError, match="lam"):
        objectives.lasso_lam(-1.0, 2)
    with pytest.raises(ValueError, match="d_out"):
        objectives.lasso_lam(1.0, 0)
    with pytest.raises(ValueError, match="mse"):
        objectives.lasso_lam(1.0, 2, loss="cross_entropy")
