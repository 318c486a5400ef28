"""Train a weight-decayed MLP classifier (the network :mod:`vvjax.runs.compress` compresses).

The default recipe makes the hidden layers compressible by the multi-task lasso: a
``DeepVVNet`` 64-512-512-10 with ReLU on scikit-learn's digits, cross-entropy plus weight decay
``lam/2 sum_l ||W_l||_F^2`` on every weight matrix (``lam = 5e-3``; biases not decayed), Adam
(lr 1e-3), minibatches of 128, 2000 steps (~190 epochs), float32. With weight decay every hidden
layer is homogeneous (``docs/paper.md`` §6): its outgoing weights then solve a multi-task lasso,
which is what compression exploits (arXiv 2305.16534; ``docs/paper.md`` §4.3, §7.5).
"""

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Optional

import jax.numpy as jnp
import numpy as np
from flax import nnx

from vvjax import analysis, checkpoint, data, objectives, results, train
from vvjax._config import ConfigError, Rule, above, at_least, one_of, validate
from vvjax.activations import ACTIVATIONS
from vvjax.convergence import Criterion, assess
from vvjax.models import INITS, DeepVVNet, params_of
from vvjax.runs._job import PRECISIONS, run_job

__all__ = ["DATASETS", "INPUT_SIZES", "N_CLASSES", "DEEP_REGULARIZERS", "DataConfig",
           "ClassifierConfig", "TrainClassifierConfig", "STOCHASTIC_CRITERION", "load_data",
           "check_data_files", "train_classifier", "assess_training", "classifier_scores",
           "run_train_classifier"]

DATASETS = ("digits", "mnist1d", "cifar10")
INPUT_SIZES = {"digits": 64, "mnist1d": data.MNIST1D_LENGTH, "cifar10": 3072}
"""Input size of each data set (8x8 images, signals of length 40, 32x32 RGB images)."""
N_CLASSES = 10
"""Classes of every data set of :data:`DATASETS`."""
DEEP_REGULARIZERS = tuple(r for r in objectives.REGULARIZERS if r != "prox")
"""Regularizers of a deep classifier (the proximal method is for shallow networks only)."""
_DTYPES = {"float32": jnp.float32, "float64": jnp.float64}


def _hidden_rule() -> Rule:
    return Rule(lambda v: len(v) > 0 and all(k >= 1 for k in v),
                "a non-empty list of widths >= 1")


@dataclass
class DataConfig:
    """The classification data set (:mod:`vvjax.data`)."""

    name: str = "digits"
    """One of :data:`DATASETS`: ``digits`` (scikit-learn's, bundled), ``mnist1d`` (generated
    offline by the ``mnist1d`` package) or ``cifar10`` (a local folder, ``root``)."""
    root: Optional[str] = None  # noqa: UP045 (OmegaConf needs Optional)
    """CIFAR-10 only: the local ``cifar-10-batches-py`` folder (or the folder holding it)."""
    seed: Optional[int] = None  # noqa: UP045
    """digits: the train/test split's seed (default 0); mnist1d: the generator's seed (default
    42, the package's)."""
    n_samples: int = 5000
    """mnist1d only: signals generated (4/5 for training)."""

    RULES: ClassVar[dict[str, Rule]] = {"name": one_of(DATASETS), "seed": at_least(0),
                                        "n_samples": at_least(20)}

    def cross_check(self) -> None:
        """``root`` is for CIFAR-10 only, and CIFAR-10 needs it (checked before any work)."""
        if self.name != "cifar10" and self.root is not None:
            raise ConfigError(f"data.root is for cifar10 only; {self.name} needs no files")
        if self.name == "cifar10" and not self.root:
            raise ConfigError("data.root must name the local CIFAR-10 folder for "
                              "data.name=cifar10 (vvjax never downloads it)")


@dataclass
class ClassifierConfig:
    """A ``DeepVVNet`` classifier and how it is trained (:func:`vvjax.train.fit`)."""

    hidden: list[int] = field(default_factory=lambda: [512, 512])
    """Hidden-layer widths; the input and output sizes come from the data."""
    activation: str = "relu"
    init: str = "torch"
    dtype: str = "float32"
    """Parameter dtype during training (compression analyses the layers in the job's
    ``precision``)."""
    optimizer: str = "adam"
    lr: float = 1e-3
    steps: int = 2000
    batch_size: Optional[int] = 128  # noqa: UP045
    """Minibatch size (``None``: full batch)."""
    regularizer: str = "weight_decay"
    """One of :data:`DEEP_REGULARIZERS`."""
    lam: float = 5e-3
    """Weight-decay weight in the ``lam/2 ||W||^2`` convention of :mod:`vvjax.objectives`."""
    decay: str = "weights"
    """What weight decay covers: ``weights`` (every weight matrix) or ``weights_and_biases``."""

    RULES: ClassVar[dict[str, Rule]] = {
        "hidden": _hidden_rule(), "activation": one_of(ACTIVATIONS), "init": one_of(INITS),
        "dtype": one_of(tuple(_DTYPES)), "optimizer": one_of(train.OPTIMIZERS), "lr": above(0),
        "steps": at_least(1), "batch_size": at_least(1),
        "regularizer": one_of(DEEP_REGULARIZERS), "lam": at_least(0),
        "decay": one_of(tuple(objectives.DECAY))}


STOCHASTIC_CRITERION = Criterion(window=5, rtol=0.05)
"""The convergence test of minibatch training (:mod:`vvjax.convergence`): the full-data objective
spread at most 5 % over the last 5 log blocks. Minibatch Adam at a constant step size does not
settle below its noise: with the digits recipe (seeds 0-2) the objective still wanders 2.6-3.4 %
over the last 500 of 2000 steps (1.4-3.1 % over the last 500 of 4000 on MNIST-1D), so the
default ``rtol=1e-3`` of full-batch training would call every such run unconverged."""


def _stochastic_criterion() -> Criterion:
    return dataclasses.replace(STOCHASTIC_CRITERION)


@dataclass
class TrainClassifierConfig:
    """Config of :func:`run_train_classifier` (``conf/train_classifier/config.yaml``)."""

    seed: int = 0
    """Initialisation and minibatch-shuffling seed."""
    precision: str = "float64"
    data: DataConfig = field(default_factory=DataConfig)
    model: ClassifierConfig = field(default_factory=ClassifierConfig)
    log_every: int = 100
    convergence: Criterion = field(default_factory=_stochastic_criterion)
    """When the training counts as converged or collapsed (:func:`assess_training`)."""
    progress: bool = field(default=False, compare=False)  # compare=False: not in the config hash

    RULES: ClassVar[dict[str, Rule]] = {"seed": at_least(0), "precision": one_of(PRECISIONS),
                                        "log_every": at_least(1)}


def load_data(cfg: DataConfig) -> data.Dataset:
    """The data set a :class:`DataConfig` names (checked first, keys named ``data.<field>``).

    Args:
      cfg: the data config.

    Returns:
      A :class:`vvjax.data.Dataset` with int64 labels and ``n_classes`` 10.

    Raises:
      ConfigError (a ``ValueError``): an unknown ``data.name``, a ``data.root`` given for a
        bundled data set or missing for CIFAR-10, ``data.n_samples < 20``.
      ValueError: (from :func:`vvjax.data.cifar10`) a missing or malformed CIFAR-10 folder.
    """
    cfg = validate(cfg, key="data")
    if cfg.name == "digits":
        return data.digits(seed=0 if cfg.seed is None else cfg.seed)
    if cfg.name == "mnist1d":
        return data.mnist1d(n_samples=cfg.n_samples, seed=42 if cfg.seed is None else cfg.seed)
    return data.cifar10(cfg.root)


def train_classifier(cfg: ClassifierConfig, ds: data.Dataset, seed: int, *, log_every: int = 100,
                     progress: bool = False):
    """Train the classifier of ``cfg`` on ``ds`` from ``seed``; returns ``(model, history)``.

    The network is a ``DeepVVNet`` ``[d_in, *cfg.hidden, n_classes]`` in ``cfg.dtype``, trained by
    :func:`vvjax.train.fit` with the cross-entropy loss; ``seed`` draws the initialisation and
    the minibatch order (the same seed gives the same bits).

    Args:
      cfg: the network and its training (checked first, keys named ``model.<field>``).
      ds: a classification data set (integer labels, ``n_classes`` set).
      seed: initialisation and shuffling seed (>= 0).
      log_every: log the curves every this many steps.
      progress: show a progress bar.

    Returns:
      ``(model, history)``: the trained ``DeepVVNet`` and its :class:`vvjax.train.History`.

    Raises:
      ConfigError (a ``ValueError``): a bad ``cfg`` value, named.
      ValueError: ``ds`` is not a classification data set, and anything
        :func:`vvjax.train.fit` refuses (named).
    """
    cfg = validate(cfg, key="model")
    if ds.n_classes is None:
        raise ValueError(f"data set {ds.name} is not a classification problem")
    widths = [ds.X_train.shape[1], *cfg.hidden, ds.n_classes]
    net = DeepVVNet(widths, rngs=nnx.Rngs(seed), activation=cfg.activation, init=cfg.init,
                    dtype=_DTYPES[cfg.dtype])
    return train.fit(net, ds.X_train, ds.Y_train, steps=cfg.steps, lr=cfg.lr,
                     optimizer=cfg.optimizer, loss="cross_entropy", regularizer=cfg.regularizer,
                     lam=cfg.lam, decay=cfg.decay, batch_size=cfg.batch_size, key=seed,
                     log_every=log_every, progress=progress)


def assess_training(history, n_classes: int,
                    criterion: Criterion | None = None) -> dict[str, Any]:
    """Convergence status of a classifier's training (:func:`vvjax.convergence.assess`).

    The collapse baseline is the cross-entropy of the zero predictor, ``log(n_classes)`` (zero
    logits give the uniform distribution on every sample): a run whose final data fit is not
    clearly below it learned nothing.

    Args:
      history: the :class:`vvjax.train.History` of the run (full-data objective and data fit).
      n_classes: number of classes (>= 2).
      criterion: the test (default :data:`STOCHASTIC_CRITERION`, for minibatch training).

    Returns:
      ``{"status", "converged", "collapsed", "rel_change", "fit_ratio"}`` (Python scalars).

    Raises:
      ValueError: ``n_classes < 2``, or curves :func:`vvjax.convergence.assess` refuses.

    Examples:
      >>> from vvjax.train import History
      >>> h = History(step=np.arange(3), loss=np.array([2.0, 0.5, 0.5]),
      ...             data_fit=np.array([2.0, 0.3, 0.3]), penalty=np.zeros(3),
      ...             n_active=np.zeros(3))
      >>> assess_training(h, 10, Criterion(window=1))["status"]
      'ok'
    """
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) \
            or n_classes < 2:
        raise ValueError(f"n_classes must be an integer >= 2, got {n_classes!r}")
    verdict = assess(history.loss, history.data_fit, math.log(n_classes),
                     criterion or STOCHASTIC_CRITERION)
    return verdict._asdict()


def classifier_scores(model, ds: data.Dataset) -> dict[str, Any]:
    """Training/test cross-entropy and accuracy, and the active neurons of every hidden layer
    (the activity rule of :mod:`vvjax.analysis`).

    Args:
      model: a trained ``DeepVVNet`` classifier.
      ds: its data set.

    Returns:
      ``{"train_loss", "train_accuracy", "test_loss", "test_accuracy", "widths", "n_active"}``
      (accuracies in [0, 1], ``n_active`` one count per hidden layer).
    """
    from vvjax.compress.evaluate import outputs, scores

    out = {}
    for split, X, Y in (("train", ds.X_train, ds.Y_train), ("test", ds.X_test, ds.Y_test)):
        s = scores(outputs(model, X), Y)
        out[f"{split}_loss"], out[f"{split}_accuracy"] = s.loss, s.accuracy
    p = params_of(model)
    out["widths"] = list(model.widths)
    out["n_active"] = [int(analysis.n_active(np.asarray(p.Ws[l], np.float64),
                                             np.asarray(p.bs[l], np.float64),
                                             np.asarray(p.Ws[l + 1], np.float64)))
                       for l in range(len(p.Ws) - 1)]
    return out


def _body(cfg: TrainClassifierConfig, out_dir: Path) -> dict[str, Any]:
    ds = load_data(cfg.data)
    model, history = train_classifier(cfg.model, ds, cfg.seed, log_every=cfg.log_every,
                                      progress=cfg.progress)
    verdict = assess_training(history, ds.n_classes, cfg.convergence)
    checkpoint.save(model, out_dir / "model.vvjax",
                    metadata={"data": results.to_jsonable(cfg.data), "seed": cfg.seed,
                              "train": results.to_jsonable(cfg.model),
                              "convergence": results.to_jsonable(verdict)})
    results.save_npz(out_dir / "history.npz", **history._asdict())
    return {"data": ds.name, "n_train": int(ds.X_train.shape[0]),
            "n_test": int(ds.X_test.shape[0]), **verdict, **classifier_scores(model, ds),
            "final_objective": float(history.loss[-1]), "checkpoint": "model.vvjax"}


def run_train_classifier(cfg: TrainClassifierConfig, out_dir: str | Path, *,
                         on_start: Callable[[Path], None] | None = None) -> dict[str, Any]:
    """Train (or resume) the classifier into ``out_dir``; returns its metrics.

    The whole config is checked first (:func:`vvjax.runs.validate`), before any work. Writes
    ``model.vvjax`` (a :mod:`vvjax.checkpoint`, loadable by ``experiments/compress.py
    checkpoints=[...]``; its metadata holds the data and training configs and the convergence
    verdict), ``history.npz`` and, last, ``metrics.json``: ``status`` (``"ok"``,
    ``"not_converged"``, ``"collapsed"``, ``"diverged"``; :func:`assess_training`) with
    ``converged``, ``collapsed``, ``rel_change`` and ``fit_ratio``, training/test loss and
    accuracy, widths, active neurons per hidden layer, config, seed, versions and git commit.

    Args:
      cfg: the config.
      out_dir: the job folder.
      on_start: see :func:`vvjax.runs.run_job`.

    Returns:
      The metrics as stored.

    Raises:
      TypeError: ``cfg`` is not a :class:`TrainClassifierConfig`.
      ConfigError: a bad key or value (the message names it).
      ValueError: a missing or malformed CIFAR-10 folder (once the job started).
      vvjax.results.JobError: ``out_dir`` holds another finished config or is in use.
    """
    if not isinstance(cfg, TrainClassifierConfig):
        raise TypeError(f"cfg must be a TrainClassifierConfig, got {type(cfg).__name__}")
    cfg = validate(cfg)
    check_data_files(cfg.data)
    return run_job(cfg, out_dir, _body, task="train_classifier", on_start=on_start)


def check_data_files(cfg: DataConfig) -> None:
    """The files a data set needs are there (CIFAR-10's batches, not read), before a job starts.

    Args:
      cfg: a validated data config.

    Raises:
      ConfigError (a ``ValueError``): naming ``data.root``: not a folder, or a batch missing.
    """
    if cfg.name == "cifar10":
        try:
            data.cifar10_folder(cfg.root)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
