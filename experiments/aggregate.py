"""Aggregate a sweep: one row per distinct finished config (or per member) -> summary.jsonl / .csv.

    python experiments/aggregate.py multirun/neuron_sharing/2026-11-28_10-00-00.000000

Writes, at the sweep folder's root:

* ``summary.jsonl``: one JSON record per finished config (``job``, every metric as a dotted key,
  ``config.<key>``); a job that records ``members`` (the width sweep's lambda x seed grid) gives
  one record per member instead (:func:`vvjax.results.expand_members`: the job's keys plus the
  member's). Lists stay lists: ``pandas.read_json(path, lines=True)``.
* ``summary.csv``: the same records; list values are JSON text (``"[3, 4, 5]"``;
  ``json.loads`` gives the list), so ``pandas.read_csv(path)`` reads every scalar column as is.
* ``summary_status.json``: the job folders by status: ``finished``, ``duplicates`` (same config
  hash as a kept job; left out of the summary), ``failed`` (with the error), ``unfinished``
  (running, or killed), and ``flagged`` (finished jobs with a run, panel, training or member
  whose ``status`` is not ``"ok"``, e.g. a training run that collapsed to the zero predictor;
  :mod:`vvjax.convergence`; members are named ``member <i>``, a job's own training
  ``training``).
* the experiment's sweep figures, for tasks listed in :data:`FIGURES` (the width sweep's), under
  ``figures/``.

Everything in ``summary_status.json`` except ``finished`` is also printed, by job folder. Exit
status 0 when at least one job finished (1 with ``--strict`` if anything was reported), 2 when
none did.
"""

import argparse
import csv
import io
import json
import sys
from pathlib import Path

from vvjax.results import atomic_write_bytes, expand_members, save_json, scan_sweep

FIGURES = {"width_sweep": ("vvjax.plots.width_sweep", "save_sweep_figures")}
"""task -> (module, function ``f(rows, out_dir) -> [paths]``) drawing a sweep's figures."""


def _csv_cell(v):
    return json.dumps(v) if isinstance(v, (list, dict)) else v


def _flagged(records) -> dict:
    """job -> {run, panel, ``training`` or ``member <i>``: status} for each status not ``"ok"``."""
    flagged = {}
    for r in records:
        bad = {k.removesuffix("status").rstrip(".") or "training": v for k, v in r.items()
               if (k == "status" or k.endswith(".status")) and v not in ("ok", None)}
        for i, m in enumerate(r.get("members") or []):
            if isinstance(m, dict) and m.get("status") not in ("ok", None):
                bad[f"member {i}"] = m["status"]
        if bad:
            flagged[r["job"]] = bad
    return flagged


def sweep_figures(rows, out_dir: Path) -> list[Path]:
    """Draw the :data:`FIGURES` of every task present in ``rows`` into ``out_dir``."""
    import importlib

    paths = []
    for task in sorted({r.get("task") for r in rows if r.get("task") in FIGURES}):
        module, name = FIGURES[task]
        paths += getattr(importlib.import_module(module), name)(
            [r for r in rows if r.get("task") == task], out_dir)
    return paths


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", type=Path, help="the sweep's hydra.sweep.dir")
    parser.add_argument("--no-figures", action="store_true", help="skip the sweep figures")
    parser.add_argument("--strict", action="store_true",
                        help="exit with status 1 if any job is duplicate, failed, unfinished or "
                             "flagged")
    args = parser.parse_args(argv)
    if not args.sweep_dir.is_dir():
        parser.error(f"sweep_dir {args.sweep_dir} is not a directory")
    scan = scan_sweep(args.sweep_dir)
    flagged = _flagged(scan.records)
    status = {"finished": [r["job"] for r in scan.records], "duplicates": scan.duplicates,
              "failed": scan.failed, "unfinished": scan.unfinished, "flagged": flagged}
    save_json(args.sweep_dir / "summary_status.json", status)
    problems = scan.problems() + [
        f"flagged: {job}: " + ", ".join(f"{k} {v}" for k, v in bad.items())
        for job, bad in flagged.items()]
    for line in problems:
        print(line, file=sys.stderr)
    if not scan.records:
        print(f"error: no finished job (metrics.json) under {args.sweep_dir}", file=sys.stderr)
        return 2
    records = expand_members(scan.records)
    lines = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)
    atomic_write_bytes(args.sweep_dir / "summary.jsonl", lines.encode())
    keys = ["job"] + sorted({k for r in records for k in r} - {"job"})
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys)
    writer.writeheader()
    writer.writerows({k: _csv_cell(v) for k, v in r.items()} for r in records)
    atomic_write_bytes(args.sweep_dir / "summary.csv", buf.getvalue().encode())
    figures = [] if args.no_figures else sweep_figures(records, args.sweep_dir / "figures")
    print(f"{len(scan.records)} finished configs, {len(records)} rows -> "
          f"{args.sweep_dir / 'summary.csv'}" + (f", {len(figures)} figures" if figures else "")
          + (f"; {len(problems)} reported above" if problems else ""))
    return 1 if args.strict and problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
