"""What a compression changed: losses, accuracy, output changes, parameter counts, run time."""

import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from vvjax.compress.layers import deep_params, to_device
from vvjax.models import deep_forward

__all__ = ["Scores", "outputs", "scores", "check_targets", "inference_time"]


class Scores(NamedTuple):
    """``loss``: mean cross-entropy for integer labels (N,), MSE over N x D entries for targets
    (N, D) (the conventions of :mod:`vvjax.objectives`); ``accuracy``: fraction of correct argmax
    predictions (labels only, else ``None``)."""

    loss: float
    accuracy: float | None


def outputs(model, X) -> np.ndarray:
    """The network's outputs (N, D) on ``X`` (N, d) as NumPy, in JAX's working precision."""
    dt = jnp.zeros(()).dtype
    p = deep_params(model)
    p = type(p)(tuple(to_device(W, dt) for W in p.Ws), tuple(to_device(b, dt) for b in p.bs))
    return np.asarray(_forward(p, to_device(X, dt), model.activation, model.negative_slope))


def _forward(p, X, activation, negative_slope):
    return _jit_forward(p, X, activation=activation, negative_slope=negative_slope)


_jit_forward = jax.jit(deep_forward, static_argnames=("activation", "negative_slope"))


def check_targets(Y, n: int, d_out: int, name: str = "Y") -> np.ndarray | None:
    """``Y`` as integer labels (n,) in ``[0, d_out)`` or float targets (n, d_out); ``None`` passes.

    Raises:
      ValueError: naming ``name``: wrong number of rows, labels out of range, a wrong shape.
    """
    if Y is None:
        return None
    Y = np.asarray(Y)
    if Y.ndim == 1 and np.issubdtype(Y.dtype, np.integer):
        if Y.shape[0] != n:
            raise ValueError(f"{name} must have one label per input row ({n}), got {Y.shape[0]}")
        if Y.size and (Y.min() < 0 or Y.max() >= d_out):
            raise ValueError(f"{name} labels must lie in [0, {d_out}) (the model's outputs), got "
                             f"range [{Y.min()}, {Y.max()}]")
        return Y
    if Y.ndim == 2 and np.issubdtype(Y.dtype, np.floating):
        if Y.shape != (n, d_out):
            raise ValueError(f"{name} must have shape ({n}, {d_out}) (inputs x model outputs), "
                             f"got {Y.shape}")
        if not np.all(np.isfinite(Y)):
            raise ValueError(f"{name} contains NaN or inf entries")
        return Y
    raise ValueError(f"{name} must be integer labels of shape ({n},) or float targets of shape "
                     f"({n}, {d_out}), got dtype {Y.dtype} and shape {Y.shape}")


def scores(out: np.ndarray, Y) -> Scores | None:
    """:class:`Scores` of outputs ``out`` (N, D) against ``Y`` (validated), ``None`` without Y."""
    if Y is None:
        return None
    if Y.ndim == 1:
        z = out - out.max(axis=1, keepdims=True)
        logp = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
        loss = float(-np.mean(logp[np.arange(Y.size), Y])) if Y.size else float("nan")
        acc = float(np.mean(out.argmax(axis=1) == Y)) if Y.size else float("nan")
        return Scores(loss, acc)
    return Scores(float(np.mean((out - Y) ** 2)), None)


def inference_time(model, X, *, repeats: int = 25) -> float:
    """Median wall time (seconds) of one jitted forward pass of ``model`` on ``X``, after a warm-up
    (compilation excluded), in the model's own dtype."""
    p = deep_params(model)
    X = to_device(X, p.Ws[0].dtype)
    jax.block_until_ready(_forward(p, X, model.activation, model.negative_slope))
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(_forward(p, X, model.activation, model.negative_slope))
        times.append(time.perf_counter() - t)
    return float(np.median(times))
