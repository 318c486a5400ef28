"""Speed of a width-sweep job's training: the in-job fit_batch against one fit per member.

    python benchmarks/width_sweep_speed.py     # N=16, D=4, random labels, 32 members
    python benchmarks/width_sweep_speed.py --n 8 --d-out 8 --steps 20000

Builds the members of one job of ``experiments/width_sweep.py`` (its default lambda x seed grid,
student width min(N^2, N D) + N, the job's learning rates) and trains them twice, in one process:

1. ``train.fit_batch`` over all members (what the runner does);
2. the same members one ``train.fit`` call after another;
3. for reference, ``fit_batch(group_size=B)``: all members in one vmapped program (the default on
   an accelerator; on the CPU not bit for bit equal to single fits, so the runner does not use it).

Both are timed after a warm-up that compiles their programs (short runs of the same shapes), so
the numbers are steady-state training speed; the output is member-steps per second for each and
their ratio, and whether the trained weights agree bit for bit (they must). The ratio is what the
batch buys on this machine: on the CPU, fit_batch runs one program per member in one thread per
core (:func:`vvjax.train.default_workers`), so expect about the number of cores available.
Report the machine's load (``uptime``) with the numbers.
"""

import argparse
import os
import time

import jax
import numpy as np

from vvjax import train
from vvjax.runs.width_sweep import (
    SweepDataConfig,
    WidthSweepConfig,
    initial_models,
    load_data,
    student_width,
)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--d-out", type=int, default=4)
    ap.add_argument("--kind", default="random", choices=("teacher", "random"))
    ap.add_argument("--steps", type=int, default=10_000)
    ap.add_argument("--precision", default="float64", choices=("float32", "float64"))
    args = ap.parse_args(argv)
    jax.config.update("jax_enable_x64", args.precision == "float64")
    cfg = WidthSweepConfig(data=SweepDataConfig(kind=args.kind, n=args.n, d_out=args.d_out),
                           steps=args.steps, precision=args.precision)
    dtype = np.float64 if args.precision == "float64" else np.float32
    X, Y, *_ = load_data(cfg.data, dtype)
    K, _, _ = student_width(cfg)
    inits, lrs = initial_models(cfg, K, X, dtype)
    grid = [(lam, i) for lam in cfg.lams for i in range(len(cfg.seeds))]
    members = [inits[i] for _, i in grid]
    lr = np.asarray([lrs[i] for _, i in grid])
    lam = np.asarray([g[0] for g in grid])
    # the runner's options (default chunk: its compiled program does not depend on `steps`, so
    # the short warm-up below compiles exactly the programs timed later)
    kw = dict(regularizer=cfg.regularizer, optimizer=cfg.optimizer, decay="weights_and_biases",
              log_every=cfg.log_every)
    B = len(members)
    uptime = os.getloadavg()
    print(f"job: {args.kind} N={args.n} D={args.d_out} width {K}, {B} members, {args.steps} steps,"
          f" {args.precision}; {train.default_workers(B)} worker threads; load average "
          f"{uptime[0]:.2f} {uptime[1]:.2f} {uptime[2]:.2f}")
    n_warm = cfg.log_every  # one chunk: compiles every program timed below
    train.fit_batch(members, X, Y, steps=n_warm, lr=lr, lam=lam, **kw)
    train.fit(members[0], X, Y, steps=n_warm, lr=float(lr[0]), lam=float(lam[0]), **kw)
    train.fit_batch(members, X, Y, steps=n_warm, lr=lr, lam=lam, **kw, group_size=B)

    t = time.perf_counter()
    batch, _ = train.fit_batch(members, X, Y, steps=args.steps, lr=lr, lam=lam, **kw)
    t_batch = time.perf_counter() - t
    t = time.perf_counter()
    singles = [train.fit(m, X, Y, steps=args.steps, lr=float(r), lam=float(l), **kw)[0]
               for m, r, l in zip(members, lr, lam, strict=True)]
    t_single = time.perf_counter() - t
    same = all(np.array_equal(np.asarray(a.V[...]), np.asarray(b.V[...]))
               for a, b in zip(batch, singles, strict=True))
    t = time.perf_counter()
    vm, _ = train.fit_batch(members, X, Y, steps=args.steps, lr=lr, lam=lam, **kw, group_size=B)
    t_vmap = time.perf_counter() - t
    diff = max(float(np.max(np.abs(np.asarray(a.V[...]) - np.asarray(b.V[...]))))
               for a, b in zip(vm, singles, strict=True))
    ms_batch, ms_single = B * args.steps / t_batch, B * args.steps / t_single
    print(f"fit_batch (in-job):      {t_batch:7.2f} s  {ms_batch:10.0f} member-steps/s")
    print(f"one fit per member:      {t_single:7.2f} s  {ms_single:10.0f} member-steps/s")
    print(f"ratio batch / single:    {ms_batch / ms_single:.2f}x; weights bit for bit equal: "
          f"{same}")
    print(f"one vmapped program (group_size={B}, not the runner's default): {t_vmap:7.2f} s  "
          f"{B * args.steps / t_vmap:10.0f} member-steps/s; max |V - V_single| {diff:.1e}")


if __name__ == "__main__":
    main()
