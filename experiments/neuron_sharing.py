"""Neuron-sharing experiment (docs/paper.md §7.1):
weight decay makes a 2-output network share neurons.

    python experiments/neuron_sharing.py                  # the paper's exact run (1e6 steps)
    python experiments/neuron_sharing.py preset=jax       # JAX-drawn data and init, 400k steps
    python experiments/neuron_sharing.py -m preset=jax seed=1,2,3   # a Hydra sweep; re-run it
                    # (or with more values) with hydra.sweep.dir=<old dir>: only new configs run
"""

import logging
import sys

import hydra
import jobs  # experiments/jobs.py: config checks, job records, sweep validation
from omegaconf import DictConfig

from vvjax.configs import register_configs
from vvjax.runs import NeuronSharingConfig, run_neuron_sharing

register_configs()
logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)  # no "no TPU" notices in logs
log = logging.getLogger("neuron_sharing")


@hydra.main(version_base="1.3", config_path="../conf/neuron_sharing", config_name="config")
def main(dict_cfg: DictConfig) -> float:
    metrics = jobs.run(dict_cfg, run_neuron_sharing)
    for name, r in metrics["runs"].items():
        status = r["status"].replace("_", " ").upper()
        flag = "" if r["status"] == "ok" else (
            f"  [{status}: rel. change {float(r['rel_change']):.2g}, data fit "
            f"{float(r['fit_ratio']):.3g} x the zero predictor's; not a learned width]")
        log.info("[neuron_sharing] %s: %d/%d active, %d shared, mse %.3g%s", name, r["n_active"],
                 r["width"], r["n_shared"], r["mse"], flag)
    wd = metrics["runs"].get("weight_decay", {})
    return float(wd["n_active"]) if wd.get("status") == "ok" else float("nan")


if __name__ == "__main__":
    sys.argv = jobs.accept_integral_floats(NeuronSharingConfig, sys.argv)
    main()
