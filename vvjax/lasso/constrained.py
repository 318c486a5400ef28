r"""Constrained (interpolating) multi-task lasso with a certified duality gap.

Problem (arXiv 2305.16534, Sec. 4; PAPER.md Sec. 4.1), with ``Phi`` K x N (row k = feature
:math:`\phi_k^T`), ``Psi`` D x N (targets) and ``V`` D x K (columns :math:`v_k`):

.. math::

    \min_V \sum_{k=1}^K \|v_k\|_2 \quad \text{s.t.} \quad V \Phi = \Psi,
    \qquad\text{dual:}\qquad
    \max_\Lambda \langle \Lambda, \Psi \rangle \quad \text{s.t.} \quad
    \max_k \|\Lambda \phi_k\|_2 \le 1 .

How it is solved. With the thin SVD :math:`\Phi = U S W^T` (rank r, numerical rank with NumPy's
``matrix_rank`` rule), the constraint reads :math:`V Q = B` with :math:`Q = U_r`
(K x r, orthonormal) and :math:`B = \Psi W_r S_r^{-1}`, plus :math:`\Psi W_\perp = 0` (``Psi`` in
the row space of ``Phi``; checked up front, a clear ``ValueError`` otherwise). Then

* ADMM (over-relaxed, :math:`\alpha = 1.8`) on :math:`V = Z`: the V-step is the projection
  :math:`X - (X Q - B) Q^T` onto the affine set (cost 2 D K r, no factorization beyond the SVD), the
  Z-step a group soft-threshold (exact zeros). The penalty :math:`\rho` is scaled to the problem
  (``rho * K / sum_k ||v0_k||`` with ``v0`` the minimum-Frobenius-norm fit), so the method is
  invariant to rescaling ``Phi`` or ``Psi``.
* Every ``check_every`` iterations, a certificate: the support of ``Z`` is *polished* by the
  minimum-norm correction that makes it fit exactly (only columns in the support change, so zeros
  stay exact and the residual drops to machine precision), and the ADMM multiplier
  :math:`Y = \rho U` (which satisfies :math:`\|y_k\| \le 1`) is projected onto the normal space
  :math:`\{\Lambda \Phi^T\}` and rescaled to be dual feasible. Stop when
  ``primal - dual <= tol * primal`` and the in-row-space residual is ``<= res_rtol * ||Psi||``.

Weak duality makes the certificate rigorous: for every feasible ``V`` and every dual-feasible
``Lambda``, :math:`\sum_k \|v_k\| \ge \sum_k \langle v_k, \Lambda\phi_k \rangle
= \langle \Lambda, \Psi \rangle`, so the returned ``primal`` is within ``gap`` of the optimum.

On CPU, a Python loop over one jitted solve beats ``vmap`` for a batch of problems (the batched
``while_loop`` runs every problem for as many iterations as the slowest one and its small matmuls
batch poorly); :func:`solve_constrained_batch` offers both.

References: arXiv 2305.16534, Sec. 4 (multi-task lasso; Theorem: a solution with at most
rank(Phi) * rank(Psi) nonzero columns exists, and every feasible V has at least rank(Psi)).
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from vvjax._validate import as_array, check_choice, check_nonnegative, check_positive_int
from vvjax.lasso._common import check_problem

__all__ = ["ConstrainedResult", "solve_constrained", "solve_constrained_batch"]

_ALPHA = 1.8  # over-relaxation of the ADMM V-step


class ConstrainedResult(NamedTuple):
    r"""Solution of the constrained multi-task lasso with its duality certificate.

    For :func:`solve_constrained_batch` every field has a leading batch axis.

    Attributes:
      V: D x K solution; inactive columns are exactly zero.
      primal: objective :math:`\sum_k \|v_k\|_2` of ``V``.
      dual: dual objective :math:`\langle \Lambda, \Psi \rangle` (a lower bound on the optimum).
      Lambda: D x N dual point, feasible: :math:`\max_k \|\Lambda \phi_k\|_2 \le 1`.
      gap: ``primal - dual`` (absolute; divide by ``primal`` for the relative gap).
      residual: :math:`\|V \Phi - \Psi\|_F` (absolute).
      n_nonzero: number of nonzero (exactly: not identically zero) columns of ``V``.
      n_iter: ADMM iterations run.
      converged: ``gap <= tol * primal`` and the residual criterion hold.
    """

    V: jax.Array
    primal: jax.Array
    dual: jax.Array
    Lambda: jax.Array
    gap: jax.Array
    residual: jax.Array
    n_nonzero: jax.Array
    n_iter: jax.Array
    converged: jax.Array


class _Prepared(NamedTuple):
    Q: jax.Array  # K x N, orthonormal columns (zeroed beyond the numerical rank)
    B: jax.Array  # D x N, Psi W S^-1 (zeroed beyond the rank)
    s: jax.Array  # (N,) singular values (zeroed beyond the rank)
    Wt: jax.Array  # N x N right singular vectors (rows)
    lsq_residual: jax.Array  # ||Psi - Psi W_r W_r^T||_F: the part of Psi that no V can fit


def _prepare(Phi, Psi):
    K, N = Phi.shape
    if K >= N:
        # Orthonormal basis of col(Phi) from two Gram passes (matmuls + N x N eigh: on XLA CPU a
        # tall QR or SVD of a 500 x 40 matrix was 10-100x slower). Pass 1 whitens Phi with the
        # eigenvectors of Phi^T Phi (directions at the Gram noise level, ~sqrt(eps) sigma_max, are
        # dropped); pass 2 re-orthonormalizes the (now well-conditioned) result, as in CholeskyQR2.
        # The SVD of the small factor R = Qf^T Phi then gives accurate singular values and the rank.
        e1, W1 = jnp.linalg.eigh(Phi.T @ Phi)
        keep1 = e1 > 1e3 * jnp.finfo(Phi.dtype).eps * jnp.max(e1)
        Y = Phi @ (W1 * jnp.where(keep1, jax.lax.rsqrt(jnp.where(keep1, e1, 1.0)), 0.0))
        e2, W2 = jnp.linalg.eigh(Y.T @ Y)
        keep2 = e2 > 0.25  # well-resolved directions have e2 = 1 up to ~1e-4
        Qf = Y @ (W2 * jnp.where(keep2, jax.lax.rsqrt(jnp.where(keep2, e2, 1.0)), 0.0))
        Ur, s, Wt = jnp.linalg.svd(Qf.T @ Phi)
        U = Qf @ Ur
    else:  # K < N: keep N components (the last N - K have s = 0) so that Wt is N x N
        U, s, Wt = jnp.linalg.svd(Phi, full_matrices=True)
        U = jnp.pad(U, ((0, 0), (0, N - K)))
        s = jnp.pad(s, (0, N - K))
    eps = jnp.finfo(Phi.dtype).eps
    keep = s > max(K, N) * eps * jnp.max(s, initial=0.0)
    Q = U * keep
    s_inv = jnp.where(keep, 1.0 / jnp.where(keep, s, 1.0), 0.0)
    PsiW = Psi @ Wt.T
    B = PsiW * s_inv
    lsq = jnp.linalg.norm(Psi - (PsiW * keep) @ Wt)
    return _Prepared(Q, B, s * keep, Wt, lsq)


_prepare_jit = jax.jit(_prepare)


def _col_norms(X):
    return jnp.sqrt(jnp.sum(X * X, axis=0))


def _group_soft_threshold(X, t):
    n = _col_norms(X)
    return X * jnp.maximum(1.0 - t / jnp.maximum(n, jnp.finfo(X.dtype).tiny), 0.0)


def _polish(Z, prep: _Prepared):
    """Minimum-norm change of Z's nonzero columns that fits
    exactly: (V, objective, row residual)."""
    Q, B = prep.Q, prep.B
    Qs = Q * jnp.any(Z != 0, axis=0)[:, None]
    R = Z @ Q - B  # D x N misfit in reduced coordinates
    e, E = jnp.linalg.eigh(Qs.T @ Qs)
    e_inv = jnp.where(e > 1e-12 * jnp.max(e, initial=0.0), 1.0 / jnp.where(e > 0, e, 1.0), 0.0)
    V = Z - ((R @ E) * e_inv) @ E.T @ Qs.T  # columns outside the support stay exactly zero
    return V, jnp.sum(_col_norms(V)), jnp.linalg.norm((V @ Q - B) * prep.s)


def _dual_point(Y, prep: _Prepared):
    """Project Y (D x K) on {Lambda Phi^T}, rescale to feasibility: (Lambda W S, <Lambda, Psi>)."""
    YQ = Y @ prep.Q
    scale = jnp.maximum(1.0, jnp.max(_col_norms(YQ @ prep.Q.T), initial=0.0))
    YQ = YQ / scale  # Lambda = YQ S^-1 W^T is feasible: ||Lambda phi_k|| = ||(YQ Q^T)_k|| <= 1
    return YQ, jnp.sum(YQ * prep.B)


@functools.partial(jax.jit, static_argnames=("max_iter", "check_every"))
def _solve_prepared(prep: _Prepared, Phi, Psi, tol, res_rtol, rho, *, max_iter, check_every):
    Q, B = prep.Q, prep.B
    V0 = B @ Q.T  # minimum-Frobenius-norm fit: feasible, the first primal candidate
    D, K = V0.shape
    obj0 = jnp.sum(_col_norms(V0))
    rho = rho * K / jnp.maximum(obj0, jnp.finfo(V0.dtype).tiny)
    res_max = res_rtol * jnp.linalg.norm(Psi)

    def proj(X):
        return X - (X @ Q - B) @ Q.T

    def step(carry, _):
        Z, U = carry
        V = proj(Z - U)
        Vh = _ALPHA * V + (1.0 - _ALPHA) * Z
        Z = _group_soft_threshold(Vh + U, 1.0 / rho)
        return (Z, U + Vh - Z), None

    def body(state):
        Z, U, it, _, best = state
        V_best, primal, YQ_best, dual = best
        (Z, U), _ = jax.lax.scan(step, (Z, U), None, length=check_every)
        it = it + check_every
        YQ, d = _dual_point(rho * U, prep)
        better = d > dual
        YQ_best, dual = jnp.where(better, YQ, YQ_best), jnp.maximum(d, dual)
        # Polish (the costly part of a check) only when Z's objective is near the dual bound.
        est = jnp.sum(_col_norms(Z))
        near = (est - dual <= 10.0 * tol * est) | (it >= max_iter)
        V, p, res = jax.lax.cond(near, lambda: _polish(Z, prep),
                                 lambda: (Z, jnp.asarray(jnp.inf, Z.dtype),
                                          jnp.asarray(jnp.inf, Z.dtype)))
        better = (res <= res_max) & (p < primal)
        V_best, primal = jnp.where(better, V, V_best), jnp.where(better, p, primal)
        done = primal - dual <= tol * primal
        return Z, U, it, done, (V_best, primal, YQ_best, dual)

    zero = jnp.zeros((), V0.dtype)
    best = (V0, obj0, jnp.zeros_like(B), zero)
    init = (V0, jnp.zeros_like(V0), jnp.asarray(0), obj0 <= 0, best)  # obj0 = 0: V = 0 is optimal
    Z, U, n_iter, done, (V, primal, YQ, dual) = jax.lax.while_loop(
        lambda st: (~st[3]) & (st[2] < max_iter), body, init)
    Lambda = (YQ * jnp.where(prep.s > 0, 1.0 / jnp.where(prep.s > 0, prep.s, 1.0), 0.0)) @ prep.Wt
    residual = jnp.linalg.norm(V @ Phi - Psi)
    n_nonzero = jnp.sum(jnp.any(V != 0, axis=0))
    return ConstrainedResult(V, primal, dual, Lambda, primal - dual, residual, n_nonzero, n_iter,
                             done)


def _check_options(tol, max_iter, res_rtol, rho, feas_rtol, check_every):
    check_nonnegative("tol", tol)
    check_positive_int("max_iter", max_iter)
    check_positive_int("check_every", check_every)
    check_nonnegative("res_rtol", res_rtol)
    if not (np.isfinite(rho) and rho > 0):
        raise ValueError(f"rho must be finite and > 0, got {rho!r}")
    if feas_rtol is not None:
        check_nonnegative("feas_rtol", feas_rtol)


def _check_feasible(prep: _Prepared, Psi, feas_rtol, where: str = ""):
    lsq = np.asarray(prep.lsq_residual)
    psi_norm = np.linalg.norm(np.asarray(Psi).reshape(lsq.shape + (-1,)), axis=-1)
    if feas_rtol is None:
        feas_rtol = float(np.sqrt(np.finfo(np.asarray(Psi).dtype).eps))
    bad = np.flatnonzero(np.atleast_1d(lsq > feas_rtol * psi_norm))
    if bad.size:
        i = int(bad[0])
        lsq_i, norm_i = float(np.atleast_1d(lsq)[i]), float(np.atleast_1d(psi_norm)[i])
        at = f" (batch item {i})" if where == "batch" else ""
        raise ValueError(
            f"Psi is not in the row space of Phi{at}: no V satisfies V Phi = Psi; residual of the "
            f"least-squares fit = {lsq_i:.3e} (relative {lsq_i / norm_i:.3e} > feas_rtol "
            f"{feas_rtol:.1e})")


def solve_constrained(Phi, Psi, *, tol: float = 1e-6, max_iter: int = 5000,
                      res_rtol: float = 1e-10, rho: float = 0.15, feas_rtol: float | None = None,
                      check_every: int = 10) -> ConstrainedResult:
    r"""Solve :math:`\min_V \sum_k \|v_k\|_2` s.t. :math:`V\Phi = \Psi`, with a duality certificate.

    Args:
      Phi: K x N features (row k is :math:`\phi_k^T`).
      Psi: D x N targets; must lie in the row space of ``Phi``.
      tol: relative duality gap at which to stop, ``primal - dual <= tol * primal``.
      max_iter: ADMM iteration cap (``converged`` is False if reached).
      res_rtol: stop only once ``||V Phi - Psi||_F <= res_rtol * ||Psi||_F`` (within the row space
        of ``Phi``; the polish usually reaches machine precision).
      rho: ADMM penalty, relative to the problem scale ``K / sum_k ||v0_k||`` (``v0``: the
        minimum-norm fit). 0.1-0.3 works on Gaussian, post-ReLU and low-rank features.
      feas_rtol: ``Psi`` counts as fittable when its least-squares residual on the row space of
        ``Phi`` is ``<= feas_rtol * ||Psi||_F``; ``None``: ``sqrt(eps)`` of the dtype.
      check_every: iterations between certificates (polish + dual point).

    Returns:
      :class:`ConstrainedResult`; ``V`` is D x K with exact zeros, ``Lambda`` D x N.

    Raises:
      ValueError: on bad shapes, NaN/inf entries, bad options, or if ``Psi`` is not in the row space
        of ``Phi`` (no ``V`` fits).

    Examples:
      >>> import numpy as np
      >>> rng = np.random.default_rng(0)
      >>> res = solve_constrained(rng.standard_normal((30, 4)), rng.standard_normal((2, 4)))
      >>> bool(res.converged), bool(res.gap <= 1e-6 * res.primal)
      (True, True)

    References: arXiv 2305.16534, Sec. 4 (constrained multi-task lasso; the theorem bounding the
    sparsest solution by rank(Phi) * rank(Psi)).
    """
    _check_options(tol, max_iter, res_rtol, rho, feas_rtol, check_every)
    Phi, Psi = check_problem(Phi, Psi)
    dtype = jnp.result_type(Phi.dtype, Psi.dtype, jnp.float32)
    Phi, Psi = jnp.asarray(Phi, dtype), jnp.asarray(Psi, dtype)
    prep = _prepare_jit(Phi, Psi)
    _check_feasible(prep, Psi, feas_rtol)
    return _solve_prepared(prep, Phi, Psi, tol, res_rtol, rho, max_iter=max_iter,
                           check_every=check_every)


@functools.partial(jax.jit, static_argnames=("max_iter", "check_every"))
def _solve_batch_vmap(prep, Phi, Psi, tol, res_rtol, rho, *, max_iter, check_every):
    return jax.vmap(lambda p, a, b: _solve_prepared(p, a, b, tol, res_rtol, rho, max_iter=max_iter,
                                                    check_every=check_every))(prep, Phi, Psi)


def solve_constrained_batch(Phi, Psi, *, tol: float = 1e-6, max_iter: int = 5000,
                            res_rtol: float = 1e-10, rho: float = 0.15,
                            feas_rtol: float | None = None, check_every: int = 10,
                            method: str = "loop") -> ConstrainedResult:
    r""":func:`solve_constrained` over a batch of problems of one shape.

    Args:
      Phi: B x K x N features.
      Psi: B x D x N targets.
      tol, max_iter, res_rtol, rho, feas_rtol, check_every: as in :func:`solve_constrained`.
      method: ``"loop"`` (a Python loop over one jitted solve; fastest on CPU, where each problem
        stops at its own iteration count) or ``"vmap"`` (one batched ``while_loop``; meant for
        accelerators).

    Returns:
      :class:`ConstrainedResult` with a leading batch axis on every field.

    Raises:
      ValueError: as :func:`solve_constrained`; an infeasible item is named by its batch index.

    References: arXiv 2305.16534, Sec. 4.
    """
    check_choice("method", method, ("loop", "vmap"))
    _check_options(tol, max_iter, res_rtol, rho, feas_rtol, check_every)
    Phi = as_array("Phi", Phi, ndim=3)
    Psi = as_array("Psi", Psi, ndim=3)
    if Phi.shape[0] != Psi.shape[0] or Phi.shape[2] != Psi.shape[2]:
        raise ValueError(f"Phi (B x K x N) and Psi (B x D x N) must share B and N; got Phi "
                         f"{tuple(Phi.shape)} and Psi {tuple(Psi.shape)}")
    dtype = jnp.result_type(Phi.dtype, Psi.dtype, jnp.float32)
    Phi, Psi = jnp.asarray(Phi, dtype), jnp.asarray(Psi, dtype)
    # One factorization per item: a vmapped QR + SVD of a large batch deadlocked in XLA:CPU
    # (jaxlib 0.10.2, B=100 problems of 500 x 40), and per-item calls reuse _prepare_jit's compile.
    preps = [_prepare_jit(Phi[i], Psi[i]) for i in range(Phi.shape[0])]
    _check_feasible(_Prepared(*([None] * 4), jnp.stack([p.lsq_residual for p in preps])), Psi,
                    feas_rtol, where="batch")
    kw = {"max_iter": max_iter, "check_every": check_every}
    if method == "vmap":
        prep = jax.tree.map(lambda *xs: jnp.stack(xs), *preps)
        return _solve_batch_vmap(prep, Phi, Psi, tol, res_rtol, rho, **kw)
    outs = [_solve_prepared(p, Phi[i], Psi[i], tol, res_rtol, rho, **kw)
            for i, p in enumerate(preps)]
    return jax.tree.map(lambda *xs: jnp.stack(xs), *outs)
