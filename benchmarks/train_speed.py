"""Training-loop speed: ``vvjax.train.fit`` against the paper's PyTorch loop, and a vmapped λ batch.

Problem (PAPER.md Sec. 5.1): the paper's exact data and student initialisation (the authors'
PyTorch draw, ``vvjax.data.paper_neuron_sharing``): N=50 inputs in 2-D, labels from a width-5
teacher with D = 2 outputs, student width 100, prox method (SGD step lr 0.2 on the MSE, group
soft-threshold at lr·λ, unit-norm (w_k, b_k) rows including the bias), λ = 5e-5. Both sides run in
float32 on CPU.

1. steps/s of one ``fit`` against a PyTorch loop written like the paper's notebook
   (``torch.optim.SGD`` on ``nn.MSELoss``; every step the stacked (w_k, b_k) norms, the prox and
   renormalisation reassigned to ``.data``, and the loss, path norm and active count logged with
   ``.item()``, as the authors' ``train_net`` does), timed with torch's default thread count and
   with 1 thread; the ratio uses the faster of the two. Before timing, both run 200 steps from the
   same initial weights and their results are compared, so the two loops are known to compute the
   same thing.
2. 16 λ values as one ``fit_batch`` (default: one vmapped program per CPU core, each in a thread;
   and ``workers=1``, a single vmapped program) against 16 sequential ``fit`` calls.

"warm" times exclude compilation (the program was compiled by an earlier call with the same shapes);
"cold" times start from ``jax.clear_caches()`` and include it. Run::

    python benchmarks/train_speed.py [--quick]
"""

import argparse
import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

from vvjax import data, train
from vvjax.models import ShallowParams, ShallowVVNet

N, D_IN, D_OUT, WIDTH = 50, 2, 2, 100
LR, LAM = 0.2, 5e-5


def make_data():
    """The paper's exact data (the authors' PyTorch draw, shipped with vvjax), float32."""
    paper = data.paper_neuron_sharing(jnp.float32)
    return np.asarray(paper.X), np.asarray(paper.Y)


def torch_student(seed=49):
    """The notebook's student: ``torch.manual_seed(49)``, then Linear(2, 100), ReLU, Linear(100, 2)
    without bias (the same draw as the shipped ``paper_neuron_sharing().student``)."""
    import torch

    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(D_IN, WIDTH), torch.nn.ReLU(),
                               torch.nn.Linear(WIDTH, D_OUT, bias=False))


def torch_train(model, X, Y, steps, lr=LR, reg=LAM):
    """The paper notebook's loop: SGD step on MSELoss, then (per step) the weights and bias stacked,
    their norms, the group soft-threshold of V's columns, the unit-norm (w_k, b_k) reassigned, and
    the active count and path norm logged with ``.item()``."""
    import torch

    X, Y = torch.from_numpy(np.array(X)), torch.from_numpy(np.array(Y))
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    loss_fn = torch.nn.MSELoss()
    losses, path_norm_log, active_log = [], [], []
    tau = lr * reg
    for _ in range(steps):
        loss = loss_fn(model(X), Y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        first, second = model[0], model[2]
        wb = torch.vstack([first.weight.detach().T, first.bias.detach()])  # (d + 1, K)
        wb_norm = torch.linalg.norm(wb, dim=0)
        V = second.weight.detach()  # (D, K): columns v_k
        v_norm = torch.linalg.vector_norm(V, dim=0)
        second.weight.data = torch.where(v_norm <= tau, torch.zeros_like(V),
                                         V - tau * V / torch.clip(v_norm[None, :], min=1e-8))
        first.weight.data = (wb[:-1] / wb_norm).T
        first.bias.data = wb[-1] / wb_norm
        active_log.append(torch.sum(v_norm > 1e-3))
        path_norm_log.append(torch.linalg.norm(second.weight.detach(), dim=0).sum().item())
        losses.append(loss.item())
    return losses


def vvjax_from_torch(model) -> ShallowVVNet:
    W = model[0].weight.detach().numpy()
    bias = model[0].bias.detach().numpy()
    V = model[2].weight.detach().numpy()
    return ShallowVVNet.from_params(ShallowParams(jnp.asarray(W), jnp.asarray(-bias),
                                                  jnp.asarray(V)))


def timed(f):
    t = time.perf_counter()
    out = f()
    jax.block_until_ready(jax.tree.leaves(out))
    return time.perf_counter() - t, out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run with few steps")
    ap.add_argument("--steps", type=int, default=None, help="steps of the single vvjax fit")
    args = ap.parse_args()
    import torch

    jax_steps = args.steps or (20_000 if args.quick else 300_000)
    torch_steps = 300 if args.quick else 3_000
    batch_steps = 1_000 if args.quick else 20_000
    log_every = 1_000
    X, Y = make_data()
    print(f"# vvjax.train speed: N={N}, d=D={D_IN}, width {WIDTH}, prox/SGD lr {LR}, lam {LAM}, "
          "float32, CPU")
    print(f"# jax {jax.__version__} ({jax.default_backend()}), torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores")

    # ---- agreement check: same initial weights, 200 steps each
    tm = torch_student()
    student = vvjax_from_torch(tm)
    torch_train(tm, X, Y, 200)
    ours, _ = train.fit(student, X, Y, steps=200, lr=LR, lam=LAM, regularizer="prox")
    dV = float(np.max(np.abs(np.asarray(ours.V[...]) - tm[2].weight.detach().numpy())))
    dW = float(np.max(np.abs(np.asarray(ours.W[...]) - tm[0].weight.detach().numpy())))
    print(f"agreement after 200 steps from the same init: max|dV| = {dV:.1e}, max|dW| = {dW:.1e}")

    # ---- 1. single fit vs torch loop
    fit = lambda steps, lam=LAM, model=student: train.fit(  # noqa: E731
        model, X, Y, steps=steps, lr=LR, lam=lam, regularizer="prox", log_every=log_every,
        progress=False)
    jax.clear_caches()
    t_cold, _ = timed(lambda: fit(jax_steps))
    t_warm = min(timed(lambda: fit(jax_steps))[0] for _ in range(2))
    rows, torch_per_step = [], {}
    default_threads = torch.get_num_threads()
    for threads in sorted({default_threads, 1}, reverse=True):
        torch.set_num_threads(threads)
        tm = torch_student()
        t_est = timed(lambda m=tm: torch_train(m, X, Y, 50))[0] / 50  # warm-up and estimate
        n = int(min(torch_steps, max(100, 2.0 / t_est)))  # about 2 s per timing at most
        t = min(timed(lambda m=tm, n=n: torch_train(m, X, Y, n))[0] for _ in range(2))
        torch_per_step[threads] = t / n
        rows.append((f"torch loop, {threads} thread(s)" + (" (default)" if threads ==
                                                           default_threads else ""), n, t))
    torch.set_num_threads(default_threads)
    rows += [("vvjax fit, cold (incl. compile)", jax_steps, t_cold),
             ("vvjax fit, warm", jax_steps, t_warm)]
    print(f"\n{'method':46s} {'steps':>8s} {'time [s]':>9s} {'us/step':>9s} {'steps/s':>10s}")
    for name, steps, t in rows:
        print(f"{name:46s} {steps:8d} {t:9.3f} {1e6 * t / steps:9.2f} {steps / t:10.0f}")
    best = min(torch_per_step.values())
    print(f"ratio steps/s vvjax/torch (fastest torch setting): "
          f"warm {best / (t_warm / jax_steps):.0f}x, cold {best / (t_cold / jax_steps):.0f}x; "
          f"vs torch with default threads: warm "
          f"{torch_per_step[default_threads] / (t_warm / jax_steps):.0f}x")
    print("(target >= 50x, warm, against the fastest torch setting)")
    print(f"the paper's 1,000,000 steps: torch {best * 1e6 / 60:.1f} min, "
          f"vvjax {t_warm / jax_steps * 1e6 / 60:.2f} min")

    # ---- 2. 16-lambda batch vs 16 sequential fits
    lams = np.geomspace(1e-6, 1e-3, 16)
    workers = train.default_workers(16)

    def batch(w):
        return lambda: train.fit_batch(student, X, Y, steps=batch_steps, lr=LR, lam=lams,
                                       regularizer="prox", log_every=log_every, progress=False,
                                       workers=w)

    seq = lambda: [fit(batch_steps, lam=float(l)) for l in lams]  # noqa: E731
    jax.clear_caches()
    tb_cold, (P, H) = timed(batch(workers))
    jax.clear_caches()
    t1_cold, (P1, _) = timed(batch(1))
    jax.clear_caches()
    ts_cold, fits = timed(seq)
    tb_warm = min(timed(batch(workers))[0] for _ in range(2))
    t1_warm = min(timed(batch(1))[0] for _ in range(2))
    ts_warm = min(timed(seq)[0] for _ in range(2))
    err = max(float(np.max(np.abs(P.V[i] - m.V[...]))) for i, (m, _) in enumerate(fits))
    err1 = float(np.max(np.abs(P.V - P1.V)))
    print(f"\n16 lambdas in [1e-6, 1e-3], {batch_steps} steps each (max |V_batch - V_seq| = "
          f"{err:.1e}, between the two batch layouts {err1:.1e}; float32)")
    print(f"{'method':46s} {'cold [s]':>9s} {'warm [s]':>9s} {'us/member-step':>15s}")
    for name, tc, tw in (("16 sequential fit calls", ts_cold, ts_warm),
                         ("fit_batch, workers=1 (one vmapped program)", t1_cold, t1_warm),
                         (f"fit_batch, workers={workers} (default here)", tb_cold, tb_warm)):
        print(f"{name:46s} {tc:9.3f} {tw:9.3f} {1e6 * tw / (16 * batch_steps):15.2f}")
    print(f"ratio sequential/batch (default workers={workers}): warm {ts_warm / tb_warm:.2f}x, "
          f"cold {ts_cold / tb_cold:.2f}x (target >= 8x, warm); workers=1: warm "
          f"{ts_warm / t1_warm:.2f}x")
    print("final n_active by lambda:", H.n_active[:, -1].tolist())


if __name__ == "__main__":
    main()
