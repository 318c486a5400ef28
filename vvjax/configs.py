"""Hydra structured-config schemas: the runners' dataclasses, registered in Hydra's ConfigStore.

The YAML files under ``conf/<experiment>/`` hold only choices and diffs on top of these schemas, so
a misspelled key or a wrong type fails at composition time with a message naming the key.
This is the only library module that imports Hydra.
"""

from vvjax.runs.compress import CompressConfig
from vvjax.runs.lasso_bounds import LassoBoundsConfig
from vvjax.runs.neuron_sharing import NeuronSharingConfig
from vvjax.runs.train_classifier import TrainClassifierConfig

__all__ = ["SCHEMAS", "register_configs"]

SCHEMAS = {
    "base_neuron_sharing": NeuronSharingConfig,
    "base_lasso_bounds": LassoBoundsConfig,
    "base_train_classifier": TrainClassifierConfig,
    "base_compress": CompressConfig,
}


def register_configs() -> None:
    """Store every schema under its ``base_<experiment>`` name (use it first in a defaults list)."""
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    for name, schema in SCHEMAS.items():
        cs.store(name=name, node=schema)
