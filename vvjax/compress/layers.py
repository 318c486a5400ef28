"""One hidden layer as a compression problem, and the surgery that deletes its neurons.

Notation (arXiv 2305.16534, width bounds for homogeneous layers; ``docs/paper.md`` §6): hidden
layer ``l`` of a network has K neurons with incoming rows ``W_l`` (K x n_l) and biases ``b_l``
(K,), post-activations ``Phi`` (K x N) on the N training inputs and outgoing weights
``V = W_{l+1}`` (D' x K, one column ``v_k`` per neuron). ``Psi = V Phi`` (D' x N) is the next
layer's pre-activation minus its bias (:func:`vvjax.models.layer_io`). Deleting neuron k removes row
k of ``W_l``, entry k of ``b_l`` and column k of ``W_{l+1}``; when ``v_k = 0`` the network's outputs
do not change (the deleted terms are exactly zero).

Both network classes are handled through the deep convention ``h -> sigma(W h + b)``: a
:class:`~vvjax.models.ShallowVVNet` is its one-hidden-layer :class:`~vvjax.models.DeepParams`
(:func:`vvjax.models.shallow_to_deep`, ``b -> -b``) and is rebuilt as a ``ShallowVVNet``.
"""

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from vvjax import activations as acts
from vvjax._validate import as_array
from vvjax.lasso._common import blas_single_thread
from vvjax.models import (
    DeepParams,
    DeepVVNet,
    ShallowVVNet,
    deep_to_shallow,
    layer_io,
    params_of,
    shallow_to_deep,
)

__all__ = ["LayerProblem", "deep_params", "check_model", "check_layers", "check_inputs",
           "layer_problem", "delete_neurons", "zero_columns", "rebuild", "count_params",
           "single_blas_thread", "to_device"]


class LayerProblem(NamedTuple):
    """Hidden layer ``layer`` of a network on its training inputs (NumPy arrays, working precision).

    ``W_in`` (K, n_in) incoming rows, ``b_in`` (K,) biases in the deep convention
    (``sigma(W h + b)``), ``V`` (D', K) outgoing weights, ``Phi`` (K, N) post-activations,
    ``Psi = V Phi`` (D', N), ``never_active`` (K,) bool: ``phi_k`` is zero on every training input
    (such a neuron contributes nothing on the training set: every method deletes it for free).
    """

    layer: int
    W_in: np.ndarray
    b_in: np.ndarray
    V: np.ndarray
    Phi: np.ndarray
    Psi: np.ndarray
    never_active: np.ndarray

    @property
    def width(self) -> int:
        return self.W_in.shape[0]


def to_device(a, dtype) -> jnp.ndarray:
    """``a`` as a JAX array of ``dtype``, cast on the host (no XLA cast compiled per shape)."""
    return jnp.asarray(np.asarray(a, dtype=dtype))


def check_model(model) -> None:
    """Raise ``TypeError`` unless ``model`` is a :class:`ShallowVVNet` or :class:`DeepVVNet`."""
    if not isinstance(model, (ShallowVVNet, DeepVVNet)):
        raise TypeError(f"model must be a ShallowVVNet or DeepVVNet, got {type(model).__name__}")


def deep_params(model) -> DeepParams:
    """The model's arrays in the deep convention (a shallow net as its one-hidden-layer
    :class:`DeepParams`)."""
    params = params_of(model)
    return shallow_to_deep(params) if isinstance(model, ShallowVVNet) else params


def check_layers(model, layers) -> list[int]:
    """Validate hidden-layer indices; returns them as a list of ints.

    ``layers`` is an int or a sequence of distinct ints, each a hidden layer ``0 <= l < L - 1``
    (``L`` linear layers; a shallow net has the one hidden layer 0). Layer ``L - 1`` is the output
    layer: its outputs are the network's and no linear layer follows it to absorb a change.

    Raises:
      ValueError: naming ``layers``: empty, repeated, not an int, the output layer, out of range.
    """
    check_model(model)
    n_linear = len(deep_params(model).Ws)
    seq = [layers] if isinstance(layers, (int, np.integer)) else layers
    if isinstance(seq, (str, bytes)) or not isinstance(seq, Sequence) or len(seq) == 0:
        raise ValueError(f"layers must be a hidden-layer index or a non-empty list of them, got "
                         f"{layers!r}")
    out = []
    for l in seq:
        if isinstance(l, bool) or not isinstance(l, (int, np.integer)):
            raise ValueError(f"layers must hold integer layer indices, got {l!r}")
        l = int(l)
        if l == n_linear - 1:
            raise ValueError(
                f"layers: {l} is the output layer of this {n_linear}-layer network; it is not "
                "followed by a linear layer, so its neurons cannot be removed without changing "
                f"the outputs. Hidden layers are 0..{n_linear - 2}")
        if not 0 <= l < n_linear - 1:
            raise ValueError(f"layers: {l} is out of range; this network's hidden layers are "
                             f"0..{n_linear - 2} (0-based, from the input)")
        if l in out:
            raise ValueError(f"layers must be distinct, got {list(seq)!r}")
        out.append(l)
    return out


def check_inputs(model, X, name: str = "X", *, allow_empty: bool = False) -> np.ndarray:
    """``X`` as an (N, d_in) array matching the model's input size.

    Raises:
      ValueError: naming ``name``: not 2-D, NaN/inf, a width other than the model's ``d_in``, or
        no rows.
    """
    d_in = model.d_in
    arr = as_array(name, X, ndim=2, to_jax=False)
    if arr.shape[1] != d_in:
        raise ValueError(f"{name} must have shape (N, {d_in}) (the model's input size d_in="
                         f"{d_in}), got {tuple(arr.shape)}: the data set does not match the model")
    if arr.shape[0] == 0 and not allow_empty:
        raise ValueError(f"{name} must have at least one row")
    return np.asarray(arr)


def layer_problem(model, X, layer: int) -> LayerProblem:
    """Extract hidden layer ``layer`` of ``model`` on the training inputs ``X`` (N, d_in).

    ``Phi`` and ``Psi`` come from :func:`vvjax.models.layer_io` in JAX's working precision (float64
    with ``jax_enable_x64``) and are returned as NumPy arrays of that precision; the parameters are
    cast to it first, so a float32 model is analysed in float64 when x64 is on.

    Raises:
      ValueError / TypeError: as :func:`check_layers` and :func:`check_inputs`.
    """
    (layer,) = check_layers(model, layer)
    X = check_inputs(model, X)
    dt = jnp.zeros(()).dtype  # JAX's working float
    p = deep_params(model)
    p = DeepParams(tuple(to_device(W, dt) for W in p.Ws), tuple(to_device(b, dt) for b in p.bs))
    Phi, Psi = layer_io(p, to_device(X, dt), layer, activation=model.activation,
                        negative_slope=model.negative_slope)
    Phi, Psi = np.asarray(Phi), np.asarray(Psi)
    return LayerProblem(layer, np.asarray(p.Ws[layer]), np.asarray(p.bs[layer]),
                        np.asarray(p.Ws[layer + 1]), Phi, Psi, ~np.any(Phi != 0, axis=1))


def zero_columns(model, layer: int, V) -> DeepParams:
    """The model's :class:`DeepParams` with ``W_{layer+1}`` replaced by ``V`` (D', K), same widths:
    the "zero-column model" a compressed network must reproduce."""
    p = deep_params(model)
    Ws = list(p.Ws)
    Ws[layer + 1] = to_device(V, Ws[layer + 1].dtype)
    return DeepParams(tuple(Ws), p.bs)


def delete_neurons(params: DeepParams, layer: int, keep, V_keep) -> DeepParams:
    """Delete every neuron of hidden layer ``layer`` not in ``keep``.

    Args:
      params: deep-convention arrays.
      layer: hidden-layer index.
      keep: (k,) increasing indices of the neurons kept (into the layer's current width).
      V_keep: (D', k) new outgoing weights of the kept neurons (column i belongs to ``keep[i]``).

    Returns:
      :class:`DeepParams` with ``Ws[layer]`` (k, n_in), ``bs[layer]`` (k,), ``Ws[layer+1]``
      (D', k); every other array unchanged. Arrays keep their dtype.
    """
    keep = np.asarray(keep, dtype=np.int64)
    Ws, bs = list(params.Ws), list(params.bs)
    dtype = Ws[layer].dtype
    Ws[layer] = to_device(np.asarray(Ws[layer])[keep], dtype)
    bs[layer] = to_device(np.asarray(bs[layer])[keep], dtype)
    Ws[layer + 1] = to_device(np.asarray(V_keep).reshape(Ws[layer + 1].shape[0], keep.size),
                              dtype)
    return DeepParams(tuple(Ws), tuple(bs))


def rebuild(model, params: DeepParams):
    """A new network of ``model``'s class, activation and dtype holding ``params`` (deep
    convention; converted back for a :class:`ShallowVVNet`, whose output bias is kept iff it has
    one).

    Equivalent to ``type(model).from_params(...)``, but the module is built abstractly
    (``nnx.eval_shape``) and filled by its own ``load`` (which checks every shape), so no random
    initialisation is drawn and compiled for each new width.
    """
    dtype = deep_params(model).Ws[0].dtype
    params = DeepParams(tuple(to_device(W, dtype) for W in params.Ws),
                        tuple(to_device(b, dtype) for b in params.bs))
    kw = dict(activation=model.activation, negative_slope=model.negative_slope, dtype=dtype)
    if isinstance(model, ShallowVVNet):
        sp = deep_to_shallow(params, output_bias=model.c is not None)
        K, d = sp.W.shape
        new = _empty(lambda: type(model)(d, K, sp.V.shape[0], output_bias=model.c is not None,
                                         rngs=nnx.Rngs(0), **kw))
        new.load(sp)
        return new
    widths = [int(params.Ws[0].shape[1])] + [int(W.shape[0]) for W in params.Ws]
    new = _empty(lambda: type(model)(widths, rngs=nnx.Rngs(0), **kw))
    new.load(params)
    return new


def _empty(make):
    """The module ``make()`` builds, with zero parameters and no random draws."""
    graphdef, state = nnx.split(nnx.eval_shape(make))
    state = jax.tree.map(lambda s: jnp.asarray(np.zeros(s.shape, s.dtype)), state)
    return nnx.merge(graphdef, state)


def count_params(model) -> int:
    """Number of scalar parameters (weights and biases) of a network."""
    p = params_of(model)
    return int(sum(int(np.size(a)) for a in _leaves(p)))


def _leaves(p):
    if isinstance(p, DeepParams):
        return [*p.Ws, *p.bs]
    return [a for a in p if a is not None]


def check_homogeneous(model, allow_nonhomogeneous: bool, what: str) -> bool:
    """Whether the theory covers ``model``'s activation; raises
    :class:`~vvjax.activations.NonHomogeneousError` for a non-homogeneous one unless allowed."""
    if acts.is_homogeneous(model.activation):
        return True
    if not allow_nonhomogeneous:
        acts.require_homogeneous(model.activation, what + " (pass allow_nonhomogeneous=True to "
                                 "run it anyway, outside the theory)")
    return False


def single_blas_thread():
    """Context in which NumPy/SciPy's BLAS and LAPACK run on one thread (the lasso's
    ``blas_single_thread``, one cached ``threadpoolctl`` controller).

    The compression algebra (Gram matrices, eigen- and QR decompositions, least squares of a few
    hundred columns) runs between JAX computations. After XLA has run, its worker threads keep
    the cores busy for a while, and a multithreaded OpenBLAS call waits on them: on 2 cores an
    eigendecomposition of a 419 x 419 matrix took 1.6 s instead of 10 ms. One BLAS thread avoids
    the contention at no cost for these sizes.
    """
    return blas_single_thread()
