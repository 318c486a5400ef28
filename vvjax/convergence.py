"""Did a training run converge, and did it learn anything? Stated criteria on the logged curves.

Pure functions of the numpy arrays a trainer logs (:class:`vvjax.train.History`: the objective
``loss`` and the data fit ``data_fit`` at the log steps) and of the targets. Two questions:

**Converged**: the objective stopped moving. Over the last ``window`` log blocks, i.e. the last
``window + 1`` logged values ``f_{T-w}, ..., f_T``, its spread is small against its size::

    rel_change = (max_i f_i - min_i f_i) / max(|f_T|, floor * baseline)  <=  rtol

The floor (a fraction of the zero predictor's data fit, below) keeps a run that interpolates the
data without a penalty, whose objective creeps towards 0 for ever, from counting as unconverged
once its changes are negligible on the data's own scale. Fewer than ``window + 1`` logged values:
not converged (too short to tell).

**Collapsed**: the fit is no better than predicting zero. With the baseline ``b0`` = the data fit
of the zero predictor (``mean(Y^2)`` for the mean squared error, :func:`zero_predictor_fit`)::

    fit_ratio = data_fit_T / b0,    collapsed  <=>  fit_ratio >= 1 - collapse_eps

Typical cause: a penalty or step size that kills every neuron *on the data*; such a network can
still have neurons with large weights that never fire, so its neuron counts measure nothing.

The ``status`` of a run is the first that applies of ``"diverged"`` (a non-finite final objective
or data fit), ``"collapsed"``, ``"not_converged"`` and ``"ok"``. Runners report it next to every
count; aggregations and figures flag runs whose status is not ``"ok"``.
"""

from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import numpy as np

from vvjax._config import Rule, above, at_least

__all__ = ["LOSSES", "STATUSES", "split_ok", "Criterion", "Assessment", "zero_predictor_fit",
           "relative_change", "assess"]

LOSSES = ("mse",)
"""Data-fit losses with a known zero-predictor baseline."""
STATUSES = ("ok", "not_converged", "collapsed", "diverged")


@dataclass
class Criterion:
    """Parameters of the convergence and collapse tests (module docstring).

    With the defaults, the neuron-sharing runs (``experiments/neuron_sharing.py``) come out
    ``"ok"``: the paper's run with ``rel_change`` 1.6e-6 (weight decay) and 8.5e-6 (none, an
    interpolating run held by the floor), ``preset=jax`` with 2.0e-5 and 3.7e-4; and
    ``preset=jax data.n=6 data.d_out=1 width=60`` with weight decay is ``"collapsed"`` (fit ratio
    1.0000001: it outputs zero on every sample).
    """

    window: int = 5
    """Log blocks the objective must have been flat over (``window + 1`` logged values)."""
    rtol: float = 1e-3
    """Largest relative spread of the objective over the window."""
    floor: float = 1e-4
    """Smallest scale the spread is measured against, as a fraction of the zero-predictor fit."""
    collapse_eps: float = 0.05
    """Collapsed when the final data fit is at least ``1 - collapse_eps`` times the baseline."""

    RULES: ClassVar[dict[str, Rule]] = {"window": at_least(1), "rtol": above(0),
                                        "floor": at_least(0),
                                        "collapse_eps": Rule(lambda v: 0 <= v < 1, "in [0, 1)")}


class Assessment(NamedTuple):
    """Outcome of :func:`assess` (Python scalars, ready for JSON)."""

    status: str
    """``"ok"``, ``"not_converged"``, ``"collapsed"`` or ``"diverged"`` (module docstring)."""
    converged: bool
    collapsed: bool
    rel_change: float
    """Spread of the objective over the window, relative (``nan`` if too few log points)."""
    fit_ratio: float
    """Final data fit over the zero predictor's."""


def zero_predictor_fit(Y, loss: str = "mse") -> float:
    """The data fit of the predictor that outputs 0 for every sample.

    Args:
      Y: targets, (N, D) array-like, finite. loss: one of :data:`LOSSES`; ``"mse"`` is
        ``1/(N D) sum_ij y_ij^2``, the :func:`vvjax.train.data_fit` convention.

    Returns:
      A Python float (> 0 unless ``Y`` is all zeros).

    Raises:
      ValueError: an unknown ``loss``, or ``Y`` not a finite numeric array.

    Examples:
      >>> zero_predictor_fit([[1.0, -1.0], [2.0, 0.0]])
      1.5
    """
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    Y = np.asarray(Y, dtype=np.float64)
    if Y.size == 0 or not np.all(np.isfinite(Y)):
        raise ValueError("Y must be a non-empty finite array")
    return float(np.mean(np.square(Y)))


def relative_change(objective, *, window: int, scale_floor: float = 0.0) -> float:
    """``(max - min) / max(|last|, scale_floor)`` of the last ``window + 1`` values of a curve.

    Args:
      objective: (T,) array-like of logged objective values, in log order.
      window: number of log blocks (>= 1). scale_floor: absolute floor of the denominator (>= 0).

    Returns:
      A Python float; ``nan`` if the curve has fewer than ``window + 1`` values or a non-finite
      one among them; ``0.0`` for a curve that is exactly 0 over the window.

    Raises:
      ValueError: ``objective`` not 1-D, ``window < 1`` or ``scale_floor < 0``.

    Examples:
      >>> relative_change([5.0, 1.02, 1.01, 1.0], window=2)  # (1.02 - 1.0) / 1.0
      0.02
    """
    f = np.asarray(objective, dtype=np.float64)
    if f.ndim != 1:
        raise ValueError(f"objective must be a 1-D array, got shape {f.shape}")
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 1:
        raise ValueError(f"window must be an integer >= 1, got {window!r}")
    if not scale_floor >= 0:
        raise ValueError(f"scale_floor must be >= 0, got {scale_floor!r}")
    if f.size < window + 1:
        return float("nan")
    tail = f[-(window + 1):]
    if not np.all(np.isfinite(tail)):
        return float("nan")
    spread = float(tail.max() - tail.min())
    scale = max(abs(float(tail[-1])), float(scale_floor))
    return 0.0 if spread == 0.0 else (spread / scale if scale > 0 else float("inf"))


def assess(loss, data_fit, baseline: float, criterion: Criterion | None = None) -> Assessment:
    """Judge one training run from its logged curves (module docstring for the criteria).

    Args:
      loss: (T,) objective at the log steps. data_fit: (T,) data fit at the same steps.
      baseline: the zero predictor's data fit (:func:`zero_predictor_fit`), finite and > 0.
      criterion: the test's parameters (default :class:`Criterion()`).

    Returns:
      An :class:`Assessment`.

    Raises:
      ValueError: curves not 1-D, of different lengths or empty; ``baseline`` not finite > 0.

    Examples:
      >>> a = assess([3.0, 1.0, 1.0], [3.0, 1.0, 1.0], baseline=1.0,
      ...            criterion=Criterion(window=1))
      >>> a.status, a.converged, a.rel_change, a.fit_ratio
      ('collapsed', True, 0.0, 1.0)
    """
    c = criterion or Criterion()
    loss = np.asarray(loss, dtype=np.float64)
    data_fit = np.asarray(data_fit, dtype=np.float64)
    if loss.ndim != 1 or data_fit.shape != loss.shape or loss.size == 0:
        raise ValueError(f"loss and data_fit must be 1-D arrays of one non-zero length, got "
                         f"shapes {loss.shape} and {data_fit.shape}")
    if not (np.isfinite(baseline) and baseline > 0):
        raise ValueError(f"baseline must be finite and > 0, got {baseline!r}")
    rel = relative_change(loss, window=c.window, scale_floor=c.floor * baseline)
    ratio = float(data_fit[-1] / baseline)
    diverged = not (np.isfinite(loss[-1]) and np.isfinite(data_fit[-1]))
    converged = bool(np.isfinite(rel) and rel <= c.rtol)
    collapsed = bool(np.isfinite(ratio) and ratio >= 1.0 - c.collapse_eps)
    status = ("diverged" if diverged else "collapsed" if collapsed
              else "ok" if converged else "not_converged")
    return Assessment(status, converged, collapsed, rel, ratio)


def split_ok(records) -> tuple[list, dict[str, int]]:
    """Split run or member records by their convergence ``status``: the one rule every count,
    median and figure uses (only ``"ok"`` records are learned results).

    Args:
      records: iterable of mappings with a ``status`` key (a missing or ``None`` status counts as
        ``"None"``: not ok).

    Returns:
      ``(ok records in order, {other status: count})``.
    """
    ok, other = [], {}
    for r in records:
        if r.get("status") == "ok":
            ok.append(r)
        else:
            key = str(r.get("status"))
            other[key] = other.get(key, 0) + 1
    return ok, other

