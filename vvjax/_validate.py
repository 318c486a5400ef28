"""Input checks shared by the public API: clear errors that name the argument.

Checks run on concrete (non-traced) arrays at the API boundary, before anything is jitted, so that a
user sees ``ValueError: X must be ...`` rather than a deep JAX traceback.

What :func:`as_array` accepts (every public function that takes data goes through it):

* NumPy and JAX arrays, as they are (JAX tracers too, unchecked for finiteness);
* anything NumPy converts: nested lists and tuples, objects with ``__array__`` or the buffer
  protocol (CPU tensors of other frameworks, e.g. a detached ``torch`` CPU tensor), NumPy matrices
  and masked arrays without masked entries;
* ``scipy.sparse`` matrices and arrays, densified when they have at most
  :data:`MAX_DENSIFY_ENTRIES` entries (1 GiB as float64); larger ones are refused by name: every
  solver here works on dense arrays.

Integer and boolean input is cast to floating point (NumPy: float64; JAX: the default float dtype,
float64 when ``jax_enable_x64`` is on, float32 otherwise), so it gives the results the same values
as floats give. Refused, with an error naming the argument: ``None``, strings, object arrays (e.g.
ragged nested lists), complex numbers, dates, masked entries, NaN/inf (unless ``finite=False``),
and objects NumPy cannot convert (a GPU tensor of another framework, a tensor that requires grad).
"""

import sys
from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = ["as_array", "check_finite", "check_nonnegative", "check_positive_int", "check_choice",
           "MAX_DENSIFY_ENTRIES"]

MAX_DENSIFY_ENTRIES = 2**27
"""Largest ``scipy.sparse`` input (rows x columns) that :func:`as_array` densifies: 134M entries,
1 GiB as float64. Larger sparse input is refused with a ``ValueError`` naming the argument."""


def _is_traced(x: Any) -> bool:
    import jax

    return isinstance(x, jax.core.Tracer)


def _is_jax_array(x: Any) -> bool:
    jax = sys.modules.get("jax")
    return jax is not None and isinstance(x, (jax.Array, jax.core.Tracer))


def _is_sparse(x: Any) -> bool:
    sparse = sys.modules.get("scipy.sparse")  # scipy.sparse input implies it is imported
    return sparse is not None and sparse.issparse(x)


def _densify(name: str, x: Any) -> np.ndarray:
    size = int(np.prod(x.shape, dtype=np.int64))
    if size > MAX_DENSIFY_ENTRIES:
        raise ValueError(
            f"{name} is a scipy.sparse matrix of shape {tuple(x.shape)}: densifying it would need "
            f"{size * 8 / 2**30:.1f} GiB as float64, over the limit of {MAX_DENSIFY_ENTRIES} "
            f"entries (1 GiB, vvjax._validate.MAX_DENSIFY_ENTRIES); the solvers work on dense "
            f"arrays, so pass a smaller problem")
    return np.asarray(x.toarray())


def _to_numpy(name: str, x: Any) -> np.ndarray:
    """NumPy view of anything NumPy converts, or an error naming ``name``."""
    if _is_sparse(x):
        return _densify(name, x)
    if isinstance(x, np.ma.MaskedArray):
        if np.ma.is_masked(x):
            raise ValueError(f"{name} is a masked array with masked entries; fill them "
                             f"({name}.filled(value)) or drop them first")
        return np.asarray(x.data)
    if isinstance(x, (str, bytes)):
        raise TypeError(f"{name} must be a numeric array, got a {type(x).__name__}")
    try:
        return np.asarray(x)
    except ValueError as e:  # ragged nested sequences
        raise ValueError(f"{name} could not be converted to a numeric array "
                         f"({type(x).__name__}): {e}") from None
    except (TypeError, RuntimeError) as e:  # e.g. GPU tensors, tensors requiring grad
        raise TypeError(f"{name} could not be converted to a NumPy array "
                        f"({type(x).__name__}): {e}") from None


def _check_dtype(name: str, dtype) -> None:
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.complexfloating):
        raise TypeError(f"{name} must be real, got complex dtype {dtype}")
    if not (np.issubdtype(dtype, np.number) or np.issubdtype(dtype, np.bool_)):
        hint = " (a ragged or mixed-type sequence?)" if dtype.kind == "O" else ""
        raise TypeError(f"{name} must be a numeric array, got dtype {dtype}{hint}")


def as_array(name: str, x: Any, *, ndim: int | None = None, shape: tuple | None = None,
             finite: bool = True, to_jax: bool = True, keep_int: bool = False):
    """Return ``x`` as a real floating-point array after checking its rank, shape and finiteness.

    Args:
      name: argument name used in error messages.
      x: array-like (see the module docstring for what is accepted).
      ndim: required number of dimensions (``None``: any).
      shape: required shape; entries that are ``None`` match any size.
      finite: reject NaN and inf entries.
      to_jax: return host input as a JAX array (which rounds float64 to float32 unless
        ``jax_enable_x64`` is on); ``False`` returns it as a NumPy array, for NumPy code paths.
        JAX input stays a JAX array either way.
      keep_int: return integer and boolean input with its dtype (class labels) instead of
        casting it to floating point.

    Returns:
      A NumPy or JAX array; integer and boolean input cast to floating point (NumPy: float64;
      JAX: the default float dtype).

    Raises:
      ValueError: naming ``name``, for ``None``, ragged sequences, masked entries, a
        ``scipy.sparse`` input over :data:`MAX_DENSIFY_ENTRIES` entries, the wrong rank or shape,
        or NaN/inf.
      TypeError: naming ``name``, for strings, object, complex or other non-numeric dtypes, and
        objects NumPy cannot convert.
    """
    if x is None:
        raise ValueError(f"{name} must be an array, got None")
    if _is_jax_array(x) or type(x) is np.ndarray:
        arr = x
    else:
        arr = _to_numpy(name, x)
    _check_dtype(name, arr.dtype)
    if not keep_int and not np.issubdtype(np.dtype(arr.dtype), np.floating):  # integer or bool
        if isinstance(arr, np.ndarray):
            arr = arr.astype(np.float64)
        else:
            import jax

            arr = arr.astype(jax.dtypes.canonicalize_dtype(np.float64))
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
    if to_jax and isinstance(arr, np.ndarray):
        import jax.numpy as jnp

        return jnp.asarray(arr)
    return arr


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
