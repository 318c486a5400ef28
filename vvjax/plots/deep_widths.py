"""Figure of the deep-widths experiment: width per hidden layer against the bounds, one panel per
depth (arXiv 2305.16534, width bounds for homogeneous layers; ``docs/paper.md`` §6).

Medians over the members whose convergence status is ``"ok"`` (:mod:`vvjax.convergence`); the
number left out is in each panel's title.
"""

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from vvjax import convergence

__all__ = ["widths_figure", "save_widths_figure"]


def _median_per_layer(rows, key, n_layers):
    vals = [[r[key][l] for r in rows if r[key][l] is not None] for l in range(n_layers)]
    return [float(np.median(v)) if v else np.nan for v in vals]


def widths_figure(rows, *, n: int, hidden_width: int | None = None, title: str = ""):
    """One panel per depth: learned width, certified width and ``rank(Phi) rank(Psi)`` per hidden
    layer (medians over ok members, all lambdas), with ``N^2`` and the trained width.

    Args:
      rows: member records of :func:`vvjax.runs.run_deep_widths` (``depth``, ``status`` and the
        per-layer lists ``n_active``, ``certified_width``, ``rank_bound``).
      n: the number of samples N. hidden_width: the trained width (a dotted line).
    """
    rows = list(rows)
    depths = sorted({r["depth"] for r in rows})
    fig, axes = plt.subplots(1, max(1, len(depths)), figsize=(3.4 * max(1, len(depths)), 3.3),
                             squeeze=False, sharey=True)
    for ax, depth in zip(axes[0], depths, strict=False):
        sel = [r for r in rows if r["depth"] == depth]
        ok, _ = convergence.split_ok(sel)
        layers = np.arange(1, depth + 1)
        if ok:
            ax.plot(layers, _median_per_layer(ok, "n_active", depth), "o-", label="learned")
            cert = [c for r in ok for c in r.get("constrained_certified") or [] if c is not None]
            ax.plot(layers, _median_per_layer(ok, "certified_width", depth), "s--",
                    label=f"certified ({sum(cert)}/{len(cert)} solves proved optimal)"
                    if cert else "certified")
            ax.plot(layers, _median_per_layer(ok, "rank_bound", depth), "^:",
                    label=r"rank$\Phi^{(l)}\cdot$rank$\Psi^{(l)}$")
        ax.axhline(n * n, color="k", lw=1, label=r"$N^2$")
        if hidden_width is not None:
            ax.axhline(hidden_width, color="0.5", lw=1, ls=":", label="trained width")
        ax.set_xticks(layers)
        ax.set_xlabel("hidden layer l")
        ax.set_yscale("log")
        ax.set_title(f"{depth} hidden layers ({len(sel) - len(ok)} flagged)", fontsize=9)
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("neurons")
    if axes[0, -1].get_legend_handles_labels()[0]:
        axes[0, -1].legend(fontsize=6)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def save_widths_figure(path, rows, **kw) -> Path:
    """:func:`widths_figure` saved as ``path`` (PNG); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = widths_figure(rows, **kw)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
