"""Data of the paper's neuron-sharing experiment: the teacher-network problem (PAPER.md Sec. 5.1).

``X`` (N, d) has i.i.d. standard normal rows and ``Y = teacher(X)`` (N, D), where the teacher is a
shallow ReLU network of width ``teacher_width`` with PyTorch's default initialisation, a hidden bias
and no output bias, and no label noise.

* :func:`teacher_data` draws it with JAX's random numbers (any seed and size);
* :func:`paper_neuron_sharing` returns the authors' exact arrays (drawn with PyTorch, seeds 43 and
  49, and shipped with vvjax), including the student's initialisation.
"""

from importlib import resources
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from vvjax._validate import check_positive_int
from vvjax.models import ShallowParams, ShallowVVNet, params_of, shallow_forward

__all__ = [
    "teacher_data", "PaperNeuronSharing", "paper_neuron_sharing", "PAPER_TEACHER_VV_NORM",
]


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


PAPER_TEACHER_VV_NORM = 0.9980637431144714
"""VV norm of the paper's teacher, as printed in the authors' notebook (PAPER.md Sec. 5.1)."""


class PaperNeuronSharing(NamedTuple):
    """The authors' neuron-sharing problem: ``X`` (50, 2), ``Y`` (50, 2), the width-5 ``teacher``
    and the width-100 ``student`` initialisation, as :class:`~vvjax.models.ShallowParams` in
    vvjax's convention ``f(x) = V relu(W x - b)``."""

    X: jax.Array
    Y: jax.Array
    teacher: ShallowParams
    student: ShallowParams


def paper_neuron_sharing(dtype=None) -> PaperNeuronSharing:
    """The exact data and initialisations of the paper's neuron-sharing run, without PyTorch.

    The authors' notebook draws ``torch.manual_seed(43); x = torch.randn(50, 2)``, a teacher
    ``Linear(2, 5) -> ReLU -> Linear(5, 2, bias=False)``, ``y = teacher(x)``, then
    ``torch.manual_seed(49)`` and the width-100 student. ``experiments/make_paper_data.py`` replays
    those PyTorch calls and wrote the float32 arrays that ship in ``vvjax/_data``; the teacher's VV
    norm equals the notebook's printed :data:`PAPER_TEACHER_VV_NORM`.

    Args:
      dtype: float dtype of the returned arrays (default: JAX's default float). The stored values
        are float32.

    Returns:
      :class:`PaperNeuronSharing`.

    References: arXiv 2305.16534 (neuron-sharing experiment); PAPER.md Sec. 5.1.
    """
    dtype = dtype or jnp.zeros(()).dtype
    with resources.files("vvjax").joinpath("_data/paper_neuron_sharing.npz").open("rb") as f:
        z = dict(np.load(f))

    def net(prefix):
        return ShallowParams(*(jnp.asarray(z[f"{prefix}_{k}"], dtype) for k in "WbV"), None)

    return PaperNeuronSharing(jnp.asarray(z["X"], dtype), jnp.asarray(z["Y"], dtype),
                              net("teacher"), net("student"))
