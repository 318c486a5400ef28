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
# # Layer widths of deep networks against the bounds
#
# Shenouda, Parhi, Lee & Nowak (JMLR 2024, arXiv 2305.16534), **width bounds for homogeneous
# layers** (`docs/paper.md` §6): in a deep ReLU network trained with weight decay, fix everything
# except one hidden layer's incoming scales and outgoing weights. The network's outputs on the
# training data then depend only on $u_k = \|(w_k, b_k)\|\,v_k$, and weight decay charges
# $\lambda\sum_k \|u_k\|_2$: at a global minimizer the outgoing weights solve the constrained
# multi-task lasso
#
# $$\min_U \sum_k \|u_k\|_2 \quad\text{s.t.}\quad U\tilde\Phi^{(l)} = \Psi^{(l)},$$
#
# with $\tilde\Phi^{(l)}$ the layer's features on the N training samples (unit-norm incoming
# rows) and $\Psi^{(l)}$ the next layer's pre-activations. By the multi-task lasso sparsity
# theorem (§4.4) some optimal layer has at most
# $\mathrm{rank}(\Phi^{(l)})\,\mathrm{rank}(\Psi^{(l)}) \le N^2$ neurons; for the last hidden layer
# $\mathrm{rank}(\Psi) \le D$, so the bound is at most $\mathrm{rank}(\Phi)\cdot D$.
#
# `experiments/deep_widths.py` trains `DeepVVNet`s of 2, 3 and 4 hidden layers (width 64, weight
# decay on weights and biases, Adam) for a grid of λ × seeds, and records per hidden layer the
# **learned width** (active neurons), the **rank bound** rank(Φ)·rank(Ψ) and the **certified
# width**: the constrained problem above re-solved on the layer's active neurons to a certified
# duality gap, then `vvjax.lasso.sparsify`. That is the width of a layer with the same outputs on
# the data and no larger penalty, at most the rank bound. This notebook runs the experiment's two
# synthetic presets through the same runner (`vvjax.runs.run_deep_widths`), reads them back with
# `vvjax.results.load_sweep` and draws them with `vvjax.plots.deep_widths`. The full setting
# (teacher and random labels, 24 members) takes 1-1.5 minutes on 2 cores; `VVJAX_SMOKE=1` runs
# the `debug=smoke` sizes (teacher data, N=8, width 12, depths 2 and 3; seconds).

# %%
import os
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from hydra import compose, initialize_config_dir

import vvjax
from vvjax import results
from vvjax.configs import register_configs, to_config
from vvjax.plots import deep_widths as plots
from vvjax.runs import run_deep_widths

SMOKE = os.environ.get("VVJAX_SMOKE") == "1"
# The repository's conf/ folder (vvjax is installed in editable mode from the repository).
CONF = Path(vvjax.__file__).resolve().parent.parent / "conf" / "deep_widths"
PRESETS = ("default",) if SMOKE else ("default", "random")  # teacher data; random labels

register_configs()


def config(preset):
    """The checked config of `python experiments/deep_widths.py preset=<preset>`."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return to_config(compose("config", overrides=[f"preset={preset}",
                                                      *(["debug=smoke"] if SMOKE else [])]))


cfgs = {p: config(p) for p in PRESETS}
for p, cfg in cfgs.items():
    print(f"preset={p}: {cfg.data.kind} data, N={cfg.data.n}, d={cfg.data.d_in}, "
          f"D={cfg.data.d_out}; depths {cfg.depths}, width {cfg.hidden_width}, lambdas "
          f"{cfg.lams} x seeds {cfg.seeds}, {cfg.steps} {cfg.optimizer} steps")

# %% [markdown]
# ## Run, then read the results back
#
# One job per data kind; inside it, the λ × seed grid of each depth trains as one
# `vvjax.train.fit_batch`. `vvjax.results.load_sweep` reads every finished job under a folder and
# gives one row per member (depth, λ, seed), with the per-layer quantities as lists over the
# hidden layers.

# %%
sweep = Path(tempfile.mkdtemp(prefix="deep_widths_"))
for p, cfg in cfgs.items():
    run_deep_widths(cfg, sweep / p)
rows = results.load_sweep(sweep)
df = pd.DataFrame(rows)
print(len(df), "members;", df.groupby("kind")["status"].value_counts().to_dict())
cols = ["kind", "depth", "lam", "init_seed", "status", "n_active", "certified_width",
        "rank_bound", "certified_width_penalized"]
print(df[cols].to_string(index=False))

# %% [markdown]
# ## The figure
#
# Per panel (one per depth) and hidden layer: the median learned width, certified width and
# rank bound over the members whose training converged (status `ok`; the others are counted in
# the title), with N² and the trained width 64. The rank bound is far below N² for inner layers of
# deeper networks (their representations have low rank), and in the last hidden layer it is
# rank(Φ)·D: that is where it binds, and trained layers sit above it while the certified widths
# never do. Random labels do not converge in 6,000 steps: they are flagged, and their panels are
# empty.

# %%
for kind, g in df.groupby("kind"):
    cfg = next(c for c in cfgs.values() if c.data.kind == kind)
    plots.widths_figure(g.to_dict("records"), n=cfg.data.n, hidden_width=cfg.hidden_width,
                        title=f"{kind}, N={cfg.data.n}, D={cfg.data.d_out}")
    plt.show()

# %% [markdown]
# ## The bound on every layer of every member
#
# `sparsify` turns any feasible re-fit into one with at most rank(Φ)·rank(Ψ) neurons at no larger
# penalty (the theorem's proof, §4.4), so the bound must hold for the certified widths of every
# layer of every member, converged or not: certified ≤ rank(Φ)·rank(Ψ) ≤ N², certified ≤ learned
# (the problem is posed on the active neurons), and rank(Ψ) ≤ D in the last hidden layer. Learned
# widths may exceed the rank bound (training stops at a wider stationary point); they are
# counted, not hidden.
#
# The trained layer is itself a feasible point of its constrained problem, so the re-fit's
# Σ‖u_k‖ can be no larger than the trained one's, up to the solver's certified gap (1e-6): how
# much smaller it is measures how far training is from the layer's optimum. The runner keeps the
# better of the solver's point and the trained layer before sparsifying, so the re-fit's penalty
# never exceeds the trained one (up to rounding). Whether the solve also *proved* its point optimal
# is recorded per layer (`constrained_certified`: the duality gap plus the dual point's
# infeasibility on the given features within 1e-6 in `lasso_max_iter` ADMM iterations). Post-ReLU
# features of deep layers are nearly rank deficient (condition numbers up to ~1e13), where the dual
# certificate holds only within rounding of order eps·cond(Φ) (`vvjax.lasso.ConstrainedResult`);
# those layers are counted as not proved optimal, never hidden.

# %%
n_layers = cert_above = learned_above = bad_order = last_psi_above_d = 0
certified, excess = 0, []
for r in rows:
    N, D = r["n"], r["d_out"]
    for l in range(r["depth"]):
        n_layers += 1
        learned, bound, cert = r["n_active"][l], r["rank_bound"][l], r["certified_width"][l]
        learned_above += learned > bound
        cert_above += cert > bound
        bad_order += not (r["rank_phi"][l] <= N and r["rank_psi"][l] <= N and bound <= N * N
                          and cert <= learned)
        certified += r["constrained_certified"][l]
        if r["trained_layer_norm"][l] > 0:
            excess.append((r["certified_layer_norm"][l] - r["trained_layer_norm"][l])
                          / r["trained_layer_norm"][l])
    last_psi_above_d += r["rank_psi"][-1] > D
excess = np.array(excess)
print(f"{n_layers} hidden layers in {len(rows)} members: certified width above its rank bound "
      f"in {cert_above}, learned width above it in {learned_above}; constrained solve proved "
      f"optimal on {certified} of {n_layers}")
print(f"re-fit penalty / trained penalty - 1: median {np.median(excess):.1e}, largest "
      f"{excess.max():.1e}")
print(f"CHECK certified_above_rank_bound = {cert_above}")
print(f"CHECK last_layer_rank_psi_above_d = {last_psi_above_d}")
print(f"CHECK certified_norm_excess = {excess.max():.3e}")
assert cert_above == 0 and bad_order == 0 and last_psi_above_d == 0
assert excess.max() <= 1e-9

# %% [markdown]
# ## The last hidden layer as a penalized lasso
#
# With the squared loss and an unregularized output bias, the last hidden layer's subproblem is
# exactly a penalized multi-task lasso at λ' = λD/2 (§4.3, §6). Re-solved over all 64 neurons
# (not only the active ones), it lands on the width below; it is again within the rank bound of
# its own fit (recorded as `certified_bound_penalized`) where its gap was certified.

# %%
pen = df[df["penalized_converged"] == True]  # noqa: E712 (a pandas mask)
pen_above = int((pen["certified_width_penalized"] > pen["certified_bound_penalized"]).sum())
print(f"penalized re-solve certified on {len(pen)} of {len(df)} members; width "
      f"{pen['certified_width_penalized'].min()}-{pen['certified_width_penalized'].max()}, "
      f"above its bound on {pen_above}")
print(f"CHECK penalized_above_bound = {pen_above}")
assert pen_above == 0
