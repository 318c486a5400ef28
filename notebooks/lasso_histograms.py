# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Multi-task lasso histograms (Figs. 3-5)
#
# Shenouda, Parhi, Lee & Nowak (JMLR 2024, arXiv 2305.16534), the **multi-task lasso sparsity
# theorem** (`docs/paper.md` §4.4): the constrained multi-task lasso
#
# $$\min_V \sum_{k=1}^K \|v_k\|_2 \quad\text{s.t.}\quad V\Phi = \Psi
# \qquad (\Phi\ K\times N,\ \Psi\ D\times N,\ V\ D\times K)$$
#
# has an optimal solution with at most $\mathrm{rank}(\Phi)\,\mathrm{rank}(\Psi)$ nonzero
# columns, and every feasible $V$ has at least $\mathrm{rank}(\Psi)$ of them. For a ReLU layer,
# $\Phi$ holds the layer's features on the N training samples and $\Psi$ the next layer's
# pre-activations, so the theorem bounds the width a weight-decayed layer needs (§6). The paper's
# Figs. 3-5 (§7.2-7.4) histogram the nonzero columns over random problems:
#
# * **Fig. 3** (`preset=random`): $\Phi$, $\Psi$ Gaussian, D=10, K=500, N in {10, 20, 30, 40};
#   counts between N (the generic lower bound, §4.5) and N·D;
# * **Fig. 4** (`preset=rank`): $\Phi$ of rank r, $\Psi = A\Phi$; counts between r and
#   r·min(r, D), growing with the rank of the features, not their number;
# * **Fig. 5** (`preset=bruteforce`): tiny problems (D=2, N=3) where the *sparsest* optimal support
#   is found by exhaustive search: it often needs more than N columns, so the scalar bound "N
#   neurons" does not carry over to several outputs, and never more than N·D.
#
# This notebook runs the three figures through the runner of `experiments/lasso_bounds.py`
# (`vvjax.runs.run_lasso_bounds`, the experiment's real presets), reads the results back with
# `vvjax.results`, draws them with `vvjax.plots.lasso_bounds`, checks the theorem's bounds on
# every trial, and checks the solvers against independent references (their dual certificates
# in NumPy, scikit-learn's `MultiTaskLasso`). The full setting takes about a minute on 2 cores;
# `VVJAX_SMOKE=1` runs the `debug=smoke` sizes (one panel each, seconds).

# %%
import os
import tempfile
from pathlib import Path

import jax
import matplotlib.pyplot as plt
import numpy as np
from hydra import compose, initialize_config_dir
from sklearn.linear_model import MultiTaskLasso

import vvjax
from vvjax import lasso, results
from vvjax.configs import register_configs, to_config
from vvjax.plots import lasso_bounds as plots
from vvjax.runs import run_lasso_bounds
from vvjax.runs.lasso_bounds import random_problems

SMOKE = os.environ.get("VVJAX_SMOKE") == "1"
# The repository's conf/ folder (vvjax is installed in editable mode from the repository).
CONF = Path(vvjax.__file__).resolve().parent.parent / "conf" / "lasso_bounds"
FIGURES = ("random", "rank", "bruteforce")  # the presets of Figs. 3, 4, 5
# Smoke: the debug=smoke sizes with one panel per figure, the Fig. 3 and Fig. 4 panels of one
# shape (each new problem shape compiles the solver anew), no figure files.
SMOKE_OVERRIDES = ["debug=smoke", "figures=false", "random.k=40", "random.n_values=[8]",
                   "rank.ranks=[4]", "bruteforce.k_values=[6]"]

register_configs()


def config(preset):
    """The checked config of `python experiments/lasso_bounds.py preset=<preset>`."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return to_config(compose("config", overrides=[f"preset={preset}",
                                                      *(SMOKE_OVERRIDES if SMOKE else [])]))


cfgs = {fig: config(fig) for fig in FIGURES}
for fig, cfg in cfgs.items():
    print(f"{fig:>10}: {cfg.trials} trials per panel, {getattr(cfg, fig)}")

# %% [markdown]
# ## Run the three figures
#
# Each run solves every problem with `vvjax.lasso.solve_constrained_batch` to a certified relative
# duality gap (1e-6), counts the nonzero columns (relative threshold, not the authors' absolute
# 1e-7: §9), applies `vvjax.lasso.sparsify` (same objective and fit, at most
# rank(Φ)·rank(Ψ) columns, the theorem's proof as an algorithm) and, for Fig. 5, searches every
# support for the sparsest optimum (`vvjax.lasso.sparsest_bruteforce`). Each job writes
# `metrics.json` and `arrays.npz` into its folder, which we read back with `vvjax.results`.

# %%
out_root = Path(tempfile.mkdtemp(prefix="lasso_histograms_"))
for fig, cfg in cfgs.items():
    run_lasso_bounds(cfg, out_root / fig)
metrics = {fig: results.load_metrics(out_root / fig) for fig in FIGURES}
arrays = {fig: dict(np.load(out_root / fig / "arrays.npz")) for fig in FIGURES}

print(f"{'figure':>10} {'panel':>6} {'bounds':>10} {'solver':>9} {'sparsified':>11} "
      f"{'sparsest':>9} {'not conv.':>9}  paper")
for fig, m in metrics.items():
    for name, p in m["panels"].items():
        rng = {s: f"{p[s]['min']}-{p[s]['max']}" if s in p else "" for s in
               ("solver", "sparsified", "sparsest")}
        paper = p["paper"].get("range", "")
        if paper and fig == "bruteforce":  # the authors' values are not retrievable (§7.4)
            paper = f"{paper} expected"
        print(f"{fig:>10} {name:>6} {p['lower_bound']:>4}-{p['upper_bound']:<5} "
              f"{rng['solver']:>9} {rng['sparsified']:>11} {rng['sparsest']:>9} "
              f"{p['n_not_converged']:>9}  {paper}")

# %% [markdown]
# The paper's column is the range of the solver's counts that the authors' notebooks report
# (`docs/paper.md` §8); for Fig. 5 their values are not retrievable, and the column gives the
# range [N, N·D] the figure is meant to show (§7.4). Our counts differ by the random draws and by
# the counting rule: vvjax's solver returns exact zeros, the authors counted conic-solver output
# above an absolute 1e-7, which counts solver residue (the Fig. 4 outliers 110, 184, 200). Fig. 4
# here draws Ψ with D=10 rows as its panel titles say; the authors' code used r rows (§7.3, §9;
# `rank.authors_psi_rows=true` reproduces that), the likely reason our r=20 counts are lower.

# %% [markdown]
# ## The figures
#
# One panel per setting: the solver's counts, the counts after `sparsify` and (Fig. 5) the
# sparsest optimum, with red dashed lines at the lower bound rank(Φ) and at the theorem's upper
# bound rank(Φ)·rank(Ψ) (exactly at the bound; the authors drew it one unit to the right).


# %%
def draw(fig):
    """The runner's figure, redrawn from the stored arrays with vvjax.plots.lasso_bounds."""
    panels = metrics[fig]["panels"]
    a = arrays[fig]
    series = []
    for name in panels:
        s = {"solver": a[f"{name}/solver_counts"], "sparsified": a[f"{name}/sparsified_counts"]}
        if f"{name}/sparsest_counts" in a:
            s = {"sparsest optimal": a[f"{name}/sparsest_counts"], **s}
        series.append(s)
    return plots.count_histograms_figure(
        [p["title"] for p in panels.values()], series,
        [p["lower_bound"] for p in panels.values()], [p["upper_bound"] for p in panels.values()],
        integer_bins=fig == "bruteforce", suptitle=f"preset={fig}")


for fig in FIGURES:
    draw(fig)
    plt.show()

# %% [markdown]
# ## The theorem on every trial
#
# Per trial: the solver's count, the sparsified count and the sparsest count lie between
# rank(Ψ) (every feasible V) and rank(Φ)·rank(Ψ) (the sparsity theorem bounds *some* optimal
# solution, the one `sparsify` returns; the optimum of these random problems is generically
# unique, so the solver's own solution meets the bound too), they are at least the generic lower
# bound rank(Φ) (§4.5), and `sparsify` keeps the objective. The ranks are the stored ones,
# trial by trial.

# %%
above, below_psi, below_generic, n_counts, obj_change = 0, 0, 0, 0, 0.0
for fig in FIGURES:
    a = arrays[fig]
    for name in metrics[fig]["panels"]:
        r_phi, r_psi = a[f"{name}/rank_phi"], a[f"{name}/rank_psi"]
        for s in ("solver", "sparsified", "sparsest"):
            if f"{name}/{s}_counts" not in a:
                continue
            c = a[f"{name}/{s}_counts"]
            above += int(np.sum(c > r_phi * r_psi))
            below_psi += int(np.sum(c < r_psi))
            below_generic += int(np.sum(c < r_phi))
            n_counts += c.size
        assert np.all(a[f"{name}/sparsified_counts"] <= a[f"{name}/solver_counts"])
        if f"{name}/sparsest_counts" in a:
            assert np.all(a[f"{name}/sparsest_counts"] <= a[f"{name}/sparsified_counts"])
        obj_change = max(obj_change, float(np.max(
            np.abs(a[f"{name}/sparsified_objective"] - a[f"{name}/objective"])
            / a[f"{name}/objective"])))
print(f"{n_counts} counts: {above} above rank(Phi) rank(Psi), {below_psi} below rank(Psi), "
      f"{below_generic} below the generic bound rank(Phi)")
print(f"CHECK counts_above_rank_bound = {above}")
print(f"CHECK counts_below_rank_psi = {below_psi}")
print(f"CHECK sparsify_rel_objective_change = {obj_change:.3e}")
assert above == 0 and below_psi == 0 and below_generic == 0
assert obj_change < 1e-5  # the solver's certified gap is 1e-6

bf = metrics["bruteforce"]["panels"]
n_cols = cfgs["bruteforce"].bruteforce.n
frac = np.mean([np.mean(arrays["bruteforce"][f"{name}/sparsest_counts"] > n_cols) for name in bf])
print(f"Fig. 5: the sparsest optimum needs more than N = {n_cols} columns in {100 * frac:.0f} % "
      "of the trials")

# %% [markdown]
# ## Independent checks of the solvers
#
# **Constrained (the histograms' solver).** `solve_constrained` returns a dual point Λ besides V.
# Weak duality (`docs/paper.md` §4.1) makes any Λ with max_k ‖Λφ_k‖ ≤ 1 a proof:
# ⟨Λ, Ψ⟩ ≤ Σ_k ‖v_k‖ for every feasible V. We recompute primal, residual and the (rescaled) dual
# bound in NumPy on a fresh problem of the Fig. 3 shape, without trusting the solver's own numbers.

# %%
c3 = cfgs["random"].random
Phi, Psi = (np.asarray(x[0], np.float64) for x in random_problems(
    jax.random.key(2305), 1, d_out=c3.d_out, k=c3.k, n=c3.n_values[-1]))
res = lasso.solve_constrained(Phi, Psi, tol=1e-6)
V, Lam = np.asarray(res.V, np.float64), np.asarray(res.Lambda, np.float64)
primal = float(np.linalg.norm(V, axis=0).sum())
dual_norm = float(np.max(np.linalg.norm(Lam @ Phi.T, axis=0)))  # max_k ||Lambda phi_k||
dual = float(np.sum(Lam * Psi)) / max(dual_norm, 1.0)  # scaled to be dual feasible
rel_gap = (primal - dual) / primal
residual = float(np.linalg.norm(V @ Phi - Psi) / np.linalg.norm(Psi))
width = int(lasso.count_nonzero_columns(V))
bound = int(np.linalg.matrix_rank(Phi)) * int(np.linalg.matrix_rank(Psi))
print(f"K={c3.k}, N={Phi.shape[1]}, D={c3.d_out}: {width} nonzero columns (bound {bound}), "
      f"objective {primal:.6f} >= dual bound {dual:.6f}, relative gap {rel_gap:.1e}, "
      f"relative residual {residual:.1e}")
print(f"CHECK constrained_rel_gap_numpy = {rel_gap:.3e}")
assert 0 <= rel_gap < 1e-5 and residual < 1e-8 and width <= bound

# %% [markdown]
# **Penalized, against scikit-learn.** vvjax's penalized lasso
# $\frac{1}{2N}\|V\Phi - \Psi\|_F^2 + \lambda\sum_k\|v_k\|_2$ is scaled like scikit-learn's
# `MultiTaskLasso(alpha=λ)` on X = Φᵀ, Y = Ψᵀ (§4.2). Both solve the same problem; the objectives
# must agree, and vvjax's (certified to 1e-8) must not be above scikit-learn's. A penalized
# solution solves the constrained problem for its own fit Ψ̂ = VΦ, so `sparsify` brings it within
# rank(Φ)·rank(Ψ̂) columns at the same objective (§4.2, §4.4).

# %%
lam = 0.1 * lasso.lam_max(Phi, Psi)
N = Phi.shape[1]


def objective(V):
    V = np.asarray(V, np.float64)
    return (0.5 / N * np.sum((V @ Phi - Psi) ** 2) + lam * np.linalg.norm(V, axis=0).sum())


pen = lasso.solve_penalized(Phi, Psi, lam, tol=1e-8)
sk = MultiTaskLasso(alpha=lam, fit_intercept=False, tol=1e-12, max_iter=100_000).fit(Phi.T, Psi.T)
p_vv, p_sk = objective(pen.V), objective(sk.coef_)
rel_diff = abs(p_vv - p_sk) / p_sk
Vs = np.asarray(lasso.sparsify(pen.V, Phi), np.float64)
fit = np.asarray(pen.V, np.float64) @ Phi
bound_fit = int(np.linalg.matrix_rank(Phi)) * int(np.linalg.matrix_rank(fit))
print(f"lam = 0.1 lam_max: vvjax {p_vv:.10f} ({pen.n_nonzero} columns, gap {pen.rel_gap:.0e}), "
      f"scikit-learn {p_sk:.10f} ({int(np.sum(np.linalg.norm(sk.coef_, axis=0) > 0))} columns)")
print(f"sparsify: {int(lasso.count_nonzero_columns(Vs))} columns <= rank(Phi) rank(fit) = "
      f"{bound_fit}, objective {objective(Vs):.10f}")
print(f"CHECK penalized_sklearn_rel_objective_diff = {rel_diff:.3e}")
assert pen.converged and rel_diff < 1e-6 and p_vv <= p_sk * (1 + 1e-8)
assert lasso.count_nonzero_columns(Vs) <= bound_fit
assert abs(objective(Vs) - p_vv) <= 1e-6 * p_vv
