"""Reproduce every figure of the paper (and vvjax's own beyond it) into one folder, with a report.

    vvjax-reproduce [OUT_DIR] [--full] [--only NAME,...] [--smoke]
    python -m vvjax.reproduce [OUT_DIR] ...

Runs each experiment's jobs (its fast preset, or the paper's sizes with ``--full``) through the
same configs and runners as the Hydra entry points (``conf/<experiment>/``, composed with Hydra's
compose API and checked by :func:`vvjax.configs.to_config`), one folder per job under
``OUT_DIR/<experiment>/<job>``. It prints a line per experiment with the elapsed time and writes
``OUT_DIR/REPORT.md`` and a self-contained ``OUT_DIR/REPORT.html``: each experiment's figures and a
table of our numbers next to the paper's (``docs/paper.md`` §8), every difference explained.

Resumable: rerunning into the same ``OUT_DIR`` redoes only unfinished jobs (a finished job with the
same config returns its stored metrics; :mod:`vvjax.results`). The default ``OUT_DIR`` is
``outputs/reproduce/<date>_<time>``. ``--smoke`` adds each experiment's ``debug=smoke`` preset
(seconds; for tests).

The configs live in the repository's ``conf/`` folder: run from a checkout (``pip install -e .``).
"""

import argparse
import importlib
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from vvjax.report import JobResult, write_report

__all__ = ["Experiment", "EXPERIMENTS", "conf_dir", "run", "main"]


@dataclass(frozen=True)
class Experiment:
    """One experiment of the report.

    Attributes:
      name: config folder ``conf/<name>`` and schema ``base_<name>``.
      runner: ``"module:function"`` of its runner ``(cfg, out_dir) -> metrics``.
      jobs: ``label -> overrides`` of the fast run; ``full_jobs`` those of ``--full`` (default:
        the same).
      report: module with ``section(jobs, *, full, smoke) -> Section``.
    """

    name: str
    runner: str
    jobs: dict[str, list[str]]
    report: str
    full_jobs: dict[str, list[str]] = field(default_factory=dict)


EXPERIMENTS: list[Experiment] = [
    Experiment("neuron_sharing", "vvjax.runs.neuron_sharing:run_neuron_sharing",
               {"paper": ["preset=default"]}, "vvjax.reports.neuron_sharing"),
    Experiment("lasso_bounds", "vvjax.runs.lasso_bounds:run_lasso_bounds",
               {"random": ["preset=random"], "rank": ["preset=rank"],
                "bruteforce": ["preset=bruteforce"]}, "vvjax.reports.lasso_bounds",
               full_jobs={"random": ["preset=random"], "rank": ["preset=rank"],
                          "bruteforce": ["preset=bruteforce_paper"]}),
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


def _compose(exp: str, overrides: Sequence[str]):
    from hydra import compose, initialize_config_dir

    from vvjax.configs import register_configs, to_config

    register_configs()
    with initialize_config_dir(str(conf_dir() / exp), version_base="1.3"):
        return to_config(compose("config", overrides=list(overrides)))


def run(out_dir: str | Path, *, full: bool = False, only: Sequence[str] | None = None,
        smoke: bool = False, log=print) -> list:
    """Run (or resume) the experiments into ``out_dir`` and write the report.

    Args:
      out_dir: the folder (created).
      full: the paper's sizes instead of the fast presets.
      only: names of the experiments to run (default: all of :data:`EXPERIMENTS`).
      smoke: add ``debug=smoke`` to every job (seconds per experiment; for tests).
      log: where progress lines go.

    Returns:
      The report's sections.

    Raises:
      ValueError: an unknown name in ``only``.
      vvjax.runs.ConfigError, vvjax.results.JobError: a bad config, or a job folder in use by
        another process or holding another finished job.
    """
    names = [e.name for e in EXPERIMENTS]
    only = list(only) if only else names
    unknown = sorted(set(only) - set(names))
    if unknown:
        raise ValueError(f"only: unknown experiment(s) {unknown}; expected some of {names}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    chosen = [e for e in EXPERIMENTS if e.name in only]
    # compose and check every job's config before any work
    plan = []
    for exp in chosen:
        jobs = (exp.full_jobs or exp.jobs) if full else exp.jobs
        for label, overrides in jobs.items():
            cfg = _compose(exp.name, [*overrides, *(["debug=smoke"] if smoke else [])])
            plan.append((exp, label, cfg))
    sections, start_all = [], time.perf_counter()
    for i, exp in enumerate(chosen, 1):
        runner, start = _load(exp.runner), time.perf_counter()
        done = []
        for e, label, cfg in plan:
            if e is not exp:
                continue
            folder = out_dir / exp.name / label
            resumed = (folder / "metrics.json").is_file()
            metrics = runner(cfg, folder)
            done.append((JobResult(label, folder, metrics), resumed))
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
