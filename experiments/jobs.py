"""The Hydra side every entry point shares: checks before any work, one record per job, logging.

* :func:`accept_integral_floats` rewrites command-line overrides of integer fields given as
  integral floats (``steps=1e5`` -> ``steps=100000``, also inside sweeps ``steps=1e4,1e5``)
  before Hydra sees them; OmegaConf would reject the float. Non-integral values are left for
  the checks below to reject by name.
* :class:`ValidateSweep` (a Hydra callback, ``hydra.callbacks`` in ``conf/*/config.yaml``)
  composes and checks **every job of a multirun before the first one starts**, and stops the
  sweep with one line per bad job.
* :func:`run` checks the job's config (:func:`vvjax.configs.to_config`: unknown keys, also those
  added with ``+``/``++``, types, values), runs the runner, and writes the ``.hydra/`` record
  (config, hydra config, overrides) only once the job owns its folder: Hydra's own writing is
  switched off (``hydra.output_subdir: null``) because it happens before the runner can refuse a
  folder that another process is using or that holds another finished job. Errors the user can
  fix (a bad config, a folder in use) are logged as one line; a single run then exits with status
  2 (config) or 1 (folder); in a multirun the job fails and Hydra goes on with the others.

Log lines go through :mod:`logging`, so each job's ``<name>.log`` in its folder holds them.
"""

import logging
import sys
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from vvjax import results
from vvjax.configs import SCHEMAS, to_config
from vvjax.runs import ConfigError

log = logging.getLogger("vvjax.experiments")

__all__ = ["accept_integral_floats", "ValidateSweep", "run"]


def _field_type(schema: Any, dotted: str) -> Any:
    """The annotated type of ``dotted`` in the dataclass ``schema`` (``None`` if not a field)."""
    tp = schema
    for part in dotted.split("."):
        while typing.get_origin(tp) is typing.Union:  # Optional[X] -> X
            tp = next(a for a in typing.get_args(tp) if a is not type(None))
        if typing.get_origin(tp) is dict:  # dict[str, X]: any key
            tp = typing.get_args(tp)[1]
        elif hasattr(tp, "__dataclass_fields__"):
            hints = typing.get_type_hints(tp)
            if part not in hints:
                return None
            tp = hints[part]
        else:
            return None
    while typing.get_origin(tp) is typing.Union:
        tp = next(a for a in typing.get_args(tp) if a is not type(None))
    return tp


def _as_int_text(v: Any) -> str | None:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, int) and not isinstance(v, bool):
        return str(v)
    return None


def accept_integral_floats(schema: Any, argv: list[str]) -> list[str]:
    """``argv`` with integral floats of the schema's integer fields written as integers.

    Handles ``key=1e5``, ``+key=...``/``++key=...``, simple sweeps ``key=1e4,1e5`` and
    ``choice(...)``, and ``list[int]`` fields (``random.n_values=[1e1,2e1]``). Everything else
    (flags, other keys, ranges, non-integral values) is returned unchanged.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import ChoiceSweep

    parser = OverridesParser.create()
    out = []
    for arg in argv:
        try:
            ov = None if arg.startswith("-") or "=" not in arg else parser.parse_override(arg)
        except Exception:  # not an override (a flag's value): leave it to Hydra
            ov = None
        tp = None if ov is None or ov.package or ov.is_delete() else _field_type(
            schema, ov.key_or_group)
        if tp is None:
            out.append(arg)
            continue
        value, key = ov.value(), ov.get_key_element()
        new = None
        if tp is int and isinstance(value, float):
            new = _as_int_text(value)
        elif tp is int and isinstance(value, ChoiceSweep) and not value.tags:
            texts = [_as_int_text(v) for v in value.list]
            if all(texts):
                new = ",".join(texts) if value.simple_form else f"choice({','.join(texts)})"
        elif typing.get_origin(tp) is list and typing.get_args(tp) == (int,) and isinstance(
                value, list):
            texts = [_as_int_text(v) for v in value]
            if all(texts):
                new = "[" + ",".join(texts) + "]"
        out.append(arg if new is None else f"{key}={new}")
    return out


class ValidateSweep(Callback):
    """Check every job of a multirun before any starts (basic sweeper only).

    Args:
      experiment: the schema's name (``"neuron_sharing"`` or ``"lasso_bounds"``).
    """

    def __init__(self, experiment: str) -> None:
        if f"base_{experiment}" not in SCHEMAS:
            raise ValueError(f"experiment must be one of {sorted(k[5:] for k in SCHEMAS)}, got "
                             f"{experiment!r}")
        self.experiment = experiment

    def jobs(self, config: DictConfig) -> list[list[str]]:
        """The override lists of the sweep's jobs, as Hydra's basic sweeper builds them."""
        from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
        from hydra.core.global_hydra import GlobalHydra
        from hydra.core.override_parser.overrides_parser import OverridesParser

        params = config.hydra.sweeper.get("params") or {}
        args = [f"{k}={v}" for k, v in params.items()] + list(config.hydra.overrides.task)
        parser = OverridesParser.create(config_loader=GlobalHydra.instance().config_loader())
        return BasicSweeper.split_arguments(parser.parse_overrides(args), None)[0]

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if "BasicSweeper" not in str(config.hydra.sweeper.get("_target_", "")):
            return  # other sweepers choose their jobs as they go
        from hydra.core.global_hydra import GlobalHydra

        loader = GlobalHydra.instance().config_loader()
        jobs = self.jobs(config)
        bad = []
        for num, overrides in enumerate(jobs):
            try:
                to_config(loader.load_sweep_config(config, list(overrides)))
            except Exception as exc:  # composition errors and ConfigError alike
                msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                cause = exc.__cause__
                if cause is not None and str(cause):
                    msg += f": {str(cause).splitlines()[0]}"
                bad.append(f"job {num} ({' '.join(overrides)}): {msg}")
        if bad:
            print(f"error: {len(bad)} of {len(jobs)} sweep jobs have a bad config; nothing was "
                  "run:\n  " + "\n  ".join(bad), file=sys.stderr)
            raise SystemExit(2)  # Hydra turns a callback's exceptions into warnings
        log.info("sweep of %d jobs: every config checked", len(jobs))


def _record_writer(dict_cfg: DictConfig, hydra_cfg: DictConfig) -> Callable[[Path], None]:
    """Write Hydra's ``.hydra/{config,hydra,overrides}.yaml`` into a job folder (atomically)."""
    def write(out_dir: Path) -> None:
        rec = Path(out_dir) / ".hydra"
        for name, node in (("config.yaml", dict_cfg),
                           ("hydra.yaml", OmegaConf.create({"hydra": hydra_cfg})),
                           ("overrides.yaml", hydra_cfg.overrides.task)):
            results.atomic_write_bytes(rec / name, OmegaConf.to_yaml(node).encode())
    return write


def run(dict_cfg: DictConfig, runner: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    """Check the job's config, run ``runner(cfg, out_dir, on_start=...)`` and return its metrics
    (module docstring for what happens on errors)."""
    hydra_cfg = HydraConfig.get()
    out_dir = Path(hydra_cfg.runtime.output_dir)
    try:
        cfg = to_config(dict_cfg)
        return runner(cfg, out_dir, on_start=_record_writer(dict_cfg, hydra_cfg))
    except (ConfigError, results.JobError) as exc:
        log.error("%s", exc)
        if hydra_cfg.mode == RunMode.MULTIRUN:
            raise
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2 if isinstance(exc, ConfigError) else 1) from None
