"""Every experiment config composes into its typed schema; bad keys and values fail by name,
before any work."""

import dataclasses
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError, ValidationError

from vvjax import results
from vvjax.configs import SCHEMAS, job_id, register_configs, to_config
from vvjax.convergence import Criterion
from vvjax.runs import ConfigError, run_lasso_bounds, run_neuron_sharing, validate
from vvjax.runs.lasso_bounds import (
    BruteForcePanelsConfig,
    LassoBoundsConfig,
    RandomPanelsConfig,
    RankPanelsConfig,
)
from vvjax.runs.neuron_sharing import NeuronSharingConfig, StudentTrainConfig, TeacherDataConfig

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "experiments"))
import jobs  # noqa: E402  (experiments/jobs.py, the entry points' Hydra helpers)

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


# ----------------------------------------------------------------------------- unknown keys (+/++)

@pytest.mark.parametrize(("experiment", "override", "key"), [
    ("neuron_sharing", "++runs.weight_decay.lamda=1e-4", "runs.weight_decay.lamda"),
    ("neuron_sharing", "+stepz=5", "stepz"),
    ("neuron_sharing", "++data.kk=3", "data.kk"),
    ("lasso_bounds", "+random.kk=5", "random.kk"),
    ("lasso_bounds", "++trails=3", "trails"),
])
def test_keys_added_with_plus_are_rejected_by_name(experiment, override, key):
    """Issue 8, item 5: + and ++ compose (Hydra opens the struct); the checked conversion that
    every entry point and runner applies rejects the key by its dotted name."""
    dict_cfg = _compose(experiment, ["debug=smoke", override])
    with pytest.raises(ConfigError, match=f"unknown config key '{re.escape(key)}'"):
        to_config(dict_cfg)
    runner = {"neuron_sharing": run_neuron_sharing, "lasso_bounds": run_lasso_bounds}[experiment]
    with pytest.raises(ConfigError, match=re.escape(key)):  # the runner checks again
        runner(OmegaConf.to_object(dict_cfg), Path("/nonexistent/never-created"))


def test_a_new_run_name_is_not_an_unknown_key():
    """``runs`` maps any run name to a StudentTrainConfig: a new name is a new run."""
    cfg = NeuronSharingConfig(runs={"big": StudentTrainConfig(lam=1e-3)})
    assert validate(cfg).runs["big"].lam == 1e-3
    with pytest.raises(ConfigError, match="runs must be a non-empty mapping"):
        validate(NeuronSharingConfig(runs={"a/b": StudentTrainConfig()}))


# ----------------------------------------------------------------------------- values, before work

@pytest.mark.parametrize(("change", "message"), [
    ({"runs": {"weight_decay": StudentTrainConfig(lam=-1.0)}},
     r"runs.weight_decay.lam must be >= 0, got -1.0"),
    ({"runs": {"weight_decay": StudentTrainConfig(regularizer="l1")}},
     r"runs.weight_decay.regularizer must be one of \('none', 'weight_decay', 'vv', 'm1', "
     r"'prox'\), got 'l1'"),
    ({"runs": {"weight_decay": StudentTrainConfig(lr=0.0)}}, r"runs.weight_decay.lr must be > 0"),
    ({"runs": {"weight_decay": StudentTrainConfig(lam=float("nan"))}},
     r"runs.weight_decay.lam must be finite, got nan"),
    ({"runs": {"weight_decay": StudentTrainConfig(lam="1e-4")}},
     r"runs.weight_decay.lam must be a number, got '1e-4' \(str\)"),
    ({"steps": 1.5}, r"steps must be an integer, got 1.5 \(float\): not a whole number"),
    ({"steps": True}, r"steps must be an integer, got True \(bool\)"),
    ({"steps": 0}, r"steps must be >= 1, got 0"),
    ({"width": 0}, r"width must be >= 1, got 0"),
    ({"precision": "float16"}, r"precision must be one of \('float32', 'float64'\)"),
    ({"data": TeacherDataConfig(n=0)}, r"data.n must be >= 1, got 0"),
    ({"data": {"n": 12}}, r"data must be a TeacherDataConfig, got \{'n': 12\} \(dict\)"),
    ({"figures": "yes"}, r"figures must be true or false, got 'yes' \(str\)"),
    ({"data": TeacherDataConfig(source="paper", n=20)}, r"data.source='paper' is the authors'"),
])
def test_bad_neuron_sharing_values_fail_before_any_work(change, message, tmp_path):
    cfg = NeuronSharingConfig(**change)
    with pytest.raises(ConfigError, match=message):
        run_neuron_sharing(cfg, tmp_path / "job")
    assert not (tmp_path / "job").exists()  # nothing was created, let alone trained


@pytest.mark.parametrize(("change", "message"), [
    ({"figure": "histogram"}, r"figure must be one of \('random', 'rank', 'bruteforce'\)"),
    ({"trials": 0}, r"trials must be >= 1, got 0"),
    ({"tol": -1e-6}, r"tol must be > 0"),
    ({"max_iter": 0}, r"max_iter must be >= 1"),
    ({"batch_method": "pmap"}, r"batch_method must be one of \('loop', 'vmap'\)"),
    ({"random": RandomPanelsConfig(n_values=[])}, r"random.n_values must be a non-empty list"),
    ({"random": RandomPanelsConfig(n_values=[10, 2.5])},
     r"random.n_values\[1\] must be an integer, got 2.5"),
])
def test_bad_lasso_bounds_values_fail_before_any_work(change, message, tmp_path):
    with pytest.raises(ConfigError, match=message):
        run_lasso_bounds(LassoBoundsConfig(**change), tmp_path / "job")
    assert not (tmp_path / "job").exists()


def test_integral_floats_are_accepted_for_integer_fields():
    """Issue 12, item 6: ``steps=1e5`` means 100000, in Python and on the command line."""
    cfg = validate(NeuronSharingConfig(steps=1e5, log_every=np.float32(500.0),
                                       data=TeacherDataConfig(n=12.0)))
    assert (cfg.steps, cfg.log_every, cfg.data.n) == (100_000, 500, 12)
    assert all(type(v) is int for v in (cfg.steps, cfg.log_every, cfg.data.n))
    assert results.config_hash(cfg) == results.config_hash(NeuronSharingConfig(
        steps=100_000, log_every=500, data=TeacherDataConfig(n=12)))
    argv = ["prog.py", "-m", "steps=1e5", "+log_every=2e3", "data.n=12.0",
            "runs.weight_decay.lam=1e-5", "width=1e2,2e2", "seed=choice(1.0,2.0)", "steps=1.5",
            "hydra.run.dir=/tmp/1e5", "--config-name", "config"]
    assert jobs.accept_integral_floats(NeuronSharingConfig, argv) == [
        "prog.py", "-m", "steps=100000", "+log_every=2000", "data.n=12",
        "runs.weight_decay.lam=1e-5", "width=100,200", "seed=choice(1,2)", "steps=1.5",
        "hydra.run.dir=/tmp/1e5", "--config-name", "config"]
    assert jobs.accept_integral_floats(LassoBoundsConfig, ["random.n_values=[1e1,2e1]"]) == [
        "random.n_values=[10,20]"]


def test_every_rule_names_a_field():
    for cls in (NeuronSharingConfig, TeacherDataConfig, StudentTrainConfig, Criterion,
                LassoBoundsConfig, RandomPanelsConfig, RankPanelsConfig, BruteForcePanelsConfig):
        names = {f.name for f in dataclasses.fields(cls)}
        assert set(cls.RULES) <= names, cls.__name__
        assert validate(cls()) == cls()  # the defaults pass


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_job_id_is_the_config_hash(experiment):
    dict_cfg = _compose(experiment, ["debug=smoke"])
    cfg = to_config(dict_cfg)
    assert job_id(OmegaConf.to_container(dict_cfg), experiment) == results.config_hash(cfg)
    assert len(job_id(dict_cfg, experiment)) == 16
