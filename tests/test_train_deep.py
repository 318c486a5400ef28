"""The general trainer: deep networks, losses, minibatches, Optax optimizers, subclasses."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from _helpers import count_compiles
from flax import nnx

from vvjax import analysis, models, objectives, train
from vvjax.models import DeepVVNet, ShallowVVNet


@pytest.fixture(scope="module")
def deep_teacher():
    """N=40 points in 3-D, 2 outputs of a random 3-8-8-2 teacher, and 3-class labels."""
    rng = np.random.default_rng(7)
    X = rng.normal(size=(40, 3))
    teacher = DeepVVNet([3, 8, 8, 2], rngs=nnx.Rngs(11))
    Y = np.asarray(teacher(X))
    labels = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5).astype(int)
    return X, Y, labels


def deep(seed=0, widths=(3, 16, 16, 2), **kw):
    return DeepVVNet(list(widths), rngs=nnx.Rngs(seed), **kw)


@pytest.mark.parametrize("regularizer", ["none", "weight_decay", "vv", "m1"])
@pytest.mark.parametrize("loss", ["mse", "cross_entropy", "callable"])
def test_deep_training_lowers_the_objective(deep_teacher, regularizer, loss):
    X, Y, labels = deep_teacher
    if loss == "mse":
        net, target, loss_arg = deep(), Y, "mse"
    elif loss == "cross_entropy":
        net, target, loss_arg = deep(widths=(3, 16, 16, 3)), labels, "cross_entropy"
    else:  # mean absolute error as a user-supplied loss
        net, target, loss_arg = deep(), Y, (lambda pred, y: jnp.mean(jnp.abs(pred - y)))
    trained, hist = train.fit(net, X, target, steps=300, lr=1e-2, optimizer="adam",
                              loss=loss_arg, regularizer=regularizer, lam=1e-3, log_every=100)
    assert hist.loss[-1] < 0.6 * hist.loss[0], hist.loss
    np.testing.assert_allclose(hist.loss, hist.data_fit + 1e-3 * hist.penalty, rtol=1e-12)
    final = train.objective(trained, X, target, loss=loss_arg, regularizer=regularizer, lam=1e-3)
    np.testing.assert_allclose(hist.loss[-1], final, rtol=1e-12)
    assert hist.n_active.shape == (4, 2)  # per hidden layer
    # the logged counts are analysis' counts on the returned parameters
    for l, (W, b, V) in enumerate(trained.hidden_layers()):
        assert hist.n_active[-1, l] == int(analysis.n_active(W[...], b[...], V[...]))


def test_deep_penalties_match_their_closed_forms():
    net = deep(seed=3)
    p = models.params_of(net)
    wd = 0.5 * sum(np.sum(np.asarray(W) ** 2) for W in p.Ws)
    np.testing.assert_allclose(objectives.penalty(net, "weight_decay"), wd, rtol=1e-12)
    wd_b = wd + 0.5 * sum(np.sum(np.asarray(b) ** 2) for b in p.bs[:-1])  # no output bias
    np.testing.assert_allclose(objectives.penalty(net, "weight_decay", "weights_and_biases"),
                               wd_b, rtol=1e-12)
    for decay, with_b in (("weights", False), ("weights_and_biases", True)):
        vv = m1 = 0.0
        for l in range(len(p.Ws) - 1):
            rows = np.c_[p.Ws[l], p.bs[l]] if with_b else np.asarray(p.Ws[l])
            n_in = np.linalg.norm(rows, axis=1)
            vv += np.sum(np.linalg.norm(p.Ws[l + 1], axis=0) * n_in)
            m1 += np.sum(np.abs(p.Ws[l + 1]).sum(0) * n_in)
        np.testing.assert_allclose(objectives.penalty(net, "vv", decay), vv, rtol=1e-12)
        np.testing.assert_allclose(objectives.penalty(net, "m1", decay), m1, rtol=1e-12)
    only_first = nnx.PathContains(0)  # any nnx filter selects what is decayed
    np.testing.assert_allclose(objectives.penalty(net, "weight_decay", only_first),
                               0.5 * (np.sum(np.asarray(p.Ws[0]) ** 2)
                                      + np.sum(np.asarray(p.bs[0]) ** 2)), rtol=1e-12)


@pytest.mark.parametrize("regularizer,optimizer", [("weight_decay", "sgd"), ("vv", "momentum"),
                                                   ("none", "adam")])
def test_one_hidden_layer_deep_net_trains_like_the_shallow_net(deep_teacher, regularizer,
                                                              optimizer):
    X, Y, _ = deep_teacher
    shallow = ShallowVVNet(3, 12, 2, rngs=nnx.Rngs(5), output_bias=True)
    shallow.c[...] = jnp.asarray([0.1, -0.3])
    as_deep = DeepVVNet.from_params(models.shallow_to_deep(models.params_of(shallow)))
    np.testing.assert_allclose(as_deep(X), shallow(X), rtol=1e-12)
    kw = dict(steps=500, lr=0.05 if optimizer != "adam" else 0.01, optimizer=optimizer,
              regularizer=regularizer, lam=1e-3, log_every=100)
    s, hs = train.fit(shallow, X, Y, **kw)
    d, hd = train.fit(as_deep, X, Y, **kw)
    back = models.deep_to_shallow(models.params_of(d))
    for a, b in zip(models.params_of(s), back, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(hd.loss, hs.loss, rtol=1e-10)
    np.testing.assert_array_equal(hd.n_active[:, 0], hs.n_active)


def test_converters_roundtrip_and_reject_deeper_nets():
    p = models.params_of(ShallowVVNet(2, 5, 3, rngs=nnx.Rngs(0), output_bias=True))
    back = models.deep_to_shallow(models.shallow_to_deep(p))
    for a, b in zip(p, back, strict=True):
        np.testing.assert_array_equal(a, b)
    nob = models.params_of(ShallowVVNet(2, 5, 3, rngs=nnx.Rngs(0)))
    assert models.deep_to_shallow(models.shallow_to_deep(nob), output_bias=False).c is None
    with pytest.raises(ValueError, match="exactly 2 layers"):
        models.deep_to_shallow(models.params_of(deep()))
    with pytest.raises(ValueError, match="zero output bias"):
        models.deep_to_shallow(models.shallow_to_deep(p._replace(c=p.c + 1.0)),
                               output_bias=False)


def test_layer_io_gives_phi_and_psi_of_every_hidden_layer(deep_teacher):
    X, _, _ = deep_teacher
    net = deep(widths=(3, 7, 5, 4, 2))
    p = models.params_of(net)
    h = np.asarray(X)
    for l in range(3):
        h = np.maximum(h @ np.asarray(p.Ws[l]).T + np.asarray(p.bs[l]), 0)
        Phi, Psi = models.layer_io(net, X, l)
        np.testing.assert_allclose(Phi, h.T, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(Psi, np.asarray(p.Ws[l + 1]) @ h.T, rtol=1e-12, atol=1e-14)
    # the last hidden layer's Psi plus the output bias is the network output
    np.testing.assert_allclose(Psi.T + p.bs[-1][None, :], net(X), rtol=1e-12, atol=1e-14)
    s = ShallowVVNet(3, 6, 2, rngs=nnx.Rngs(1), output_bias=True)
    Phi, Psi = models.layer_io(s, X)
    np.testing.assert_allclose(Psi.T + s.c[...][None, :], s(X), rtol=1e-12)
    np.testing.assert_allclose(Phi.T, s.features(X), rtol=1e-12)
    for bad in (3, -1, 1.0):
        with pytest.raises(ValueError, match="l must index a hidden layer"):
            models.layer_io(net, X, bad)
    with pytest.raises(ValueError, match=r"X must have shape \(N, 3\)"):
        models.layer_io(net, X[:, :2], 0)


def test_per_layer_sharing_summaries():
    net = deep(widths=(3, 6, 4, 2))
    W0, W1 = np.array(net.layers[0].W[...]), np.array(net.layers[1].W[...])
    W1[:, 2] = 0.0          # neuron 2 of layer 0 feeds nothing: inactive
    W1[1:, 4] = 0.0         # neuron 4 of layer 0 feeds only unit 0 of layer 1: active, not shared
    net.layers[1].W[...] = W1
    s = analysis.layer_summaries(net)
    assert [d["layer"] for d in s] == [0, 1] and s[0]["width"] == 6 and s[1]["width"] == 4
    assert s[0]["n_active"] == 5 and s[0]["n_shared"] == 4 and s[0]["d_out"] == 4
    assert s[0]["n_shared_all"] == int(np.sum(np.all(np.abs(W1) > 0, axis=0)))
    del W0


def test_one_compile_per_shape_for_deep_nets(deep_teacher):
    X, Y, _ = deep_teacher
    jax.clear_caches()
    with count_compiles() as first:
        train.fit(deep(0), X, Y, steps=120, lr=1e-2, optimizer="adam", regularizer="weight_decay",
                  lam=1e-3, log_every=40)
    assert sum("_run_chunk" in n for n in first) == 1, first
    with count_compiles() as again:  # other seeds, lr, lam, steps, data values: no compile
        train.fit(deep(1), X * 2, Y, steps=80, lr=3e-3, optimizer="adam",
                  regularizer="weight_decay", lam=1e-2, log_every=40)
    assert sum("_run_chunk" in n for n in again) == 0, again


def test_minibatch_epochs_visit_every_sample_once():
    """Targets are the sample indices; a loss that records its targets shows which samples each
    step used: every epoch of ceil(N/B) steps is a permutation of the N samples, the last batch
    holds N mod B of them, and epochs are shuffled differently."""
    N, B = 23, 5
    X = np.random.default_rng(0).normal(size=(N, 2))
    idx = np.arange(N, dtype=float)[:, None]
    seen = []

    def recording_mse(pred, target):
        jax.debug.callback(lambda t: seen.append(np.asarray(t).ravel().astype(int)), target)
        return jnp.mean((pred - target) ** 2)

    net = ShallowVVNet(2, 4, 1, rngs=nnx.Rngs(0))
    steps = 3 * 5  # three epochs of ceil(23 / 5) = 5 steps
    train.fit(net, X, idx, steps=steps, lr=1e-4, loss=recording_mse, batch_size=B, key=7,
              log_every=steps)
    batches = [s for s in seen if len(s) < N]  # drop the full-data evaluations at log steps
    assert [len(b) for b in batches] == [5, 5, 5, 5, 3] * 3
    epochs = [np.concatenate(batches[5 * e:5 * e + 5]) for e in range(3)]
    for e in epochs:
        np.testing.assert_array_equal(np.sort(e), np.arange(N))
    assert not np.array_equal(epochs[0], epochs[1])
    # the same key gives the same order, another key another one
    seen.clear()
    train.fit(net, X, idx, steps=steps, lr=1e-4, loss=recording_mse, batch_size=B, key=7,
              log_every=steps)
    np.testing.assert_array_equal(np.concatenate([s for s in seen if len(s) < N]),
                                  np.concatenate(epochs))


def test_minibatch_training_is_reproducible_and_batch_members_match(deep_teacher):
    X, _, labels = deep_teacher
    net = deep(widths=(3, 16, 3))
    kw = dict(steps=60, lr=1e-2, optimizer="adam", loss="cross_entropy", batch_size=16,
              regularizer="weight_decay", lam=1e-4, log_every=20)
    a, ha = train.fit(net, X, labels, key=3, **kw)
    b, hb = train.fit(net, X, labels, key=3, **kw)
    c, _ = train.fit(net, X, labels, key=4, **kw)
    np.testing.assert_array_equal(ha.loss, hb.loss)
    assert not np.array_equal(models.params_of(a).Ws[0], models.params_of(c).Ws[0])
    M, H = train.fit_batch(net, X, labels, key=jnp.stack([jax.random.key(3), jax.random.key(4)]),
                           **kw)
    np.testing.assert_array_equal(H.loss[0], ha.loss)
    np.testing.assert_array_equal(models.params_of(M[1]).Ws[0], models.params_of(c).Ws[0])


def test_any_optax_transformation_and_schedules(deep_teacher):
    X, Y, _ = deep_teacher
    net = deep()
    kw = dict(steps=50, regularizer="weight_decay", lam=1e-3, log_every=25)
    named, hn = train.fit(net, X, Y, lr=0.05, optimizer="sgd", **kw)
    given, hg = train.fit(net, X, Y, optimizer=optax.sgd(0.05), **kw)
    factory, hf = train.fit(net, X, Y, lr=0.05, optimizer=lambda lr: optax.sgd(lr), **kw)
    for h in (hg, hf):
        np.testing.assert_array_equal(h.loss, hn.loss)
    chain = optax.chain(optax.clip_by_global_norm(1.0),
                        optax.adam(optax.warmup_cosine_decay_schedule(0.0, 1e-2, 20, 300)))
    _, hc = train.fit(net, X, Y, optimizer=chain, **{**kw, "steps": 300})
    assert hc.loss[-1] < 0.5 * hc.loss[0]
    # a schedule as lr with an optimizer name equals optax.adam(schedule)
    sched = optax.exponential_decay(1e-2, 50, 0.5)
    _, h1 = train.fit(net, X, Y, lr=sched, optimizer="adam", **kw)
    _, h2 = train.fit(net, X, Y, optimizer=optax.adam(sched), **kw)
    np.testing.assert_array_equal(h1.loss, h2.loss)
    # fit_batch over lr with a factory keeps lr traced: members equal single fits
    M, H = train.fit_batch(net, X, Y, lr=[0.05, 0.01], optimizer=lambda lr: optax.sgd(lr), **kw)
    np.testing.assert_array_equal(H.loss[0], hn.loss)


@pytest.mark.parametrize("kwargs,match", [
    (dict(optimizer=optax.sgd(0.1), lr=0.1), "lr must be None"),
    (dict(optimizer="sgd", lr=None), "lr is required"),
    (dict(optimizer=3), "optimizer must be one of"),
    (dict(optimizer="rmsprop", lr=0.1), "unknown optimizer 'rmsprop'"),
    (dict(optimizer=lambda lr: optax.sgd(lr), lr=optax.constant_schedule(0.1)),
     "lr must be a number"),
    (dict(lr=[0.1, 0.2]), "fit_batch"),
    (dict(lr=0.1, regularizer="prox", lam=1e-3), "shallow networks"),
])
def test_bad_optimizer_arguments(deep_teacher, kwargs, match):
    X, Y, _ = deep_teacher
    with pytest.raises(ValueError, match=match):
        train.fit(deep(), X, Y, steps=3, **kwargs)


@pytest.mark.parametrize("labels,match", [
    (lambda y: y + 1, r"labels in \[0, 3\).*\[1, 3\]"),
    (lambda y: y - 1, r"labels in \[0, 3\)"),
    (lambda y: y.astype(float), "integer class labels"),
    (lambda y: np.stack([y, y], 1), "1-D array"),
    (lambda y: y[:-1], "same number of rows"),
])
def test_bad_labels_for_cross_entropy(deep_teacher, labels, match):
    X, _, y = deep_teacher
    with pytest.raises(ValueError, match=match):
        train.fit(deep(widths=(3, 8, 3)), X, labels(y), steps=2, lr=0.1, loss="cross_entropy")


def test_nan_during_minibatch_training_stops_with_the_step(deep_teacher):
    X, Y, _ = deep_teacher
    with pytest.raises(train.TrainingDivergedError) as info:
        train.fit(deep(), X, Y, steps=400, lr=50.0, batch_size=8, log_every=50)
    err = info.value
    assert 1 <= err.step < 400 and np.all(np.isfinite(err.history.loss))
    ok, _ = train.fit(deep(), X, Y, steps=err.step - 1, lr=50.0, batch_size=8)
    np.testing.assert_array_equal(models.params_of(ok).Ws[0],
                                  models.params_of(err.model).Ws[0])


class SkipNet(ShallowVVNet):
    """A subclass adding an unregularized linear skip connection ``C x``."""

    def __init__(self, *args, rngs, **kw):
        super().__init__(*args, rngs=rngs, **kw)
        self.C = models.Bias(jnp.zeros((self.d_out, self.d_in)))

    def __call__(self, x):
        return super().__call__(x) + x @ self.C[...].T


def test_subclass_parameters_are_trained_and_used(deep_teacher):
    X, Y, _ = deep_teacher
    net = SkipNet(3, 6, 2, rngs=nnx.Rngs(0))
    trained, hist = train.fit(net, X, Y, steps=200, lr=0.05, regularizer="weight_decay",
                              lam=1e-3, log_every=100)
    assert isinstance(trained, SkipNet)
    assert float(jnp.abs(trained.C[...]).max()) > 1e-3  # trained, not skipped
    np.testing.assert_allclose(hist.data_fit[-1], np.mean((np.asarray(trained(X)) - Y) ** 2),
                               rtol=1e-12)


def test_digits_mlp_with_weight_decay_and_adam_reaches_95_percent():
    from vvjax import data

    d = data.digits()
    net = DeepVVNet([64, 256, 256, 10], rngs=nnx.Rngs(0))
    trained, hist = train.fit(net, d.X_train, d.Y_train, steps=330, lr=1e-3, optimizer="adam",
                              loss="cross_entropy", batch_size=128, regularizer="weight_decay",
                              lam=1e-4, key=0, log_every=110)
    accuracy = float(np.mean(np.argmax(np.asarray(trained(d.X_test)), 1) == d.Y_test))
    assert accuracy >= 0.95, accuracy
    assert hist.loss[-1] < 0.1 * hist.loss[0]


@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_padded_last_batch_of_builtin_losses_equals_the_exact_batch(deep_teacher, loss):
    """Built-in losses pad the epoch's short last batch with zero-weight samples (one code path);
    a callable loss sees exactly the batch's samples. Same key, same batches: the same training."""
    X, Y, labels = deep_teacher
    target = Y if loss == "mse" else labels
    net = deep() if loss == "mse" else deep(widths=(3, 16, 16, 3))
    exact = objectives.mse if loss == "mse" else objectives.cross_entropy
    kw = dict(steps=30, lr=1e-2, optimizer="adam", batch_size=12, key=5, log_every=10)  # 40=3*12+4
    a, ha = train.fit(net, X, target, loss=loss, **kw)
    b, hb = train.fit(net, X, target, loss=lambda p, y: exact(p, y), **kw)
    np.testing.assert_allclose(ha.loss, hb.loss, rtol=1e-10)
    for x, y in zip(models.params_of(a).Ws, models.params_of(b).Ws, strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-8, atol=1e-12)
