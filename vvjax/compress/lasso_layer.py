"""The multi-task lasso on one hidden layer: certified solves, the width search, the relaxed-lasso
refit and the reweighted group lasso.

For a layer's post-activations ``Phi`` (K x N) and next-layer targets ``Psi = V Phi`` (D' x N)
(:mod:`vvjax.compress.layers`), the compression problem is the penalized multi-task lasso
(arXiv 2305.16534, compression by the multi-task lasso; ``docs/paper.md`` §4.2, §6, §7.5)::

    min_U  1/(2N) ||U Phi - Psi||_F^2 + lam * sum_k w_k ||u_k||_2

solved by :func:`vvjax.lasso.solve_penalized` (warm starts, a duality-gap certificate per solve;
weights ``w_k = 1`` unless reweighting). ``lam`` is in the lasso's convention; a training weight
``lam_t`` of the ``"mse"`` loss corresponds to ``vvjax.objectives.lasso_lam(lam_t, D')``. Weights
are applied by rescaling features: ``Phi_k / w_k`` with ``u'_k = w_k u_k`` gives the unweighted
problem, so every solve, weighted or not, carries the solver's own certificate.

Never-active neurons (``phi_k = 0`` on every training input) are left out of the solve: their
columns are zero at every ``lam > 0``.
"""

import time
from typing import NamedTuple

import numpy as np

from vvjax import lasso
from vvjax.lasso import DEFAULT_RTOL

__all__ = ["LassoLayerFit", "WidthSearch", "LayerLasso", "fit_layer", "refit_columns",
           "reconstruction_error", "reweight", "REWEIGHT_EPS"]

REWEIGHT_EPS = 0.3
"""Reweighting floor, relative to the largest column: ``w_k = 1 / (||u_k|| + eps max_j ||u_j||)``
(Candes, Wakin & Boyd 2008, "Enhancing sparsity by reweighted l1 minimization": eps a little below
the size of the coefficients that matter). 0.3 was chosen on the digits experiment (3 seeds, widths
2-15 %: 0.01, 0.1, 0.2, 0.3, 0.5 and 1 tried, with 1-8 steps); see ``benchmarks`` and the README
for what reweighting gives."""

_GRID_PER_DECADE = 8
_GRID_DECADES = 7
_BISECT_STEPS = 60
_BISECT_RTOL = 1e-7
_EXTRA_GRID = 6  # grid points examined past a crossing that bisection could not split


class WidthSearch(NamedTuple):
    """Outcome of a ``width=k`` search: ``exact`` when some ``lam`` gives k nonzero columns;
    otherwise ``below`` / ``above`` are the nearest achievable ``(width, lam)`` pairs on either side
    (``None`` when no solve gave such a width). ``n_solves`` certified solves were made."""

    requested: int
    exact: bool
    below: tuple[int, float] | None
    above: tuple[int, float] | None
    n_solves: int


class LassoLayerFit(NamedTuple):
    """A certified lasso solution for one layer.

    ``V`` (D', K) full-width solution in the layer's own scale (columns of deleted neurons exactly
    zero, thresholded at ``||v_k|| <= 1e-6 max_j ||v_j||`` like
    :func:`vvjax.lasso.count_nonzero_columns`); ``kept`` increasing indices of its nonzero columns;
    ``lam``, ``lam_max`` (the smallest ``lam`` giving width 0) of the final (weighted) problem;
    ``certificate`` the solver's :class:`vvjax.lasso.LassoResult` of that solve (its ``V`` in the
    weighted scale); ``solver_time_s`` total seconds in lasso solves (search and reweighting
    included); ``n_solves``; ``search`` (:class:`WidthSearch` or ``None``); ``reweight_history``:
    ``(width, lam, rel_gap)`` of every reweighting step, the plain lasso first.
    """

    V: np.ndarray
    kept: np.ndarray
    lam: float
    lam_max: float
    certificate: lasso.LassoResult
    solver_time_s: float
    n_solves: int
    search: WidthSearch | None
    reweight_history: list


def _support(U) -> np.ndarray:
    norms = np.linalg.norm(U, axis=0)
    return norms > DEFAULT_RTOL * np.max(norms, initial=0.0)


class LayerLasso:
    """The weighted lasso of one layer, solved with warm starts from the nearest solved ``lam``.

    The problem depends on the data only through the second moments of ``M = [Phi; Psi]``
    ((K + D') x N): when N > K + D' the solves run on an equivalent smaller data set ``M'``
    ((K + D') x r, r = rank M) with ``M' M'^T / r = M M^T / N`` (from the eigendecomposition of
    ``M M^T``), which has the same objective, dual and duality gap for every ``V`` at a fraction of
    the cost per solve. :meth:`certify` re-certifies a solution on the original data.

    Args:
      Phi: (K, N) features; ``Psi``: (D', N) targets (NumPy, working precision).
      weights: (K,) positive penalty weights (``None``: all 1).
      skip: (K,) bool, neurons left out of the problem (never active ones): their columns are 0.
      tol: relative duality gap of every solve (:func:`vvjax.lasso.solve_penalized`).
      max_iter: epoch budget per solve.
    """

    def __init__(self, Phi, Psi, *, weights=None, skip=None, tol: float = 1e-6,
                 max_iter: int = 100_000):
        K = Phi.shape[0]
        self.K = K
        self.idx = np.flatnonzero(~skip) if skip is not None else np.arange(K)
        self.w = np.ones(self.idx.size) if weights is None else np.asarray(weights)[self.idx]
        self.Phi_w = np.ascontiguousarray(Phi[self.idx] / self.w[:, None])
        self.Psi = np.ascontiguousarray(Psi)
        self.tol, self.max_iter = tol, max_iter
        self.lam_max = lasso.lam_max(self.Phi_w, self.Psi) if self.idx.size else 0.0
        self.solved: dict[float, lasso.LassoResult] = {}
        self.seconds = 0.0
        t = time.perf_counter()
        self.Phi_r, self.Psi_r = _moment_equivalent(self.Phi_w, self.Psi)
        self.seconds += time.perf_counter() - t

    def solve(self, lam: float) -> lasso.LassoResult:
        """Certified solve at ``lam`` (cached), warm-started from the nearest solved ``lam``."""
        lam = float(lam)
        if lam in self.solved:
            return self.solved[lam]
        V0 = None
        if self.solved:
            near = min(self.solved, key=lambda m: abs(np.log(m / lam)))
            V0 = np.asarray(self.solved[near].V)
        t = time.perf_counter()
        res = lasso.solve_penalized(self.Phi_r, self.Psi_r, lam, tol=self.tol,
                                    max_iter=self.max_iter, V0=V0)
        self.seconds += time.perf_counter() - t
        self.solved[lam] = res
        return res

    def certify(self, lam: float) -> lasso.LassoResult:
        """The solve at ``lam`` re-certified on the original ``(Phi, Psi)`` (a solve warm-started
        at the solution: the certificate of the original problem, normally without iterating)."""
        res = self.solve(lam)
        if self.Phi_r is self.Phi_w:
            return res
        t = time.perf_counter()
        res = lasso.solve_penalized(self.Phi_w, self.Psi, float(lam), tol=self.tol,
                                    max_iter=self.max_iter, V0=np.asarray(res.V))
        self.seconds += time.perf_counter() - t
        self.solved[float(lam)] = res
        return res

    def width(self, lam: float) -> int:
        return int(np.count_nonzero(_support(np.asarray(self.solve(lam).V))))

    def full_V(self, lam: float) -> np.ndarray:
        """(D', K) solution at ``lam`` in the layer's scale, small columns set to exactly 0."""
        U = np.asarray(self.solve(lam).V, dtype=np.float64)
        U = np.where(_support(U)[None, :], U, 0.0)
        V = np.zeros((U.shape[0], self.K))
        V[:, self.idx] = U / self.w[None, :]
        return V

    def search_near(self, k: int, lam0: float) -> tuple[float | None, WidthSearch]:
        """As :meth:`search`, starting from ``lam0`` (e.g. the previous reweighting step's): steps
        of a factor 1.5 away from it until the width crosses ``k``, then bisection (the full
        :meth:`search` only if the width does not cross ``k`` within 4 decades)."""
        lam0 = min(float(lam0), self.lam_max * (1 - 1e-9))
        c0 = self.width(lam0)
        if c0 == k:
            return lam0, self._report(k, True)
        step = 1.5 if c0 > k else 1 / 1.5  # too wide: raise lam
        lam, c = lam0, c0
        for _ in range(int(np.ceil(4 / np.log10(1.5)))):
            nxt = min(lam * step, self.lam_max)
            cn = self.width(nxt) if nxt < self.lam_max else 0
            if cn == k:
                return nxt, self._report(k, True)
            if (cn - k) * (c - k) < 0:
                hi, lo = (nxt, lam) if nxt > lam else (lam, nxt)
                found = self._bisect(k, hi, lo)
                return found, self._report(k, found is not None)
            if nxt >= self.lam_max:
                break
            lam, c = nxt, cn
        return self.search(k)

    def search(self, k: int) -> tuple[float | None, WidthSearch]:
        """Find ``lam`` with exactly ``k`` nonzero columns.

        The support size is not monotone in ``lam``, so: a geometric grid from ``lam_max`` down
        (8 points per decade, 7 decades) until the width first crosses ``k``; bisection on
        ``log lam`` in that grid interval, to a relative ``lam`` interval of 1e-7; if no ``lam``
        there gives ``k``, the grid goes on for 6 more points, bisecting every further interval
        whose end widths straddle ``k``.
        Returns ``(lam, search)``: ``lam`` is ``None`` when no solve gave exactly ``k``.
        """
        grid = self.lam_max * np.logspace(0, -_GRID_DECADES, _GRID_DECADES * _GRID_PER_DECADE + 1)
        prev_lam, prev_c, extra = float(grid[0]), 0, None
        for lam in grid[1:]:
            lam = float(lam)
            c = self.width(lam)
            if c == k:
                return lam, self._report(k, True)
            if (prev_c - k) * (c - k) < 0:  # the width crosses k in (lam, prev_lam)
                found = self._bisect(k, prev_lam, lam)
                if found is not None:
                    return found, self._report(k, True)
                extra = _EXTRA_GRID if extra is None else extra
            if extra is not None:
                extra -= 1
                if extra < 0:
                    break
            prev_lam, prev_c = lam, c
        return None, self._report(k, False)

    def _bisect(self, k, hi, lo):
        c_hi = self.width(hi)
        for _ in range(_BISECT_STEPS):
            if hi / lo - 1.0 < _BISECT_RTOL:
                return None
            mid = float(np.sqrt(hi * lo))
            c = self.width(mid)
            if c == k:
                return mid
            if (c - k) * (c_hi - k) > 0:
                hi, c_hi = mid, c
            else:
                lo = mid
        return None

    def _report(self, k, exact) -> WidthSearch:
        below = above = None
        for lam in list(self.solved):
            c = self.width(lam)
            if 0 < c < k and (below is None or c > below[0]):
                below = (c, lam)
            if c > k and (above is None or c < above[0]):
                above = (c, lam)
        return WidthSearch(k, exact, below, above, len(self.solved))


def _moment_equivalent(Phi, Psi):
    """``(Phi', Psi')`` with r <= K + D' columns and the same second moments per column as
    ``(Phi, Psi)`` (``M' M'^T / r = M M^T / N`` for ``M = [Phi; Psi]``), or the inputs themselves
    when that would not be smaller."""
    K, N = Phi.shape
    m = K + Psi.shape[0]
    if N <= m:
        return Phi, Psi
    M = np.concatenate([Phi, Psi], axis=0)
    evals, U = np.linalg.eigh(M @ M.T)
    good = evals > np.finfo(M.dtype).eps * m * max(float(evals[-1]), 0.0)
    r = int(np.count_nonzero(good))
    if r == 0:
        return Phi, Psi
    Mr = U[:, good] * np.sqrt(evals[good] * (r / N))[None, :]
    return np.ascontiguousarray(Mr[:K]), np.ascontiguousarray(Mr[K:])


def refit_columns(Phi, Psi, kept) -> np.ndarray:
    """Least-squares outgoing weights of the kept neurons: ``argmin_{V_S} ||V_S Phi_S - Psi||_F``
    (minimum-norm solution when ``Phi_S`` is rank deficient), shape (D', len(kept)).

    With the lasso's support this is the relaxed lasso (Meinshausen 2007, "Relaxed Lasso"): the
    lasso chooses the neurons, least squares sets their weights without the shrinkage bias."""
    kept = np.asarray(kept, dtype=np.int64)
    if kept.size == 0:
        return np.zeros((Psi.shape[0], 0))
    sol, *_ = np.linalg.lstsq(Phi[kept].T, Psi.T, rcond=None)
    return sol.T


def reconstruction_error(Phi, Psi, V) -> float:
    """``||V Phi - Psi||_F / ||Psi||_F`` (0 when ``Psi = 0``) for ``V`` (D', K)."""
    den = float(np.linalg.norm(Psi))
    return float(np.linalg.norm(V @ Phi - Psi)) / den if den > 0 else 0.0


def reweight(V, eps: float = REWEIGHT_EPS) -> np.ndarray:
    """Weights ``w_k = s / (||v_k|| + eps max_j ||v_j||)`` of the next reweighted step, scaled by
    ``s`` so that the weighted penalty of ``V`` equals its unweighted one (``lam`` keeps its
    meaning across steps)."""
    norms = np.linalg.norm(V, axis=0)
    w = 1.0 / (norms + eps * np.max(norms, initial=0.0))
    pen = float(np.sum(w * norms))
    return w * (float(np.sum(norms)) / pen if pen > 0 else 1.0)


def fit_layer(Phi, Psi, skip, *, lam=None, lam_ratio=None, width=None, reweight_steps: int = 0,
              eps: float = REWEIGHT_EPS, tol: float = 1e-6, max_iter: int = 100_000,
              base: "LayerLasso | None" = None) -> LassoLayerFit:
    """The certified lasso of one layer at ``lam``, ``lam_ratio * lam_max`` or ``width`` (exactly
    one is given; the caller validated it), then ``reweight_steps`` reweighted steps
    (iteratively reweighted l2,1: each step a weighted lasso with weights from the previous step's
    solution, :func:`reweight`, solved and certified like the first; with ``width`` each step
    searches its own ``lam`` for the same width).

    Raises:
      ValueError: ``lam >= lam_max`` (the solution would be width 0).

    ``base`` is an unweighted :class:`LayerLasso` of the same layer to reuse for the first step
    (its solved ``lam`` values are shared, e.g. by width searches for several widths); its solve
    time is counted from the moment it is passed in.
    """
    weights, history, seconds, solves, lam_s = None, [], 0.0, 0, None
    for step in range(reweight_steps + 1):
        if step == 0 and base is not None:
            prob = base
            t0, n0 = prob.seconds, len(prob.solved)
        else:
            prob = LayerLasso(Phi, Psi, weights=weights, skip=skip, tol=tol, max_iter=max_iter)
            t0 = n0 = 0
        if prob.lam_max <= 0:
            raise ValueError("the layer's targets Psi are orthogonal to every neuron's "
                             "activations (lam_max = 0): nothing to compress against")
        search = None
        if width is not None:
            lam_s, search = prob.search(width) if step == 0 else prob.search_near(width, lam_s)
            if lam_s is None:
                near = search.below or search.above
                lam_s = near[1]
        elif lam_ratio is not None:
            lam_s = lam_ratio * prob.lam_max
        else:
            lam_s = float(lam)
            if step == 0 and lam_s >= prob.lam_max:
                raise ValueError(f"lam must be < lam_max = {prob.lam_max:.6g} for layer "
                                 f"(lam >= lam_max deletes every neuron: width 0), got {lam!r}")
        res = prob.certify(lam_s)
        V = prob.full_V(lam_s)
        seconds += prob.seconds - t0
        solves += len(prob.solved) - n0
        history.append((int(np.count_nonzero(np.any(V != 0, axis=0))), lam_s, res.rel_gap))
        if step < reweight_steps:
            weights = reweight(V, eps)
            weights = np.where(skip, 1.0, weights)
    kept = np.flatnonzero(np.any(V != 0, axis=0))
    if kept.size == 0:
        raise ValueError("the lasso kept no neuron (width 0); use a smaller lam")
    return LassoLayerFit(V, kept, lam_s, prob.lam_max, res, seconds, solves, search, history)
