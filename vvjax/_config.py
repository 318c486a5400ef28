"""Checks of experiment config dataclasses: every key, type and value, before any work.

:func:`validate` walks a config dataclass (nested dataclasses, ``list[...]``, ``dict[str, ...]``,
``Optional[...]``) against its type annotations and returns a normalized copy, or raises
:class:`ConfigError` naming the dotted key, what was expected and what was given:

* **unknown keys**: an attribute that is not a field (Hydra's ``+key=...``/``++key=...`` and
  OmegaConf's ``to_object`` put such keys on the object; so does ``cfg.stepz = 5``);
* **types**: ``int`` fields take integers and integral floats (``1e5`` -> ``100000``; ``1.5`` is
  an error); ``float`` fields take any real number and must be finite; ``bool`` only
  ``True``/``False``; ``str`` only strings; nested configs only their dataclass;
* **values**: per-class rules, a ``RULES: ClassVar[dict[str, Rule]]`` mapping field names to a
  :class:`Rule` (``at_least(0)``, ``one_of(...)``); ``None`` of an ``Optional`` field skips it;
* **cross-field rules**: a class may define a method ``cross_check(self)`` that raises
  :class:`ConfigError`; it runs on the normalized object after its fields passed.
"""

import dataclasses
import math
import numbers
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy as np

__all__ = ["ConfigError", "Rule", "one_of", "at_least", "above", "validate"]


class ConfigError(ValueError):
    """A config key or value the runner cannot use; the message names the dotted key."""


class Rule(NamedTuple):
    """A value rule: ``check(value) -> bool`` and the text of what is expected (">= 0")."""

    check: Callable[[Any], bool]
    text: str


def one_of(choices) -> Rule:
    """The value must be one of ``choices``."""
    choices = tuple(choices)
    return Rule(lambda v: v in choices, f"one of {choices}")


def at_least(lo) -> Rule:
    """The value must be ``>= lo``."""
    return Rule(lambda v: v >= lo, f">= {lo}")


def above(lo) -> Rule:
    """The value must be ``> lo``."""
    return Rule(lambda v: v > lo, f"> {lo}")


def _key(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _given(v: Any) -> str:
    return f"{v!r} ({type(v).__name__})"


def _check_int(v, key):
    if isinstance(v, (bool, np.bool_)):
        raise ConfigError(f"{key} must be an integer, got {_given(v)}")
    if isinstance(v, numbers.Integral):
        return int(v)
    if isinstance(v, numbers.Real) and math.isfinite(v) and float(v).is_integer():
        return int(v)  # integral floats: steps=1e5 means 100000
    raise ConfigError(f"{key} must be an integer, got {_given(v)}"
                      + (": not a whole number" if isinstance(v, numbers.Real) else ""))


def _check_float(v, key):
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
        raise ConfigError(f"{key} must be a number, got {_given(v)}")
    if not math.isfinite(v):
        raise ConfigError(f"{key} must be finite, got {v!r}")
    return float(v)


def _check(v: Any, tp: Any, key: str) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return _check_dataclass(v, tp, key)
    if origin in (typing.Union, types.UnionType):
        if v is None and type(None) in args:
            return None
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            return _check(v, rest[0], key)
        return v  # pragma: no cover - no config uses other unions
    if origin is list:
        if not isinstance(v, (list, tuple)):
            raise ConfigError(f"{key} must be a list, got {_given(v)}")
        return [_check(x, args[0] if args else Any, f"{key}[{i}]") for i, x in enumerate(v)]
    if origin is dict:
        if not isinstance(v, Mapping):
            raise ConfigError(f"{key} must be a mapping, got {_given(v)}")
        out = {}
        for k, x in v.items():
            if not isinstance(k, str):
                raise ConfigError(f"{key} must have string keys, got {_given(k)}")
            out[k] = _check(x, args[1] if len(args) == 2 else Any, _key(key, k))
        return out
    if tp is bool:
        if not isinstance(v, (bool, np.bool_)):
            raise ConfigError(f"{key} must be true or false, got {_given(v)}")
        return bool(v)
    if tp is int:
        return _check_int(v, key)
    if tp is float:
        return _check_float(v, key)
    if tp is str:
        if not isinstance(v, str):
            raise ConfigError(f"{key} must be a string, got {_given(v)}")
        return v
    return v


def _check_dataclass(obj: Any, cls: type, path: str) -> Any:
    if not isinstance(obj, cls):
        raise ConfigError(f"{path or 'the config'} must be a {cls.__name__}, got {_given(obj)}")
    fields = dataclasses.fields(obj)
    names = [f.name for f in fields]
    extra = sorted(set(vars(obj)) - set(names))
    if extra:
        raise ConfigError(
            f"unknown config key {_key(path, extra[0])!r}: {cls.__name__} has no field "
            f"{extra[0]!r} (its fields: {', '.join(names)}); misspelled, or added with + / ++?")
    hints = typing.get_type_hints(cls)
    rules: Mapping[str, Rule] = getattr(cls, "RULES", {})
    values = {}
    for f in fields:
        key = _key(path, f.name)
        v = _check(getattr(obj, f.name), hints.get(f.name, Any), key)
        rule = rules.get(f.name)
        if rule is not None and v is not None and not rule.check(v):
            raise ConfigError(f"{key} must be {rule.text}, got {v!r}")
        values[f.name] = v
    new = dataclasses.replace(obj, **values)
    if callable(getattr(cls, "cross_check", None)):
        new.cross_check()
    return new


def validate(cfg: Any, *, key: str = "") -> Any:
    """Check a config dataclass completely; return a normalized copy (the module docstring).

    Args:
      cfg: an instance of a config dataclass (e.g.
        :class:`~vvjax.runs.neuron_sharing.NeuronSharingConfig`).
      key: the dotted key of ``cfg`` inside a larger config (``"data"``), which the error
        messages then name (``data.name``); empty for a whole config.

    Returns:
      A new instance of the same class, equal to ``cfg`` up to normalization (integral floats in
      integer fields become ints, ints in float fields floats, tuples lists).

    Raises:
      ConfigError (a ``ValueError``): the first bad key, type or value, by dotted key.
      TypeError: ``cfg`` is not a dataclass instance.
    """
    if not dataclasses.is_dataclass(cfg) or isinstance(cfg, type):
        raise TypeError(f"cfg must be a config dataclass instance, got {type(cfg).__name__}")
    return _check_dataclass(cfg, type(cfg), key)
