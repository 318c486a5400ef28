"""Training objectives: data-fit losses, regularizers on NNX models, and what weight decay selects.

The objective :func:`vvjax.train.fit` minimises is ``loss(f_theta(X), Y) + lam * R(theta)``.

**Losses** (:data:`LOSSES`, or any callable ``(pred, target) -> scalar``):

- ``"mse"``: ``1/(N D) sum_{i,j} (f(x_i)_j - y_ij)^2`` (PyTorch's ``MSELoss``, as in the paper);
- ``"cross_entropy"``: ``1/N sum_i -log softmax(f(x_i))_{y_i}`` with integer labels ``y_i`` in
  ``[0, D)`` (the outputs are logits).

**Regularizers** (:data:`REGULARIZERS`; ``decay`` selects the Variables, see below):

- ``"none"``: ``R = 0``;
- ``"weight_decay"``: ``R = 1/2 sum ||theta_v||^2`` over every Variable ``theta_v`` selected by
  ``decay`` (an explicit term, never optax's decoupled ``adamw`` decay, which is another objective);
- ``"vv"``: the per-layer VV / path norm
  ``sum_l sum_k ||W_{l+1}[:, k]||_2 ||(W_l[k, :], b_l[k])||_2`` over the hidden layers
  (``model.hidden_layers()``; the bias enters iff ``decay`` selects it);
- ``"m1"``: the output-separable ``||.||_{M,1}`` contrast, the same with ``||W_{l+1}[:, k]||_1``;
- ``"prox"``: the paper's proximal method for shallow networks (:mod:`vvjax.train`): ``R`` is
  ``sum_k ||v_k||_2`` under the constraint ``||(w_k, b_k)||_2 = 1``; it is reported as the VV norm.

For a positively homogeneous activation, weight decay and the VV norm have the same minimisers
and, at a balanced network, the same value (arXiv 2305.16534, weight decay and the VV norm;
``docs/paper.md`` §3.2).

**What is decayed** (``decay``): ``"weights"`` (the default, for shallow and deep networks alike:
every ``nnx.Param`` except biases, the objective ``lam/2 sum_l ||W_l||_F^2`` the paper's theory
analyses), ``"weights_and_biases"`` (also the hidden biases :class:`~vvjax.models.Bias`, as the
paper's neuron-sharing experiment does; output biases are never part of a neuron), or any
``flax.nnx`` filter. Parameters a subclass adds are ``nnx.Param``: they are trained, and decayed by
``"weight_decay"`` when ``decay`` selects them.

**lambda across the library.** The lasso solvers (:mod:`vvjax.lasso`) weigh the data term as
``1/(2N) ||V Phi - Psi||_F^2`` while ``"mse"`` training uses ``1/(N D) ||.||_F^2``:
:func:`lasso_lam` converts (``lam_lasso = lam * D / 2``).
"""

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from flax.nnx import filterlib

from vvjax.models import Bias, OutputBias

__all__ = [
    "LOSSES",
    "REGULARIZERS",
    "DECAY",
    "mse",
    "cross_entropy",
    "get_loss",
    "decay_filter",
    "decayed_variables",
    "penalty",
    "safe_norm",
    "lasso_lam",
]

LOSSES = ("mse", "cross_entropy")
REGULARIZERS = ("none", "weight_decay", "vv", "m1", "prox")
DECAY = {
    "weights": nnx.All(nnx.Param, nnx.Not(Bias)),
    "weights_and_biases": nnx.All(nnx.Param, nnx.Not(OutputBias)),
}
"""Named weight-decay selections (see the module docstring)."""


def mse(pred: jax.Array, target: jax.Array) -> jax.Array:
    """``1/(N D) sum (pred - target)^2`` for ``pred``, ``target`` (N, D) -> scalar."""
    return jnp.mean((pred - target) ** 2)


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Mean softmax cross-entropy of ``logits`` (N, C) against integer ``labels`` (N,) in [0, C)."""
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels))


_LOSS_FNS = {"mse": mse, "cross_entropy": cross_entropy}


def get_loss(loss: str | Callable) -> Callable:
    """The loss function for a name in :data:`LOSSES`, or ``loss`` itself if it is callable.

    Raises:
      ValueError: an unknown name (or anything that is neither a name nor callable).
    """
    if callable(loss):
        return loss
    if isinstance(loss, str) and loss in _LOSS_FNS:
        return _LOSS_FNS[loss]
    raise ValueError(f"unknown loss {loss!r}; expected one of {LOSSES} or a callable "
                     "(pred, target) -> scalar")


def decay_filter(decay: Any) -> Any:
    """The ``flax.nnx`` filter for ``decay``: a name in :data:`DECAY` or a filter (a Variable type,
    ``nnx.All``/``nnx.Not``/..., a path predicate, ``...``).

    Raises:
      ValueError: an unknown name or an object flax cannot read as a filter.
    """
    if isinstance(decay, str):
        if decay not in DECAY:
            raise ValueError(f"unknown decay {decay!r}; expected one of {tuple(DECAY)} or a "
                             "flax.nnx Variable filter")
        return DECAY[decay]
    try:
        filterlib.to_predicate(decay)
    except Exception as exc:  # flax raises TypeError for things it cannot read
        raise ValueError(f"decay must be one of {tuple(DECAY)} or a flax.nnx Variable filter, "
                         f"got {decay!r} ({exc})") from None
    return decay


def decayed_variables(model: nnx.Module, decay: Any) -> list[nnx.Variable]:
    """The Variables of ``model`` that ``decay`` selects (each once), in graph order."""
    pred = filterlib.to_predicate(decay_filter(decay))
    out, seen = [], set()
    for path, node in nnx.iter_graph(model):
        if isinstance(node, nnx.Variable) and id(node) not in seen and pred(path, node):
            seen.add(id(node))
            out.append(node)
    return out


def safe_norm(x: jax.Array, axis) -> jax.Array:
    """Euclidean norm along ``axis`` whose gradient at 0 is 0 (a subgradient) instead of NaN."""
    sq = jnp.sum(x * x, axis=axis)
    pos = sq > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, sq, 1.0)), 0.0)


def _input_norms(W, b, with_bias: bool):
    return safe_norm(jnp.concatenate([W, b[:, None]], axis=1) if with_bias else W, axis=1)


def penalty(model: nnx.Module, regularizer: str = "none", decay: Any = "weights") -> jax.Array:
    """``R(theta)`` of ``model`` (without ``lam``) for a regularizer of :data:`REGULARIZERS`.

    Differentiable everywhere (subgradient 0 at zero columns and rows); works on a model merged
    from traced state inside ``jax.jit``. ``"prox"`` gives the VV norm (the value the proximal
    method's objective takes on its constraint set).

    Raises:
      ValueError: unknown ``regularizer`` or ``decay``.
    """
    if regularizer not in REGULARIZERS:
        raise ValueError(f"unknown regularizer {regularizer!r}; expected one of {REGULARIZERS}")
    selected = decayed_variables(model, decay)
    total = jnp.zeros((), _param_dtype(model))
    if regularizer == "none":
        return total
    if regularizer == "weight_decay":
        for v in selected:
            total = total + jnp.sum(v[...] * v[...])
        return 0.5 * total
    decayed = {id(v) for v in selected}
    for W_in, b_in, W_out in model.hidden_layers():
        out = (jnp.sum(jnp.abs(W_out[...]), axis=0) if regularizer == "m1"
               else safe_norm(W_out[...], axis=0))
        total = total + jnp.sum(out * _input_norms(W_in[...], b_in[...], id(b_in) in decayed))
    return total


def _param_dtype(model):
    leaves = jax.tree.leaves(nnx.state(model, nnx.Param))
    return leaves[0].dtype if leaves else jnp.zeros(()).dtype


def lasso_lam(lam: float, d_out: int, *, loss: str = "mse", activation: str = "relu") -> float:
    """The multi-task-lasso weight equivalent to training weight ``lam``.

    Training with ``"mse"`` minimises, in the output layer, ``1/(N D) ||V Phi - Psi||_F^2 + lam
    sum_k ||v_k||_2`` (``Phi``: features of unit-norm input weights ``||(w_k, b_k)|| = 1``, K x N;
    the proximal method keeps them so, and weight decay or the VV penalty reach the same objective
    after :func:`vvjax.norms.balance` and the rescaling to unit input norms); the lasso solvers
    (:func:`vvjax.lasso.solve_penalized`) minimise ``1/(2N) ||V Phi - Psi||_F^2 + lam' sum_k
    ||v_k||_2``. Multiplying the first by ``D/2`` gives the second with ``lam' = lam * D / 2``: the
    same minimisers in ``V`` (``docs/paper.md`` §3.2, §4.3).

    Args:
      lam: the training weight (>= 0) of ``"prox"``, ``"vv"`` or ``"weight_decay"``.
      d_out: the number of outputs D of the layer (the next layer's width).
      loss: only ``"mse"`` has a lasso equivalent.
      activation: the network's activation: the rescaling to unit-norm features, and so the
        equivalence, needs a positively homogeneous one.

    Returns:
      ``lam * d_out / 2`` as a Python float.

    Raises:
      ValueError: negative ``lam``, ``d_out`` < 1, or another loss.
      vvjax.activations.NonHomogeneousError: a non-homogeneous activation.

    Examples:
      >>> lasso_lam(5e-5, 2)
      5e-05
    """
    from vvjax._validate import check_nonnegative, check_positive_int
    from vvjax.activations import require_homogeneous

    check_nonnegative("lam", lam)
    check_positive_int("d_out", d_out)
    if loss != "mse":
        raise ValueError(f"lasso_lam converts the 'mse' training weight only, got loss={loss!r}")
    require_homogeneous(activation, "lasso_lam (weight decay <=> VV norm <=> multi-task lasso)")
    return float(lam) * d_out / 2.0
