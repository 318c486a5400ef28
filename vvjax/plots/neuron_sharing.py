"""Figures of the neuron-sharing experiment (docs/paper.md §7.1).

Each active neuron is drawn at ``(theta_k, b_k / ||w_k||)`` in one panel per output, with marker
area proportional to its contribution ``|v_jk| ||(w_k, b_k)||`` to that output (absolute values: the
authors' plot passed signed sizes and so hid negative-weight neurons, docs/paper.md §9).

Runs whose convergence status (:mod:`vvjax.convergence`) is not ``"ok"`` are flagged: the status
in red in the title of their location figure, a dashed curve and the status in the legend of the
training curves. Their neurons are not learned widths.
"""

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from vvjax import analysis

__all__ = ["neuron_locations_figure", "training_curves_figure", "save_neuron_sharing_figures"]

_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple")
_FLAGS = {"not_converged": "NOT CONVERGED", "collapsed": "COLLAPSED: output ~ 0",
          "diverged": "DIVERGED"}


def _flag(status: str | None) -> str:
    """Text appended to a run's name when its status is not ``"ok"`` (empty otherwise)."""
    return f" [{_FLAGS.get(status, status)}]" if status not in (None, "ok") else ""


def neuron_locations_figure(W, b, V, *, title: str = "", atol: float = analysis.DEFAULT_ATOL,
                            size_scale: float = 5000.0):
    """One panel per output: active neurons at (theta, b/||w||), area ~ |v_jk| ||(w_k, b_k)||.

    Args:
      W: (K, 2) input weights. b: (K,) biases. V: (D, K) output weights.
      title: figure title. atol: the activity rule of :mod:`vvjax.analysis`.
      size_scale: marker area per unit contribution (the paper uses 5000).
    """
    W, b, V = np.asarray(W), np.asarray(b), np.asarray(V)
    loc = np.asarray(analysis.neuron_locations(W, b))
    C = np.asarray(analysis.contributions(W, b, V))
    A = np.asarray(analysis.activity_matrix(W, b, V, atol=atol))
    D = V.shape[0]
    fig, axes = plt.subplots(1, D, figsize=(4.2 * D, 3.6), sharey=True, squeeze=False)
    for j, ax in enumerate(axes[0]):
        on = A[j]
        ax.scatter(loc[on, 0], loc[on, 1], s=size_scale * C[j, on], color=_COLORS[j % 5], alpha=0.6,
                   edgecolors="k", linewidths=0.3)
        ax.set_xlim(0, 2 * np.pi)
        ax.set_ylim(-3, 3)
        ax.set_xlabel(r"$\theta_k$")
        ax.set_title(f"$f_{j + 1}$: {int(on.sum())} active")
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel(r"$b_k / \|w_k\|$")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def training_curves_figure(histories: dict[str, dict[str, np.ndarray]],
                           status: dict[str, str] | None = None):
    """Objective, data fit and active-neuron count against step, one line per run.

    Args:
      histories: run name -> ``{"step", "loss", "data_fit", "n_active"}`` arrays of shape (T,).
      status: run name -> convergence status; runs not ``"ok"`` are dashed and flagged in the
        legend.
    """
    status = status or {}
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for i, (name, h) in enumerate(histories.items()):
        color = _COLORS[i % 5]
        label = name + _flag(status.get(name))
        style = "-" if status.get(name, "ok") == "ok" else "--"
        axes[0].semilogy(h["step"], np.maximum(h["loss"], 1e-300), style, color=color,
                         label=label)
        axes[1].semilogy(h["step"], np.maximum(h["data_fit"], 1e-300), style, color=color,
                         label=label)
        axes[2].plot(h["step"], h["n_active"], style, color=color, label=label)
    for ax, label in zip(axes, ("objective", "data fit (MSE)", "active neurons"), strict=True):
        ax.set_xlabel("step")
        ax.set_title(label)
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.tight_layout()
    return fig


def save_neuron_sharing_figures(fig_dir, trained, histories, *, atol=analysis.DEFAULT_ATOL,
                                status: dict[str, str] | None = None) -> list[Path]:
    """Write the location figure of every run and the training curves as PNG and PDF.

    Args:
      fig_dir: output folder. trained: run name -> ShallowParams.
      histories: flat mapping ``"<run>/<field>" -> array`` (as in ``history.npz``).
      status: run name -> convergence status (:mod:`vvjax.convergence`); runs not ``"ok"`` get
        the status in red in their title and legend.
    """
    status = status or {}
    fig_dir = Path(fig_dir)
    fig_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, p in trained.items():
        fig = neuron_locations_figure(p.W, p.b, p.V, title=name.replace("_", " "), atol=atol)
        flag = _flag(status.get(name))
        if flag:
            fig.suptitle(name.replace("_", " ") + flag, color="red")
        paths += _save(fig, fig_dir / f"neurons_{name}")
    nested: dict[str, dict[str, np.ndarray]] = {}
    for key, value in histories.items():
        run, field = key.split("/", 1)
        nested.setdefault(run, {})[field] = np.asarray(value)
    paths += _save(training_curves_figure(nested, status), fig_dir / "training_curves")
    return paths


def _save(fig, stem: Path) -> list[Path]:
    out = []
    for ext in ("png", "pdf"):
        path = stem.with_suffix(f".{ext}")
        fig.savefig(path, dpi=130)
        out.append(path)
    plt.close(fig)
    return out
