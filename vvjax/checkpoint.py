"""Save and load trained networks: one file per model, loadable in a new process.

A checkpoint is a single msgpack file written with Flax's serialization
(``flax.serialization.msgpack_serialize``) and an atomic rename. It holds

* ``meta``: the format tag and version, the class (``ShallowVVNet`` / ``DeepVVNet``), what rebuilds
  it (sizes or widths, activation and its slope, output bias, dtype), the vvjax version, and any
  ``metadata`` the caller adds (e.g. the kept neuron indices of a compressed network);
* ``params``: every ``nnx.Param`` of the model, keyed by its path (``"layers/0/W"``), as NumPy
  arrays in the model's dtype.

:func:`load` rebuilds a model of the right widths, activation and dtype from ``meta`` alone (no
template needed), checks every array's path, shape and dtype against it, and raises
:class:`CheckpointError` naming what does not match.
"""

import os
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import nnx, serialization

from vvjax.models import DeepVVNet, ShallowVVNet

__all__ = ["FORMAT", "VERSION", "CheckpointError", "save", "load", "read_metadata"]

FORMAT = "vvjax-model"
VERSION = 1


class CheckpointError(ValueError):
    """The file is not a vvjax checkpoint, is damaged, or does not match the requested model."""


def _flat_params(model) -> dict[str, Any]:
    return {"/".join(str(k) for k in path): v for path, v in
            nnx.to_flat_state(nnx.state(model, nnx.Param))}


def _dtype_of(model) -> str:
    return str(jax.tree.leaves(nnx.state(model, nnx.Param))[0].dtype)


def _architecture(model) -> dict[str, Any]:
    common = {"activation": model.activation, "negative_slope": model.negative_slope,
              "dtype": _dtype_of(model)}
    if type(model) is ShallowVVNet:
        return {"class": "ShallowVVNet", "d_in": model.d_in, "width": model.width,
                "d_out": model.d_out, "output_bias": model.c is not None, **common}
    if type(model) is DeepVVNet:
        return {"class": "DeepVVNet", "widths": list(model.widths), **common}
    return {"class": f"{type(model).__module__}.{type(model).__qualname__}", **common}


def save(model, path: str | os.PathLike, *, metadata: dict[str, Any] | None = None) -> Path:
    """Write ``model`` (a :class:`~vvjax.models.ShallowVVNet` or :class:`~vvjax.models.DeepVVNet`,
    or a subclass) to ``path`` atomically; returns the path.

    Args:
      model: the network; every ``nnx.Param`` is stored.
      path: file to write (its folder is created).
      metadata: JSON-like extras stored with the model (numbers, strings, lists, dicts and
        arrays), returned by :func:`read_metadata`.

    Raises:
      TypeError: ``model`` is not a vvjax network or ``metadata`` is not a dict.
    """
    from vvjax import __version__
    from vvjax.results import atomic_write_bytes, to_jsonable

    if not isinstance(model, (ShallowVVNet, DeepVVNet)):
        raise TypeError(f"model must be a ShallowVVNet or DeepVVNet, got {type(model).__name__}")
    if metadata is not None and not isinstance(metadata, dict):
        raise TypeError(f"metadata must be a dict, got {type(metadata).__name__}")
    meta = {"format": FORMAT, "version": VERSION, "vvjax_version": __version__,
            "architecture": _architecture(model), "metadata": to_jsonable(metadata or {})}
    params = {k: np.asarray(v[...]) for k, v in _flat_params(model).items()}
    blob = serialization.msgpack_serialize({"meta": meta, "params": params})
    return atomic_write_bytes(path, blob)


def _read(path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"path {str(path)!r} is not a file (no checkpoint there)")
    try:
        obj = serialization.msgpack_restore(path.read_bytes())
    except Exception as exc:  # msgpack raises several types for damaged input
        raise CheckpointError(f"{path} is not a vvjax checkpoint (cannot be read as msgpack: "
                              f"{type(exc).__name__})") from None
    meta = obj.get("meta") if isinstance(obj, dict) else None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a vvjax checkpoint (format tag missing)")
    if meta.get("version") != VERSION:
        raise CheckpointError(f"{path} has checkpoint version {meta.get('version')!r}; this vvjax "
                              f"reads version {VERSION}")
    if not isinstance(obj.get("params"), dict):
        raise CheckpointError(f"{path} holds no parameters")
    return obj


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The ``metadata`` dict stored by :func:`save` (plus ``"architecture"``).

    Raises:
      CheckpointError: not a readable vvjax checkpoint.
    """
    meta = _read(path)["meta"]
    return {**meta.get("metadata", {}), "architecture": meta["architecture"]}


def _build(arch: dict[str, Any], path):
    common = dict(rngs=nnx.Rngs(0), activation=arch["activation"],
                  negative_slope=arch["negative_slope"], dtype=np.dtype(arch["dtype"]))
    try:
        if arch["class"] == "ShallowVVNet":
            return ShallowVVNet(arch["d_in"], arch["width"], arch["d_out"],
                                output_bias=arch["output_bias"], **common)
        if arch["class"] == "DeepVVNet":
            return DeepVVNet(arch["widths"], **common)
    except (KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{path}: invalid architecture {arch!r} ({exc})") from None
    raise CheckpointError(f"{path} holds a {arch['class']}; pass like=<an instance of that class> "
                          "to load it")


def load(path: str | os.PathLike, *, like=None):
    """Read a checkpoint written by :func:`save` into a new model.

    Args:
      path: the file.
      like: optional template network; the parameters are loaded into a copy of it (needed for
        subclasses, and a check that the file holds what the caller expects: same class, paths,
        shapes and dtypes).

    Returns:
      A new :class:`~vvjax.models.ShallowVVNet` / :class:`~vvjax.models.DeepVVNet` (or a copy of
      ``like``) holding the stored parameters, with the stored widths, activation and dtype.

    Raises:
      CheckpointError: missing, damaged or foreign file; a parameter missing, extra, or of another
        shape or dtype than the model needs (named in the message); an architecture that differs
        from ``like``'s.
    """
    obj = _read(path)
    arch, stored = obj["meta"]["architecture"], obj["params"]
    if like is not None:
        if not isinstance(like, (ShallowVVNet, DeepVVNet)):
            raise TypeError(f"like must be a ShallowVVNet or DeepVVNet, got {type(like).__name__}")
        want = _architecture(like)
        if want != arch:
            diff = {k: (arch.get(k), want.get(k)) for k in set(arch) | set(want)
                    if arch.get(k) != want.get(k)}
            raise CheckpointError(f"{path} does not match like: (stored, expected) = {diff}")
        graphdef, state = nnx.split(like)
        model = nnx.merge(graphdef, state, copy=True)
    else:
        model = _build(arch, path)
    flat = _flat_params(model)
    missing, extra = sorted(set(flat) - set(stored)), sorted(set(stored) - set(flat))
    if missing or extra:
        raise CheckpointError(f"{path}: parameters do not match the {arch['class']}: missing "
                              f"{missing}, unexpected {extra}")
    for key, var in flat.items():
        arr = np.asarray(stored[key])
        if arr.shape != var.shape or arr.dtype != var[...].dtype:
            raise CheckpointError(f"{path}: parameter {key!r} has shape {arr.shape} and dtype "
                                  f"{arr.dtype}; the model needs {var.shape} {var[...].dtype}")
    for key, var in flat.items():
        var[...] = stored[key]
    return model
