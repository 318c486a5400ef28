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
# # Compressing a trained network without retraining
#
# Shenouda, Parhi, Lee & Nowak (JMLR 2024, arXiv 2305.16534; `docs/paper.md` §6, §7.5): in a
# network trained with weight decay, the outgoing weights of every ReLU hidden layer solve a
# multi-task lasso. So a layer can be shrunk by a convex problem, with no retraining: with
# `Phi` (K x N) the layer's post-activations on the training inputs and `Psi = W_next Phi` the
# next layer's pre-activations (minus its bias), solve
#
# $$\min_V \frac{1}{2N}\|V\Phi - \Psi\|_F^2 + \lambda \sum_k \|v_k\|_2$$
#
# and delete the neurons whose column `v_k` is zero. `vvjax.compress` solves it to a certified
# duality gap, hands back a **smaller network of the same class**, and measures the baselines
# (magnitude, activation importance, interpolative decomposition, greedy OBS, neuron merging)
# beside it. This notebook walks through one digits classifier; `experiments/compress.py` runs the
# full 3-seed table. Set `VVJAX_SMOKE=1` for a seconds-long run.

# %%
import os
import tempfile
from pathlib import Path

import jax
import matplotlib.pyplot as plt
import numpy as np

from vvjax import checkpoint, compress, data
from vvjax.compress.layers import zero_columns
from vvjax.models import deep_forward
from vvjax.runs.train_classifier import ClassifierConfig, train_classifier

jax.config.update("jax_enable_x64", True)  # the lasso's 1e-6 certificates need float64
SMOKE = os.environ.get("VVJAX_SMOKE") == "1"

# %% [markdown]
# ## A weight-decayed classifier
#
# The default recipe of `experiments/train_classifier.py`: an MLP 64-512-512-10 on scikit-learn's
# digits, cross-entropy plus weight decay 5e-3 (λ/2·‖W‖² on every weight matrix), Adam, 2000
# minibatch steps (about 10 s on 2 cores; smoke: a 64-48-48-10 net, 300 steps).

# %%
d = data.digits()
recipe = ClassifierConfig(hidden=[48, 48], steps=300) if SMOKE else ClassifierConfig()
model, history = train_classifier(recipe, d, seed=0)
acc = float(np.mean(np.asarray(model(d.X_test)).argmax(1) == d.Y_test))
print(f"{model.widths}: test accuracy {100 * acc:.2f} %")

# %% [markdown]
# ## Compress the last hidden layer to 10 % of its width
#
# `width=k` searches λ (the support size is not monotone along the λ path) and returns exactly k
# neurons when some λ gives k. Every solve carries its duality-gap certificate.

# %%
K = model.widths[2]
k = max(2, K // 10)
res = compress.compress(model, d.X_train, width=k, Y=d.Y_train, X_test=d.X_test,
                        Y_test=d.Y_test)
lc = res.layers[0]
print(f"layer {lc.layer}: {lc.width_before} -> {lc.width_after} neurons "
      f"({lc.n_never_active} never active), lam = {lc.lam:.3g} = "
      f"{lc.lam / lc.lam_max:.2e} lam_max, relative duality gap {lc.rel_gap:.1e}, "
      f"{lc.n_solves} certified solves in {lc.solver_time_s:.2f} s")
print(f"test accuracy {100 * res.test_before.accuracy:.2f} -> "
      f"{100 * res.test_after.accuracy:.2f} %, train loss {res.train_before.loss:.4f} -> "
      f"{res.train_after.loss:.4f}")
print(f"largest output change: train {res.max_output_change_train:.3f}, "
      f"test {res.max_output_change_test:.3f}; ||V Phi - Psi|| / ||Psi|| = "
      f"{lc.reconstruction_error:.3f}")
print(f"parameters {res.params_before} -> {res.params_after}; inference "
      f"{1e3 * res.inference_time_before_s:.2f} -> {1e3 * res.inference_time_after_s:.2f} ms")

# %% [markdown]
# The smaller network is a plain `DeepVVNet`; its outputs equal those of the original-width
# network whose outgoing weights are the lasso's `V` (zero columns and all), on any input:

# %%
X_any = np.random.default_rng(0).uniform(0, 1, size=(500, 64))
zero = zero_columns(model, lc.layer, lc.V)
gap = np.abs(np.asarray(res.model(X_any)) - np.asarray(deep_forward(zero, X_any))).max()
print(type(res.model).__name__, res.model.widths, f"max difference {gap:.1e}")
print(f"CHECK smaller_vs_zero_columns_max_diff = {gap:.3e}")
print(f"CHECK lasso_rel_gap = {lc.rel_gap:.3e}")

# %% [markdown]
# ## The baselines at the same width
#
# Each with its own compensation and with a least-squares refit of the next layer. The relaxed
# lasso (`refit=True`) keeps the lasso's neurons and refits their weights.

# %%
rows = [("lasso", res), ("lasso+refit", compress.compress(
    model, d.X_train, width=k, refit=True, Y=d.Y_train, X_test=d.X_test, Y_test=d.Y_test,
    time_inference=False))]
for method in compress.BASELINES:
    for refit in ((False,) if method == "merge" else (False, True)):
        r = compress.prune(model, d.X_train, method=method, width=lc.width_after, refit=refit,
                           Y=d.Y_train, X_test=d.X_test, Y_test=d.Y_test, time_inference=False)
        rows.append((r.layers[0].method, r))
print(f"{'method':<22}{'width':>6}{'test acc %':>12}{'max change (train)':>20}")
for name, r in rows:
    print(f"{name:<22}{r.layers[0].width_after:>6}{100 * r.test_after.accuracy:>12.2f}"
          f"{r.max_output_change_train:>20.3f}")

# %% [markdown]
# ## Accuracy against kept width
#
# `compress.sweep` runs many methods at many widths on one layer and shares the work (one cache of
# certified solves, one OBS elimination).

# %%
widths = sorted({max(1, int(round(f * K))) for f in (0.02, 0.05, 0.1, 0.2)})
methods = ["lasso", "lasso+refit", "magnitude", "magnitude+refit", "obs"]
out = compress.sweep(model, d.X_train, widths=widths, methods=methods, Y=d.Y_train,
                     X_test=d.X_test, Y_test=d.Y_test)
fig, ax = plt.subplots(figsize=(6, 3.8))
for m in methods:
    ax.plot([r.layers[0].width_after for r in out[m]],
            [100 * r.test_after.accuracy for r in out[m]], marker="o", label=m)
ax.axhline(100 * acc, color="black", linestyle=":", label="uncompressed")
ax.set_xscale("log")
ax.set_xlabel("neurons kept in the last hidden layer")
ax.set_ylabel("test accuracy (%)")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## Both hidden layers, then save and load
#
# Layers are compressed in order, each `Phi` computed from the network compressed so far. The
# checkpoint stores the widths and activation, so the smaller model loads with no hand-edited
# class; the kept indices travel in its metadata.

# %%
both = compress.compress(model, d.X_train, layers=[0, 1], width=[k, k], refit=True, Y=d.Y_train,
                         X_test=d.X_test, Y_test=d.Y_test)
print(f"{both.widths_before} -> {both.widths_after}: test accuracy "
      f"{100 * both.test_before.accuracy:.2f} -> {100 * both.test_after.accuracy:.2f} %")
path = both.save(Path(tempfile.mkdtemp()) / "digits_small.vvjax")
loaded = checkpoint.load(path)
assert np.array_equal(np.asarray(loaded(d.X_test)), np.asarray(both.model(d.X_test)))
meta = checkpoint.read_metadata(path)["compressed"]
print(loaded.widths, [len(layer["kept"]) for layer in meta["layers"]])
