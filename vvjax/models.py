"""Vector-valued ReLU networks as Flax NNX modules, with the paper's parameter names.

Shallow network (arXiv 2305.16534, Sec. 2, eq. of the finite-width network)::

    f(x) = sum_k v_k relu(w_k^T x - b_k)  (+ c, optional unregularized output bias)

with ``W`` (K x d, rows ``w_k``), ``b`` (K,), ``V`` (D x K, columns ``v_k``) and ``c`` (D,).

Analysis and training code works on plain arrays: :func:`params_of` turns a module into a
:class:`ShallowParams` (or :class:`DeepParams`) named tuple and :func:`shallow_forward` /
:func:`deep_forward` evaluate those tuples, so everything downstream is a pure function of arrays.
"""

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from vvjax._validate import check_choice, check_positive_int

__all__ = [
    "Bias",
    "ShallowParams",
    "DeepParams",
    "ShallowVVNet",
    "DeepVVNet",
    "params_of",
    "shallow_forward",
    "deep_forward",
    "deep_activations",
    "INITS",
]

INITS = ("torch", "normal")
"""Initialisations: ``"torch"`` is PyTorch's ``nn.Linear`` default (uniform in +-1/sqrt(fan_in) for
weights and biases, as in the paper's experiment);
``"normal"`` is He-normal weights and zero biases."""


class Bias(nnx.Param):
    """A bias parameter: not weight-decayed by default.
    Select with ``nnx.All(nnx.Param, nnx.Not(Bias))``."""


class ShallowParams(NamedTuple):
    """Arrays of a shallow network.
    ``W`` (K, d), ``b`` (K,), ``V`` (D, K), ``c`` (D,) or ``None``."""

    W: jax.Array
    b: jax.Array
    V: jax.Array
    c: jax.Array | None = None


class DeepParams(NamedTuple):
    """Arrays of a deep network: ``Ws[l]`` (n_{l+1}, n_l) and ``bs[l]`` (n_{l+1},), l = 0..L-1.

    The layer map is ``h -> W h + b`` (PyTorch convention); hidden layers apply ReLU after it.
    """

    Ws: tuple
    bs: tuple


def _uniform(key, shape, bound, dtype):
    return jax.random.uniform(key, shape, dtype, -bound, bound)


def _init_dense(key, fan_in, fan_out, init, dtype):
    kw, kb = jax.random.split(key)
    if init == "torch":
        bound = 1.0 / math.sqrt(fan_in)
        return _uniform(kw, (fan_out, fan_in), bound, dtype), _uniform(kb, (fan_out,), bound, dtype)
    W = jax.random.normal(kw, (fan_out, fan_in), dtype) * math.sqrt(2.0 / fan_in)
    return W, jnp.zeros((fan_out,), dtype)


class ShallowVVNet(nnx.Module):
    """Shallow vector-valued ReLU network ``f(x) = V relu(W x - b) (+ c)``.

    Args:
      d_in: input dimension d.
      width: number of neurons K.
      d_out: number of outputs D.
      rngs: ``nnx.Rngs``; the ``params`` stream draws the initial weights.
      output_bias: add an unregularized output bias ``c`` (D,); off by default, as in the paper's
        neuron-sharing experiment (PAPER.md Sec. 5.1).
      init: ``"torch"`` (default, PyTorch ``nn.Linear`` init as in the paper) or ``"normal"``.
      dtype: parameter dtype (default: JAX's default float).

    Example:
      >>> net = ShallowVVNet(2, 100, 2, rngs=nnx.Rngs(0))
      >>> net.W.shape, net.b.shape, net.V.shape
      ((100, 2), (100,), (2, 100))
    """

    def __init__(self, d_in: int, width: int, d_out: int, *, rngs: nnx.Rngs,
                 output_bias: bool = False, init: str = "torch", dtype=None):
        check_positive_int("d_in", d_in)
        check_positive_int("width", width)
        check_positive_int("d_out", d_out)
        check_choice("init", init, INITS)
        dtype = dtype or jnp.zeros(()).dtype
        W, bias = _init_dense(rngs.params(), d_in, width, init, dtype)
        V, _ = _init_dense(rngs.params(), width, d_out, init, dtype)
        self.W = nnx.Param(W)
        # PyTorch computes W x + bias; the paper writes relu(w^T x - b), so b = -bias.
        self.b = Bias(-bias)
        self.V = nnx.Param(V)
        self.c = Bias(jnp.zeros((d_out,), dtype)) if output_bias else None

    @property
    def d_in(self) -> int:
        return self.W.shape[1]

    @property
    def width(self) -> int:
        return self.W.shape[0]

    @property
    def d_out(self) -> int:
        return self.V.shape[0]

    def __call__(self, x: jax.Array) -> jax.Array:
        """Evaluate on ``x`` of shape (..., d); returns (..., D)."""
        return shallow_forward(params_of(self), x)

    def features(self, x: jax.Array) -> jax.Array:
        """Post-activations ``relu(W x - b)`` of shape (..., K) (the lasso's ``Phi`` transposed)."""
        return jax.nn.relu(x @ self.W[...].T - self.b[...])

    @classmethod
    def from_params(cls, params: ShallowParams) -> "ShallowVVNet":
        """Build a network holding the given arrays (no randomness is used)."""
        K, d = params.W.shape
        net = cls(d, K, params.V.shape[0], rngs=nnx.Rngs(0), output_bias=params.c is not None,
                  dtype=params.W.dtype)
        net.load(params)
        return net

    def load(self, params: ShallowParams) -> None:
        """Overwrite the parameters in place with ``params`` (same shapes)."""
        if params.W.shape != self.W.shape or params.V.shape != self.V.shape:
            raise ValueError(
                f"params must match the network: W {self.W.shape}, V {self.V.shape}; got "
                f"W {params.W.shape}, V {params.V.shape}"
            )
        self.W[...] = params.W
        self.b[...] = params.b
        self.V[...] = params.V
        if self.c is not None:
            self.c[...] = params.c if params.c is not None else jnp.zeros_like(self.c[...])


class _Dense(nnx.Module):
    """One fully connected layer ``h -> W h + b`` with ``W`` (out, in), ``b`` (out,)."""

    def __init__(self, fan_in, fan_out, *, rngs, init, dtype):
        W, b = _init_dense(rngs.params(), fan_in, fan_out, init, dtype)
        self.W = nnx.Param(W)
        self.b = Bias(b)


class DeepVVNet(nnx.Module):
    """Deep fully connected ReLU network with vector output.

    ``widths = [d, n_1, ..., n_{L-1}, D]`` gives L linear layers with ReLU after every layer but the
    last. Layer l maps ``h -> W_l h + b_l`` (``W_l``: (n_{l+1}, n_l)). Every hidden layer is
    *homogeneous* in the sense of PAPER.md Sec. 4.3 (ReLU between two weight-decayed linear maps).

    Args:
      widths: list of at least two layer sizes.
      rngs: ``nnx.Rngs``.
      init: ``"torch"`` (default) or ``"normal"``.
      dtype: parameter dtype.

    Example:
      >>> net = DeepVVNet([2, 16, 16, 3], rngs=nnx.Rngs(0))
      >>> [p.shape for p in net.activations(jnp.ones((5, 2)))[0]]
      [(5, 16), (5, 16)]
    """

    def __init__(self, widths, *, rngs: nnx.Rngs, init: str = "torch", dtype=None):
        widths = list(widths)
        if len(widths) < 2:
            raise ValueError(f"widths must list at least [d_in, d_out], got {widths!r}")
        for i, w in enumerate(widths):
            check_positive_int(f"widths[{i}]", w)
        check_choice("init", init, INITS)
        dtype = dtype or jnp.zeros(()).dtype
        self.layers = nnx.List([
            _Dense(a, b, rngs=rngs, init=init, dtype=dtype)
            for a, b in zip(widths[:-1], widths[1:], strict=True)
        ])

    @property
    def widths(self) -> list[int]:
        return [self.layers[0].W.shape[1]] + [layer.W.shape[0] for layer in self.layers]

    def __call__(self, x: jax.Array) -> jax.Array:
        """Evaluate on ``x`` of shape (..., d); returns (..., D)."""
        return deep_forward(params_of(self), x)

    def activations(self, x: jax.Array) -> list[tuple[jax.Array, jax.Array]]:
        """Pre- and post-activations ``(z_l, relu(z_l))`` of every hidden layer on a batch.

        Returns a list of L-1 pairs of shape (..., n_l). In the paper's notation the
        post-activations of hidden layer l, transposed, are ``Phi^{(l)}`` (n_l x N) and the next
        layer's pre-activations minus its bias are ``Psi^{(l)} = W_{l+1} Phi^{(l)}``
        (PAPER.md Sec. 4.3).
        """
        return deep_activations(params_of(self), x)

    def load(self, params: DeepParams) -> None:
        """Overwrite the parameters in place with ``params`` (same shapes)."""
        if not len(params.Ws) == len(params.bs) == len(self.layers):
            raise ValueError(f"params must have {len(self.layers)} layers (weights and biases), "
                             f"got {len(params.Ws)} weights and {len(params.bs)} biases")
        for i, (layer, W, b) in enumerate(zip(self.layers, params.Ws, params.bs, strict=True)):
            if W.shape != layer.W.shape or b.shape != layer.b.shape:  # check all before writing
                raise ValueError(f"layer {i}: expected weight {layer.W.shape} and bias "
                                 f"{layer.b.shape}, got {W.shape} and {b.shape}")
        for layer, W, b in zip(self.layers, params.Ws, params.bs, strict=True):
            layer.W[...] = W
            layer.b[...] = b


def params_of(model) -> ShallowParams | DeepParams:
    """The arrays of a :class:`ShallowVVNet` (-> :class:`ShallowParams`) or :class:`DeepVVNet`."""
    if isinstance(model, ShallowVVNet):
        c = None if model.c is None else model.c[...]
        return ShallowParams(model.W[...], model.b[...], model.V[...], c)
    if isinstance(model, DeepVVNet):
        return DeepParams(tuple(layer.W[...] for layer in model.layers),
                          tuple(layer.b[...] for layer in model.layers))
    raise TypeError(f"model must be a ShallowVVNet or DeepVVNet, got {type(model).__name__}")


def shallow_forward(params: ShallowParams, X: jax.Array) -> jax.Array:
    """``f(X) = relu(X W^T - b) V^T (+ c)`` for ``X`` (..., d); returns (..., D)."""
    W, b, V, c = params
    out = jax.nn.relu(X @ W.T - b) @ V.T
    return out if c is None else out + c


def deep_activations(params: DeepParams, X: jax.Array) -> list[tuple[jax.Array, jax.Array]]:
    """Pre/post-activations of every hidden layer of a deep network on ``X`` (..., d)."""
    out, h = [], X
    for W, b in zip(params.Ws[:-1], params.bs[:-1], strict=True):
        z = h @ W.T + b
        h = jax.nn.relu(z)
        out.append((z, h))
    return out


def deep_forward(params: DeepParams, X: jax.Array) -> jax.Array:
    """Output of a deep network on ``X`` (..., d); returns (..., D)."""
    h = X
    for W, b in zip(params.Ws[:-1], params.bs[:-1], strict=True):
        h = jax.nn.relu(h @ W.T + b)
    return h @ params.Ws[-1].T + params.bs[-1]
