"""Aggregate a Hydra sweep: one row per finished job -> summary.jsonl and summary.csv at its root.

    python experiments/aggregate.py multirun/neuron_sharing/2026-11-28_10-00-00.000000
"""

import argparse
import csv
import io
import json
from pathlib import Path

from vvjax.results import atomic_write_bytes, load_sweep


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", type=Path, help="the sweep's hydra.sweep.dir")
    args = parser.parse_args(argv)
    if not args.sweep_dir.is_dir():
        parser.error(f"sweep_dir {args.sweep_dir} is not a directory")
    records = load_sweep(args.sweep_dir)
    if not records:
        parser.error(f"no finished job (metrics.json) under {args.sweep_dir}")
    lines = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)
    atomic_write_bytes(args.sweep_dir / "summary.jsonl", lines.encode())
    keys = sorted({k for r in records for k in r})
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys)
    writer.writeheader()
    writer.writerows(records)
    atomic_write_bytes(args.sweep_dir / "summary.csv", buf.getvalue().encode())
    print(f"{len(records)} finished jobs -> {args.sweep_dir / 'summary.csv'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
