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
# # Learned widths against the bounds
#
# How wide are the networks that weight decay learns, against the representer bound
# $\min(N^2, ND)$ and the data-dependent bound $\mathrm{rank}(\Phi)\,\mathrm{rank}(\Psi)$
# (arXiv 2305.16534; `docs/paper.md` §4.4, §5)? `experiments/width_sweep.py` trains, for every
# (N, D, data kind), a grid of λ × seeds in one `fit_batch`, and records per member the learned
# width, the certified width (the output layer re-solved as a multi-task lasso, then sparsified)
# and both bounds. When the multirun ends, `experiments/aggregate.py` writes `summary.csv`: one
# row per (job, λ, seed).
#
# This notebook reads a finished sweep with pandas. Point `VVJAX_SWEEP_DIR` at one
# (`multirun/width_sweep/<date>`); without it, it runs the default sweep first (about 10 minutes
# on 2 cores), or with `VVJAX_SMOKE=1` a tiny one (seconds).

# %%
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

import vvjax
from vvjax.plots import width_sweep as plots

SMOKE = os.environ.get("VVJAX_SMOKE") == "1"
ROOT = Path(vvjax.__file__).resolve().parent.parent  # the repository (editable install)
sweep = os.environ.get("VVJAX_SWEEP_DIR")
if sweep is None:
    sweep = Path(tempfile.mkdtemp(prefix="width_sweep_")) / "sweep"
    extra = (["debug=smoke", "data.n=3,5", "data.d_out=1,2", "data.kind=teacher"] if SMOKE
             else [])
    subprocess.run([sys.executable, str(ROOT / "experiments" / "width_sweep.py"), "-m",
                    f"hydra.sweep.dir={sweep}", *extra], check=True, capture_output=True)
sweep = Path(sweep)
print("sweep folder:", sweep)

# %% [markdown]
# `summary.csv` needs no post-processing: scalars are columns, list-valued metrics (the
# per-output counts) are JSON text, and members without a certified width (the ‖·‖_{M,1}
# penalty, non-homogeneous activations) have empty cells.

# %%
df = pd.read_csv(sweep / "summary.csv")
print(len(df), "members in", df["job"].nunique(), "jobs")
if SMOKE and "VVJAX_SWEEP_DIR" not in os.environ:  # 4 jobs x (2 lambdas x 2 seeds)
    assert (len(df), df["job"].nunique()) == (16, 4)
print(df[["kind", "n", "d_out", "lam", "init_seed", "status", "n_active", "certified_width",
          "sparsified_width", "rank_bound", "representer_bound_sharp"]].head(8).to_string())

# %% [markdown]
# The sparsity theorem in numbers: on every member the certified width is at most
# rank(Φ)·rank(Ψ), which is at most min(N², ND). The learned width can be larger: training stops
# before pruning has finished (such members are counted, not hidden).

# %%
vv = df[df["sparsified_width"].notna()]
assert (vv["sparsified_width"] <= vv["rank_bound"]).all()
cert = df[df["lasso_converged"] == True]  # noqa: E712 (a pandas mask)
assert (cert["certified_width"] <= cert["certified_bound"]).all()
assert (df["rank_bound"] <= df["representer_bound_sharp"]).all()
n_above = int((df["n_active"] > df["rank_bound"]).sum())
print("CHECK n_certified_members =", len(cert))
print("CHECK n_sparsified_members =", len(vv))
print("CHECK sparsified_above_rank_bound =", int((vv["sparsified_width"] > vv["rank_bound"]).sum()))
print("CHECK certified_above_bound =",
      int((cert["certified_width"] > cert["certified_bound"]).sum()))
print(f"sparsified width <= rank bound on all {len(vv)} members; certified width <= the rank "
      f"bound of its fit on all {len(cert)} members with a certified lasso re-solve")
print(f"learned width above its rank bound: {n_above} of {len(df)} members")
print("members by convergence status:", df["status"].value_counts().to_dict())

# %% [markdown]
# Medians over the members whose training converged (status `ok`), by N and D:

# %%
ok = df[df["status"] == "ok"]
table = ok.groupby(["kind", "d_out", "n"])[["n_active", "certified_width", "rank_bound",
                                             "representer_bound_sharp"]].median()
print(table.to_string())

# %% [markdown]
# The width-against-bound figure: learned (solid) and certified (dashed) width against N, one
# panel per D, with min(N², ND) and the median rank bound.

# %%
fig = plots.width_vs_n_figure(df.to_dict("records"))
plt.show()
