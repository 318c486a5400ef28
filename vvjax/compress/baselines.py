"""Baselines for removing neurons of one hidden layer at a given width, on plain arrays.

Each function takes a layer's arrays (:class:`vvjax.compress.layers.LayerProblem` notation:
``W_in`` (K, n_in), ``b_in`` (K,), ``V`` (D', K), ``Phi`` (K, N), ``Psi = V Phi``) and a width
``k``, and returns ``(kept, V_kept)``: the increasing indices of the k kept neurons and their new
outgoing weights (D', k). Neurons that are never active on the training set (``alive[k]`` False)
are deleted first by every method (free: they contribute nothing there); the selection then ranks
the alive ones only. When fewer than k neurons are alive, all alive ones are kept.

* :func:`magnitude`: the k largest neuron sizes ``||v_k|| ||(w_k, b_k)||`` (the rescaling-invariant
  size of :mod:`vvjax.analysis`); outgoing weights unchanged.
* :func:`activation`: the k largest ``mean_i |phi_k(x_i)| ||v_k||`` (mean activation times outgoing
  norm; ``mean phi_k`` for ReLU), the data-aware importance of activation-based pruning
  (e.g. Molchanov et al. 2017, ICLR, "Pruning convolutional neural networks for resource
  efficient inference", first-order Taylor importance on activations).
* :func:`interpolative`: the interpolative decomposition of ``Phi`` (Chee, Renz, Damle & De Sa
  2022, NeurIPS, "Model preserving compression for neural networks"): column-pivoted QR of
  ``Phi^T`` picks k neurons S, and ``Phi ~ T Phi_S`` with the interpolation matrix T (K x k,
  ``T_S = I``); the next layer becomes ``V T``.
* :func:`obs`: greedy structured Optimal Brain Surgeon on ``H = Phi Phi^T / N + delta I``
  (Hassibi & Stork 1993; per layer as in ZipLM, Kurtic et al. 2023, NeurIPS, and SlimGPT, Ling et
  al. 2024, NeurIPS): backward elimination, each step removing the neuron with the least error
  ``||v_k||^2 / [H^-1]_kk``, compensating the others by ``V <- V - v_k [H^-1]_{k,:} / [H^-1]_kk``
  and downdating ``H^-1``.
* :func:`merge`: data-free neuron merging (Kim, Kim, Kim & Lee 2020, NeurIPS, "Neuron merging:
  compensating for pruned neurons"): prune by size as :func:`magnitude`, then add each pruned
  column to the kept neuron whose incoming vector ``(w_j, b_j)`` is most cosine-similar, scaled by
  ``||(w_k, b_k)|| / ||(w_j, b_j)||``, when the similarity is at least ``threshold``. For a
  positively homogeneous activation a pruned neuron that is a positive multiple of a kept one is
  merged exactly.

:func:`refit` is the least-squares refit of the next layer on any kept set
(:func:`vvjax.compress.lasso_layer.refit_columns`).
"""

import numpy as np
from scipy.linalg import qr, solve_triangular

from vvjax.compress.lasso_layer import refit_columns

__all__ = ["BASELINES", "MERGE_THRESHOLD", "OBS_DAMP", "neuron_sizes", "magnitude", "activation",
           "interpolative", "obs", "obs_path", "merge", "refit", "top_k"]

BASELINES = ("magnitude", "activation", "interpolative", "obs", "merge")
"""Baseline names accepted by :func:`vvjax.compress.prune`."""
MERGE_THRESHOLD = 0.45
"""Cosine-similarity threshold of neuron merging (Kim et al. 2020 use t = 0.45 for their
fully connected LeNet-300-100)."""
OBS_DAMP = 1e-2
"""OBS damping ``delta`` as a fraction of the mean diagonal of ``Phi Phi^T / N`` over the alive
neurons (SparseGPT's and ZipLM's default ``percdamp = 0.01``)."""


def _k_alive(k, alive):
    return min(int(k), int(np.count_nonzero(alive)))


def _check(V, k, alive, *, Phi=None, W_in=None, b_in=None):
    """Shapes and width of a baseline's arrays; ``ValueError`` naming the argument."""
    from vvjax._validate import as_array, check_positive_int

    V = as_array("V", V, ndim=2, to_jax=False)
    K = V.shape[1]
    alive = np.asarray(alive)
    if alive.shape != (K,) or alive.dtype != bool:
        raise ValueError(f"alive must be a boolean array of shape ({K},), got {alive.dtype} "
                         f"{alive.shape}")
    check_positive_int("k", k)
    if Phi is not None:
        as_array("Phi", Phi, shape=(K, None), to_jax=False)
    if W_in is not None:
        as_array("W_in", W_in, shape=(K, None), to_jax=False)
        as_array("b_in", b_in, shape=(K,), to_jax=False)


def top_k(scores, k, alive) -> np.ndarray:
    """Increasing indices of the ``k`` alive entries with the largest ``scores`` (ties: lower
    index first)."""
    scores = np.where(alive, np.asarray(scores, dtype=np.float64), -np.inf)
    order = np.argsort(-scores, kind="stable")
    return np.sort(order[:_k_alive(k, alive)])


def neuron_sizes(W_in, b_in, V) -> np.ndarray:
    """``||v_k||_2 ||(w_k, b_k)||_2`` (K,), as :func:`vvjax.analysis.neuron_sizes`."""
    return np.linalg.norm(V, axis=0) * np.sqrt(np.sum(W_in ** 2, axis=1) + b_in ** 2)


def magnitude(W_in, b_in, V, k, alive):
    """Keep the k largest neuron sizes ``||v_k|| ||(w_k, b_k)||``; outgoing weights unchanged.

    Args: ``W_in`` (K, n_in), ``b_in`` (K,), ``V`` (D', K), ``k`` >= 1, ``alive`` (K,) bool.
    Returns ``(kept (k,), V_kept (D', k))``. Raises ``ValueError`` for mismatched shapes.
    """
    _check(V, k, alive, W_in=W_in, b_in=b_in)
    kept = top_k(neuron_sizes(W_in, b_in, V), k, alive)
    return kept, V[:, kept]


def activation(Phi, V, k, alive):
    """Keep the k largest ``mean_i |phi_k(x_i)| * ||v_k||``; outgoing weights unchanged.

    Args: ``Phi`` (K, N) post-activations on the training inputs, ``V`` (D', K), ``k`` >= 1,
    ``alive`` (K,) bool. Returns ``(kept (k,), V_kept (D', k))``. Raises ``ValueError`` for
    mismatched shapes.
    """
    _check(V, k, alive, Phi=Phi)
    kept = top_k(np.mean(np.abs(Phi), axis=1) * np.linalg.norm(V, axis=0), k, alive)
    return kept, V[:, kept]


def interpolative(Phi, V, k, alive):
    """Interpolative decomposition of the alive rows of ``Phi`` (Chee et al. 2022).

    Column-pivoted QR (``scipy.linalg.qr(Phi_A^T, pivoting=True)``, Businger-Golub pivoting: each
    step picks the neuron with the largest residual after projecting out those already picked)
    gives S = the first k pivots and ``T_{rest} = (R11^-1 R12)^T``, so that ``Phi_A ~ T Phi_S``.
    Returns ``(kept, V T)``; the approximation is exact when ``k >= rank(Phi)``. ``T`` is the
    least-squares fit of every row of ``Phi`` from the kept rows, so ``V T`` already is the
    least-squares refit of the next layer on the kept neurons.

    Args: ``Phi`` (K, N), ``V`` (D', K), ``k`` >= 1, ``alive`` (K,) bool. Raises ``ValueError``
    for mismatched shapes.
    """
    _check(V, k, alive, Phi=Phi)
    A = np.flatnonzero(alive)
    k = _k_alive(k, alive)
    _, R, piv = qr(Phi[A].T, mode="economic", pivoting=True)
    k = min(k, R.shape[0])
    R11, R12 = R[:k, :k], R[:k, k:]
    diag = np.abs(np.diagonal(R11))
    good = diag > np.finfo(R.dtype).eps * max(diag.max(initial=0.0), 1e-300) * max(R.shape)
    T_rest = np.zeros((k, R12.shape[1]))
    if good.all():
        T_rest = solve_triangular(R11, R12)
    else:  # rank < k: interpolate from the independent pivots only
        g = np.flatnonzero(good)
        T_rest[g] = np.linalg.lstsq(R11[np.ix_(g, g)], R12[g], rcond=None)[0]
    sel, rest = A[piv[:k]], A[piv[k:]]
    T = np.zeros((Phi.shape[0], k))  # Phi_A ~ T Phi_sel (rows of T: all neurons; cols: kept)
    T[sel, np.arange(k)] = 1.0
    T[rest] = T_rest.T
    order = np.argsort(sel)
    kept = sel[order]
    return kept, (V @ T)[:, order]


def obs_path(Phi, V, alive, widths, *, damp: float = OBS_DAMP) -> dict:
    """Greedy OBS elimination on the alive neurons, recorded at the requested widths.

    Returns ``{k: (kept, V_kept)}`` for every ``k`` in ``widths`` (capped at the number of alive
    neurons): the increasing indices of the k neurons left and their compensated outgoing weights
    (D', k). One elimination serves every width (the removal order is nested).

    Args: ``Phi`` (K, N), ``V`` (D', K), ``alive`` (K,) bool, ``widths`` ints >= 1, ``damp``
    (>= 0) the damping as a fraction of the mean Gram diagonal. Raises ``ValueError`` for
    mismatched shapes.
    """
    for k in widths:
        _check(V, k, alive, Phi=Phi)
    A = np.flatnonzero(alive)
    want = sorted({_k_alive(k, alive) for k in widths}, reverse=True)
    out = {}
    if A.size == 0:
        return {int(k): (A, V[:, A]) for k in widths}
    N = Phi.shape[1]
    P = Phi[A]
    H = P @ P.T / N
    delta = damp * float(np.mean(np.diagonal(H)))
    Hinv = np.linalg.inv(H + delta * np.eye(A.size))
    W = V[:, A].astype(np.float64).copy()
    left = np.ones(A.size, bool)
    for n_left in range(A.size, 0, -1):
        if want and n_left == want[0]:
            out[n_left] = (A[left], W[:, left].copy())
            want.pop(0)
        if not want:
            break
        d = np.diagonal(Hinv)
        err = np.where(left, np.sum(W * W, axis=0) / np.where(left, d, 1.0), np.inf)
        j = int(np.argmin(err))
        W -= np.outer(W[:, j], Hinv[j] / Hinv[j, j])
        W[:, j] = 0.0
        Hinv = Hinv - np.outer(Hinv[:, j], Hinv[j]) / Hinv[j, j]
        Hinv[j, :] = 0.0
        Hinv[:, j] = 0.0
        left[j] = False
    return {int(k): out[_k_alive(k, alive)] for k in widths}


def obs(Phi, V, k, alive, *, damp: float = OBS_DAMP):
    """Greedy structured OBS down to k alive neurons; returns ``(kept, compensated V_kept)``."""
    return obs_path(Phi, V, alive, [k], damp=damp)[int(k)]


def merge(W_in, b_in, V, k, alive, *, threshold: float = MERGE_THRESHOLD):
    """Data-free neuron merging (Kim et al. 2020) after pruning to the k largest sizes.

    Args: ``W_in`` (K, n_in), ``b_in`` (K,) deep-convention biases, ``V`` (D', K), ``k`` >= 1,
    ``alive`` (K,) bool, ``threshold`` the cosine similarity needed to merge. Returns
    ``(kept (k,), V_kept (D', k))``. Raises ``ValueError`` for mismatched shapes.
    """
    _check(V, k, alive, W_in=W_in, b_in=b_in)
    kept = top_k(neuron_sizes(W_in, b_in, V), k, alive)
    Vk = V[:, kept].astype(np.float64).copy()
    U = np.concatenate([W_in, b_in[:, None]], axis=1).astype(np.float64)
    nu = np.linalg.norm(U, axis=1)
    ukept = U[kept] / np.where(nu[kept] > 0, nu[kept], 1.0)[:, None]
    is_kept = np.zeros(len(b_in), bool)
    is_kept[kept] = True
    for p in np.flatnonzero(alive & ~is_kept):
        if nu[p] == 0 or kept.size == 0:
            continue
        cos = ukept @ (U[p] / nu[p])
        j = int(np.argmax(cos))
        if cos[j] >= threshold and nu[kept[j]] > 0:
            Vk[:, j] += (nu[p] / nu[kept[j]]) * V[:, p]
    return kept, Vk


def refit(Phi, Psi, kept):
    """Least-squares refit of the next layer on the kept neurons (D', len(kept))."""
    return refit_columns(Phi, Psi, kept)
