"""Compression without retraining: the certified lasso against the baselines, at equal widths.

For each seed a classifier is trained (:mod:`vvjax.runs.train_classifier`; or loaded from
``checkpoints``); one hidden layer (default the last) is cut to each width of ``fractions`` by every
method of ``methods`` (:func:`vvjax.compress.sweep`: the lasso first, then every baseline at the
width the lasso reached), and the hidden layers of ``joint.layers`` are compressed together,
layer by layer (:func:`vvjax.compress.compress` / :func:`vvjax.compress.prune`). No retraining.

Writes ``results.csv`` (one row per seed, method and width), ``table.csv`` / ``table.md`` (means and
spreads over seeds, in the form of the paper's compression table plus the baselines), ``figures/``
(test accuracy and largest output change against kept width, one line per method, mean +- standard
deviation over seeds), ``models/`` (each seed's trained and lasso-compressed networks, the kept
indices in the checkpoint's metadata) and, last, ``metrics.json`` (the tables, the issue's target
comparisons under ``targets``, config and provenance).

Sources: arXiv 2305.16534 (compression by the multi-task lasso); ``docs/paper.md`` §6, §7.5.
"""

import csv
import dataclasses
import io
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Optional

import numpy as np

from vvjax import checkpoint, compress, results
from vvjax._config import ConfigError, Rule, at_least, one_of, validate
from vvjax.compress.baselines import BASELINES
from vvjax.compress.layers import check_layers
from vvjax.compress.pipeline import model_last_hidden, parse_method
from vvjax.convergence import Criterion
from vvjax.runs._job import PRECISIONS, run_job
from vvjax.runs.train_classifier import (
    INPUT_SIZES,
    N_CLASSES,
    STOCHASTIC_CRITERION,
    ClassifierConfig,
    DataConfig,
    assess_training,
    check_data_files,
    classifier_scores,
    load_data,
    train_classifier,
)

__all__ = ["JointConfig", "CompressConfig", "run_compress", "DEFAULT_METHODS"]

DEFAULT_METHODS = ["lasso", "lasso+refit", "rwlasso", "rwlasso+refit", "magnitude",
                   "magnitude+refit", "activation", "activation+refit", "interpolative", "obs",
                   "obs+refit", "merge"]
"""Every method, with and without the least-squares refit where a refit changes something:
``interpolative`` already is a least-squares refit (its interpolation matrix is the least-squares
fit of the other neurons on the kept ones), and a refit after ``merge`` is ``magnitude+refit``."""


def _fractions_rule() -> Rule:
    return Rule(lambda v: len(v) > 0 and all(0 < f < 1 for f in v),
                "a non-empty list of fractions in (0, 1)")


def _distinct(what: str) -> Rule:
    return Rule(lambda v: len(v) > 0 and len(set(v)) == len(v), f"a non-empty list of distinct "
                f"{what}")


def _check_methods(key: str, methods: list[str]) -> None:
    for i, m in enumerate(methods):
        try:
            parse_method(m)
        except ValueError as exc:
            raise ConfigError(f"{key}[{i}]: {str(exc).removeprefix('methods: ')}") from None


@dataclass
class JointConfig:
    """Several hidden layers compressed together, in order (each ``Phi`` from the network as
    compressed so far)."""

    layers: list[int] = field(default_factory=lambda: [0, 1])
    """Hidden layers (0-based), distinct, compressed in this order."""
    fractions: list[float] = field(default_factory=lambda: [0.1, 0.1])
    """Width kept per layer, as a fraction of its width (one per entry of ``layers``)."""
    methods: list[str] = field(default_factory=lambda: ["lasso", "lasso+refit", "magnitude",
                                                        "magnitude+refit", "obs"])
    """Methods of the joint compression (``rwlasso`` runs in the width sweep only)."""

    RULES: ClassVar[dict[str, Rule]] = {
        "layers": Rule(lambda v: len(v) > 0 and len(set(v)) == len(v) and min(v) >= 0,
                       "a non-empty list of distinct hidden-layer indices >= 0"),
        "fractions": _fractions_rule(), "methods": _distinct("method names")}

    def cross_check(self) -> None:
        """One fraction per layer; known methods, no ``rwlasso``."""
        if len(self.layers) != len(self.fractions):
            raise ConfigError(f"joint.fractions must give one fraction per joint.layers entry "
                              f"({len(self.layers)}), got {len(self.fractions)}")
        _check_methods("joint.methods", self.methods)
        for m in self.methods:
            if m.partition("+")[0] == "rwlasso":
                raise ConfigError("joint.methods: use 'lasso' (rwlasso runs in the width sweep)")


@dataclass
class CompressConfig:
    """Config of :func:`run_compress` (``conf/compress/config.yaml``)."""

    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    """One trained network per seed (initialisation and minibatch order)."""
    precision: str = "float64"
    """JAX precision of the compression (the lasso's 1e-6 certificates need float64)."""
    data: DataConfig = field(default_factory=DataConfig)
    model: ClassifierConfig = field(default_factory=ClassifierConfig)
    checkpoints: list[str] = field(default_factory=list)
    """Trained classifiers to compress instead of training, one per seed
    (``experiments/train_classifier.py`` writes ``model.vvjax``)."""
    layer: Optional[int] = None  # noqa: UP045 (OmegaConf needs Optional)
    """Hidden layer of the width sweep (0-based; ``None``: the last)."""
    fractions: list[float] = field(default_factory=lambda: [0.02, 0.04, 0.06, 0.08, 0.10, 0.15,
                                                            0.20])
    """Kept widths as fractions of the layer's width (rounded, at least 1)."""
    target_fraction: float = 0.10
    """The width of the paper-style table (and of the issue's first target)."""
    methods: list[str] = field(default_factory=lambda: list(DEFAULT_METHODS))
    """Methods of the width sweep (:data:`DEFAULT_METHODS`); must include ``lasso``."""
    reweight: int = 4
    """Reweighting steps of ``rwlasso`` (each a certified weighted lasso)."""
    tol: float = 1e-6
    """Relative duality gap of every lasso solve."""
    joint: Optional[JointConfig] = field(default_factory=JointConfig)  # noqa: UP045
    """The joint compression of several layers (``null``: none)."""
    convergence: Criterion = field(
        default_factory=lambda: dataclasses.replace(STOCHASTIC_CRITERION))
    """Convergence test of each seed's training (``base[i].status`` in the metrics)."""
    figures: bool = field(default=True, compare=False)  # compare=False: not in the config hash
    save_models: bool = field(default=True, compare=False)
    """Write each seed's trained and lasso-compressed networks to ``models/``."""

    RULES: ClassVar[dict[str, Rule]] = {
        "seeds": Rule(lambda v: len(v) > 0 and len(set(v)) == len(v) and min(v) >= 0,
                      "a non-empty list of distinct seeds >= 0"),
        "precision": one_of(PRECISIONS), "layer": at_least(0), "fractions": _fractions_rule(),
        "target_fraction": Rule(lambda v: 0 < v < 1, "in (0, 1)"),
        "methods": _distinct("method names"), "reweight": at_least(1),
        "tol": Rule(lambda v: 0 < v < 1, "in (0, 1)")}

    def cross_check(self) -> None:
        """Rules between fields (called by :func:`vvjax.runs.validate`)."""
        if self.checkpoints and len(self.checkpoints) != len(self.seeds):
            raise ConfigError(f"checkpoints must give one trained model per seed "
                              f"({len(self.seeds)}), got {len(self.checkpoints)}")
        if self.target_fraction not in self.fractions:
            raise ConfigError(f"target_fraction {self.target_fraction} must be one of fractions "
                              f"{self.fractions}")
        _check_methods("methods", self.methods)
        if "lasso" not in self.methods:
            raise ConfigError("methods must include 'lasso' (the baselines run at its widths)")
        if not self.checkpoints:  # the trained network's hidden layers are known now
            n = len(self.model.hidden)
            if self.layer is not None and self.layer >= n:
                raise ConfigError(f"layer must be a hidden layer in [0, {n - 1}] of the "
                                  f"{n}-hidden-layer model.hidden {self.model.hidden}, got "
                                  f"{self.layer}")
            if self.joint is not None and max(self.joint.layers) >= n:
                raise ConfigError(f"joint.layers must be hidden layers in [0, {n - 1}] of "
                                  f"model.hidden {self.model.hidden}, got {self.joint.layers}")


def _check_checkpoints(cfg: CompressConfig) -> None:
    """Every checkpoint loads, fits the data set and has the layers to compress (before work)."""
    d_in = INPUT_SIZES[cfg.data.name]
    for i, path in enumerate(cfg.checkpoints):
        try:
            model = checkpoint.load(path)
        except (OSError, ValueError) as exc:  # CheckpointError is a ValueError
            raise ConfigError(f"checkpoints[{i}] ({path}): {exc}") from None
        if model.d_in != d_in or model.d_out != N_CLASSES:
            raise ConfigError(f"checkpoints[{i}] ({path}) maps {model.d_in} inputs to "
                              f"{model.d_out} outputs; data set {cfg.data.name} has {d_in} "
                              f"inputs and {N_CLASSES} classes")
        for key, layers in (("layer", cfg.layer),
                            ("joint.layers", cfg.joint.layers if cfg.joint else None)):
            if layers is None:
                continue
            try:
                check_layers(model, layers)
            except ValueError as exc:
                raise ConfigError(f"{key} for checkpoints[{i}] ({path}): {exc}") from None


def _width(fraction: float, K: int) -> int:
    return int(min(max(1, round(fraction * K)), K - 1))


def _row(seed, fraction, k_req, res) -> dict[str, Any]:
    lc = res.layers[-1]
    drop = None
    if res.test_before is not None and res.test_before.accuracy is not None:
        drop = 100.0 * (res.test_before.accuracy - res.test_after.accuracy)
    return {
        "seed": seed, "method": lc.method, "layer": lc.layer, "fraction": fraction,
        "width_requested": k_req, "width": lc.width_after, "width_before": lc.width_before,
        "n_never_active": lc.n_never_active,
        "test_accuracy_before": res.test_before.accuracy if res.test_before else None,
        "test_accuracy_after": res.test_after.accuracy if res.test_after else None,
        "accuracy_drop_points": drop,
        "train_loss_before": res.train_before.loss, "train_loss_after": res.train_after.loss,
        "test_loss_after": res.test_after.loss if res.test_after else None,
        "max_output_change_train": res.max_output_change_train,
        "max_output_change_test": res.max_output_change_test,
        "reconstruction_error": lc.reconstruction_error,
        "lam": lc.lam, "lam_over_lam_max": (lc.lam / lc.lam_max) if lc.lam else None,
        "rel_gap": lc.rel_gap,
        "width_exact": (lc.width_search.exact if lc.width_search is not None else None),
        "solver_time_s": lc.solver_time_s,
        "params_after": res.params_after,
    }


def _sweep_seed(cfg, model, ds, seed, layer, K):
    widths = [_width(f, K) for f in cfg.fractions]
    common = dict(layer=layer, Y=ds.Y_train, X_test=ds.X_test, Y_test=ds.Y_test, tol=cfg.tol,
                  reweight=max(1, cfg.reweight))
    lasso_methods = [m for m in cfg.methods if m.partition("+")[0] in ("lasso", "rwlasso")]
    base_methods = [m for m in cfg.methods if m.partition("+")[0] in BASELINES]
    out = compress.sweep(model, ds.X_train, widths=widths, methods=lasso_methods, **common)
    reached = [r.layers[0].width_after for r in out["lasso"]]
    if base_methods:
        out.update(compress.sweep(model, ds.X_train, widths=reached, methods=base_methods,
                                  **common))
    rows = []
    for m in cfg.methods:
        for f, k, res in zip(cfg.fractions, widths, out[m], strict=True):
            rows.append(_row(seed, f, k, res))
    return rows, out


def _joint_seed(cfg, model, ds, seed):
    j = cfg.joint
    Ks = [model.widths[l + 1] for l in j.layers]
    widths = [_width(f, K) for f, K in zip(j.fractions, Ks, strict=True)]
    rows = []
    data_kw = dict(Y=ds.Y_train, X_test=ds.X_test, Y_test=ds.Y_test)
    for m in j.methods:
        base, _, refit = m.partition("+")
        with warnings.catch_warnings():  # a width no lam gives exactly: the row reports the width
            warnings.simplefilter("ignore", UserWarning)
            if base == "lasso":
                res = compress.compress(model, ds.X_train, layers=j.layers, width=widths,
                                        refit=bool(refit), tol=cfg.tol, **data_kw)
            else:
                res = compress.prune(model, ds.X_train, method=base, layers=j.layers,
                                     width=widths, refit=bool(refit), **data_kw)
        row = _row(seed, None, widths, res)
        row.update({"layers": list(j.layers), "widths": [lc.width_after for lc in res.layers],
                    "fractions": list(j.fractions), "params_before": res.params_before,
                    "inference_time_before_s": res.inference_time_before_s,
                    "inference_time_after_s": res.inference_time_after_s,
                    "rel_gaps": [lc.rel_gap for lc in res.layers],
                    "reconstruction_errors": [lc.reconstruction_error for lc in res.layers]})
        for k in ("layer", "fraction", "width", "width_requested", "reconstruction_error", "lam",
                  "lam_over_lam_max", "rel_gap", "width_exact"):
            row.pop(k)
        rows.append(row)
    return rows


# ------------------------------------------------------------------------------- tables


def _stats(vals):
    v = np.asarray([x for x in vals if x is not None], dtype=float)
    if v.size == 0:
        return None, None
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


_AGG = ("width", "test_accuracy_after", "accuracy_drop_points", "train_loss_after",
        "max_output_change_train", "max_output_change_test", "reconstruction_error",
        "solver_time_s")


def aggregate(rows, keys=("method", "fraction")) -> list[dict[str, Any]]:
    """Mean and sample standard deviation over seeds of each group of ``rows``."""
    groups: dict[tuple, list] = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in keys), []).append(r)
    out = []
    for key, rs in groups.items():
        rec = dict(zip(keys, key, strict=True))
        rec["n_seeds"] = len(rs)
        for name in _AGG:
            if name in rs[0]:
                rec[name], rec[name + "_std"] = _stats([r.get(name) for r in rs])
        out.append(rec)
    return out


def _mean(rows, method, fraction, name):
    vals = [r[name] for r in rows if r["method"] == method and r["fraction"] == fraction]
    return float(np.mean(vals)) if vals else None


def targets(rows, cfg: CompressConfig) -> dict[str, Any]:
    """The issue's target comparisons, from the per-seed rows (means over seeds; a ratio is the
    ratio of the means). Fractions are the configured ones nearest to 2 %, 4 %, 8 %."""
    fr = sorted(set(cfg.fractions))
    near = lambda x: min(fr, key=lambda f: abs(f - x))  # noqa: E731
    t = cfg.target_fraction
    out: dict[str, Any] = {"target_fraction": t}
    m = lambda meth, f, name: _mean(rows, meth, f, name)  # noqa: E731
    out["lasso_width"] = m("lasso", t, "width")
    out["lasso_accuracy_drop_points"] = m("lasso", t, "accuracy_drop_points")
    if m("magnitude", t, "test_accuracy_after") is not None:
        out["lasso_minus_magnitude_points"] = 100 * (m("lasso", t, "test_accuracy_after")
                                                     - m("magnitude", t, "test_accuracy_after"))

    def ratio(a, b, f, name="max_output_change_train"):
        x, y = m(a, f, name), m(b, f, name)
        return None if x is None or y is None or y == 0 else x / y

    if "magnitude+refit" in cfg.methods and "lasso+refit" in cfg.methods:
        out["change_ratio_vs_magnitude_refit"] = {
            f"{100 * near(x):g}%": ratio("lasso+refit", "magnitude+refit", near(x))
            for x in (0.04, 0.08)}
        f2 = near(0.02)
        out["accuracy_gain_vs_magnitude_refit_points"] = {
            f"{100 * f2:g}%": 100 * (m("lasso+refit", f2, "test_accuracy_after")
                                     - m("magnitude+refit", f2, "test_accuracy_after"))}
        diffs = {f"{100 * f:g}%": 100 * (m("lasso+refit", f, "test_accuracy_after")
                                         - m("magnitude+refit", f, "test_accuracy_after"))
                 for f in fr if f >= 0.04 - 1e-12}
        out["accuracy_diff_vs_magnitude_refit_points_from_4pct"] = diffs
        out["min_accuracy_diff_vs_magnitude_refit_from_4pct"] = min(diffs.values()) if diffs \
            else None
    for ours in ("lasso+refit", "rwlasso+refit"):
        for theirs in ("obs", "obs+refit"):
            if ours in cfg.methods and theirs in cfg.methods:
                out[f"change_ratio_{ours}_vs_{theirs}"] = {
                    f"{100 * f:g}%": ratio(ours, theirs, f) for f in fr}
    return out


def _csv(rows) -> bytes:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys)
    w.writeheader()
    for r in rows:
        w.writerow({k: results.to_jsonable(r.get(k)) for k in keys})
    return buf.getvalue().encode()


def _pm(mean, std, fmt="{:.2f}"):
    if mean is None:
        return "–"
    return fmt.format(mean) + ("" if not std else " ± " + fmt.format(std))


PAPER_STYLE_COLUMNS = ("method", "neurons kept", "test accuracy before → after",
                       "train loss before → after", "largest output change (train / test)")
"""Columns of the paper-style table (:func:`paper_style_rows`)."""
JOINT_COLUMNS = ("method", "widths", "params", "test accuracy after",
                 "accumulated drop (points)", "largest output change (train)")
"""Columns of the joint-compression table (:func:`joint_rows`)."""
BY_WIDTH = {"test_accuracy_after": ("Test accuracy (%) after compression, by kept width", 100,
                                    "{:.1f}"),
            "max_output_change_train": ("Largest change of any output on the training set, by "
                                        "kept width", 1, "{:.3f}")}
"""The by-width tables (:func:`by_width_rows`): metric -> (title, scale, format)."""


def paper_style_rows(table, base, K: int, fraction: float) -> list[list[str]]:
    """Rows of the paper-style table (:data:`PAPER_STYLE_COLUMNS`) at one kept fraction: per
    method the neurons kept, test accuracy (%) and training loss before and after, the largest
    output change; mean ± standard deviation over seeds.

    Args:
      table: the aggregated rows (``metrics["table"]``).
      base: the uncompressed networks' scores per seed (``metrics["base"]``).
      K: the layer's width.
      fraction: the kept fraction of the rows.

    Returns:
      A list of rows of strings, one per method in the table's order.
    """
    acc0 = _stats([b["test_accuracy"] for b in base])
    loss0 = _stats([b["train_loss"] for b in base])
    return [[r["method"], f"{K} → {_pm(r['width'], r['width_std'], '{:.1f}')}",
             f"{_pm(100 * acc0[0], 100 * acc0[1])} → "
             f"{_pm(100 * r['test_accuracy_after'], 100 * r['test_accuracy_after_std'])}",
             f"{_pm(loss0[0], loss0[1], '{:.3f}')} → "
             f"{_pm(r['train_loss_after'], r['train_loss_after_std'], '{:.3f}')}",
             f"{_pm(r['max_output_change_train'], None, '{:.3f}')} / "
             f"{_pm(r['max_output_change_test'], None, '{:.3f}')}"]
            for r in table if r["fraction"] == fraction]


def by_width_rows(table, metric: str, fractions, K: int) -> tuple[list[str], list[list[str]]]:
    """One row per method of ``metric`` (a key of :data:`BY_WIDTH`) at every kept fraction.

    Args:
      table: the aggregated rows (``metrics["table"]``).
      metric: ``"test_accuracy_after"`` (in %) or ``"max_output_change_train"``.
      fractions: the kept fractions (columns), in increasing order.
      K: the layer's width.

    Returns:
      ``(columns, rows)``: columns ``method``, ``"<f>% (<width>)"``; cells mean ± std or ``–``.
    """
    _, scale, fmt = BY_WIDTH[metric]
    get = {(r["method"], r["fraction"]): r for r in table}
    rows = []
    for meth in dict.fromkeys(r["method"] for r in table):
        cells = []
        for f in fractions:
            r = get.get((meth, f))
            cells.append("–" if r is None or r[metric] is None else
                         _pm(scale * r[metric], scale * (r[metric + "_std"] or 0), fmt))
        rows.append([meth, *cells])
    return ["method", *(f"{100 * f:g}% ({_width(f, K)})" for f in fractions)], rows


def joint_rows(joint_table) -> list[list[str]]:
    """Rows of the joint-compression table (:data:`JOINT_COLUMNS`): mean kept widths per layer,
    parameter counts, test accuracy (%) after, the accumulated drop and the largest output change.

    Args:
      joint_table: the aggregated joint rows (``metrics["joint"]``).

    Returns:
      A list of rows of strings, one per method.
    """
    rows = []
    for r in joint_table:
        acc = _pm(100 * r["test_accuracy_after"], 100 * r["test_accuracy_after_std"])
        drop = _pm(r["accuracy_drop_points"], r["accuracy_drop_points_std"])
        change = _pm(r["max_output_change_train"], r["max_output_change_train_std"], "{:.3f}")
        widths = "/".join(f"{w:.1f}".removesuffix(".0") for w in r["widths"])
        rows.append([r["method"], widths, f"{r['params_before']} → {r['params_after']:.0f}", acc,
                     drop, change])
    return rows


def _md(columns, rows) -> list[str]:
    return ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns),
            *("| " + " | ".join(row) + " |" for row in rows)]


def markdown_tables(table, joint_table, base, cfg: CompressConfig, K: int, layer: int,
                    dataset: str) -> str:
    """The Markdown of ``table.md``: the paper-style table at ``target_fraction``, all methods by
    width, and the joint compression."""
    acc0 = _stats([b["test_accuracy"] for b in base])
    lines = [f"## Compression of hidden layer {layer} ({K} neurons), {dataset}, "
             f"{len(base)} seeds, no retraining", "",
             "Paper-style table at the target width (mean ± standard deviation over seeds; "
             "accuracy in %):", "",
             *_md(PAPER_STYLE_COLUMNS, paper_style_rows(table, base, K, cfg.target_fraction))]
    fr = sorted(set(cfg.fractions))
    for metric, (title, _, _) in BY_WIDTH.items():
        base_note = (f"; uncompressed {_pm(100 * acc0[0], 100 * acc0[1])}"
                     if metric == "test_accuracy_after" else "")
        lines += ["", f"{title} (mean ± std over seeds{base_note}):", "",
                  *_md(*by_width_rows(table, metric, fr, K))]
    if joint_table:
        lines += ["", "Hidden layers compressed together (layer by layer, each Phi from the "
                      "compressed network):", "", *_md(JOINT_COLUMNS, joint_rows(joint_table))]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------- job


_VERDICT = ("status", "converged", "collapsed", "rel_change", "fit_ratio")


def _model_for_seed(cfg, ds, i, seed, models_dir):
    """Seed ``i``'s network (trained, or loaded from ``checkpoints[i]``), the training time and
    the training's convergence verdict (from the checkpoint's metadata when it has one)."""
    if cfg.checkpoints:
        path = cfg.checkpoints[i]
        verdict = checkpoint.read_metadata(path).get("convergence")
        return checkpoint.load(path), 0.0, verdict
    t = time.perf_counter()
    model, history = train_classifier(cfg.model, ds, seed)
    seconds = time.perf_counter() - t
    verdict = assess_training(history, ds.n_classes, cfg.convergence)
    if cfg.save_models:
        checkpoint.save(model, models_dir / f"trained_seed{seed}.vvjax",
                        metadata={"seed": seed, "data": results.to_jsonable(cfg.data),
                                  "train": results.to_jsonable(cfg.model),
                                  "convergence": results.to_jsonable(verdict)})
    return model, seconds, verdict


def _body(cfg: CompressConfig, out_dir: Path) -> dict[str, Any]:
    ds = load_data(cfg.data)
    models_dir = out_dir / "models"
    rows, joint_rows, base, timing = [], [], [], {"train_s": 0.0, "compress_s": 0.0}
    layer = K = None
    for i, seed in enumerate(cfg.seeds):
        model, t_train, verdict = _model_for_seed(cfg, ds, i, seed, models_dir)
        timing["train_s"] += t_train
        layer = model_last_hidden(model) if cfg.layer is None else cfg.layer
        K = model.widths[layer + 1]
        status = {"status": None} if verdict is None else verdict  # None: a foreign checkpoint
        base.append({"seed": seed, **status, **classifier_scores(model, ds)})
        t = time.perf_counter()
        seed_rows, out = _sweep_seed(cfg, model, ds, seed, layer, K)
        rows += seed_rows
        if cfg.save_models:
            i_t = cfg.fractions.index(cfg.target_fraction)
            for m in ("lasso", "lasso+refit"):
                if m in out:
                    out[m][i_t].save(models_dir / f"{m.replace('+', '_')}_seed{seed}.vvjax")
        if cfg.joint is not None:
            joint_rows += _joint_seed(cfg, model, ds, seed)
        timing["compress_s"] += time.perf_counter() - t
    table = aggregate(rows)
    joint_table = []
    if joint_rows:
        for rec in aggregate(joint_rows, keys=("method",)):
            first = next(r for r in joint_rows if r["method"] == rec["method"])
            rec.update({k: first[k] for k in ("layers", "fractions", "params_before")})
            rec["widths"] = np.mean([r["widths"] for r in joint_rows
                                     if r["method"] == rec["method"]], axis=0).tolist()
            rec["params_after"] = float(np.mean([r["params_after"] for r in joint_rows
                                                 if r["method"] == rec["method"]]))
            joint_table.append(rec)
    results.atomic_write_bytes(out_dir / "results.csv", _csv(rows + joint_rows))
    results.atomic_write_bytes(out_dir / "table.csv", _csv(table + joint_table))
    md = markdown_tables(table, joint_table, base, cfg, K, layer, ds.name)
    results.atomic_write_bytes(out_dir / "table.md", md.encode())
    figures = []
    if cfg.figures:
        from vvjax.plots import compress as plots

        figures = plots.save_compress_figures(out_dir / "figures", rows, K=K, layer=layer,
                                              dataset=ds.name)
    return {
        "data": ds.name, "layer": layer, "width": K, "base": base,
        "training": {str(b["seed"]): {k: b[k] for k in _VERDICT if k in b} for b in base},
        "flagged_seeds": {str(b["seed"]): b["status"] for b in base if b["status"] != "ok"},
        "targets": targets(rows, cfg), "table": table, "joint": joint_table,
        "timing": timing,
        "files": ["results.csv", "table.csv", "table.md"],
        "figures": [str(Path(f).relative_to(out_dir)) for f in figures],
    }


def run_compress(cfg: CompressConfig, out_dir: str | Path, *,
                 on_start: Callable[[Path], None] | None = None) -> dict[str, Any]:
    """Run (or resume) the compression experiment into ``out_dir``; returns its metrics.

    The whole config is checked first (:func:`vvjax.runs.validate`), and every checkpoint is
    loaded and matched against the data set and the layers, before any work. Writes the files
    of the module docstring and, last, ``metrics.json``: ``base`` (per seed the training's
    convergence ``status`` (:func:`~vvjax.runs.train_classifier.assess_training`; ``None`` for a
    checkpoint without that record), losses, accuracies and active neurons of the uncompressed
    network), ``training`` (seed -> the convergence verdict alone, which
    ``experiments/aggregate.py`` flags), ``flagged_seeds`` (seed -> status for every seed not
    ``"ok"``), ``table`` (means
    and standard deviations over seeds per method and width), ``joint``, ``targets``, ``timing``,
    config, seed, versions and git commit.

    Args:
      cfg: the config.
      out_dir: the job folder.
      on_start: see :func:`vvjax.runs.run_job`.

    Returns:
      The metrics as stored.

    Raises:
      TypeError: ``cfg`` is not a :class:`CompressConfig`.
      ConfigError: before any training or solve, naming the key: an unknown data set or method,
        fractions outside (0, 1), a ``target_fraction`` not among ``fractions``, a layer the
        network does not have (or its output layer), a checkpoint count that does not match
        ``seeds``, a checkpoint that does not load or does not fit the data set, a missing
        CIFAR-10 folder.
      vvjax.results.JobError: ``out_dir`` holds another finished config or is in use.
    """
    if not isinstance(cfg, CompressConfig):
        raise TypeError(f"cfg must be a CompressConfig, got {type(cfg).__name__}")
    cfg = validate(cfg)
    check_data_files(cfg.data)
    _check_checkpoints(cfg)
    return run_job(cfg, out_dir, _body, task="compress", on_start=on_start)
