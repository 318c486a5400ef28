"""Tests of vvjax.train: objectives, the prox method, compilation caching, batching, divergence."""

import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _helpers import count_compiles
from flax import nnx

from vvjax import analysis, norms, objectives, train
from vvjax._threads import check_cancelled, thread_map
from vvjax.models import ShallowVVNet, params_of


@pytest.fixture(scope="module")
def teacher_data():
    """N=30 Gaussian inputs in 2-D, labels from a width-3 teacher with 2 outputs."""
    teacher = ShallowVVNet(2, 3, 2, rngs=nnx.Rngs(43))
    X = np.random.default_rng(43).normal(size=(30, 2))
    return X, np.asarray(teacher(X))


def student(width=20, seed=49, **kw):
    return ShallowVVNet(2, width, 2, rngs=nnx.Rngs(seed), **kw)


@pytest.mark.parametrize("regularizer,optimizer,lr", [
    ("none", "sgd", 0.2), ("weight_decay", "sgd", 0.2), ("vv", "sgd", 0.2), ("m1", "sgd", 0.2),
    ("prox", "sgd", 0.2), ("vv", "adam", 0.01), ("prox", "adam", 0.01),
    ("weight_decay", "momentum", 0.05),
])
def test_fit_lowers_objective(teacher_data, regularizer, optimizer, lr):
    X, Y = teacher_data
    net = student()
    before = params_of(net)
    trained, hist = train.fit(net, X, Y, steps=300, lr=lr, lam=1e-3, regularizer=regularizer,
                              optimizer=optimizer, log_every=100)
    np.testing.assert_array_equal(hist.step, [0, 100, 200, 300])
    assert hist.loss[-1] < 0.5 * hist.loss[0]
    # the log is the objective of the returned parameters, and the input model is untouched
    final = train.objective(trained, X, Y, regularizer=regularizer, lam=1e-3)
    np.testing.assert_allclose(hist.loss[-1], final, rtol=1e-12)
    np.testing.assert_allclose(hist.loss, hist.data_fit + 1e-3 * hist.penalty, rtol=1e-12)
    np.testing.assert_array_equal(params_of(net).W, before.W)
    p = params_of(trained)  # the logged count is the activity rule of vvjax.analysis
    assert hist.n_active[-1] == int(analysis.n_active(p.W, p.b, p.V))


def test_penalties_match_norms_and_have_finite_gradients_at_zero():
    net = student(width=6, seed=1)
    p = params_of(net)
    for decay, include_bias in (("weights_and_biases", True), ("weights", False)):
        args = (p.W, p.b, p.V)
        for reg, ref in (("weight_decay", norms.weight_decay_penalty), ("vv", norms.vv_norm),
                         ("m1", norms.m1_norm)):
            np.testing.assert_allclose(objectives.penalty(net, reg, decay),
                                       ref(*args, include_bias=include_bias), rtol=1e-12)
    dead = ShallowVVNet.from_params(p._replace(V=p.V.at[:, 0].set(0.0), W=p.W.at[1].set(0.0),
                                               b=p.b.at[1].set(0.0)))
    graphdef, params, rest = nnx.split(dead, nnx.Param, ...)
    for reg in ("vv", "m1"):
        g = jax.grad(lambda q, reg=reg: objectives.penalty(nnx.merge(graphdef, q, rest), reg))(
            params)
        assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(g))


def test_unknown_regularizer_loss_decay_are_named_everywhere():
    net = student(width=4)
    for call in (lambda: objectives.penalty(net, "l2"),
                 lambda: train.objective(net, np.ones((3, 2)), np.ones((3, 2)), regularizer="l2")):
        with pytest.raises(ValueError, match="unknown regularizer 'l2'"):
            call()
    with pytest.raises(ValueError, match="unknown loss 'l1'"):
        objectives.get_loss("l1")
    with pytest.raises(ValueError, match="unknown decay 'all'"):
        objectives.decay_filter("all")
    with pytest.raises(ValueError, match="decay must be"):
        objectives.decay_filter(3.5)


@pytest.mark.parametrize("include_bias", [True, False])
def test_prox_unit_norm_and_exact_zero_columns(teacher_data, include_bias):
    X, Y = teacher_data
    net = student(width=20)
    decay = "weights_and_biases" if include_bias else "weights"
    trained, hist = train.fit(net, X, Y, steps=3000, lr=0.2, lam=5e-3, regularizer="prox",
                              decay=decay, log_every=500)
    p = params_of(trained)
    rows = np.c_[p.W, p.b] if include_bias else np.asarray(p.W)
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0, rtol=1e-12)
    if not include_bias:  # the projection leaves the biases of a pure-W constraint alone
        assert not np.allclose(np.linalg.norm(np.c_[p.W, p.b], axis=1), 1.0)
    col = np.linalg.norm(p.V, axis=0)
    n_zero = int(np.sum(col == 0.0))
    assert 10 <= n_zero < 20, col  # most neurons pruned exactly, some survive
    assert np.all((col == 0.0) | (col > 1e-3))
    assert hist.n_active[-1] == 20 - n_zero and hist.n_active[0] == 20


def test_weight_decay_sgd_step_matches_analytic_gradient():
    rng = np.random.default_rng(3)
    X, Y = rng.normal(size=(7, 3)), rng.normal(size=(7, 2))
    net = ShallowVVNet(3, 5, 2, rngs=nnx.Rngs(5), output_bias=True)
    net.c[...] = jnp.asarray([0.3, -0.2])
    W, b, V, c = (np.asarray(a) for a in params_of(net))
    lr, lam = 0.1, 0.7
    for include_bias in (True, False):
        H = X @ W.T - b
        A = np.maximum(H, 0)
        R = 2.0 * (A @ V.T + c - Y) / Y.size
        gA = (R @ V) * (H > 0)
        gW, gb = gA.T @ X + lam * W, -gA.sum(0) + lam * b * include_bias
        gV, gc = R.T @ A + lam * V, R.sum(0)
        decay = "weights_and_biases" if include_bias else "weights"
        trained, hist = train.fit(net, X, Y, steps=1, lr=lr, lam=lam, regularizer="weight_decay",
                                  decay=decay)
        got = params_of(trained)
        for new, old, g in zip(got, (W, b, V, c), (gW, gb, gV, gc), strict=True):
            np.testing.assert_allclose(new, old - lr * g, rtol=1e-12, atol=1e-14)
        pen = 0.5 * (np.sum(W**2) + include_bias * np.sum(b**2) + np.sum(V**2))
        np.testing.assert_allclose(hist.loss[0], np.mean((A @ V.T + c - Y) ** 2) + lam * pen)


def test_one_compile_per_shape(teacher_data):
    X, Y = teacher_data
    jax.clear_caches()  # so that the first fit below must compile, whatever ran before
    net, net2 = student(width=13), student(width=13, seed=2)
    with count_compiles() as first:
        train.fit(net, X, Y, steps=250, lr=0.1, lam=1e-3, regularizer="prox", log_every=50)
    assert sum("_run_chunk" in n for n in first) == 1, first
    with count_compiles() as again:  # new lam, lr, steps and data values, same shapes: no compile
        train.fit(net, X + 1.0, Y, steps=420, lr=0.05, lam=2e-2, regularizer="prox", log_every=50)
        train.fit(net2, X, Y, steps=10, lr=0.3, lam=0.0, regularizer="prox", log_every=50)
    assert again == []
    with count_compiles() as batch:  # groups of one member run fit's own program: no compile
        train.fit_batch(net, X, Y, steps=100, lr=0.1, lam=[1e-3, 1e-2], regularizer="prox",
                        log_every=50, group_size=1)
    assert sum("_run_chunk" in n for n in batch) == 0, batch
    with count_compiles() as batch:  # a vmapped group compiles once for every batch
        train.fit_batch(net, X, Y, steps=100, lr=0.1, lam=[1e-3, 1e-2], regularizer="prox",
                        log_every=50, group_size=2)
        train.fit_batch(net, X, Y, steps=70, lr=0.2, lam=[5e-3, 0.0, 1e-3, 1e-4],
                        regularizer="prox", log_every=50, group_size=2)
    assert sum("_run_chunk" in n for n in batch) == 1, batch
    with count_compiles() as other:  # a different static option compiles once more
        train.fit(net, X, Y, steps=50, lr=0.1, lam=1e-3, regularizer="vv", log_every=50)
    assert sum("_run_chunk" in n for n in other) == 1


def test_chunking_and_log_steps(teacher_data):
    X, Y = teacher_data
    net = student()
    a, ha = train.fit(net, X, Y, steps=1050, lr=0.2, lam=1e-3, regularizer="prox", log_every=100)
    b, hb = train.fit(net, X, Y, steps=1050, lr=0.2, lam=1e-3, regularizer="prox", log_every=100,
                      chunk=300)
    np.testing.assert_array_equal(ha.step, [0, *range(100, 1001, 100), 1050])
    for x, y in zip(params_of(a), params_of(b), strict=True):
        np.testing.assert_array_equal(x, y)
    for x, y in zip(ha, hb, strict=True):
        np.testing.assert_array_equal(x, y)


# (Adam on the non-smooth "vv" penalty is chaotic near v_k = 0: the 1e-16 differences between a
# batched and an unbatched matmul grow to 1e-3 within a few hundred steps, so it is not used here.)
@pytest.mark.parametrize("regularizer,optimizer", [("prox", "sgd"), ("weight_decay", "adam")])
@pytest.mark.parametrize("group_size", [1, 2])
def test_batch_of_lams_equals_sequential_fits(teacher_data, regularizer, optimizer, group_size):
    X, Y = teacher_data
    net = student()
    lams = np.array([0.0, 1e-3, 1e-2])
    lr = 0.2 if optimizer == "sgd" else 0.01
    models, H = train.fit_batch(net, X, Y, steps=400, lr=lr, lam=lams, regularizer=regularizer,
                                optimizer=optimizer, log_every=100, group_size=group_size)
    assert len(models) == 3 and H.loss.shape == (3, 5) and H.step.shape == (5,)
    assert H.n_active.shape == (3, 5)
    for i, lam in enumerate(lams):
        one, h = train.fit(net, X, Y, steps=400, lr=lr, lam=lam, regularizer=regularizer,
                           optimizer=optimizer, log_every=100)
        for x, y in zip(params_of(one), params_of(models[i]), strict=True):
            if x is None:
                continue
            if group_size == 1:  # fit's own program: the same numbers, bit for bit
                np.testing.assert_array_equal(y, x)
            else:  # a vmapped program rounds differently
                np.testing.assert_allclose(y, x, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(H.loss[i], h.loss, rtol=1e-9)
        np.testing.assert_array_equal(H.n_active[i], h.n_active)
    assert not np.allclose(models[0].V[...], models[2].V[...])  # the members really differ


def test_batch_of_seeds_and_list_of_models_equal_sequential_fits(teacher_data):
    X, Y = teacher_data
    template = student(width=8)
    M, H = train.fit_batch(template, X, Y, steps=200, lr=0.2, lam=1e-3, seeds=[3, 4],
                           regularizer="weight_decay", log_every=100)
    M2, _ = train.fit_batch([student(8, 3), student(8, 4)], X, Y, steps=200,
                            lr=jnp.array([0.2, 0.2]), lam=1e-3, regularizer="weight_decay",
                            log_every=100, group_size=2)
    for i, seed in enumerate((3, 4)):
        one, h = train.fit(student(8, seed), X, Y, steps=200, lr=0.2, lam=1e-3,
                           regularizer="weight_decay", log_every=100)
        np.testing.assert_array_equal(M[i].W[...], one.W[...])
        np.testing.assert_allclose(M2[i].V[...], one.V[...], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(H.loss[i], h.loss, rtol=1e-9)
    with pytest.raises(ValueError, match="model\\[1\\] differs"):
        train.fit_batch([student(8), student(9)], X, Y, steps=5, lr=0.1)


@pytest.mark.parametrize("group_size", [1, 2])
def test_workers_change_no_number(teacher_data, group_size):
    """Workers only run the groups side by side: 1, 2, 3 or 9 threads give the same bits."""
    X, Y = teacher_data
    net = student()
    lams = np.array([0.0, 1e-3, 3e-3, 1e-2, 3e-2])
    kw = dict(steps=300, lr=0.2, lam=lams, regularizer="prox", log_every=100,
              group_size=group_size)
    M1, H1 = train.fit_batch(net, X, Y, workers=1, **kw)
    jax.clear_caches()
    with count_compiles() as compiled:  # 3 groups of 2 (the last padded) or 5 of 1: one program
        M3, H3 = train.fit_batch(net, X, Y, workers=3, **kw)
    assert sum("_run_chunk" in n for n in compiled) == 1, compiled
    assert len(M3) == 5 and H3.loss.shape == (5, 4)
    for a, b in zip(M1, M3, strict=True):
        for x, y in zip(params_of(a), params_of(b), strict=True):
            if x is not None:
                np.testing.assert_array_equal(y, x)
    np.testing.assert_array_equal(H3.loss, H1.loss)
    np.testing.assert_array_equal(H3.n_active, H1.n_active)
    assert not np.allclose(M3[0].V[...], M3[4].V[...])
    M9, _ = train.fit_batch(net, X, Y, workers=9, **kw)
    np.testing.assert_array_equal(np.stack([m.V[...] for m in M9]),
                                  np.stack([m.V[...] for m in M1]))
    with pytest.raises(ValueError, match="workers must be an integer >= 1"):
        train.fit_batch(net, X, Y, workers=0, **kw)
    with pytest.raises(ValueError, match="group_size must be an integer >= 1"):
        train.fit_batch(net, X, Y, **{**kw, "group_size": 0})


def test_worker_threads_keep_the_callers_jax_settings(teacher_data):
    """jax.enable_x64 & co. are thread-local: a batch started inside such a context must run in it
    (here: float64 inside enable_x64(True) while the global setting is float32)."""
    X, Y = teacher_data
    jax.config.update("jax_enable_x64", False)  # the autouse fixture restores it
    with jax.enable_x64(True), jax.default_matmul_precision("highest"):
        seen = thread_map(lambda _: (jax.config.jax_enable_x64,
                                     jax.config.jax_default_matmul_precision), range(3), 3)
        assert seen == [(True, "highest")] * 3
        net = student()
        assert net.W[...].dtype == jnp.float64
        kw = dict(steps=200, lr=0.2, lam=[1e-3, 1e-2], regularizer="prox", log_every=100)
        P2, _ = train.fit_batch(net, X, Y, workers=2, **kw)
        P1, _ = train.fit_batch(net, X, Y, workers=1, **kw)
    assert P2[0].V[...].dtype == jnp.float64
    for a, b in zip(P1, P2, strict=True):
        np.testing.assert_array_equal(a.V[...], b.V[...])


def test_thread_map_failure_cancels_the_other_items_promptly():
    def item(i):
        if i == 0:
            time.sleep(0.1)
            raise RuntimeError("item 0 failed")
        for _ in range(1000):  # a 10 s loop that checks for cancellation, like fit's chunk loop
            check_cancelled()
            time.sleep(0.01)
        return i

    t = time.perf_counter()
    with pytest.raises(RuntimeError, match="item 0 failed"):
        thread_map(item, range(3), 3)
    assert time.perf_counter() - t < 5.0
    assert thread_map(lambda i: i * i, range(5), 2) == [0, 1, 4, 9, 16]  # order kept
    check_cancelled()  # a no-op outside worker threads


def test_diverging_fit_stops_the_fit_running_beside_it(teacher_data):
    X, Y = teacher_data
    diverge = dict(steps=5000, lr=1e4, lam=0.1, regularizer="weight_decay")
    long_run = dict(steps=6_000_000, lr=0.1, lam=0.1, regularizer="weight_decay", chunk=1000)
    train.fit(student(), X, Y, steps=1000, lr=0.1, chunk=1000)  # compile the long run's program
    t = time.perf_counter()
    with pytest.raises(train.TrainingDivergedError):
        thread_map(lambda kw: train.fit(student(), X, Y, **kw), [diverge, long_run], 2)
    assert time.perf_counter() - t < 10.0  # the long run alone takes ~20 s (3.6 us/step)


def test_divergence_raises_with_step_and_last_finite_params(teacher_data):
    X, Y = teacher_data
    net = student()
    with pytest.raises(train.TrainingDivergedError, match="after [0-9]+ steps") as info:
        train.fit(net, X, Y, steps=5000, lr=1e4, lam=0.1, regularizer="weight_decay",
                  log_every=10)
    err = info.value
    assert isinstance(err, FloatingPointError)
    assert 1 <= err.step < 5000 and f"after {err.step} steps" in str(err)
    last = params_of(err.model)
    assert all(np.all(np.isfinite(x)) for x in last if x is not None)
    assert np.all(np.isfinite(err.history.loss)) and err.history.step[-1] < err.step
    # the reported step is exact: one step fewer is finite and reproduces err.model ...
    ok, _ = train.fit(net, X, Y, steps=err.step - 1, lr=1e4, lam=0.1, regularizer="weight_decay")
    np.testing.assert_array_equal(params_of(ok).V, last.V)
    # ... and stopping exactly there still raises at that step
    with pytest.raises(train.TrainingDivergedError) as again:
        train.fit(net, X, Y, steps=err.step, lr=1e4, lam=0.1, regularizer="weight_decay")
    assert again.value.step == err.step


def test_batch_divergence_names_the_member(teacher_data):
    X, Y = teacher_data
    with pytest.raises(train.TrainingDivergedError, match=r"members \[2\]") as info:
        train.fit_batch(student(), X, Y, steps=2000, lr=[0.1, 0.1, 1e4], lam=0.1,
                        regularizer="weight_decay", workers=2)  # member 2 is in the 2nd group
    err = info.value
    assert list(err.members) == [2] and len(err.models) == 3
    assert all(np.all(np.isfinite(m.V[...])) for m in err.models)


@pytest.mark.parametrize("kwargs,data,match", [
    ({}, "rows", "X and Y"),
    ({}, "d_in", r"X must have shape \(N, 2\)"),
    ({}, "d_out", r"Y must have shape \(N, 2\)"),
    ({}, "nanX", "X contains NaN"),
    ({}, "infY", "Y contains NaN"),
    ({"lam": -1.0}, None, "lam"),
    ({"lr": 0.0}, None, "lr"),
    ({"lr": -0.1}, None, "lr"),
    ({"regularizer": "l1"}, None, "regularizer"),
    ({"optimizer": "adamw"}, None, "optimizer"),
    ({"steps": 0}, None, "steps"),
    ({"steps": 2.5}, None, "steps"),
    ({"log_every": 0}, None, "log_every"),
    ({"log_every": 10, "chunk": 15}, None, "chunk"),
    ({"lam": [0.1, 0.2]}, None, "fit_batch"),
    ({"batch_size": 0}, None, "batch_size"),
    ({"batch_size": 31}, None, r"batch_size must be None \(full batch\) or an integer in "
                               r"\[1, N=30\]"),
    ({"lr": "fast"}, None, "lr must be a positive number"),
    ({"decay": "everything"}, None, "unknown decay"),
    ({"loss": "hinge"}, None, "unknown loss 'hinge'"),
])
def test_bad_inputs_raise_value_error(teacher_data, kwargs, data, match):
    X, Y = (np.array(a) for a in teacher_data)
    if data == "rows":
        Y = Y[:-1]
    elif data == "d_in":
        X = np.c_[X, X]
    elif data == "d_out":
        Y = Y[:, :1]
    elif data == "nanX":
        X[3, 1] = np.nan
    elif data == "infY":
        Y[0, 0] = np.inf
    args = dict(steps=10, lr=0.1, lam=0.0, regularizer="vv") | kwargs
    with pytest.raises(ValueError, match=match):
        train.fit(student(), X, Y, **args)


def test_fit_batch_bad_batch_sizes(teacher_data):
    X, Y = teacher_data
    with pytest.raises(ValueError, match="batch sizes"):
        train.fit_batch(student(), X, Y, steps=5, lr=[0.1, 0.2], lam=[0.0, 0.1, 0.2])
    with pytest.raises(ValueError, match="seeds"):
        train.fit_batch(student(), X, Y, steps=5, lr=0.1, seeds=[1, "a"])
