"""The job wrapper every experiment shares: precision, resume, one process per folder, provenance,
timing, failure records and atomic metrics."""

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax

from vvjax import results

__all__ = ["PRECISIONS", "set_precision", "run_job"]

PRECISIONS = ("float32", "float64")

log = logging.getLogger(__name__)


def set_precision(precision: str) -> None:
    """Set ``jax_enable_x64`` from a config's ``precision``
    (every job sets it, so no state leaks)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    jax.config.update("jax_enable_x64", precision == "float64")


def run_job(cfg: Any, out_dir: str | Path, body: Callable[[Any, Path], dict[str, Any]], *,
            task: str, on_start: Callable[[Path], None] | None = None) -> dict[str, Any]:
    """Run ``body(cfg, out_dir) -> metrics`` once per (config, folder) and record it.

    1. If ``out_dir`` holds a finished job with the same config (:func:`vvjax.results.config_hash`)
       its metrics are returned and nothing runs; a finished job with another config raises
       :class:`~vvjax.results.JobExistsError`.
    2. The folder is claimed (:func:`vvjax.results.claim_job`): a folder in use by another live
       process raises :class:`~vvjax.results.JobBusyError`. The resume check is repeated under the
       claim (the other process may just have finished).
    3. ``on_start(out_dir)`` runs (the Hydra entry points write their ``.hydra/`` record here, so
       a refused job cannot overwrite another job's record), then the body.
    4. ``metrics.json`` (the metrics plus task, wall time, start and end times, seed, config, its
       hash, versions and git commit) is written last, atomically, after checking once more that
       no other job finished in the folder meanwhile. If the body raises, ``failed.json`` records
       the error and the exception propagates.

    Args:
      cfg: a validated config dataclass (with a ``precision`` field). out_dir: the job folder.
      body: the work; returns a JSON-ready mapping. task: name stored as ``task``.
      on_start: called once the folder is claimed, before the body.

    Returns:
      The metrics as stored (JSON types).
    """
    out_dir = Path(out_dir)
    chash = results.config_hash(cfg)
    done = results.finished_metrics(out_dir, cfg)
    if done is not None:
        log.info("%s: finished job with this config (hash %s) found; reusing it", out_dir, chash)
        return done
    with results.claim_job(out_dir, chash):
        done = results.finished_metrics(out_dir, cfg)
        if done is not None:
            return done
        started_at = results._now()
        log.info("%s: starting %s job (config hash %s)", out_dir, task, chash)
        try:
            if on_start is not None:
                on_start(out_dir)
            set_precision(cfg.precision)
            start = time.perf_counter()
            metrics = body(cfg, out_dir)
            record = {
                "task": task,
                **metrics,
                "wall_time_s": time.perf_counter() - start,
                "started_at": started_at,
                "finished_at": results._now(),
                "seed": getattr(cfg, "seed", None),
                "config": cfg,
                "config_hash": chash,
                "provenance": results.provenance(),
            }
            if results.finished_metrics(out_dir, cfg) is not None:  # only without a working lock
                raise results.JobExistsError(f"{out_dir}: another job with this config finished "
                                             "here while this one ran; keeping its result")
        except BaseException as exc:
            results.save_failure(out_dir, exc, chash=chash, started_at=started_at)
            log.error("%s: job failed: %s: %s", out_dir, type(exc).__name__, exc)
            raise
        results.save_json(out_dir / results.METRICS_FILE, record)
        (out_dir / results.FAILED_FILE).unlink(missing_ok=True)
        log.info("%s: finished in %.1f s", out_dir, record["wall_time_s"])
    return results.to_jsonable(record)
