"""Neuron-sharing experiment (PAPER.md Sec. 5.1):
weight decay makes a 2-output network share neurons.

    python experiments/neuron_sharing.py                  # the paper's exact run (1e6 steps)
    python experiments/neuron_sharing.py preset=jax       # JAX-drawn data and init, 400k steps
    python experiments/neuron_sharing.py -m preset=jax seed=1,2,3   # a Hydra sweep (re-run it
                                                  # with hydra.sweep.dir=<old dir> to resume)
"""

import logging
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from vvjax.configs import register_configs
from vvjax.runs import run_neuron_sharing

register_configs()
logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)  # no "no TPU" notices in logs


@hydra.main(version_base="1.3", config_path="../conf/neuron_sharing", config_name="config")
def main(dict_cfg: DictConfig) -> float:
    cfg = OmegaConf.to_object(dict_cfg)
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    metrics = run_neuron_sharing(cfg, out_dir)
    wd = metrics["runs"].get("weight_decay", {})
    print(f"[neuron_sharing] {out_dir}: " + ", ".join(
        f"{name}: {r['n_active']}/{r['width']} active, {r['n_shared']} shared, mse {r['mse']:.3g}"
        for name, r in metrics["runs"].items()))
    return float(wd.get("n_active", float("nan")))


if __name__ == "__main__":
    main()
