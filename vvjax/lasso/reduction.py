r"""Sparse optimal solutions of the constrained multi-task lasso: the rank-bound reduction and an
exhaustive search for the sparsest optimum of tiny instances.

Problem (arXiv 2305.16534, multi-task lasso; ``docs/paper.md`` §4.1, §4.4), ``Phi`` K x N,
``Psi`` D x N, ``V`` D x K:

.. math::

    \min_V \sum_{k=1}^K \|v_k\|_2 \quad \text{s.t.} \quad V \Phi = \Psi .

Theorem (Sec. 4): every feasible ``V`` has at least rank(Psi) nonzero columns, and some solution has
at most rank(Phi) * rank(Psi). :func:`sparsify` turns *any* solution into one meeting the upper
bound, following the proof: (1) project every column on col(Psi), which keeps the fit and cannot
increase a norm; (2) while the active rank-one terms :math:`v_k\phi_k^T` (elements of col(Psi) x
row(Phi), a space of dimension rank(Psi) * rank(Phi)) are linearly dependent,
:math:`\sum_k c_k v_k \phi_k^T = 0`, move along :math:`v_k \leftarrow (1 + t c_k) v_k`. The fit is
unchanged, the objective is linear in ``t`` until a column vanishes, and the sign of ``t`` is chosen
so it does not increase; so every step removes at least one column without raising the objective.

:func:`sparsest_bruteforce` reproduces the paper's Fig. 5 search (``docs/paper.md`` §7.4): the
size of the smallest support on which the restricted problem still attains the global optimum.
"""

import itertools
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from vvjax._validate import as_array, check_nonnegative, check_positive_int
from vvjax.lasso._common import DEFAULT_RTOL, check_problem, pow2_scale, working_dtype

__all__ = ["sparsify", "BruteForceResult", "sparsest_bruteforce"]


def _range_basis(M, rank_rtol):
    """Orthonormal basis (columns) of the column space of ``M`` and the numerical rank."""
    if M.size == 0:
        return np.zeros((M.shape[0], 0)), 0
    U, s, _ = np.linalg.svd(M, full_matrices=False)
    if rank_rtol is None:
        rank_rtol = max(M.shape) * np.finfo(M.dtype).eps
    r = int(np.sum(s > rank_rtol * (s[0] if s.size else 0.0)))
    return U[:, :r], r


def sparsify(V, Phi, Psi=None, *, rtol: float = DEFAULT_RTOL, rank_rtol: float | None = None,
             dep_rtol: float | None = None):
    r"""An optimal solution with at most rank(Phi) * rank(Psi) nonzero columns, from any solution.

    Given ``V`` (D x K) with :math:`V\Phi \approx \Psi` (for example from
    :func:`vvjax.lasso.solve_constrained`, or a penalized solution with ``Psi`` its fit ``V Phi``),
    returns ``V'`` with

    * :math:`\sum_k \|v'_k\|_2 \le \sum_k \|v_k\|_2` (never larger; equal when ``V`` is optimal),
    * :math:`V'\Phi = V\Phi` (up to rounding, and up to the projection on col(Psi) when ``Psi`` is
      given and ``V Phi`` is not exactly in its column space),
    * at most rank(Phi) * rank(Psi) nonzero columns, the others exactly zero,

    by the reduction of the paper's proof (module docstring), in reduced coordinates: the term
    :math:`v_k\phi_k^T` is represented by :math:`(P^T v_k)(W^T\phi_k)^T`, a vector of length
    rank(Psi) * rank(Phi), with ``P``, ``W`` orthonormal bases of col(Psi) and row(Phi) (from SVDs:
    no squared condition numbers). Runs in float64 NumPy whatever ``jax_enable_x64`` says, on the
    inputs divided by powers of two (exact; the steps are invariant to it), so data of any finite
    magnitude works (a finite loop: each step removes at least one column).

    Args:
      V: D x K solution.
      Phi: K x N features.
      Psi: D x N targets fitted by ``V``; ``None``: ``V @ Phi``. Its column space is the one
        projected on.
      rtol: columns with ``||v_k|| <= rtol * max_j ||v_j||`` are treated as zero (set exactly to
        zero), the same rule as :func:`vvjax.lasso.count_nonzero_columns`.
      rank_rtol: numerical-rank tolerance for col(Psi) and row(Phi): singular values at most
        ``rank_rtol * sigma_max`` are dropped; ``None``: ``max(shape) * eps`` (NumPy's
        ``matrix_rank``).
      dep_rtol: the active terms count as linearly dependent when the smallest singular value of
        their (column-normalized) coordinate matrix is ``<= dep_rtol``; a step along such a
        near-null direction changes the fit by at most that order relative to the terms.
        ``None``: ``1000 eps`` (2.2e-13), so that terms independent only through small singular
        directions of an ill-conditioned ``Phi`` (down to about 1e-12 relative) stay independent
        and the objective is kept.

    Returns:
      ``V'`` (D x K) as a float64 NumPy array.

    Raises:
      ValueError: naming the argument, on bad shapes, NaN/inf, or negative tolerances.
      TypeError: naming the argument, for non-numeric input.

    Examples:
      >>> import numpy as np
      >>> Phi = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])   # rows 0 and 1 are the same feature
      >>> V = np.array([[0.5, 0.5, 0.0], [0.0, 0.0, 2.0]])        # weight split between the copies
      >>> Vs = sparsify(V, Phi)
      >>> int(np.sum(np.linalg.norm(Vs, axis=0) > 0)), float(np.linalg.norm(Vs, axis=0).sum())
      (2, 3.0)

    References: arXiv 2305.16534 (the multi-task lasso sparsity theorem bounding the sparsest
    solution by rank(Phi) * rank(Psi), and its proof); ``docs/paper.md`` §4.4.
    """
    check_nonnegative("rtol", rtol)
    if dep_rtol is None:
        dep_rtol = 1000 * float(np.finfo(np.float64).eps)
    check_nonnegative("dep_rtol", dep_rtol)
    if rank_rtol is not None:
        check_nonnegative("rank_rtol", rank_rtol)
    V = np.asarray(as_array("V", V, ndim=2, to_jax=False), np.float64)
    Phi = np.asarray(as_array("Phi", Phi, ndim=2, to_jax=False), np.float64)
    if V.shape[1] != Phi.shape[0]:
        raise ValueError(f"V (D x K) and Phi (K x N) must share K; got V {V.shape} and Phi "
                         f"{Phi.shape}")
    if Psi is not None:
        Psi = np.asarray(as_array("Psi", Psi, ndim=2, to_jax=False), np.float64)
        if Psi.shape != (V.shape[0], Phi.shape[1]):
            raise ValueError(f"Psi must have shape (D, N) = {(V.shape[0], Phi.shape[1])}, "
                             f"got {Psi.shape}")

    # Every step is invariant to scaling V, Phi and Psi separately: divide them by powers of two
    # (exact) so that norms and products can neither overflow nor underflow.
    sv = pow2_scale(V)
    V, Phi = V / sv, Phi / pow2_scale(Phi)
    Psi = V @ Phi if Psi is None else Psi / pow2_scale(Psi)
    P, _ = _range_basis(Psi, rank_rtol)  # D x p
    W, _ = _range_basis(Phi.T, rank_rtol)  # N x r
    norms = np.linalg.norm(V, axis=0)
    active = norms > rtol * norms.max(initial=0.0)
    V = np.where(active, P @ (P.T @ V), 0.0)  # step (1): columns into col(Psi)
    A = P.T @ V  # p x K coordinates of the columns
    Bc = Phi @ W  # K x r coordinates of the features

    for _ in range(V.shape[1]):
        idx = np.flatnonzero(np.any(V != 0, axis=0))
        if idx.size <= 1:
            break
        T = (A[:, idx].T[:, :, None] * Bc[idx][:, None, :]).reshape(idx.size, -1).T  # (p r) x m
        tn = np.linalg.norm(T, axis=0)
        if np.any(tn == 0):  # a term that is zero (phi_k = 0 on row(Phi)): drop the column for free
            V[:, idx[tn == 0]] = 0.0
            A[:, idx[tn == 0]] = 0.0
            continue
        if idx.size <= T.shape[0]:
            _, s, Wh = np.linalg.svd(T / tn, full_matrices=False)
            if s[-1] > dep_rtol:
                break  # linearly independent: at most p * r terms
            c = Wh[-1]
        else:
            c = np.linalg.svd(T / tn, full_matrices=True)[2][-1]  # a null vector (m > p r)
        c = c / tn
        n_act = np.linalg.norm(V[:, idx], axis=0)
        if c @ n_act > 0:  # objective slope along t: sum_k c_k ||v_k||; never go uphill
            c = -c
        neg = c < 0
        t = np.min(-1.0 / c[neg])
        scale = 1.0 + t * c
        scale[np.isclose(scale, 0.0, atol=1e-12) | (scale < 0)] = 0.0
        scale[np.argmin(np.where(neg, -1.0 / np.where(neg, c, -1.0), np.inf))] = 0.0
        V[:, idx] *= scale
        A[:, idx] *= scale
    return V * sv


class BruteForceResult(NamedTuple):
    """Outcome of :func:`sparsest_bruteforce`.

    Attributes:
      n_nonzero: the smallest number of nonzero columns among optimal solutions (``len(support)``).
      objective: the global optimum :math:`\\min \\sum_k \\|v_k\\|` (from the certified full solve).
      V: D x K optimal solution supported on ``support`` (restricted solve).
      support: sorted tuple of the column indices of the sparsest optimal support.
    """

    n_nonzero: int
    objective: float
    V: np.ndarray
    support: tuple


_CHUNK = 128  # restricted problems solved per vmapped call (fixed, so one compilation per shape)
_RETRY_FACTOR = 20  # an undecided restricted solve is retried alone with this many times max_iter


def sparsest_bruteforce(Phi, Psi, *, tol: float | None = None, max_k: int = 20,
                        max_iter: int = 20000, feas_rtol: float | None = None) -> BruteForceResult:
    r"""Size of the sparsest optimal solution of a tiny instance, by exhaustive search over
    supports.

    For support sizes :math:`s = \mathrm{rank}(\Psi), \dots, K` and every support :math:`S` of that
    size, solve the restricted problem :math:`\min \sum_{k\in S}\|v_k\|` s.t.
    :math:`V_S\Phi_S = \Psi` (rows of ``Phi`` outside ``S`` zeroed; supports that cannot fit ``Psi``
    are skipped) with the certified solver of :mod:`vvjax.lasso.constrained`, batched with ``vmap``.
    Stop at the first size whose best restricted optimum equals the global optimum within ``tol``
    (relative), with ``f*`` the global optimum certified to ``tol / 100``. Each support is decided
    from its restricted solve's certificate, converged or not:

    * it *attains* the optimum when the restricted solve returns a feasible ``V`` (residual test
      passed) with objective ``<= (1 + tol) f*``;
    * it *does not* when the solve converged (certified to ``tol / 10``) with a larger objective,
      or when its dual bound already exceeds ``(1 + tol) f*``;
    * otherwise (an unconverged solve whose objective is above the target and whose dual bound is
      below it: it could hide a sparser optimal support) the support is solved again alone with
      ``20 * max_iter`` iterations, and a ``RuntimeError`` naming the support and ``max_iter`` is
      raised if it is still undecided. No support is skipped on an unconverged solve.

    Everything runs on the data divided by powers of two (exact), so any finite magnitude works.

    Args:
      Phi: K x N features (the paper: N = 3, K = 7..11); any array-like, integers as floats.
      Psi: D x N targets (the paper: D = 2).
      tol: relative tolerance for "equals the global optimum"; restricted solves are certified to
        ``tol / 10`` and the global optimum to ``tol / 100``, so ``tol / 100`` must be at least the
        working dtype's floor (:data:`vvjax.lasso.TOL_FLOOR_EPS` ``* eps``). ``None``: 1e-6 in
        float64, 100 times the floor (1.2e-3) in float32.
      max_k: refuse larger K (the search visits up to 2^K supports).
      max_iter: ADMM iteration cap of the restricted solves.
      feas_rtol: fittability threshold, as in :func:`vvjax.lasso.solve_constrained`.

    Returns:
      :class:`BruteForceResult`.

    Raises:
      ValueError: naming the argument, on bad inputs, ``K > max_k``, ``tol`` too small for the
        working dtype, or if ``Psi`` is not in the row space of ``Phi``.
      RuntimeError: if the full problem or a restricted one cannot be decided within the iteration
        budget (raise ``max_iter``).

    Examples:
      >>> import numpy as np
      >>> rng = np.random.default_rng(0)
      >>> res = sparsest_bruteforce(rng.standard_normal((7, 3)), rng.standard_normal((2, 3)))
      >>> 2 <= res.n_nonzero <= 6
      True

    References: arXiv 2305.16534 (multi-task lasso sparsity theorem: rank(Psi) <= sparsest <=
    rank(Phi) rank(Psi); ``docs/paper.md`` §4.4); the exhaustive search is the authors'
    ``brute_cvx_multi_task_lasso.py`` (``docs/paper.md`` §7.4, §9).
    """
    from vvjax.lasso import constrained as _c

    floor = _c.TOL_FLOOR_EPS * float(np.finfo(working_dtype()).eps)
    if tol is None:
        tol = max(1e-6, 100 * floor)
    check_nonnegative("tol", tol)
    if tol / 100 < floor:
        raise ValueError(
            f"tol={tol:g} is too small for a {working_dtype().name} search: the global optimum is "
            f"certified to tol / 100, which must be >= {floor:.1e}; use tol >= {100 * floor:.1e}"
            + (" or enable float64 (jax.config.update('jax_enable_x64', True))"
               if working_dtype() != np.float64 else ""))
    check_positive_int("max_k", max_k)
    check_positive_int("max_iter", max_iter)
    Phi, Psi = check_problem(Phi, Psi, to_jax=False)
    K, N = Phi.shape
    if K > max_k:
        raise ValueError(f"Phi has K = {K} rows; the exhaustive search visits 2^K supports and is "
                         f"limited to K <= max_k = {max_k}")
    Phi, Psi, a, b, eps = _c._host_problem(Phi, Psi)
    a, b = a.item(), b.item()
    full = _c.solve_constrained(Phi, Psi, tol=tol / 100, max_iter=max(max_iter, 5000),
                                feas_rtol=feas_rtol)
    if not full.converged:
        raise RuntimeError("the full problem did not reach its certificate; raise max_iter")
    f_star = full.primal  # in scaled units (Phi / a, Psi / b)
    if f_star == 0.0:
        return BruteForceResult(0, 0.0, np.zeros((Psi.shape[0], K)), ())
    if feas_rtol is None:
        feas_rtol = float(np.sqrt(eps))
    target = (1.0 + tol) * f_star
    _, rank_psi = _range_basis(Psi, None)
    res_rtol = _c._RES_RTOL_EPS * float(np.finfo(working_dtype()).eps)
    wd = working_dtype()

    prep_fn = _c._prepare_vmap()
    Psi_b = jnp.broadcast_to(jnp.asarray(Psi, wd), (_CHUNK,) + Psi.shape)

    def solve(prep, n_iter):
        """Restricted solves (a batch, or one problem) decided from their float64 certificates."""
        args = _c._run_args(tol / 10, res_rtol, 0.15, n_iter)
        fn = _c._admm_vmap if prep.Q.ndim == 3 else _c._admm_jit
        V, YQ, _ = fn(prep.Q, prep.B, prep.s, prep.psi_norm, *args, check_every=10)
        V, _, primal, dual, res_ok, conv = _c._certify(V, YQ, _c._host(prep), tol / 10,
                                                       res_rtol)
        attain = res_ok & (primal <= target)
        refuted = (conv & (primal > target)) | (dual > target)
        return V, primal, attain, refuted

    for size in range(max(rank_psi, 1), K + 1):
        combos = np.array(list(itertools.combinations(range(K), size)))
        masks = np.zeros((len(combos), K), bool)
        masks[np.arange(len(combos))[:, None], combos] = True
        best = None
        for start in range(0, len(masks), _CHUNK):
            m = masks[start:start + _CHUNK]
            n = len(m)
            m = np.concatenate([m, np.repeat(m[-1:], _CHUNK - n, axis=0)])  # pad: fixed batch shape
            Phi_b = jnp.asarray(Phi[None] * m[:, :, None], wd)
            prep = prep_fn(Phi_b, Psi_b, wd.type(eps))
            feasible = np.array(prep.lsq_residual <= feas_rtol * prep.psi_norm)
            feasible[n:] = False
            if not feasible.any():
                continue
            # infeasible supports get Psi's projection as a harmless stand-in; ignored below
            V, primal, attain, refuted = solve(prep, max_iter)
            attain &= feasible
            for i in np.flatnonzero(feasible & ~attain & ~refuted):  # undecided: retry alone
                p_i = _c._Prepared(*(f[i] for f in prep))  # one problem: the unbatched solve
                V[i], primal[i], attain[i], refuted[i] = solve(p_i, _RETRY_FACTOR * max_iter)
                if not (attain[i] or refuted[i]):
                    raise RuntimeError(
                        f"the restricted problem on support {tuple(np.flatnonzero(m[i]).tolist())}"
                        f" is undecided after {_RETRY_FACTOR * max_iter} iterations (its solve "
                        f"did not converge and its bounds straddle the optimum); raise max_iter")
            if attain.any():
                i = int(np.flatnonzero(attain)[np.argmin(primal[attain])])
                if best is None or primal[i] < best[0]:
                    best = (primal[i], V[i], tuple(np.flatnonzero(m[i])))
        if best is not None:
            return BruteForceResult(size, f_star * b / a, best[1] * (b / a),
                                    tuple(int(k) for k in best[2]))
    raise RuntimeError("no support attained the global optimum (numerical trouble)")
