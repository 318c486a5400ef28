"""Data sets: the paper's teacher-network problem, random labels, and real data shipped offline.

Synthetic (``docs/paper.md`` §7.1): ``X`` (N, d) has i.i.d. standard normal rows and
``Y = teacher(X)`` (N, D), where the teacher is a shallow ReLU network of width ``teacher_width``
with PyTorch's default initialisation, a hidden bias and no output bias, and no label noise.

* :func:`teacher_data` draws it with JAX's random numbers (any seed and size; the draws are made
  in float32 and cast, so a seed names one problem in every precision);
* :func:`random_labels` draws Gaussian inputs and independent Gaussian targets (the interpolation
  regime, where learned widths grow most);
* :func:`paper_neuron_sharing` returns the authors' exact arrays (drawn with PyTorch, seeds 43 and
  49, and shipped with vvjax), including the student's initialisation.

Real data, from the copies scikit-learn ships inside its package (nothing is downloaded):

* :func:`digits`: the 8x8 handwritten digits (1797 x 64, 10 classes) with a seeded, stratified
  train/test split and inputs scaled to [0, 1];
* :func:`linnerud`: 20 athletes, 3 exercise inputs, 3 physiological outputs (a real multi-output
  regression problem), standardized.
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
    "teacher_data", "random_labels", "PaperNeuronSharing", "paper_neuron_sharing",
    "PAPER_TEACHER_VV_NORM", "Dataset", "digits", "linnerud",
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
    X = jax.random.normal(k_x, (n, d_in), jnp.float32).astype(dtype)
    params = params_of(teacher)
    return X, shallow_forward(params, X), params


def random_labels(seed: int, *, n: int, d_in: int, d_out: int,
                  dtype=None) -> tuple[jax.Array, jax.Array]:
    """Gaussian inputs ``X`` (n, d_in) and independent Gaussian targets ``Y`` (n, d_out).

    No network explains ``Y``: fitting it means interpolating, the regime where the width bounds
    of ``docs/paper.md`` §4.4-§5 bind. Drawn in float32 and cast to ``dtype`` (default: JAX's
    default float), so a seed names one problem in every precision.

    Raises:
      ValueError: a size that is not an integer >= 1, a seed that is not an int.
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an int, got {seed!r}")
    for name, v in (("n", n), ("d_in", d_in), ("d_out", d_out)):
        check_positive_int(name, v)
    dtype = dtype or jnp.zeros(()).dtype
    k_x, k_y = jax.random.split(jax.random.key(seed))
    return (jax.random.normal(k_x, (n, d_in), jnp.float32).astype(dtype),
            jax.random.normal(k_y, (n, d_out), jnp.float32).astype(dtype))


PAPER_TEACHER_VV_NORM = 0.9980637431144714
"""VV norm of the paper's teacher, as printed in the authors' notebook (docs/paper.md §7.1)."""


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

    References: arXiv 2305.16534 (neuron-sharing experiment); docs/paper.md §7.1.
    """
    dtype = dtype or jnp.zeros(()).dtype
    with resources.files("vvjax").joinpath("_data/paper_neuron_sharing.npz").open("rb") as f:
        z = dict(np.load(f))

    def net(prefix):
        return ShallowParams(*(jnp.asarray(z[f"{prefix}_{k}"], dtype) for k in "WbV"), None)

    return PaperNeuronSharing(jnp.asarray(z["X"], dtype), jnp.asarray(z["Y"], dtype),
                              net("teacher"), net("student"))


class Dataset(NamedTuple):
    """A real data set: NumPy arrays ``X_train`` (N, d), ``Y_train``, ``X_test``, ``Y_test``.

    For classification ``Y_*`` are int64 labels (N,) in ``[0, n_classes)``; for regression float64
    targets (N, D) and ``n_classes`` is ``None``.
    """

    X_train: np.ndarray
    Y_train: np.ndarray
    X_test: np.ndarray
    Y_test: np.ndarray
    name: str
    n_classes: int | None


def _split_fraction(name, v):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < 1:
        raise ValueError(f"{name} must be a fraction in [0, 1), got {v!r}")


def digits(*, test_size: float = 0.25, seed: int = 0) -> Dataset:
    """scikit-learn's 8x8 handwritten digits: 1797 images x 64 pixels, 10 classes, no download.

    Inputs are the pixel intensities divided by 16 (into [0, 1]); labels are int64 in [0, 10). The
    train/test split is stratified by class and fixed by ``seed``
    (``sklearn.model_selection.train_test_split``): with the default ``test_size=0.25``, 1347
    training and 450 test images.

    Raises:
      ValueError: ``test_size`` outside (0, 1) or a seed that is not an int.

    References: Alpaydin & Kaynak (1998), UCI Optical Recognition of Handwritten Digits, as
    packaged by ``sklearn.datasets.load_digits``.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    _split_fraction("test_size", test_size)
    if test_size == 0:
        raise ValueError("test_size must be > 0 for digits (the classifier experiments report "
                         "test accuracy)")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an int, got {seed!r}")
    X, y = load_digits(return_X_y=True)
    X = X.astype(np.float64) / 16.0
    y = y.astype(np.int64)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=test_size, stratify=y,
                                          random_state=seed)
    return Dataset(Xtr, ytr, Xte, yte, "digits", 10)


def linnerud(*, standardize: bool = True) -> Dataset:
    """scikit-learn's Linnerud data: 20 middle-aged men, 3 exercise counts (chins, situps, jumps)
    as inputs and 3 physiological measurements (weight, waist, pulse) as outputs: a real
    multi-output regression problem with N=20, d=3, D=3. No download.

    Args:
      standardize: scale every input and output column to mean 0 and standard deviation 1 (over
        the 20 samples), so that the MSE weighs the three outputs alike.

    Returns:
      A :class:`Dataset` with all 20 samples in the training arrays and empty test arrays
      (shape (0, 3)).

    References: Tenenhaus (1998), as packaged by ``sklearn.datasets.load_linnerud``.
    """
    from sklearn.datasets import load_linnerud

    raw = load_linnerud()
    X, Y = raw.data.astype(np.float64), raw.target.astype(np.float64)
    if standardize:
        X = (X - X.mean(0)) / X.std(0)
        Y = (Y - Y.mean(0)) / Y.std(0)
    return Dataset(X, Y, X[:0], Y[:0], "linnerud", None)
