"""What a compression returns: the new model and its report (:class:`CompressionResult`, one
:class:`LayerCompression` per compressed layer)."""

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vvjax.compress.evaluate import Scores
from vvjax.compress.lasso_layer import WidthSearch

__all__ = ["LayerCompression", "CompressionResult"]


@dataclass
class LayerCompression:
    """What happened to one hidden layer.

    Attributes:
      layer: hidden-layer index (0-based from the input).
      method: ``"lasso"``, ``"rwlasso"`` or a baseline name, with ``"+refit"`` when refitted.
      kept: increasing indices of the kept neurons, into the layer's neurons before compression.
      width_before: the layer's width before compression.
      width_after: its width after (``len(kept)``).
      n_never_active: neurons whose activation is 0 on every training input (deleted for free by
        every method).
      reconstruction_error: ``||V Phi - Psi||_F / ||Psi||_F`` on the training inputs, with ``V``
        the new outgoing weights at full width (zero columns for deleted neurons).
      V: (D', width_before) those outgoing weights: the zero-column form of the new layer.
      lam: the lasso's ``lam`` (its convention, :mod:`vvjax.lasso`); ``None`` for baselines.
      lam_max: the smallest ``lam`` that deletes every neuron; ``None`` for baselines.
      gap: the duality gap of the final solve (lasso only).
      rel_gap: the relative duality gap of the final solve (lasso only; ``<= tol``).
      converged: whether the final solve reached ``tol`` (lasso only).
      solver_time_s: seconds spent choosing the neurons (lasso: in certified solves, width search
        and reweighting included; baselines: the selection and compensation).
      n_solves: certified solves made (lasso).
      width_search: the :class:`~vvjax.compress.lasso_layer.WidthSearch` of ``width=k``.
      reweight_history: ``(width, lam, rel_gap)`` per reweighting step (``"rwlasso"``).
    """

    layer: int
    method: str
    kept: np.ndarray
    width_before: int
    width_after: int
    n_never_active: int
    reconstruction_error: float
    V: np.ndarray = field(repr=False)
    lam: float | None = None
    lam_max: float | None = None
    gap: float | None = None
    rel_gap: float | None = None
    converged: bool | None = None
    solver_time_s: float = 0.0
    n_solves: int = 0
    width_search: WidthSearch | None = None
    reweight_history: list = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """JSON-ready dict (``V`` left out)."""
        out = {k: v for k, v in self.__dict__.items() if k != "V"}
        out["kept"] = [int(i) for i in self.kept]
        if self.width_search is not None:
            out["width_search"] = self.width_search._asdict()
        return out


@dataclass
class CompressionResult:
    """A compressed network and its report.

    Attributes:
      model: the new, smaller network (same class, activation and dtype as the input).
      layers: one :class:`LayerCompression` per compressed layer, in order.
      widths_before: the original network's layer widths (``[d, n_1, ..., D]``).
      widths_after: the new network's layer widths.
      train_before: :class:`~vvjax.compress.evaluate.Scores` (loss, accuracy) of the original
        network on the training set (``None`` without labels).
      train_after: the same for the new network.
      test_before: the original network's scores on the test set (``None`` without a test set).
      test_after: the new network's scores on the test set.
      max_output_change_train: ``max_{i,j} |f_new(x_i)_j - f(x_i)_j|`` over the training inputs.
      max_output_change_test: the same over the test inputs (``None`` without ``X_test``).
      params_before: parameter count of the original network.
      params_after: parameter count of the new network.
      inference_time_before_s: median jitted forward time of the original network on the test
        inputs (training inputs without them); ``None`` when not timed.
      inference_time_after_s: the same for the new network.
      theory_covered: ``False`` when a non-homogeneous activation was forced: the lasso then still
        yields a smaller network matching its zero-column form, but the paper's link between
        weight decay and the multi-task lasso does not hold.
    """

    model: Any
    layers: list[LayerCompression]
    widths_before: list[int]
    widths_after: list[int]
    train_before: Scores | None
    train_after: Scores | None
    test_before: Scores | None
    test_after: Scores | None
    max_output_change_train: float
    max_output_change_test: float | None
    params_before: int
    params_after: int
    inference_time_before_s: float | None
    inference_time_after_s: float | None
    theory_covered: bool = True

    @property
    def kept(self) -> dict[int, np.ndarray]:
        """``{layer: kept indices}``."""
        return {lc.layer: lc.kept for lc in self.layers}

    def summary(self) -> dict[str, Any]:
        """JSON-ready dict of everything but the model and the full-width ``V`` arrays."""
        out = {k: v for k, v in self.__dict__.items() if k not in ("model", "layers")}
        for k in ("train_before", "train_after", "test_before", "test_after"):
            out[k] = None if out[k] is None else out[k]._asdict()
        out["layers"] = [lc.summary() for lc in self.layers]
        return out

    def metadata(self) -> dict[str, Any]:
        """What a checkpoint of the compressed model stores with it (:meth:`save`)."""
        return {"compressed": {
            "widths_before": list(self.widths_before),
            "layers": [{"layer": lc.layer, "method": lc.method, "kept": [int(i) for i in lc.kept],
                        "width_before": lc.width_before, "lam": lc.lam, "rel_gap": lc.rel_gap}
                       for lc in self.layers]}}

    def save(self, path):
        """Save the compressed model with :func:`vvjax.checkpoint.save`, the kept indices and
        methods in its metadata (``read_metadata(path)["compressed"]``); returns the path."""
        from vvjax import checkpoint

        return checkpoint.save(self.model, path, metadata=self.metadata())
