"""Experiment runners: ``run_<experiment>(cfg, out_dir) -> metrics``,
shared by entry points and notebooks.

Each runner takes a typed dataclass config (never an OmegaConf object) and an output folder,
checks the whole config first (:func:`validate`: unknown keys, types, values, then the runner's
cross-field rules; a :class:`ConfigError` names the key), resumes a finished job instead of
redoing it, refuses a folder another process is using, and writes ``metrics.json`` last (see
:mod:`vvjax.results`).
"""

from vvjax._config import ConfigError, validate
from vvjax.runs._job import run_job, set_precision
from vvjax.runs.compress import CompressConfig, run_compress
from vvjax.runs.deep_widths import DeepWidthsConfig, run_deep_widths
from vvjax.runs.lasso_bounds import LassoBoundsConfig, run_lasso_bounds
from vvjax.runs.neuron_sharing import NeuronSharingConfig, run_neuron_sharing
from vvjax.runs.train_classifier import TrainClassifierConfig, run_train_classifier
from vvjax.runs.width_sweep import WidthSweepConfig, run_width_sweep

__all__ = ["ConfigError", "validate", "run_job", "set_precision", "NeuronSharingConfig",
           "run_neuron_sharing", "LassoBoundsConfig", "run_lasso_bounds", "WidthSweepConfig",
           "run_width_sweep", "DeepWidthsConfig", "run_deep_widths", "TrainClassifierConfig",
           "run_train_classifier", "CompressConfig", "run_compress"]
