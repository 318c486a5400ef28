"""Layer widths of deep networks trained with weight decay against the deep width bound (issue 9,
item 2): per hidden layer, learned width, rank(Phi) rank(Psi), N^2 and the certified width.

    python experiments/deep_widths.py                         # teacher data, depths 2, 3, 4
    python experiments/deep_widths.py -m data.kind=teacher,random   # two jobs
    python experiments/deep_widths.py preset=digits           # 8x8 digits (cross-entropy)
"""

import logging
import sys

import hydra
import jobs  # experiments/jobs.py: config checks, job records, sweep validation, aggregation
from omegaconf import DictConfig

from vvjax.configs import register_configs
from vvjax.runs import DeepWidthsConfig, run_deep_widths

register_configs()
logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)  # no "no TPU" notices in logs
log = logging.getLogger("deep_widths")


@hydra.main(version_base="1.3", config_path="../conf/deep_widths", config_name="config")
def main(dict_cfg: DictConfig) -> float:
    m = jobs.run(dict_cfg, run_deep_widths)
    for r in m["members"]:
        log.info("[deep_widths] %s depth %d lam %.1e seed %d (%s): learned %s, certified %s, "
                 "rank bound %s, N^2 = %d", m["kind"], r["depth"], r["lam"], r["init_seed"],
                 r["status"], r["n_active"], r["certified_width"], r["rank_bound"],
                 m["representer_bound"])
    return float(m["n_ok"])


if __name__ == "__main__":
    sys.argv = jobs.accept_integral_floats(DeepWidthsConfig, sys.argv)
    main()
