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


# ----------------------------------------------------------------------------- more classifiers
# (MNIST-1D, generated offline; CIFAR-10 from a local folder)

__all__ += ["MNIST1D_LENGTH", "mnist1d", "CIFAR10_FOLDER", "cifar10_folder", "cifar10"]

MNIST1D_LENGTH = 40
"""Length of an MNIST-1D signal (the package's ``final_seq_length``)."""


def mnist1d(*, n_samples: int = 5000, train_split: float = 0.8, seed: int = 42) -> Dataset:
    """MNIST-1D (Greydanus & Kobak 2020, arXiv 2011.14439): 10 classes of 1-D signals of length 40,
    generated offline by the ``mnist1d`` package's ``make_dataset`` (never its downloading helper).

    The generator's defaults are used except for ``n_samples``, ``train_split`` and ``seed``: with
    the defaults, 4000 training and 1000 test signals, inputs standardized by the generator (mean 0,
    standard deviation 1 over the whole set), int64 labels in [0, 10). The generator seeds NumPy's
    and Python's global random states; they are restored afterwards.

    Args:
      n_samples: total number of signals (a multiple of 10 is used: ``n_samples // 10`` per class).
      train_split: fraction of the (shuffled) signals in the training set, in (0, 1).
      seed: the generator's seed (42: the package's default).

    Raises:
      ValueError: ``n_samples`` < 20, ``train_split`` outside (0, 1), a seed that is not an int.
      ImportError: the ``mnist1d`` package is missing (``pip install mnist1d``).
    """
    import random

    check_positive_int("n_samples", n_samples)
    if n_samples < 20:
        raise ValueError(f"n_samples must be >= 20 (at least 2 signals per class), got {n_samples}")
    _split_fraction("train_split", train_split)
    if train_split == 0:
        raise ValueError("train_split must be in (0, 1), got 0")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an int, got {seed!r}")
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise ImportError("MNIST-1D needs the mnist1d package: pip install mnist1d") from exc
    args = get_dataset_args()
    args.num_samples, args.train_split, args.seed = int(n_samples), float(train_split), int(seed)
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        raw = make_dataset(args)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    return Dataset(np.asarray(raw["x"], np.float64), np.asarray(raw["y"], np.int64),
                   np.asarray(raw["x_test"], np.float64), np.asarray(raw["y_test"], np.int64),
                   "mnist1d", 10)


CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST = "test_batch"
_CIFAR_HELP = ("CIFAR-10 is read from a local folder in the python-pickle batch format "
               f"({CIFAR10_FOLDER}/ with {', '.join(CIFAR10_TRAIN)} and {CIFAR10_TEST}, as "
               "distributed at https://www.cs.toronto.edu/~kriz/cifar.html); vvjax never "
               "downloads it")


class _BatchUnpickler:
    """Unpickle a CIFAR batch allowing only the types such a file holds (dicts, lists, bytes,
    numbers and NumPy arrays): a pickle can run code, and this refuses anything else."""

    _ALLOWED = {(mod, name) for mod in ("numpy.core.multiarray", "numpy._core.multiarray")
                for name in ("_reconstruct", "scalar")}
    _ALLOWED |= {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}

    @classmethod
    def load(cls, fh):
        import pickle

        class Restricted(pickle.Unpickler):
            def find_class(self, module, name):
                if (module, name) in cls._ALLOWED:
                    return super().find_class(module, name)
                raise pickle.UnpicklingError(f"refusing to load {module}.{name}")

        return Restricted(fh, encoding="bytes").load()


def _cifar_batch(path) -> tuple[np.ndarray, np.ndarray]:
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"data.root: CIFAR-10 batch file {str(path)!r} is missing. "
                         + _CIFAR_HELP)
    try:
        with open(path, "rb") as fh:
            batch = _BatchUnpickler.load(fh)
    except Exception as exc:  # damaged or foreign file: say which
        raise ValueError(f"data.root: {str(path)!r} is not a CIFAR-10 python batch (cannot be "
                         f"unpickled: {type(exc).__name__}: {exc}). " + _CIFAR_HELP) from None
    if not isinstance(batch, dict):
        raise ValueError(f"data.root: {str(path)!r} is not a CIFAR-10 python batch (holds a "
                         f"{type(batch).__name__}, expected a dict with b'data' and b'labels')")
    get = lambda k: batch.get(k.encode(), batch.get(k))  # noqa: E731 (Python 2 pickles: bytes keys)
    data, labels = get("data"), get("labels")
    if data is None or labels is None:
        raise ValueError(f"data.root: {str(path)!r} lacks the b'data' or b'labels' entry of a "
                         "CIFAR-10 python batch")
    data = np.asarray(data)
    if data.ndim != 2 or data.shape[1] != 3072 or data.dtype != np.uint8:
        raise ValueError(f"data.root: {str(path)!r}: b'data' must be a uint8 array of shape (n, "
                         f"3072) (32x32 RGB images), got {data.dtype} {data.shape}")
    labels = np.asarray(labels)
    if labels.shape != (data.shape[0],) or not np.issubdtype(labels.dtype, np.integer) \
            or (labels.size and (labels.min() < 0 or labels.max() > 9)):
        raise ValueError(f"data.root: {str(path)!r}: b'labels' must hold {data.shape[0]} integer "
                         f"labels in [0, 9], got {labels.dtype} {labels.shape}")
    return data, labels.astype(np.int64)


def cifar10_folder(root):
    """The folder holding the CIFAR-10 python batches, checked without reading them.

    Args:
      root: the ``cifar-10-batches-py`` folder itself or the folder that contains it.

    Returns:
      A :class:`pathlib.Path` of the folder with ``data_batch_1`` .. ``data_batch_5`` and
      ``test_batch``.

    Raises:
      ValueError: naming ``data.root``: ``root`` is empty, not a folder, or a batch file is
        missing.
    """
    from pathlib import Path

    if root is None or str(root) == "":
        raise ValueError("data.root must name the local CIFAR-10 folder. " + _CIFAR_HELP)
    root = Path(root).expanduser()
    if not root.is_dir():
        raise ValueError(f"data.root {str(root)!r} is not a folder. " + _CIFAR_HELP)
    folder = root / CIFAR10_FOLDER if (root / CIFAR10_FOLDER).is_dir() else root
    for name in (*CIFAR10_TRAIN, CIFAR10_TEST):
        if not (folder / name).is_file():
            raise ValueError(f"data.root: CIFAR-10 batch file {str(folder / name)!r} is missing. "
                             + _CIFAR_HELP)
    return folder


def cifar10(root, *, dtype=np.float32) -> Dataset:
    """CIFAR-10 (Krizhevsky 2009) from a local folder in the python-pickle batch format.

    ``root`` is the ``cifar-10-batches-py`` folder itself or the folder that contains it. Images
    are flattened to 3072 inputs (the stored channel-major order: 1024 red, 1024 green, 1024 blue
    values) and scaled to [0, 1]; labels are int64 in [0, 10). 50,000 training images
    (``data_batch_1`` .. ``data_batch_5``) and 10,000 test images (``test_batch``). Files are read
    with an unpickler that accepts only the types a batch holds.

    Args:
      root: path of the folder.
      dtype: float dtype of the inputs (float32 by default: the float64 training set takes 1.2 GB).

    Raises:
      ValueError: naming ``data.root``: the folder is absent, a batch file is missing, or a file is
        not a CIFAR-10 python batch (cannot be unpickled, lacks ``b'data'``/``b'labels'``, wrong
        shapes, dtype or label range).
    """
    folder = cifar10_folder(root)
    parts = [_cifar_batch(folder / name) for name in CIFAR10_TRAIN]
    X_test, Y_test = _cifar_batch(folder / CIFAR10_TEST)
    X_train = np.concatenate([p[0] for p in parts])
    Y_train = np.concatenate([p[1] for p in parts])
    scale = np.asarray(1.0 / 255.0, dtype)
    return Dataset(X_train.astype(dtype) * scale, Y_train, X_test.astype(dtype) * scale, Y_test,
                   "cifar10", 10)
