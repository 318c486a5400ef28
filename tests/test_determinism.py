"""Same call, same numbers: whatever the worker threads and the machine's core count (CPU)."""

import os
import shutil
import subprocess
import sys

import pytest

# One process per (cores, workers): fit_batch on the paper's problem in float32 (where the old
# core-count-dependent grouping drifted by ~1e-4), minibatch and full-batch training of a digits
# MLP (full batch: a gradient contracting over 1347 samples, which XLA:CPU would otherwise split
# across its threads). Prints a hash of every parameter and curve.
CHILD = """
import sys, hashlib, numpy as np, jax
jax.config.update("jax_enable_x64", False)
from flax import nnx
from vvjax import data, train, models
workers = int(sys.argv[1])
h = hashlib.sha256()
def add(*arrs):
    for a in arrs:
        h.update(np.ascontiguousarray(np.asarray(a)).tobytes())
p = data.paper_neuron_sharing()
ms, H = train.fit_batch(models.ShallowVVNet.from_params(p.student), p.X, p.Y, steps=2000, lr=0.2,
                        lam=np.geomspace(1e-5, 1e-3, 5), regularizer="prox", workers=workers,
                        log_every=1000)
add(*[m.V[...] for m in ms], H.loss, H.n_active)
d = data.digits()
for bs in (128, None):
    m, hh = train.fit(models.DeepVVNet([64, 128, 128, 10], rngs=nnx.Rngs(0)), d.X_train,
                      d.Y_train, steps=40, lr=1e-3, optimizer="adam", loss="cross_entropy",
                      batch_size=bs, regularizer="weight_decay", lam=1e-4, key=0, log_every=20)
    add(hh.loss, *jax.tree.leaves(nnx.state(m)))
print(h.hexdigest())
"""


def _run(workers, cpus=None):
    cmd = [sys.executable, "-c", CHILD, str(workers)]
    if cpus is not None:
        cmd = ["taskset", "-c", cpus, *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip()


@pytest.mark.slow
def test_same_numbers_for_any_workers_and_core_count():
    runs = {"workers=1": _run(1), "workers=2": _run(2), "workers=4": _run(4)}
    if shutil.which("taskset") and len(os.sched_getaffinity(0)) >= 2:
        first = min(os.sched_getaffinity(0))
        runs["1 core, workers=2"] = _run(2, str(first))
    assert len(set(runs.values())) == 1, runs
