"""Compression speed: the lasso path of a trained layer, a VGG-sized head, and the whole experiment.

Three sections, in one process (float64; medians of ``--repeats`` runs where it says so):

1. **path** -- the last hidden layer of the digits MLP 64-512-512-10 (the
   ``experiments/compress.py`` recipe, seed 0: K=512 neurons, N=1347 training images, D=10
   logits; a post-ReLU Gram matrix with a large condition number): the full warm-started lambda
   path, 30 values from ``lam_max`` down to ``1e-3 lam_max``, every solve to a relative duality
   gap <= 1e-6, by ``vvjax.lasso.lasso_path`` (first call, with compilation, and steady state)
   and by the layer solver of ``vvjax.compress`` (the same solves on the moment-equivalent data,
   then one certificate on the full data); against scikit-learn's ``MultiTaskLasso`` handed the
   Gram/Cholesky-reduced problem (512 x 512, reduction included), warm-started along the same
   path with the tolerance that means rel_gap <= 1e-6. Every solution's gap is recomputed here
   from the full data (``benchmarks/lasso_speed.py``'s ``rel_gap``).
2. **head** -- a VGG-sized classifier head, K=512, N=50,000, D=10 (instance A of
   ``benchmarks/lasso_speed.py``: post-ReLU Gaussian features, lam = 0.2 lam_max; no VGG is
   shipped, so the features are synthetic): one lasso step, vvjax's solver and the compression
   layer solver beside scikit-learn, celer and skglm (``lasso_speed.bench_instance``).
3. **e2e** -- the whole default ``experiments/compress.py`` run (train 3 seeds, compress, every
   baseline, tables, plots) timed end to end.

    python benchmarks/compress_speed.py [--only path,head,e2e] [--repeats 3] [--quick]
"""

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402

from vvjax import data, lasso  # noqa: E402
from vvjax.compress import layer_problem  # noqa: E402
from vvjax.compress.lasso_layer import LayerLasso  # noqa: E402
from vvjax.compress.layers import single_blas_thread  # noqa: E402
from vvjax.runs.train_classifier import ClassifierConfig, train_classifier  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import lasso_speed  # noqa: E402

TOL = 1e-6
N_LAMS = 30


def header(title):
    print(f"\n## {title}", flush=True)


def load_avg():
    try:
        return os.getloadavg()
    except OSError:
        return None


def digits_layer(quick=False):
    """Phi, Psi of the last hidden layer of the trained digits MLP (seed 0)."""
    ds = data.digits()
    cfg = ClassifierConfig(hidden=[64, 64] if quick else [512, 512],
                           steps=200 if quick else 2000)
    model, _ = train_classifier(cfg, ds, 0)
    prob = layer_problem(model, ds.X_train, 1)
    return prob


def sklearn_path_reduced(Phi, Psi, lams):
    """scikit-learn's MultiTaskLasso on the Gram/Cholesky reduction, warm-started along lams."""
    from sklearn.linear_model import MultiTaskLasso

    K, N = Phi.shape
    Xr, Yr = lasso_speed._reduce(Phi, Psi)
    tol = lasso_speed._reduced_tol(Psi, Yr, N, K)
    est = MultiTaskLasso(alpha=lams[0], fit_intercept=False, tol=tol, max_iter=1_000_000,
                         warm_start=True)
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for lam in lams:
            est.set_params(alpha=lam)
            est.fit(Xr, Yr)
            out.append(est.coef_.copy())
    return out


def worst_gap(Phi, Psi, Vs, lams):
    return max(lasso_speed.rel_gap(Phi, Psi, np.asarray(V), lam)[0]
               for V, lam in zip(Vs, lams, strict=True))


def bench_path(repeats, quick):
    header("path: digits MLP last hidden layer, full warm-started lambda path")
    t = time.perf_counter()
    prob = digits_layer(quick)
    print(f"trained the digits MLP in {time.perf_counter() - t:.1f} s", flush=True)
    Phi, Psi = np.ascontiguousarray(prob.Phi), np.ascontiguousarray(prob.Psi)
    K, N = Phi.shape
    G = Phi @ Phi.T / N
    ev = np.linalg.eigvalsh(G)
    pos = ev[ev > 1e-12 * ev[-1]]
    print(f"K={K} N={N} D={Psi.shape[0]}; never-active neurons {int(prob.never_active.sum())}; "
          f"Gram eigenvalues: largest {ev[-1]:.3g}, smallest positive {pos[0]:.3g} "
          f"(ratio {ev[-1] / pos[0]:.3g}), numerical rank {pos.size}")
    lmax = lasso.lam_max(Phi, Psi)
    lams = lmax * np.geomspace(1.0, 1e-3, N_LAMS)
    rows = {}

    def timed(label, fn, n):
        times, Vs = [], None
        for _ in range(n):
            t = time.perf_counter()
            Vs = fn()
            times.append(time.perf_counter() - t)
        gap = worst_gap(Phi, Psi, Vs, lams)
        widths = [int(np.count_nonzero(np.linalg.norm(np.asarray(V), axis=0) > 0)) for V in Vs]
        rows[label] = {"median_s": float(np.median(times)), "times_s": times,
                       "worst_rel_gap": gap, "widths": widths}
        print(f"  {label:<44s} {np.median(times):8.2f} s (median of {n})  worst rel_gap "
              f"{gap:.1e}  widths {widths[1]}..{widths[-1]}", flush=True)

    with single_blas_thread():
        timed("vvjax lasso_path (first call, incl. compile)",
              lambda: [r.V for r in lasso.lasso_path(Phi, Psi, lams, tol=TOL)], 1)
        timed("vvjax lasso_path",
              lambda: [r.V for r in lasso.lasso_path(Phi, Psi, lams, tol=TOL)], repeats)

        def layer_route():
            L = LayerLasso(Phi, Psi, skip=prob.never_active, tol=TOL)
            for lam in lams:
                L.solve(lam)
            return [L.full_V(lam) for lam in lams]

        timed("vvjax compress layer solver (moment-reduced)", layer_route, repeats)
    timed("sklearn MultiTaskLasso on Gram reduction", lambda: sklearn_path_reduced(Phi, Psi, lams),
          1 if not quick else 1)
    ratio = rows["sklearn MultiTaskLasso on Gram reduction"]["median_s"] / \
        rows["vvjax lasso_path"]["median_s"]
    print(f"  ratio sklearn / vvjax lasso_path (steady state): {ratio:.0f}x")
    return {"K": K, "N": N, "D": int(Psi.shape[0]), "n_lams": N_LAMS, "tol": TOL,
            "gram_condition": float(ev[-1] / pos[0]), "rows": rows, "ratio_sklearn": ratio}


def bench_head(quick):
    header("head: VGG-sized head, K=512, N=50,000, D=10, lam = 0.2 lam_max (one lasso step)")
    K, N, D = (128, 5000, 5) if quick else (512, 50_000, 10)
    rows = lasso_speed.bench_instance("head", K, N, D, 0.2, capped=False, peers=True)
    Phi, Psi = lasso_speed.make_instance(K, N, D)
    lam = 0.2 * lasso.lam_max(Phi, Psi)
    for label in ("vvjax compress layer solver (first call)", "vvjax compress layer solver"):
        t = time.perf_counter()
        with single_blas_thread():
            L = LayerLasso(Phi, Psi, tol=TOL)
            L.certify(lam)
            V = L.full_V(lam)
        s = time.perf_counter() - t
        g, p = lasso_speed.rel_gap(Phi, Psi, V, lam)
        nz = int(np.count_nonzero(np.linalg.norm(V, axis=0) > 0))
        rows.append(dict(instance="head", solver=label, seconds=s, rel_gap=g, primal=p,
                         n_nonzero=nz, note="moment reduction + certificate on the full data"))
        print(f"  {label:<34s} {s:8.2f} s   rel_gap {g:9.2e}   nonzero {nz:5d}", flush=True)
    lasso_speed.summarize(rows)
    return rows


def bench_e2e():
    header("e2e: the default experiments/compress.py run (3 seeds), end to end")
    from vvjax.runs.compress import CompressConfig, run_compress

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        m = run_compress(CompressConfig(), Path(tmp) / "run")
        s = time.perf_counter() - t
    print(f"  whole run {s:.1f} s (training {m['timing']['train_s']:.1f} s, compression, "
          f"baselines, tables and plots {m['timing']['compress_s']:.1f} s)")
    return {"seconds": s, **m["timing"], "targets": m["targets"]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="path,head,e2e")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    ap.add_argument("--out", default=str(HERE / "results" / "compress_speed.json"))
    args = ap.parse_args(argv)
    only = set(args.only.split(","))
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, load average {load_avg()}")
    out = {"machine": platform.platform(), "cpus": os.cpu_count(), "jax": jax.__version__,
           "load_before": load_avg()}
    if "path" in only:
        out["path"] = bench_path(args.repeats, args.quick)
    if "head" in only:
        out["head"] = bench_head(args.quick)
    if "e2e" in only and not args.quick:
        out["e2e"] = bench_e2e()
    out["load_after"] = load_avg()
    print(f"\nload average after: {out['load_after']}")
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2, default=float))
    print(f"wrote {path}")
    return out


if __name__ == "__main__":
    main()
