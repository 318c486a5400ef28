"""Training speed: ``vvjax.train`` against the loops researchers write by hand, in one process.

Four sections (all float32 on the CPU; "warm" excludes compilation, "cold" starts from
``jax.clear_caches()``):

1. **shallow** -- the paper's neuron-sharing run (``docs/paper.md`` §7.1): the authors' exact data
   and initialisation, prox/SGD (lr 0.2, lambda 5e-5). ``train.fit`` against a PyTorch loop written
   like the paper's notebook (SGD step; every step the stacked (w_k, b_k) norms, the prox and the
   renormalisation reassigned to ``.data``, and the loss, path norm and active count logged with
   ``.item()``), with torch's default thread count and with 1 thread (the faster counts).
2. **batch** -- 16 lambda values of that problem: ``fit_batch`` (default: one program per member,
   one thread per core; and ``group_size=8``, two vmapped programs) against 16 sequential ``fit``
   calls.
3. **deep** -- a deep teacher problem: N=200 inputs in 2-D, labels from a random 2-16-16-3 ReLU
   teacher, student 2-64-64-3, full batch, Adam (lr 1e-3) on MSE + lam/2 sum_l ||W_l||_F^2
   (lam 1e-4). ``train.fit`` against the standard Flax NNX loop (an ``nnx.jit`` train step with
   ``nnx.Optimizer``, called from Python every step, as in Flax's examples) and a PyTorch eager
   loop, same model, initial weights, steps and dtype (checked to agree after 200 steps).
4. **digits** -- the digits MLP 64-512-512-10 (scikit-learn's digits, 1347 training images),
   minibatches of 128 reshuffled every epoch, Adam (lr 1e-3), cross-entropy + weight decay 1e-4:
   ``train.fit`` against the same Flax and PyTorch loops (shuffling on the host), and the achieved
   GFLOP/s of the training step next to the rate of one large ``jnp.dot`` measured in this run
   and to the rate of the same matrix products alone (one fixed batch, plain SGD, one jitted
   scan): the ceiling XLA:CPU reaches on 128-row products.

Run::

    python benchmarks/train_speed.py [--quick] [--only shallow,batch,deep,digits]
"""

import argparse
import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from vvjax import data, train
from vvjax.models import DeepVVNet, ShallowParams, ShallowVVNet, params_of

LR, LAM = 0.2, 5e-5  # the paper's prox run


def timed(f):
    t = time.perf_counter()
    out = f()
    jax.block_until_ready(jax.tree.leaves(out))
    return time.perf_counter() - t, out


def best_of(f, n=2):
    return min(timed(f)[0] for _ in range(n))


def header(title):
    print(f"\n## {title}")


# ---------------------------------------------------------------- 1. the paper's shallow run

def torch_student(seed=49):
    """The notebook's student: ``torch.manual_seed(49)``, Linear(2, 100), ReLU, Linear(100, 2)
    without bias (the same draw as the shipped ``paper_neuron_sharing().student``)."""
    import torch

    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(2, 100), torch.nn.ReLU(),
                               torch.nn.Linear(100, 2, bias=False))


def torch_prox_train(model, X, Y, steps, lr=LR, reg=LAM):
    """The paper notebook's loop (see the module docstring)."""
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


def shallow_from_torch(model) -> ShallowVVNet:
    W = model[0].weight.detach().numpy()
    bias = model[0].bias.detach().numpy()
    V = model[2].weight.detach().numpy()
    return ShallowVVNet.from_params(ShallowParams(jnp.asarray(W), jnp.asarray(-bias),
                                                  jnp.asarray(V)))


def bench_shallow(quick):
    import torch

    header("1. the paper's neuron-sharing run (N=50, d=D=2, width 100, prox/SGD)")
    paper = data.paper_neuron_sharing(jnp.float32)
    X, Y = np.asarray(paper.X), np.asarray(paper.Y)
    jax_steps, torch_steps = (20_000, 300) if quick else (300_000, 3_000)
    tm = torch_student()
    student = shallow_from_torch(tm)
    torch_prox_train(tm, X, Y, 200)
    ours, _ = train.fit(student, X, Y, steps=200, lr=LR, lam=LAM, regularizer="prox")
    dV = float(np.max(np.abs(np.asarray(ours.V[...]) - tm[2].weight.detach().numpy())))
    print(f"agreement after 200 steps from the same init: max|dV| = {dV:.1e}")

    def fit(steps):
        return train.fit(student, X, Y, steps=steps, lr=LR, lam=LAM, regularizer="prox",
                         log_every=1000, progress=False)

    jax.clear_caches()
    t_cold = timed(lambda: fit(jax_steps))[0]
    t_warm = best_of(lambda: fit(jax_steps))
    per_step = {}
    default_threads = torch.get_num_threads()
    for threads in sorted({default_threads, 1}, reverse=True):
        torch.set_num_threads(threads)
        m = torch_student()
        est = timed(lambda m=m: torch_prox_train(m, X, Y, 50))[0] / 50
        n = int(min(torch_steps, max(100, 2.0 / est)))
        per_step[threads] = best_of(lambda m=m, n=n: torch_prox_train(m, X, Y, n)) / n
    torch.set_num_threads(default_threads)
    best = min(per_step.values())
    ours_warm, ours_cold = t_warm / jax_steps, t_cold / jax_steps
    print(f"{'method':44s} {'us/step':>9s} {'steps/s':>10s}")
    for name, s in [*((f"PyTorch notebook loop, {k} thread(s)", v) for k, v in per_step.items()),
                    ("vvjax fit, cold (incl. compile)", ours_cold), ("vvjax fit, warm", ours_warm)]:
        print(f"{name:44s} {1e6 * s:9.2f} {1 / s:10.0f}")
    print(f"RATIO shallow: vvjax fit / PyTorch notebook loop = {best / ours_warm:.0f}x warm, "
          f"{best / ours_cold:.0f}x incl. compile (target >= 30x; aim 50x); the paper's 10^6 "
          f"steps: {best * 1e6 / 60:.1f} min -> {ours_warm * 1e6:.1f} s")
    return student, X, Y


# ---------------------------------------------------------------- 2. lambda batch

def bench_batch(student, X, Y, quick):
    header("2. 16 lambda values of the paper's problem")
    steps = 1_000 if quick else 20_000
    lams = np.geomspace(1e-6, 1e-3, 16)
    kw = dict(steps=steps, lr=LR, regularizer="prox", log_every=1000, progress=False)

    def batch(group_size):
        return lambda: train.fit_batch(student, X, Y, lam=lams, group_size=group_size, **kw)

    def seq():
        return [train.fit(student, X, Y, lam=float(l), **kw) for l in lams]

    rows = {}
    for name, f in (("16 sequential fit calls", seq),
                    ("fit_batch, group_size=1 (default on CPU)", batch(1)),
                    ("fit_batch, group_size=8 (vmapped)", batch(8))):
        jax.clear_caches()
        cold = timed(f)[0]
        rows[name] = (cold, best_of(f))
    workers = train.default_workers(16)
    print(f"({workers} worker threads; member-steps: 16 x {steps})")
    print(f"{'method':44s} {'cold [s]':>9s} {'warm [s]':>9s} {'us/member-step':>15s}")
    for name, (c, w) in rows.items():
        print(f"{name:44s} {c:9.3f} {w:9.3f} {1e6 * w / (16 * steps):15.2f}")
    s = rows["16 sequential fit calls"][1]
    print(f"RATIO batch: sequential / fit_batch default = "
          f"{s / rows['fit_batch, group_size=1 (default on CPU)'][1]:.2f}x, "
          f"/ group_size=8 = {s / rows['fit_batch, group_size=8 (vmapped)'][1]:.2f}x (warm)")


# ---------------------------------------------------------------- Flax and PyTorch loops

def flax_loop(model, X, Y, steps, *, loss, lam, lr, batch_size=None, seed=0):
    """The standard Flax NNX loop: an ``nnx.jit`` train step called from Python every step."""
    optimizer = nnx.Optimizer(model, optax.adam(lr), wrt=nnx.Param)

    @nnx.jit
    def train_step(model, optimizer, x, y):
        def loss_fn(model):
            pred = model(x)
            if loss == "mse":
                fit = jnp.mean((pred - y) ** 2)
            else:
                fit = optax.softmax_cross_entropy_with_integer_labels(pred, y).mean()
            return fit + 0.5 * lam * sum(jnp.sum(layer.W[...] ** 2) for layer in model.layers)

        value, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads)
        return value

    X, Y = jnp.asarray(X), jnp.asarray(Y)
    rng = np.random.default_rng(seed)
    N = X.shape[0]
    value = None
    if batch_size is None:
        for _ in range(steps):
            value = train_step(model, optimizer, X, Y)
    else:
        step = 0
        while step < steps:
            perm = rng.permutation(N)
            for i in range(0, N, batch_size):
                if step == steps:
                    break
                idx = perm[i:i + batch_size]
                value = train_step(model, optimizer, X[idx], Y[idx])
                step += 1
    jax.block_until_ready(value)
    return model


def torch_mlp(deep_model):
    """A ``torch.nn.Sequential`` MLP with the weights of a vvjax ``DeepVVNet``."""
    import torch

    layers = []
    for i, layer in enumerate(deep_model.layers):
        lin = torch.nn.Linear(layer.W.shape[1], layer.W.shape[0])
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(np.array(layer.W[...])))
            lin.bias.copy_(torch.from_numpy(np.array(layer.b[...])))
        layers.append(lin)
        if i < len(deep_model.layers) - 1:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def torch_loop(model, X, Y, steps, *, loss, lam, lr, batch_size=None, seed=0):
    """A PyTorch eager loop: Adam on the loss plus an explicit lam/2 sum ||W||^2."""
    import torch

    X = torch.from_numpy(np.asarray(X, np.float32))
    Y = torch.from_numpy(np.asarray(Y, np.float32 if loss == "mse" else np.int64))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    weights = [m.weight for m in model if isinstance(m, torch.nn.Linear)]
    fit_fn = torch.nn.MSELoss() if loss == "mse" else torch.nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(seed)
    N, step = X.shape[0], 0
    while step < steps:
        batches = [slice(None)] if batch_size is None else \
            torch.randperm(N, generator=gen).split(batch_size)
        for idx in batches:
            if step == steps:
                break
            out = fit_fn(model(X[idx]), Y[idx]) + 0.5 * lam * sum((w * w).sum() for w in weights)
            opt.zero_grad()
            out.backward()
            opt.step()
            step += 1
    return model


def compare(name, runs, steps):
    """Print one row per method and the ratios against vvjax (warm)."""
    print(f"{'method':44s} {'steps':>7s} {'time [s]':>9s} {'us/step':>9s}")
    for label, t in runs.items():
        print(f"{label:44s} {steps:7d} {t:9.3f} {1e6 * t / steps:9.1f}")
    ours = runs["vvjax fit, warm"]
    ratios = ", ".join(f"{label.split(' loop')[0]} {t / ours:.1f}x" for label, t in runs.items()
                       if "loop" in label)
    print(f"RATIO {name}: time(peer) / time(vvjax fit, warm): {ratios}")


def fastest_threads(run):
    """Best time of ``run()`` over torch's default thread count and 1 thread (small problems often
    run faster on one), the faster count first in the returned ``(time, threads)``."""
    import torch

    default = torch.get_num_threads()
    times = {}
    for threads in sorted({default, 1}, reverse=True):
        torch.set_num_threads(threads)
        times[threads] = best_of(run)
    torch.set_num_threads(default)
    threads = min(times, key=times.get)
    return times[threads], threads


def bench_deep(quick):
    import torch

    header("3. deep teacher problem (N=200, 2-64-64-3, full batch, Adam, weight decay)")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2)).astype(np.float32)
    Y = np.asarray(DeepVVNet([2, 16, 16, 3], rngs=nnx.Rngs(1))(X), np.float32)
    steps = 2_000 if quick else 20_000
    lr, lam = 1e-3, 1e-4

    def student():
        return DeepVVNet([2, 64, 64, 3], rngs=nnx.Rngs(0))

    def ours(n):
        return train.fit(student(), X, Y, steps=n, lr=lr, optimizer="adam",
                         regularizer="weight_decay", lam=lam, log_every=min(n, 1000),
                         progress=False)

    # agreement after 200 steps from the same initial weights
    a, _ = ours(200)
    f = flax_loop(student(), X, Y, 200, loss="mse", lam=lam, lr=lr)
    t = torch_loop(torch_mlp(student()), X, Y, 200, loss="mse", lam=lam, lr=lr)
    W_ours = np.asarray(params_of(a).Ws[1])
    d_flax = np.abs(W_ours - f.layers[1].W[...]).max()
    d_torch = np.abs(W_ours - t[2].weight.detach().numpy()).max()
    print(f"agreement after 200 steps (Adam amplifies float32 rounding): max|dW| vs Flax "
          f"{d_flax:.1e}, vs PyTorch {d_torch:.1e}")
    jax.clear_caches()
    runs = {"vvjax fit, cold (incl. compile)": timed(lambda: ours(steps))[0],
            "vvjax fit, warm": best_of(lambda: ours(steps))}
    flax_loop(student(), X, Y, 10, loss="mse", lam=lam, lr=lr)  # compile the Flax step
    runs["Flax NNX loop (nnx.jit step from Python)"] = best_of(
        lambda: flax_loop(student(), X, Y, steps, loss="mse", lam=lam, lr=lr))
    n_torch = steps // 4
    t_torch, threads = fastest_threads(lambda: torch_loop(torch_mlp(student()), X, Y, n_torch,
                                                          loss="mse", lam=lam, lr=lr))
    runs["PyTorch eager loop"] = t_torch * steps / n_torch
    print(f"(PyTorch timed over {n_torch} steps and scaled; the faster of 1 and "
          f"{torch.get_num_threads()} threads: {threads})")
    compare("deep", runs, steps)
    print("(targets: >= 5x the Flax loop, >= 20x PyTorch)")


def dot_rate():
    """GFLOP/s of one large float32 matrix product on this machine (the CPU's practical peak)."""
    n = 2048
    A = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
    B = jax.random.normal(jax.random.key(1), (n, n), jnp.float32)
    f = jax.jit(jnp.dot)
    f(A, B).block_until_ready()
    t = best_of(lambda: f(A, B), 5)
    return 2 * n ** 3 / t / 1e9


def products_rate(widths, bs, steps):
    """GFLOP/s of the bare training products of an MLP of ``widths`` on one fixed batch of ``bs``
    rows: forward, backward and a plain SGD update in one jitted ``lax.scan`` (no shuffling,
    optimizer state, penalty or logging) -- the rate XLA:CPU reaches on these matrix shapes."""
    keys = jax.random.split(jax.random.key(0), len(widths))
    params = [(jax.random.normal(k, (a, b), jnp.float32) / np.sqrt(a), jnp.zeros(b, jnp.float32))
              for k, a, b in zip(keys, widths[:-1], widths[1:], strict=False)]
    x = jax.random.normal(keys[-1], (bs, widths[0]), jnp.float32)
    y = jax.random.randint(keys[-1], (bs,), 0, widths[-1])

    def loss(ps):
        h = x
        for W, b in ps[:-1]:
            h = jax.nn.relu(h @ W + b)
        logits = h @ ps[-1][0] + ps[-1][1]
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    @jax.jit
    def run(ps):
        def step(ps, _):
            g = jax.grad(loss)(ps)
            return jax.tree.map(lambda p, gp: p - 1e-3 * gp, ps, g), None
        return jax.lax.scan(step, ps, None, length=steps)[0]

    jax.block_until_ready(run(params))
    t = best_of(lambda: jax.block_until_ready(run(params)), 3)
    macs = sum(a * b for a, b in zip(widths[:-1], widths[1:], strict=False))
    return 3 * 2 * bs * macs * steps / t / 1e9


def bench_digits(quick):
    import torch

    header("4. digits MLP 64-512-512-10, minibatch 128, Adam, cross-entropy + weight decay")
    d = data.digits()
    X, Y = d.X_train.astype(np.float32), d.Y_train
    steps = 110 if quick else 1100  # 10 or 100 epochs of 11 minibatches
    lr, lam, bs = 1e-3, 1e-4, 128

    def student():
        return DeepVVNet([64, 512, 512, 10], rngs=nnx.Rngs(0))

    def ours(n):
        return train.fit(student(), X, Y, steps=n, lr=lr, optimizer="adam",
                         loss="cross_entropy", batch_size=bs, regularizer="weight_decay",
                         lam=lam, log_every=n, progress=False)

    jax.clear_caches()
    runs = {"vvjax fit, cold (incl. compile)": timed(lambda: ours(steps))[0],
            "vvjax fit, warm": best_of(lambda: ours(steps))}
    flax_loop(student(), X, Y, 5, loss="ce", lam=lam, lr=lr, batch_size=bs)
    runs["Flax NNX loop (nnx.jit step from Python)"] = best_of(
        lambda: flax_loop(student(), X, Y, steps, loss="ce", lam=lam, lr=lr, batch_size=bs))
    runs["PyTorch eager loop"], threads = fastest_threads(
        lambda: torch_loop(torch_mlp(student()), X, Y, steps, loss="ce", lam=lam, lr=lr,
                           batch_size=bs))
    compare("digits", runs, steps)
    # FLOPs of one step: forward 2 B sum(fan_in fan_out), backward twice that (the first layer's
    # input gradient is not needed, which we ignore: an overestimate of our work by ~4 %)
    macs = 64 * 512 + 512 * 512 + 512 * 10
    flops = 3 * 2 * bs * macs
    ours_rate = flops * steps / runs["vvjax fit, warm"] / 1e9
    peak = dot_rate()
    print(f"achieved {ours_rate:.1f} GFLOP/s in the training step; one 2048^3 jnp.dot: "
          f"{peak:.1f} GFLOP/s")
    bare = products_rate([64, 512, 512, 10], bs, steps)
    print(f"the same products alone (one fixed batch, plain SGD, one jitted scan): {bare:.1f} "
          f"GFLOP/s = {bare / peak:.2f} of the large-dot rate")
    print(f"RATIO digits GFLOP/s: {ours_rate / peak:.2f} of the large-dot rate (target >= 0.5); "
          f"{ours_rate / bare:.2f} of the bare products' rate")
    print(f"(PyTorch: the faster of 1 and {torch.get_num_threads()} threads: {threads})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run with few steps")
    ap.add_argument("--only", default="shallow,batch,deep,digits",
                    help="comma-separated sections to run")
    args = ap.parse_args()
    import torch

    jax.config.update("jax_enable_x64", False)
    sections = set(args.only.split(","))
    print(f"# vvjax.train speed, float32, CPU: jax {jax.__version__} ({jax.default_backend()}), "
          f"flax {__import__('flax').__version__}, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores")
    if sections & {"shallow", "batch"}:
        student, X, Y = bench_shallow(args.quick)
        if "batch" in sections:
            bench_batch(student, X, Y, args.quick)
    if "deep" in sections:
        bench_deep(args.quick)
    if "digits" in sections:
        bench_digits(args.quick)


if __name__ == "__main__":
    main()
