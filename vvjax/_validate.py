"""Input checks shared by the public API: clear errors that name the argument.

Checks run on concrete (non-traced) arrays at the API boundary, before anything is jitted, so that a
user sees ``ValueError: X must be ...`` rather than a deep JAX traceback.
"""

from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = ["as_array", "check_finite", "check_nonnegative", "check_positive_int", "check_choice"]


def _is_traced(x: Any) -> bool:
    import jax

    return isinstance(x, jax.core.Tracer)


def as_array(name: str, x: Any, *, ndim: int | None = None, shape: tuple | None = None,
             finite: bool = True, to_jax: bool = True):
    """Return ``x`` as an array after checking its rank, shape and finiteness.

    Args:
      name: argument name used in error messages.
      x: array-like.
      ndim: required number of dimensions (``None``: any).
      shape: required shape; entries that are ``None`` match any size.
      finite: reject NaN and inf entries.
      to_jax: return NumPy input as a JAX array (which rounds float64 to float32 unless
        ``jax_enable_x64`` is on); ``False`` leaves NumPy input as it is, for NumPy code paths.

    Raises:
      ValueError: naming ``name`` and what was expected.
    """
    import jax.numpy as jnp

    if x is None:
        raise ValueError(f"{name} must be an array, got None")
    arr = x if hasattr(x, "shape") and hasattr(x, "dtype") else np.asarray(x)
    if not (np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)):
        raise ValueError(f"{name} must be a numeric array, got dtype {arr.dtype}")
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D array, got shape {tuple(arr.shape)}")
    if shape is not None:
        if len(shape) != arr.ndim or any(s is not None and s != a
                                         for s, a in zip(shape, arr.shape, strict=True)):
            want = "(" + ", ".join("?" if s is None else str(s) for s in shape) + ")"
            raise ValueError(f"{name} must have shape {want}, got {tuple(arr.shape)}")
    if finite and not _is_traced(arr):
        if not bool(np.all(np.isfinite(np.asarray(arr)))):
            raise ValueError(f"{name} contains NaN or inf entries")
    return jnp.asarray(arr) if to_jax and isinstance(arr, np.ndarray) else arr


def check_finite(name: str, x: Any) -> None:
    """Raise ``ValueError`` if a concrete array ``x`` has NaN or inf entries."""
    if not _is_traced(x) and not bool(np.all(np.isfinite(np.asarray(x)))):
        raise ValueError(f"{name} contains NaN or inf entries")


def check_nonnegative(name: str, value: Any) -> None:
    """Raise ``ValueError`` unless every entry of ``value`` is finite and >= 0."""
    if _is_traced(value):
        return
    v = np.asarray(value, dtype=float)
    if not np.all(np.isfinite(v)) or np.any(v < 0):
        raise ValueError(f"{name} must be finite and >= 0, got {value!r}")


def check_positive_int(name: str, value: Any) -> None:
    """Raise ``ValueError`` unless ``value`` is an integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


def check_choice(name: str, value: Any, choices: Iterable[str]) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``choices``."""
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; expected one of "
                         f"{', '.join(map(repr, choices))}")
