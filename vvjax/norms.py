"""Weight decay and the norms it induces, as pure functions of arrays.

For a shallow network ``f(x) = sum_k v_k relu(w_k^T x - b_k)``
(``W`` K x d, ``b`` (K,), ``V`` D x K), ReLU's positive homogeneity lets every neuron be rescaled by
``(alpha w_k, alpha b_k, v_k / alpha)`` without changing ``f``. Minimising the weight-decay penalty
over these rescalings gives

    min_alpha 1/2 (alpha^2 ||(w_k, b_k)||^2 + ||v_k||^2 / alpha^2) = ||(w_k, b_k)||_2 ||v_k||_2,

so weight decay equals the VV (path) norm ``sum_k ||v_k||_2 ||(w_k, b_k)||_2`` at a balanced network
(arXiv 2305.16534, weight decay and the VV norm; docs/paper.md §3.2). The ``||.||_{M,1}`` norm
replaces ``||v_k||_2`` by ``||v_k||_1``: it separates across outputs and gives no incentive to
share neurons (docs/paper.md §3.3).

``include_bias`` chooses whether ``b_k`` counts as part of the input weight (the paper's experiment:
yes, ``||(w_k, b_k)|| = 1``; the theory: biases unregularized).
"""

import jax
import jax.numpy as jnp

from vvjax.activations import require_homogeneous
from vvjax.models import DeepParams, ShallowParams

__all__ = [
    "input_norms",
    "output_norms",
    "neuron_norms",
    "weight_decay_penalty",
    "vv_norm",
    "m1_norm",
    "balance",
    "balance_params",
    "deep_weight_decay_penalty",
    "layer_vv_norms",
    "balance_layer",
]


def input_norms(W: jax.Array, b: jax.Array | None = None, *,
                include_bias: bool = True) -> jax.Array:
    """``||(w_k, b_k)||_2`` (or ``||w_k||_2`` without the bias)
    for ``W`` (K, d), ``b`` (K,) -> (K,)."""
    sq = jnp.sum(W * W, axis=1)
    if include_bias and b is not None:
        sq = sq + b * b
    return jnp.sqrt(sq)


def output_norms(V: jax.Array, *, ord: int = 2) -> jax.Array:
    """``||v_k||_ord`` of every column of ``V`` (D, K) -> (K,); ``ord`` is 1 or 2."""
    if ord == 1:
        return jnp.sum(jnp.abs(V), axis=0)
    if ord == 2:
        return jnp.sqrt(jnp.sum(V * V, axis=0))
    raise ValueError(f"ord must be 1 or 2, got {ord!r}")


def neuron_norms(W, b, V, *, include_bias: bool = True) -> jax.Array:
    """Per-neuron path norms ``||v_k||_2 ||(w_k, b_k)||_2`` -> (K,)."""
    return output_norms(V) * input_norms(W, b, include_bias=include_bias)


def weight_decay_penalty(W, b, V, *, include_bias: bool = True) -> jax.Array:
    """``1/2 sum_k (||w_k||^2 [+ b_k^2] + ||v_k||^2)``: the weight-decay penalty
    (without lambda)."""
    return 0.5 * (jnp.sum(input_norms(W, b, include_bias=include_bias) ** 2) + jnp.sum(V * V))


def vv_norm(W, b, V, *, include_bias: bool = True) -> jax.Array:
    """VV norm of the network's measure: ``sum_k ||v_k||_2 ||(w_k, b_k)||_2`` (l2 across outputs).

    Equals :func:`weight_decay_penalty` after :func:`balance`, and is invariant to neuron rescaling.

    References: arXiv 2305.16534 (VV spaces: ``||nu||_{M,2}`` of a finite network);
    docs/paper.md §3.3.
    """
    return jnp.sum(neuron_norms(W, b, V, include_bias=include_bias))


def m1_norm(W, b, V, *, include_bias: bool = True) -> jax.Array:
    """Output-separable ``||nu||_{M,1}`` norm: ``sum_k ||v_k||_1 ||(w_k, b_k)||_2``.

    It decouples into D scalar problems, so it rewards no neuron sharing (docs/paper.md §3.3).
    """
    return jnp.sum(output_norms(V, ord=1) * input_norms(W, b, include_bias=include_bias))


def _balance_scale(in_norm, out_norm):
    """alpha with alpha * in_norm == out_norm / alpha; 1 where undefined (a zero input norm)."""
    ok = in_norm > 0
    return jnp.where(ok, jnp.sqrt(out_norm / jnp.where(ok, in_norm, 1.0)), 1.0)


def balance(W, b, V, *, include_bias: bool = True, activation: str = "relu"):
    """Rescale every neuron so that ``||(w_k, b_k)|| = ||v_k||`` without changing the function.

    Returns ``(W', b', V')`` with ``w'_k = alpha_k w_k``, ``b'_k = alpha_k b_k``,
    ``v'_k = v_k/alpha_k``, ``alpha_k = sqrt(||v_k|| / ||(w_k, b_k)||)``. A neuron with ``v_k = 0``
    gets zero input weights (it contributes nothing either way); one with a zero input norm is left
    unchanged. After balancing, ``weight_decay_penalty == vv_norm``.

    Args:
      W: (K, d). b: (K,). V: (D, K).
      include_bias: whether ``b_k`` counts in the input norm being balanced.
      activation: the network's activation; the function is unchanged only for positively
        homogeneous ones (:mod:`vvjax.activations`).

    Raises:
      vvjax.activations.NonHomogeneousError: ``activation`` is not positively homogeneous.
    """
    require_homogeneous(activation, "norms.balance")
    alpha = _balance_scale(input_norms(W, b, include_bias=include_bias), output_norms(V))
    safe = jnp.where(alpha > 0, alpha, 1.0)
    V_new = jnp.where(alpha[None, :] > 0, V / safe[None, :], 0.0)
    return W * alpha[:, None], b * alpha, V_new


def balance_params(params: ShallowParams, *, include_bias: bool = True,
                   activation: str = "relu") -> ShallowParams:
    """:func:`balance` on a :class:`~vvjax.models.ShallowParams` (the output bias is untouched)."""
    W, b, V = balance(params.W, params.b, params.V, include_bias=include_bias,
                      activation=activation)
    return ShallowParams(W, b, V, params.c)


def deep_weight_decay_penalty(params: DeepParams, *, include_bias: bool = False) -> jax.Array:
    """``1/2 sum_l ||W_l||_F^2`` (plus ``||b_l||^2`` if ``include_bias``) for a deep network."""
    total = sum(jnp.sum(W * W) for W in params.Ws)
    if include_bias:
        total = total + sum(jnp.sum(b * b) for b in params.bs)
    return 0.5 * total


def layer_vv_norms(params: DeepParams, *, include_bias: bool = False) -> list[jax.Array]:
    """VV norm of every hidden layer l: ``sum_k ||W_{l+1}[:, k]|| ||(W_l[k, :], b_l[k])||``."""
    return [
        vv_norm(params.Ws[l], params.bs[l], params.Ws[l + 1], include_bias=include_bias)
        for l in range(len(params.Ws) - 1)
    ]


def balance_layer(params: DeepParams, layer: int, *, include_bias: bool = False,
                  activation: str = "relu") -> DeepParams:
    """Balance hidden layer ``layer``: rows of ``W_l`` (and ``b_l``) against columns of ``W_{l+1}``.

    The network function is unchanged. With ``include_bias=False`` the bias is still rescaled (it
    must be, to keep the function), but it does not enter the norms being equalised.
    """
    if not 0 <= layer < len(params.Ws) - 1:
        raise ValueError(f"layer must index a hidden layer in [0, {len(params.Ws) - 2}], "
                         f"got {layer}")
    W_in, b_in, W_out = balance(params.Ws[layer], params.bs[layer], params.Ws[layer + 1],
                                include_bias=include_bias, activation=activation)
    Ws, bs = list(params.Ws), list(params.bs)
    Ws[layer], bs[layer], Ws[layer + 1] = W_in, b_in, W_out
    return DeepParams(tuple(Ws), tuple(bs))
