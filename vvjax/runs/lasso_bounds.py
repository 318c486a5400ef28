"""Multi-task-lasso sparsity histograms (arXiv 2305.16534, Figs. 3-5; docs/paper.md §7.2-7.4).

Each trial draws a constrained multi-task lasso ``min sum_k ||v_k||_2  s.t.  V Phi = Psi``
(``Phi`` K x N, ``Psi`` D x N, ``V`` D x K), solves it with :func:`vvjax.lasso.solve_constrained`,
and counts the nonzero columns of the solution, then again after :func:`vvjax.lasso.sparsify`
(same objective, same fit, at most rank(Phi) rank(Psi) columns). Every count should lie between
the lower bound and the theorem's upper bound rank(Phi) rank(Psi) (arXiv 2305.16534, multi-task
lasso sparsity theorem; docs/paper.md §4.4):

* ``figure="random"`` (Fig. 3): D=10, K=500, N in {10, 20, 30, 40}, Phi and Psi i.i.d. N(0, 1).
  Lower bound N, upper bound N min(N, D) = N D.
* ``figure="rank"`` (Fig. 4): N=20, K=200, Phi = U B with U K x r and B r x N Gaussian, r in
  {2, 5, 10, 20}, and Psi = A Phi with A **D x K, D = 10** as the panel titles say. The authors'
  code used A with r rows instead (docs/paper.md §7.3, §9); ``rank.authors_psi_rows=true``
  reproduces that. Lower bound r, upper bound r min(r, D).
* ``figure="bruteforce"`` (Fig. 5): D=2, N=3, K in {7, ..., 11}, Gaussian; the size of the sparsest
  optimal support is found by exhaustive search (:func:`vvjax.lasso.sparsest_bruteforce`) and should
  lie in [N, N D] = [3, 6], often above N.

The lower bound drawn is the *generic* one, rank(Phi): with Psi's rows in general position inside
row(Phi), any feasible V needs at least rank(Phi) columns (docs/paper.md §4.5). The theorem's
deterministic lower bound rank(Psi) is recorded too. Counts use a *relative* threshold
(``count_rtol``), not the authors' absolute 1e-7 that counted solver residue (docs/paper.md §9).
"""

import contextlib
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Optional

import jax
import jax.numpy as jnp
import numpy as np

from vvjax import analysis, lasso, results
from vvjax._config import Rule, above, at_least, one_of, validate
from vvjax.runs._job import PRECISIONS, run_job

__all__ = [
    "RandomPanelsConfig",
    "RankPanelsConfig",
    "BruteForcePanelsConfig",
    "LassoBoundsConfig",
    "random_problems",
    "rank_problems",
    "run_lasso_bounds",
    "PAPER_REFERENCE",
]

FIGURES = ("random", "rank", "bruteforce")
_FIGURE_IDS = {name: i for i, name in enumerate(FIGURES)}
_SUPTITLES = {
    "random": r"Nonzero columns of $\min \sum_k \|v_k\|_2$ s.t. $V\Phi = \Psi$: Gaussian $\Phi$, "
              r"$\Psi$ (Fig. 3)",
    "rank": r"Nonzero columns: $\Phi$ of rank $r_\Phi$, $\Psi = A\Phi$ (Fig. 4)",
    "bruteforce": "Nonzero columns: sparsest optimal solution by exhaustive search (Fig. 5)",
}

PAPER_REFERENCE: dict[str, dict[str, dict[str, Any]]] = {
    "random": {  # notebook min-max and mean of the solver's counts (abs threshold 1e-7), Sec. 5.2a
        "N=10": {"range": [27, 42], "mean": 34.4, "mean_objective": 6.67, "lines": [10, 101]},
        "N=20": {"range": [69, 93], "mean": 82.3, "mean_objective": 10.69, "lines": [20, 201]},
        "N=30": {"range": [112, 142], "mean": 126.8, "mean_objective": 13.90, "lines": [30, 301]},
        "N=40": {"range": [156, 181], "mean": 167.9, "mean_objective": 16.79, "lines": [40, 401]},
    },
    "rank": {  # Sec. 5.2b; the authors' Psi had r rows; r=5 excludes 3 solver-failure outliers
        "r=2": {"range": [2, 4], "mean": 2.6, "lines": [2, 20]},
        "r=5": {"range": [7, 16], "mean": 15.8, "outliers": [110, 184, 200], "lines": [5, 50]},
        "r=10": {"range": [25, 41], "mean": 33.2, "lines": [10, 100]},
        "r=20": {"range": [70, 111], "mean": 87.5, "lines": [20, 200]},
    },
    "bruteforce": {  # Sec. 5.3: the paper's histogram values are not retrievable; expected [N, N D]
        "K=7": {"range": [3, 6], "lines": [3, 7]},
        "K=8": {"range": [3, 6], "lines": [3, 7]},
        "K=9": {"range": [3, 6], "lines": [3, 7]},
        "K=10": {"range": [3, 6], "lines": [3, 7]},
        "K=11": {"range": [3, 6], "lines": [3, 7]},
    },
}
"""What the authors' notebooks report per panel (docs/paper.md §7.2-7.4, §8): ``range``, the
min-max of the counts; ``lines``, the red lines the authors drew, with their "+1" plotting offset
on the upper one."""


_POSITIVE_INTS = Rule(lambda v: len(v) > 0 and min(v) >= 1, "a non-empty list of integers >= 1")


@dataclass
class RandomPanelsConfig:
    """Fig. 3: Phi (K x N) and Psi (D x N) i.i.d. N(0, 1), one panel per N."""

    d_out: int = 10
    k: int = 500
    n_values: list[int] = field(default_factory=lambda: [10, 20, 30, 40])

    RULES: ClassVar[dict[str, Rule]] = {"d_out": at_least(1), "k": at_least(1),
                                        "n_values": _POSITIVE_INTS}


@dataclass
class RankPanelsConfig:
    """Fig. 4: Phi = U B of rank r (one panel per r), Psi = A Phi with A Gaussian."""

    d_out: int = 10
    n: int = 20
    k: int = 200
    ranks: list[int] = field(default_factory=lambda: [2, 5, 10, 20])
    authors_psi_rows: bool = False
    """``True``: A has r rows, as in the authors' code (docs/paper.md §9), not D as titled."""

    RULES: ClassVar[dict[str, Rule]] = {"d_out": at_least(1), "n": at_least(1),
                                        "k": at_least(1), "ranks": _POSITIVE_INTS}


@dataclass
class BruteForcePanelsConfig:
    """Fig. 5: tiny Gaussian problems, sparsest optimal support by exhaustive search, per K."""

    d_out: int = 2
    n: int = 3
    k_values: list[int] = field(default_factory=lambda: [7, 8, 9, 10, 11])

    RULES: ClassVar[dict[str, Rule]] = {"d_out": at_least(1), "n": at_least(1),
                                        "k_values": _POSITIVE_INTS}


@dataclass
class LassoBoundsConfig:
    """Config of :func:`run_lasso_bounds` (``conf/lasso_bounds/config.yaml``)."""

    seed: int = 0
    precision: str = "float64"
    """Keep float64. With float32 the solver certifies gaps down to 1.2e-5 only, so ``tol`` must be
    raised (``tol=1e-4``; ``figure=bruteforce``: ``tol=1.2e-3``); the default 1e-6 is refused with
    an error naming ``tol``."""
    figure: str = "random"
    """Which figure: ``random`` (Fig. 3), ``rank`` (Fig. 4) or ``bruteforce`` (Fig. 5)."""
    trials: int = 100
    """Problems per panel. Trial t of a panel is the same problem whatever ``trials`` is."""
    random: RandomPanelsConfig = field(default_factory=RandomPanelsConfig)
    rank: RankPanelsConfig = field(default_factory=RankPanelsConfig)
    bruteforce: BruteForcePanelsConfig = field(default_factory=BruteForcePanelsConfig)
    tol: float = 1e-6
    """Solver tolerance (relative gap and residual), also passed to the exhaustive search."""
    max_iter: Optional[int] = 20_000  # noqa: UP045 (OmegaConf needs Optional)
    """Solver iteration cap (``None``: the solver's default, 5000). Converged problems stop early;
    a few rank-2 problems need about 5600 ADMM iterations to reach ``tol``."""
    feas_rtol: Optional[float] = None  # noqa: UP045
    """Tolerance of the solver's check that Psi lies in row(Phi) (true here by construction);
    ``None``: the solver's default, ``sqrt(eps)``."""
    batch_method: str = "loop"
    """``method`` of :func:`vvjax.lasso.solve_constrained_batch`: ``loop`` (one jitted solve per
    trial, dispatched without waiting; fastest on CPU) or ``vmap`` (one batched program, for
    GPUs)."""
    count_rtol: float = lasso.DEFAULT_RTOL
    """A column counts as nonzero when ``||v_k|| > count_rtol * max_j ||v_j||``."""
    sparsify_rtol: Optional[float] = None  # noqa: UP045
    """``rtol`` passed to :func:`vvjax.lasso.sparsify`; ``None``: its default."""
    rank_rtol: Optional[float] = None  # noqa: UP045
    """Numerical-rank tolerance for the bounds; ``None``: ``max(shape) * eps``."""
    figures: bool = field(default=True, compare=False)  # compare=False: not in the config hash

    RULES: ClassVar[dict[str, Rule]] = {
        "precision": one_of(PRECISIONS), "figure": one_of(FIGURES), "trials": at_least(1),
        "tol": above(0), "max_iter": at_least(1), "feas_rtol": above(0),
        "batch_method": one_of(("loop", "vmap")), "count_rtol": at_least(0),
        "sparsify_rtol": above(0), "rank_rtol": above(0),
    }


# ----------------------------------------------------------------------------- problem generators


def _trial_keys(key, trials: int):
    return jax.vmap(lambda t: jax.random.fold_in(key, t))(jnp.arange(trials))


@functools.partial(jax.jit, static_argnums=1, static_argnames=("d_out", "k", "n"))
def random_problems(key, trials: int, *, d_out: int, k: int, n: int):
    """``trials`` Gaussian problems: Phi (trials, K, N) and Psi (trials, D, N), i.i.d. N(0, 1)."""

    def one(kk):
        k_phi, k_psi = jax.random.split(kk)
        return jax.random.normal(k_phi, (k, n)), jax.random.normal(k_psi, (d_out, n))

    return jax.vmap(one)(_trial_keys(key, trials))


@functools.partial(jax.jit, static_argnums=1, static_argnames=("d_out", "k", "n", "r"))
def rank_problems(key, trials: int, *, d_out: int, k: int, n: int, r: int):
    """``trials`` problems: Phi = U B of rank r (U K x r, B r x N), Psi = A Phi (A d_out x K)."""

    def one(kk):
        k_u, k_b, k_a = jax.random.split(kk, 3)
        Phi = jax.random.normal(k_u, (k, r)) @ jax.random.normal(k_b, (r, n))
        return Phi, jax.random.normal(k_a, (d_out, k)) @ Phi

    return jax.vmap(one)(_trial_keys(key, trials))


def _panels(cfg: LassoBoundsConfig, key):
    """Yield ``(name, title, Phi, Psi)`` for every panel of ``cfg.figure``."""
    fkey = jax.random.fold_in(key, _FIGURE_IDS[cfg.figure])
    if cfg.figure == "random":
        c = cfg.random
        for n in c.n_values:
            Phi, Psi = random_problems(jax.random.fold_in(fkey, n), cfg.trials, d_out=c.d_out,
                                       k=c.k, n=n)
            yield f"N={n}", f"D={c.d_out}, N={n}, K={c.k}", Phi, Psi
    elif cfg.figure == "rank":
        c = cfg.rank
        for r in c.ranks:
            rows = r if c.authors_psi_rows else c.d_out
            Phi, Psi = rank_problems(jax.random.fold_in(fkey, r), cfg.trials, d_out=rows, k=c.k,
                                     n=c.n, r=r)
            yield f"r={r}", f"D={rows}, N={c.n}, K={c.k}, $r_\\Phi$={r}", Phi, Psi
    else:
        c = cfg.bruteforce
        for k in c.k_values:
            Phi, Psi = random_problems(jax.random.fold_in(fkey, k), cfg.trials, d_out=c.d_out, k=k,
                                       n=c.n)
            yield f"K={k}", f"D={c.d_out}, N={c.n}, K={k}", Phi, Psi


# ----------------------------------------------------------------------------- one panel


def _one_blas_thread():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional (comes with scikit-learn)
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


def _solve(Phi, Psi, cfg: LassoBoundsConfig):
    kw: dict[str, Any] = {"tol": cfg.tol, "feas_rtol": cfg.feas_rtol}
    if cfg.max_iter is not None:
        kw["max_iter"] = cfg.max_iter
    res = lasso.solve_constrained_batch(Phi, Psi, method=cfg.batch_method, **kw)
    return {f: np.asarray(getattr(res, f)) for f in res._fields}


def _count_stats(counts, lower, upper, *, histogram: bool) -> dict[str, Any]:
    c = np.asarray(counts, dtype=int)
    stats: dict[str, Any] = {
        "counts": c.tolist(), "min": int(c.min()), "max": int(c.max()), "mean": float(c.mean()),
        "frac_within_bounds": float(np.mean((c >= lower) & (c <= upper))),
    }
    if histogram:
        values, freq = np.unique(c, return_counts=True)
        stats["histogram"] = {str(v): int(f) for v, f in zip(values, freq, strict=True)}
    return stats


def _panel(name: str, Phi, Psi, cfg: LassoBoundsConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    trials = Phi.shape[0]
    rank_phi = np.array([int(analysis.numerical_rank(Phi[t], rtol=cfg.rank_rtol))
                         for t in range(trials)])
    rank_psi = np.array([int(analysis.numerical_rank(Psi[t], rtol=cfg.rank_rtol))
                         for t in range(trials)])
    lower, upper = rank_phi, rank_phi * rank_psi

    start = time.perf_counter()
    res = _solve(Phi, Psi, cfg)
    solve_time = time.perf_counter() - start
    V = res["V"]
    counts = np.array([int(lasso.count_nonzero_columns(V[t], rtol=cfg.count_rtol))
                       for t in range(trials)])

    Phi_np, Psi_np = np.asarray(Phi, np.float64), np.asarray(Psi, np.float64)
    start = time.perf_counter()
    skw = {} if cfg.sparsify_rtol is None else {"rtol": cfg.sparsify_rtol}
    with _one_blas_thread():  # sparsify's small NumPy SVDs: threaded BLAS only adds contention
        Vs = np.stack([np.asarray(lasso.sparsify(V[t], Phi_np[t], Psi_np[t], **skw))
                       for t in range(trials)])
    sparsify_time = time.perf_counter() - start
    counts_sp = np.array([int(lasso.count_nonzero_columns(Vs[t], rtol=cfg.count_rtol))
                          for t in range(trials)])

    obj = np.linalg.norm(V, axis=1).sum(axis=-1)
    obj_sp = np.linalg.norm(Vs, axis=1).sum(axis=-1)
    psi_norm = np.linalg.norm(Psi_np, axis=(1, 2))
    res_sp = np.linalg.norm(Vs @ Phi_np - Psi_np, axis=(1, 2)) / psi_norm
    res_solver = np.linalg.norm(V @ Phi_np - Psi_np, axis=(1, 2)) / psi_norm
    rel_gap = res["rel_gap"]  # gap / primal, certified in float64 by the solver
    histogram = cfg.figure == "bruteforce"
    summary: dict[str, Any] = {
        "trials": trials,
        "rank_phi": sorted(set(rank_phi.tolist())),
        "rank_psi": sorted(set(rank_psi.tolist())),
        "lower_bound": int(lower.min()),
        "upper_bound": int(upper.max()),
        "solver": _count_stats(counts, lower, upper, histogram=histogram),
        "sparsified": _count_stats(counts_sp, lower, upper, histogram=histogram),
        "frac_sparsified_le_rank_bound": float(np.mean(counts_sp <= upper)),
        "frac_at_least_rank_psi": float(np.mean(np.minimum(counts, counts_sp) >= rank_psi)),
        "mean_objective": float(obj.mean()),
        "max_rel_gap": float(np.max(rel_gap)),
        "max_rel_residual": float(np.max(res_solver)),
        "n_not_converged": int(np.sum(~res["converged"].astype(bool))),
        "mean_iterations": float(np.mean(res["n_iter"])),
        "sparsify_max_rel_objective_change": float(np.max(np.abs(obj_sp - obj) / obj)),
        "sparsify_max_rel_residual": float(np.max(res_sp)),
        "solve_time_s": solve_time,
        "sparsify_time_s": sparsify_time,
    }
    arrays = {"rank_phi": rank_phi, "rank_psi": rank_psi, "solver_counts": counts,
              "sparsified_counts": counts_sp, "objective": obj, "sparsified_objective": obj_sp,
              "rel_gap": rel_gap, "rel_residual": res_solver, "n_iter": res["n_iter"]}

    if cfg.figure == "bruteforce":
        start = time.perf_counter()
        brute = [lasso.sparsest_bruteforce(Phi[t], Psi[t], tol=cfg.tol,
                                           feas_rtol=cfg.feas_rtol) for t in range(trials)]
        sparsest = np.array([int(b.n_nonzero) for b in brute])
        brute_obj = np.array([float(b.objective) for b in brute])
        summary["sparsest"] = _count_stats(sparsest, lower, upper, histogram=True)
        summary["frac_sparsest_above_lower"] = float(np.mean(sparsest > lower))
        summary["n_sparsest_at_or_above_upper"] = int(np.sum(sparsest >= upper))
        summary["frac_sparsest_le_sparsified"] = float(np.mean(sparsest <= counts_sp))
        summary["frac_solver_is_sparsest"] = float(np.mean(sparsest == counts))
        summary["bruteforce_max_rel_objective_diff"] = float(np.max(np.abs(brute_obj - obj) / obj))
        summary["bruteforce_time_s"] = time.perf_counter() - start
        arrays.update(sparsest_counts=sparsest, sparsest_objective=brute_obj)

    summary["paper"] = PAPER_REFERENCE[cfg.figure].get(name, {})
    return summary, arrays


# ----------------------------------------------------------------------------- the job


def _body(cfg: LassoBoundsConfig, out_dir: Path) -> dict[str, Any]:
    panels: dict[str, dict[str, Any]] = {}
    arrays: dict[str, Any] = {}
    plot_panels = []
    for name, title, Phi, Psi in _panels(cfg, jax.random.key(cfg.seed)):
        summary, arr = _panel(name, Phi, Psi, cfg)
        panels[name] = {"title": title, **summary}
        arrays.update({f"{name}/{k}": v for k, v in arr.items()})
        series = {"solver": arr["solver_counts"], "sparsified": arr["sparsified_counts"]}
        if "sparsest_counts" in arr:
            series = {"sparsest optimal": arr["sparsest_counts"], **series}
        plot_panels.append((title, series, summary["lower_bound"], summary["upper_bound"]))
    results.save_npz(out_dir / "arrays.npz", **arrays)

    figures = []
    if cfg.figures:
        from vvjax.plots import lasso_bounds as plots

        fig = plots.count_histograms_figure(
            [p[0] for p in plot_panels], [p[1] for p in plot_panels],
            [p[2] for p in plot_panels], [p[3] for p in plot_panels],
            integer_bins=cfg.figure == "bruteforce", suptitle=_SUPTITLES[cfg.figure])
        figures = plots.save_figure(fig, out_dir / "figures", f"lasso_{cfg.figure}")

    frac = min(p[s]["frac_within_bounds"] for p in panels.values()
               for s in ("solver", "sparsified", "sparsest") if s in p)
    return {
        "figure": cfg.figure,
        "panels": panels,
        "frac_within_bounds": float(frac),
        "all_within_bounds": bool(frac == 1.0),
        "max_rel_gap": max(p["max_rel_gap"] for p in panels.values()),
        "max_rel_residual": max(p["max_rel_residual"] for p in panels.values()),
        "n_not_converged": sum(p["n_not_converged"] for p in panels.values()),
        "psi_rows_note": (
            "rank figure: Psi = A Phi with A having "
            + ("r rows (the authors' code, docs/paper.md §7.3)" if cfg.rank.authors_psi_rows
               else f"D={cfg.rank.d_out} rows as the panel titles say (the authors' code used r "
                    "rows, docs/paper.md §7.3)")) if cfg.figure == "rank" else None,
        "count_rule": f"||v_k|| > {cfg.count_rtol:g} * max_j ||v_j|| (relative; the authors used "
                      "an absolute 1e-7)",
        "figures": [str(Path(f).relative_to(out_dir)) for f in figures],
        "jax_backend": jax.default_backend(),
    }


def run_lasso_bounds(cfg: LassoBoundsConfig, out_dir: str | Path, *,
                     on_start: Callable[[Path], None] | None = None) -> dict[str, Any]:
    """Run (or resume) one multi-task-lasso histogram figure into ``out_dir``; returns its metrics.

    Writes ``arrays.npz`` (per panel ``<panel>/solver_counts``, ``sparsified_counts``,
    ``objective``, ``rank_phi``, ``rank_psi``, ... and for ``bruteforce`` ``sparsest_counts``),
    ``figures/`` and, last,
    ``metrics.json``: per panel the counts with min/max/mean and the fraction inside
    [rank(Phi), rank(Phi) rank(Psi)], the mean objective, the largest relative gap and residual, the
    paper's reported ranges (``paper``) and timings; plus wall time, config, seed and provenance.

    The whole config is checked first (:func:`vvjax.runs.validate`), before any work;
    ``on_start``: see :func:`vvjax.runs.run_job`.

    Raises:
      TypeError: ``cfg`` is not a :class:`LassoBoundsConfig`.
      ConfigError: a bad key or value, e.g. an unknown ``figure`` or ``trials < 1`` (the message
        names the key).
      vvjax.results.JobError: ``out_dir`` holds another finished config or is in use.
    """
    if not isinstance(cfg, LassoBoundsConfig):
        raise TypeError(f"cfg must be a LassoBoundsConfig, got {type(cfg).__name__}")
    cfg = validate(cfg)
    return run_job(cfg, out_dir, _body, task="lasso_bounds", on_start=on_start)
