"""Compress trained classifiers without retraining: the certified multi-task lasso against
magnitude, activation, interpolative-decomposition, OBS and merging baselines at equal widths.

    python experiments/compress.py                     # digits MLP 64-512-512-10 (about 2 min)
    python experiments/compress.py preset=mnist1d      # the same table on MNIST-1D
    python experiments/compress.py checkpoints=[run0/model.vvjax,run1/model.vvjax,run2/model.vvjax]
                                                       # compress classifiers trained before
Writes results.csv, table.csv, table.md, figures/ and models/ into the run folder.
"""

import logging
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from vvjax.configs import register_configs
from vvjax.runs import run_compress

register_configs()
logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)  # no "no TPU" notices in logs


@hydra.main(version_base="1.3", config_path="../conf/compress", config_name="config")
def main(dict_cfg: DictConfig) -> float:
    cfg = OmegaConf.to_object(dict_cfg)
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    m = run_compress(cfg, out_dir)
    t = m["targets"]
    print(f"[compress] {out_dir}: {m['data']}, layer {m['layer']} ({m['width']} neurons): lasso "
          f"keeps {t['lasso_width']:.1f} at {100 * t['target_fraction']:g} % with a mean test "
          f"accuracy drop of {t['lasso_accuracy_drop_points']:.2f} points; table: "
          f"{out_dir / 'table.md'}")
    return float(t["lasso_accuracy_drop_points"])


if __name__ == "__main__":
    main()
