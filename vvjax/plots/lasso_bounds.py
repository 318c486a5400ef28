"""Figures of the multi-task-lasso sparsity experiments (arXiv 2305.16534, Figs. 3-5;
docs/paper.md §7.2-7.4).

One histogram panel per setting: the number of nonzero columns of the solver's solution, after the
support reduction and (brute force) of the sparsest optimal solution, with red dashed lines at the
lower bound rank(Phi) and at the upper bound rank(Phi) rank(Psi). The authors drew the upper line at
``N D + 1`` (a plotting offset, docs/paper.md §7.2); here it sits exactly at the bound.
"""

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

__all__ = ["count_histograms_figure", "save_figure"]

_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:purple")



def _bins(values: np.ndarray, lower: int, upper: int, integer_bins: bool) -> np.ndarray:
    lo = min(int(values.min()), lower) - 1
    hi = max(int(values.max()), upper) + 1
    if integer_bins or hi - lo <= 60:
        return np.arange(lo, hi + 1) + 0.5  # one bin per integer
    width = int(np.ceil((hi - lo) / 60))
    return np.arange(lo, hi + width, width) + 0.5


def count_histograms_figure(titles: Sequence[str], series: Sequence[Mapping[str, np.ndarray]],
                            lowers: Sequence[int], uppers: Sequence[int], *,
                            integer_bins: bool = False, suptitle: str = "",
                            ncols: int | None = None):
    """Histograms of nonzero-column counts, one panel per setting.

    Args:
      titles: panel titles (e.g. ``"D=10, N=20, K=500"``).
      series: per panel, ``{label: counts}`` with integer count arrays of shape (trials,); drawn as
        overlaid step histograms (grouped bars with ``integer_bins``).
      lowers: per panel, the lower bound (a red dashed line).
      uppers: per panel, the upper bound rank(Phi) rank(Psi) (a red dashed line).
      integer_bins: one bin per integer (small counts, as in the brute-force figure).
      suptitle: figure title. ncols: panels per row (default: all in one row, at most 5).
    Returns:
      The matplotlib Figure.
    """
    n = len(titles)
    if not (len(series) == len(lowers) == len(uppers) == n) or n == 0:
        raise ValueError("titles, series, lowers and uppers must be non-empty and of equal length")
    ncols = ncols or min(n, 5)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 3.0 * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i >= n:
            ax.set_visible(False)
            continue
        data = {k: np.asarray(v, dtype=int) for k, v in series[i].items()}
        allv = np.concatenate(list(data.values()))
        bins = _bins(allv, int(lowers[i]), int(uppers[i]), integer_bins)
        m = len(data)
        for j, (label, values) in enumerate(data.items()):
            color = _COLORS[j % len(_COLORS)]
            label = f"{label} ({values.min()}-{values.max()})"
            if integer_bins:  # grouped bars, one group per integer count
                x = np.arange(int(bins[0] + 0.5), int(bins[-1] + 0.5))
                freq = np.array([np.sum(values == v) for v in x])
                w = 0.8 / m
                ax.bar(x + (j - (m - 1) / 2) * w, freq, width=w, color=color, alpha=0.8,
                       label=label)
            else:
                ax.hist(values, bins=bins, histtype="stepfilled", alpha=0.25, color=color)
                ax.hist(values, bins=bins, histtype="step", color=color, linewidth=1.4,
                        linestyle=("-", "--", ":")[j % 3], label=label)
        for x in (lowers[i], uppers[i]):
            ax.axvline(x, color="red", linestyle="--", linewidth=1.2)
        ax.set_title(titles[i], fontsize=10)
        ax.set_xlabel("nonzero columns")
        ax.legend(fontsize=7, loc="best")
        ax.grid(alpha=0.3)
    for row in axes:
        row[0].set_ylabel("trials")
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def save_figure(fig, out_dir: str | Path, name: str) -> list[Path]:
    """Save ``fig`` as ``out_dir/name.png`` and ``.pdf``, close it, and return the two paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.png", out_dir / f"{name}.pdf"]
    for p in paths:
        fig.savefig(p, dpi=150 if p.suffix == ".png" else None, bbox_inches="tight")
    plt.close(fig)
    return paths
