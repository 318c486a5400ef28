"""Learned widths against the width bounds: one (N, D, data kind) per job, a lambda x seed grid
inside it (arXiv 2305.16534: the multi-task lasso sparsity theorem and the representer theorem;
``docs/paper.md`` §4.4, §5, §7).

Each job draws one data set (``data.kind``: a teacher network, random labels, or the real
multi-output set Linnerud) and trains a student ``ShallowVVNet`` of width
``K >= min(N^2, N D) + N`` (so that the bound can bind) for every pair (lambda, seed) of the grid,
all members in **one** :func:`vvjax.train.fit_batch` call (member i is bit for bit the single
:func:`vvjax.train.fit` of its arguments). For every member it records:

* the **learned width** (active neurons under the activity rule of :mod:`vvjax.analysis`), the
  counts shared by >= 2 outputs and by all, the per-output counts and the shared fraction;
* the data fit, the objective, the VV norm, ``||.||_{M,1}`` and the weight-decay penalty, and
  the balance ``||(w_k, b_k)|| / ||v_k||`` of the active neurons (median and 10-90 % range) with
  the relative gap between the weight-decay penalty and the VV norm (0 exactly when balanced);
* the bounds: ``N^2``, ``min(N^2, N D)`` and the data-dependent ``rank(Phi) rank(Psi)`` of the
  network's own (unit-norm) features ``Phi`` and outputs ``Psi = V Phi``;
* the **certified width** (:func:`certified_width`): the output layer re-solved as a multi-task
  lasso at the converted lambda (:func:`vvjax.objectives.lasso_lam`) to a certified duality gap,
  then :func:`vvjax.lasso.sparsify`; the number of nonzero columns left: the width of an optimal
  output layer on the trained features, at most rank(Phi) rank(Psi) of that optimum's fit by the
  sparsity theorem. The solve is capped at ``lasso_max_iter`` epochs; ``lasso_converged`` says
  whether the gap was certified (members where it was not are counted in
  ``n_lasso_not_converged`` and left out of the certified-width statistics);
* the **sparsified width** (no solver): :func:`vvjax.lasso.sparsify` applied to the trained
  layer's active neurons, ``u_k = ||(w_k, b_k)|| v_k`` on the unit-norm features: a network with
  the outputs of the trained network's active neurons on the data and no larger VV norm, of width
  at most the learned width and at most rank(Phi) rank(Psi) of those outputs;
* the convergence status of :mod:`vvjax.convergence`; members whose status is not ``"ok"`` are
  flagged, counted and left out of the job's width statistics (``summary``).

A member whose learned width exceeds its rank bound is counted (``n_learned_above_rank_bound``),
never hidden: the bound holds for *some* optimal network, and training finds a wider one when it
has not finished pruning or stopped in another stationary point.

The ``||.||_{M,1}`` contrast (``regularizer="m1"``) trains the same grid under the
output-separable penalty; it has no multi-task-lasso equivalent, so its certified width is
``None``. Non-homogeneous activations (the activation study, ``preset=activations``) have no
rescaling symmetry either: their widths use the activity rule as is (said in ``width_rule``) and
their certified widths are ``None``.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Optional

import jax.numpy as jnp
import numpy as np
from flax import nnx

from vvjax import activations, analysis, data, lasso, norms, objectives, results, train
from vvjax._config import ConfigError, Rule, above, at_least, one_of, validate
from vvjax.convergence import Criterion, assess, split_ok, zero_predictor_fit
from vvjax.models import ShallowVVNet, layer_io, params_of
from vvjax.runs._job import PRECISIONS, run_job

__all__ = ["DATA_KINDS", "REGULARIZERS", "LR_RULES", "SweepDataConfig", "WidthSweepConfig",
           "required_width", "student_width", "load_data", "initial_models", "unit_features",
           "certified_width", "sparsified_width", "balance_stats", "run_width_sweep"]

log = logging.getLogger(__name__)

DATA_KINDS = ("teacher", "random", "linnerud")
"""``"teacher"``: :func:`vvjax.data.teacher_data`; ``"random"``: :func:`vvjax.data.random_labels`
(the interpolation regime); ``"linnerud"``: :func:`vvjax.data.linnerud` (N=20, d=3, D=3 fixed)."""
REGULARIZERS = ("prox", "weight_decay", "vv", "m1")
"""Training penalties of the sweep (:mod:`vvjax.objectives`): the paper's proximal method, weight
decay, the VV norm, and the ``||.||_{M,1}`` contrast."""
LR_RULES = ("lipschitz", "fixed")
"""``"fixed"``: every member uses ``lr``. ``"lipschitz"``: member i uses ``lr / L_i`` with
``L_i = 2 sigma_max(Phi_i)^2 / (N D)`` the Lipschitz constant of the data term's gradient in V at
member i's initial features (unit-norm rows for ``"prox"``, whose constraint they satisfy after
the first step): one ``lr`` then suits every N, D and width."""
LINNERUD = {"n": 20, "d_in": 3, "d_out": 3}


@dataclass
class SweepDataConfig:
    """One data set. ``n`` samples N, ``d_in`` inputs, ``d_out`` outputs D; ``teacher_width`` for
    ``kind="teacher"``; ``n_test`` extra samples from the same source held out for the test error
    (0: none; Linnerud has none to spare)."""

    kind: str = "teacher"
    n: int = 8
    d_in: int = 2
    d_out: int = 2
    teacher_width: int = 5
    seed: int = 0
    n_test: int = 0

    RULES: ClassVar[dict[str, Rule]] = {"kind": one_of(DATA_KINDS), "n": at_least(1),
                                        "d_in": at_least(1), "d_out": at_least(1),
                                        "teacher_width": at_least(1), "n_test": at_least(0)}

    def cross_check(self) -> None:
        """Linnerud's sizes are the data set's (``data.n=20 data.d_in=3 data.d_out=3``)."""
        if self.kind == "linnerud":
            wrong = ", ".join(f"data.{k}={getattr(self, k)}" for k, v in LINNERUD.items()
                              if getattr(self, k) != v)
            if wrong:
                raise ConfigError(
                    "data.kind='linnerud' is the fixed Linnerud data set (N=20 samples, d=3 "
                    f"inputs, D=3 outputs); got {wrong}. Set data.n=20 data.d_in=3 data.d_out=3 "
                    "(the preset linnerud does)")
            if self.n_test:
                raise ConfigError(f"data.n_test must be 0 for data.kind='linnerud' (all 20 "
                                  f"samples are training data), got {self.n_test}")


def _default_lams() -> list[float]:
    return [float(x) for x in np.geomspace(1e-4, 1e-1, 8)]


@dataclass
class WidthSweepConfig:
    """Config of :func:`run_width_sweep` (``conf/width_sweep/config.yaml``)."""

    precision: str = "float64"
    """float64 by default: the certified width needs a lasso gap far below float32's ~1e-5."""
    data: SweepDataConfig = field(default_factory=SweepDataConfig)
    activation: str = "relu"
    negative_slope: float = activations.DEFAULT_NEGATIVE_SLOPE
    width: Optional[int] = None  # noqa: UP045 (OmegaConf needs Optional)
    """Student width K; ``None``: the smallest width at which the bound can bind,
    ``min(N^2, N D) + N`` (:func:`required_width`). Smaller values need ``width_cap``."""
    width_cap: Optional[int] = None  # noqa: UP045
    """Largest width allowed; when set, K = min(width or the required width, width_cap) and the
    metrics say whether the cap bound (``cap_bound``)."""
    init: str = "torch"
    lams: list[float] = field(default_factory=_default_lams)
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2, 3])
    regularizer: str = "prox"
    include_bias: bool = True
    """Count the hidden bias in the penalty / the unit-norm constraint (the paper's experiment)."""
    optimizer: str = "sgd"
    """Plain SGD steps: with ``"prox"`` the paper's proximal gradient method (momentum and the
    prox do not mix: pruned neurons keep being pushed back and the objective cycles)."""
    lr: float = 1.0
    lr_rule: str = "lipschitz"
    steps: int = 30_000
    log_every: int = 1_000
    active_atol: float = analysis.DEFAULT_ATOL
    rank_rtol: float = 1e-8
    """Numerical-rank tolerance (relative to sigma_max) of Phi and Psi, here and in sparsify."""
    lasso_tol: float = 1e-6
    """Certified relative duality gap of the lasso re-solve."""
    lasso_max_iter: int = 2_000
    """Epoch budget of the lasso re-solve (its cost dominates small jobs: the near-interpolating
    problems of small lambda are degenerate, N samples for K >> N features)."""
    certify: bool = True
    """Re-solve every member's output layer (the certified width); False skips it."""
    convergence: Criterion = field(default_factory=Criterion)
    figures: bool = field(default=True, compare=False)
    progress: bool = field(default=False, compare=False)

    RULES: ClassVar[dict[str, Rule]] = {
        "precision": one_of(PRECISIONS), "activation": one_of(activations.ACTIVATIONS),
        "negative_slope": Rule(lambda v: 0 <= v < 1, "in [0, 1)"),
        "width": at_least(1), "width_cap": at_least(1), "init": one_of(("torch", "normal")),
        "lams": Rule(lambda v: len(v) > 0 and all(x >= 0 for x in v),
                     "a non-empty list of numbers >= 0"),
        "seeds": Rule(lambda v: len(v) > 0 and len(set(v)) == len(v),
                      "a non-empty list of distinct integers"),
        "regularizer": one_of(REGULARIZERS), "optimizer": one_of(train.OPTIMIZERS),
        "lr": above(0), "lr_rule": one_of(LR_RULES), "steps": at_least(1),
        "log_every": at_least(1), "active_atol": at_least(0),
        "rank_rtol": Rule(lambda v: 0 < v < 1, "in (0, 1)"), "lasso_tol": above(0),
        "lasso_max_iter": at_least(1),
    }

    def cross_check(self) -> None:
        """Rules between fields (called by :func:`vvjax.runs.validate`)."""
        student_width(self)  # raises for a width below the bound without a cap
        if self.certify and any(lam == 0 for lam in self.lams):
            raise ConfigError(f"lams must be > 0 when certify=true (the certified width re-solves "
                              f"the output layer as a lasso at the converted lambda, which needs "
                              f"lambda > 0), got lams={list(self.lams)}; drop 0 or set "
                              "certify=false")
        if self.regularizer == "prox" and not activations.is_homogeneous(self.activation):
            raise ConfigError(f"regularizer='prox' needs a positively homogeneous activation "
                              f"{activations.HOMOGENEOUS}, got activation={self.activation!r}; "
                              "use regularizer=weight_decay (the activation study does)")


def required_width(n: int, d_out: int) -> int:
    """``min(N^2, N D) + N``: the smallest student width at which the bound ``min(N^2, N D)``
    can bind with room to spare (``docs/paper.md`` §5).

    Raises:
      ValueError: ``n`` or ``d_out`` not an integer >= 1.
    """
    return analysis.representer_bound_sharp(n, d_out) + n


def student_width(cfg: WidthSweepConfig) -> tuple[int, int, bool]:
    """``(K, required, cap_bound)``: the student width of a config, the required width
    (:func:`required_width`) and whether ``width_cap`` made K smaller than required.

    Raises:
      ConfigError: ``width`` below the required width while ``width_cap`` is not set (naming
        both keys).
    """
    need = required_width(cfg.data.n, cfg.data.d_out)
    K = cfg.width if cfg.width is not None else need
    if cfg.width_cap is None:
        if K < need:
            raise ConfigError(
                f"width={K} is below min(N^2, N D) + N = {need} for N={cfg.data.n}, "
                f"D={cfg.data.d_out}: the width bound could not bind. Leave width null (it "
                "defaults to that), raise it, or set width_cap to accept a capped width")
        return K, need, False
    K = min(K, cfg.width_cap)
    return K, need, K < need


def load_data(cfg: SweepDataConfig, dtype=None):
    """``(X, Y, X_test, Y_test, teacher)`` of a data config; ``X`` (N, d), ``Y`` (N, D); the test
    arrays have ``n_test`` rows (drawn with the training ones: ``n + n_test`` samples, the first
    ``n`` train); ``teacher`` is the teacher's ShallowParams or ``None``. NumPy float arrays in
    ``dtype`` (default: JAX's default float)."""
    dtype = dtype or jnp.zeros(()).dtype
    teacher = None
    total = cfg.n + cfg.n_test
    if cfg.kind == "teacher":
        X, Y, teacher = data.teacher_data(cfg.seed, n=total, d_in=cfg.d_in, d_out=cfg.d_out,
                                          teacher_width=cfg.teacher_width, dtype=dtype)
    elif cfg.kind == "random":
        X, Y = data.random_labels(cfg.seed, n=total, d_in=cfg.d_in, d_out=cfg.d_out, dtype=dtype)
    elif cfg.kind == "linnerud":
        ds = data.linnerud()
        X, Y = ds.X_train, ds.Y_train
    else:
        raise ValueError(f"data.kind must be one of {DATA_KINDS}, got {cfg.kind!r}")
    X, Y = np.asarray(X, dtype), np.asarray(Y, dtype)
    return X[:cfg.n], Y[:cfg.n], X[cfg.n:], Y[cfg.n:], teacher


def unit_features(Phi, in_norms):
    """Features of unit-norm incoming weights: row k of ``Phi`` (K, N) divided by
    ``in_norms[k] = ||(w_k, b_k)||`` (zero rows where the norm is 0).

    For a positively homogeneous activation, ``sigma((w_k x - b_k) / n_k) = sigma(w_k x - b_k) /
    n_k``: the network is unchanged when ``v_k`` is replaced by ``u_k = n_k v_k``, and weight decay
    (after :func:`vvjax.norms.balance`), the VV norm and the proximal method all penalize
    ``lam sum_k ||u_k||_2`` (``docs/paper.md`` §3.2). NumPy float64 in and out.
    """
    Phi = np.asarray(Phi, np.float64)
    n = np.asarray(in_norms, np.float64)
    safe = np.where(n > 0, n, 1.0)
    return np.where((n > 0)[:, None], Phi / safe[:, None], 0.0)


def certified_width(Phi_u, Y_T, lam_lasso: float, *, U0=None, tol: float = 1e-6,
                    max_iter: int = 100_000, rank_rtol: float = 1e-8) -> dict[str, Any]:
    """The certified width of one output layer: re-solve it as a multi-task lasso, then sparsify.

    Solves ``min_U 1/(2N) ||U Phi_u - Y^T||_F^2 + lam_lasso sum_k ||u_k||_2``
    (:func:`vvjax.lasso.solve_penalized`, to a certified relative gap ``tol``), then applies
    :func:`vvjax.lasso.sparsify` to the solution (same fit, penalty no larger, at most
    rank(Phi_u) rank(U Phi_u) nonzero columns; arXiv 2305.16534, the multi-task lasso sparsity
    theorem, ``docs/paper.md`` §4.4) and counts the nonzero columns.

    Args:
      Phi_u: (K, N) unit-norm features (:func:`unit_features`). Y_T: (D, N) targets.
      lam_lasso: the lasso weight (:func:`vvjax.objectives.lasso_lam` of the training lambda).
      U0: (D, K) warm start (the trained ``u_k = ||(w_k, b_k)|| v_k``); its objective is
        reported as ``trained_objective``.
      tol: certified relative duality gap. max_iter: epoch budget of the solver.
      rank_rtol: numerical-rank tolerance of sparsify.

    Returns:
      A dict: ``certified_width``, ``lasso_width`` (nonzero columns before sparsify),
      ``lasso_rel_gap``, ``lasso_converged``, ``rank_psi_lasso`` (rank of the re-solved fit
      ``U Phi_u``), ``certified_bound`` (rank(Phi_u) times it, which ``certified_width`` never
      exceeds), ``lasso_objective`` and ``trained_objective`` (both the lasso objective ``P``) and
      ``suboptimality`` ``(P(U0) - P*) / P(0)`` of the trained layer (``None`` without ``U0``).

    Raises:
      ValueError: bad shapes or values (named by :mod:`vvjax.lasso`).
    """
    Phi_u = np.asarray(Phi_u, np.float64)
    Y_T = np.asarray(Y_T, np.float64)
    res = lasso.solve_penalized(Phi_u, Y_T, lam_lasso, tol=tol, V0=U0, max_iter=max_iter)
    Vs = lasso.sparsify(res.V, Phi_u, rank_rtol=rank_rtol)
    fit = Vs @ Phi_u
    N = Phi_u.shape[1]
    r_phi = int(analysis.numerical_rank(Phi_u, rtol=rank_rtol))
    r_fit = int(analysis.numerical_rank(fit, rtol=rank_rtol))

    def P(U):
        U = np.asarray(U, np.float64)
        return (0.5 / N * float(np.sum((U @ Phi_u - Y_T) ** 2))
                + lam_lasso * float(np.sum(np.linalg.norm(U, axis=0))))

    p0 = 0.5 / N * float(np.sum(Y_T ** 2))
    trained = None if U0 is None else P(U0)
    return {
        "certified_width": int(lasso.count_nonzero_columns(Vs)),
        "lasso_width": int(res.n_nonzero),
        "lasso_rel_gap": float(res.rel_gap),
        "lasso_converged": bool(res.converged),
        "rank_psi_lasso": r_fit,
        "certified_bound": r_phi * r_fit,
        "lasso_objective": P(Vs),
        "trained_objective": trained,
        "suboptimality": None if trained is None else (trained - float(res.dual)) / p0,
    }


def sparsified_width(Phi_u, U, *, rank_rtol: float = 1e-8) -> int:
    """Width of the trained layer after :func:`vvjax.lasso.sparsify`: nonzero columns of a ``U'``
    with ``U' Phi_u = U Phi_u`` (the same outputs on the data), ``sum_k ||u'_k|| <= sum_k
    ||u_k||`` and at most ``rank(Phi_u) rank(U Phi_u)`` nonzero columns (arXiv 2305.16534, the
    multi-task lasso sparsity theorem and its proof; ``docs/paper.md`` §4.4). No solver: exact
    for any trained network.

    Args:
      Phi_u: (K, N) unit-norm features (:func:`unit_features`). U: (D, K) ``||(w_k, b_k)|| v_k``.
      rank_rtol: numerical-rank tolerance of sparsify.
    """
    return int(lasso.count_nonzero_columns(lasso.sparsify(U, Phi_u, rank_rtol=rank_rtol)))


def balance_stats(W, b, V, active, *, include_bias: bool = True) -> dict[str, Any]:
    """Balance of the active neurons, ``beta_k = ||(w_k, b_k)|| / ||v_k||`` (1 for a balanced
    neuron; weight decay drives it to 1 only for homogeneous activations, ``docs/paper.md``
    §3.2): ``balance_median``, ``balance_q10``, ``balance_q90`` (``None`` with no active neuron),
    and ``wd_vv_gap = (weight-decay penalty - VV norm) / VV norm`` of the whole layer (>= 0, 0
    iff every neuron is balanced; ``None`` for a zero network)."""
    W, b, V = (np.asarray(a, np.float64) for a in (W, b, V))
    n_in = np.asarray(norms.input_norms(W, b, include_bias=include_bias))
    n_out = np.linalg.norm(V, axis=0)
    act = np.asarray(active, bool) & (n_out > 0)
    beta = n_in[act] / n_out[act]
    wd = float(norms.weight_decay_penalty(W, b, V, include_bias=include_bias))
    vv = float(norms.vv_norm(W, b, V, include_bias=include_bias))
    q = np.quantile(beta, [0.1, 0.5, 0.9]) if beta.size else [None] * 3
    return {"balance_median": None if q[1] is None else float(q[1]),
            "balance_q10": None if q[0] is None else float(q[0]),
            "balance_q90": None if q[2] is None else float(q[2]),
            "weight_decay_penalty": wd, "wd_vv_gap": (wd - vv) / vv if vv > 0 else None}


def _decay(cfg: WidthSweepConfig) -> str:
    return "weights_and_biases" if cfg.include_bias else "weights"


def initial_models(cfg: WidthSweepConfig, K: int, X, dtype) -> tuple[list, np.ndarray]:
    """``(models, lrs)``: one initial ``ShallowVVNet`` of width ``K`` per seed of ``cfg.seeds``
    (drawn with ``cfg.init`` in ``dtype``) and its learning rate (:data:`LR_RULES`; ``X`` (N, d)
    the training inputs), as the runner trains them."""
    N, D = X.shape[0], cfg.data.d_out
    models, lrs = [], []
    for s in cfg.seeds:
        m = ShallowVVNet(cfg.data.d_in, K, D, rngs=nnx.Rngs(int(s)), activation=cfg.activation,
                         negative_slope=cfg.negative_slope, init=cfg.init, dtype=dtype)
        models.append(m)
        if cfg.lr_rule == "fixed":
            lrs.append(cfg.lr)
            continue
        Phi, _ = layer_io(m, X)
        if cfg.regularizer == "prox":
            Phi = unit_features(Phi, norms.input_norms(m.W[...], m.b[...],
                                                       include_bias=cfg.include_bias))
        smax = float(np.linalg.norm(np.asarray(Phi, np.float64), 2))
        lip = 2.0 * smax ** 2 / (N * D)
        lrs.append(cfg.lr / lip if lip > 0 else cfg.lr)
    return models, np.asarray(lrs)


def _member_metrics(cfg, model, hist_i, X, Y, X_test, Y_test, lam) -> dict[str, Any]:
    p = params_of(model)
    W, b, V = (np.asarray(a, np.float64) for a in (p.W, p.b, p.V))
    homogeneous = activations.is_homogeneous(cfg.activation)
    summary = analysis.layer_summaries(model, allow_nonhomogeneous=True,
                                       atol=cfg.active_atol)[0]
    for k in ("layer", "width", "d_out"):  # the job's keys
        summary.pop(k)
    active = np.asarray(analysis.active_mask(W, b, V, atol=cfg.active_atol))
    verdict = assess(hist_i["loss"], hist_i["data_fit"], zero_predictor_fit(Y), cfg.convergence)
    Phi, Psi = layer_io(model, X)
    n_in = np.asarray(norms.input_norms(W, b, include_bias=cfg.include_bias))
    Phi_u = unit_features(Phi, n_in) if homogeneous else np.asarray(Phi, np.float64)
    r_phi = int(analysis.numerical_rank(Phi_u, rtol=cfg.rank_rtol))
    r_psi = int(analysis.numerical_rank(np.asarray(Psi, np.float64), rtol=cfg.rank_rtol))
    fit = np.asarray(model(jnp.asarray(X)), np.float64)
    out = {
        "lam": float(lam),
        **verdict._asdict(),
        **summary,
        "data_fit": float(np.mean((fit - Y) ** 2)),
        "objective": float(hist_i["loss"][-1]),
        "vv_norm": float(norms.vv_norm(W, b, V, include_bias=cfg.include_bias)),
        "m1_norm": float(norms.m1_norm(W, b, V, include_bias=cfg.include_bias)),
        **balance_stats(W, b, V, active, include_bias=cfg.include_bias),
        "rank_phi": r_phi,
        "rank_psi": r_psi,
        "rank_bound": r_phi * r_psi,
        "test_error": (float(np.mean((np.asarray(model(jnp.asarray(X_test)), np.float64)
                                      - Y_test) ** 2)) if len(X_test) else None),
    }
    cert_keys = ("certified_width", "lasso_width", "lasso_rel_gap", "lasso_converged",
                 "rank_psi_lasso", "certified_bound", "lasso_objective", "trained_objective",
                 "suboptimality")
    why = None
    if not homogeneous:
        why = f"non-homogeneous activation {cfg.activation!r}: no lasso equivalent"
    elif cfg.regularizer == "m1":
        why = "the ||.||_{M,1} penalty has no multi-task-lasso equivalent"
    elif not cfg.certify:
        why = "certify=false"
    U = V * n_in[None, :]
    out["sparsified_width"] = (sparsified_width(Phi_u, np.where(active[None, :], U, 0.0),
                                                rank_rtol=cfg.rank_rtol)
                               if homogeneous else None)
    if why is None:
        lam_l = objectives.lasso_lam(lam, cfg.data.d_out, activation=cfg.activation)
        out.update(certified_width(Phi_u, Y.T, lam_l, U0=U, tol=cfg.lasso_tol,
                                   max_iter=cfg.lasso_max_iter, rank_rtol=cfg.rank_rtol))
    else:
        out.update({k: None for k in cert_keys})
    out["certified_skipped"] = why
    return out


def _stats(values) -> dict[str, Any] | None:
    v = np.asarray([x for x in values if x is not None], np.float64)
    if not v.size:
        return None
    return {"min": float(v.min()), "median": float(np.median(v)), "max": float(v.max())}


def _body(cfg: WidthSweepConfig, out_dir: Path) -> dict[str, Any]:
    dtype = jnp.zeros(()).dtype
    X, Y, X_test, Y_test, teacher = load_data(cfg.data, dtype)
    N, D = cfg.data.n, cfg.data.d_out
    K, need, cap_bound = student_width(cfg)
    inits, lrs = initial_models(cfg, K, X, dtype)
    S = len(cfg.seeds)
    grid = [(lam, seed, i_s) for lam in cfg.lams for i_s, seed in enumerate(cfg.seeds)]
    members = [inits[i_s] for _, _, i_s in grid]
    log.info("width_sweep: kind=%s N=%d D=%d K=%d (required %d%s), %d lambdas x %d seeds, %s, "
             "%d steps", cfg.data.kind, N, D, K, need, ", capped" if cap_bound else "",
             len(cfg.lams), S, cfg.regularizer, cfg.steps)
    t0 = time.perf_counter()
    trained, hist = train.fit_batch(
        members, X, Y, steps=cfg.steps, lr=np.asarray([lrs[i_s] for _, _, i_s in grid]),
        lam=np.asarray([lam for lam, _, _ in grid]), optimizer=cfg.optimizer,
        regularizer=cfg.regularizer, decay=_decay(cfg), log_every=cfg.log_every,
        active_atol=cfg.active_atol, progress=cfg.progress)
    t_train = time.perf_counter() - t0
    rows = []
    for i, ((lam, seed, i_s), model) in enumerate(zip(grid, trained, strict=True)):
        h = {"loss": hist.loss[i], "data_fit": hist.data_fit[i]}
        rows.append({"init_seed": int(seed), "lr": float(lrs[i_s]),
                     **_member_metrics(cfg, model, h, X, Y, X_test, Y_test, lam)})
    t_analysis = time.perf_counter() - t0 - t_train
    ok, flagged = split_ok(rows)
    certified_ok = [r for r in ok if r["lasso_converged"]]
    sharp = analysis.representer_bound_sharp(N, D)
    counts = {
        "n_members": len(rows),
        "n_ok": len(ok),
        "flagged": flagged,
        "n_learned_above_rank_bound": sum(r["n_active"] > r["rank_bound"] for r in rows),
        "n_learned_above_sharp_bound": sum(r["n_active"] > sharp for r in rows),
        "n_certified_above_rank_bound": sum(r["certified_width"] is not None
                                            and r["certified_width"] > r["rank_bound"]
                                            for r in rows),
        "n_sparsified_above_rank_bound": sum(r["sparsified_width"] is not None
                                             and r["sparsified_width"] > r["rank_bound"]
                                             for r in rows),
        "n_lasso_not_converged": sum(r["lasso_converged"] is False for r in rows),
    }
    summary = {k: _stats(r[k] for r in ok) for k in
               ("n_active", "sparsified_width", "rank_bound", "shared_fraction", "data_fit")}
    summary["certified_width"] = _stats(r["certified_width"] for r in certified_ok)
    stacked = {f"{k}": np.stack([np.asarray(getattr(params_of(m), k)) for m in trained])
               for k in ("W", "b", "V")}
    results.save_npz(out_dir / "arrays.npz", X=X, Y=Y, X_test=X_test, Y_test=Y_test,
                     lam=np.asarray([g[0] for g in grid]), seed=np.asarray([g[1] for g in grid]),
                     **stacked)
    results.save_npz(out_dir / "history.npz", **hist._asdict())
    figures = []
    if cfg.figures:
        from vvjax.plots import width_sweep as plots

        title = f"{cfg.data.kind}, N={N}, D={D}, {cfg.regularizer}, {cfg.activation}"
        figures = [plots.save_job_figure(out_dir / "figures" / "width_vs_lambda.png", rows,
                                         sharp_bound=sharp, title=title)]
    for r in rows:
        log.info("  lam %.2e seed %d: %d active, certified %s, rank bound %d, %s", r["lam"],
                 r["init_seed"], r["n_active"], r["certified_width"], r["rank_bound"], r["status"])
    return {
        "n": N, "d_out": D, "d_in": cfg.data.d_in, "kind": cfg.data.kind,
        "regularizer": cfg.regularizer, "activation": cfg.activation,
        "width": K, "width_required": need, "width_cap": cfg.width_cap, "cap_bound": cap_bound,
        "width_rule": ("activity rule (rescaling invariant)" if activations.is_homogeneous(
            cfg.activation) else "activity rule applied to a non-homogeneous activation "
                                 "(allow_nonhomogeneous=True; not rescaling invariant)"),
        "representer_bound": analysis.representer_bound(N),
        "representer_bound_sharp": sharp,
        "teacher_width": cfg.data.teacher_width if teacher is not None else None,
        **counts,
        "summary": summary,
        "train_time_s": t_train,
        "analysis_time_s": t_analysis,
        "figures": [str(Path(f).relative_to(out_dir)) for f in figures],
        "members": rows,
    }


def run_width_sweep(cfg: WidthSweepConfig, out_dir: str | Path, *,
                    on_start: Callable[[Path], None] | None = None) -> dict[str, Any]:
    """Run (or resume) one width-sweep job into ``out_dir``; returns its metrics.

    The whole config is checked first (:func:`vvjax.runs.validate`), before any work. Writes
    ``arrays.npz`` (data, and the trained ``W`` (B, K, d), ``b`` (B, K), ``V`` (B, D, K) of the B
    members with their ``lam`` and ``seed``), ``history.npz`` (curves with a leading B axis),
    ``figures/width_vs_lambda.png`` and, last, ``metrics.json``: job-level sizes, widths and
    bounds, counts of flagged members and of members above their bounds, ``summary``
    (min/median/max over the ``"ok"`` members) and ``members``: one record per (lambda, seed)
    (module docstring; :func:`vvjax.results.load_sweep` expands them into rows).

    Raises:
      TypeError: ``cfg`` is not a :class:`WidthSweepConfig`.
      ConfigError: a bad key or value (the message names it).
      vvjax.results.JobError: ``out_dir`` holds another finished config or is in use.
      vvjax.train.TrainingDivergedError: a member diverged (lower ``lr``).
    """
    if not isinstance(cfg, WidthSweepConfig):
        raise TypeError(f"cfg must be a WidthSweepConfig, got {type(cfg).__name__}")
    cfg = validate(cfg)
    return run_job(cfg, out_dir, _body, task="width_sweep", on_start=on_start)
