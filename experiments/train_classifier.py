"""Train a weight-decayed MLP classifier and save it (the network experiments/compress.py
compresses).

    python experiments/train_classifier.py                          # digits, 64-512-512-10
    python experiments/train_classifier.py preset=mnist1d           # MNIST-1D, generated offline
    python experiments/train_classifier.py preset=cifar10 data.root=/data/cifar-10-batches-py
    python experiments/train_classifier.py -m seed=0,1,2            # three seeds (a Hydra sweep)
"""

import logging
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from vvjax.configs import register_configs
from vvjax.runs import run_train_classifier

register_configs()
logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)  # no "no TPU" notices in logs


@hydra.main(version_base="1.3", config_path="../conf/train_classifier", config_name="config")
def main(dict_cfg: DictConfig) -> float:
    cfg = OmegaConf.to_object(dict_cfg)
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    m = run_train_classifier(cfg, out_dir)
    print(f"[train_classifier] {out_dir}: {m['data']} {m['widths']}, test accuracy "
          f"{100 * m['test_accuracy']:.2f} %, train loss {m['train_loss']:.4f}, active neurons "
          f"{m['n_active']} -> {out_dir / m['checkpoint']}")
    return float(m["test_accuracy"])


if __name__ == "__main__":
    main()
