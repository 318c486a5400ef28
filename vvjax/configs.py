"""Hydra structured-config schemas: the runners' dataclasses, registered in Hydra's ConfigStore.

The YAML files under ``conf/<experiment>/`` hold only choices and diffs on top of these schemas, so
a misspelled key or a wrong type fails at composition time with a message naming the key. Keys
added with ``+key=...`` or ``++key=...`` pass composition; :func:`to_config` (the entry points
call it, and every runner repeats its check) rejects them by name before any work.

A sweep's job folders are named by :func:`job_id`, the config hash of the job's validated config
(``hydra.sweep.subdir: ${vvjax_job_id:<experiment>}``): the same config always lands in the same
folder, so adding values to a finished sweep runs only the new configs.

This is the only library module that imports Hydra (in :func:`register_configs`) or OmegaConf.
"""

from typing import Any

from vvjax import results
from vvjax._config import ConfigError, validate
from vvjax.runs.compress import CompressConfig
from vvjax.runs.deep_widths import DeepWidthsConfig
from vvjax.runs.lasso_bounds import LassoBoundsConfig
from vvjax.runs.neuron_sharing import NeuronSharingConfig
from vvjax.runs.train_classifier import TrainClassifierConfig
from vvjax.runs.width_sweep import WidthSweepConfig

__all__ = ["SCHEMAS", "register_configs", "to_config", "job_id"]

SCHEMAS = {
    "base_neuron_sharing": NeuronSharingConfig,
    "base_lasso_bounds": LassoBoundsConfig,
    "base_width_sweep": WidthSweepConfig,
    "base_deep_widths": DeepWidthsConfig,
    "base_train_classifier": TrainClassifierConfig,
    "base_compress": CompressConfig,
}


def register_configs() -> None:
    """Store every schema under its ``base_<experiment>`` name (use it first in a defaults list)
    and register the ``vvjax_job_id`` resolver (:func:`job_id`)."""
    from hydra.core.config_store import ConfigStore
    from omegaconf import OmegaConf

    cs = ConfigStore.instance()
    for name, schema in SCHEMAS.items():
        cs.store(name=name, node=schema)
    OmegaConf.register_new_resolver("vvjax_job_id", _job_id_resolver, replace=True)


def to_config(dict_cfg: Any, experiment: str | None = None) -> Any:
    """A composed config (OmegaConf ``DictConfig`` or plain mapping) as its checked dataclass.

    Args:
      dict_cfg: the composed config; a top-level ``hydra`` node is ignored.
      experiment: a key of :data:`SCHEMAS` without ``base_`` (``"neuron_sharing"``,
        ``"width_sweep"``, ...); needed only when ``dict_cfg`` is not
        already typed by its schema (a plain mapping).

    Returns:
      The validated, normalized dataclass (:func:`vvjax.runs.validate`).

    Raises:
      vvjax.runs.ConfigError: an unknown key (also one added with ``+``/``++``), a wrong type or
        a bad value, named by its dotted key.
    """
    from omegaconf import DictConfig, OmegaConf, open_dict
    from omegaconf.errors import ConfigKeyError, ValidationError

    if isinstance(dict_cfg, DictConfig) and "hydra" in dict_cfg:
        dict_cfg = dict_cfg.copy()
        with open_dict(dict_cfg):
            del dict_cfg["hydra"]
    schema = SCHEMAS.get(f"base_{experiment}") if experiment is not None else None
    if experiment is not None and schema is None:
        raise ValueError(f"experiment must be one of {[k[5:] for k in SCHEMAS]}, "
                         f"got {experiment!r}")
    if not isinstance(dict_cfg, DictConfig) or OmegaConf.get_type(dict_cfg) is dict:
        if schema is None:
            raise ValueError("dict_cfg is not typed by a schema: pass experiment=")
        try:
            dict_cfg = OmegaConf.merge(OmegaConf.structured(schema), dict_cfg)
        except ConfigKeyError as exc:
            raise ConfigError(f"unknown config key {exc.full_key!r}: {exc.msg.splitlines()[0]}; "
                              "misspelled, or added with + / ++?") from None
        except ValidationError as exc:
            raise ConfigError(f"{exc.full_key}: {exc.msg.splitlines()[0]}") from None
    return validate(OmegaConf.to_object(dict_cfg))


def job_id(dict_cfg: Any, experiment: str) -> str:
    """The folder name of a sweep job: the config hash (:func:`vvjax.results.config_hash`) of the
    job's validated config, 16 hex digits, equal to ``config_hash`` in its ``metrics.json``."""
    return results.config_hash(to_config(dict_cfg, experiment))


def _job_id_resolver(experiment: str, *, _root_: Any) -> str:
    from omegaconf import OmegaConf

    task = {k: OmegaConf.to_container(_root_[k], resolve=True)
            if OmegaConf.is_config(_root_[k]) else _root_[k]
            for k in _root_ if k != "hydra"}
    return job_id(task, experiment)
