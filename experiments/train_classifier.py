"""Train a weight-decayed MLP classifier and save it (the network experiments/compress.py
compresses; docs/paper.md §7.5).

    python experiments/train_classifier.py                          # digits, 64-512-512-10
    python experiments/train_classifier.py preset=mnist1d           # MNIST-1D, generated offline
    python experiments/train_classifier.py preset=cifar10 data.root=/data/cifar-10-batches-py
    python experiments/train_classifier.py -m seed=0,1,2            # three seeds (a Hydra sweep;
                                     # re-run it with hydra.sweep.dir=<old dir> to resume)
"""

import logging
import sys

import hydra
import jobs  # experiments/jobs.py: config checks, job records, sweep validation
from omegaconf import DictConfig

from vvjax.configs import register_configs
from vvjax.runs import TrainClassifierConfig, run_train_classifier

register_configs()
logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)  # no "no TPU" notices in logs
log = logging.getLogger("train_classifier")


@hydra.main(version_base="1.3", config_path="../conf/train_classifier", config_name="config")
def main(dict_cfg: DictConfig) -> float:
    m = jobs.run(dict_cfg, run_train_classifier)
    flag = "" if m["status"] == "ok" else (
        f"  [{m['status'].replace('_', ' ').upper()}: rel. change {float(m['rel_change']):.2g}, "
        f"data fit {float(m['fit_ratio']):.3g} x the zero predictor's]")
    log.info("[train_classifier] %s %s, test accuracy %.2f %%, train loss %.4f, active neurons "
             "%s, training %s -> %s%s", m["data"], m["widths"], 100 * m["test_accuracy"],
             m["train_loss"], m["n_active"], m["status"], m["checkpoint"], flag)
    return float(m["test_accuracy"])


if __name__ == "__main__":
    sys.argv = jobs.accept_integral_floats(TrainClassifierConfig, sys.argv)
    main()
