"""Compress trained classifiers without retraining: the certified multi-task lasso against
magnitude, activation, interpolative-decomposition, OBS and merging baselines at equal widths
(docs/paper.md §7.5).

    python experiments/compress.py                     # digits MLP 64-512-512-10 (about 1.5 min)
    python experiments/compress.py preset=fast         # 4 widths (vvjax-reproduce's preset)
    python experiments/compress.py preset=mnist1d      # the same table on MNIST-1D
    python experiments/compress.py checkpoints=[run0/model.vvjax,run1/model.vvjax,run2/model.vvjax]
                                                       # compress classifiers trained before
    python experiments/compress.py -m seeds=[0,1,2],[3,4,5]   # a Hydra sweep; re-run it with
                                     # hydra.sweep.dir=<old dir>: only new configs run
Writes results.csv, table.csv, table.md, figures/ and models/ into the run folder.
"""

import logging
import sys

import hydra
import jobs  # experiments/jobs.py: config checks, job records, sweep validation
from omegaconf import DictConfig

from vvjax.configs import register_configs
from vvjax.runs import CompressConfig, run_compress

register_configs()
logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)  # no "no TPU" notices in logs
log = logging.getLogger("compress")


@hydra.main(version_base="1.3", config_path="../conf/compress", config_name="config")
def main(dict_cfg: DictConfig) -> float:
    m = jobs.run(dict_cfg, run_compress)
    t = m["targets"]
    flagged = "".join(f"  [seed {s}: training {st.replace('_', ' ').upper()}]"
                      for s, st in m["flagged_seeds"].items() if st is not None)
    log.info("[compress] %s, layer %d (%d neurons): lasso keeps %.1f at %g %% with a mean test "
             "accuracy drop of %.2f points; table.md in the run folder%s", m["data"], m["layer"],
             m["width"], t["lasso_width"], 100 * t["target_fraction"],
             t["lasso_accuracy_drop_points"], flagged)
    return float(t["lasso_accuracy_drop_points"])


if __name__ == "__main__":
    sys.argv = jobs.accept_integral_floats(CompressConfig, sys.argv)
    main()
