"""Network compression without retraining: the certified multi-task lasso per layer, a smaller
working model, and the strongest baselines side by side.

For hidden layer l of a trained network, ``Phi`` (K x N) is its post-activations on the training
inputs and ``Psi = W_{l+1} Phi`` (D' x N) the next layer's pre-activation minus its bias. The
penalized multi-task lasso ``min_V 1/(2N) ||V Phi - Psi||_F^2 + lam sum_k ||v_k||_2`` (arXiv
2305.16534, compression by the multi-task lasso; ``docs/paper.md`` §4.2, §6, §7.5) chooses which
neurons to keep; solved to a certified duality gap by :mod:`vvjax.lasso`, its zero columns are
deleted with their incoming rows and biases, and a new, smaller network of the same class is
returned.

* :func:`compress`: the lasso on one or several layers (``lam``, ``lam_ratio`` or ``width=k``;
  ``refit=True`` for the relaxed lasso; ``reweight=n`` for the reweighted group lasso);
* :func:`prune`: the baselines of :mod:`vvjax.compress.baselines` (magnitude, activation
  importance, interpolative decomposition, greedy structured OBS, neuron merging);
* :func:`sweep`: many methods at many widths on one layer, sharing the work;
* :class:`CompressionResult`: the new model, the kept indices per layer, widths, lam, the duality
  gap, solver time, losses and accuracies before and after, the largest output change on the
  training and test sets, the reconstruction error ``||V Phi - Psi||_F / ||Psi||_F``, parameter
  counts and inference times; :meth:`CompressionResult.save` writes a checkpoint with the kept
  indices in its metadata.

Modules: :mod:`~vvjax.compress.layers` (a layer as arrays, neuron deletion),
:mod:`~vvjax.compress.lasso_layer` (solves, width search, refit, reweighting),
:mod:`~vvjax.compress.baselines`, :mod:`~vvjax.compress.evaluate`,
:mod:`~vvjax.compress.pipeline` (the three entry functions), :mod:`~vvjax.compress.result`.
"""

from vvjax.compress import baselines
from vvjax.compress.baselines import BASELINES
from vvjax.compress.lasso_layer import WidthSearch
from vvjax.compress.layers import LayerProblem, layer_problem
from vvjax.compress.pipeline import METHODS, compress, prune, sweep
from vvjax.compress.result import CompressionResult, LayerCompression

__all__ = ["compress", "prune", "sweep", "CompressionResult", "LayerCompression", "WidthSearch",
           "LayerProblem", "layer_problem", "METHODS", "BASELINES", "baselines"]
