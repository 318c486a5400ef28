"""Figures of the width sweep (``experiments/width_sweep.py``; ``docs/paper.md`` §4.4, §5).

They read the rows of :func:`vvjax.results.load_sweep` (one per job, lambda and seed), so the
same functions draw a single job and a whole sweep. Members whose convergence status is not
``"ok"`` (:mod:`vvjax.convergence`) are left out of the medians and counted in the legend
(``"k flagged"``); in the width-against-lambda figure they are drawn as open markers.

* :func:`width_vs_n_figure`: learned, certified (members whose lasso re-solve was certified) and
  sparsified width against N, one panel per D, with the ``min(N^2, N D)`` curve and the median
  rank bound ``rank(Phi) rank(Psi)``;
* :func:`sharing_vs_d_figure`: the shared fraction against D, VV-type penalties against
  ``||.||_{M,1}``;
* :func:`width_vs_lambda_figure`: width against lambda, one line per (kind, N, D).
"""

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from vvjax import convergence

__all__ = ["ok_rows", "width_vs_n_figure", "sharing_vs_d_figure", "width_vs_lambda_figure",
           "save_job_figure", "save_sweep_figures"]

_VV = ("prox", "weight_decay", "vv")


def ok_rows(rows: Iterable[Mapping[str, Any]]) -> tuple[list[Mapping[str, Any]], int]:
    """``(rows with status "ok", number of the others)``."""
    ok, other = convergence.split_ok(rows)
    return ok, sum(other.values())


def _median(rows, key):
    if key == "certified_width":  # only certified lasso solutions
        rows = [r for r in rows if r.get("lasso_converged") in (True, "True")]
    v = [r[key] for r in rows if r.get(key) is not None and r[key] == r[key]]
    return float(np.median(v)) if v else np.nan


def _group(rows, *keys):
    out: dict[tuple, list] = {}
    for r in rows:
        out.setdefault(tuple(r.get(k) for k in keys), []).append(r)
    return dict(sorted(out.items(), key=lambda kv: tuple(str(x) for x in kv[0])))


def width_vs_n_figure(rows: Iterable[Mapping[str, Any]], *, kind: str | None = None):
    """Median learned and certified width against N, one panel per D, with ``min(N^2, N D)`` and
    the median rank bound. ``rows``: sweep rows (keys ``n``, ``d_out``, ``kind``,
    ``regularizer``, ``n_active``, ``certified_width``, ``rank_bound``, ``status``); only the
    VV-type penalties are drawn; ``kind`` selects one data kind (default: every kind, one marker
    style each)."""
    rows = [r for r in rows if r.get("regularizer") in _VV
            and (kind is None or r.get("kind") == kind)]
    ok, n_bad = ok_rows(rows)
    Ds = sorted({r["d_out"] for r in rows})
    fig, axes = plt.subplots(1, max(1, len(Ds)), figsize=(3.6 * max(1, len(Ds)) + 2.2, 3.4),
                             squeeze=False, sharey=True)
    kinds = sorted({r["kind"] for r in rows})
    for ax, D in zip(axes[0], Ds, strict=False):
        Ns = sorted({r["n"] for r in rows if r["d_out"] == D})
        grid = np.linspace(min(Ns), max(Ns), 50) if Ns else np.array([])
        ax.plot(grid, np.minimum(grid ** 2, grid * D), "k-", lw=1, label=r"$\min(N^2, ND)$")
        for ki, k in enumerate(kinds):
            sel = _group([r for r in ok if r["d_out"] == D and r["kind"] == k], "n")
            n = [key[0] for key in sel]
            mk = "os^vd"[ki % 5]
            ax.plot(n, [_median(g, "n_active") for g in sel.values()], mk + "-", color="tab:blue",
                    label=f"learned ({k})")
            ax.plot(n, [_median(g, "certified_width") for g in sel.values()], mk + "--",
                    color="tab:orange", label=f"certified ({k})")
            ax.plot(n, [_median(g, "sparsified_width") for g in sel.values()], mk + "-.",
                    color="tab:green", lw=0.8, ms=3, label=f"sparsified ({k})", zorder=1)
            ax.plot(n, [_median(g, "rank_bound") for g in sel.values()], mk + ":",
                    color="tab:gray", label=rf"rank$\Phi\cdot$rank$\Psi$ ({k})")
        ax.set_title(f"D = {D}")
        ax.set_xlabel("N")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("neurons (median over ok members)")
    fig.tight_layout()
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if handles:
        fig.subplots_adjust(right=0.8)
        fig.legend(handles, labels, loc="center right", fontsize=7,
                   title=f"{n_bad} flagged left out", title_fontsize=7)
    return fig


def sharing_vs_d_figure(rows: Iterable[Mapping[str, Any]]):
    """Median shared fraction (``n_shared / n_active``) against D, one line per (penalty, N):
    the VV-type penalties share, ``||.||_{M,1}`` much less (``docs/paper.md`` §3.3)."""
    rows = [r for r in rows if r.get("d_out", 0) >= 2]
    ok, n_bad = ok_rows(rows)
    fig, ax = plt.subplots(figsize=(4.6, 3.4))
    for (reg, n), g in _group(ok, "regularizer", "n").items():
        byd = _group(g, "d_out")
        style = "--" if reg == "m1" else "-"
        ax.plot([k[0] for k in byd], [_median(v, "shared_fraction") for v in byd.values()],
                "o" + style, label=f"{'M,1' if reg == 'm1' else reg}, N={n}")
    ax.set_xlabel("D (outputs)")
    ax.set_ylabel("shared fraction (median)")
    ax.set_ylim(-0.05, 1.05)
    ax.grid(alpha=0.3)
    _legend(ax, fontsize=6, title=f"{n_bad} flagged left out", title_fontsize=6)
    fig.tight_layout()
    return fig


def width_vs_lambda_figure(rows: Iterable[Mapping[str, Any]], *, sharp_bound: int | None = None,
                           title: str = ""):
    """Learned (solid) and certified (dashed) width against lambda, median over seeds, one
    colour per (kind, N, D, penalty); flagged members as open grey markers."""
    rows = list(rows)
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    ok, n_bad = ok_rows(rows)
    bad = [r for r in rows if all(r is not o for o in ok)]
    for i, (key, g) in enumerate(_group(ok, "kind", "n", "d_out", "regularizer").items()):
        bylam = _group(g, "lam")
        lams = [k[0] for k in bylam]
        c = f"C{i % 10}"
        ax.plot(lams, [_median(v, "n_active") for v in bylam.values()], "o-", color=c,
                label="{}, N={}, D={}, {}".format(*key))
        ax.plot(lams, [_median(v, "certified_width") for v in bylam.values()], "s--", color=c)
    if bad:
        ax.plot([r["lam"] for r in bad], [r["n_active"] for r in bad], "o", mfc="none",
                color="0.6", label=f"flagged ({n_bad})")
    if sharp_bound is not None:
        ax.axhline(sharp_bound, color="k", lw=1, label=r"$\min(N^2, ND)$")
    ax.set_xscale("log")
    ax.set_xlabel(r"$\lambda$")
    ax.set_ylabel("neurons (solid: learned, dashed: certified)")
    ax.grid(alpha=0.3)
    _legend(ax, fontsize=6)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def _legend(ax, **kw):
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**kw)


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def save_job_figure(path: str | Path, rows, *, sharp_bound: int | None = None,
                    title: str = "") -> Path:
    """:func:`width_vs_lambda_figure` of one job's member records, saved as ``path``."""
    return _save(width_vs_lambda_figure(rows, sharp_bound=sharp_bound, title=title), Path(path))


def save_sweep_figures(rows, out_dir: str | Path) -> list[Path]:
    """The sweep figures (module docstring) of sweep rows, saved under ``out_dir``:
    ``width_vs_n.png``, ``sharing_vs_d.png`` and ``width_vs_lambda.png``. Returns the paths."""
    rows = [r for r in rows if r.get("task") == "width_sweep"]
    out_dir = Path(out_dir)
    if not rows:
        return []
    return [_save(width_vs_n_figure(rows), out_dir / "width_vs_n.png"),
            _save(sharing_vs_d_figure(rows), out_dir / "sharing_vs_d.png"),
            _save(width_vs_lambda_figure(rows), out_dir / "width_vs_lambda.png")]
