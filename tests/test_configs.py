"""Every experiment config composes into its typed schema; misspelled keys fail with their name."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError, ValidationError

from vvjax.configs import SCHEMAS, register_configs

CONF = Path(__file__).resolve().parent.parent / "conf"
EXPERIMENTS = sorted(p.name for p in CONF.iterdir() if (p / "config.yaml").is_file())


def _compose(experiment, overrides=()):
    register_configs()
    with initialize_config_dir(config_dir=str(CONF / experiment), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def test_every_experiment_has_a_schema():
    assert EXPERIMENTS, "no experiment configs found"
    for name in EXPERIMENTS:
        assert f"base_{name}" in SCHEMAS


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_presets_and_smoke_compose_to_dataclasses(experiment):
    presets = sorted(p.stem for p in (CONF / experiment / "preset").glob("*.yaml"))
    assert presets
    for preset in presets:
        for debug in ([], ["debug=smoke"]):
            cfg = OmegaConf.to_object(_compose(experiment, [f"preset={preset}", *debug]))
            assert isinstance(cfg, SCHEMAS[f"base_{experiment}"])


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_misspelled_key_is_rejected(experiment):
    with pytest.raises((ConfigCompositionException, ConfigKeyError), match="sede"):
        _compose(experiment, ["sede=3"])


def test_neuron_sharing_values_and_precedence():
    cfg = OmegaConf.to_object(_compose("neuron_sharing", []))  # default preset: the paper's run
    assert cfg.steps == 1_000_000 and cfg.data.n == 50 and cfg.runs["weight_decay"].lam == 5e-5
    assert cfg.data.source == "paper" and cfg.init == "paper" and cfg.seed == 49
    assert cfg.runs["weight_decay"].regularizer == "prox" and cfg.runs["no_weight_decay"].lam == 0.0
    smoke = OmegaConf.to_object(_compose("neuron_sharing", ["debug=smoke"]))
    assert smoke.steps < 1000 and smoke.data.source == "jax"  # debug overrides the preset
    with pytest.raises((ConfigCompositionException, ValidationError), match="steps"):
        _compose("neuron_sharing", ["steps=many"])
