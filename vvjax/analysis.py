"""Neuron activity and sharing, and the width bounds they are compared with (pure, jit-compiled).

A neuron k of ``f(x) = sum_k v_k relu(w_k^T x - b_k)`` serves output j when its contribution to that
output is non-negligible. The activity matrix is

    A[j, k] = |v_jk| * ||(w_k, b_k)||_2 > tol,
    tol = max(atol, rtol * max_{j,k} |v_jk| ||(w_k, b_k)||)

(the rescaling-invariant size of neuron k in output j). Defaults follow the paper's experiment
(PAPER.md Sec. 5.1): ``atol = 1e-3``, ``rtol = 0``. A neuron is *active* if it serves at least one
output, *shared* if it serves at least two, and *shared by all* if it serves every output.

Width bounds (arXiv 2305.16534, representer theorem and multi-task lasso theorem;
PAPER.md Sec. 3-4): ``representer_bound(N, D) = min(N^2, N D)`` and the data-dependent
``rank(Phi) * rank(Psi)``.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from vvjax._validate import as_array

__all__ = [
    "DEFAULT_ATOL",
    "DEFAULT_RTOL",
    "contributions",
    "activity_matrix",
    "n_active",
    "n_shared",
    "n_shared_all",
    "per_output_counts",
    "sharing_summary",
    "representer_bound",
    "numerical_rank",
    "rank_bound",
    "neuron_locations",
]

DEFAULT_ATOL = 1e-3
"""Absolute activity tolerance: the paper's ``1e-3`` rule for its neuron-sharing experiment."""
DEFAULT_RTOL = 0.0
"""Relative activity tolerance (fraction of the largest contribution); off by default."""


def _check(W, b, V):
    W = as_array("W", W, ndim=2)
    V = as_array("V", V, ndim=2)
    b = as_array("b", b, shape=(W.shape[0],))
    if V.shape[1] != W.shape[0]:
        raise ValueError(f"V must have shape (D, K) with K = W.shape[0] = {W.shape[0]}, "
                         f"got {V.shape}")
    return W, b, V


@functools.partial(jax.jit, static_argnames=("include_bias",))
def _contributions(W, b, V, include_bias):
    sq = jnp.sum(W * W, axis=1) + (b * b if include_bias else 0.0)
    return jnp.abs(V) * jnp.sqrt(sq)[None, :]


def contributions(W, b, V, *, include_bias: bool = True) -> jax.Array:
    """``C[j, k] = |v_jk| * ||(w_k, b_k)||_2`` (D, K):
    neuron k's rescaling-invariant size in output j.

    Args:
      W: (K, d) input weights. b: (K,) biases. V: (D, K) output weights.
      include_bias: measure the input weight as ``||(w_k, b_k)||`` (default) or ``||w_k||``.
    """
    W, b, V = _check(W, b, V)
    return _contributions(W, b, V, include_bias)


@functools.partial(jax.jit, static_argnames=("include_bias",))
def _activity(W, b, V, rtol, atol, include_bias):
    C = _contributions(W, b, V, include_bias)
    return C > jnp.maximum(atol, rtol * jnp.max(C, initial=0.0))


def activity_matrix(W, b, V, *, rtol: float = DEFAULT_RTOL, atol: float = DEFAULT_ATOL,
                    include_bias: bool = True) -> jax.Array:
    """Boolean (D, K) matrix: does neuron k serve output j?
    (see the module docstring for ``tol``)."""
    W, b, V = _check(W, b, V)
    return _activity(W, b, V, rtol, atol, include_bias)


def n_active(W, b, V, **tol) -> jax.Array:
    """Number of neurons serving at least one output.
    ``tol``: ``rtol``, ``atol``, ``include_bias``."""
    return jnp.sum(jnp.any(activity_matrix(W, b, V, **tol), axis=0))


def n_shared(W, b, V, **tol) -> jax.Array:
    """Number of neurons serving at least two outputs (shared neurons)."""
    return jnp.sum(jnp.sum(activity_matrix(W, b, V, **tol), axis=0) >= 2)


def n_shared_all(W, b, V, **tol) -> jax.Array:
    """Number of neurons serving every output."""
    return jnp.sum(jnp.all(activity_matrix(W, b, V, **tol), axis=0))


def per_output_counts(W, b, V, **tol) -> jax.Array:
    """(D,) number of neurons serving each output."""
    return jnp.sum(activity_matrix(W, b, V, **tol), axis=1)


def sharing_summary(W, b, V, **tol) -> dict[str, object]:
    """All counts at once as Python numbers: ``n_active``, ``n_shared``, ``n_shared_all``,
    ``per_output`` (list), ``width`` (K) and ``d_out`` (D)."""
    A = np.asarray(activity_matrix(W, b, V, **tol))
    per_neuron = A.sum(axis=0)
    return {
        "width": int(A.shape[1]),
        "d_out": int(A.shape[0]),
        "n_active": int((per_neuron >= 1).sum()),
        "n_shared": int((per_neuron >= 2).sum()),
        "n_shared_all": int((per_neuron == A.shape[0]).sum()),
        "per_output": [int(c) for c in A.sum(axis=1)],
    }


def representer_bound(N: int, D: int) -> int:
    """``min(N^2, N * D)``: the width a VV-space solution needs at most (N data, D outputs).

    References: arXiv 2305.16534, representer theorem (width <= N^2) with the multi-task lasso bound
    ``rank(Phi) rank(Psi) <= N min(N, D)`` (PAPER.md Sec. 3).
    """
    for name, v in (("N", N), ("D", D)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
    return int(min(N * N, N * D))


@jax.jit
def _numerical_rank(M, rtol):
    s = jnp.linalg.svd(M, compute_uv=False)
    smax = jnp.max(s, initial=0.0)
    return jnp.sum(s > rtol * smax)


def numerical_rank(M, *, rtol: float | None = None) -> jax.Array:
    """Number of singular values of ``M`` above ``rtol * sigma_max``.

    ``rtol`` defaults to ``max(M.shape) * eps`` of ``M``'s dtype (NumPy's ``matrix_rank`` rule). For
    features computed in float32, or from an iterative solver, pass a looser ``rtol`` such as 1e-6.
    """
    M = as_array("M", M, ndim=2)
    if rtol is None:
        rtol = max(M.shape) * float(jnp.finfo(M.dtype).eps) \
            if jnp.issubdtype(M.dtype, jnp.floating) \
            else max(M.shape) * float(jnp.finfo(jnp.float32).eps)
    if not rtol >= 0:
        raise ValueError(f"rtol must be >= 0, got {rtol!r}")
    if M.size == 0:
        return jnp.asarray(0)
    return _numerical_rank(M.astype(jnp.result_type(M.dtype, jnp.float32)), rtol)


def rank_bound(Phi, Psi, *, rtol: float | None = None) -> jax.Array:
    """``rank(Phi) * rank(Psi)``: the data-dependent width bound (PAPER.md Sec. 4.2).

    ``Phi`` (K x N) are a layer's input features and ``Psi`` (D x N) its outputs on the same N
    samples.
    """
    Phi = as_array("Phi", Phi, ndim=2)
    Psi = as_array("Psi", Psi, ndim=2)
    if Phi.shape[1] != Psi.shape[1]:
        raise ValueError(f"Phi (K x N) and Psi (D x N) must share N; got {Phi.shape} and "
                         f"{Psi.shape}")
    return numerical_rank(Phi, rtol=rtol) * numerical_rank(Psi, rtol=rtol)


@jax.jit
def _locations(W, b):
    wn = jnp.linalg.norm(W, axis=1)
    theta = jnp.mod(jnp.arctan2(W[:, 1], W[:, 0]), 2 * jnp.pi)
    return jnp.stack([theta, b / jnp.where(wn > 0, wn, jnp.nan)], axis=1)


def neuron_locations(W, b) -> jax.Array:
    """(K, 2) locations ``(theta_k, b_k / ||w_k||)`` of the ReLU ridges of a 2-D-input network.

    ``w_k / ||w_k|| = (cos theta_k, sin theta_k)``, ``theta`` in [0, 2 pi); the offset is NaN for a
    zero ``w_k``. This is where the paper's neuron-sharing figure draws each neuron.
    """
    W = as_array("W", W, ndim=2)
    if W.shape[1] != 2:
        raise ValueError(f"W must have shape (K, 2) (2-D inputs), got {W.shape}")
    b = as_array("b", b, shape=(W.shape[0],))
    return _locations(W, b)
