"""Layer widths of deep networks trained with weight decay, against the deep width bound
(arXiv 2305.16534, width bounds for homogeneous layers; ``docs/paper.md`` §6).

One job is one data kind (``"teacher"``, ``"random"``, ``"digits"``). For every depth in
``depths`` (hidden layers) a ``DeepVVNet`` of hidden width ``hidden_width`` is trained with
weight decay for every pair (lambda, seed), all members of a depth in one
:func:`vvjax.train.fit_batch` call. For every member and hidden layer l it records the learned
width (:func:`vvjax.analysis.layer_summaries`), ``rank(Phi^(l))``, ``rank(Psi^(l))`` and their
product (:func:`vvjax.models.layer_io`), ``N^2``, and the **certified width** of the layer.

**The certified width of a hidden layer** ([derived], ``docs/paper.md`` §6). Fix every parameter
except, for layer l, the scale ``a_k`` of each incoming row ``(w_k, b_k)`` and the outgoing
column ``v_k`` (a column of ``W_{l+1}``). With a positively homogeneous activation the network's
outputs on the data depend only on ``u_k = n_k v_k`` (``n_k = ||w_k||``, or ``||(w_k, b_k)||``
when biases are decayed) through the unit-norm features ``Phi~ = diag(1/n) Phi^(l)``: the layer
maps ``Phi~ -> U Phi~ = Psi^(l) = W_{l+1} Phi^(l)``, and the weight decay of these parameters is at
least ``lam sum_k ||u_k||`` with equality when the layer is balanced
(:func:`vvjax.norms.balance_layer`; ``U`` and ``Phi~`` do not change under the rescaling, so
balancing first changes none of the numbers below). Hence

* **every hidden layer** (the quantity recorded as ``certified_width``): the constrained problem
  ``min_U sum_k ||u_k||_2  s.t.  U Phi~ = Psi^(l)`` (:func:`vvjax.lasso.solve_constrained`, then
  :func:`vvjax.lasso.sparsify`) keeps the network's function exactly on the training data, never
  raises the layer's penalty, and leaves at most ``rank(Phi^(l)) rank(Psi^(l)) <= N^2`` neurons
  (the multi-task lasso sparsity theorem); at a global minimizer of the weight-decay objective the
  trained ``U`` solves it. This holds for any loss: the data term is untouched. vvjax poses it on
  the layer's active neurons (the activity rule of :mod:`vvjax.analysis`; ``Psi`` their part of
  the next pre-activations, which differs from the whole layer's by the inactive neurons'
  contributions, each below the activity threshold): the certified width is then at most the
  learned width as well. Without that restriction an exact re-fit must also reproduce the inactive
  neurons' tiny contributions, and its minimum-norm solution can be wider than the trained layer.
  The trained layer is itself feasible: when the solver's point (within ``lasso_max_iter``
  iterations) is no better, the trained layer is the one sparsified, so the recorded width never
  comes from a point worse than training's. ``constrained_certified`` says per layer whether the
  solve proved optimality for the given features (gap plus dual infeasibility ``<= lasso_tol``;
  post-ReLU features of deep layers can be nearly rank deficient, where the dual certificate
  holds only within rounding of order ``eps * cond(Phi)``).
* **the last hidden layer with the "mse" loss** (also recorded, as
  ``certified_width_penalized``): the outputs are ``U Phi~ + b_L`` with an unregularized output
  bias, so the layer subproblem is exactly a multi-task lasso,
  ``1/(N D) ||U Phi~ + b_L 1^T - Y^T||_F^2 + lam sum_k ||u_k||``; eliminating ``b_L`` centers
  ``Phi~`` and ``Y`` over the samples, and multiplying by ``D/2`` gives the lasso of
  :func:`vvjax.lasso.solve_penalized` at ``lam' = lam D / 2``
  (:func:`vvjax.objectives.lasso_lam`); ``penalized_converged`` says whether its gap was
  certified. For an inner layer the data term is not a quadratic
  function of ``U`` (the next layers are nonlinear), so no lambda makes it a lasso; the
  constrained problem is the natural certificate there.

Members whose convergence status is not ``"ok"`` are flagged and left out of the figure's
medians.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import jax.numpy as jnp
import numpy as np
from flax import nnx

from vvjax import activations, analysis, data, lasso, norms, objectives, results, train
from vvjax._config import ConfigError, Rule, above, at_least, one_of, validate
from vvjax.convergence import Criterion, assess, split_ok, zero_predictor_fit
from vvjax.models import DeepVVNet, layer_io, params_of
from vvjax.runs._job import PRECISIONS, run_job
from vvjax.runs.width_sweep import certified_width, unit_features

__all__ = ["DATA_KINDS", "DeepDataConfig", "DeepWidthsConfig", "load_deep_data",
           "layer_certified_width", "run_deep_widths"]

log = logging.getLogger(__name__)

DATA_KINDS = ("teacher", "random", "digits")
"""``"teacher"``/``"random"``: as :mod:`vvjax.runs.width_sweep` (the "mse" loss);
``"digits"``: the first ``n`` training images of :func:`vvjax.data.digits` (d=64, 10 classes,
the "cross_entropy" loss; the held-out error is the test misclassification rate)."""
DIGITS = {"d_in": 64, "d_out": 10}


@dataclass
class DeepDataConfig:
    """One data set (see :data:`DATA_KINDS`); for ``"digits"`` ``d_in``/``d_out`` must be 64/10,
    ``n`` <= 1347 training images are used and ``n_test`` is ignored (its 450 test images are)."""

    kind: str = "teacher"
    n: int = 16
    d_in: int = 2
    d_out: int = 2
    teacher_width: int = 5
    seed: int = 0
    n_test: int = 0

    RULES: ClassVar[dict[str, Rule]] = {"kind": one_of(DATA_KINDS), "n": at_least(1),
                                        "d_in": at_least(1), "d_out": at_least(1),
                                        "teacher_width": at_least(1), "n_test": at_least(0)}

    def cross_check(self) -> None:
        """Digits has fixed sizes."""
        if self.kind == "digits":
            wrong = {k: getattr(self, k) for k, v in DIGITS.items() if getattr(self, k) != v}
            if wrong:
                raise ConfigError(
                    "data.kind='digits' has d=64 inputs and 10 classes; got "
                    + ", ".join(f"data.{k}={v}" for k, v in wrong.items())
                    + ". Set data.d_in=64 data.d_out=10 (the preset digits does)")
            if self.n > 1347:
                raise ConfigError(f"data.n must be <= 1347 (digits' training images) for "
                                  f"data.kind='digits', got {self.n}")


@dataclass
class DeepWidthsConfig:
    """Config of :func:`run_deep_widths` (``conf/deep_widths/config.yaml``)."""

    precision: str = "float64"
    data: DeepDataConfig = field(default_factory=DeepDataConfig)
    depths: list[int] = field(default_factory=lambda: [2, 3, 4])
    """Numbers of hidden layers; one fit_batch per depth."""
    hidden_width: int = 64
    activation: str = "relu"
    negative_slope: float = activations.DEFAULT_NEGATIVE_SLOPE
    init: str = "torch"
    lams: list[float] = field(default_factory=lambda: [1e-3, 1e-2])
    seeds: list[int] = field(default_factory=lambda: [0, 1])
    regularizer: str = "weight_decay"
    include_bias: bool = True
    """Decay the hidden biases too (as the paper's experiments do). With undecayed biases a neuron
    whose ``w_k`` decays to 0 turns into a free constant feature: its unit-norm feature
    ``sigma(b_k) / ||w_k||`` blows up and the layer's constrained problem becomes numerically
    ill-posed."""
    optimizer: str = "adam"
    lr: float = 1e-3
    steps: int = 6_000
    log_every: int = 250
    active_atol: float = analysis.DEFAULT_ATOL
    rank_rtol: float = 1e-8
    lasso_tol: float = 1e-6
    lasso_max_iter: int = 20_000
    """ADMM iteration budget of each layer's constrained re-solve (``constrained_certified``
    says per layer whether its gap was certified within it)."""
    certify: bool = True
    convergence: Criterion = field(default_factory=Criterion)
    figures: bool = field(default=True, compare=False)
    progress: bool = field(default=False, compare=False)

    RULES: ClassVar[dict[str, Rule]] = {
        "precision": one_of(PRECISIONS),
        "depths": Rule(lambda v: len(v) > 0 and all(d >= 1 for d in v) and len(set(v)) == len(v),
                       "a non-empty list of distinct integers >= 1"),
        "hidden_width": at_least(1), "activation": one_of(activations.HOMOGENEOUS),
        "negative_slope": Rule(lambda v: 0 <= v < 1, "in [0, 1)"),
        "init": one_of(("torch", "normal")),
        "lams": Rule(lambda v: len(v) > 0 and all(x >= 0 for x in v),
                     "a non-empty list of numbers >= 0"),
        "seeds": Rule(lambda v: len(v) > 0 and len(set(v)) == len(v),
                      "a non-empty list of distinct integers"),
        "regularizer": one_of(("weight_decay", "vv")), "optimizer": one_of(train.OPTIMIZERS),
        "lr": above(0), "steps": at_least(1), "log_every": at_least(1),
        "active_atol": at_least(0), "rank_rtol": Rule(lambda v: 0 < v < 1, "in (0, 1)"),
        "lasso_tol": above(0), "lasso_max_iter": at_least(1),
    }

    def cross_check(self) -> None:
        """Rules between fields (called by :func:`vvjax.runs.validate`)."""
        if self.certify and any(lam == 0 for lam in self.lams):
            raise ConfigError(f"lams must be > 0 when certify=true (the last layer's certificate "
                              f"is a lasso at the converted lambda, which needs lambda > 0), got "
                              f"lams={list(self.lams)}; drop 0 or set certify=false")


def load_deep_data(cfg: DeepDataConfig, dtype=None):
    """``(X, Y, X_test, Y_test, loss)``: NumPy arrays and the training loss name."""
    dtype = dtype or jnp.zeros(()).dtype
    if cfg.kind == "digits":
        ds = data.digits()
        return (np.asarray(ds.X_train[:cfg.n], dtype), ds.Y_train[:cfg.n],
                np.asarray(ds.X_test, dtype), ds.Y_test, "cross_entropy")
    from vvjax.runs.width_sweep import SweepDataConfig, load_data

    sub = SweepDataConfig(kind=cfg.kind, n=cfg.n, d_in=cfg.d_in, d_out=cfg.d_out,
                          teacher_width=cfg.teacher_width, seed=cfg.seed, n_test=cfg.n_test)
    X, Y, Xt, Yt, _ = load_data(sub, dtype)
    return X, Y, Xt, Yt, "mse"


def layer_certified_width(Phi, Psi, in_norms, *, tol: float = 1e-6, rank_rtol: float = 1e-8,
                          feas_rtol: float = 1e-6, max_iter: int = 20_000,
                          U_trained=None) -> dict[str, Any]:
    """Certified width of one hidden layer from its constrained problem (module docstring).

    Args:
      Phi: (K, N) post-activations of the layer. Psi: (K', N) ``W_{l+1} Phi``.
      in_norms: (K,) ``n_k``, the norms of the incoming rows the penalty sees.
      tol: relative duality gap of :func:`vvjax.lasso.solve_constrained`.
      rank_rtol: numerical-rank tolerance of :func:`vvjax.lasso.sparsify`.
      feas_rtol: ``Psi = W_{l+1} Phi`` lies in the row space of ``Phi`` by construction; the
        solver's feasibility check sees rounding (relative ~1e-7 on nearly rank-deficient
        features) and must accept it.
      max_iter: ADMM iteration budget of the solve.
      U_trained: (K', K) the trained layer in unit-feature coordinates, ``W_{l+1} diag(n)``
        (a feasible point); when the solver's point is no better, it is the one sparsified.

    Returns:
      ``certified_width`` (nonzero columns after sparsify of the better of the solver's point and
      ``U_trained``: at most ``rank(Phi) rank(Psi)`` either way), ``constrained_converged`` (the
      solver's gap test), ``constrained_certified`` (converged and ``rel_gap +
      dual_infeasibility <= tol``: optimal for the given features, not only within the SVD's
      backward error; :class:`vvjax.lasso.ConstrainedResult`), ``constrained_rel_gap``,
      ``certified_layer_norm`` (the sparsified solution's ``sum_k ||u_k||``, never larger than
      the point it started from).
    """
    Phi_u = unit_features(Phi, in_norms)
    Psi = np.asarray(Psi, np.float64)
    res = lasso.solve_constrained(Phi_u, Psi, tol=tol, feas_rtol=feas_rtol, max_iter=max_iter)
    V = np.asarray(res.V, np.float64)
    if U_trained is not None:
        U_trained = np.asarray(U_trained, np.float64)
        if np.sum(np.linalg.norm(U_trained, axis=0)) < res.primal:
            V = U_trained
    Vs = lasso.sparsify(V, Phi_u, Psi, rank_rtol=rank_rtol)
    return {"certified_width": int(lasso.count_nonzero_columns(Vs)),
            "constrained_converged": bool(res.converged),
            "constrained_certified": bool(res.converged
                                          and res.rel_gap + res.dual_infeasibility <= tol),
            "constrained_rel_gap": float(res.rel_gap + res.dual_infeasibility),
            "certified_layer_norm": float(np.sum(np.linalg.norm(Vs, axis=0)))}


def _member_layers(cfg, model, X, Y, loss, lam) -> dict[str, list]:
    p = params_of(model)
    n_hidden = len(p.Ws) - 1
    summ = analysis.layer_summaries(model, atol=cfg.active_atol)
    out: dict[str, list] = {k: [] for k in (
        "n_active", "n_shared", "shared_fraction", "rank_phi", "rank_psi", "rank_bound",
        "certified_width", "constrained_converged", "constrained_certified",
        "constrained_rel_gap", "trained_layer_norm", "certified_layer_norm")}
    for l in range(n_hidden):
        Phi, Psi = layer_io(model, X, l)
        Phi, Psi = np.asarray(Phi, np.float64), np.asarray(Psi, np.float64)
        n_in = np.asarray(norms.input_norms(p.Ws[l], p.bs[l], include_bias=cfg.include_bias))
        r_phi = int(analysis.numerical_rank(unit_features(Phi, n_in), rtol=cfg.rank_rtol))
        r_psi = int(analysis.numerical_rank(Psi, rtol=cfg.rank_rtol))
        out["n_active"].append(summ[l]["n_active"])
        out["n_shared"].append(summ[l]["n_shared"])
        out["shared_fraction"].append(summ[l]["shared_fraction"])
        out["rank_phi"].append(r_phi)
        out["rank_psi"].append(r_psi)
        out["rank_bound"].append(r_phi * r_psi)
        act = np.asarray(analysis.activity(p.Ws[l], p.bs[l], p.Ws[l + 1],
                                           atol=cfg.active_atol)[0])
        W_next = np.where(act[None, :], np.asarray(p.Ws[l + 1], np.float64), 0.0)
        U = W_next * n_in[None, :]
        out["trained_layer_norm"].append(float(np.sum(np.linalg.norm(U, axis=0))))
        if cfg.certify and not act.any():  # a dead layer: nothing to re-fit, width 0
            for k, v in {"certified_width": 0, "constrained_converged": True,
                         "constrained_certified": True, "constrained_rel_gap": 0.0,
                         "certified_layer_norm": 0.0}.items():
                out[k].append(v)
        elif cfg.certify:  # the layer's active neurons and their outputs (module docstring)
            c = layer_certified_width(Phi[act], W_next[:, act] @ Phi[act], n_in[act],
                                      tol=cfg.lasso_tol, rank_rtol=cfg.rank_rtol,
                                      max_iter=cfg.lasso_max_iter, U_trained=U[:, act])
            for k, v in c.items():
                out[k].append(v)
        else:
            for k in ("certified_width", "constrained_converged", "constrained_certified",
                      "constrained_rel_gap", "certified_layer_norm"):
                out[k].append(None)
    pen = {"certified_width_penalized": None, "certified_bound_penalized": None,
           "penalized_converged": None}
    if cfg.certify and loss == "mse":  # the last hidden layer is a lasso (module docstring)
        l = n_hidden - 1
        Phi, _ = layer_io(model, X, l)
        n_in = np.asarray(norms.input_norms(p.Ws[l], p.bs[l], include_bias=cfg.include_bias))
        Phi_u = unit_features(Phi, n_in)
        Phi_c = Phi_u - Phi_u.mean(axis=1, keepdims=True)
        Y_c = np.asarray(Y, np.float64) - np.asarray(Y, np.float64).mean(axis=0, keepdims=True)
        U0 = np.asarray(p.Ws[l + 1], np.float64) * n_in[None, :]
        c = certified_width(Phi_c, Y_c.T, objectives.lasso_lam(lam, Y.shape[1],
                                                              activation=cfg.activation),
                            U0=U0, tol=max(cfg.lasso_tol, 1e-9), rank_rtol=cfg.rank_rtol)
        pen = {"certified_width_penalized": c["certified_width"],
               "certified_bound_penalized": c["certified_bound"],
               "penalized_converged": c["lasso_converged"]}
    return {**out, **pen}


def _train_depth(cfg: DeepWidthsConfig, depth: int, X, Y, loss, dtype):
    widths = [X.shape[1]] + [cfg.hidden_width] * depth + [cfg.data.d_out]
    grid = [(lam, seed) for lam in cfg.lams for seed in cfg.seeds]
    models = [DeepVVNet(widths, rngs=nnx.Rngs(int(seed)), activation=cfg.activation,
                        negative_slope=cfg.negative_slope, init=cfg.init, dtype=dtype)
              for _, seed in grid]
    trained, hist = train.fit_batch(
        models, X, Y, steps=cfg.steps, lr=cfg.lr, lam=np.asarray([g[0] for g in grid]),
        optimizer=cfg.optimizer, loss=loss, regularizer=cfg.regularizer,
        decay="weights_and_biases" if cfg.include_bias else "weights",
        log_every=cfg.log_every, active_atol=cfg.active_atol, progress=cfg.progress)
    return grid, trained, hist


def _held_out(model, X_test, Y_test, loss):
    if not len(X_test):
        return None
    out = np.asarray(model(jnp.asarray(X_test)))
    if loss == "cross_entropy":
        return float(np.mean(np.argmax(out, axis=1) != np.asarray(Y_test)))
    return float(np.mean((out - np.asarray(Y_test)) ** 2))


def _body(cfg: DeepWidthsConfig, out_dir: Path) -> dict[str, Any]:
    dtype = jnp.zeros(()).dtype
    X, Y, X_test, Y_test, loss = load_deep_data(cfg.data, dtype)
    N = X.shape[0]
    rows, arrays = [], {}
    if loss == "mse":
        baseline = zero_predictor_fit(Y)
    else:  # cross-entropy of the uniform prediction
        baseline = float(np.log(cfg.data.d_out))
    for depth in cfg.depths:
        log.info("deep_widths: %s, depth %d, %d members", cfg.data.kind, depth,
                 len(cfg.lams) * len(cfg.seeds))
        grid, trained, hist = _train_depth(cfg, depth, X, Y, loss, dtype)
        for i, ((lam, seed), model) in enumerate(zip(grid, trained, strict=True)):
            verdict = assess(hist.loss[i], hist.data_fit[i], baseline, cfg.convergence)
            rows.append({"depth": depth, "lam": float(lam), "init_seed": int(seed),
                         **verdict._asdict(), "data_fit": float(hist.data_fit[i, -1]),
                         "objective": float(hist.loss[i, -1]),
                         "test_error": _held_out(model, X_test, Y_test, loss),
                         **_member_layers(cfg, model, X, Y, loss, lam)})
            for l, W in enumerate(params_of(model).Ws):
                arrays[f"depth{depth}/member{i}/W{l}"] = W
        arrays.update({f"depth{depth}/{k}": v for k, v in hist._asdict().items()})
    results.save_npz(out_dir / "arrays.npz", X=X, Y=Y, **arrays)
    ok, flagged = split_ok(rows)
    figures = []
    if cfg.figures:
        from vvjax.plots import deep_widths as plots

        figures = [plots.save_widths_figure(out_dir / "figures" / "widths_per_layer.png", rows,
                                            n=N, hidden_width=cfg.hidden_width,
                                            title=f"{cfg.data.kind}, N={N}")]
    return {
        "kind": cfg.data.kind, "n": N, "d_in": int(X.shape[1]), "d_out": cfg.data.d_out,
        "loss": loss, "hidden_width": cfg.hidden_width, "representer_bound": N * N,
        "n_members": len(rows), "n_ok": len(ok), "flagged": flagged,
        "n_learned_above_rank_bound": sum(a > b for r in rows
                                          for a, b in zip(r["n_active"], r["rank_bound"],
                                                          strict=True)),
        "n_layers": sum(len(r["n_active"]) for r in rows),
        "n_layers_certified": sum(bool(c) for r in rows for c in r["constrained_certified"]),
        "n_certified_above_rank_bound": sum(a is not None and a > b for r in rows
                                            for a, b in zip(r["certified_width"],
                                                            r["rank_bound"], strict=True)),
        "figures": [str(Path(f).relative_to(out_dir)) for f in figures],
        "members": rows,
    }


def run_deep_widths(cfg: DeepWidthsConfig, out_dir: str | Path, *,
                    on_start: Callable[[Path], None] | None = None) -> dict[str, Any]:
    """Run (or resume) one deep-widths job (one data kind, every depth) into ``out_dir``.

    Writes ``arrays.npz`` (data, trained weights per depth and member, curves),
    ``figures/widths_per_layer.png`` (:mod:`vvjax.plots.deep_widths`) and, last,
    ``metrics.json`` with ``members``: one record per (depth, lambda, seed) whose per-layer
    quantities are lists over the hidden layers (module docstring).

    Raises:
      TypeError: ``cfg`` is not a :class:`DeepWidthsConfig`.
      ConfigError: a bad key or value (the message names it).
      vvjax.results.JobError: ``out_dir`` holds another finished config or is in use.
    """
    if not isinstance(cfg, DeepWidthsConfig):
        raise TypeError(f"cfg must be a DeepWidthsConfig, got {type(cfg).__name__}")
    cfg = validate(cfg)
    return run_job(cfg, out_dir, _body, task="deep_widths", on_start=on_start)
