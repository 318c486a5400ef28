"""Training of shallow and deep vector-valued networks, compiled end to end.

:func:`fit` minimises ``loss(f_theta(X), Y) + lam * R(theta)`` (losses, regularizers and what
weight decay selects: :mod:`vvjax.objectives`) for a :class:`~vvjax.models.ShallowVVNet`, a
:class:`~vvjax.models.DeepVVNet` or a subclass, with any Optax optimizer, full batch (the paper's
setting) or shuffled minibatches. :func:`fit_batch` trains many such runs (a grid of ``lam``/``lr``
values, seeds, initialisations) as vmapped programs.

**The proximal method** (``regularizer="prox"``, shallow networks with a homogeneous activation)
is the paper's (arXiv 2305.16534, neuron-sharing experiment; ``docs/paper.md`` §7.1; PathProx,
arXiv 2210.03069): an optimizer step on the data loss alone, then the group soft-threshold
``v_k <- v_k max(0, 1 - lr lam / ||v_k||)`` (the prox of ``lr lam sum_k ||v_k||``), then the
projection ``(w_k, b_k) <- (w_k, b_k) / ||(w_k, b_k)||`` with no compensation in ``v_k``. It
solves ``min loss + lam sum_k ||v_k||_2  s.t. ||(w_k, b_k)||_2 = 1``, which has the same minimisers
as weight decay (the rescaling argument, ``docs/paper.md`` §3.2). As the paper runs it, the bias is
inside the constraint: its default ``decay`` is ``"weights_and_biases"``; pass
``decay="weights"`` to normalise ``w_k`` alone. With ``"adam"`` it is the heuristic of the authors'
compression code, not a proximal method with guarantees.

**Design.** The model is split into ``(graphdef, params, rest)`` with ``nnx.split(model, nnx.Param,
...)``: every ``nnx.Param`` is trained. A pure step function on ``params`` (an ``nnx.State``) runs
in one jitted program per chunk of steps (``lax.scan`` over log blocks, a ``fori_loop`` of steps in
each), with one compilation per shape and static option: ``lr``, ``lam`` and the step range are
traced. Minibatches are drawn inside the loop (a new permutation of the N samples from the key at
the start of every epoch; the last batch of an epoch holds the remaining ``N mod batch_size``
samples). Python only loops over chunks (progress bar, divergence check).
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

from vvjax import activations, analysis, objectives
from vvjax._threads import Workers, check_cancelled
from vvjax._validate import as_array, check_nonnegative, check_positive_int
from vvjax.models import DeepVVNet, ShallowVVNet

__all__ = [
    "OPTIMIZERS", "DEFAULT_ACTIVE_ATOL", "CPU_GROUP_SIZE", "History", "TrainingDivergedError",
    "objective", "fit", "fit_batch", "default_workers", "default_group_size",
]

OPTIMIZERS = ("sgd", "momentum", "adam")
"""Optimizer names (for configs): ``optax.sgd(lr)``, ``optax.sgd(lr, momentum=0.9)``,
``optax.adam(lr)``."""
DEFAULT_ACTIVE_ATOL = analysis.DEFAULT_ATOL
"""Activity threshold of the logged counts (the paper's 1e-3; :mod:`vvjax.analysis`)."""
CPU_GROUP_SIZE = 1
"""Batch members per compiled program on the CPU (:func:`fit_batch`)."""
DATA_CHUNK = 128
"""Rows per chunk of the data term on large (mini)batches (reproducibility on any CPU)."""


class History(NamedTuple):
    """Training curves at the log steps (numpy arrays; a leading axis B for :func:`fit_batch`).

    ``step`` (T,): steps taken (0 = initial). ``loss = data_fit + lam * penalty`` (the objective,
    on the full data set also for minibatch training). ``n_active``: active neurons under the
    activity rule of :mod:`vvjax.analysis` (shape (T,) for a shallow net, (T, L-1) per hidden layer
    for a deep one), the same numbers :func:`vvjax.analysis.n_active` gives on the parameters.
    """

    step: np.ndarray
    loss: np.ndarray
    data_fit: np.ndarray
    penalty: np.ndarray
    n_active: np.ndarray


class TrainingDivergedError(FloatingPointError):
    """The objective became NaN or inf. ``step`` is the first step count whose objective is
    non-finite; ``model`` (:func:`fit`) or ``models`` (:func:`fit_batch`) hold the last parameters
    with a finite objective (``step - 1`` steps), ``history`` the curves logged until then,
    ``members`` the batch members that diverged (:func:`fit_batch`)."""

    def __init__(self, msg, *, step, history, model=None, models=None, members=None):
        super().__init__(msg)
        self.step, self.history, self.model = step, history, model
        self.models, self.members = models, members


class _Setup(NamedTuple):
    """Static (hashable) description of one training program."""

    graphdef: Any
    loss: Callable
    regularizer: str
    decay: Any
    prox_bias: bool
    optimizer: Any
    schedule: Any
    batch_size: int | None
    n: int


class _State(NamedTuple):
    params: Any
    opt_state: Any
    perm: Any


# ---------------------------------------------------------------- pure functional core

def _tx(setup: _Setup, lr) -> optax.GradientTransformation:
    opt = setup.optimizer
    if isinstance(opt, str):
        rate = setup.schedule if setup.schedule is not None else lr
        if opt == "sgd":
            return optax.sgd(rate)
        if opt == "momentum":
            return optax.sgd(rate, momentum=0.9)
        return optax.adam(rate)
    if isinstance(opt, optax.GradientTransformation):
        return opt
    return opt(lr)


def _builtin(setup: _Setup) -> bool:
    return setup.loss in (objectives.mse, objectives.cross_entropy)


def _data_fit(setup: _Setup, model, X, Y, w=None):
    """The loss on ``(X, Y)``; with sample weights ``w`` (n,) the weighted sum of the built-in
    losses' per-sample terms (``w = 1/n`` everywhere gives the plain mean). The built-in losses
    run in the (D, N) layout of ``forward_T`` (unless a subclass overrides ``__call__``), which
    trains faster on the CPU."""
    if not _builtin(setup):
        return setup.loss(model(X), Y)
    if type(model).__call__ in (ShallowVVNet.__call__, DeepVVNet.__call__):
        out = model.forward_T(X.T)  # (D, n)
    else:
        out = model(X).T
    if setup.loss is objectives.mse:
        if w is None:
            return jnp.mean((out - Y.T) ** 2)
        return jnp.sum(w * jnp.mean((out - Y.T) ** 2, axis=0))
    per_sample = optax.softmax_cross_entropy_with_integer_labels(out.T, Y)
    return jnp.mean(per_sample) if w is None else jnp.sum(w * per_sample)


def _chunked(setup: _Setup, f, X, Y, w=None):
    """``f(X, Y[, w])`` of a built-in loss, evaluated on consecutive chunks of :data:`DATA_CHUNK`
    rows and added in a fixed order: a mean is the chunk means weighted by their sizes, a weighted
    sum (``w`` given) the sum of the chunks'.

    XLA:CPU splits reductions over many rows (a gradient's contraction over the samples) across
    its thread pool, so their rounding depends on the machine's core count; chunks of 128 rows are
    reduced in one piece. This keeps large-batch training bit-for-bit reproducible on any CPU.
    Callable losses are not assumed to be means and are evaluated in one piece.
    """
    N = X.shape[0]
    call = (lambda x, y, wc: f(x, y)) if w is None else f
    if N <= DATA_CHUNK or not _builtin(setup):
        return call(X, Y, w)
    n_full, r = divmod(N, DATA_CHUNK)
    m = n_full * DATA_CHUNK

    def split(a):
        return None if a is None else a[:m].reshape(n_full, DATA_CHUNK, *a.shape[1:])

    Xs, Ys, ws = split(X), split(Y), split(w)
    scale = jnp.asarray(DATA_CHUNK / N if w is None else 1.0, X.dtype)

    def body(acc, xyw):
        out = call(*xyw)
        return jax.tree.map(lambda a, b: a + scale * b, acc, out), None

    first = call(Xs[0], Ys[0], None if w is None else ws[0])
    rest_ = (Xs[1:], Ys[1:], None if w is None else ws[1:])
    acc, _ = jax.lax.scan(body, jax.tree.map(lambda b: scale * b, first), rest_)
    if r:
        tail = jnp.asarray(r / N if w is None else 1.0, X.dtype)
        acc = jax.tree.map(lambda a, b: a + tail * b, acc,
                           call(X[m:], Y[m:], None if w is None else w[m:]))
    return acc


def _objective(setup: _Setup, rest, params, X, Y, lam, regularizer):
    model = nnx.merge(setup.graphdef, params, rest)
    fit_ = _chunked(setup, lambda x, y: _data_fit(setup, model, x, y), X, Y)
    if regularizer == "none":
        return fit_, (fit_, jnp.zeros((), fit_.dtype), model)
    pen = objectives.penalty(model, regularizer, setup.decay)
    return fit_ + lam * pen, (fit_, pen, model)


def _value_and_grad(setup: _Setup, rest, params, X, Y, lam, regularizer, w=None):
    """Objective and its gradient; the data term chunked as in :func:`_chunked`."""

    def fit_(p, x, y, wc=None):
        return _data_fit(setup, nnx.merge(setup.graphdef, p, rest), x, y, wc)

    if w is None:
        value, grad = _chunked(setup, lambda x, y: jax.value_and_grad(fit_)(params, x, y), X, Y)
    else:
        value, grad = _chunked(setup, lambda x, y, wc: jax.value_and_grad(fit_)(params, x, y, wc),
                               X, Y, w)
    if regularizer == "none":
        return value, grad
    pv, pg = jax.value_and_grad(lambda p: lam * objectives.penalty(
        nnx.merge(setup.graphdef, p, rest), regularizer, setup.decay))(params)
    return value + pv, jax.tree.map(jnp.add, grad, pg)


def _prox(setup: _Setup, rest, params, tau):
    """Group soft-threshold of the columns of V at ``tau``, then unit-norm (w_k[, b_k])."""
    model = nnx.merge(setup.graphdef, params, rest)
    W, b, V = model.W[...], model.b[...], model.V[...]
    nv = objectives.safe_norm(V, axis=0)
    shrink = jnp.where(nv > tau, 1.0 - tau / jnp.where(nv > 0, nv, 1.0), 0.0)
    model.V[...] = V * shrink[None, :]
    nin = objectives.safe_norm(jnp.concatenate([W, b[:, None]], axis=1) if setup.prox_bias else W,
                               axis=1)
    scale = 1.0 / jnp.where(nin > 0, nin, 1.0)
    model.W[...] = W * scale[:, None]
    if setup.prox_bias:
        model.b[...] = b * scale
    return nnx.state(model, nnx.Param)


def _init_state(setup: _Setup, rest, params, lr):
    perm = None if setup.batch_size is None else jnp.arange(setup.n, dtype=jnp.int32)
    return _State(params, _tx(setup, lr).init(params), perm)


def _step(setup: _Setup, rest, X, Y, lr, lam, key, i, state: _State):
    """One optimizer step at step index ``i``; returns ``(state, objective before the step)``."""
    prox = setup.regularizer == "prox"
    reg = "none" if prox else setup.regularizer

    def value_and_grad(Xb, Yb):
        return _value_and_grad(setup, rest, state.params, Xb, Yb, lam, reg)

    perm = state.perm
    if setup.batch_size is None:
        loss, g = value_and_grad(X, Y)
    else:
        B, N = setup.batch_size, setup.n
        nb = -(-N // B)
        e, j = i // nb, i % nb
        perm = jax.lax.cond(
            j == 0, lambda: jax.random.permutation(jax.random.fold_in(key, e), N).astype(jnp.int32),
            lambda: state.perm)

        def on(size):
            def f():
                idx = jax.lax.dynamic_slice(perm, (j * B,), (size,))
                return value_and_grad(X[idx], Y[idx])
            return f

        r = N - (nb - 1) * B
        if r == B:
            loss, g = on(B)()
        elif _builtin(setup):  # one code path: the last batch is padded, its pads weigh 0
            padded = jnp.concatenate([perm, perm[:B - r]])
            idx = jax.lax.dynamic_slice(padded, (j * B,), (B,))
            size = jnp.where(j == nb - 1, r, B).astype(X.dtype)
            w = jnp.where(jnp.arange(B) < size, 1.0 / size, 0.0).astype(X.dtype)
            loss, g = _value_and_grad(setup, rest, state.params, X[idx], Y[idx], lam, reg, w)
        else:  # a callable loss sees exactly the batch's samples
            loss, g = jax.lax.cond(j == nb - 1, on(r), on(B))
    u, opt_state = _tx(setup, lr).update(g, state.opt_state, state.params)
    new = optax.apply_updates(state.params, u)
    if prox:
        model = nnx.merge(setup.graphdef, state.params, rest)
        loss = loss + lam * objectives.penalty(model, "vv", setup.decay)
        new = _prox(setup, rest, new, lr * lam)
    return _State(new, opt_state, perm), loss


def _metrics(setup: _Setup, rest, params, X, Y, lam, atol):
    reg = "vv" if setup.regularizer == "prox" else setup.regularizer
    loss, (fit_, pen, model) = _objective(setup, rest, params, X, Y, lam, reg)
    counts = jnp.stack([jnp.sum(analysis.activity(W[...], b[...], V[...], atol=atol)[0])
                        for W, b, V in model.hidden_layers()]).astype(jnp.int32)
    return loss, fit_, pen, counts


# ---------------------------------------------------------------- compiled drivers

_STATIC = ("setup", "log_every", "n_blocks", "batched")


@partial(jax.jit, static_argnames=_STATIC)
def _run_chunk(state, rest, X, Y, lr, lam, key, atol, t0, stop, *, setup, log_every, n_blocks,
               batched):
    """Steps ``t0 .. min(t0 + n_blocks log_every, stop)``; metrics after every ``log_every`` block.

    Returns ``(state, first_bad, (loss, data_fit, penalty, n_active))``: ``first_bad`` is the first
    step count whose objective was non-finite in the loop (-1 if none).
    """

    def one(state, lr, lam, key):
        def body(i, carry):
            st, bad = carry
            st, loss = _step(setup, rest, X, Y, lr, lam, key, i, st)
            return st, jnp.where((bad < 0) & ~jnp.isfinite(loss), i, bad)

        def block(carry, j):
            lo = jnp.minimum(t0 + j * log_every, stop)
            carry = jax.lax.fori_loop(lo, jnp.minimum(lo + log_every, stop), body, carry)
            return carry, _metrics(setup, rest, carry[0].params, X, Y, lam, atol)

        (state, bad), logs = jax.lax.scan(block, (state, jnp.int32(-1)),
                                          jnp.arange(n_blocks, dtype=jnp.int32))
        return state, bad, logs

    return jax.vmap(one)(state, lr, lam, key) if batched else one(state, lr, lam, key)


@partial(jax.jit, static_argnames=("setup", "batched"))
def _start(params, rest, X, Y, lr, lam, atol, *, setup, batched):
    """Initial optimizer state and metrics."""

    def one(params, lr, lam):
        return (_init_state(setup, rest, params, lr),
                _metrics(setup, rest, params, X, Y, lam, atol))

    return jax.vmap(one)(params, lr, lam) if batched else one(params, lr, lam)


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
    """Threads worth using for ``n_jobs`` independent programs on the default backend: on the CPU
    one per core available to the process (affinity mask and cgroup quota), at most ``n_jobs``;
    on an accelerator 1 (one vmapped program holds the batch). Threads change only the speed, never
    the numbers (:func:`fit_batch`)."""
    if jax.default_backend() != "cpu":
        return 1
    return max(1, min(_cpu_cores(), n_jobs))


def default_group_size(n_members: int) -> int:
    """Batch members per compiled program: :data:`CPU_GROUP_SIZE` on the CPU (a constant, so that
    results never depend on the machine), all ``n_members`` in one vmapped program on an
    accelerator."""
    return CPU_GROUP_SIZE if jax.default_backend() == "cpu" else max(1, n_members)


def _loop(setup, params, rest, X, Y, lr, lam, keys, *, steps, log_every, chunk, atol, progress,
          batched, group_size=1, workers=1):
    """Python loop over compiled chunks: logging, progress bar and divergence handling.

    Unbatched: one program. Batched (B members, leading axes of ``params``, ``lr``, ``lam``,
    ``keys``): contiguous groups of ``group_size`` members (the last padded with copies of the last
    member, whose results are dropped), each one program (vmapped when ``group_size > 1``; with
    ``group_size == 1`` exactly :func:`fit`'s program), run in ``workers`` threads chunk by chunk.
    Returns ``(params, logs)`` with ``logs = (step, loss, data_fit, penalty, n_active)``.
    """
    check_positive_int("steps", steps)
    check_positive_int("log_every", log_every)
    if chunk is None:
        chunk = log_every * max(1, 10_000 // log_every)
    check_positive_int("chunk", chunk)
    if chunk % log_every:
        raise ValueError(f"chunk must be a multiple of log_every={log_every}, got {chunk}")
    atol = jnp.asarray(atol, X.dtype)
    kw = dict(setup=setup, log_every=log_every, n_blocks=chunk // log_every)

    if batched:
        B = lr.shape[0]
        size = min(group_size, B)
        n_groups = -(-B // size)
        index = np.minimum(np.arange(n_groups * size), B - 1).reshape(n_groups, size)
        take = (lambda i: (lambda x: x[i[0]])) if size == 1 else (lambda i: (lambda x: x[i]))
        groups = [jax.tree.map(take(i), (params, lr, lam, keys)) for i in index]
        g_batched = size > 1
    else:
        B, size, n_groups, g_batched = 1, 1, 1, False
        groups = [(params, lr, lam, keys)]

    starts = [_start(p, rest, X, Y, r, m, atol, setup=setup, batched=g_batched)
              for p, r, m, _ in groups]
    states = [s for s, _ in starts]

    def merge_members(parts):
        """Per-group arrays -> (B, ...) (batched) or the single member's arrays."""
        if not batched:
            return np.asarray(parts[0])
        parts = [p[None] if not g_batched else p for p in parts]
        return np.concatenate([np.asarray(p) for p in parts])[:B]

    first = [merge_members([np.asarray(s[1][k]) for s in starts]) for k in range(4)]
    logs = [(np.zeros(1, np.int64), *(np.asarray(m)[..., None] if k < 3 else
                                      np.asarray(m)[..., None, :] for k, m in enumerate(first)))]
    if not np.all(np.isfinite(first[0])):
        raise ValueError("the initial parameters give a non-finite objective (check the model "
                         "and the data)")

    def run(pool, states, t0, stop):
        """One chunk for every group -> (states, first_bad (B,) or (), logs)."""
        check_cancelled()  # stop early when running in a cancelled worker pool

        def one(job):
            st, (_, r, m, k) = job
            return jax.block_until_ready(_run_chunk(st, rest, X, Y, r, m, k, atol, jnp.int32(t0),
                                                    jnp.int32(stop), batched=g_batched, **kw))

        res = pool.map(one, zip(states, groups, strict=True))
        return ([r[0] for r in res], merge_members([r[1] for r in res]),
                [merge_members([r[2][k] for r in res]) for k in range(4)])

    def params_of_states(states):
        if not batched:
            return states[0].params
        ps = [s.params for s in states]
        if not g_batched:
            return jax.tree.map(lambda *x: jnp.stack(x)[:B], *ps)
        return jax.tree.map(lambda *x: jnp.concatenate(x)[:B], *ps)

    def history(upto):
        step = np.concatenate([l[0] for l in logs])
        keep = step <= upto
        curves = []
        for k in range(1, 5):
            c = np.concatenate([l[k] for l in logs], axis=-1 if k < 4 else -2)
            curves.append(c[..., keep] if k < 4 else c[..., keep, :])
        return (step[keep], *curves)

    from tqdm.auto import tqdm

    bar = tqdm(total=steps, unit="step", disable=not (_auto_progress(steps) if progress is None
                                                      else progress))
    big = np.iinfo(np.int64).max
    with bar, Workers(min(workers, n_groups)) as pool:
        for t0 in range(0, steps, chunk):
            new, bad, out = run(pool, states, t0, steps)
            ends = np.minimum(t0 + log_every * np.arange(1, chunk // log_every + 1), steps)
            valid = np.arange(t0, t0 + chunk, log_every) < steps
            out = [o[..., valid] if k < 3 else o[..., valid, :] for k, o in enumerate(out)]
            bad = np.atleast_1d(bad).astype(np.int64)
            bad = np.where(bad >= 0, bad, big)
            nonfin = ~np.isfinite(np.atleast_2d(out[0]))
            bad = np.minimum(bad, np.where(nonfin.any(-1), ends[valid][nonfin.argmax(-1)], big))
            if (bad < big).any():
                t_bad = int(bad.min())
                last = states
                if t_bad - 1 > t0:
                    last = run(pool, states, t0, t_bad - 1)[0]
                hist = history(t_bad - 1)
                keep = ends[valid] < t_bad
                hist = (np.concatenate([hist[0], ends[valid][keep]]),
                        *(np.concatenate([h, o[..., keep] if k < 3 else o[..., keep, :]],
                                         axis=-1 if k < 3 else -2)
                          for k, (h, o) in enumerate(zip(hist[1:], out, strict=True))))
                raise _Diverged(t_bad, params_of_states(last),
                                np.flatnonzero(bad == t_bad) if batched else None, hist)
            logs.append((ends[valid], *out))
            states = new
            bar.update(min(chunk, steps - t0))
            bar.set_postfix(loss=f"{float(np.min(out[0][..., -1])):.3g}", refresh=False)
    return params_of_states(states), history(steps)


class _Diverged(Exception):
    def __init__(self, step, params, members, logs):
        super().__init__(step)
        self.step, self.params, self.members, self.logs = step, params, members, logs


# ---------------------------------------------------------------- input checks

def _check_model(model, where="model"):
    if not isinstance(model, (ShallowVVNet, DeepVVNet)):
        raise TypeError(f"{where} must be a ShallowVVNet or DeepVVNet (or a subclass), got "
                        f"{type(model).__name__}")


def _check_data(X, Y, model, loss):
    X = as_array("X", X, ndim=2)
    if X.shape[1] != model.d_in:
        raise ValueError(f"X must have shape (N, {model.d_in}) (the model's input size d_in="
                         f"{model.d_in}), got {tuple(X.shape)}")
    dtype = jax.tree.leaves(nnx.state(model, nnx.Param))[0].dtype
    X = jnp.asarray(X, dtype)
    N = X.shape[0]
    if loss == "cross_entropy":
        Y = as_array("Y", Y, ndim=1, keep_int=True)
        if not (jnp.issubdtype(Y.dtype, jnp.integer) or jnp.issubdtype(Y.dtype, jnp.bool_)):
            raise ValueError(f"Y must hold integer class labels for loss='cross_entropy', got "
                             f"dtype {Y.dtype}")
        lo, hi = (int(jnp.min(Y)), int(jnp.max(Y))) if Y.size else (0, 0)
        if lo < 0 or hi >= model.d_out:
            raise ValueError(f"Y must hold labels in [0, {model.d_out}) (the model's {model.d_out}"
                             f" outputs are the class logits), got labels in [{lo}, {hi}]")
        Y = jnp.asarray(Y, jnp.int32)
    elif loss == "mse":
        Y = as_array("Y", Y, ndim=2)
        if Y.shape[1] != model.d_out:
            raise ValueError(f"Y must have shape (N, {model.d_out}) (the model's outputs d_out="
                             f"{model.d_out}), got {tuple(Y.shape)}")
        Y = jnp.asarray(Y, dtype)
    else:  # a callable loss: any target array with one row per sample
        Y = as_array("Y", Y, keep_int=True)
        Y = jnp.asarray(Y, dtype) if jnp.issubdtype(Y.dtype, jnp.floating) else Y
    if Y.ndim == 0 or Y.shape[0] != N:
        raise ValueError(f"X and Y must have the same number of rows N, got X {tuple(X.shape)}, "
                         f"Y {tuple(Y.shape)}")
    if N < 1:
        raise ValueError("X must hold at least one sample")
    return X, Y


def _check_lr(lr, optimizer):
    named = isinstance(optimizer, str)
    if isinstance(optimizer, optax.GradientTransformation):
        if lr is not None:
            raise ValueError("lr must be None when optimizer is an optax.GradientTransformation "
                             "(it sets its own step size); pass a callable lr -> transformation to "
                             "keep lr a traced (vmappable) value")
        return None
    if lr is None:
        raise ValueError("lr is required with optimizer " + (repr(optimizer) if named else
                                                             "given as a callable lr -> tx"))
    if callable(lr):
        if not named:
            raise ValueError("lr must be a number (or array of numbers) when optimizer is a "
                             "callable; schedules go inside the transformation it returns")
        return lr
    try:
        v = np.asarray(lr, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"lr must be a positive number, an array of them, or an optax schedule "
                         f"(a callable step -> learning rate), got {lr!r}") from None
    if not np.all(np.isfinite(v)) or np.any(v <= 0):
        raise ValueError(f"lr must be finite and > 0, got {lr!r}")
    return None


def _setup(model, X, *, loss, regularizer, decay, optimizer, lr, batch_size):
    if isinstance(optimizer, str):
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {optimizer!r}; expected one of {OPTIMIZERS}, an "
                             "optax.GradientTransformation or a callable lr -> transformation")
    elif not (isinstance(optimizer, optax.GradientTransformation) or callable(optimizer)):
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, an optax.GradientTransformation "
                         f"or a callable lr -> transformation, got {optimizer!r}")
    schedule = _check_lr(lr, optimizer)
    loss_fn = objectives.get_loss(loss)
    if regularizer not in objectives.REGULARIZERS:
        raise ValueError(f"unknown regularizer {regularizer!r}; expected one of "
                         f"{objectives.REGULARIZERS}")
    prox = regularizer == "prox"
    decay = objectives.decay_filter(decay if decay is not None else
                                    ("weights_and_biases" if prox else "weights"))
    prox_bias = False
    if prox:
        activations.require_homogeneous(model.activation, "regularizer='prox'")
        if not isinstance(model, ShallowVVNet):
            raise ValueError("regularizer='prox' is the paper's method for shallow networks "
                             f"(a ShallowVVNet), got a {type(model).__name__}; use 'weight_decay'"
                             " or 'vv' for deep networks")
        if schedule is not None or isinstance(optimizer, optax.GradientTransformation):
            raise ValueError("regularizer='prox' thresholds at lr * lam, so it needs a numeric lr"
                             " (an optimizer name or a callable lr -> transformation)")
        prox_bias = any(v is model.b for v in objectives.decayed_variables(model, decay))
    N = X.shape[0]
    if batch_size is not None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or not 1 <= batch_size <= N:
            raise ValueError(f"batch_size must be None (full batch) or an integer in [1, N={N}], "
                             f"got {batch_size!r}")
        batch_size = None if batch_size == N else int(batch_size)
    graphdef, _, _ = nnx.split(model, nnx.Param, ...)
    return _Setup(graphdef, loss_fn, regularizer, decay, prox_bias, optimizer, schedule,
                  batch_size, N)


def _as_key(key, name="key"):
    if key is None:
        return jax.random.key(0)
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        return jax.random.key(int(key))
    if isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return key
    raise ValueError(f"{name} must be None, an integer seed or a jax.random.key, got {key!r}")


def _n_active(model, counts):
    """(..., T, L-1) -> (..., T) for a shallow net."""
    return counts[..., 0] if isinstance(model, ShallowVVNet) else counts


def objective(model, X, Y, *, loss="mse", regularizer: str = "none", lam: float = 0.0,
              decay=None) -> jax.Array:
    """``loss(model(X), Y) + lam * R(model)`` (:mod:`vvjax.objectives`): the value :func:`fit`
    logs as ``loss`` (for ``"prox"`` the VV norm is ``R``).

    Args: as :func:`fit`. Returns: a scalar array.

    Raises:
      ValueError, TypeError: as :func:`fit`.
    """
    _check_model(model)
    check_nonnegative("lam", lam)
    objectives.get_loss(loss)
    X, Y = _check_data(X, Y, model, loss if isinstance(loss, str) else None)
    reg = "vv" if regularizer == "prox" else regularizer
    setup = _setup(model, X, loss=loss, regularizer=reg, decay=decay if decay is not None else
                   ("weights_and_biases" if regularizer == "prox" else None), optimizer="sgd",
                   lr=1.0, batch_size=None)
    _, params, rest = nnx.split(model, nnx.Param, ...)
    return _objective(setup, rest, params, X, Y, jnp.asarray(lam, X.dtype), reg)[0]


def fit(model, X, Y, *, steps: int, lr=None, optimizer="sgd", loss="mse",
        regularizer: str = "none", lam: float = 0.0, decay=None, batch_size: int | None = None,
        key=None, log_every: int = 100, chunk: int | None = None,
        active_atol: float = DEFAULT_ACTIVE_ATOL, progress: bool | None = None):
    """Train ``model`` on ``(X, Y)``; returns ``(trained_model, history)``.

    Minimises ``loss(f_theta(X), Y) + lam * R(theta)`` (:mod:`vvjax.objectives`) over every
    ``nnx.Param`` of the model.

    Args:
      model: a :class:`~vvjax.models.ShallowVVNet`, :class:`~vvjax.models.DeepVVNet` or subclass;
        it is not modified.
      X: inputs (N, d), finite; cast to the model's dtype.
      Y: targets: (N, D) floats for ``"mse"``; (N,) integer labels in [0, D) for
        ``"cross_entropy"``; any array with N rows for a callable loss.
      steps: number of optimizer steps (>= 1); with minibatches an epoch is
        ``ceil(N / batch_size)`` steps.
      lr: learning rate (> 0; traced, so fits that differ only in it share one compiled program)
        or an optax schedule ``step -> lr``; required with an optimizer name or factory, ``None``
        with an ``optax.GradientTransformation``.
      optimizer: ``"sgd"``, ``"momentum"``, ``"adam"`` (:data:`OPTIMIZERS`), any
        ``optax.GradientTransformation`` (schedules, chains, clipping ...), or a callable
        ``lr -> optax.GradientTransformation`` (keeps ``lr`` traced for :func:`fit_batch`).
      loss: ``"mse"`` (mean over N D entries, the paper's), ``"cross_entropy"`` or a callable
        ``(pred, target) -> scalar`` (``pred`` (n, D) for a batch of n samples).
      regularizer: ``"none"``, ``"weight_decay"``, ``"vv"``, ``"m1"`` or ``"prox"``
        (:mod:`vvjax.objectives`; module docstring for ``"prox"``).
      lam: regularization weight (>= 0, a scalar; for several values use :func:`fit_batch`).
      decay: which Variables the regularizer covers: ``"weights"`` (default; ``"prox"``:
        ``"weights_and_biases"``, the paper's constraint), ``"weights_and_biases"`` or an
        ``nnx`` filter.
      batch_size: ``None`` (full batch, the paper's setting) or the minibatch size in [1, N].
      key: shuffling key for minibatches (``None``: ``jax.random.key(0)``, or an integer seed).
      log_every: log the metrics every this many steps (and after the last one).
      chunk: steps per compiled call (a multiple of ``log_every``; default about 10,000). The
        Python loop, the progress bar and the divergence check run once per chunk.
      active_atol: threshold of the logged active-neuron counts (:mod:`vvjax.analysis`).
      progress: tqdm progress bar; ``None`` shows it for runs of >= 200,000 steps on a terminal.

    Returns:
      ``(trained, history)``: a new model of the same class with the trained parameters and a
      :class:`History`.

    Raises:
      ValueError: bad arguments, named in the message: data that does not fit the model (widths,
        rows, labels outside [0, D), non-integer labels, NaN/inf), unknown loss, regularizer,
        optimizer or decay filter, ``batch_size`` outside [1, N], ``lr`` <= 0 or not a number or
        schedule, ``"prox"`` on a deep net.
      vvjax.activations.NonHomogeneousError: ``"prox"`` with a non-homogeneous activation (its
        equivalence with weight decay needs the rescaling symmetry).
      TypeError: ``model`` is not a vvjax network.
      TrainingDivergedError: the objective became NaN/inf; carries the step, the last finite
        model (``err.model``) and the history so far.

    Example::

        net, hist = fit(ShallowVVNet(2, 100, 2, rngs=nnx.Rngs(49)), X, Y, steps=100_000, lr=0.2,
                        regularizer="prox", lam=5e-5)

    References: arXiv 2305.16534 (Sec. 3; the neuron-sharing experiment); PathProx,
    arXiv 2210.03069; GPJax's ``fit`` (split by Variable filter, one ``lax.scan``, merge back).
    """
    _check_model(model)
    objectives.get_loss(loss)
    X, Y = _check_data(X, Y, model, loss if isinstance(loss, str) else None)
    setup = _setup(model, X, loss=loss, regularizer=regularizer, decay=decay, optimizer=optimizer,
                   lr=lr, batch_size=batch_size)
    check_nonnegative("lam", lam)
    if np.ndim(lam) or (lr is not None and not callable(lr) and np.ndim(lr)):
        raise ValueError("lam and lr must be scalars in fit; use fit_batch for several values")
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    dtype = X.dtype
    lr_arr = jnp.asarray(1.0 if lr is None or callable(lr) else lr, dtype)
    try:
        params, logs = _loop(setup, params, rest, X, Y, lr_arr, jnp.asarray(lam, dtype),
                             _as_key(key), steps=steps, log_every=log_every, chunk=chunk,
                             atol=active_atol, progress=progress, batched=False)
    except _Diverged as err:
        raise TrainingDivergedError(
            f"training diverged: the objective is NaN or inf after {err.step} steps; err.model "
            f"holds the last finite parameters (step {err.step - 1}). Try a smaller lr.",
            step=err.step, history=History(*err.logs[:4], _n_active(model, err.logs[4])),
            model=nnx.merge(graphdef, err.params, rest, copy=True)) from None
    return (nnx.merge(graphdef, params, rest, copy=True),
            History(*logs[:4], _n_active(model, logs[4])))


def _like(model, seed: int, init: str):
    """A freshly initialised network of ``model``'s class and sizes, drawn from ``seed``."""
    dtype = jax.tree.leaves(nnx.state(model, nnx.Param))[0].dtype
    common = dict(rngs=nnx.Rngs(int(seed)), init=init, dtype=dtype, activation=model.activation,
                  negative_slope=model.negative_slope)
    if type(model) is ShallowVVNet:
        return ShallowVVNet(model.d_in, model.width, model.d_out, output_bias=model.c is not None,
                            **common)
    if type(model) is DeepVVNet:
        return DeepVVNet(model.widths, **common)
    raise TypeError(f"seeds= can initialise ShallowVVNet and DeepVVNet only, not "
                    f"{type(model).__name__}; pass a list of initialised models instead")


def fit_batch(model, X, Y, *, steps: int, lr=None, lam=0.0, seeds: Sequence[int] | None = None,
              init: str = "torch", optimizer="sgd", loss="mse", regularizer: str = "none",
              decay=None, batch_size: int | None = None, key=None, log_every: int = 100,
              chunk: int | None = None, active_atol: float = DEFAULT_ACTIVE_ATOL,
              progress: bool | None = None, group_size: int | None = None,
              workers: int | None = None):
    """Train B networks at once; member i equals :func:`fit` with member i's arguments.

    The batch pairs up (broadcasts) its axes: initial networks, ``lam``, ``lr`` and ``key``. For a
    grid, pass the flattened grid (``np.meshgrid``) and repeat the networks as needed.

    Args:
      model: a network (shared initialisation of every member, or the architecture template when
        ``seeds`` is given) or a sequence of B networks of the same class and shapes.
      X: inputs, as :func:`fit`.
      Y: targets, as :func:`fit`.
      lr: a scalar or an array of shape (B,).
      lam: a scalar or an array of shape (B,).
      seeds: initialise member i as a fresh network of ``model``'s class and sizes drawn from
        ``nnx.Rngs(seeds[i])`` with ``init`` (``ShallowVVNet``/``DeepVVNet``).
      key: minibatch shuffling key(s): ``None``/an integer/a key shared by every member, or B keys.
      group_size: members per compiled program (default :func:`default_group_size`: on the CPU
        :data:`CPU_GROUP_SIZE`, a constant; on an accelerator the whole batch). With 1 every member
        runs :func:`fit`'s own program; larger groups run one vmapped program each.
      workers: threads running the groups side by side (default :func:`default_workers`: one per
        CPU core). Neither ``workers`` nor the machine's core count changes any number: the
        groups, and so every member's program, depend on ``group_size`` only.
      steps: as :func:`fit`; likewise ``init``, ``optimizer``, ``loss``, ``regularizer``,
        ``decay``, ``batch_size``, ``log_every``, ``chunk``, ``active_atol``, ``progress``.

    Returns:
      ``(models, history)``: a list of B trained networks and a :class:`History` whose curves have
      a leading axis B (``step`` has shape (T,)).

    Raises:
      ValueError, TypeError, TrainingDivergedError: as :func:`fit`; the batch sizes of the
        arguments must agree; ``err.members`` lists the diverged members and ``err.models`` holds
        every member's last finite parameters.

    Performance: on the CPU, XLA's threading gains nothing on programs this small, so the groups
    run in one thread per core (``benchmarks/train_speed.py`` measures the speed-up over
    sequential fits); on an accelerator one vmapped program holds the whole batch.
    """
    if isinstance(model, (ShallowVVNet, DeepVVNet)):
        template, members = model, None
    elif isinstance(model, Sequence) and not isinstance(model, str) and len(model):
        for i, m in enumerate(model):
            _check_model(m, f"model[{i}]")
        template, members = model[0], list(model)
    else:
        raise TypeError("model must be a ShallowVVNet, a DeepVVNet or a non-empty sequence of "
                        f"them, got {type(model).__name__}")
    if seeds is not None:
        if members is not None:
            raise ValueError("seeds needs a single model as the architecture template, got a "
                             "sequence of models")
        seeds = list(seeds)
        if not seeds:
            raise ValueError("seeds must list at least one seed")
        for i, s in enumerate(seeds):
            if isinstance(s, bool) or not isinstance(s, (int, np.integer)):
                raise ValueError(f"seeds[{i}] must be an integer, got {s!r}")
        members = [_like(template, s, init) for s in seeds]
    objectives.get_loss(loss)
    X, Y = _check_data(X, Y, template, loss if isinstance(loss, str) else None)
    setup = _setup(template, X, loss=loss, regularizer=regularizer, decay=decay,
                   optimizer=optimizer, lr=lr, batch_size=batch_size)
    check_nonnegative("lam", lam)
    lr_num = lr is not None and not callable(lr)
    for name, v in (("lam", lam), ("lr", lr if lr_num else 0.0)):
        if np.ndim(v) > 1:
            raise ValueError(f"{name} must be a scalar or a 1-D array, got shape {np.shape(v)}")
    keys = key
    if isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key) \
            and key.ndim == 1:
        key_size = key.shape[0]
    else:
        keys, key_size = _as_key(key), None
    sizes = {n: s for n, s in (("models/seeds", len(members) if members is not None else None),
                               ("lam", np.size(lam) if np.ndim(lam) else None),
                               ("lr", np.size(lr) if lr_num and np.ndim(lr) else None),
                               ("key", key_size)) if s is not None}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"batch sizes disagree: {sizes} (models/seeds, lam, lr and key must "
                         "match)")
    B = next(iter(sizes.values()), 1)
    if B < 1:
        raise ValueError("the batch is empty")
    group_size = default_group_size(B) if group_size is None else group_size
    check_positive_int("group_size", group_size)
    if workers is None:
        workers = default_workers(-(-B // min(group_size, B)))
    check_positive_int("workers", workers)
    graphdef, _, rest = nnx.split(template, nnx.Param, ...)
    if members is None:
        params = jax.tree.map(lambda x: jnp.broadcast_to(x, (B, *x.shape)),
                              nnx.split(template, nnx.Param, ...)[1])
    else:
        splits = [nnx.split(m, nnx.Param, ...) for m in members]
        shapes = [jax.tree.map(lambda x: (x.shape, x.dtype), p) for _, p, _ in splits]
        for i, (g, _, _) in enumerate(splits):
            if g != graphdef or shapes[i] != shapes[0]:
                raise ValueError(f"model[{i}] differs from model[0] in class, shapes, dtype or "
                                 "activation; every member must share one architecture")
        params = jax.tree.map(lambda *x: jnp.stack(x), *(p for _, p, _ in splits))
    dtype = X.dtype
    lr_b = jnp.broadcast_to(jnp.asarray(lr if lr_num else 1.0, dtype), (B,))
    lam_b = jnp.broadcast_to(jnp.asarray(lam, dtype), (B,))
    keys_b = keys if key_size is not None else jnp.broadcast_to(keys, (B,))

    def unstack(p):
        return [nnx.merge(graphdef, jax.tree.map(lambda x, i=i: x[i], p), rest, copy=True)
                for i in range(B)]

    try:
        params, logs = _loop(setup, params, rest, X, Y, lr_b, lam_b, keys_b, steps=steps,
                             log_every=log_every, chunk=chunk, atol=active_atol,
                             progress=progress, batched=True, group_size=group_size,
                             workers=workers)
    except _Diverged as err:
        raise TrainingDivergedError(
            f"training diverged: the objective is NaN or inf after {err.step} steps (batch "
            f"members {err.members.tolist()}); err.models hold the last finite parameters "
            f"(step {err.step - 1}). Try a smaller lr.", step=err.step,
            history=History(*err.logs[:4], _n_active(template, err.logs[4])),
            models=unstack(err.params), members=err.members) from None
    return unstack(params), History(*logs[:4], _n_active(template, logs[4]))
