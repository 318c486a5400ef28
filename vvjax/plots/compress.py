"""Figures of the compression experiment: test accuracy and largest output change against the
kept width, one line per method, mean +- standard deviation over seeds (:mod:`vvjax.runs.compress`).
"""

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

__all__ = ["width_curves_figure", "save_compress_figures"]


def _style(method: str) -> dict:
    base = method.partition("+")[0]
    colors = {"lasso": "tab:red", "rwlasso": "tab:purple", "magnitude": "tab:gray",
              "activation": "tab:olive", "interpolative": "tab:green", "obs": "tab:blue",
              "merge": "tab:brown"}
    refit = method.endswith("+refit")
    lw = 2.2 if base in ("lasso", "rwlasso") else 1.4
    return {"color": colors.get(base, "black"), "linestyle": "-" if refit else "--",
            "marker": "o" if refit else "s", "markersize": 3.5, "linewidth": lw}


def width_curves_figure(rows, metric: str, *, ylabel: str, title: str = "", scale: float = 1.0,
                        logy: bool = False, base_line: float | None = None):
    """One line per method: ``metric`` (a key of the rows) against the mean kept width, the band
    mean +- standard deviation over seeds.

    Args:
      rows: per-seed records with ``method``, ``fraction``, ``width`` and ``metric``
        (``results.csv`` of :mod:`vvjax.runs.compress`).
      metric: the record key to plot.
      ylabel: the y axis label.
      title: the figure title.
      scale: factor applied to the metric (100 for percent).
      logy: logarithmic y axis.
      base_line: a horizontal reference (the uncompressed value).

    Returns:
      The matplotlib figure (close it after saving).
    """
    fig, ax = plt.subplots(figsize=(7.2, 4.6))
    for method in dict.fromkeys(r["method"] for r in rows):
        rs = [r for r in rows if r["method"] == method and r.get(metric) is not None]
        fracs = sorted({r["fraction"] for r in rs})
        x = np.array([np.mean([r["width"] for r in rs if r["fraction"] == f]) for f in fracs])
        vals = [np.array([r[metric] for r in rs if r["fraction"] == f], float) * scale
                for f in fracs]
        y = np.array([v.mean() for v in vals])
        s = np.array([v.std(ddof=1) if v.size > 1 else 0.0 for v in vals])
        st = _style(method)
        ax.plot(x, y, label=method, **st)
        ax.fill_between(x, y - s, y + s, color=st["color"], alpha=0.12, linewidth=0)
    if base_line is not None:
        ax.axhline(base_line, color="black", linewidth=0.8, linestyle=":", label="uncompressed")
    if logy:
        ax.set_yscale("log")
    ax.set_xscale("log")
    ax.set_xlabel("neurons kept")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3, which="both")
    ax.legend(fontsize=7, ncol=2, loc="best")
    fig.tight_layout()
    return fig


def save_compress_figures(fig_dir, rows, *, K: int, layer: int, dataset: str) -> list[Path]:
    """Write ``accuracy_vs_width.png`` and ``output_change_vs_width.png``; returns their paths."""
    fig_dir = Path(fig_dir)
    fig_dir.mkdir(parents=True, exist_ok=True)
    base = [r["test_accuracy_before"] for r in rows if r.get("test_accuracy_before") is not None]
    where = f"{dataset}, hidden layer {layer} ({K} neurons), no retraining\n(mean ± std over seeds)"
    figs = {
        "accuracy_vs_width.png": width_curves_figure(
            rows, "test_accuracy_after", ylabel="test accuracy (%)", scale=100.0,
            title=f"Test accuracy after compression: {where}",
            base_line=100.0 * float(np.mean(base)) if base else None),
        "output_change_vs_width.png": width_curves_figure(
            rows, "max_output_change_train", ylabel="largest output change (training set)",
            logy=True, title=f"Largest output change on the training set: {where}"),
    }
    paths = []
    for name, fig in figs.items():
        path = fig_dir / name
        fig.savefig(path, dpi=130)
        plt.close(fig)
        paths.append(path)
    return paths
