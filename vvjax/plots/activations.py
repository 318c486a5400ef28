"""Figure of the activation study (``experiments/width_sweep.py -m preset=activations``;
``docs/paper.md`` §3.2): weight decay against the VV norm, and the balance of the active neurons,
per activation.

It reads member rows (:func:`vvjax.results.load_sweep` or :func:`vvjax.report.member_rows`):
keys ``activation``, ``lam``, ``status``, ``wd_vv_gap``, ``balance_median``, ``balance_q10``,
``balance_q90`` and ``test_error``. Medians over the members whose status is ``"ok"``; the number
left out is in the legend's title.
"""

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from vvjax import convergence

__all__ = ["balance_figure", "save_balance_figure"]


def _med(rows, key):
    v = [r[key] for r in rows if r.get(key) is not None]
    return float(np.median(v)) if v else np.nan


def balance_figure(rows: Iterable[Mapping[str, Any]]):
    """Three panels against λ, one line per activation: the relative gap
    ``(weight decay - VV norm) / VV norm`` (0 for a balanced network), the median balance
    ``||(w_k, b_k)|| / ||v_k||`` of the active neurons (bars: medians of the 10 % and 90 %
    quantiles) and the held-out error."""
    rows = list(rows)
    ok, _ = convergence.split_ok(rows)
    fig, axes = plt.subplots(1, 3, figsize=(12.5, 3.5))
    acts = list(dict.fromkeys(r["activation"] for r in rows))
    for i, act in enumerate(acts):
        by: dict[float, list] = {}
        for r in ok:
            if r["activation"] == act:
                by.setdefault(r["lam"], []).append(r)
        lams = sorted(by)
        c = f"C{i % 10}"
        gap = [_med(by[x], "wd_vv_gap") for x in lams]
        axes[0].plot(lams, gap, "o-", color=c, label=act)
        mid = np.array([_med(by[x], "balance_median") for x in lams])
        lo = np.array([_med(by[x], "balance_q10") for x in lams])
        hi = np.array([_med(by[x], "balance_q90") for x in lams])
        axes[1].errorbar(lams, mid, yerr=[mid - lo, hi - mid], fmt="o-", color=c, capsize=3,
                         label=act)
        axes[2].plot(lams, [_med(by[x], "test_error") for x in lams], "o-", color=c, label=act)
    for ax, ylabel in zip(axes, ("(weight decay − VV) / VV", r"$\|(w_k,b_k)\| / \|v_k\|$",
                                 "held-out MSE"), strict=True):
        ax.set_xscale("log")
        ax.set_xlabel(r"$\lambda$")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    for ax in (axes[0], axes[2]):
        if any(np.any(np.isfinite(y) & (y > 0)) for y in (ln.get_ydata() for ln in ax.lines)):
            ax.set_yscale("log")  # (none when no member converged)
    axes[1].axhline(1.0, color="k", lw=0.8)
    if axes[0].get_legend_handles_labels()[0]:
        axes[0].legend(fontsize=7, title=f"{len(rows) - len(ok)} flagged left out",
                       title_fontsize=7)
    fig.tight_layout()
    return fig


def save_balance_figure(path: str | Path, rows) -> Path:
    """:func:`balance_figure` saved as ``path`` (PNG); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = balance_figure(rows)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
