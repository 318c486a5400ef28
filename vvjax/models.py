"""Vector-valued networks as Flax NNX modules, with the paper's parameter names.

Shallow network (arXiv 2305.16534, shallow vector-valued network; ``docs/paper.md`` §2)::

    f(x) = sum_k v_k sigma(w_k^T x - b_k)  (+ c, optional unregularized output bias)

with ``W`` (K x d, rows ``w_k``), ``b`` (K,), ``V`` (D x K, columns ``v_k``), ``c`` (D,) and
``sigma`` from :mod:`vvjax.activations` (ReLU by default). Deep network (``docs/paper.md`` §6)::

    h_0 = x,  h_l = sigma(W_l h_{l-1} + b_l)  (l = 1..L-1),  f(x) = W_L h_{L-1} + b_L.

**Bias signs.** The shallow net follows the paper (``w_k^T x - b_k``); the deep net follows the
PyTorch layer convention (``W h + b``). :func:`shallow_to_deep` and :func:`deep_to_shallow` convert
exactly between a shallow net and a one-hidden-layer deep net (``b -> -b``).

**Variable types.** Weights are ``nnx.Param``; hidden biases are :class:`Bias`; the output bias of
either network is :class:`OutputBias` (a :class:`Bias`). Training selects what weight decay
applies to by these types (:mod:`vvjax.objectives`).

Analysis code works on plain arrays: :func:`params_of` turns a module into a
:class:`ShallowParams` / :class:`DeepParams` named tuple, and :func:`shallow_forward`,
:func:`deep_forward`, :func:`layer_io` evaluate those tuples.
"""

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from vvjax import activations as acts
from vvjax._validate import check_choice, check_positive_int

__all__ = [
    "Bias",
    "OutputBias",
    "ShallowParams",
    "DeepParams",
    "ShallowVVNet",
    "DeepVVNet",
    "params_of",
    "shallow_forward",
    "deep_forward",
    "deep_activations",
    "layer_io",
    "shallow_to_deep",
    "deep_to_shallow",
    "INITS",
]

INITS = ("torch", "normal")
"""Initialisations: ``"torch"`` is PyTorch's ``nn.Linear`` default (uniform in +-1/sqrt(fan_in) for
weights and biases, as in the paper's experiment); ``"normal"`` is He-normal weights and zero
biases."""


class Bias(nnx.Param):
    """A bias parameter: not weight-decayed by default (``decay="weights"``).
    Select with ``nnx.All(nnx.Param, nnx.Not(Bias))``."""


class OutputBias(Bias):
    """The output layer's bias (``c`` of the shallow net, ``b_L`` of the deep net). It belongs to no
    neuron, so it is never part of a path norm and not decayed by ``decay="weights_and_biases"``."""


class ShallowParams(NamedTuple):
    """Arrays of a shallow network.
    ``W`` (K, d), ``b`` (K,), ``V`` (D, K), ``c`` (D,) or ``None``."""

    W: jax.Array
    b: jax.Array
    V: jax.Array
    c: jax.Array | None = None


class DeepParams(NamedTuple):
    """Arrays of a deep network: ``Ws[l]`` (n_{l+1}, n_l) and ``bs[l]`` (n_{l+1},), l = 0..L-1.

    The layer map is ``h -> W h + b`` (PyTorch convention); hidden layers apply the activation.
    """

    Ws: tuple
    bs: tuple


def _init_dense(key, fan_in, fan_out, init, dtype):
    """Draws in float32 and casts, so that a seed names the same network in every precision."""
    kw, kb = jax.random.split(key)
    f32 = jnp.float32
    if init == "torch":
        bound = 1.0 / math.sqrt(fan_in)
        return (jax.random.uniform(kw, (fan_out, fan_in), f32, -bound, bound).astype(dtype),
                jax.random.uniform(kb, (fan_out,), f32, -bound, bound).astype(dtype))
    W = jax.random.normal(kw, (fan_out, fan_in), f32) * math.sqrt(2.0 / fan_in)
    return W.astype(dtype), jnp.zeros((fan_out,), dtype)


def _lead(v, ndim):
    """``v`` (n,) as a row broadcastable against an array of rank ``ndim`` (explicit ranks: the
    tests run with ``jax_numpy_rank_promotion="raise"``)."""
    return v.reshape((1,) * (ndim - 1) + v.shape)


def _check_input(x, d_in):
    if getattr(x, "ndim", 0) < 1 or x.shape[-1] != d_in:
        raise ValueError(f"x must have shape (..., {d_in}) (the model's input size d_in={d_in}), "
                         f"got {getattr(x, 'shape', type(x).__name__)}")


class ShallowVVNet(nnx.Module):
    """Shallow vector-valued network ``f(x) = V sigma(W x - b) (+ c)``.

    Args:
      d_in: input dimension d.
      width: number of neurons K.
      d_out: number of outputs D.
      rngs: ``nnx.Rngs``; the ``params`` stream draws the initial weights.
      activation: one of :data:`vvjax.activations.ACTIVATIONS` (default ``"relu"``).
      negative_slope: leaky ReLU's slope for negative inputs (used by ``"leaky_relu"`` only).
      output_bias: add an unregularized output bias ``c`` (D,); off by default, as in the paper's
        neuron-sharing experiment (``docs/paper.md`` §7.1).
      init: ``"torch"`` (default, PyTorch ``nn.Linear`` init as in the paper) or ``"normal"``.
        Values are drawn in float32 and cast, so a seed gives the same network in every dtype.
      dtype: parameter dtype (default: JAX's default float).

    Raises:
      ValueError: a size that is not an integer >= 1, an unknown ``init`` or ``activation``.

    Examples:
      >>> net = ShallowVVNet(2, 100, 2, rngs=nnx.Rngs(0))
      >>> net.W.shape, net.b.shape, net.V.shape, net.homogeneous
      ((100, 2), (100,), (2, 100), True)
    """

    def __init__(self, d_in: int, width: int, d_out: int, *, rngs: nnx.Rngs,
                 activation: str = "relu", negative_slope: float = acts.DEFAULT_NEGATIVE_SLOPE,
                 output_bias: bool = False, init: str = "torch", dtype=None):
        check_positive_int("d_in", d_in)
        check_positive_int("width", width)
        check_positive_int("d_out", d_out)
        check_choice("init", init, INITS)
        acts.check_activation(activation, negative_slope)
        dtype = dtype or jnp.zeros(()).dtype
        W, bias = _init_dense(rngs.params(), d_in, width, init, dtype)
        V, _ = _init_dense(rngs.params(), width, d_out, init, dtype)
        self.activation = activation
        self.negative_slope = float(negative_slope)
        self.W = nnx.Param(W)
        # PyTorch computes W x + bias; the paper writes sigma(w^T x - b), so b = -bias.
        self.b = Bias(-bias)
        self.V = nnx.Param(V)
        self.c = OutputBias(jnp.zeros((d_out,), dtype)) if output_bias else None

    @property
    def d_in(self) -> int:
        return self.W.shape[1]

    @property
    def width(self) -> int:
        return self.W.shape[0]

    @property
    def d_out(self) -> int:
        return self.V.shape[0]

    @property
    def homogeneous(self) -> bool:
        """Whether the activation is positively 1-homogeneous (:mod:`vvjax.activations`)."""
        return acts.is_homogeneous(self.activation)

    def __call__(self, x: jax.Array) -> jax.Array:
        """Evaluate on ``x`` of shape (..., d); returns (..., D)."""
        _check_input(x, self.d_in)
        return shallow_forward(params_of(self), x, activation=self.activation,
                               negative_slope=self.negative_slope)

    def forward_T(self, XT: jax.Array) -> jax.Array:
        """Outputs in the paper's layout: ``f(X)^T`` (D, N) for inputs ``XT = X^T`` (d, N).

        The training loop uses it for the built-in losses (gradients then contract over N with
        plain matrix products, ~25 % faster per step on the CPU) unless a subclass overrides
        ``__call__``."""
        W, b, V = self.W[...], self.b[...], self.V[...]
        out = V @ acts.apply(self.activation, W @ XT - b[:, None], self.negative_slope)
        return out if self.c is None else out + self.c[...][:, None]

    def features(self, x: jax.Array) -> jax.Array:
        """Post-activations ``sigma(W x - b)`` of shape (..., K) (``Phi`` transposed)."""
        _check_input(x, self.d_in)
        return acts.apply(self.activation, x @ self.W[...].T - _lead(self.b[...], x.ndim),
                          self.negative_slope)

    def hidden_layers(self) -> list[tuple[nnx.Variable, nnx.Variable, nnx.Variable]]:
        """``[(W, b, V)]``: each hidden layer's incoming weights (rows = neurons), biases and
        outgoing weights (columns = neurons), as the module's Variables. Path norms and the
        activity rule are computed per such triple."""
        return [(self.W, self.b, self.V)]

    @classmethod
    def from_params(cls, params: ShallowParams, *, activation: str = "relu",
                    negative_slope: float = acts.DEFAULT_NEGATIVE_SLOPE) -> "ShallowVVNet":
        """Build a network holding the given arrays (no randomness is used)."""
        K, d = params.W.shape
        net = cls(d, K, params.V.shape[0], rngs=nnx.Rngs(0), output_bias=params.c is not None,
                  dtype=params.W.dtype, activation=activation, negative_slope=negative_slope)
        net.load(params)
        return net

    def load(self, params: ShallowParams) -> None:
        """Overwrite the parameters in place with ``params`` (same shapes; checked first)."""
        want = {"W": self.W.shape, "b": self.b.shape, "V": self.V.shape}
        got = {k: tuple(jnp.shape(getattr(params, k))) for k in want}
        if want != got:
            raise ValueError(f"params must match the network's shapes {want}; got {got}")
        if self.c is not None and params.c is not None and tuple(params.c.shape) != self.c.shape:
            raise ValueError(f"params.c must have shape {self.c.shape}, got {params.c.shape}")
        self.W[...] = params.W
        self.b[...] = params.b
        self.V[...] = params.V
        if self.c is not None:
            self.c[...] = params.c if params.c is not None else jnp.zeros_like(self.c[...])


class _Dense(nnx.Module):
    """One fully connected layer ``h -> W h + b`` with ``W`` (out, in), ``b`` (out,)."""

    def __init__(self, fan_in, fan_out, *, rngs, init, dtype, bias_type=Bias):
        W, b = _init_dense(rngs.params(), fan_in, fan_out, init, dtype)
        self.W = nnx.Param(W)
        self.b = bias_type(b)


class DeepVVNet(nnx.Module):
    """Deep fully connected network with vector output.

    ``widths = [d, n_1, ..., n_{L-1}, D]`` gives L linear layers with the activation after every
    layer but the last. Layer l maps ``h -> W_l h + b_l`` (``W_l``: (n_{l+1}, n_l)). With a
    homogeneous activation every hidden layer is *homogeneous* in the sense of the paper's deep
    width bound (an activation between two weight-decayed linear maps; ``docs/paper.md`` §6).

    Args:
      widths: list of at least two layer sizes.
      rngs: ``nnx.Rngs``.
      activation: as :class:`ShallowVVNet`.
      negative_slope: as :class:`ShallowVVNet`.
      init: ``"torch"`` (default) or ``"normal"``.
      dtype: parameter dtype.

    Raises:
      ValueError: fewer than two widths, a width that is not an integer >= 1, an unknown ``init``
        or ``activation``.

    Examples:
      >>> net = DeepVVNet([2, 16, 16, 3], rngs=nnx.Rngs(0))
      >>> [p.shape for p in net.activations(jnp.ones((5, 2)))[0]]
      [(5, 16), (5, 16)]
    """

    def __init__(self, widths, *, rngs: nnx.Rngs, activation: str = "relu",
                 negative_slope: float = acts.DEFAULT_NEGATIVE_SLOPE, init: str = "torch",
                 dtype=None):
        try:
            widths = list(widths)
        except TypeError:
            raise ValueError(f"widths must be a list of layer sizes, got {widths!r}") from None
        if len(widths) < 2:
            raise ValueError(f"widths must list at least [d_in, d_out], got {widths!r}")
        for i, w in enumerate(widths):
            check_positive_int(f"widths[{i}]", w)
        check_choice("init", init, INITS)
        acts.check_activation(activation, negative_slope)
        dtype = dtype or jnp.zeros(()).dtype
        self.activation = activation
        self.negative_slope = float(negative_slope)
        L = len(widths) - 1
        self.layers = nnx.List([
            _Dense(a, b, rngs=rngs, init=init, dtype=dtype,
                   bias_type=OutputBias if i == L - 1 else Bias)
            for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True))
        ])

    @property
    def widths(self) -> list[int]:
        return [self.layers[0].W.shape[1]] + [layer.W.shape[0] for layer in self.layers]

    @property
    def d_in(self) -> int:
        return self.layers[0].W.shape[1]

    @property
    def d_out(self) -> int:
        return self.layers[-1].W.shape[0]

    @property
    def homogeneous(self) -> bool:
        """Whether the activation is positively 1-homogeneous (:mod:`vvjax.activations`)."""
        return acts.is_homogeneous(self.activation)

    def __call__(self, x: jax.Array) -> jax.Array:
        """Evaluate on ``x`` of shape (..., d); returns (..., D)."""
        _check_input(x, self.d_in)
        return deep_forward(params_of(self), x, activation=self.activation,
                            negative_slope=self.negative_slope)

    def forward_T(self, XT: jax.Array) -> jax.Array:
        """Outputs in the paper's layout: ``f(X)^T`` (D, N) for inputs ``XT = X^T`` (d, N) (see
        :meth:`ShallowVVNet.forward_T`)."""
        sigma = acts.get(self.activation, self.negative_slope)
        h = XT
        for layer in self.layers[:-1]:
            h = sigma(layer.W[...] @ h + layer.b[...][:, None])
        last = self.layers[-1]
        return last.W[...] @ h + last.b[...][:, None]

    def activations(self, x: jax.Array) -> list[tuple[jax.Array, jax.Array]]:
        """Pre- and post-activations ``(z_l, sigma(z_l))`` of every hidden layer on a batch.

        Returns a list of L-1 pairs of shape (..., n_l). The post-activations of hidden layer l,
        transposed, are the paper's ``Phi^{(l)}`` (n_l x N); see :func:`layer_io`.
        """
        _check_input(x, self.d_in)
        return deep_activations(params_of(self), x, activation=self.activation,
                                negative_slope=self.negative_slope)

    def hidden_layers(self) -> list[tuple[nnx.Variable, nnx.Variable, nnx.Variable]]:
        """``[(W_l, b_l, W_{l+1})]`` for every hidden layer: incoming weights (rows = neurons),
        biases and outgoing weights (columns = neurons), as the module's Variables."""
        return [(self.layers[l].W, self.layers[l].b, self.layers[l + 1].W)
                for l in range(len(self.layers) - 1)]

    @classmethod
    def from_params(cls, params: DeepParams, *, activation: str = "relu",
                    negative_slope: float = acts.DEFAULT_NEGATIVE_SLOPE) -> "DeepVVNet":
        """Build a network holding the given arrays (no randomness is used).

        Raises:
          ValueError: ``params`` are not a chain of layers (``Ws[l]`` (n_{l+1}, n_l), ``bs[l]``
            (n_{l+1},)) or the activation is unknown.
        """
        Ws, bs = tuple(params.Ws), tuple(params.bs)
        if not Ws or len(Ws) != len(bs):
            raise ValueError(f"params must hold as many weights as biases (at least one layer), "
                             f"got {len(Ws)} weights and {len(bs)} biases")
        widths = [int(jnp.shape(Ws[0])[1])] + [int(jnp.shape(W)[0]) for W in Ws]
        for l, W in enumerate(Ws):
            if jnp.ndim(W) != 2 or jnp.shape(W)[1] != widths[l]:
                raise ValueError(f"params.Ws[{l}] must have shape ({widths[l + 1]}, {widths[l]}) "
                                 f"to follow the previous layer, got {jnp.shape(W)}")
        net = cls(widths, rngs=nnx.Rngs(0), dtype=Ws[0].dtype, activation=activation,
                  negative_slope=negative_slope)
        net.load(DeepParams(Ws, bs))
        return net

    def load(self, params: DeepParams) -> None:
        """Overwrite the parameters in place with ``params`` (same shapes; checked first)."""
        if not len(params.Ws) == len(params.bs) == len(self.layers):
            raise ValueError(f"params must have {len(self.layers)} layers (weights and biases), "
                             f"got {len(params.Ws)} weights and {len(params.bs)} biases")
        for i, (layer, W, b) in enumerate(zip(self.layers, params.Ws, params.bs, strict=True)):
            if jnp.shape(W) != layer.W.shape or jnp.shape(b) != layer.b.shape:
                raise ValueError(f"layer {i}: expected weight {layer.W.shape} and bias "
                                 f"{layer.b.shape}, got {jnp.shape(W)} and {jnp.shape(b)}")
        for layer, W, b in zip(self.layers, params.Ws, params.bs, strict=True):
            layer.W[...] = W
            layer.b[...] = b


def params_of(model) -> ShallowParams | DeepParams:
    """The arrays of a :class:`ShallowVVNet` (-> :class:`ShallowParams`) or :class:`DeepVVNet`
    (-> :class:`DeepParams`).

    Raises:
      TypeError: for any other object.
    """
    if isinstance(model, ShallowVVNet):
        c = None if model.c is None else model.c[...]
        return ShallowParams(model.W[...], model.b[...], model.V[...], c)
    if isinstance(model, DeepVVNet):
        return DeepParams(tuple(layer.W[...] for layer in model.layers),
                          tuple(layer.b[...] for layer in model.layers))
    raise TypeError(f"model must be a ShallowVVNet or DeepVVNet, got {type(model).__name__}")


def shallow_forward(params: ShallowParams, X: jax.Array, *, activation: str = "relu",
                    negative_slope: float = acts.DEFAULT_NEGATIVE_SLOPE) -> jax.Array:
    """``f(X) = sigma(X W^T - b) V^T (+ c)`` for ``X`` (..., d); returns (..., D)."""
    W, b, V, c = params
    out = acts.apply(activation, X @ W.T - _lead(b, X.ndim), negative_slope) @ V.T
    return out if c is None else out + _lead(c, X.ndim)


def deep_activations(params: DeepParams, X: jax.Array, *, activation: str = "relu",
                     negative_slope: float = acts.DEFAULT_NEGATIVE_SLOPE
                     ) -> list[tuple[jax.Array, jax.Array]]:
    """Pre/post-activations ``(z_l, sigma(z_l))`` of every hidden layer on ``X`` (..., d)."""
    sigma = acts.get(activation, negative_slope)
    out, h = [], X
    for W, b in zip(params.Ws[:-1], params.bs[:-1], strict=True):
        z = h @ W.T + _lead(b, h.ndim)
        h = sigma(z)
        out.append((z, h))
    return out


def deep_forward(params: DeepParams, X: jax.Array, *, activation: str = "relu",
                 negative_slope: float = acts.DEFAULT_NEGATIVE_SLOPE) -> jax.Array:
    """Output of a deep network on ``X`` (..., d); returns (..., D)."""
    sigma = acts.get(activation, negative_slope)
    h = X
    for W, b in zip(params.Ws[:-1], params.bs[:-1], strict=True):
        h = sigma(h @ W.T + _lead(b, h.ndim))
    return h @ params.Ws[-1].T + _lead(params.bs[-1], h.ndim)


def layer_io(model_or_params, X, l: int = 0, *, activation: str | None = None,
             negative_slope: float | None = None) -> tuple[jax.Array, jax.Array]:
    """``(Phi, Psi)`` of hidden layer ``l`` on the inputs ``X`` (N, d): the paper's
    ``Phi^{(l)}`` (K_l x N), the layer's post-activations, and ``Psi^{(l)} = W_{l+1} Phi^{(l)}``
    (K_{l+1} x N), the next layer's pre-activations minus its bias (arXiv 2305.16534, width
    bounds for homogeneous layers; ``docs/paper.md`` §6). For a shallow net ``l = 0`` and
    ``Psi = V Phi = f(X)^T - c``.

    Args:
      model_or_params: a :class:`ShallowVVNet` / :class:`DeepVVNet`, or their params (then give
        ``activation``; default ``"relu"``).
      X: inputs (N, d).
      l: hidden-layer index, ``0 <= l < L - 1`` (``L`` linear layers).
      activation: override the model's activation (needed for bare params; default
        ``"relu"``).
      negative_slope: override the model's leaky-ReLU slope.

    Raises:
      ValueError: ``l`` out of range, ``X`` of the wrong shape.
      TypeError: not a model or params.
    """
    from vvjax._validate import as_array

    model = model_or_params
    if isinstance(model, (ShallowVVNet, DeepVVNet)):
        activation = activation or model.activation
        negative_slope = model.negative_slope if negative_slope is None else negative_slope
        params = params_of(model)
    elif isinstance(model, (ShallowParams, DeepParams)):
        params = model
    else:
        raise TypeError("model_or_params must be a ShallowVVNet, DeepVVNet, ShallowParams or "
                        f"DeepParams, got {type(model).__name__}")
    activation = activation or "relu"
    negative_slope = acts.DEFAULT_NEGATIVE_SLOPE if negative_slope is None else negative_slope
    if isinstance(params, ShallowParams):
        params = shallow_to_deep(params)
    n_hidden = len(params.Ws) - 1
    if isinstance(l, bool) or not isinstance(l, int) or not 0 <= l < n_hidden:
        raise ValueError(f"l must index a hidden layer, an integer in [0, {n_hidden - 1}], "
                         f"got {l!r}")
    d_in = params.Ws[0].shape[1]
    X = as_array("X", X, ndim=2)
    if X.shape[1] != d_in:
        raise ValueError(f"X must have shape (N, {d_in}) (the model's input size), got {X.shape}")
    X = X.astype(params.Ws[0].dtype)
    _, Phi_T = deep_activations(DeepParams(params.Ws[:l + 2], params.bs[:l + 2]), X,
                                activation=activation, negative_slope=negative_slope)[l]
    Phi = Phi_T.T
    return Phi, params.Ws[l + 1] @ Phi


def shallow_to_deep(params: ShallowParams) -> DeepParams:
    """The one-hidden-layer :class:`DeepParams` computing the same function:
    ``Ws = (W, V)``, ``bs = (-b, c)`` (``c = 0`` when the shallow net has no output bias)."""
    c = params.c if params.c is not None else jnp.zeros((params.V.shape[0],), params.V.dtype)
    return DeepParams((params.W, params.V), (-params.b, c))


def deep_to_shallow(params: DeepParams, *, output_bias: bool = True) -> ShallowParams:
    """The :class:`ShallowParams` of a one-hidden-layer deep net: ``W = Ws[0]``, ``b = -bs[0]``,
    ``V = Ws[1]``, ``c = bs[1]`` (``None`` with ``output_bias=False``, which requires
    ``bs[1] == 0``).

    Raises:
      ValueError: the deep net does not have exactly one hidden layer, or ``output_bias=False``
        with a nonzero output bias.
    """
    if len(params.Ws) != 2 or len(params.bs) != 2:
        raise ValueError(f"params must have exactly 2 layers (one hidden layer) to be a shallow "
                         f"net, got {len(params.Ws)}")
    c = params.bs[1]
    if not output_bias:
        if bool(jnp.any(c != 0)):
            raise ValueError("output_bias=False needs a zero output bias bs[1]")
        c = None
    return ShallowParams(params.Ws[0], -params.bs[0], params.Ws[1], c)
