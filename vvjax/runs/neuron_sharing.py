"""The neuron-sharing experiment (arXiv 2305.16534, neuron-sharing experiment; docs/paper.md §7.1).

A 2-output student ReLU network of width 2N is trained on teacher data twice: with weight decay (the
paper's proximal method: SGD step, group soft-threshold of every ``v_k`` at ``lr * lam``, unit-norm
``(w_k, b_k)``) and without. With weight decay only a few neurons survive and every survivor serves
both outputs; without, all neurons stay active.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Optional

import numpy as np
from flax import nnx

from vvjax import analysis, data, norms, objectives, results, train
from vvjax._config import ConfigError, Rule, above, at_least, one_of, validate
from vvjax._threads import thread_map
from vvjax.convergence import Criterion, assess, zero_predictor_fit
from vvjax.models import ShallowParams, ShallowVVNet, layer_io, params_of, shallow_forward
from vvjax.runs._job import PRECISIONS, run_job

__all__ = ["SOURCES", "TeacherDataConfig", "StudentTrainConfig", "NeuronSharingConfig",
           "run_neuron_sharing"]


SOURCES = ("jax", "paper")
"""``"jax"``: drawn with JAX's random numbers from the seeds; ``"paper"``: the authors' exact arrays
(drawn by PyTorch with their seeds, shipped with vvjax; :func:`vvjax.data.paper_neuron_sharing`)."""


@dataclass
class TeacherDataConfig:
    """Teacher data: ``n`` samples in ``d_in`` dimensions, ``d_out`` outputs, teacher width."""

    source: str = "jax"
    """One of :data:`SOURCES`; ``"paper"`` needs the paper's sizes and seed (50, 2, 2, 5; 43)."""
    seed: int = 43
    n: int = 50
    d_in: int = 2
    d_out: int = 2
    teacher_width: int = 5

    RULES: ClassVar[dict[str, Rule]] = {"source": one_of(SOURCES), "n": at_least(1),
                                        "d_in": at_least(1), "d_out": at_least(1),
                                        "teacher_width": at_least(1)}


@dataclass
class StudentTrainConfig:
    """One training run of the student (see :func:`vvjax.train.fit`)."""

    regularizer: str = "prox"
    lam: float = 5e-5
    lr: float = 0.2
    optimizer: str = "sgd"

    RULES: ClassVar[dict[str, Rule]] = {"regularizer": one_of(objectives.REGULARIZERS),
                                        "lam": at_least(0), "lr": above(0),
                                        "optimizer": one_of(train.OPTIMIZERS)}


def _runs_default() -> dict[str, StudentTrainConfig]:
    return {
        "weight_decay": StudentTrainConfig(regularizer="prox", lam=5e-5),
        "no_weight_decay": StudentTrainConfig(regularizer="none", lam=0.0),
    }


@dataclass
class NeuronSharingConfig:
    """Config of :func:`run_neuron_sharing` (``conf/neuron_sharing/config.yaml``)."""

    seed: int = 49
    """Seed of the student's initialisation (the paper's init seed is 49)."""
    init: str = "jax"
    """Student initialisation, one of :data:`SOURCES`: ``"jax"`` draws PyTorch's default scheme
    from ``seed`` with JAX; ``"paper"`` is the authors' exact width-100 initialisation (PyTorch,
    seed 49)."""
    precision: str = "float32"
    data: TeacherDataConfig = field(default_factory=TeacherDataConfig)
    width: Optional[int] = None  # noqa: UP045 (OmegaConf needs Optional)
    """Student width; ``None`` means 2N, as in the paper."""
    steps: int = 400_000
    log_every: int = 2_000
    include_bias: bool = True
    """Count the bias in the unit-norm constraint / penalty (the paper's code does)."""
    active_atol: float = analysis.DEFAULT_ATOL
    rank_rtol: float = 1e-5
    """Numerical-rank tolerance for the data-dependent bound rank(Phi) rank(Psi) of trained nets."""
    runs: dict[str, StudentTrainConfig] = field(default_factory=_runs_default)
    convergence: Criterion = field(default_factory=Criterion)
    """When a run counts as converged or collapsed (:mod:`vvjax.convergence`)."""
    figures: bool = field(default=True, compare=False)  # compare=False: not in the config hash
    progress: bool = field(default=False, compare=False)

    RULES: ClassVar[dict[str, Rule]] = {
        "init": one_of(SOURCES), "precision": one_of(PRECISIONS), "width": at_least(1),
        "steps": at_least(1), "log_every": at_least(1), "active_atol": at_least(0),
        "rank_rtol": Rule(lambda v: 0 <= v < 1, "in [0, 1)"),
        "runs": Rule(lambda v: len(v) > 0 and all(_RUN_NAME.fullmatch(k) for k in v),
                     "a non-empty mapping of run names made of letters, digits, '_', '-', '.'"),
    }

    def cross_check(self) -> None:
        """Rules between fields (called by :func:`vvjax.runs.validate`)."""
        _check_sources(self)


_RUN_NAME = re.compile(r"[A-Za-z0-9_.-]+")  # run names become file names and npz keys


_PAPER_DATA = {"seed": 43, "n": 50, "d_in": 2, "d_out": 2, "teacher_width": 5}


def _check_sources(cfg: NeuronSharingConfig) -> None:
    """The paper's arrays exist for the paper's sizes and seeds only: say so instead of ignoring."""
    for name, value in (("data.source", cfg.data.source), ("init", cfg.init)):
        if value not in SOURCES:
            raise ConfigError(f"{name} must be one of {SOURCES}, got {value!r}")
    if cfg.data.source == "paper":
        wrong = {k: getattr(cfg.data, k) for k, v in _PAPER_DATA.items()
                 if getattr(cfg.data, k) != v}
        if wrong:
            raise ConfigError(f"data.source='paper' is the authors' fixed data set {_PAPER_DATA}; "
                             f"got {wrong}. Use data.source=jax (with init=jax; the entry point: "
                             "preset=jax) to change sizes or seeds")
    if cfg.init == "paper":
        if cfg.data.source != "paper":
            raise ConfigError("init='paper' is the authors' initialisation for their data; it "
                             "needs data.source=paper (or use init=jax)")
        if cfg.seed != 49 or cfg.width not in (None, 100):
            raise ConfigError("init='paper' is the authors' fixed initialisation (width 100, their "
                             f"seed 49); got seed={cfg.seed}, width={cfg.width}. Use init=jax (the "
                             "entry point: preset=jax) to vary the seed or the width")


def _initial_student(cfg: NeuronSharingConfig, paper) -> ShallowParams:
    """The student's initial arrays, shared by every run: the authors' (``init="paper"``, from
    the already loaded ``paper`` arrays) or drawn from ``cfg.seed``."""
    if cfg.init == "paper":
        return paper.student
    width = cfg.width or 2 * cfg.data.n
    return params_of(ShallowVVNet(cfg.data.d_in, width, cfg.data.d_out, rngs=nnx.Rngs(cfg.seed)))


def _train_one(cfg: NeuronSharingConfig, run: StudentTrainConfig, init: ShallowParams, X, Y):
    student = ShallowVVNet.from_params(init)  # one module per run: runs train in threads
    model, history = train.fit(
        student, X, Y, steps=cfg.steps, lr=run.lr, lam=run.lam, regularizer=run.regularizer,
        optimizer=run.optimizer, decay="weights_and_biases" if cfg.include_bias else "weights",
        log_every=cfg.log_every, active_atol=cfg.active_atol, progress=cfg.progress,
    )
    return params_of(model), history


def _summary(params, history, X, Y, cfg: NeuronSharingConfig) -> dict[str, Any]:
    W, b, V = params.W, params.b, params.V
    counts = analysis.sharing_summary(W, b, V, atol=cfg.active_atol)
    fit = shallow_forward(params, X)
    mse = float(np.mean((np.asarray(fit) - np.asarray(Y)) ** 2))
    Phi, _ = layer_io(params, X, 0)  # K x N features of the trained network
    verdict = assess(history.loss, history.data_fit, zero_predictor_fit(Y), cfg.convergence)
    return {
        **verdict._asdict(),  # status, converged, collapsed, rel_change, fit_ratio
        **counts,
        "mse": mse,
        "final_objective": float(history.loss[-1]),
        "vv_norm": float(norms.vv_norm(W, b, V, include_bias=cfg.include_bias)),
        "m1_norm": float(norms.m1_norm(W, b, V, include_bias=cfg.include_bias)),
        "sum_output_norms": float(np.sum(np.linalg.norm(np.asarray(V), axis=0))),
        "rank_bound": int(analysis.rank_bound(Phi, fit.T, rtol=cfg.rank_rtol)),
    }


def _body(cfg: NeuronSharingConfig, out_dir: Path) -> dict[str, Any]:
    paper = data.paper_neuron_sharing() if cfg.data.source == "paper" else None
    if paper is not None:
        X, Y, teacher = paper.X, paper.Y, paper.teacher
    else:
        X, Y, teacher = data.teacher_data(cfg.data.seed, n=cfg.data.n, d_in=cfg.data.d_in,
                                          d_out=cfg.data.d_out,
                                          teacher_width=cfg.data.teacher_width)
    trained, summaries, arrays, histories = {}, {}, {}, {}
    # the runs are independent programs: train them side by side, one per CPU core
    init = _initial_student(cfg, paper)
    fitted = thread_map(lambda run: _train_one(cfg, run, init, X, Y), cfg.runs.values(),
                        train.default_workers(len(cfg.runs)))
    for name, (params, history) in zip(cfg.runs, fitted, strict=True):
        trained[name] = params
        summaries[name] = _summary(params, history, X, Y, cfg)
        arrays.update({f"{name}/W": params.W, f"{name}/b": params.b, f"{name}/V": params.V})
        histories.update({f"{name}/{k}": v for k, v in history._asdict().items()})
    results.save_npz(out_dir / "arrays.npz", X=X, Y=Y, teacher_W=teacher.W, teacher_b=teacher.b,
                     teacher_V=teacher.V, **arrays)
    results.save_npz(out_dir / "history.npz", **histories)
    figures = []
    if cfg.figures:
        from vvjax.plots import neuron_sharing as plots

        figures = plots.save_neuron_sharing_figures(
            out_dir / "figures", trained, histories, atol=cfg.active_atol,
            status={k: r["status"] for k, r in summaries.items()})
    N, D = cfg.data.n, cfg.data.d_out
    return {
        "runs": summaries,
        "flagged_runs": {k: r["status"] for k, r in summaries.items() if r["status"] != "ok"},
        "teacher": {"width": cfg.data.teacher_width,
                    "vv_norm": float(norms.vv_norm(teacher.W, teacher.b, teacher.V,
                                                   include_bias=cfg.include_bias))},
        "representer_bound": analysis.representer_bound(N),
        "representer_bound_sharp": analysis.representer_bound_sharp(N, D),
        "figures": [str(Path(f).relative_to(out_dir)) for f in figures],
    }


def run_neuron_sharing(cfg: NeuronSharingConfig, out_dir: str | Path, *,
                       on_start: Callable[[Path], None] | None = None) -> dict[str, Any]:
    """Run (or resume) the neuron-sharing experiment into ``out_dir``; returns its metrics.

    The whole config is checked first (:func:`vvjax.runs.validate`), before any work. Writes
    ``arrays.npz`` (data, teacher and trained weights), ``history.npz`` (training curves),
    ``figures/`` and, last, ``metrics.json``: per run ``status`` (``"ok"``, ``"not_converged"``,
    ``"collapsed"``, ``"diverged"``; :mod:`vvjax.convergence`) with ``converged``, ``collapsed``,
    ``rel_change`` and ``fit_ratio``, then ``n_active``, ``n_shared``, ``n_shared_all``,
    ``per_output``, ``mse``, ``final_objective`` and ``vv_norm``; ``flagged_runs`` (run -> status,
    for every run not ``"ok"``: its counts are not learned widths); the representer bound; wall
    time, config, seed, versions and git commit. ``on_start``: see :func:`vvjax.runs.run_job`.

    Raises:
      TypeError: ``cfg`` is not a :class:`NeuronSharingConfig`.
      ConfigError: a bad key or value (the message names it).
      vvjax.results.JobError: ``out_dir`` holds another finished config or is in use.
    """
    if not isinstance(cfg, NeuronSharingConfig):
        raise TypeError(f"cfg must be a NeuronSharingConfig, got {type(cfg).__name__}")
    cfg = validate(cfg)
    return run_job(cfg, out_dir, _body, task="neuron_sharing", on_start=on_start)
