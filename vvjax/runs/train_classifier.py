"""Train a weight-decayed MLP classifier (the network :mod:`vvjax.runs.compress` compresses).

The default recipe makes the hidden layers compressible by the multi-task lasso: a
``DeepVVNet`` 64-512-512-10 with ReLU on scikit-learn's digits, cross-entropy plus weight decay
``lam/2 sum_l ||W_l||_F^2`` on every weight matrix (``lam = 5e-3``; biases not decayed), Adam
(lr 1e-3), minibatches of 128, 2000 steps (~190 epochs), float32. With weight decay every hidden
layer is homogeneous (``docs/paper.md`` §6): its outgoing weights then solve a multi-task lasso,
which is what compression exploits (arXiv 2305.16534; ``docs/paper.md`` §4.3, §7.5).
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import jax.numpy as jnp
import numpy as np
from flax import nnx

from vvjax import analysis, checkpoint, data, results, train
from vvjax.models import DeepVVNet, params_of
from vvjax.runs._job import run_job

__all__ = ["DATASETS", "DataConfig", "ClassifierConfig", "TrainClassifierConfig", "load_data",
           "check_data_config", "train_classifier", "classifier_scores", "run_train_classifier"]

DATASETS = ("digits", "mnist1d", "cifar10")
_DTYPES = {"float32": jnp.float32, "float64": jnp.float64}


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
    lam: float = 5e-3
    """Weight-decay weight in the ``lam/2 ||W||^2`` convention of :mod:`vvjax.objectives`."""
    decay: str = "weights"
    """What weight decay covers: ``weights`` (every weight matrix) or ``weights_and_biases``."""


@dataclass
class TrainClassifierConfig:
    """Config of :func:`run_train_classifier` (``conf/train_classifier/config.yaml``)."""

    seed: int = 0
    """Initialisation and minibatch-shuffling seed."""
    precision: str = "float64"
    data: DataConfig = field(default_factory=DataConfig)
    model: ClassifierConfig = field(default_factory=ClassifierConfig)
    log_every: int = 100
    progress: bool = False


def load_data(cfg: DataConfig) -> data.Dataset:
    """The data set a :class:`DataConfig` names.

    Raises:
      ValueError: an unknown ``data.name``, a ``data.root`` given for a bundled data set, or (from
        :func:`vvjax.data.cifar10`) a missing or malformed CIFAR-10 folder.
    """
    check_data_config(cfg)
    if cfg.name == "digits":
        return data.digits(seed=0 if cfg.seed is None else cfg.seed)
    if cfg.name == "mnist1d":
        return data.mnist1d(n_samples=cfg.n_samples, seed=42 if cfg.seed is None else cfg.seed)
    return data.cifar10(cfg.root)


def train_classifier(cfg: ClassifierConfig, ds: data.Dataset, seed: int, *, log_every: int = 100,
                     progress: bool = False):
    """Train the classifier of ``cfg`` on ``ds`` from ``seed``; returns ``(model, history)``.

    Raises:
      ValueError: a dtype other than float32/float64, and anything :func:`vvjax.train.fit`
        refuses (named).
    """
    if cfg.dtype not in _DTYPES:
        raise ValueError(f"model.dtype must be one of {tuple(_DTYPES)}, got {cfg.dtype!r}")
    if ds.n_classes is None:
        raise ValueError(f"data set {ds.name} is not a classification problem")
    widths = [ds.X_train.shape[1], *cfg.hidden, ds.n_classes]
    net = DeepVVNet(widths, rngs=nnx.Rngs(seed), activation=cfg.activation, init=cfg.init,
                    dtype=_DTYPES[cfg.dtype])
    return train.fit(net, ds.X_train, ds.Y_train, steps=cfg.steps, lr=cfg.lr,
                     optimizer=cfg.optimizer, loss="cross_entropy", regularizer=cfg.regularizer,
                     lam=cfg.lam, decay=cfg.decay, batch_size=cfg.batch_size, key=seed,
                     log_every=log_every, progress=progress)


def classifier_scores(model, ds: data.Dataset) -> dict[str, Any]:
    """Training/test cross-entropy and accuracy, and the active neurons of every hidden layer
    (the activity rule of :mod:`vvjax.analysis`)."""
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
    checkpoint.save(model, out_dir / "model.vvjax",
                    metadata={"data": results.to_jsonable(cfg.data), "seed": cfg.seed,
                              "train": results.to_jsonable(cfg.model)})
    results.save_npz(out_dir / "history.npz", **history._asdict())
    return {"data": ds.name, "n_train": int(ds.X_train.shape[0]),
            "n_test": int(ds.X_test.shape[0]), **classifier_scores(model, ds),
            "final_objective": float(history.loss[-1]), "checkpoint": "model.vvjax"}


def run_train_classifier(cfg: TrainClassifierConfig, out_dir: str | Path) -> dict[str, Any]:
    """Train (or resume) the classifier into ``out_dir``; returns its metrics.

    Writes ``model.vvjax`` (a :mod:`vvjax.checkpoint`, loadable by ``experiments/compress.py
    checkpoints=[...]``), ``history.npz`` and, last, ``metrics.json`` (training/test loss and
    accuracy, widths, active neurons per hidden layer, config, seed, versions, git commit).

    Raises:
      TypeError: ``cfg`` is not a :class:`TrainClassifierConfig`.
      ValueError: a bad data set or model setting, named.
    """
    if not isinstance(cfg, TrainClassifierConfig):
        raise TypeError(f"cfg must be a TrainClassifierConfig, got {type(cfg).__name__}")
    check_data_config(cfg.data)
    return run_job(cfg, out_dir, _body, task="train_classifier")


def check_data_config(cfg: DataConfig) -> None:
    """The checks of :func:`load_data` that need no files (run before a job starts)."""
    if cfg.name not in DATASETS:
        raise ValueError(f"data.name must be one of {DATASETS}, got {cfg.name!r}")
    if cfg.name != "cifar10" and cfg.root is not None:
        raise ValueError(f"data.root is for cifar10 only; {cfg.name} needs no files")
    if cfg.name == "cifar10" and not cfg.root:
        raise ValueError("data.root must name the local CIFAR-10 folder for data.name=cifar10 "
                         "(vvjax never downloads it)")
