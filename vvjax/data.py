"""Synthetic data: the teacher-network problem of the paper's neuron-sharing experiment.

``X`` (N, d) has i.i.d. standard normal rows and ``Y = teacher(X)`` (N, D), where the teacher is a
shallow ReLU network of width ``teacher_width`` with PyTorch's default initialisation, a hidden bias
and no output bias, and no label noise (PAPER.md Sec. 5.1).
"""

import jax
import jax.numpy as jnp
from flax import nnx

from vvjax._validate import check_positive_int
from vvjax.models import ShallowParams, ShallowVVNet, params_of, shallow_forward

__all__ = ["teacher_data"]


def teacher_data(seed: int, *, n: int = 50, d_in: int = 2, d_out: int = 2, teacher_width: int = 5,
                 dtype=None) -> tuple[jax.Array, jax.Array, ShallowParams]:
    """Draw ``(X, Y, teacher)`` for the neuron-sharing experiment.

    Args:
      seed: integer seed (the paper uses 43).
      n: number of samples N. d_in: input dimension d. d_out: outputs D.
      teacher_width: neurons of the teacher network (paper: 5).
      dtype: float dtype of the arrays (default: JAX's default float).

    Returns:
      ``X`` (n, d_in), ``Y`` (n, d_out) and the teacher's :class:`~vvjax.models.ShallowParams`.
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an int, got {seed!r}")
    for name, v in (("n", n), ("d_in", d_in), ("d_out", d_out), ("teacher_width", teacher_width)):
        check_positive_int(name, v)
    dtype = dtype or jnp.zeros(()).dtype
    k_x, k_teacher = jax.random.split(jax.random.key(seed))
    teacher = ShallowVVNet(d_in, teacher_width, d_out, rngs=nnx.Rngs(params=k_teacher), dtype=dtype)
    X = jax.random.normal(k_x, (n, d_in), dtype)
    params = params_of(teacher)
    return X, shallow_forward(params, X), params
