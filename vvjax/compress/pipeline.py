"""Compress a trained network: the certified lasso (:func:`compress`), the baselines
(:func:`prune`) and many methods and widths on one layer at once (:func:`sweep`).

Every function returns a **new, smaller network of the same class** (activation, dtype and, for a
shallow net, its output bias kept) with :class:`CompressionResult` describing what changed.
"""

import functools
import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from vvjax.compress import baselines as bl
from vvjax.compress.evaluate import check_targets, inference_time, outputs, scores
from vvjax.compress.lasso_layer import (
    REWEIGHT_EPS,
    LayerLasso,
    fit_layer,
    reconstruction_error,
    refit_columns,
)
from vvjax.compress.layers import (
    check_homogeneous,
    check_inputs,
    check_layers,
    check_model,
    count_params,
    deep_params,
    delete_neurons,
    layer_problem,
    rebuild,
    single_blas_thread,
)
from vvjax.compress.result import CompressionResult, LayerCompression

__all__ = ["METHODS", "LayerCompression", "CompressionResult", "compress", "prune", "sweep",
           "parse_method", "model_last_hidden"]

METHODS = ("lasso", "rwlasso", *bl.BASELINES)
"""Method names of :func:`sweep` (append ``"+refit"`` for a least-squares refit of the next
layer): the certified lasso, the reweighted lasso and the baselines of
:mod:`vvjax.compress.baselines`."""
_NO_REFIT = ("merge",)  # merging's compensation is replaced entirely by a refit: magnitude+refit


# ------------------------------------------------------------------------------- validation


def _per_layer(name, value, n, check):
    if value is None:
        return [None] * n
    vals = list(value) if isinstance(value, (list, tuple)) else [value] * n
    if len(vals) != n:
        raise ValueError(f"{name} must be one value or one per layer ({n}), got {value!r}")
    for v in vals:
        check(name, v)
    return vals


def _check_lam(name, v):
    if isinstance(v, bool) or not isinstance(v, (int, float, np.floating)) or not np.isfinite(v) \
            or v <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {v!r}")


def _check_ratio(name, v):
    _check_lam(name, v)
    if v >= 1:
        raise ValueError(f"{name} must be in (0, 1) (a fraction of lam_max; 1 deletes every "
                         f"neuron), got {v!r}")


def _check_width_type(name, v):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise ValueError(f"{name} must be an integer number of neurons, got {v!r}")


def _check_widths(model, layers, widths, name="width"):
    sizes = model.widths if hasattr(model, "layers") else [model.d_in, model.width, model.d_out]
    for l, k in zip(layers, widths, strict=True):
        K = sizes[l + 1]
        if not 1 <= k < K:
            raise ValueError(f"{name} must be in [1, {K - 1}] for layer {l} (width {K}; "
                             f"never 0, and less than the current width), got {k}")


def _common(model, X, layers, Y, X_test, Y_test):
    check_model(model)
    layers = check_layers(model, model_last_hidden(model) if layers is None else layers)
    X = check_inputs(model, X)
    Y = check_targets(Y, X.shape[0], model.d_out, "Y")
    if X_test is None and Y_test is not None:
        raise ValueError("Y_test needs X_test")
    if X_test is not None:
        X_test = check_inputs(model, X_test, "X_test")
        Y_test = check_targets(Y_test, X_test.shape[0], model.d_out, "Y_test")
    return layers, X, Y, X_test, Y_test


def model_last_hidden(model) -> int:
    """Index of the last hidden layer (the default layer to compress)."""
    return len(deep_params(model).Ws) - 2


# ------------------------------------------------------------------------------- evaluation


class _Before:
    """The original model's outputs, scores, size and time, computed once per call."""

    def __init__(self, model, X, Y, X_test, Y_test, time_inference):
        self.model = model
        self.out_train = outputs(model, X)
        self.out_test = None if X_test is None else outputs(model, X_test)
        self.train = scores(self.out_train, Y)
        self.test = None if X_test is None else scores(self.out_test, Y_test)
        self.params = count_params(model)
        self.X, self.Y, self.X_test, self.Y_test = X, Y, X_test, Y_test
        self.time_inference = time_inference
        self.X_time = X if X_test is None else X_test
        self.seconds = inference_time(model, self.X_time) if time_inference else None

    def result(self, new_model, layers, covered) -> CompressionResult:
        out_tr = outputs(new_model, self.X)
        out_te = None if self.X_test is None else outputs(new_model, self.X_test)
        widths = lambda m: m.widths if hasattr(m, "layers") else [m.d_in, m.width, m.d_out]  # noqa: E731
        return CompressionResult(
            model=new_model, layers=layers,
            widths_before=list(widths(self.model)), widths_after=list(widths(new_model)),
            train_before=self.train, train_after=scores(out_tr, self.Y),
            test_before=self.test,
            test_after=None if out_te is None else scores(out_te, self.Y_test),
            max_output_change_train=float(np.max(np.abs(out_tr - self.out_train))),
            max_output_change_test=(None if out_te is None or out_te.size == 0 else
                                    float(np.max(np.abs(out_te - self.out_test)))),
            params_before=self.params, params_after=count_params(new_model),
            inference_time_before_s=self.seconds,
            inference_time_after_s=(inference_time(new_model, self.X_time)
                                    if self.time_inference else None),
            theory_covered=covered)


def _apply(model, prob, method, kept, V_kept, **info) -> tuple[Any, LayerCompression]:
    """Delete the layer's other neurons; returns the new model and its layer report."""
    K = prob.width
    V_full = np.zeros((prob.V.shape[0], K))
    V_full[:, kept] = V_kept
    new = rebuild(model, delete_neurons(deep_params(model), prob.layer, kept, V_kept))
    lc = LayerCompression(
        layer=prob.layer, method=method, kept=np.asarray(kept, dtype=np.int64), width_before=K,
        width_after=int(len(kept)), n_never_active=int(np.count_nonzero(prob.never_active)),
        reconstruction_error=reconstruction_error(prob.Phi, prob.Psi, V_full), V=V_full, **info)
    return new, lc


def _lasso_info(fit) -> dict[str, Any]:
    c = fit.certificate
    return dict(lam=float(fit.lam), lam_max=float(fit.lam_max), gap=float(c.gap),
                rel_gap=float(c.rel_gap), converged=bool(c.converged),
                solver_time_s=float(fit.solver_time_s), n_solves=int(fit.n_solves),
                width_search=fit.search, reweight_history=list(fit.reweight_history))


def _warn_width(fit, layer):
    s = fit.search
    if s is not None and not s.exact:
        got = len(fit.kept)
        warnings.warn(f"layer {layer}: no lam gives exactly width {s.requested}; nearest "
                      f"achievable: below {s.below}, above {s.above} as (width, lam). Returning "
                      f"width {got}; pass lam= one of those to choose", UserWarning, stacklevel=4)


# ------------------------------------------------------------------------------- public API


def _one_blas_thread(fn):
    """Run ``fn`` with one NumPy BLAS thread (:func:`vvjax.compress.layers.single_blas_thread`)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with single_blas_thread():
            return fn(*args, **kwargs)

    return wrapper



@_one_blas_thread
def compress(model, X, *, layers=None, lam=None, lam_ratio=None, width=None, refit: bool = False,
             reweight: int = 0, Y=None, X_test=None, Y_test=None, tol: float = 1e-6,
             max_iter: int = 100_000, allow_nonhomogeneous: bool = False,
             time_inference: bool = True) -> CompressionResult:
    """Compress hidden layers of a trained network by the certified multi-task lasso, without
    retraining.

    For each hidden layer ``l`` in ``layers`` (in order; each ``Phi`` computed from the network as
    compressed so far): ``Phi`` = its post-activations on the training inputs (K x N), ``Psi`` =
    the next layer's pre-activation minus its bias (D' x N, :func:`vvjax.models.layer_io`); solve

        min_V  1/(2N) ||V Phi - Psi||_F^2 + lam * sum_k ||v_k||_2

    to a certified relative duality gap ``tol`` (:func:`vvjax.lasso.solve_penalized`); delete the
    neurons whose column ``v_k`` is zero with their incoming row and bias, and give the kept ones
    the outgoing weights ``V`` (or, with ``refit``, the least-squares weights on the lasso's
    support: the relaxed lasso). The smaller network's outputs equal those of the zero-column
    network (original widths, ``W_{l+1} = V``; ``LayerCompression.V``) to 1e-6 relative in float64
    (only exactly-zero terms are removed; the difference is the rounding of shorter sums).

    Sources: arXiv 2305.16534 (weight decay and the multi-task lasso; compression of pre-trained
    networks); ``docs/paper.md`` §4.2, §6, §7.5. The authors' code only zeroed columns with an
    uncertified Adam heuristic; this solves the same convex problem to a certificate and rebuilds
    the layer. Reweighting: Candes, Wakin & Boyd (2008), group version.

    Args:
      model: a trained :class:`~vvjax.models.DeepVVNet` or :class:`~vvjax.models.ShallowVVNet`;
        not modified.
      X: training inputs (N, d_in) (the data the network must keep fitting).
      layers: hidden-layer index or list of distinct indices (0-based from the input; default the
        last hidden layer). Never the output layer.
      lam: the lasso's ``lam > 0`` (the convention above; a training weight ``lam_t`` of the
        ``"mse"`` loss is ``vvjax.objectives.lasso_lam(lam_t, D')``), one value or one per layer;
        must be below the layer's ``lam_max`` (else width 0).
      lam_ratio: ``lam`` as a fraction of each layer's ``lam_max``, in (0, 1).
      width: the number of neurons to keep, in ``[1, K_l - 1]``. The support size is not monotone
        in ``lam``: a grid on ``log lam`` from ``lam_max`` down, then bisection in every interval
        that straddles ``k``, each solve certified. Exactly ``k`` if some ``lam`` gives it;
        otherwise the nearest achievable width below (above if none), with a ``UserWarning`` and
        ``width_search`` naming both neighbours and their ``lam``. Give exactly one of ``lam``,
        ``lam_ratio``, ``width``.
      refit: least-squares refit of the kept columns on the certified support.
      reweight: reweighted group-lasso steps after the first solve (iteratively reweighted
        l2,1; weights ``1 / (||v_k|| + 0.3 max ||v||)``, each step certified; with ``width`` each
        step searches its own ``lam``).
      Y: training labels, for the reported losses and accuracies: integer labels (N,)
        (cross-entropy, accuracy) or float targets (N, D) (MSE).
      X_test: test inputs (M, d_in), for the reported test scores and output change.
      Y_test: test labels or targets, as ``Y`` (needs ``X_test``).
      tol: relative duality gap of every solve (float64 recommended: ``jax_enable_x64``).
      max_iter: epoch budget per solve.
      allow_nonhomogeneous: compress a network whose activation is not positively homogeneous
        (GELU, tanh, ...) anyway; ``theory_covered`` is then ``False``.
      time_inference: measure both models' inference time.

    Returns:
      :class:`CompressionResult`.

    Raises:
      ValueError: before any solve, naming the argument: a layer index that is the output layer,
        out of range or repeated; ``width`` < 1 or >= the layer's width; data whose width is not
        the model's input size; labels of the wrong shape or range; not exactly one of ``lam``,
        ``lam_ratio``, ``width``; ``lam <= 0``, ``lam_ratio`` outside (0, 1); ``tol <= 0``;
        ``lam >= lam_max`` (checked per layer before its solve).
      vvjax.activations.NonHomogeneousError: a non-homogeneous activation without
        ``allow_nonhomogeneous``.
      TypeError: ``model`` is not a vvjax network.

    Examples:
      A random 3-20-2 network cut at half its ``lam_max``: fewer neurons, a certified solve,
      and the smaller network computes what the zero-column network computes.

      >>> import numpy as np
      >>> from flax import nnx
      >>> from vvjax.compress.layers import zero_columns
      >>> from vvjax.models import DeepVVNet, deep_forward
      >>> net = DeepVVNet([3, 20, 2], rngs=nnx.Rngs(0))
      >>> X = np.random.default_rng(0).normal(size=(50, 3))
      >>> res = compress(net, X, lam_ratio=0.5, time_inference=False)
      >>> res.widths_after[1] < 20, res.layers[0].rel_gap <= 1e-6
      (True, True)
      >>> zero_col = deep_forward(zero_columns(net, 0, res.layers[0].V), X)
      >>> bool(np.allclose(res.model(X), zero_col, rtol=1e-6, atol=1e-12))
      True

      On a trained classifier (``vvjax.data.digits()``), keep 40 neurons and refit::

          res = compress(net, d.X_train, width=40, refit=True, Y=d.Y_train, X_test=d.X_test,
                         Y_test=d.Y_test)
          res.model.widths, res.test_after.accuracy, res.layers[0].rel_gap
    """
    layers, X, Y, X_test, Y_test = _common(model, X, layers, Y, X_test, Y_test)
    n = len(layers)
    given = [v is not None for v in (lam, lam_ratio, width)]
    if sum(given) != 1:
        raise ValueError("give exactly one of lam, lam_ratio and width (the lasso's penalty, a "
                         "fraction of lam_max, or the number of neurons to keep)")
    lams = _per_layer("lam", lam, n, _check_lam)
    ratios = _per_layer("lam_ratio", lam_ratio, n, _check_ratio)
    widths = _per_layer("width", width, n, _check_width_type)
    if width is not None:
        _check_widths(model, layers, widths)
    if isinstance(reweight, bool) or not isinstance(reweight, (int, np.integer)) or reweight < 0:
        raise ValueError(f"reweight must be an integer >= 0 (reweighting steps), got {reweight!r}")
    if not (isinstance(tol, (int, float)) and np.isfinite(tol) and tol > 0):
        raise ValueError(f"tol must be a finite number > 0, got {tol!r}")
    covered = check_homogeneous(model, allow_nonhomogeneous, "compress")
    before = _Before(model, X, Y, X_test, Y_test, time_inference)
    current, reports = model, []
    method = ("rwlasso" if reweight else "lasso") + ("+refit" if refit else "")
    for l, lm, r, k in zip(layers, lams, ratios, widths, strict=True):
        prob = layer_problem(current, X, l)
        fit = fit_layer(prob.Phi, prob.Psi, prob.never_active, lam=lm, lam_ratio=r, width=k,
                        reweight_steps=int(reweight), tol=tol, max_iter=max_iter)
        _warn_width(fit, l)
        V_kept = refit_columns(prob.Phi, prob.Psi, fit.kept) if refit else fit.V[:, fit.kept]
        current, lc = _apply(current, prob, method, fit.kept, V_kept, **_lasso_info(fit))
        reports.append(lc)
    return before.result(current, reports, covered)


def _baseline(prob, method, k, *, damp, threshold, obs_cache=None):
    alive = ~prob.never_active
    if method == "magnitude":
        return bl.magnitude(prob.W_in, prob.b_in, prob.V, k, alive)
    if method == "activation":
        return bl.activation(prob.Phi, prob.V, k, alive)
    if method == "interpolative":
        return bl.interpolative(prob.Phi, prob.V, k, alive)
    if method == "obs":
        if obs_cache is not None:
            return obs_cache[int(k)]
        return bl.obs(prob.Phi, prob.V, k, alive, damp=damp)
    if method == "merge":
        return bl.merge(prob.W_in, prob.b_in, prob.V, k, alive, threshold=threshold)
    raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")


@_one_blas_thread
def prune(model, X, *, method: str, width, layers=None, refit: bool = False, Y=None, X_test=None,
          Y_test=None, damp: float = bl.OBS_DAMP, threshold: float = bl.MERGE_THRESHOLD,
          allow_nonhomogeneous: bool = False, time_inference: bool = True) -> CompressionResult:
    """Remove neurons of hidden layers by a baseline method (:mod:`vvjax.compress.baselines`),
    keeping ``width`` neurons per layer, in the same form as :func:`compress`.

    Args:
      method: one of :data:`vvjax.compress.baselines.BASELINES` (``"magnitude"``,
        ``"activation"``, ``"interpolative"``, ``"obs"``, ``"merge"``).
      width: neurons to keep per layer (one value or one per layer), in ``[1, K_l - 1]``.
      refit: replace the method's outgoing weights by the least-squares refit of the next layer
        on the kept neurons (not for ``"merge"``, whose compensation a refit would replace:
        that is ``"magnitude"`` with refit).
      damp: OBS damping (fraction of the mean Gram diagonal).
      threshold: merging's cosine threshold.
      allow_nonhomogeneous: needed for ``"merge"`` with a non-homogeneous activation (merging
        rests on ``sigma(a t) = a sigma(t)``); the other baselines do not use homogeneity.
      model: as :func:`compress`.
      X: as :func:`compress`.
      layers: as :func:`compress`.
      Y: as :func:`compress`.
      X_test: as :func:`compress`.
      Y_test: as :func:`compress`.
      time_inference: as :func:`compress`.

    Returns:
      :class:`CompressionResult` (``lam`` and the certificate fields ``None``).

    Raises:
      ValueError: as :func:`compress`, and an unknown ``method`` or ``"merge"`` with ``refit``.
    """
    layers, X, Y, X_test, Y_test = _common(model, X, layers, Y, X_test, Y_test)
    if method not in bl.BASELINES:
        raise ValueError(f"method must be one of {bl.BASELINES}, got {method!r}")
    if refit and method in _NO_REFIT:
        raise ValueError("method='merge' with refit=True is method='magnitude' with refit=True "
                         "(a refit replaces merging's compensation); use that")
    widths = _per_layer("width", width, len(layers), _check_width_type)
    _check_widths(model, layers, widths)
    covered = True
    if method == "merge":
        covered = check_homogeneous(model, allow_nonhomogeneous, "neuron merging")
    before = _Before(model, X, Y, X_test, Y_test, time_inference)
    current, reports = model, []
    name = method + ("+refit" if refit else "")
    for l, k in zip(layers, widths, strict=True):
        prob = layer_problem(current, X, l)
        t = time.perf_counter()
        kept, V_kept = _baseline(prob, method, k, damp=damp, threshold=threshold)
        if refit:
            V_kept = refit_columns(prob.Phi, prob.Psi, kept)
        current, lc = _apply(current, prob, name, kept, V_kept,
                             solver_time_s=time.perf_counter() - t)
        reports.append(lc)
    return before.result(current, reports, covered)


def parse_method(spec: str) -> tuple[str, bool]:
    """``"<method>[+refit]"`` -> ``(method, refit)``; raises ``ValueError`` naming ``methods`` for
    an unknown name or ``"merge+refit"``."""
    base, _, suffix = spec.partition("+")
    if base not in METHODS or suffix not in ("", "refit"):
        raise ValueError(f"methods: unknown method {spec!r}; expected one of {METHODS}, "
                         "optionally with '+refit'")
    if suffix and base in _NO_REFIT:
        raise ValueError(f"methods: {spec!r} is 'magnitude+refit' (a refit replaces merging's "
                         "compensation)")
    return base, bool(suffix)


@_one_blas_thread
def sweep(model, X, *, widths: Sequence[int], methods: Sequence[str] = ("lasso", "lasso+refit"),
          layer: int | None = None, Y=None, X_test=None, Y_test=None, reweight: int = 4,
          tol: float = 1e-6, max_iter: int = 100_000, damp: float = bl.OBS_DAMP,
          threshold: float = bl.MERGE_THRESHOLD, allow_nonhomogeneous: bool = False,
          time_inference: bool = False) -> dict[str, list[CompressionResult]]:
    """Compress one layer to each of several widths by several methods, sharing the work.

    The layer's ``Phi``/``Psi`` and the original model's outputs are computed once; the lasso's
    width searches share one cache of certified solves (a width's ``solver_time_s`` counts only
    the solves it added), ``"rwlasso"`` runs ``reweight`` reweighted steps per width, OBS runs
    one elimination for every width, and ``"<method>"`` and ``"<method>+refit"`` share their
    selection.

    Args:
      widths: neurons to keep, each in ``[1, K - 1]``.
      methods: names from :data:`METHODS`, each optionally with ``"+refit"``.
      layer: one hidden layer (default: the last).
      reweight: reweighting steps of ``"rwlasso"`` (>= 1).
      model: as :func:`compress`.
      X: as :func:`compress`.
      Y: as :func:`compress`.
      X_test: as :func:`compress`.
      Y_test: as :func:`compress`.
      tol: as :func:`compress`.
      max_iter: as :func:`compress`.
      damp: as :func:`prune`.
      threshold: as :func:`prune`.
      allow_nonhomogeneous: as :func:`compress`.
      time_inference: as :func:`compress` (default ``False`` here).

    Returns:
      ``{method: [CompressionResult per width, in the order of widths]}``. A lasso width that no
      ``lam`` gives exactly is replaced by the nearest achievable one below (see
      :func:`compress`); its ``width_search`` says so (no warning is issued here).

    Raises:
      ValueError: as :func:`compress` and :func:`prune`; an unknown method.
    """
    (layer,), X, Y, X_test, Y_test = _common(model, X, layer, Y, X_test, Y_test)
    widths = list(widths)
    for k in widths:
        _check_width_type("widths", k)
    widths = [int(k) for k in widths]
    if not widths:
        raise ValueError("widths must hold at least one width")
    _check_widths(model, [layer] * len(widths), widths, "widths")
    parsed = [parse_method(m) for m in methods]
    if any(b == "rwlasso" for b, _ in parsed) and (isinstance(reweight, bool) or reweight < 1):
        raise ValueError(f"reweight must be an integer >= 1 for 'rwlasso', got {reweight!r}")
    covered = check_homogeneous(model, allow_nonhomogeneous, "compress.sweep")
    before = _Before(model, X, Y, X_test, Y_test, time_inference)
    prob = layer_problem(model, X, layer)
    out: dict[str, list[CompressionResult]] = {m: [] for m in methods}
    bases = {b for b, _ in parsed}
    shared = (LayerLasso(prob.Phi, prob.Psi, skip=prob.never_active, tol=tol, max_iter=max_iter)
              if bases & {"lasso", "rwlasso"} else None)
    obs_cache, obs_time = None, 0.0
    if "obs" in bases:
        t = time.perf_counter()
        obs_cache = bl.obs_path(prob.Phi, prob.V, ~prob.never_active, widths, damp=damp)
        obs_time = (time.perf_counter() - t) / len(widths)
    for k in widths:
        for base in sorted(bases, key=list(METHODS).index):
            info: dict[str, Any] = {}
            t = time.perf_counter()
            if base in ("lasso", "rwlasso"):
                fit = fit_layer(prob.Phi, prob.Psi, prob.never_active, width=k,
                                reweight_steps=int(reweight) if base == "rwlasso" else 0,
                                eps=REWEIGHT_EPS, tol=tol, max_iter=max_iter,
                                base=shared)
                kept, V_kept, info = fit.kept, fit.V[:, fit.kept], _lasso_info(fit)
            else:
                kept, V_kept = _baseline(prob, base, k, damp=damp, threshold=threshold,
                                         obs_cache=obs_cache)
                info["solver_time_s"] = time.perf_counter() - t + (obs_time if base == "obs"
                                                                   else 0.0)
            for b, refit in parsed:
                if b != base:
                    continue
                Vk = refit_columns(prob.Phi, prob.Psi, kept) if refit else V_kept
                name = base + ("+refit" if refit else "")
                new, lc = _apply(model, prob, name, kept, Vk, **info)
                out[name].append(before.result(new, [lc], covered))
    return out
