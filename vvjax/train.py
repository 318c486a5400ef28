"""Full-batch training of shallow vector-valued ReLU networks, compiled end to end.

The objectives (``R``: regularizer, ``lam``: its weight, ``f_theta(x) = V relu(W x - b) (+ c)``)::

    "none"          MSE(theta)
    "weight_decay"  MSE(theta) + lam/2 sum_k (||w_k||^2 [+ b_k^2] + ||v_k||^2)
    "vv"            MSE(theta) + lam sum_k ||v_k||_2 ||(w_k, b_k)||_2
    "m1"            MSE(theta) + lam sum_k ||v_k||_1 ||(w_k, b_k)||_2
    "prox"          MSE(theta) + lam sum_k ||v_k||_2   s.t.  ||(w_k, b_k)||_2 = 1

with ``MSE = 1/(N D) sum_{i,j} (f_theta(x_i)_j - y_ij)^2`` (PyTorch's ``MSELoss``, as in the paper).
``[+ b_k^2]`` and the ``b_k`` in the norms follow ``include_bias``; the output bias ``c`` is never
regularized. The first four add the penalty to the loss and differentiate it (weight decay is an
explicit term, not ``optax.adamw``'s decoupled decay). ``"prox"`` is the paper's proximal method
(PAPER.md Sec. 5.1; PathProx, arXiv 2210.03069): a gradient step on the MSE alone, then the group
soft-threshold ``v_k <- v_k max(0, 1 - lr lam / ||v_k||)`` (the prox of ``lr lam sum_k ||v_k||``),
then the Euclidean projection onto the constraint: ``(w_k, b_k) <- (w_k, b_k)/||(w_k, b_k)||`` (with
``include_bias=False``: ``w_k <- w_k/||w_k||``, ``b_k`` unchanged), with no compensation in ``v_k``.
By the rescaling argument (arXiv 2305.16534, Sec. 3; PAPER.md Sec. 2.2) it has the same
minimizers as ``"weight_decay"`` with the same ``include_bias``. Its reported penalty is the
rescaling-invariant VV norm, equal to ``sum_k ||v_k||_2`` on the constraint set.

Design: a pure functional core (:func:`objective`, :func:`make_step`) on
:class:`~vvjax.models.ShallowParams`. :func:`fit` runs it in one jitted program per chunk of steps
(``lax.scan`` over log blocks, a ``fori_loop`` of steps in each), with one compilation per shape and
static option: ``lr``, ``lam`` and the step range are traced. Python only loops over chunks
(progress bar, divergence check). :func:`fit_batch` runs a batch of ``lam``/``lr`` values and
initialisations as the same program under ``jax.vmap`` (on the CPU, one such program per core, each
in a thread).
"""

import os
import sys
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from vvjax._threads import Workers, check_cancelled
from vvjax._validate import as_array, check_choice, check_nonnegative, check_positive_int
from vvjax.models import ShallowParams, ShallowVVNet, params_of

__all__ = [
    "REGULARIZERS", "OPTIMIZERS", "DEFAULT_ACTIVE_ATOL", "History", "TrainState", "Stepper",
    "TrainingDivergedError", "data_fit", "penalty", "objective", "make_step", "fit", "fit_batch",
    "default_workers",
]

REGULARIZERS = ("none", "weight_decay", "vv", "m1", "prox")
OPTIMIZERS = ("sgd", "momentum", "adam")
DEFAULT_ACTIVE_ATOL = 1e-3
"""Active neuron: ``||v_k||_2 ||(w_k, b_k)||_2 > 1e-3`` (the paper's rule, PAPER.md Sec. 5.1)."""


class History(NamedTuple):
    """Training curves at the log steps (numpy arrays of shape (T,), or (B, T) for a batch).

    ``loss = data_fit + lam * penalty`` is the objective; ``n_active`` counts neurons with
    ``||v_k|| ||(w_k, b_k)|| > active_atol``. ``step`` is the number of steps taken (0 = initial).
    """

    step: np.ndarray
    loss: np.ndarray
    data_fit: np.ndarray
    penalty: np.ndarray
    n_active: np.ndarray


class TrainState(NamedTuple):
    """Parameters and optimizer state carried through the compiled loop."""

    params: ShallowParams
    opt_state: Any


class Stepper(NamedTuple):
    """``init(params) -> TrainState`` and ``step(state, X, Y, lr, lam) -> (state, objective)``.

    ``objective`` is the objective at ``state.params`` *before* the step (it comes with the
    gradient).
    """

    init: Callable[[ShallowParams], TrainState]
    step: Callable[..., tuple[TrainState, jax.Array]]


class TrainingDivergedError(FloatingPointError):
    """The objective became NaN or inf. ``step`` is the first step count whose objective is
    non-finite; ``params`` (and ``model`` for :func:`fit`) hold the last parameters with a finite
    objective (``step - 1`` steps), ``history`` the curves logged until then, ``members`` the batch
    members that diverged (:func:`fit_batch`)."""

    def __init__(self, msg, *, step, params, history, model=None, members=None):
        super().__init__(msg)
        self.step, self.params, self.history = step, params, history
        self.model, self.members = model, members


# ---------------------------------------------------------------- pure functional core

def _safe_norm(x, axis):
    """Euclidean norm along ``axis`` whose gradient at 0 is 0 (a subgradient) instead of NaN."""
    sq = jnp.sum(x * x, axis=axis)
    pos = sq > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, sq, 1.0)), 0.0)


def _input_norms(W, b, include_bias):
    return _safe_norm(jnp.concatenate([W, b[:, None]], axis=1) if include_bias else W, axis=1)


def _forward_T(params: ShallowParams, X: jax.Array) -> jax.Array:
    """``f(X)^T = V relu(W X^T - b) (+ c)``, (D, N): :func:`~vvjax.models.shallow_forward` computed
    in the paper's K x N feature layout (``Phi = relu(W X^T - b)``). Its gradient contracts over N
    with plain matrix products, about 25% faster per step on CPU than the N x K layout."""
    W, b, V, c = params
    out = V @ jax.nn.relu(W @ X.T - b[:, None])
    return out if c is None else out + c[:, None]


def data_fit(params: ShallowParams, X: jax.Array, Y: jax.Array) -> jax.Array:
    """``MSE = 1/(N D) sum_ij (f(x_i)_j - y_ij)^2`` for ``X`` (N, d), ``Y`` (N, D) -> scalar."""
    return jnp.mean((_forward_T(params, X) - Y.T) ** 2)


def penalty(params: ShallowParams, *, regularizer: str = "none",
            include_bias: bool = True) -> jax.Array:
    """The regularizer ``R(theta)`` (without ``lam``) of the module docstring's table.

    Equals :func:`vvjax.norms.weight_decay_penalty` / ``vv_norm`` (also for ``"prox"``) /
    ``m1_norm`` but differentiable at zero columns (subgradient 0 there). ``"none"`` gives 0.
    """
    W, b, V = params.W, params.b, params.V
    if regularizer == "none":
        return jnp.zeros((), W.dtype)
    if regularizer == "weight_decay":
        sq = jnp.sum(W * W) + (jnp.sum(b * b) if include_bias else 0.0)
        return 0.5 * (sq + jnp.sum(V * V))
    out = jnp.sum(jnp.abs(V), axis=0) if regularizer == "m1" else _safe_norm(V, axis=0)
    return jnp.sum(out * _input_norms(W, b, include_bias))


def objective(params: ShallowParams, X: jax.Array, Y: jax.Array, *, regularizer: str = "none",
              lam: float | jax.Array = 0.0, include_bias: bool = True) -> jax.Array:
    """``MSE(theta) + lam R(theta)`` (module docstring); the value :func:`fit` logs as ``loss``.

    Args:
      params: network arrays, ``W`` (K, d), ``b`` (K,), ``V`` (D, K), ``c`` (D,) or ``None``.
      X: inputs (N, d). Y: targets (N, D).
      regularizer: one of :data:`REGULARIZERS`. lam: weight ``lam >= 0``.
      include_bias: count ``b_k`` in the input-weight norms.

    References: arXiv 2305.16534, Sec. 3 (weight decay <=> VV norm); PAPER.md Sec. 2.2.
    """
    return data_fit(params, X, Y) + lam * penalty(params, regularizer=regularizer,
                                                   include_bias=include_bias)


def _direction(optimizer: str) -> optax.GradientTransformation:
    """Update direction before the ``-lr`` scaling (so ``lr`` stays a traced value)."""
    if optimizer == "sgd":
        return optax.identity()
    if optimizer == "momentum":
        return optax.trace(decay=0.9)
    return optax.scale_by_adam()


def _prox(params: ShallowParams, tau, include_bias: bool) -> ShallowParams:
    """Group soft-threshold of the columns of V at ``tau``, then unit-norm (w_k[, b_k])."""
    W, b, V, c = params
    nv = _safe_norm(V, axis=0)
    V = V * jnp.where(nv > tau, 1.0 - tau / jnp.where(nv > 0, nv, 1.0), 0.0)
    nin = _input_norms(W, b, include_bias)
    scale = 1.0 / jnp.where(nin > 0, nin, 1.0)
    return ShallowParams(W * scale[:, None], b * scale if include_bias else b, V, c)


def make_step(*, regularizer: str = "none", optimizer: str = "sgd",
              include_bias: bool = True) -> Stepper:
    """Build the pure training step for one regularizer/optimizer pair.

    ``step(state, X, Y, lr, lam)``: with ``g = grad(loss)`` and ``u = direction(g)`` (``g`` for
    ``"sgd"``, heavy-ball ``trace(0.9)`` for ``"momentum"``, ``optax.scale_by_adam`` for ``"adam"``)
    the update is ``theta <- theta - lr u``. ``loss`` is :func:`objective` except for ``"prox"``,
    where it is the MSE and the step is followed by the prox/projection of the module docstring.
    ``"prox"`` with ``"adam"`` (Adam step, then group soft-threshold at ``lr lam``) is the heuristic
    of the authors' compression code, not a proximal method with guarantees.

    Returns:
      A :class:`Stepper`; both functions are pure and jit/vmap-able; ``lr`` and ``lam`` may be
      traced.

    References: arXiv 2305.16534; PathProx, arXiv 2210.03069.
    """
    check_choice("regularizer", regularizer, REGULARIZERS)
    check_choice("optimizer", optimizer, OPTIMIZERS)
    tx = _direction(optimizer)
    grad_reg = "none" if regularizer == "prox" else regularizer

    def init(params):
        return TrainState(params, tx.init(params))

    def step(state, X, Y, lr, lam):
        params = state.params
        loss, g = jax.value_and_grad(objective)(params, X, Y, regularizer=grad_reg, lam=lam,
                                                include_bias=include_bias)
        u, opt_state = tx.update(g, state.opt_state, params)
        new = jax.tree.map(lambda p, du: p - lr * du, params, u)
        if regularizer == "prox":
            loss = loss + lam * penalty(params, regularizer="vv", include_bias=include_bias)
            new = _prox(new, lr * lam, include_bias)
        return TrainState(new, opt_state), loss

    return Stepper(init, step)


def _metrics(params, X, Y, lam, atol, *, regularizer, include_bias):
    fit_ = data_fit(params, X, Y)
    pen = penalty(params, regularizer="vv" if regularizer == "prox" else regularizer,
                  include_bias=include_bias)
    path = _safe_norm(params.V, axis=0) * _input_norms(params.W, params.b, include_bias)
    return fit_ + lam * pen, fit_, pen, jnp.sum(path > atol).astype(jnp.int32)


# ---------------------------------------------------------------- compiled drivers

_STATIC = ("regularizer", "optimizer", "include_bias", "log_every", "n_blocks", "batched")


@partial(jax.jit, static_argnames=_STATIC)
def _run_chunk(state, X, Y, lr, lam, atol, t0, stop, *, regularizer, optimizer, include_bias,
               log_every, n_blocks, batched):
    """Steps ``t0 .. min(t0 + n_blocks log_every, stop)``; metrics after every ``log_every`` block.

    Returns ``(state, first_bad, (loss, data_fit, penalty, n_active))``: ``first_bad`` is the first
    step count whose objective was non-finite in the loop (-1 if none).
    """
    stepper = make_step(regularizer=regularizer, optimizer=optimizer, include_bias=include_bias)

    def one(state, lr, lam):
        def body(i, carry):
            st, bad = carry
            st, loss = stepper.step(st, X, Y, lr, lam)
            return st, jnp.where((bad < 0) & ~jnp.isfinite(loss), i, bad)

        def block(carry, j):
            lo = jnp.minimum(t0 + j * log_every, stop)
            carry = jax.lax.fori_loop(lo, jnp.minimum(lo + log_every, stop), body, carry)
            return carry, _metrics(carry[0].params, X, Y, lam, atol, regularizer=regularizer,
                                   include_bias=include_bias)

        (state, bad), logs = jax.lax.scan(block, (state, jnp.int32(-1)),
                                          jnp.arange(n_blocks, dtype=jnp.int32))
        return state, bad, logs

    return jax.vmap(one)(state, lr, lam) if batched else one(state, lr, lam)


@partial(jax.jit, static_argnames=("regularizer", "include_bias", "batched"))
def _initial_metrics(params, X, Y, lam, atol, *, regularizer, include_bias, batched):
    f = partial(_metrics, X=X, Y=Y, atol=atol, regularizer=regularizer, include_bias=include_bias)
    return jax.vmap(f)(params, lam=lam) if batched else f(params, lam=lam)


def _auto_progress(steps):
    return steps >= 200_000 and hasattr(sys.stderr, "isatty") and sys.stderr.isatty()


def _cpu_cores() -> int:
    """CPU cores this process may use: its affinity mask, capped by a cgroup v2 CPU quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    try:
        with open("/sys/fs/cgroup/cpu.max") as f:
            quota, period = f.read().split()
        if quota != "max":
            cores = min(cores, max(1, -(-int(quota) // int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)


def default_workers(n_jobs: int) -> int:
    """Threads worth using for ``n_jobs`` independent fits (or batch members) on the default
    backend: on the CPU one per core available to the process (affinity mask and cgroup quota), at
    most ``n_jobs``, since XLA:CPU's own threading gains little on programs this small; on an
    accelerator 1 (one vmapped program holds the batch)."""
    if jax.default_backend() != "cpu":
        return 1
    return max(1, min(_cpu_cores(), n_jobs))


def _loop(params, X, Y, lr, lam, *, steps, regularizer, optimizer, include_bias, log_every, chunk,
          active_atol, progress, batched, workers=1):
    """Python loop over compiled chunks: logging, progress bar and divergence handling.

    With ``batched`` and ``workers > 1`` the batch is split into contiguous groups of equal size
    ``ceil(B / min(workers, B))``, each run as its own vmapped program in a worker thread (XLA
    releases the GIL), chunk by chunk. Between chunks the loop stops if its worker pool was
    cancelled.
    """
    check_choice("regularizer", regularizer, REGULARIZERS)
    check_choice("optimizer", optimizer, OPTIMIZERS)
    check_positive_int("steps", steps)
    check_positive_int("log_every", log_every)
    if chunk is None:
        chunk = log_every * max(1, 10_000 // log_every)
    check_positive_int("chunk", chunk)
    if chunk % log_every:
        raise ValueError(f"chunk must be a multiple of log_every={log_every}, got {chunk}")
    check_nonnegative("active_atol", active_atol)
    dtype = params.W.dtype
    X, Y = jnp.asarray(X, dtype), jnp.asarray(Y, dtype)
    atol = jnp.asarray(active_atol, dtype)
    static = dict(regularizer=regularizer, include_bias=include_bias)
    stepper = make_step(regularizer=regularizer, optimizer=optimizer, include_bias=include_bias)
    state = jax.vmap(stepper.init)(params) if batched else stepper.init(params)
    first = _initial_metrics(params, X, Y, lam, atol, batched=batched, **static)
    logs = [(np.zeros(1, np.int64), *(np.asarray(m)[..., None] for m in first))]
    kw = dict(optimizer=optimizer, log_every=log_every, n_blocks=chunk // log_every,
              batched=batched, **static)

    # Groups of batch members, each run as its own vmapped program in a worker thread. All groups
    # have the same size (one compilation): the last one is padded with copies of the last member,
    # whose results are dropped. Unbatched, or with one group: the whole state in the caller.
    B = lr.shape[0] if batched else 1
    size = -(-B // min(workers, B))
    n_groups = -(-B // size)
    if n_groups > 1:
        index = np.minimum(np.arange(n_groups * size), B - 1).reshape(n_groups, size)
        groups = [(lr[i], lam[i]) for i in index]
        states = [jax.tree.map(lambda x, i=i: x[i], state) for i in index]
    else:
        groups, states = [(lr, lam)], [state]
    del state

    def run(pool, states, t0, stop):
        """One chunk for every group -> (states, first_bad (B,) or (), logs (B, n) or (n,))."""
        check_cancelled()  # stop early when running in a cancelled worker pool

        def one(job):
            st, (lr_g, lam_g) = job
            return jax.block_until_ready(_run_chunk(st, X, Y, lr_g, lam_g, atol, jnp.int32(t0),
                                                    jnp.int32(stop), **kw))

        res = pool.map(one, zip(states, groups, strict=True))
        if len(res) == 1:
            return [res[0][0]], np.asarray(res[0][1]), [np.asarray(o) for o in res[0][2]]
        return ([r[0] for r in res], np.concatenate([np.asarray(r[1]) for r in res])[:B],
                [np.concatenate([np.asarray(r[2][k]) for r in res])[:B] for k in range(4)])

    def params_of_states(states):
        if len(states) == 1:
            return states[0].params
        return jax.tree.map(lambda *x: jnp.concatenate(x)[:B], *(s.params for s in states))

    def history(upto):
        step = np.concatenate([l[0] for l in logs])
        keep = step <= upto
        return History(step[keep], *(np.concatenate([l[k] for l in logs], -1)[..., keep]
                                     for k in range(1, 5)))

    if not np.all(np.isfinite(first[0])):
        raise ValueError("the initial parameters give a non-finite objective (check the model)")
    from tqdm.auto import tqdm

    bar = tqdm(total=steps, unit="step", disable=not (_auto_progress(steps) if progress is None
                                                      else progress))
    with bar, Workers(n_groups) as pool:
        for t0 in range(0, steps, chunk):
            new, bad, out = run(pool, states, t0, steps)
            ends = np.minimum(t0 + log_every * np.arange(1, chunk // log_every + 1), steps)
            valid = np.arange(t0, t0 + chunk, log_every) < steps
            out = [o[..., valid] for o in out]
            bad = np.atleast_1d(bad).astype(np.int64)
            bad = np.where(bad >= 0, bad, np.iinfo(np.int64).max)
            nonfin = ~np.isfinite(np.atleast_2d(out[0]))
            bad = np.minimum(bad, np.where(nonfin.any(-1), ends[valid][nonfin.argmax(-1)],
                                           np.iinfo(np.int64).max))
            if (bad < np.iinfo(np.int64).max).any():
                t_bad = int(bad.min())
                last = states
                if t_bad - 1 > t0:
                    last = run(pool, states, t0, t_bad - 1)[0]
                raise _diverged(t_bad, params_of_states(last), np.flatnonzero(bad == t_bad)
                                if batched else None, history, ends[valid], out)
            logs.append((ends[valid], *out))
            states = new
            bar.update(min(chunk, steps - t0))
            bar.set_postfix(loss=f"{float(np.min(out[0][..., -1])):.3g}", refresh=False)
    return params_of_states(states), history(steps)


def _diverged(t_bad, params, members, history, ends, out):
    hist = history(t_bad - 1)
    # add the logs of the failing chunk that were still finite
    keep = ends < t_bad
    curves = (np.concatenate([h, o[..., keep]], -1) for h, o in zip(hist[1:], out, strict=True))
    hist = History(np.concatenate([hist.step, ends[keep]]), *curves)
    who = "" if members is None else f" (batch members {members.tolist()})"
    return TrainingDivergedError(
        f"training diverged: the objective is NaN or inf after {t_bad} steps{who}; "
        f"err.params holds the last finite parameters (step {t_bad - 1}). Try a smaller lr.",
        step=t_bad, params=params, history=hist, members=members)


# ---------------------------------------------------------------- public API

def _check_data(X, Y, d_in, d_out):
    X = as_array("X", X, ndim=2)
    Y = as_array("Y", Y, ndim=2)
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"X and Y must have the same number of rows, got X {X.shape}, Y {Y.shape}")
    if X.shape[1] != d_in:
        raise ValueError(f"X must have d_in={d_in} columns (the model's input size), got {X.shape}")
    if Y.shape[1] != d_out:
        raise ValueError(f"Y must have d_out={d_out} columns (the model's outputs), got {Y.shape}")
    return X, Y


def _check_lr(lr):
    v = np.asarray(lr, dtype=float)
    if not np.all(np.isfinite(v)) or np.any(v <= 0):
        raise ValueError(f"lr must be finite and > 0, got {lr!r}")


def fit(model: ShallowVVNet, X, Y, *, steps: int, lr: float, regularizer: str = "none",
        lam: float = 0.0, optimizer: str = "sgd", include_bias: bool = True, log_every: int = 100,
        chunk: int | None = None, active_atol: float = DEFAULT_ACTIVE_ATOL,
        progress: bool | None = None) -> tuple[ShallowVVNet, History]:
    """Train ``model`` full-batch on ``(X, Y)``; the objective is chosen by ``regularizer``.

    With ``MSE = 1/(N D) ||f_theta(X) - Y||_F^2`` and ``n_k = ||(w_k, b_k)||_2`` (``||w_k||_2`` if
    ``include_bias=False``), the objectives are

    - ``"none"``: ``MSE``;
    - ``"weight_decay"``: ``MSE + lam/2 sum_k (n_k^2 + ||v_k||_2^2)``;
    - ``"vv"``: ``MSE + lam sum_k ||v_k||_2 n_k``;  ``"m1"``: ``MSE + lam sum_k ||v_k||_1 n_k``;
    - ``"prox"``: ``MSE + lam sum_k ||v_k||_2`` subject to ``n_k = 1`` (gradient step on the MSE,
      group soft-threshold of the ``v_k`` at ``lr lam``, projection onto ``n_k = 1``).

    See the module docstring.

    Args:
      model: a :class:`~vvjax.models.ShallowVVNet`; it is not modified.
      X: inputs (N, d), finite. Y: targets (N, D), finite.
      steps: number of steps (>= 1).
      lr: learning rate (> 0). regularizer: one of :data:`REGULARIZERS` (module docstring).
      lam: regularization weight (>= 0, a scalar; for several values use :func:`fit_batch`).
      optimizer: ``"sgd"``, ``"momentum"`` (heavy ball 0.9) or ``"adam"`` (see :func:`make_step`).
      include_bias: count ``b_k`` in the penalties/constraint (the paper's experiment does).
      log_every: log the metrics every this many steps (and after the last one).
      chunk: steps per compiled call (a multiple of ``log_every``; default about 10,000). The
        Python loop, the progress bar and the divergence check run once per chunk.
      active_atol: threshold of the active-neuron count, ``||v_k|| ||(w_k, b_k)|| > active_atol``.
      progress: tqdm progress bar; ``None`` shows it for runs of >= 200,000 steps on a terminal.

    Returns:
      ``(trained, history)``: a new model with the trained weights and a :class:`History`.

    Raises:
      ValueError: bad arguments (the message names the argument).
      TrainingDivergedError: the objective became NaN/inf; carries the step, the last finite
        parameters (``err.params``, ``err.model``) and the history so far.

    ``lr`` and ``lam`` are traced: fits that differ only in them (or in ``steps``) reuse one
    compiled program. Example::

        net, hist = fit(ShallowVVNet(2, 100, 2, rngs=nnx.Rngs(49)), X, Y, steps=100_000, lr=0.2,
                        regularizer="prox", lam=5e-5)

    References: arXiv 2305.16534 (Sec. 3, neuron-sharing experiment); PathProx, arXiv 2210.03069.
    """
    if not isinstance(model, ShallowVVNet):
        raise TypeError(f"model must be a ShallowVVNet, got {type(model).__name__}")
    X, Y = _check_data(X, Y, model.d_in, model.d_out)
    _check_lr(lr)
    check_nonnegative("lam", lam)
    if np.ndim(lam) or np.ndim(lr):
        raise ValueError("lam and lr must be scalars in fit; use fit_batch for several values")
    params = params_of(model)
    dtype = params.W.dtype
    graphdef, state = nnx.split(model)

    def to_model(p):
        out = nnx.merge(graphdef, state, copy=True)
        out.load(p)
        return out

    try:
        params, hist = _loop(params, X, Y, jnp.asarray(lr, dtype), jnp.asarray(lam, dtype),
                             steps=steps, regularizer=regularizer, optimizer=optimizer,
                             include_bias=include_bias, log_every=log_every, chunk=chunk,
                             active_atol=active_atol, progress=progress, batched=False)
    except TrainingDivergedError as err:
        err.model = to_model(err.params)
        raise
    return to_model(params), hist


def _stack(items):
    return jax.tree.map(lambda *xs: jnp.stack(xs), *items)


def fit_batch(model, X, Y, *, steps: int, lr, lam=0.0, seeds: Sequence[int] | None = None,
              init: str = "torch", regularizer: str = "none", optimizer: str = "sgd",
              include_bias: bool = True, log_every: int = 100, chunk: int | None = None,
              active_atol: float = DEFAULT_ACTIVE_ATOL, progress: bool | None = None,
              workers: int | None = None) -> tuple[ShallowParams, History]:
    """Train B networks as vmapped, compiled programs (the same as B calls of :func:`fit`).

    The batch pairs up (broadcasts) its three axes: initial parameters, ``lam`` and ``lr``. For a
    grid, pass the flattened grid (``np.meshgrid``) and, if needed, repeat the parameters.

    Args:
      model: one of: a :class:`~vvjax.models.ShallowVVNet` or unbatched
        :class:`~vvjax.models.ShallowParams` (shared by all members, or the architecture template
        when ``seeds`` is given); a ``ShallowParams`` with a leading batch axis (``W`` (B, K, d));
        a sequence of networks or unbatched ``ShallowParams``.
      X, Y: data (N, d), (N, D).
      lr, lam: scalars or arrays of shape (B,).
      seeds: initialise member i as ``ShallowVVNet(d, K, D, rngs=nnx.Rngs(seeds[i]), init=init)``
        (same output bias and dtype as ``model``); needs an unbatched ``model``.
      init: initialisation scheme used with ``seeds``.
      workers: number of threads: the batch is split into contiguous groups of equal size
        ``ceil(B / min(workers, B))`` (the last padded with copies of the last member, which are
        dropped), each one vmapped program run in its own thread. ``None``:
        :func:`default_workers` (one thread per CPU core on the CPU backend, a single program on
        accelerators).
      Other arguments: as :func:`fit`.

    Returns:
      ``(params, history)``: ``ShallowParams`` with a leading axis B and a :class:`History` whose
      curves have shape (B, T) (``step`` has shape (T,)).

    Raises:
      ValueError, TrainingDivergedError: as :func:`fit`; ``err.members`` lists the diverged members.

    Performance: a vmapped program runs its members in lock step; on an accelerator one program
    holds the whole batch. On the CPU, XLA's own threading gains nothing on steps this small, so
    the batch is split over the cores instead (``workers``). On 2 cores, 16 members of the paper's
    problem run 2.2-2.6x faster than 16 sequential :func:`fit` calls (benchmarks/train_speed.py).
    Results are deterministic for a given ``workers``, but a member's numbers depend on its group's
    size through float rounding, which long chaotic training amplifies (after 20,000 steps of the
    paper's problem: ~1e-14 in float64, ~1e-4 in float32 between ``workers=1`` and ``2``). Since
    the default follows the machine's core count, pass ``workers`` explicitly to get the same
    numbers on every machine.
    """
    if isinstance(model, ShallowVVNet):
        params = params_of(model)
    elif isinstance(model, ShallowParams):
        params = model
    elif isinstance(model, Sequence) and len(model) and all(
            isinstance(m, (ShallowVVNet, ShallowParams)) for m in model):
        params = _stack([params_of(m) if isinstance(m, ShallowVVNet) else m for m in model])
    else:
        raise TypeError("model must be a ShallowVVNet, ShallowParams or a sequence of them, got "
                        f"{type(model).__name__}")
    batched_params = params.W.ndim == 3
    K, d_in = params.W.shape[-2:]
    d_out = params.V.shape[-2]
    if seeds is not None:
        if batched_params:
            raise ValueError("seeds needs a single model as the architecture template, got a batch")
        seeds = list(seeds)
        if not seeds:
            raise ValueError("seeds must list at least one seed")
        for i, s in enumerate(seeds):
            if isinstance(s, bool) or not isinstance(s, (int, np.integer)):
                raise ValueError(f"seeds[{i}] must be an integer, got {s!r}")
        params = _stack([params_of(ShallowVVNet(d_in, K, d_out, rngs=nnx.Rngs(int(s)), init=init,
                                                output_bias=params.c is not None,
                                                dtype=params.W.dtype)) for s in seeds])
        batched_params = True
    X, Y = _check_data(X, Y, d_in, d_out)
    _check_lr(lr)
    check_nonnegative("lam", lam)
    for name, v in (("lam", lam), ("lr", lr)):
        if np.ndim(v) > 1:
            raise ValueError(f"{name} must be a scalar or a 1-D array, got shape {np.shape(v)}")
    sizes = {n: s for n, s in (("params", params.W.shape[0] if batched_params else None),
                               ("lam", np.size(lam) if np.ndim(lam) else None),
                               ("lr", np.size(lr) if np.ndim(lr) else None)) if s is not None}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"batch sizes disagree: {sizes} (params/seeds, lam and lr must match)")
    B = next(iter(sizes.values()), 1)
    if B < 1:
        raise ValueError("the batch is empty")
    if workers is None:
        workers = default_workers(B)
    check_positive_int("workers", workers)
    dtype = params.W.dtype
    if not batched_params:
        params = jax.tree.map(lambda x: jnp.broadcast_to(x, (B, *x.shape)), params)
    lr_b = jnp.broadcast_to(jnp.asarray(lr, dtype), (B,))
    lam_b = jnp.broadcast_to(jnp.asarray(lam, dtype), (B,))
    return _loop(params, X, Y, lr_b, lam_b, steps=steps, regularizer=regularizer,
                 optimizer=optimizer, include_bias=include_bias, log_every=log_every, chunk=chunk,
                 active_atol=active_atol, progress=progress, batched=True, workers=workers)
