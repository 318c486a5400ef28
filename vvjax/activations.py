"""The activation table: every nonlinearity a vvjax network may use, and whether it is homogeneous.

The paper's theory (arXiv 2305.16534: weight decay and the VV norm, and the width bounds for
homogeneous layers; ``docs/paper.md`` §3.2, §6) rests on one property of ReLU: positive
1-homogeneity,
``sigma(alpha t) = alpha sigma(t)`` for ``alpha > 0``. It lets every neuron be rescaled by
``(alpha w_k, alpha b_k, v_k / alpha)`` without changing the network, which is what makes weight
decay equal to the VV (path) norm at a balanced network, what the proximal method exploits, and
what makes the activity rule ``||v_k|| ||(w_k, b_k)||`` rescaling invariant. Leaky ReLU is
homogeneous too; GELU, SiLU (swish), softplus and tanh are not, and vvjax refuses the
homogeneity-only operations for them (:func:`require_homogeneous`).

=============== ============================================= ===========
name            sigma(t)                                      homogeneous
=============== ============================================= ===========
``relu``        ``max(t, 0)``                                 yes
``leaky_relu``  ``t`` if ``t >= 0`` else ``negative_slope t`` yes
``gelu``        ``t Phi(t)`` (exact, erf form)                no
``silu``        ``t / (1 + exp(-t))`` (swish)                 no
``softplus``    ``log(1 + exp(t))``                           no
``tanh``        ``tanh(t)``                                   no
=============== ============================================= ===========

This module is the only place in vvjax that names a nonlinearity (``jax.nn.relu`` appears nowhere
else).
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp

from vvjax._validate import check_choice

__all__ = [
    "ACTIVATIONS",
    "HOMOGENEOUS",
    "DEFAULT_NEGATIVE_SLOPE",
    "NonHomogeneousError",
    "get",
    "apply",
    "is_homogeneous",
    "check_activation",
    "require_homogeneous",
]

DEFAULT_NEGATIVE_SLOPE = 0.01
"""Slope of leaky ReLU for ``t < 0`` (``jax.nn.leaky_relu``'s and PyTorch's default)."""


def _leaky_relu(t, negative_slope):
    return jnp.where(t >= 0, t, negative_slope * t)


_TABLE: dict[str, tuple[Callable, bool]] = {
    "relu": (lambda t, s: jax.nn.relu(t), True),
    "leaky_relu": (_leaky_relu, True),
    "gelu": (lambda t, s: jax.nn.gelu(t, approximate=False), False),
    "silu": (lambda t, s: jax.nn.silu(t), False),
    "softplus": (lambda t, s: jax.nn.softplus(t), False),
    "tanh": (lambda t, s: jnp.tanh(t), False),
}

ACTIVATIONS = tuple(_TABLE)
"""Names accepted by ``activation=`` everywhere in vvjax."""
HOMOGENEOUS = tuple(name for name, (_, hom) in _TABLE.items() if hom)
"""The positively 1-homogeneous activations (``sigma(alpha t) = alpha sigma(t)``, ``alpha > 0``)."""


class NonHomogeneousError(ValueError):
    """An operation that is only defined or only correct for positively homogeneous activations
    (balancing, the weight decay <=> VV norm equivalence, the proximal method, the rescaling
    invariance of the activity rule) was asked for a network with another activation."""


def check_activation(activation: str, negative_slope: float = DEFAULT_NEGATIVE_SLOPE) -> None:
    """Raise ``ValueError`` naming the argument unless ``activation`` is in :data:`ACTIVATIONS` and
    ``negative_slope`` is a finite number in ``[0, 1)`` (it matters only for ``"leaky_relu"``)."""
    check_choice("activation", activation, ACTIVATIONS)
    if isinstance(negative_slope, bool) or not isinstance(negative_slope, (int, float)) \
            or not 0 <= float(negative_slope) < 1:
        raise ValueError(f"negative_slope must be a number in [0, 1), got {negative_slope!r}")


def get(activation: str, negative_slope: float = DEFAULT_NEGATIVE_SLOPE) -> Callable:
    """The elementwise function ``t -> sigma(t)`` for ``activation`` (see the module table).

    Raises:
      ValueError: unknown name or invalid ``negative_slope``.
    """
    check_activation(activation, negative_slope)
    fn, _ = _TABLE[activation]
    slope = float(negative_slope)
    return lambda t: fn(t, slope)


def apply(activation: str, t: jax.Array,
          negative_slope: float = DEFAULT_NEGATIVE_SLOPE) -> jax.Array:
    """``sigma(t)`` elementwise, same shape and dtype as ``t``."""
    return get(activation, negative_slope)(t)


def is_homogeneous(activation: str) -> bool:
    """Whether ``activation`` is positively 1-homogeneous (``relu``, ``leaky_relu``)."""
    check_choice("activation", activation, ACTIVATIONS)
    return _TABLE[activation][1]


def require_homogeneous(activation: str, what: str) -> None:
    """Raise :class:`NonHomogeneousError` unless ``activation`` is positively homogeneous.

    Args:
      activation: the network's activation name.
      what: the operation asked for, used in the message (e.g. ``"norms.balance"``).
    """
    if not is_homogeneous(activation):
        raise NonHomogeneousError(
            f"{what} needs a positively homogeneous activation (one of {HOMOGENEOUS}), but the "
            f"network uses {activation!r}: without sigma(a t) = a sigma(t) a neuron cannot be "
            "rescaled without changing the network, so the result would mean nothing "
            "(arXiv 2305.16534, weight decay and the VV norm; docs/paper.md §3.2)")
