"""Penalized multi-task (group) lasso with a certified duality gap.

Problem (arXiv 2305.16534, multi-task lasso; ``docs/paper.md`` §4.2; scikit-learn
``MultiTaskLasso`` scaling with ``alpha = lam``, ``X = Phi.T``, ``Y = Psi.T``, ``coef_ = V``)::

    P(V) = 1/(2N) ||V Phi - Psi||_F^2 + lam * sum_k ||v_k||_2

with ``Phi`` K x N (features), ``Psi`` D x N (targets) and ``V`` D x K (columns ``v_k``).

How it is solved. ``P`` depends on the data only through the Gram matrix
``G = Phi Phi^T / N`` (K x K), ``C = Psi Phi^T / N`` (D x K) and ``||Psi||_F^2``::

    P(V) = 1/2 <V, V G> - <V, C> + ||Psi||^2/(2N) + lam * sum_k ||v_k||.

These statistics are formed once (with a BLAS ``syrk`` on CPU: half the flops of a general product),
then a celer-style working-set loop runs on them:

* outer loop (Python): the gradient ``C - V G`` for all K columns, a dual-feasible point (the
  residual rescaled, kept if it is the best so far) and the duality gap; stop when the relative gap
  ``rel_gap = (P(V) - D(theta)) / P(V) <= tol``; otherwise pick a working set (the current
  support plus the columns closest to violating the dual constraint, at least twice the support);
* inner loop (one jitted ``lax.while_loop``): block coordinate descent (exact minimization over one
  column ``v_k`` at a time: a group soft-threshold, which returns exact zeros) on the working-set
  Gram block, with Anderson extrapolation every few epochs, until the subproblem's own gap falls
  below a fraction of the outer gap (at most 50 epochs per round once polishing is on);
* Newton polish (host numpy + conjugate gradients): once ``gap / P(0) < 1e-2``, each new support is
  polished by a damped Newton-CG method on ``P`` restricted to it (smooth there). Columns that the
  Newton step would cancel are dropped; the full certificate then decides (a missing column shows up
  as a dual violation and goes back to the working set). On correlated features coordinate descent
  finds the support fast but converges slowly, and the rescaled-residual dual point lags far behind
  the primal (its error is first order in that of ``V``), so this polish is what makes 1e-6
  certificates cheap; conjugate gradients also shrug off the isolated mean-direction eigenvalue of
  post-ReLU Gram matrices, which slows full-gradient methods such as FISTA.

Precision. ``G``, ``C``, ``||Psi||^2``, the certificate and the Newton polish are always float64
(NumPy on the host; on an accelerator with ``jax_enable_x64`` on, float64 JAX there). Only the
jitted coordinate-descent kernel follows ``jax_enable_x64``: with it off it runs in float32 and
merely proposes supports and iterates, which the float64 polish and certificate then finish, so
float32 mode certifies the same gaps (the floor of the kernel's own stopping test is
``50 eps_float32 P(0)``); the returned ``V`` is rounded to float32 and its certificate is that of
the rounded ``V``.

Scale. Data whose Gram diagonal or ``||Psi||^2 / (2N)`` falls outside [2^-200, 2^200] (entries
beyond about 1e30 or below 1e-30) are first divided by powers of two (exact), the problem solved
with ``lam / (a b)``, and the results scaled back, so squares never overflow or underflow; the
reported ``primal``/``dual``/``gap`` overflow only if the objective itself exceeds the float64
range (``rel_gap`` and ``converged`` are computed in the scaled units).

Termination. ``n_iter <= max_iter`` always (epochs run in blocks of 5); the outer loop also stops,
unconverged, after 10 rounds without a 1 % gap decrease (a progress guard) or ``max_iter`` rounds.
``lam = 0`` (least squares, where the rescaled-residual dual point is 0 and certifies nothing) is
refused by name.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from vvjax._validate import as_array, check_finite, check_nonnegative, check_positive_int
from vvjax.lasso._common import (
    DEFAULT_RTOL,
    blas_single_thread,
    check_problem,
    count_nonzero_columns,
    pow2_scale,
    working_dtype,
)

__all__ = ["LassoResult", "lam_max", "solve_penalized", "lasso_path"]

_ANDERSON = 5  # extrapolate from the last _ANDERSON + 1 epochs' iterates (celer uses 5)
_INNER_RATIO = 0.3  # inner subproblem solved to this fraction of the outer gap (celer's tol_ratio)
_MIN_WS = 64  # smallest working set
_POLISH_EPOCHS = 50  # once polishing is on, at most this many BCD epochs between Newton polishes
_STALE_ROUNDS = 10  # progress guard: stop after this many outer rounds without a 1 % gap decrease
_KERNEL_FLOOR_EPS = 50.0  # the kernel's own gap test floor, in kernel eps times P(0)
_SAFE_EXP = 200  # Gram diagonal and ||Psi||^2/(2N) within [2^-200, 2^200]: no rescaling needed
_TOL_FLOOR = 10 * float(np.finfo(np.float64).eps)
"""Smallest ``tol`` accepted (the certificate is float64; below this its rounding decides):
2.2e-15."""


class LassoResult(NamedTuple):
    """Solution of the penalized multi-task lasso with its duality certificate.

    Attributes:
      V: D x K solution (JAX array, default float dtype); columns of inactive neurons are exactly
        zero.
      primal: ``P(V)``.
      dual: ``D(theta)`` at a dual-feasible point (``P(V) >= P* >= D(theta)``).
      gap: ``primal - dual`` (>= 0 up to rounding).
      rel_gap: ``gap / primal``: ``V``'s objective is within this fraction of the optimum (0 when
        ``primal`` is 0). Same definition as :attr:`vvjax.lasso.ConstrainedResult.rel_gap`.
      n_nonzero: number of nonzero columns (:func:`vvjax.lasso.count_nonzero_columns`).
      n_iter: number of coordinate-descent epochs (passes over the working set), ``<= max_iter``.
      converged: whether ``rel_gap <= tol``.

    ``V`` is a JAX array; the certificate fields are Python scalars computed in float64 (the
    convention of :class:`vvjax.lasso.ConstrainedResult` too).
    """

    V: jax.Array
    primal: float
    dual: float
    gap: float
    rel_gap: float
    n_nonzero: int
    n_iter: int
    converged: bool


class _Stats(NamedTuple):
    """Sufficient statistics of the data divided by ``a`` (Phi) and ``b`` (Psi), powers of two:
    G = Phi Phi^T/N (K x K), Ct = (Psi Phi^T/N)^T (K x D), yy2n = ||Psi||^2/(2N)."""

    G: jax.Array
    Ct: jax.Array
    yy2n: jax.Array
    a: float = 1.0
    b: float = 1.0


def _device_path() -> bool:
    """Whether the statistics and iterations stay on the accelerator (float64 JAX there); otherwise
    (CPU, or x64 off) they are float64 NumPy on the host."""
    return jax.default_backend() != "cpu" and working_dtype() == np.float64


def _gram_stats(Phi, Psi) -> _Stats:
    """Form G, C and ||Psi||^2 / (2N) in float64 (BLAS syrk on the host)."""
    N = Phi.shape[1]
    if not _device_path():
        from scipy.linalg import blas

        P = np.asarray(Phi, dtype=np.float64)
        Y = np.asarray(Psi, dtype=np.float64)
        # Fortran sees the C-ordered K x N array as its transpose:
        # trans=1 gives Phi Phi^T without a copy.
        G = (blas.dsyrk(1.0 / N, P.T, trans=1, lower=0) if P.flags.c_contiguous
             else blas.dsyrk(1.0 / N, P))
        G = np.triu(G) + np.triu(G, 1).T
        # Y @ P.T streams the K x N array once along its rows (2x faster than P @ Y.T)
        Ct = (Y @ P.T).T / N
        yy2n = np.vdot(Y, Y) / (2 * N)
        return _Stats(G, Ct, np.float64(yy2n))
    P = jnp.asarray(Phi, dtype=jnp.float64)
    Y = jnp.asarray(Psi, dtype=jnp.float64)
    hi = jax.lax.Precision.HIGHEST
    return _Stats(jnp.matmul(P, P.T, precision=hi) / N, jnp.matmul(P, Y.T, precision=hi) / N,
                  jnp.vdot(Y, Y) / (2 * N))


def _in_range(x) -> bool:
    """Within [2^-_SAFE_EXP, 2^_SAFE_EXP] (zero is not: it may be an underflow; the rescaling
    path then decides, exactly)."""
    return 2.0**-_SAFE_EXP <= float(x) <= 2.0**_SAFE_EXP


def lam_max(Phi, Psi) -> float:
    """Smallest ``lam`` for which ``V = 0`` solves the penalized problem.

    ``lam_max = max_k ||Psi phi_k||_2 / N`` with ``phi_k`` the k-th row of ``Phi``
    (the KKT condition at 0).

    Args:
      Phi: K x N features.
      Psi: D x N targets.

    Returns:
      ``lam_max`` as a Python float (computed in float64 on rescaled data, so any finite magnitude
      works).

    Raises:
      ValueError, TypeError: naming the argument, as :func:`solve_penalized`.

    References:
      arXiv 2305.16534 (multi-task lasso); ``docs/paper.md`` §4.2.
    """
    Phi, Psi = check_problem(Phi, Psi, to_jax=False)
    Phi = np.asarray(Phi, np.float64)
    Psi = np.asarray(Psi, np.float64)
    N = Phi.shape[1]
    Ct = Psi @ Phi.T / N
    big = float(np.max(np.abs(Ct), initial=0.0))
    if not (np.all(np.isfinite(Ct)) and _in_range(big) and _in_range(big * big)):
        # rescale exactly by powers of two so that neither the product nor its squares over- or
        # underflow
        a, b = pow2_scale(Phi), pow2_scale(Psi)
        Ct = (Psi / b) @ (Phi / a).T / N
        return float(np.max(np.linalg.norm(Ct, axis=0), initial=0.0)) * a * b
    return float(np.max(np.linalg.norm(Ct, axis=0), initial=0.0))


# ----------------------------------------------------------------------------- jitted kernels


def _certificate(Vt, GV, Ct, yy2n, lam):
    """Primal and dual values at Vt (K x D) given GV = G Vt; dual point = residual rescaled.

    Works on numpy or jax arrays. With R = Psi - V Phi: ``||R||^2/N = 2 yy2n - 2<V,C> + <V,VG>``,
    ``<R,Psi>/N = 2 yy2n - <V,C>`` and ``R Phi^T / N = C - V G``; theta = c R / N with
    ``c = min(1, lam / max_k ||C_k - (V G)_k||)`` is dual feasible.
    """
    xp = np if isinstance(Vt, np.ndarray) else jnp
    vc = xp.vdot(Vt, Ct)
    vgv = xp.vdot(Vt, GV)
    l21 = xp.sum(xp.sqrt(xp.sum(Vt * Vt, axis=1)))
    r2 = xp.maximum(2 * yy2n - 2 * vc + vgv, 0.0)  # ||Psi - V Phi||^2 / N
    primal = 0.5 * r2 + lam * l21
    hnorm = xp.sqrt(xp.sum((Ct - GV) ** 2, axis=1))  # ||(Psi - V Phi) phi_k|| / N
    hmax = xp.max(hnorm, initial=0.0)
    c = xp.where(hmax > lam, lam / xp.where(hmax > 0, hmax, 1.0), 1.0)
    dual = c * (2 * yy2n - vc) - 0.5 * c * c * r2  # <theta, Psi> - N/2 ||theta||^2
    return primal, dual, hnorm


def _spd_solve_ones(M):
    """Solve M z = 1 for small SPD M (..., n, n) by an unrolled Cholesky
    (cheap to compile, unlike LU).

    Leading dimensions are a batch: both Anderson systems are solved by one unrolled program.
    """
    n = M.shape[-1]
    zero = jnp.zeros(M.shape[:-2], M.dtype)
    L = [[None] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1):
            s = M[..., i, j] - sum((L[i][k] * L[j][k] for k in range(j)), start=zero)
            L[i][j] = jnp.sqrt(jnp.maximum(s, 0.0)) if i == j else s / L[j][j]
    y = []
    for i in range(n):
        y.append((1.0 - sum((L[i][k] * y[k] for k in range(i)), start=zero)) / L[i][i])
    z = [None] * n
    for i in reversed(range(n)):
        z[i] = (y[i] - sum((L[k][i] * z[k] for k in range(i + 1, n)), start=zero)) / L[i][i]
    return jnp.stack(z, axis=-1)


def _bcd_epoch(Vt, G, Ct, inv_diag, thr, n_act):
    """One cyclic pass of exact block minimization over rows 0..n_act-1 of Vt (the columns v_k)."""

    def body(j, Vt):
        g = Ct[j] - jnp.dot(G[j], Vt)
        z = Vt[j] + g * inv_diag[j]
        nz = jnp.sqrt(jnp.sum(z * z))
        s = jnp.where(nz > thr[j], 1.0 - thr[j] / jnp.where(nz > 0, nz, 1.0), 0.0)
        return Vt.at[j].set(s * z)

    return jax.lax.fori_loop(0, n_act, body, Vt)


def _anderson_weights(U, MU):
    """Weights w (sum 1) minimizing ||sum_i w_i U_i|| in the metrics <U_i, MU_bj>
    (Anderson, regularized).

    ``MU`` is (B, n, m, D): one metric per leading index; returns (B, n) weights.
    """
    A = jnp.einsum("imd,bjmd->bij", U, MU)
    A = 0.5 * (A + jnp.swapaxes(A, 1, 2))
    tr = jnp.trace(A, axis1=1, axis2=2)
    A = A + ((1e-10 * tr + jnp.finfo(A.dtype).tiny)[:, None, None]
             * jnp.eye(A.shape[-1], dtype=A.dtype)[None])
    z = _spd_solve_ones(A)
    return z / jnp.sum(z, axis=1, keepdims=True)


@jax.jit
def _inner_solve(Vt, G, Ct, yy2n, lam, n_act, eps, max_epochs):
    """BCD with Anderson extrapolation on one (working-set) Gram block until its gap <= eps.

    Every ``_ANDERSON`` epochs the last iterates are extrapolated twice: in the Euclidean metric (a
    candidate primal point, kept if it lowers ``P``) and in the metric of ``G``, which is Anderson
    acceleration of the residuals ``Psi - V Phi`` (celer's dual extrapolation: a much better dual
    point than the current residual). The best dual value seen is kept, with the point that gave it.

    Rows ``n_act:`` are padding (zero ``Ct``, ``Vt``, off-diagonal ``G``) and are never updated, so
    one compiled shape serves every working set up to its capacity. Returns
    ``(Vt, Vt_dual, epochs)`` with ``epochs <= max_epochs`` (a multiple of ``_ANDERSON``).
    """
    diag = jnp.diagonal(G)
    pos = diag > 0
    inv_diag = jnp.where(pos, 1.0 / jnp.where(pos, diag, 1.0), 0.0)
    thr = jnp.where(pos, lam * inv_diag, jnp.inf)
    hi = jax.lax.Precision.HIGHEST
    m, D = Vt.shape

    def chunk(state):
        Vt, Vd, dbest, epochs, _ = state

        def step(Vt, _):
            Vn = _bcd_epoch(Vt, G, Ct, inv_diag, thr, n_act)
            return Vn, Vn

        _, iters = jax.lax.scan(step, Vt, None, length=_ANDERSON)
        hist = jnp.concatenate([Vt[None], iters], axis=0)  # (A+1, m, D)
        GH = jnp.matmul(G, hist.transpose(1, 0, 2).reshape(m, -1), precision=hi)
        GH = GH.reshape(m, _ANDERSON + 1, D).transpose(1, 0, 2)
        U, GU = jnp.diff(hist, axis=0), jnp.diff(GH, axis=0)
        w_e, w_g = _anderson_weights(U, jnp.stack([U, GU]))  # Euclidean and G metrics, one solve
        cands = jnp.stack([hist[-1], jnp.tensordot(w_e, hist[1:], 1),
                           jnp.tensordot(w_g, hist[1:], 1)])
        gcands = jnp.stack([GH[-1], jnp.tensordot(w_e, GH[1:], 1), jnp.tensordot(w_g, GH[1:], 1)])
        prim, dual, _ = jax.vmap(_certificate, (0, 0, None, None, None))(
            cands, gcands, Ct, yy2n, lam)
        ok = jnp.isfinite(prim) & jnp.isfinite(dual)
        prim = jnp.where(ok.at[0].set(True), prim, jnp.inf)
        dual = jnp.where(ok, dual, -jnp.inf)
        ip, id_ = jnp.argmin(prim), jnp.argmax(dual)
        better = dual[id_] > dbest
        Vd = jnp.where(better, cands[id_], Vd)
        dbest = jnp.where(better, dual[id_], dbest)
        return cands[ip], Vd, dbest, epochs + _ANDERSON, prim[ip] - dbest

    def cond(state):  # a chunk is _ANDERSON epochs: never run past max_epochs
        return (state[4] > eps) & (state[3] + _ANDERSON <= max_epochs)

    GV = jnp.matmul(G, Vt, precision=hi)
    p, d, _ = _certificate(Vt, GV, Ct, yy2n, lam)
    Vt, Vd, _, epochs, _ = jax.lax.while_loop(cond, chunk, (Vt, Vt, d, jnp.asarray(0), p - d))
    return Vt, Vd, epochs


# ----------------------------------------------------------------------------- driver


def _newton_polish(Vs, Gs, Cs, lam, *, steps: int = 8, cg_iter: int = 300):
    """Damped Newton-CG on P restricted to a fixed support (host numpy; rows of Vs all nonzero).

    On the support P is smooth with Hessian ``G_SS (x) I + blockdiag(lam/||v_k|| (I - u_k u_k^T))``.
    Coordinate descent gets the support right quickly but converges slowly on correlated features,
    and the rescaled-residual dual point lags behind the primal; a few Newton steps (conjugate
    gradients, which handle the isolated mean-direction eigenvalue of post-ReLU Grams in one
    iteration, with a block-Jacobi preconditioner) reach the support-restricted optimum to near
    machine precision. Returns the polished Vs, or None when a column would have to leave the
    support.
    """
    from scipy.linalg import cho_factor, cho_solve, get_lapack_funcs, lu_solve
    from scipy.sparse.linalg import LinearOperator, cg

    m, D = Vs.shape
    dg = np.diagonal(Gs).copy()
    if not np.all(dg > 0):  # a zero feature on the support: its column is 0 at the optimum
        return None

    def obj(V):
        return 0.5 * np.vdot(V, Gs @ V) - np.vdot(V, Cs) + lam * np.sum(np.linalg.norm(V, axis=1))

    f = obj(Vs)
    for it in range(steps):
        nv = np.linalg.norm(Vs, axis=1, keepdims=True)
        if np.any(nv == 0):
            return None
        U = Vs / nv
        a = lam / nv
        g = Gs @ Vs - Cs + a * Vs
        gn = np.linalg.norm(g)
        if gn == 0:
            break

        def hv(x, U=U, a=a):
            X = x.reshape(m, D)
            return (Gs @ X + a * (X - U * np.sum(U * X, axis=1, keepdims=True))).ravel()

        # Exact inverse of the Hessian by Woodbury: H = (G_SS + diag(a)) (x) I - B diag(a) B^T with
        # B = blockdiag(u_k), so H^-1 needs only m x m solves (M = G_SS + diag(a) and the Schur
        # complement S = diag(1/a) - (M^-1 o U U^T)). Used as the CG preconditioner: CG then
        # converges in one or two iterations and stays robust when the Woodbury solve is inaccurate.
        # S is exactly singular when H is (D = 1 with linearly dependent support features:
        # H = G_SS); LAPACK's getrf reports that (info > 0) where lu_factor would only warn, and
        # the Jacobi preconditioner below is used instead.
        Mm = Gs + np.diag(a[:, 0])
        try:
            Lm = cho_factor(Mm, lower=True, check_finite=False)
            Minv = cho_solve(Lm, np.eye(m), check_finite=False)
            S = np.diag(1.0 / a[:, 0]) - Minv * (U @ U.T)
            getrf, = get_lapack_funcs(("getrf",), (S,))
            lu, piv, info = getrf(S)
            if info != 0 or not np.all(np.isfinite(lu)):
                raise np.linalg.LinAlgError("singular Schur complement")
            S_lu = (lu, piv)
        except (np.linalg.LinAlgError, ValueError):
            Lm = Minv = S_lu = None

        def pre(x, U=U, a=a, Lm=Lm, Minv=Minv, S_lu=S_lu):
            X = x.reshape(m, D)
            if Lm is None:
                P = U * np.sum(U * X, axis=1, keepdims=True)
                return ((X - P) / (dg[:, None] + a) + P / dg[:, None]).ravel()
            Y = Minv @ X
            w = lu_solve(S_lu, np.sum(U * Y, axis=1), check_finite=False)
            return (Y + Minv @ (w[:, None] * U)).ravel()

        H = LinearOperator((m * D, m * D), matvec=hv, dtype=Vs.dtype)
        M = LinearOperator((m * D, m * D), matvec=pre, dtype=Vs.dtype)
        rtol = 10.0 ** -min(4 * (it + 1), 12)  # inexact Newton: looser solves far from the optimum
        # CG breaks down (0/0 in its recurrence) on a numerically singular H, e.g. a support
        # column of negligible norm (lam / ||v_k|| ~ 1e50): no Newton step then
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            d, _ = cg(H, -g.ravel(), rtol=rtol, atol=0.0, maxiter=cg_iter, M=M)
        if not np.all(np.isfinite(d)):
            return Vs
        d = d.reshape(m, D)
        slope = np.vdot(g, d)
        if not slope < 0:
            return Vs
        # A column the full step would (nearly) cancel wants to leave the support: drop it.
        tk = np.clip(-np.sum(Vs * d, axis=1) / np.maximum(np.sum(d * d, axis=1), 1e-300), 0.0, 1.0)
        rem = np.linalg.norm(Vs + tk[:, None] * d, axis=1) / nv[:, 0]
        leave = rem < 0.05
        if leave.any() and not leave.all():
            Vs = np.where(leave[:, None], 0.0, Vs)
            keep = ~leave
            sub = _newton_polish(Vs[keep], Gs[np.ix_(keep, keep)], Cs[keep], lam, steps=steps,
                                 cg_iter=cg_iter)
            if sub is None:
                return None
            Vs[keep] = sub
            return Vs
        t = 1.0
        while t > 1e-8:
            Vn = Vs + t * d
            fn = obj(Vn)
            if fn <= f + 1e-4 * t * slope:
                break
            t *= 0.5
        else:
            return Vs
        done = f - fn <= 1e-16 * abs(f)  # relative: the data may have any scale
        Vs, f = Vn, fn
        if done:
            break
    return Vs


def _capacity(m: int, K: int) -> int:
    """Compiled size for a working set of m columns: powers of 4 from 256 (few compiles),
    capped at K."""
    cap = 256
    while cap < m:
        cap *= 4
    return min(cap, K)


def _solve_stats(stats: _Stats, lam: float, V0t, *, tol: float, max_iter: int,
                 polish: bool = True) -> LassoResult:
    """Solve from the statistics; ``lam`` and the warm start ``V0t`` (K x D) in the data's units,
    the result too (the statistics' scaling is undone here)."""
    ab, ratio = stats.a * stats.b, stats.b / stats.a  # V = ratio * V', P = b^2 P'
    if V0t is not None and ratio != 1.0:
        V0t = V0t / ratio
    if isinstance(stats.G, np.ndarray):
        with blas_single_thread():
            res = _solve_stats_impl(stats, lam / ab, V0t, tol=tol, max_iter=max_iter,
                                    polish=polish)
    else:
        res = _solve_stats_impl(stats, lam / ab, V0t, tol=tol, max_iter=max_iter, polish=polish)
    if ratio == 1.0 and stats.b == 1.0:
        return res
    b2 = stats.b * stats.b
    return res._replace(V=res.V * ratio, primal=res.primal * b2, dual=res.dual * b2,
                        gap=res.gap * b2)


def _rel_gap(gap: float, primal: float) -> float:
    return gap / primal if primal > 0 else (0.0 if gap <= 0 else float("inf"))


def _solve_stats_impl(stats: _Stats, lam: float, Vt0, *, tol: float, max_iter: int,
                      polish: bool) -> LassoResult:
    G, Ct, yy2n = stats.G, stats.Ct, stats.yy2n
    xp = np if isinstance(G, np.ndarray) else jnp
    K, D = Ct.shape
    dtype = G.dtype  # float64
    kernel_dtype = working_dtype()  # the jitted BCD kernel's (float32 when x64 is off)
    Vt = xp.zeros((K, D), dtype) if Vt0 is None else xp.array(Vt0, dtype)
    p0 = float(yy2n)
    kernel_floor = _KERNEL_FLOOR_EPS * float(np.finfo(kernel_dtype).eps) * p0
    diag = np.asarray(xp.diagonal(G))
    inv_sqrt_diag = np.where(diag > 0, 1.0 / np.sqrt(np.where(diag > 0, diag, 1.0)), 0.0)
    if Vt0 is not None and not np.all(diag > 0):
        # an all-zero feature: its column only adds penalty, so it is 0 at every optimum (a warm
        # start from a trained layer carries the dead neurons' weights)
        Vt = xp.where(xp.asarray(diag > 0)[:, None], Vt, 0.0)
    best_dual = -np.inf
    epochs = rounds = stale = 0
    best_gap = np.inf
    ws_size = 0
    Vd = None
    tried = None
    while True:
        primal, dual, hnorm = _certificate(Vt, G @ Vt, Ct, yy2n, lam)
        primal, dual = float(primal), float(dual)
        if Vd is not None:  # the extrapolated dual candidate of the last inner solve
            dual = max(dual, float(_certificate(Vd, G @ Vd, Ct, yy2n, lam)[1]))
        best_dual = max(best_dual, dual)  # every candidate is dual feasible: keep the best
        gap = primal - best_dual
        rel_gap = _rel_gap(gap, primal)
        # progress guard: rounds without a 1 % gap decrease
        stale = 0 if gap < 0.99 * best_gap else stale + 1
        best_gap = min(best_gap, gap)
        if (rel_gap <= tol or epochs + _ANDERSON > max_iter or rounds >= max_iter
                or stale >= _STALE_ROUNDS):
            break
        rounds += 1
        progress = gap / p0 if p0 > 0 else gap  # polish once the gap is small on the P(0) scale
        # Working set: the support, then the columns closest to violating ||h_k|| <= lam (celer's
        # score), at least twice the support and never shrinking.
        support = np.asarray(xp.any(Vt != 0, axis=1))
        score = (np.asarray(hnorm) - lam) * inv_sqrt_diag
        score[support] = np.inf
        ws_size = min(K, max(_MIN_WS, 2 * int(support.sum()), ws_size))
        ws = np.sort(np.argsort(-score, kind="stable")[:ws_size])
        cap = _capacity(ws_size, K)
        idx = np.concatenate([ws, np.zeros(cap - ws_size, dtype=ws.dtype)])
        G_ws = G[idx[:, None], idx[None, :]]
        Ct_ws = Ct[idx]
        Vt_ws = Vt[idx]
        if cap > ws_size:  # padding rows: identity Gram, zero targets and coefficients
            pad = np.arange(ws_size, cap)
            G_ws = xp.asarray(G_ws)
            if xp is np:
                G_ws[pad, :] = 0.0
                G_ws[:, pad] = 0.0
                G_ws[pad, pad] = 1.0
                Ct_ws[pad] = 0.0
                Vt_ws[pad] = 0.0
            else:
                G_ws = G_ws.at[pad, :].set(0.0).at[:, pad].set(0.0).at[pad, pad].set(1.0)
                Ct_ws = Ct_ws.at[pad].set(0.0)
                Vt_ws = Vt_ws.at[pad].set(0.0)
        # Newton polish on the current support (each support tried once) once the gap is small.
        if (xp is np and polish and progress < 1e-2 and support.any()
                and D * support.sum() <= 40_000
                and (tried is None or not np.array_equal(support, tried))):
            tried = support
            S = np.flatnonzero(support)
            Vs = _newton_polish(Vt[S], G[np.ix_(S, S)], Ct[S], lam)
            if Vs is not None:
                Vp = np.zeros_like(Vt)
                Vp[S] = Vs
                if float(_certificate(Vp, G @ Vp, Ct, yy2n, lam)[0]) <= primal:
                    Vt = Vp
                    continue
        eps = max(_INNER_RATIO * gap, 0.5 * tol * primal, kernel_floor)
        budget = _POLISH_EPOCHS if (polish and xp is np and progress < 1e-2) else max_iter
        # Scalars go in as numpy scalars: no eager jax op (each would compile a tiny program once).
        Vt_ws, Vd_ws, ep = _inner_solve(Vt_ws, G_ws, Ct_ws, yy2n, dtype.type(lam),
                                        np.int64(ws_size), dtype.type(eps),
                                        np.int64(min(max_iter - epochs, budget)))
        epochs += int(ep)
        Vt, Vd = xp.zeros_like(Vt), xp.zeros_like(Vt)
        if xp is np:
            Vt[ws] = np.asarray(Vt_ws)[:ws_size]
            Vd[ws] = np.asarray(Vd_ws)[:ws_size]
        else:
            Vt = Vt.at[ws].set(Vt_ws[:ws_size])
            Vd = Vd.at[ws].set(Vd_ws[:ws_size])
        ws_size = 2 * ws_size if int(ep) == 0 else ws_size  # stalled: grow
    if xp is np:  # host result: transpose and count on the host (no eager jax ops to compile)
        if kernel_dtype != np.float64:  # V is returned rounded: certify the rounded V
            Vt = Vt.astype(kernel_dtype).astype(np.float64)
            primal = float(_certificate(Vt, G @ Vt, Ct, yy2n, lam)[0])
            gap = primal - best_dual
            rel_gap = _rel_gap(gap, primal)
        V = jnp.asarray(np.ascontiguousarray(Vt.T))
        norms = np.sqrt(np.sum(Vt * Vt, axis=1))  # same rule as count_nonzero_columns (relative)
        n_nonzero = int(np.count_nonzero(norms > DEFAULT_RTOL * np.max(norms, initial=0.0)))
    else:
        V = jnp.asarray(Vt).T
        n_nonzero = int(count_nonzero_columns(V))
    return LassoResult(V=V, primal=primal, dual=best_dual, gap=gap, rel_gap=float(rel_gap),
                       n_nonzero=n_nonzero, n_iter=epochs, converged=bool(rel_gap <= tol))


def _check_data(Phi, Psi, *, defer_phi_finite: bool = False):
    """:func:`check_problem`, keeping host input on the host (no copy of a large Phi).

    With ``defer_phi_finite`` the NaN/inf scan of a host ``Phi`` (a full pass over K x N) is left to
    :func:`_stats_checked`, which reads it off the diagonal of the Gram matrix formed anyway.
    """
    host = isinstance(Phi, np.ndarray)
    return check_problem(Phi, Psi, to_jax=False, phi_finite=not (host and defer_phi_finite))


def _stats_checked(Phi, Psi) -> _Stats:
    """:func:`_gram_stats`, then the deferred finiteness check of ``Phi`` and the range check.

    A NaN or inf in row k of ``Phi`` makes ``G_kk = ||phi_k||^2 / N`` NaN or inf, so a finite
    diagonal proves a finite ``Phi``; otherwise the full scan runs and raises the usual error. Data
    that is finite but too large or too small for its squares (Gram diagonal or ``||Psi||^2/(2N)``
    outside [2^-200, 2^200]) is divided by powers of two and the statistics formed again.
    """
    stats = _gram_stats(Phi, Psi)
    diag = np.asarray(jnp.diagonal(stats.G) if not isinstance(stats.G, np.ndarray)
                      else np.diagonal(stats.G))
    finite = bool(np.all(np.isfinite(diag)) and np.all(np.isfinite(np.asarray(stats.Ct)))
                  and np.isfinite(float(stats.yy2n)))
    if not finite:
        check_finite("Phi", Phi)
    if finite and _in_range(np.max(diag, initial=0.0)) and _in_range(stats.yy2n):
        return stats
    Phi = np.asarray(Phi, np.float64)
    Psi = np.asarray(Psi, np.float64)
    a, b = float(pow2_scale(Phi)), float(pow2_scale(Psi))
    return _gram_stats(Phi / a, Psi / b)._replace(a=a, b=b)


def _check_lam(lam, name: str = "lam"):
    check_nonnegative(name, lam)
    if np.ndim(lam) != 0:
        raise ValueError(f"{name} must be a scalar, got shape {np.shape(lam)}")
    if float(lam) == 0.0:
        raise ValueError(
            f"{name} must be > 0, got 0: at lam = 0 the problem is least squares, whose minimizer "
            f"this solver cannot certify (the rescaled-residual dual point is 0); use "
            f"numpy.linalg.lstsq(Phi.T, Psi.T) for it")
    return float(lam)


def _check_tol(tol):
    if not (isinstance(tol, (int, float, np.floating)) and np.isfinite(tol) and tol > 0):
        raise ValueError(f"tol must be a finite number > 0, got {tol!r}")
    if tol < _TOL_FLOOR:
        raise ValueError(f"tol={tol:g} is below what a float64 certificate can resolve "
                         f"(tol >= {_TOL_FLOOR:.1e})")
    return float(tol)


def solve_penalized(Phi, Psi, lam, *, tol: float = 1e-6, max_iter: int = 100_000, V0=None
                    ) -> LassoResult:
    r"""Solve the penalized multi-task lasso to a certified relative duality gap.

    .. math::
        \min_V \; \frac{1}{2N}\|V\Phi - \Psi\|_F^2 + \lambda \sum_{k=1}^K \|v_k\|_2

    Same scaling as scikit-learn's ``MultiTaskLasso(alpha=lam)`` on ``X = Phi.T``, ``Y = Psi.T``.
    The data enter only through ``Phi Phi^T / N``, ``Psi Phi^T / N`` and ``||Psi||^2``, formed once
    (cost K^2 N / 2, memory K^2); the iterations then cost nothing in N. Block coordinate descent
    with working sets finds the support; a Newton-CG polish on the support then certifies the gap
    (see the module docstring).

    Precision: the statistics, the Newton polish and the certificate are float64 whatever
    ``jax_enable_x64`` says; with it off only the coordinate-descent kernel runs in float32 and the
    returned ``V`` is float32 (certified as rounded). Data of any finite magnitude is rescaled
    exactly (module docstring).

    Args:
      Phi: K x N features (row k = neuron k's activations on the N samples); any array-like
        (:func:`vvjax._validate.as_array`: lists, ``__array__`` objects, small ``scipy.sparse``
        matrices), integers and booleans as floats.
      Psi: D x N targets.
      lam: penalty ``lam > 0`` (``lam = 0``, least squares, is refused: use
        ``numpy.linalg.lstsq``).
      tol: stop when ``rel_gap = (P(V) - D(theta)) / P(V) <= tol`` (``tol >= 2.2e-15``).
      max_iter: maximum number of coordinate-descent epochs (over the working sets), in total;
        never exceeded. The loop also stops, unconverged, after 10 rounds without progress.
      V0: optional D x K warm start.

    Returns:
      :class:`LassoResult`; ``V`` has exactly-zero inactive columns, ``gap``/``rel_gap`` certify it.

    Raises:
      ValueError: naming the argument, for bad shapes, NaN/inf entries, ``lam <= 0``,
        ``tol < 2.2e-15``, ``max_iter < 1`` or a ``V0`` of the wrong shape.
      TypeError: naming the argument, for non-numeric input.

    Examples:
      >>> import numpy as np
      >>> rng = np.random.default_rng(0)
      >>> Phi, Psi = rng.standard_normal((8, 30)), rng.standard_normal((2, 30))
      >>> res = solve_penalized(Phi, Psi, 0.5 * lam_max(Phi, Psi))
      >>> bool(res.converged), res.V.shape
      (True, (2, 8))

    References:
      arXiv 2305.16534 (multi-task lasso); ``docs/paper.md`` §4.2.
    """
    Phi, Psi = _check_data(Phi, Psi, defer_phi_finite=True)
    lam = _check_lam(lam)
    tol = _check_tol(tol)
    check_positive_int("max_iter", max_iter)
    Vt0 = None
    if V0 is not None:
        V0 = as_array("V0", V0, shape=(Psi.shape[0], Phi.shape[0]), to_jax=False)
        Vt0 = jnp.asarray(V0, jnp.float64).T if _device_path() else np.asarray(V0, np.float64).T
    return _solve_stats(_stats_checked(Phi, Psi), lam, Vt0, tol=tol, max_iter=max_iter)


def lasso_path(Phi, Psi, lams=None, *, n_lams: int = 20, eps: float = 1e-2, tol: float = 1e-6,
               max_iter: int = 100_000) -> list[LassoResult]:
    """Solve the penalized problem along a decreasing ``lam`` path with warm starts.

    The Gram statistics are formed once for the whole path.

    Args:
      Phi: K x N features.
      Psi: D x N targets.
      lams: penalties ``> 0`` to use, solved in decreasing order; default ``n_lams`` values
        spaced geometrically from ``lam_max`` down to ``eps * lam_max``.
      n_lams: number of default penalties.
      eps: ratio of the smallest to the largest default penalty, ``0 < eps <= 1``.
      tol: relative-gap tolerance per solve (see :func:`solve_penalized`).
      max_iter: epoch budget per solve.

    Returns:
      A list of :class:`LassoResult`, one per penalty, in decreasing ``lam`` order.

    Raises:
      ValueError, TypeError: as :func:`solve_penalized`; ``lams`` with a zero or negative entry is
        refused by name.

    References:
      arXiv 2305.16534 (multi-task lasso); ``docs/paper.md`` §4.2.
    """
    Phi, Psi = _check_data(Phi, Psi, defer_phi_finite=True)
    tol = _check_tol(tol)
    check_positive_int("max_iter", max_iter)
    stats = _stats_checked(Phi, Psi)
    if lams is None:
        check_positive_int("n_lams", n_lams)
        if not (np.isfinite(eps) and 0 < eps <= 1):
            raise ValueError(f"eps must be in (0, 1], got {eps!r}")
        lmax = float(np.max(np.linalg.norm(np.asarray(stats.Ct), axis=1), initial=0.0))
        lams = (lmax * stats.a * stats.b) * np.geomspace(1.0, eps, n_lams)
    else:
        lams = np.asarray(lams, dtype=float)
        if lams.ndim != 1 or lams.size == 0:
            raise ValueError(f"lams must be a non-empty 1-D sequence, got shape {lams.shape}")
        check_nonnegative("lams", lams)
        if np.any(lams == 0):
            _check_lam(0.0, "lams")  # raises, naming lams
        lams = np.sort(lams)[::-1]
    out, Vt = [], None
    for lam in lams:
        res = _solve_stats(stats, float(lam), Vt, tol=tol, max_iter=max_iter)
        out.append(res)
        Vt = jnp.asarray(res.V).T if _device_path() else np.asarray(res.V, np.float64).T
    return out
