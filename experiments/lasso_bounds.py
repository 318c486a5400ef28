"""Multi-task-lasso sparsity histograms (docs/paper.md §7.2-7.4): counts within the rank bounds.

    python experiments/lasso_bounds.py                     # Fig. 3 (random data)
    python experiments/lasso_bounds.py preset=rank         # Fig. 4 (rank-constrained)
    python experiments/lasso_bounds.py preset=bruteforce   # Fig. 5 (sparsest solutions, 50 trials)
    python experiments/lasso_bounds.py preset=bruteforce_paper   # Fig. 5 with the paper's 1000
    python experiments/lasso_bounds.py -m preset=random,rank,bruteforce   # all three as a sweep
                                         # (re-run it with hydra.sweep.dir=<old dir> to resume)
"""

import logging
import sys

import hydra
import jobs  # experiments/jobs.py: config checks, job records, sweep validation
from omegaconf import DictConfig

from vvjax.configs import register_configs
from vvjax.runs import LassoBoundsConfig, run_lasso_bounds

register_configs()
logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)  # no "no TPU" notices in logs
log = logging.getLogger("lasso_bounds")


@hydra.main(version_base="1.3", config_path="../conf/lasso_bounds", config_name="config")
def main(dict_cfg: DictConfig) -> float:
    metrics = jobs.run(dict_cfg, run_lasso_bounds)
    log.info(f"[lasso_bounds:{metrics['figure']}] " + "; ".join(
        f"{name}: solver {p['solver']['min']}-{p['solver']['max']}, sparsified "
        f"{p['sparsified']['min']}-{p['sparsified']['max']}"
        + (f", sparsest {p['sparsest']['min']}-{p['sparsest']['max']}" if "sparsest" in p else "")
        + f" in [{p['lower_bound']}, {p['upper_bound']}]"
        for name, p in metrics["panels"].items()))
    return float(metrics["frac_within_bounds"])


if __name__ == "__main__":
    sys.argv = jobs.accept_integral_floats(LassoBoundsConfig, sys.argv)
    main()
