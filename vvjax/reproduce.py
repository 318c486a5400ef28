"""Reproduce every figure of the paper (and vvjax's own beyond it) into one folder, with a report.

    vvjax-reproduce [OUT_DIR] [--full] [--only NAME,...] [--smoke]
    python -m vvjax.reproduce [OUT_DIR] ...

Runs each experiment's jobs (its fast preset, or the paper's sizes with ``--full``) through the
same configs and runners as the Hydra entry points (``conf/<experiment>/``, composed with Hydra's
compose API and checked by :func:`vvjax.configs.to_config`), one folder per job under
``OUT_DIR/<experiment>/<job>``. It prints a line per experiment with the elapsed time and writes
``OUT_DIR/REPORT.md`` and a self-contained ``OUT_DIR/REPORT.html``: each experiment's figures and a
table of our numbers next to the paper's (``docs/paper.md`` §8), every difference explained.

**Sweeps.** A job whose overrides make a multirun (a preset that sets ``hydra.sweeper.params``,
like the width sweep's, or a sweep value ``key=a,b`` among the overrides) runs every point of the
grid that ``python experiments/<conf>.py -m <overrides>`` runs, expanded by Hydra's own basic
sweeper, in process, each point into ``OUT_DIR/<experiment>/<job>/<point>`` (the point named by
its swept values, ``data.n=4,data.d_out=1,data.kind=teacher``); then
``experiments/aggregate.py`` aggregates ``OUT_DIR/<experiment>/<job>`` exactly as at the end of a
multirun (``summary.csv``, ``summary.jsonl``, ``summary_status.json`` and the sweep figures).

Resumable: rerunning into the same ``OUT_DIR`` redoes only unfinished jobs (a finished job with the
same config returns its stored metrics; :mod:`vvjax.results`). The default ``OUT_DIR`` is
``outputs/reproduce/<date>_<time>``. ``--smoke`` runs each experiment's smoke jobs (its jobs, or
smaller grids for sweeps) with the ``debug=smoke`` preset (seconds; for tests).

The configs live in the repository's ``conf/`` folder: run from a checkout (``pip install -e .``).
"""

import argparse
import contextlib
import importlib
import importlib.util
import io
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from vvjax import results
from vvjax.report import JobResult, write_report

__all__ = ["Experiment", "EXPERIMENTS", "conf_dir", "expand_sweep", "run", "main"]


@dataclass(frozen=True)
class Experiment:
    """One experiment of the report.

    Attributes:
      name: its name in the report, ``--only`` and ``OUT_DIR/<name>``; also the config folder
        ``conf/<name>`` and schema ``base_<name>`` unless ``conf`` is given.
      runner: ``"module:function"`` of its runner ``(cfg, out_dir) -> metrics``.
      jobs: ``label -> overrides`` of the fast run (a multirun's overrides make a sweep: module
        docstring); ``full_jobs`` those of ``--full`` and ``smoke_jobs`` those of ``--smoke``
        (``debug=smoke`` is added to them; default for both: ``jobs``).
      report: module with ``section(jobs, *, full, smoke) -> Section``; a sweep's jobs reach it
        labelled ``"<label>/<point>"`` (:func:`vvjax.report.sweep_groups`).
      conf: the config folder ``conf/<conf>`` when it is not ``name`` (several experiments of one
        entry point, e.g. the activation study of the width sweep).
    """

    name: str
    runner: str
    jobs: dict[str, list[str]]
    report: str
    full_jobs: dict[str, list[str]] = field(default_factory=dict)
    smoke_jobs: dict[str, list[str]] = field(default_factory=dict)
    conf: str = ""

    @property
    def conf_name(self) -> str:
        """The config folder under ``conf/`` (``conf`` or ``name``)."""
        return self.conf or self.name

    def job_set(self, *, full: bool = False, smoke: bool = False) -> dict[str, list[str]]:
        """``label -> overrides`` of a run (``smoke`` wins over ``full``; ``debug=smoke`` not
        added)."""
        if smoke:
            return self.smoke_jobs or self.jobs
        return (self.full_jobs or self.jobs) if full else self.jobs


_WIDTHS = "vvjax.runs.width_sweep:run_width_sweep"
_SMOKE_LASSO = "lasso_max_iter=200"  # smoke members are far from converged: cap the re-solves

EXPERIMENTS: list[Experiment] = [
    Experiment("neuron_sharing", "vvjax.runs.neuron_sharing:run_neuron_sharing",
               {"paper": ["preset=default"]}, "vvjax.reports.neuron_sharing"),
    Experiment("lasso_bounds", "vvjax.runs.lasso_bounds:run_lasso_bounds",
               {"random": ["preset=random"], "rank": ["preset=rank"],
                "bruteforce": ["preset=bruteforce"]}, "vvjax.reports.lasso_bounds",
               full_jobs={"random": ["preset=random"], "rank": ["preset=rank"],
                          "bruteforce": ["preset=bruteforce_paper"]}),
    Experiment("width_sweep", _WIDTHS,
               {"fast": ["preset=fast"],
                "linnerud": ["preset=linnerud", "lams=[1.0e-3,1.0e-2]", "seeds=[0,1]"]},
               "vvjax.reports.width_sweep",
               full_jobs={"default": ["preset=default"], "full": ["preset=full"],
                          "linnerud": ["preset=linnerud"]},
               smoke_jobs={"fast": ["preset=fast", "data.n=4", "data.d_out=1,2",
                                    "data.kind=teacher", _SMOKE_LASSO],
                           "linnerud": ["preset=linnerud", _SMOKE_LASSO]}),
    Experiment("m1_contrast", _WIDTHS, {"m1": ["preset=m1"]}, "vvjax.reports.m1_contrast",
               smoke_jobs={"m1": ["preset=m1", "data.d_out=2", _SMOKE_LASSO]},
               conf="width_sweep"),
    Experiment("activations", _WIDTHS,
               {"activations": ["preset=activations", "lams=[1.0e-2,3.0e-2]"]},
               "vvjax.reports.activations", full_jobs={"activations": ["preset=activations"]},
               smoke_jobs={"activations": ["preset=activations", "activation=relu,gelu",
                                           _SMOKE_LASSO]},
               conf="width_sweep"),
    Experiment("deep_widths", "vvjax.runs.deep_widths:run_deep_widths",
               {"teacher": ["preset=default"], "digits": ["preset=digits"]},
               "vvjax.reports.deep_widths",
               full_jobs={"teacher": ["preset=default"], "random": ["preset=random"],
                          "digits": ["preset=digits"]},
               smoke_jobs={"teacher": ["preset=default"]}),
    Experiment("compress", "vvjax.runs.compress:run_compress", {"digits": ["preset=fast"]},
               "vvjax.reports.compress",
               full_jobs={"digits": ["preset=digits"], "mnist1d": ["preset=mnist1d"]}),
]
"""The experiments in report order."""


def conf_dir() -> Path:
    """The repository's ``conf/`` folder.

    Raises:
      FileNotFoundError: vvjax is not installed from a checkout (``pip install -e .``).
    """
    path = Path(__file__).resolve().parent.parent / "conf"
    if not path.is_dir():
        raise FileNotFoundError(f"{path} not found: vvjax-reproduce needs the repository's conf/ "
                                "folder; install vvjax from a checkout with pip install -e .")
    return path


def _load(ref: str):
    module, _, attr = ref.partition(":")
    mod = importlib.import_module(module)
    return getattr(mod, attr) if attr else mod


def _compose(conf: str, overrides: Sequence[str]):
    from hydra import compose, initialize_config_dir

    from vvjax.configs import register_configs, to_config

    register_configs()
    with initialize_config_dir(str(conf_dir() / conf), version_base="1.3"):
        return to_config(compose("config", overrides=list(overrides)))


def expand_sweep(conf: str, overrides: Sequence[str]) -> list[tuple[str, list[str]]] | None:
    """The grid of ``python experiments/<conf>.py -m <overrides>``, or ``None`` if it is one job.

    The preset's ``hydra.sweeper.params`` come first and the ``overrides`` after them (a key
    given in both takes the override's values), expanded by Hydra's basic sweeper as a multirun
    expands them.

    Args:
      conf: the config folder under ``conf/``. overrides: Hydra overrides (``key=a,b`` sweeps).

    Returns:
      ``[(point name, overrides of the point), ...]`` in the sweeper's order; the name joins the
      overrides of the keys whose value varies over the grid (``data.n=4,data.kind=teacher``).

    Raises:
      hydra.errors.HydraException and subclasses (composition), vvjax.runs.ConfigError: a bad
        override.
    """
    from hydra import compose, initialize_config_dir
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    from vvjax.configs import register_configs

    register_configs()
    parser = OverridesParser.create()
    parsed = parser.parse_overrides(list(overrides))
    plain = [o.input_line for o in parsed if not o.is_sweep_override()]
    with initialize_config_dir(str(conf_dir() / conf), version_base="1.3"):
        hydra_cfg = compose("config", overrides=plain, return_hydra_config=True).hydra
        params = hydra_cfg.sweeper.get("params")
        params = {} if params is None else OmegaConf.to_container(params, resolve=False)
    if not params and len(plain) == len(parsed):
        return None
    args = [f"{k}={v}" for k, v in params.items()] + list(overrides)
    points = [list(p) for batch in BasicSweeper.split_arguments(parser.parse_overrides(args),
                                                                 None) for p in batch]
    keys = [o.split("=", 1)[0] for o in points[0]]
    varying = {k for i, k in enumerate(keys) if len({p[i] for p in points}) > 1}
    swept = varying or {o.key_or_group for o in parser.parse_overrides(args)
                        if o.is_sweep_override()} or set(params)
    return [(",".join(o for o in p if o.split("=", 1)[0] in swept), p) for p in points]


def _aggregate(sweep_dir: Path) -> int:
    """``experiments/aggregate.py SWEEP_DIR`` (what ends a Hydra multirun), its output kept out of
    the progress lines (``summary_status.json`` holds what it prints); returns its exit status."""
    path = conf_dir().parent / "experiments" / "aggregate.py"
    spec = importlib.util.spec_from_file_location("_vvjax_aggregate", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return module.main([str(sweep_dir)])


def run(out_dir: str | Path, *, full: bool = False, only: Sequence[str] | None = None,
        smoke: bool = False, log=print) -> list:
    """Run (or resume) the experiments into ``out_dir`` and write the report.

    Args:
      out_dir: the folder (created).
      full: the paper's sizes instead of the fast presets.
      only: names of the experiments to run, a sequence or a comma-separated string (default:
        all of :data:`EXPERIMENTS`).
      smoke: each experiment's smoke jobs with ``debug=smoke`` (seconds per experiment; tests).
      log: where progress lines go.

    Returns:
      The report's sections.

    Raises:
      ValueError: an unknown name in ``only``.
      vvjax.runs.ConfigError, vvjax.results.JobError: a bad config, or a job folder in use by
        another process or holding another finished job (both checked for every job before any
        work, except a folder claimed after the check).
    """
    names = [e.name for e in EXPERIMENTS]
    if isinstance(only, str):
        only = only.split(",")
    only = list(only) if only else names
    unknown = sorted(set(only) - set(names))
    if unknown:
        raise ValueError(f"only: unknown experiment(s) {unknown}; expected some of {names}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    chosen = [e for e in EXPERIMENTS if e.name in only]
    debug = ["debug=smoke"] if smoke else []
    # compose and check every job's config before any work
    plan: dict[str, list[tuple[str, Path, Any, bool]]] = {}  # name -> (label, folder, cfg, sweep)
    for exp in chosen:
        plan[exp.name] = []
        for label, overrides in exp.job_set(full=full, smoke=smoke).items():
            grid = expand_sweep(exp.conf_name, [*overrides, *debug])
            if grid is None:
                cfg = _compose(exp.conf_name, [*overrides, *debug])
                plan[exp.name].append((label, out_dir / exp.name / label, cfg, False))
                continue
            for point, point_overrides in grid:
                cfg = _compose(exp.conf_name, point_overrides)
                plan[exp.name].append((f"{label}/{point}", out_dir / exp.name / label / point,
                                       cfg, True))
    for exp in chosen:  # a folder holding another finished config: refused before any work
        for _, folder, cfg, _ in plan[exp.name]:
            results.finished_metrics(folder, cfg)
    sections, start_all = [], time.perf_counter()
    for i, exp in enumerate(chosen, 1):
        runner, start = _load(exp.runner), time.perf_counter()
        done, sweeps = [], {}
        for label, folder, cfg, sweep in plan[exp.name]:
            resumed = (folder / "metrics.json").is_file()
            metrics = runner(cfg, folder)
            done.append((JobResult(label, folder, metrics), resumed))
            if sweep:
                sweeps[folder.parent] = None
        for sweep_dir in sweeps:
            if _aggregate(sweep_dir) != 0:
                log(f"warning: aggregating {sweep_dir} found no finished job; see "
                    f"{sweep_dir / 'summary_status.json'}")
        n_res = sum(r for _, r in done)
        now = time.perf_counter()
        log(f"[{i}/{len(chosen)}] {exp.name}: {len(done)} job(s)"
            + (f", {n_res} already finished" if n_res else "")
            + f" in {now - start:.1f} s (total {now - start_all:.0f} s)")
        sections.append(_load(exp.report).section([j for j, _ in done], full=full, smoke=smoke))
    stamp = datetime.now().strftime("%Y-%m-%d %H:%M")
    mode = "full (the paper's sizes)" if full else "fast presets" + (" (smoke)" if smoke else "")
    md, page = write_report(sections, out_dir, title="vvjax: reproduction report", preamble=[
        f"Generated by `vvjax-reproduce` on {stamp}, {mode}. Each section compares vvjax's numbers "
        "with the paper's (docs/paper.md §8) and explains every difference; each job's folder "
        "holds its `metrics.json` (config, seed, versions, git commit), arrays and figures."])
    log(f"report: {md} and {page} ({time.perf_counter() - start_all:.0f} s)")
    return sections


def main(argv: Sequence[str] | None = None) -> int:
    """The ``vvjax-reproduce`` command (see the module docstring); returns the exit status."""
    ap = argparse.ArgumentParser(prog="vvjax-reproduce", description=__doc__.splitlines()[0])
    ap.add_argument("out_dir", nargs="?", type=Path,
                    default=Path("outputs/reproduce") / datetime.now().strftime(
                        "%Y-%m-%d_%H-%M-%S"),
                    help="output folder; rerun into it to resume (default: a new dated folder)")
    ap.add_argument("--full", action="store_true", help="the paper's sizes (slower)")
    ap.add_argument("--only", default=None,
                    help=f"comma-separated subset of {[e.name for e in EXPERIMENTS]}")
    ap.add_argument("--smoke", action="store_true", help="tiny runs (tests)")
    args = ap.parse_args(argv)
    import logging

    logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)
    from vvjax.results import JobError

    try:
        run(args.out_dir, full=args.full, only=args.only.split(",") if args.only else None,
            smoke=args.smoke)
    except (ValueError, FileNotFoundError, JobError) as exc:  # ConfigError is a ValueError
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
