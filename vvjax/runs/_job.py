"""The job wrapper every experiment shares: precision, resume, provenance, timing,
atomic metrics."""

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax

from vvjax import results

__all__ = ["set_precision", "run_job"]

PRECISIONS = ("float32", "float64")


def set_precision(precision: str) -> None:
    """Set ``jax_enable_x64`` from a config's ``precision``
    (every job sets it, so no state leaks)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    jax.config.update("jax_enable_x64", precision == "float64")


def run_job(cfg: Any, out_dir: str | Path, body: Callable[[Any, Path], dict[str, Any]], *,
            task: str) -> dict[str, Any]:
    """Run ``body(cfg, out_dir) -> metrics`` once per (config, folder) and record it.

    If ``out_dir`` already holds a finished job with the same config, its metrics are returned and
    nothing is recomputed; a finished job with another config raises
    :class:`~vvjax.results.JobExistsError`. Otherwise the body runs, and ``metrics.json`` (with the
    config, its hash, seed, wall time, versions and git commit) is written last, atomically.
    """
    out_dir = Path(out_dir)
    done = results.finished_metrics(out_dir, cfg)
    if done is not None:
        return done
    out_dir.mkdir(parents=True, exist_ok=True)
    set_precision(cfg.precision)
    start = time.perf_counter()
    metrics = body(cfg, out_dir)
    record = {
        "task": task,
        **metrics,
        "wall_time_s": time.perf_counter() - start,
        "seed": getattr(cfg, "seed", None),
        "config": cfg,
        "config_hash": results.config_hash(cfg),
        "provenance": results.provenance(),
    }
    results.save_json(out_dir / results.METRICS_FILE, record)
    return results.to_jsonable(record)
