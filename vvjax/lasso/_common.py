"""Shared pieces of the multi-task lasso solvers: input checks and support counting.

Notation (arXiv 2305.16534, Sec. 4): ``Phi`` is K x N (features, one row per neuron),
``Psi`` is D x N (targets), ``V`` is D x K with columns ``v_k``.
"""

import jax.numpy as jnp

from vvjax._validate import as_array

__all__ = ["column_norms", "count_nonzero_columns", "nonzero_mask", "check_problem", "DEFAULT_RTOL"]

DEFAULT_RTOL = 1e-6
"""Default relative threshold for calling a column nonzero: ``||v_k|| > rtol * max_j ||v_j||``.

PAPER.md Sec. 8: the authors' absolute 1e-7 threshold on conic-solver output counted solver residue
as active and inflated their counts; a relative threshold (or a solver returning exact zeros) does
not.
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
      ValueError: if ``Phi`` (K x N) or ``Psi`` (D x N) is not 2-D, has NaN/inf, or their N differ.
    """
    Phi = as_array("Phi", Phi, ndim=2, finite=phi_finite, to_jax=to_jax)
    Psi = as_array("Psi", Psi, ndim=2, to_jax=to_jax)
    if Phi.shape[1] != Psi.shape[1]:
        raise ValueError(
            f"Phi (K x N) and Psi (D x N) must have the same number of columns N; "
            f"got Phi {tuple(Phi.shape)} and Psi {tuple(Psi.shape)}"
        )
    return Phi, Psi
