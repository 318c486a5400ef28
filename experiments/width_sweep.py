"""Learned widths against the bounds (issue 9): Hydra sweeps over N, D, data kind and penalty;
inside each job the lambda x seed grid trains as one vmapped fit_batch.

    python experiments/width_sweep.py -m                       # the default sweep (24 jobs)
    python experiments/width_sweep.py -m preset=full           # N up to 32, D up to 16
    python experiments/width_sweep.py preset=linnerud          # the real multi-output set
    python experiments/width_sweep.py -m preset=m1             # VV against ||.||_{M,1}
    python experiments/width_sweep.py -m preset=activations    # the activation study
    python experiments/width_sweep.py -m hydra/launcher=parallel   # jobs in parallel processes
    python experiments/width_sweep.py -m hydra/launcher=slurm  # one Slurm job per sweep job
    python experiments/width_sweep.py -m hydra.sweep.dir=<old sweep>   # resume: only unfinished
                                                               # or new configs run

When a multirun ends, experiments/aggregate.py writes summary.csv / summary.jsonl (one row per
job, lambda and seed) and the sweep figures into the sweep folder.
"""

import logging
import sys

import hydra
import jobs  # experiments/jobs.py: config checks, job records, sweep validation, aggregation
from omegaconf import DictConfig

from vvjax.configs import register_configs
from vvjax.runs import WidthSweepConfig, run_width_sweep

register_configs()
logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)  # no "no TPU" notices in logs
log = logging.getLogger("width_sweep")


@hydra.main(version_base="1.3", config_path="../conf/width_sweep", config_name="config")
def main(dict_cfg: DictConfig) -> float:
    m = jobs.run(dict_cfg, run_width_sweep)
    s = m["summary"]["n_active"]
    log.info("[width_sweep] %s N=%d D=%d %s/%s: width %d; %d/%d members ok; learned width "
             "(median over ok) %s, bound min(N^2, ND) = %d; %d learned above their rank bound, "
             "%d certified above it", m["kind"], m["n"], m["d_out"], m["regularizer"],
             m["activation"], m["width"], m["n_ok"], m["n_members"],
             "n/a" if s is None else f"{s['median']:g}", m["representer_bound_sharp"],
             m["n_learned_above_rank_bound"], m["n_certified_above_rank_bound"])
    return float("nan") if s is None else float(s["median"])


if __name__ == "__main__":
    sys.argv = jobs.accept_integral_floats(WidthSweepConfig, sys.argv)
    main()
