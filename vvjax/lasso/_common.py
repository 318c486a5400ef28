"""Shared pieces of the multi-task lasso solvers: input checks and support counting.

Notation (arXiv 2305.16534, multi-task lasso; ``docs/paper.md`` §4): ``Phi`` is K x N (features,
one row per neuron), ``Psi`` is D x N (targets), ``V`` is D x K with columns ``v_k``.
"""

import contextlib

import jax
import jax.numpy as jnp
import numpy as np

from vvjax._validate import as_array

__all__ = ["column_norms", "count_nonzero_columns", "nonzero_mask", "check_problem", "DEFAULT_RTOL"]

DEFAULT_RTOL = 1e-6
"""Default relative threshold for calling a column nonzero: ``||v_k|| > rtol * max_j ||v_j||``.

``docs/paper.md`` §9: the authors' absolute 1e-7 threshold on conic-solver output counted solver
residue as active and inflated their counts; a relative threshold (or a solver returning exact
zeros) does not.
"""


def column_norms(V):
    """Euclidean norm of every column ``v_k`` of ``V`` (D x K) -> (K,)."""
    return jnp.sqrt(jnp.sum(V * V, axis=0))


def nonzero_mask(V, *, rtol: float = DEFAULT_RTOL, atol: float = 0.0):
    """Boolean (K,) mask of columns with ``||v_k|| > max(atol, rtol * max_j ||v_j||)``.

    Works under ``jit``/``vmap``; an all-zero ``V`` has no nonzero column.
    """
    norms = column_norms(V)
    thresh = jnp.maximum(atol, rtol * jnp.max(norms, initial=0.0))
    return norms > thresh


def count_nonzero_columns(V, *, rtol: float = DEFAULT_RTOL, atol: float = 0.0):
    """Number of nonzero columns of ``V`` under the relative threshold of :func:`nonzero_mask`."""
    return jnp.sum(nonzero_mask(V, rtol=rtol, atol=atol))


def check_problem(Phi, Psi, *, to_jax: bool = True, phi_finite: bool = True):
    """Validate a lasso instance; returns ``(Phi, Psi)`` as arrays.

    Args:
      to_jax: convert NumPy input to JAX arrays; ``False`` keeps it as is (no copy of a large Phi).
      phi_finite: scan Phi for NaN/inf; ``False`` leaves that to the caller (e.g. one that reads it
        off the Gram diagonal it forms anyway).

    Raises:
      ValueError: if ``Phi`` (K x N) or ``Psi`` (D x N) is not 2-D, has NaN/inf, has no rows or
        columns, or their N differ.
    """
    Phi = as_array("Phi", Phi, ndim=2, finite=phi_finite, to_jax=to_jax)
    Psi = as_array("Psi", Psi, ndim=2, to_jax=to_jax)
    if Phi.shape[1] != Psi.shape[1]:
        raise ValueError(
            f"Phi (K x N) and Psi (D x N) must have the same number of columns N; "
            f"got Phi {tuple(Phi.shape)} and Psi {tuple(Psi.shape)}"
        )
    for name, a, what in (("Phi", Phi, "K x N: at least one feature and one sample"),
                          ("Psi", Psi, "D x N: at least one output and one sample")):
        if 0 in a.shape:
            raise ValueError(f"{name} must be {what}, got shape {tuple(a.shape)}")
    return Phi, Psi


# ----------------------------------------------------------------------------- shared helpers


def working_dtype() -> np.dtype:
    """The dtype of the jitted iterations: float64 when ``jax_enable_x64`` is on, else float32."""
    return np.dtype(jax.dtypes.canonicalize_dtype(np.float64))


def pow2_scale(x, axis=None):
    """Power of two ``2**e`` with ``max |x| / 2**e`` in [0.5, 1) (1 for an all-zero ``x``).

    Dividing by it is exact (no rounding) and brings data of any finite magnitude to unit scale,
    so that squares and norms neither overflow nor underflow. ``axis``: reduce over these axes only
    (one scale per remaining index, shaped for broadcasting).
    """
    m = np.max(np.abs(x), axis=axis, keepdims=axis is not None)
    e = np.frexp(np.where(m > 0, m, 1.0))[1]
    return np.ldexp(1.0, e)


_BLAS_CONTROLLER = []


def blas_single_thread():
    """Context: one BLAS thread for small host algebra (if threadpoolctl is there).

    On few cores, multithreaded BLAS on 10-500-sized products and factorizations contends with XLA's
    worker threads (both spin while waiting) and runs several times slower than one thread.
    """
    if not _BLAS_CONTROLLER:
        try:
            from threadpoolctl import ThreadpoolController

            _BLAS_CONTROLLER.append(ThreadpoolController())
        except Exception:  # threadpoolctl is optional
            _BLAS_CONTROLLER.append(None)
    ctrl = _BLAS_CONTROLLER[0]
    return contextlib.nullcontext() if ctrl is None else ctrl.limit(limits=1, user_api="blas")
