"""Neuron activity and sharing, and the width bounds they are compared with (pure, jit-compiled).

**The activity rule** (the one definition used by training logs, metrics, plots and the README).
For a hidden neuron k with incoming weights ``w_k`` (row of ``W``), bias ``b_k`` and outgoing
weights ``v_k`` (column of ``V``, one entry per output j), its rescaling-invariant size and its
size in output j are

    s_k = ||v_k||_2 * ||(w_k, b_k)||_2,        C[j, k] = |v_jk| * ||(w_k, b_k)||_2,

and with ``tol = max(atol, rtol * max_k s_k)``:

* neuron k is **active** if ``s_k > tol``;
* neuron k is **used by output j** if ``C[j, k] > tol``;
* it is **shared** if used by at least two outputs, **shared by all** if used by every output.

A neuron used by some output is active (``s_k >= max_j C[j, k]``); an active neuron whose size is
spread thinly over outputs may be used by none (only within a factor sqrt(D) of ``tol``).
Defaults ``atol = 1e-3``, ``rtol = 0``. This is the rule of the paper's neuron-sharing figure
(arXiv 2305.16534, neuron-sharing experiment; ``docs/paper.md`` §7.1): its printed counts of
active neurons (89/58/43/28/13/10 during the run) are ``||v_k||_2 > 1e-3`` on networks with
``||(w_k, b_k)|| = 1``, which is ``s_k > 1e-3``; vvjax measures the input weight with the bias in
both rules (the authors' per-output plot used ``||w_k||`` without it), so that both are invariant
to the rescaling ``(alpha w_k, alpha b_k, v_k / alpha)`` of positively homogeneous activations.
For other activations there is no such rescaling: the model-level :func:`layer_summaries` refuses
them unless ``allow_nonhomogeneous=True``.

For a deep network the rule applies to every hidden layer l with ``W = W_l``, ``b = b_l`` and
``V = W_{l+1}`` (the "outputs" of layer l are the next layer's units).

**Width bounds** (``docs/paper.md`` §4.4, §5): the representer theorem's ``N^2``
(:func:`representer_bound`), the sharper ``min(N^2, N D)`` its argument gives with D outputs
(:func:`representer_bound_sharp`), and the data-dependent ``rank(Phi) * rank(Psi)``
(:func:`rank_bound`).
"""


import jax
import jax.numpy as jnp
import numpy as np

from vvjax._validate import as_array

__all__ = [
    "DEFAULT_ATOL",
    "DEFAULT_RTOL",
    "neuron_sizes",
    "contributions",
    "activity",
    "active_mask",
    "activity_matrix",
    "n_active",
    "n_shared",
    "n_shared_all",
    "per_output_counts",
    "sharing_summary",
    "layer_summaries",
    "representer_bound",
    "representer_bound_sharp",
    "numerical_rank",
    "rank_bound",
    "neuron_locations",
]

DEFAULT_ATOL = 1e-3
"""Absolute activity tolerance: the paper's ``1e-3`` rule for its neuron-sharing experiment."""
DEFAULT_RTOL = 0.0
"""Relative activity tolerance (fraction of the largest neuron size); off by default."""


def _check(W, b, V):
    W = as_array("W", W, ndim=2)
    V = as_array("V", V, ndim=2)
    b = as_array("b", b, shape=(W.shape[0],))
    if V.shape[1] != W.shape[0]:
        raise ValueError(f"V must have shape (D, K) with K = W.shape[0] = {W.shape[0]}, "
                         f"got {V.shape}")
    return W, b, V


def _in_norms(W, b):
    return jnp.sqrt(jnp.sum(W * W, axis=-1) + b * b)


def activity(W, b, V, *, atol=DEFAULT_ATOL, rtol=DEFAULT_RTOL) -> tuple[jax.Array, jax.Array]:
    """The activity rule as a pure, traceable function: ``(active (K,), used (D, K))`` booleans.

    No input checks (use inside ``jit``/``vmap``; the training loop logs its counts with it).
    ``W`` (K, d), ``b`` (K,), ``V`` (D, K); ``atol``/``rtol`` may be traced.
    """
    n_in = _in_norms(W, b)
    size = jnp.sqrt(jnp.sum(V * V, axis=0)) * n_in
    tol = jnp.maximum(atol, rtol * jnp.max(size, initial=0.0))
    return size > tol, jnp.abs(V) * n_in[None, :] > tol


def neuron_sizes(W, b, V) -> jax.Array:
    """``s_k = ||v_k||_2 ||(w_k, b_k)||_2`` (K,): each neuron's rescaling-invariant size.

    Args:
      W: (K, d) input weights. b: (K,) biases. V: (D, K) output weights.

    Raises:
      ValueError: shapes that do not fit together, NaN/inf entries.
    """
    W, b, V = _check(W, b, V)
    return jnp.sqrt(jnp.sum(V * V, axis=0)) * _in_norms(W, b)


def contributions(W, b, V) -> jax.Array:
    """``C[j, k] = |v_jk| ||(w_k, b_k)||_2`` (D, K): neuron k's rescaling-invariant size in
    output j. Arguments and errors as :func:`neuron_sizes`."""
    W, b, V = _check(W, b, V)
    return jnp.abs(V) * _in_norms(W, b)[None, :]


_activity_jit = jax.jit(activity)


def active_mask(W, b, V, *, rtol: float = DEFAULT_RTOL, atol: float = DEFAULT_ATOL) -> jax.Array:
    """Boolean (K,): is neuron k active (``s_k > tol``, module docstring)?"""
    W, b, V = _check(W, b, V)
    return _activity_jit(W, b, V, atol=atol, rtol=rtol)[0]


def activity_matrix(W, b, V, *, rtol: float = DEFAULT_RTOL,
                    atol: float = DEFAULT_ATOL) -> jax.Array:
    """Boolean (D, K): is neuron k used by output j (``C[j, k] > tol``, module docstring)?

    Raises:
      ValueError: shapes that do not fit together, NaN/inf entries.
    """
    W, b, V = _check(W, b, V)
    return _activity_jit(W, b, V, atol=atol, rtol=rtol)[1]


def n_active(W, b, V, **tol) -> jax.Array:
    """Number of active neurons. ``tol``: ``rtol``, ``atol``."""
    return jnp.sum(active_mask(W, b, V, **tol))


def n_shared(W, b, V, **tol) -> jax.Array:
    """Number of neurons used by at least two outputs (shared neurons)."""
    return jnp.sum(jnp.sum(activity_matrix(W, b, V, **tol), axis=0) >= 2)


def n_shared_all(W, b, V, **tol) -> jax.Array:
    """Number of neurons used by every output."""
    return jnp.sum(jnp.all(activity_matrix(W, b, V, **tol), axis=0))


def per_output_counts(W, b, V, **tol) -> jax.Array:
    """(D,) number of neurons used by each output."""
    return jnp.sum(activity_matrix(W, b, V, **tol), axis=1)


def sharing_summary(W, b, V, **tol) -> dict[str, object]:
    """All counts at once as Python numbers: ``width`` (K), ``d_out`` (D), ``n_active``,
    ``n_shared`` (used by >= 2 outputs), ``n_shared_all``, ``per_output`` (list of D counts) and
    ``shared_fraction`` (``n_shared / n_active``; 0 when nothing is active)."""
    unknown = set(tol) - {"atol", "rtol"}
    if unknown:
        raise TypeError(f"unexpected keyword arguments {sorted(unknown)} (expected atol, rtol)")
    W, b, V = _check(W, b, V)
    active, used = (np.asarray(a) for a in _activity_jit(
        W, b, V, atol=tol.get("atol", DEFAULT_ATOL), rtol=tol.get("rtol", DEFAULT_RTOL)))
    per_neuron = used.sum(axis=0)
    n_act, n_sh = int(active.sum()), int((per_neuron >= 2).sum())
    return {
        "width": int(used.shape[1]),
        "d_out": int(used.shape[0]),
        "n_active": n_act,
        "n_shared": n_sh,
        "n_shared_all": int((per_neuron == used.shape[0]).sum()),
        "per_output": [int(c) for c in used.sum(axis=1)],
        "shared_fraction": n_sh / n_act if n_act else 0.0,
    }


def layer_summaries(model, *, allow_nonhomogeneous: bool = False,
                    **tol) -> list[dict[str, object]]:
    """:func:`sharing_summary` of every hidden layer of a ``ShallowVVNet`` / ``DeepVVNet`` (one
    dict per hidden layer, with ``layer`` = its index).

    Raises:
      vvjax.activations.NonHomogeneousError: the model's activation is not positively homogeneous
        and ``allow_nonhomogeneous`` is False (the rule is then not rescaling invariant: the counts
        depend on how weights happen to be scaled).
      TypeError: not a vvjax model.
    """
    from vvjax import activations

    if not hasattr(model, "hidden_layers") or not hasattr(model, "activation"):
        raise TypeError(f"model must be a ShallowVVNet or DeepVVNet, got {type(model).__name__}")
    if not allow_nonhomogeneous:
        activations.require_homogeneous(model.activation, "the activity rule (layer_summaries)")
    out = []
    for l, (W, b, V) in enumerate(model.hidden_layers()):
        b_val = b[...]
        if not hasattr(model, "layers"):  # shallow: sigma(w x - b); sign is irrelevant to norms
            b_val = -b_val
        out.append({"layer": l, **sharing_summary(W[...], b_val, V[...], **tol)})
    return out


def _check_count(name, v):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {v!r}")


def representer_bound(N: int) -> int:
    """``N^2``: the representer theorem's bound on the width of a VV-space solution for N data
    (arXiv 2305.16534, representer theorem; ``docs/paper.md`` §5). Independent of the number of
    outputs D; see :func:`representer_bound_sharp` for the bound its argument gives with D.

    Raises:
      ValueError: ``N`` is not an integer >= 1.
    """
    _check_count("N", N)
    return int(N * N)


def representer_bound_sharp(N: int, D: int) -> int:
    """``min(N^2, N D)``: the width bound the representer argument gives with D outputs.

    The solution's output layer is a multi-task lasso whose sparsest solution has at most
    ``rank(Phi) rank(Psi) <= N min(N, D)`` neurons (``docs/paper.md`` §4.4, §5); the paper states
    the D-free ``N^2`` (:func:`representer_bound`).

    Raises:
      ValueError: ``N`` or ``D`` is not an integer >= 1.
    """
    _check_count("N", N)
    _check_count("D", D)
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
    """``rank(Phi) * rank(Psi)``: the data-dependent width bound (arXiv 2305.16534, multi-task
    lasso sparsity theorem; docs/paper.md §4.4).

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
