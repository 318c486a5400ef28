r"""Constrained (interpolating) multi-task lasso with a certified duality gap.

Problem (arXiv 2305.16534, multi-task lasso; ``docs/paper.md`` §4.1), with ``Phi`` K x N (row
k = feature :math:`\phi_k^T`), ``Psi`` D x N (targets) and ``V`` D x K (columns :math:`v_k`):

.. math::

    \min_V \sum_{k=1}^K \|v_k\|_2 \quad \text{s.t.} \quad V \Phi = \Psi,
    \qquad\text{dual:}\qquad
    \max_\Lambda \langle \Lambda, \Psi \rangle \quad \text{s.t.} \quad
    \max_k \|\Lambda \phi_k\|_2 \le 1 .

How it is solved. The data are first divided by powers of two (exact) so that their largest
entries are of order one: norms and squares can then neither overflow nor underflow, whatever the
data's magnitude. With the thin SVD :math:`\Phi = U S W^T` (a Householder QR of ``Phi`` in plain
XLA ops, then the SVD of the small triangular factor: backward stable, no Gram matrix, so no
squared condition number; rank r by NumPy's ``matrix_rank`` rule ``s > max(K, N) eps s_max``),
the constraint reads :math:`V Q = B` with :math:`Q = U_r` (K x r, orthonormal) and
:math:`B = \Psi W_r S_r^{-1}`, plus :math:`\Psi W_\perp = 0` (``Psi`` in the row space of
``Phi``; checked, a clear ``ValueError`` otherwise). Then

* ADMM (over-relaxed, :math:`\alpha = 1.8`) on :math:`V = Z`, jitted with the factorization
  (one program per problem): the V-step is the projection :math:`X - (X Q - B) Q^T` onto the affine
  set (cost 2 D K r), the Z-step a group soft-threshold (exact zeros). The penalty :math:`\rho` is
  scaled to the problem (``rho * K / sum_k ||v0_k||`` with ``v0`` the minimum-Frobenius-norm fit),
  so the method is invariant to rescaling ``Phi`` or ``Psi``.
* Every ``check_every`` iterations, a certificate: the support of ``Z`` is *polished* by the
  minimum-norm correction that makes it fit exactly (only columns in the support change, so zeros
  stay exact), and the ADMM multiplier :math:`Y = \rho U` (which satisfies :math:`\|y_k\| \le 1`)
  is projected onto the normal space :math:`\{\Lambda \Phi^T\}` and rescaled to be dual feasible.
  Stop when ``primal - dual <= tol * primal`` and the residual test holds (below), or after
  ``max_iter`` iterations (never more).
* The returned certificate is recomputed on the host in float64 from the returned ``V``, the dual
  point and the factors: ``primal`` :math:`=\sum_k\|v_k\|`, ``dual``
  :math:`=\langle\Lambda,\Psi\rangle` after rescaling :math:`\Lambda` to
  :math:`\max_k \|\Lambda\phi_k\| \le 1` (in the reduced coordinates, exact to rounding whatever
  ``cond(Phi)``), and ``converged`` from those numbers.

Precision. The factorization and ADMM run in the working dtype (float64 when ``jax_enable_x64``
is on, float32 otherwise); the certificate is float64 either way. In float32 it certifies the
problem within float32 rounding of the data.

Weak duality makes the certificate rigorous: for every feasible ``V`` and every dual-feasible
``Lambda``, :math:`\sum_k \|v_k\| \ge \sum_k \langle v_k, \Lambda\phi_k \rangle
= \langle \Lambda, \Psi \rangle`, so the returned ``primal`` is within ``gap`` of the optimum. In
floating point it certifies the problem for ``Phi`` within the SVD's backward error
(a few ``eps * ||Phi||_2``) and ``V`` fits ``Psi`` up to the residual test
``||(V Phi - Psi) P|| <= res_rtol * (||Phi||_2 ||V||_F + ||Psi||_F)`` (``P``: projector on the row
space of ``Phi``), a normwise backward error, so ill-conditioned ``Phi`` is certified too.

Tolerances and dtypes: every default scales with the working dtype's precision ``eps``
(``res_rtol = 1e3 eps``; ``feas_rtol = sqrt(eps)`` and the rank rule's ``eps``: the coarser of the
inputs' and the working dtype's). The gap ``tol`` must be
at least :data:`TOL_FLOOR_EPS` ``* eps``: float32 (``jax_enable_x64`` off) certifies gaps down to
about 1e-5, so a smaller ``tol`` is refused with a ``ValueError`` naming ``tol`` (default ``tol``:
1e-6 in float64, that floor in float32).

On CPU, a Python loop over one jitted solve beats ``vmap`` for a batch of problems (the batched
``while_loop`` runs every problem for as many iterations as the slowest one and its small matmuls
batch poorly); :func:`solve_constrained_batch` offers both.

References: arXiv 2305.16534 (multi-task lasso; its sparsity theorem, ``docs/paper.md`` §4.4: a
solution with at most rank(Phi) * rank(Psi) nonzero columns exists, and every feasible V has at
least rank(Psi)).
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from vvjax._validate import as_array, check_choice, check_nonnegative, check_positive_int
from vvjax.lasso._common import blas_single_thread, check_problem, pow2_scale, working_dtype

__all__ = ["ConstrainedResult", "solve_constrained", "solve_constrained_batch", "TOL_FLOOR_EPS"]

_ALPHA = 1.8  # over-relaxation of the ADMM V-step

TOL_FLOOR_EPS = 100.0
"""Smallest certifiable relative gap, in units of the working dtype's ``eps``: ``tol`` below
``TOL_FLOOR_EPS * eps`` (2.2e-14 in float64, 1.2e-5 in float32) is refused. Below it the
iterates' rounding, not the method, decides whether the gap test passes."""

_TOL_MARGIN_EPS = 10.0  # the jitted loop stops at tol - 10 eps, so the float64 recheck agrees

_RES_RTOL_EPS = 1000.0  # default res_rtol, in units of eps


class ConstrainedResult(NamedTuple):
    r"""Solution of the constrained multi-task lasso with its duality certificate.

    ``V`` and ``Lambda`` are JAX arrays (working dtype); the certificate fields are host values,
    computed in float64: Python ``float``/``int``/``bool`` for one problem and NumPy arrays with a
    leading batch axis for :func:`solve_constrained_batch` (whose ``V`` and ``Lambda`` also get the
    batch axis). The same convention as :class:`vvjax.lasso.LassoResult`.

    Attributes:
      V: D x K solution; inactive columns are exactly zero.
      primal: objective :math:`\sum_k \|v_k\|_2` of ``V``.
      dual: dual objective :math:`\langle \Lambda, \Psi \rangle` (a lower bound on the optimum).
      Lambda: D x N dual point, feasible: :math:`\max_k \|\Lambda \phi_k\|_2 \le 1` (up to the
        rounding of ``Lambda Phi^T``, of order ``eps * cond(Phi)``).
      gap: ``primal - dual`` (absolute).
      rel_gap: ``gap / primal``: ``V``'s objective is within this fraction of the optimum (0 when
        ``primal`` is 0). Same definition as :attr:`vvjax.lasso.LassoResult.rel_gap`.
      residual: :math:`\|V \Phi - \Psi\|_F` (absolute).
      n_nonzero: number of nonzero (exactly: not identically zero) columns of ``V``.
      n_iter: ADMM iterations run (at most ``max_iter``).
      converged: ``rel_gap <= tol`` and the residual test hold.
      dual_infeasibility: :math:`\max(0, \max_k \|\Lambda \phi_k\|_2 - 1)` on the given
        ``Phi``, in float64. The certificate is exact for ``Phi`` within the SVD's backward error;
        for the given ``Phi`` itself, ``Lambda / (1 + dual_infeasibility)`` is dual feasible, so
        ``V``'s objective is within ``rel_gap + dual_infeasibility`` (relative) of the optimum.
        Rounding-level (~1e-15) on well-conditioned data; up to ``eps * cond(Phi)`` on nearly
        rank-deficient ``Phi`` (e.g. 2e-4 at cond 3.6e13).
    """

    V: jax.Array
    primal: float
    dual: float
    Lambda: jax.Array
    gap: float
    rel_gap: float
    residual: float
    n_nonzero: int
    n_iter: int
    converged: bool
    dual_infeasibility: float = 0.0


class _Prepared(NamedTuple):
    """Reduced problem of the data scaled by ``a`` (Phi) and ``b`` (Psi); leading axes are a
    batch. ``m = min(K, N)`` columns, zeroed beyond the numerical rank."""

    Q: jax.Array  # K x m, orthonormal columns
    B: jax.Array  # D x m, Psi W S^-1
    s: jax.Array  # (m,) singular values
    Wt: jax.Array  # m x N right singular vectors (rows)
    lsq_residual: jax.Array  # ||Psi - Psi W_r W_r^T||_F (scaled): the part no V can fit
    psi_norm: jax.Array  # ||Psi||_F (scaled)


def _householder_qr(A):
    """``A = Q R`` for a tall A (K x N, K >= N) by Householder reflections, in plain XLA ops.

    Backward stable (no Gram matrix, so no squared condition number) and free of LAPACK calls on
    the K x N matrix: in a loop of small solves, LAPACK's threaded BLAS contends with XLA's threads
    (a 500 x 40 SVD then took 20-500 ms instead of 0.5 ms on a busy 2-core machine).
    """
    K, N = A.shape
    rows = jnp.arange(K)

    def reflect(j, carry):
        A, V = carry
        x = jnp.where(rows >= j, A[:, j], 0.0)
        alpha = -jnp.where(x[j] >= 0, 1.0, -1.0) * jnp.sqrt(jnp.sum(x * x))
        v = x.at[j].add(-alpha)
        nv = jnp.sqrt(jnp.sum(v * v))
        v = jnp.where(nv > 0, v / jnp.where(nv > 0, nv, 1.0), 0.0)
        return A - 2.0 * jnp.outer(v, v @ A), V.at[:, j].set(v)

    R, V = jax.lax.fori_loop(0, N, reflect, (A, jnp.zeros_like(A)))

    def apply(i, Q):
        v = V[:, N - 1 - i]
        return Q - 2.0 * jnp.outer(v, v @ Q)

    return jax.lax.fori_loop(0, N, apply, jnp.eye(K, N, dtype=A.dtype)), jnp.triu(R[:N])


def _prepare(Phi, Psi, rank_eps):
    """Thin SVD ``Phi = U S W^T`` (Householder QR, then the SVD of the small triangular factor)
    and the reduced problem; the rank by NumPy's matrix_rank rule ``s > max(K, N) eps s_max``."""
    K, N = Phi.shape
    if K >= N:
        Qf, R = _householder_qr(Phi)  # Phi = Qf R
        Ur, s, Wt = jnp.linalg.svd(R)
        U = Qf @ Ur
    else:
        Qf, R = _householder_qr(Phi.T)  # Phi = R^T Qf^T
        U, s, Vt = jnp.linalg.svd(R.T)
        Wt = Vt @ Qf.T
    keep = s > max(K, N) * rank_eps * s[0]
    s_inv = jnp.where(keep, 1.0 / jnp.where(keep, s, 1.0), 0.0)
    PsiW = Psi @ Wt.T
    lsq = jnp.linalg.norm(Psi - (PsiW * keep[None, :]) @ Wt)
    return _Prepared(U * keep[None, :], PsiW * s_inv[None, :], s * keep, Wt, lsq,
                     jnp.linalg.norm(Psi))


_prepare_jit = jax.jit(_prepare)


@functools.cache
def _prepare_vmap():
    """Batched factorization (a batch of small problems; jitted once per process)."""
    return jax.jit(jax.vmap(_prepare, in_axes=(0, 0, None)))


def _host(prep: _Prepared) -> _Prepared:
    """float64 NumPy copy for the certificate."""
    return _Prepared(*(np.asarray(x, np.float64) for x in prep))


def _col_norms(X):
    return jnp.sqrt(jnp.sum(X * X, axis=0))


def _group_soft_threshold(X, t):
    n = _col_norms(X)
    return X * jnp.maximum(1.0 - t / jnp.maximum(n, jnp.finfo(X.dtype).tiny), 0.0)[None, :]


def _polish(Z, Q, B, s, psi_norm, res_rtol):
    """Minimum-norm change of Z's nonzero columns that fits exactly:
    (V, objective, residual within the backward-error bound)."""
    eps = jnp.finfo(Z.dtype).eps
    Qs = Q * jnp.any(Z != 0, axis=0)[:, None]
    R = Z @ Q - B  # D x m misfit in reduced coordinates
    e, E = jnp.linalg.eigh(Qs.T @ Qs)
    cut = 10.0 * Q.shape[0] * eps * jnp.max(e, initial=0.0)
    e_inv = jnp.where(e > cut, 1.0 / jnp.where(e > 0, e, 1.0), 0.0)
    V = Z - ((R @ E) * e_inv[None, :]) @ E.T @ Qs.T  # columns outside the support stay zero
    res = jnp.linalg.norm((V @ Q - B) * s[None, :])
    ok = res <= res_rtol * (s[0] * jnp.linalg.norm(V) + psi_norm)
    return V, jnp.sum(_col_norms(V)), ok


def _dual_point(Y, Q, B):
    """Project Y (D x K) on {Lambda Phi^T}, rescale to feasibility: (YQ, <Lambda, Psi>) with
    Lambda = YQ S^-1 W^T."""
    YQ = Y @ Q
    scale = jnp.maximum(1.0, jnp.max(_col_norms(YQ @ Q.T), initial=0.0))
    YQ = YQ / scale  # ||Lambda phi_k|| = ||(YQ Q^T)_k|| <= 1
    return YQ, jnp.sum(YQ * B)


def _admm(Q, B, s, psi_norm, tol, res_rtol, rho, max_iter, *, check_every):
    """ADMM with periodic certificates in the working dtype: (V, YQ, n_iter)."""
    V0 = B @ Q.T  # minimum-Frobenius-norm fit: feasible, the first primal candidate
    D, K = V0.shape
    obj0 = jnp.sum(_col_norms(V0))
    rho = rho * K / jnp.maximum(obj0, jnp.finfo(V0.dtype).tiny)

    def proj(X):
        return X - (X @ Q - B) @ Q.T

    def step(_, carry):
        Z, U = carry
        V = proj(Z - U)
        Vh = _ALPHA * V + (1.0 - _ALPHA) * Z
        Z = _group_soft_threshold(Vh + U, 1.0 / rho)
        return Z, U + Vh - Z

    def body(state):
        Z, U, it, _, best = state
        V_best, primal, YQ_best, dual = best
        n = jnp.minimum(check_every, max_iter - it)  # never past max_iter
        Z, U = jax.lax.fori_loop(0, n, step, (Z, U))
        it = it + n
        YQ, d = _dual_point(rho * U, Q, B)
        better = d > dual
        YQ_best, dual = jnp.where(better, YQ, YQ_best), jnp.maximum(d, dual)
        # Polish (the costly part of a check) only when Z's objective is near the dual bound.
        est = jnp.sum(_col_norms(Z))
        near = (est - dual <= 10.0 * tol * est) | (it >= max_iter)
        V, p, ok = jax.lax.cond(near, lambda: _polish(Z, Q, B, s, psi_norm, res_rtol),
                                lambda: (Z, jnp.asarray(jnp.inf, Z.dtype), jnp.asarray(False)))
        better = ok & (p < primal)
        V_best, primal = jnp.where(better, V, V_best), jnp.where(better, p, primal)
        done = primal - dual <= tol * primal
        return Z, U, it, done, (V_best, primal, YQ_best, dual)

    zero = jnp.zeros((), V0.dtype)
    best = (V0, obj0, jnp.zeros_like(B), zero)
    init = (V0, jnp.zeros_like(V0), jnp.asarray(0, max_iter.dtype), obj0 <= 0, best)
    _, _, n_iter, _, (V, _, YQ, _) = jax.lax.while_loop(
        lambda st: (~st[3]) & (st[2] < max_iter), body, init)
    return V, YQ, n_iter


_admm_jit = jax.jit(_admm, static_argnames=("check_every",))


@functools.partial(jax.jit, static_argnames=("check_every",))
def _prepare_and_solve(Phi, Psi, rank_eps, tol, res_rtol, rho, max_iter, *, check_every):
    """Factorization and ADMM in one program (one dispatch, one wait per problem)."""
    prep = _prepare(Phi, Psi, rank_eps)
    return prep, *_admm(prep.Q, prep.B, prep.s, prep.psi_norm, tol, res_rtol, rho, max_iter,
                        check_every=check_every)


@functools.partial(jax.jit, static_argnames=("check_every",))
def _admm_vmap(Q, B, s, psi_norm, tol, res_rtol, rho, max_iter, *, check_every):
    return jax.vmap(lambda q, b, s_, p: _admm(q, b, s_, p, tol, res_rtol, rho, max_iter,
                                              check_every=check_every))(Q, B, s, psi_norm)


def _certify(V, YQ, prep: _Prepared, tol: float, res_rtol: float):
    """float64 certificate of scaled problems from the iterates ``V`` (..., D, K) and ``YQ``
    (..., D, m); leading axes are a batch. Returns ``(V, Lambda, primal, dual, res_ok,
    converged)`` as float64 / bool NumPy arrays."""
    V = np.array(V, np.float64)  # a writable copy
    YQ = np.asarray(YQ, np.float64)
    Q, B, s = prep.Q, prep.B, prep.s
    Qt = np.swapaxes(Q, -1, -2)
    primal = np.sum(np.linalg.norm(V, axis=-2), axis=-1)
    scale = np.maximum(1.0, np.max(np.linalg.norm(YQ @ Qt, axis=-2), axis=-1, initial=0.0))
    YQ = YQ / scale[..., None, None]
    dual = np.sum(YQ * B, axis=(-2, -1))
    s_inv = np.where(s > 0, 1.0 / np.where(s > 0, s, 1.0), 0.0)
    Lam = (YQ * s_inv[..., None, :]) @ prep.Wt
    row_res = np.linalg.norm((V @ Q - B) * s[..., None, :], axis=(-2, -1))
    res_ok = row_res <= res_rtol * (s[..., 0] * np.linalg.norm(V, axis=(-2, -1)) + prep.psi_norm)
    converged = res_ok & (primal - dual <= tol * primal)
    return V, Lam, primal, dual, res_ok, converged


def _result(V, Lam, primal, dual, converged, n_iter, Phi, Psi, a, b, *, to_jax: bool = True
            ) -> ConstrainedResult:
    """Undo the scaling (``Phi = a Phi'``, ``Psi = b Psi'``: ``V = (b/a) V'``,
    ``Lambda = Lambda' / a``) and package one result (``to_jax=False``: V and Lambda as NumPy
    arrays in the working dtype, for stacking)."""
    primal, dual = float(primal), float(dual)
    gap = primal - dual
    rel_gap = gap / primal if primal > 0 else (0.0 if gap <= 0 else np.inf)
    residual = float(np.linalg.norm(V @ Phi - Psi)) * b
    lam_phi = np.asarray(Lam, np.float64) @ np.asarray(Phi, np.float64).T  # D x K: Lambda phi_k
    infeas = max(0.0, float(np.max(np.linalg.norm(lam_phi, axis=0), initial=0.0)) - 1.0)
    r = b / a
    wd = working_dtype()
    conv = jnp.asarray if to_jax else np.asarray
    return ConstrainedResult(
        V=conv((V * r).astype(wd)), primal=primal * r, dual=dual * r,
        Lambda=conv((Lam / a).astype(wd)), gap=gap * r, rel_gap=float(rel_gap),
        residual=residual, n_nonzero=int(np.sum(np.any(V != 0, axis=0))), n_iter=int(n_iter),
        converged=bool(converged), dual_infeasibility=infeas)


def _check_options(tol, max_iter, res_rtol, rho, feas_rtol, check_every):
    """Validate the options; returns ``(tol, res_rtol)`` with the dtype-scaled defaults."""
    eps = float(np.finfo(working_dtype()).eps)
    floor = TOL_FLOOR_EPS * eps
    if tol is None:
        tol = max(1e-6, floor)
    check_nonnegative("tol", tol)
    if tol < floor:
        raise ValueError(
            f"tol={tol:g} is below what a {working_dtype().name} solve can certify "
            f"(tol >= {floor:.1e} = {TOL_FLOOR_EPS:g} eps); "
            + ("enable float64 (jax.config.update('jax_enable_x64', True)) or raise tol"
               if working_dtype() != np.float64 else "raise tol"))
    check_positive_int("max_iter", max_iter)
    check_positive_int("check_every", check_every)
    if res_rtol is None:
        res_rtol = _RES_RTOL_EPS * eps
    check_nonnegative("res_rtol", res_rtol)
    if not (np.isfinite(rho) and rho > 0):
        raise ValueError(f"rho must be finite and > 0, got {rho!r}")
    if feas_rtol is not None:
        check_nonnegative("feas_rtol", feas_rtol)
    return float(tol), float(res_rtol)


def _host_problem(Phi, Psi):
    """The data scaled to unit magnitude by powers of two (float64 NumPy), the scales, and the
    eps of the rank rule: that of the inputs' dtype or of the working dtype, whichever is
    coarser (the factorization runs in the working dtype)."""
    eps = max(float(np.finfo(np.result_type(Phi.dtype, Psi.dtype, np.float32)).eps),
              float(np.finfo(working_dtype()).eps))
    Phi = np.asarray(Phi, np.float64)
    Psi = np.asarray(Psi, np.float64)
    axes = (-2, -1)
    a, b = pow2_scale(Phi, axis=axes), pow2_scale(Psi, axis=axes)
    return Phi / a, Psi / b, a, b, eps


def _check_feasible(prep: _Prepared, feas_rtol, eps: float, where: str = ""):
    lsq = np.atleast_1d(np.asarray(prep.lsq_residual, np.float64))
    psi_norm = np.atleast_1d(np.asarray(prep.psi_norm, np.float64))
    if feas_rtol is None:
        feas_rtol = float(np.sqrt(eps))
    bad = np.flatnonzero(lsq > feas_rtol * psi_norm)
    if bad.size:
        i = int(bad[0])
        at = f" (batch item {i})" if where == "batch" else ""
        raise ValueError(
            f"Psi is not in the row space of Phi{at}: no V satisfies V Phi = Psi; relative "
            f"residual of the least-squares fit {lsq[i] / psi_norm[i]:.3e} > feas_rtol "
            f"{feas_rtol:.1e}")


def _run_args(tol, res_rtol, rho, max_iter):
    wd = working_dtype()
    tol = tol - _TOL_MARGIN_EPS * np.finfo(wd).eps  # >= 0.9 tol above the floor
    return (wd.type(tol), wd.type(res_rtol), wd.type(rho), np.asarray(max_iter, np.int32))


def solve_constrained(Phi, Psi, *, tol: float | None = None, max_iter: int = 5000,
                      res_rtol: float | None = None, rho: float = 0.15,
                      feas_rtol: float | None = None, check_every: int = 10
                      ) -> ConstrainedResult:
    r"""Solve :math:`\min_V \sum_k \|v_k\|_2` s.t. :math:`V\Phi = \Psi`, with a duality certificate.

    Args:
      Phi: K x N features (row k is :math:`\phi_k^T`); any array-like
        (:func:`vvjax._validate.as_array`), integers and booleans as floats.
      Psi: D x N targets; must lie in the row space of ``Phi``.
      tol: relative duality gap at which to stop, ``rel_gap = (primal - dual) / primal <= tol``;
        ``None``: 1e-6 (float64) or the float32 floor 1.2e-5; must be ``>= TOL_FLOOR_EPS * eps``
        of the working dtype.
      max_iter: ADMM iteration cap (``converged`` is False if reached; never exceeded).
      res_rtol: stop only once ``||(V Phi - Psi) P||_F <= res_rtol (||Phi||_2 ||V||_F +
        ||Psi||_F)`` (``P``: projector on the row space of ``Phi``; the polish usually reaches a
        few eps); ``None``: ``1000 eps`` of the working dtype.
      rho: ADMM penalty, relative to the problem scale ``K / sum_k ||v0_k||`` (``v0``: the
        minimum-norm fit). 0.1-0.3 works on Gaussian, post-ReLU and low-rank features.
      feas_rtol: ``Psi`` counts as fittable when its least-squares residual on the row space of
        ``Phi`` is ``<= feas_rtol * ||Psi||_F``; ``None``: ``sqrt(eps)``, ``eps`` of the inputs'
        dtype (float64 for integers) or of the working dtype, whichever is coarser.
      check_every: iterations between certificates (polish + dual point).

    Returns:
      :class:`ConstrainedResult`; ``V`` is D x K with exact zeros, ``Lambda`` D x N (JAX arrays in
      the working dtype), certificate fields as Python scalars computed in float64.

    Raises:
      ValueError: naming the argument, on bad shapes, NaN/inf entries, bad options, ``tol`` below
        the dtype's floor, or if ``Psi`` is not in the row space of ``Phi`` (no ``V`` fits).
      TypeError: naming the argument, for non-numeric input (see
        :func:`vvjax._validate.as_array`).

    Examples:
      >>> import numpy as np
      >>> rng = np.random.default_rng(0)
      >>> res = solve_constrained(rng.standard_normal((30, 4)), rng.standard_normal((2, 4)))
      >>> res.converged, res.V.shape, res.n_nonzero <= 4 * 2  # rank(Phi) rank(Psi)
      (True, (2, 30), True)

    References: arXiv 2305.16534 (constrained multi-task lasso, ``docs/paper.md`` §4.1; the
    theorem bounding the sparsest solution by rank(Phi) * rank(Psi), §4.4); ADMM: Boyd et al.,
    "Distributed optimization and statistical learning via the alternating direction method of
    multipliers" (2011).
    """
    tol, res_rtol = _check_options(tol, max_iter, res_rtol, rho, feas_rtol, check_every)
    Phi, Psi = check_problem(Phi, Psi, to_jax=False)
    Phi, Psi, a, b, eps = _host_problem(Phi, Psi)
    wd = working_dtype()
    prep, V, YQ, n_iter = _prepare_and_solve(
        Phi.astype(wd), Psi.astype(wd), wd.type(eps), *_run_args(tol, res_rtol, rho, max_iter),
        check_every=check_every)
    _check_feasible(prep, feas_rtol, eps)  # (an infeasible Psi's projection was solved: discarded)
    with blas_single_thread():
        V, Lam, primal, dual, _, converged = _certify(V, YQ, _host(prep), tol, res_rtol)
        return _result(V, Lam, primal, dual, converged, n_iter, Phi, Psi, a.item(), b.item())


def solve_constrained_batch(Phi, Psi, *, tol: float | None = None, max_iter: int = 5000,
                            res_rtol: float | None = None, rho: float = 0.15,
                            feas_rtol: float | None = None, check_every: int = 10,
                            method: str = "loop") -> ConstrainedResult:
    r""":func:`solve_constrained` over a batch of problems of one shape.

    Args:
      Phi: B x K x N features.
      Psi: B x D x N targets.
      tol: as in :func:`solve_constrained`.
      max_iter: as in :func:`solve_constrained`.
      res_rtol: as in :func:`solve_constrained`.
      rho: as in :func:`solve_constrained`.
      feas_rtol: as in :func:`solve_constrained`.
      check_every: as in :func:`solve_constrained`.
      method: ``"loop"`` (a Python loop over one jitted solve; fastest on CPU, where each problem
        stops at its own iteration count) or ``"vmap"`` (one batched ``while_loop``; meant for
        accelerators).

    Returns:
      :class:`ConstrainedResult` with a leading batch axis on every field (``V``, ``Lambda``: JAX
      arrays; the certificate fields: NumPy arrays).

    Raises:
      ValueError, TypeError: as :func:`solve_constrained`; an infeasible item is named by its batch
        index.

    References: arXiv 2305.16534 (multi-task lasso); ``docs/paper.md`` §4.1.
    """
    check_choice("method", method, ("loop", "vmap"))
    tol, res_rtol = _check_options(tol, max_iter, res_rtol, rho, feas_rtol, check_every)
    Phi = as_array("Phi", Phi, ndim=3, to_jax=False)
    Psi = as_array("Psi", Psi, ndim=3, to_jax=False)
    if Phi.shape[0] != Psi.shape[0] or Phi.shape[2] != Psi.shape[2]:
        raise ValueError(f"Phi (B x K x N) and Psi (B x D x N) must share B and N; got Phi "
                         f"{tuple(Phi.shape)} and Psi {tuple(Psi.shape)}")
    Phi, Psi, a, b, eps = _host_problem(Phi, Psi)
    wd = working_dtype()
    args = _run_args(tol, res_rtol, rho, max_iter)
    Phi_w, Psi_w, e = Phi.astype(wd), Psi.astype(wd), wd.type(eps)
    if method == "vmap":
        # One factorization per item: a vmapped factorization of a large batch deadlocked in
        # XLA:CPU (jaxlib 0.10.2, B=100 problems of 500 x 40); per-item calls reuse one compile.
        preps = [_prepare_jit(Phi_w[i], Psi_w[i], e) for i in range(Phi.shape[0])]

        def stacked(field):
            return jnp.asarray(np.stack([np.asarray(getattr(p, field)) for p in preps]))

        V, YQ, n_iter = _admm_vmap(stacked("Q"), stacked("B"), stacked("s"), stacked("psi_norm"),
                                   *args, check_every=check_every)
    else:  # the CPU default: the single-problem program per item, dispatched without waiting
        outs = [_prepare_and_solve(Phi_w[i], Psi_w[i], e, *args, check_every=check_every)
                for i in range(Phi.shape[0])]
        preps = [o[0] for o in outs]
        V, YQ, n_iter = ([o[j] for o in outs] for j in (1, 2, 3))
    # stacked on the host (a jnp.stack of B arrays compiles a B-ary program on first use)
    prep = _Prepared(*(np.stack([np.asarray(x, np.float64) for x in f])
                       for f in zip(*preps, strict=True)))
    _check_feasible(prep, feas_rtol, eps, where="batch")
    V, YQ, n_iter = (np.stack([np.asarray(x) for x in f]) if isinstance(f, list)
                     else np.asarray(f) for f in (V, YQ, n_iter))
    with blas_single_thread():
        V, Lam, primal, dual, _, converged = _certify(V, YQ, prep, tol, res_rtol)
        res = [_result(V[i], Lam[i], primal[i], dual[i], converged[i], n_iter[i], Phi[i], Psi[i],
                       float(a[i, 0, 0]), float(b[i, 0, 0]), to_jax=False)
               for i in range(Phi.shape[0])]
    return ConstrainedResult(*(jnp.asarray(np.stack(f)) if isinstance(f[0], np.ndarray)
                               else np.asarray(f) for f in zip(*res, strict=True)))
