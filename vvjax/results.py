"""Run records: atomic JSON/NPZ writes, provenance, resumable jobs and sweep aggregation.

Every job writes into its own output folder. ``metrics.json`` is written **last** and atomically
(temporary file + ``os.replace``), so its presence means the job finished. It stores a hash of the
job's config: re-running the same config in the same folder returns the stored result instead of
redoing the work (how an interrupted Hydra sweep resumes: re-launch it with the old
``hydra.sweep.dir``), and a *different* config never overwrites a finished job.
"""

import dataclasses
import hashlib
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "METRICS_FILE",
    "JobExistsError",
    "to_jsonable",
    "config_hash",
    "provenance",
    "atomic_write_bytes",
    "save_json",
    "save_npz",
    "load_metrics",
    "finished_metrics",
    "load_sweep",
]

METRICS_FILE = "metrics.json"
_PACKAGES = ("vvjax", "jax", "jaxlib", "flax", "optax", "numpy", "hydra-core", "omegaconf",
             "matplotlib")


class JobExistsError(RuntimeError):
    """The output folder holds a finished job with a different config; refusing to overwrite it."""


def to_jsonable(obj: Any) -> Any:
    """Convert dataclasses, NamedTuples, numpy/JAX scalars and arrays into JSON-ready objects."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, tuple) and hasattr(obj, "_asdict"):
        return {k: to_jsonable(v) for k, v in obj._asdict().items()}
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "shape") and hasattr(obj, "dtype"):
        arr = np.asarray(obj)
        return to_jsonable(arr.item() if arr.ndim == 0 else arr.tolist())
    if isinstance(obj, float) and not np.isfinite(obj):
        return str(obj)
    return obj


def config_hash(config: Any) -> str:
    """Stable SHA-256 (first 16 hex digits) of a config (dataclass or mapping)."""
    blob = json.dumps(to_jsonable(config), sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _git_commit() -> str | None:
    root = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain",
                                "--untracked-files=no"], capture_output=True, text=True,
                               timeout=10).stdout.strip()
        return out + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def provenance() -> dict[str, Any]:
    """Versions, git commit, platform and JAX backend of this process."""
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    info: dict[str, Any] = {"python": sys.version.split()[0], "versions": versions,
                            "git_commit": _git_commit(), "platform": platform.platform()}
    try:
        import jax

        info["jax_backend"] = jax.default_backend()
        info["jax_devices"] = [str(d) for d in jax.devices()]
        info["jax_enable_x64"] = bool(jax.config.jax_enable_x64)
    except Exception as exc:  # pragma: no cover - JAX always importable in practice
        info["jax_backend"] = f"unavailable: {exc}"
    return info


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes 0600 files; give results the usual mode
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def save_json(path: str | os.PathLike, obj: Any) -> Path:
    """Atomically write ``obj`` (made JSON-ready by :func:`to_jsonable`) as indented JSON."""
    text = json.dumps(to_jsonable(obj), indent=2, sort_keys=False, allow_nan=False)
    return atomic_write_bytes(path, (text + "\n").encode())


def save_npz(path: str | os.PathLike, **arrays: Any) -> Path:
    """Atomically write arrays (JAX or numpy; ``None`` values skipped) to a compressed ``.npz``."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **{k: np.asarray(v) for k, v in arrays.items() if v is not None})
    return atomic_write_bytes(path, buf.getvalue())


def load_metrics(out_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The finished job's ``metrics.json`` in ``out_dir``, or ``None`` if there is none."""
    path = Path(out_dir) / METRICS_FILE
    if not path.is_file():
        return None
    with open(path) as fh:
        return json.load(fh)


def finished_metrics(out_dir: str | os.PathLike, config: Any) -> dict[str, Any] | None:
    """Resume check: the stored metrics if ``out_dir`` already finished exactly this ``config``.

    Returns ``None`` when no job finished there. Raises :class:`JobExistsError` when a job with a
    different config finished there (never overwrite a finished job).
    """
    metrics = load_metrics(out_dir)
    if metrics is None:
        return None
    if metrics.get("config_hash") == config_hash(config):
        return metrics
    raise JobExistsError(
        f"{Path(out_dir) / METRICS_FILE} holds a finished job with a different config "
        f"(hash {metrics.get('config_hash')} != {config_hash(config)}); choose a new output folder"
    )


def _flatten(d: Mapping, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def load_sweep(sweep_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """One flat record per *finished* job under ``sweep_dir`` (unfinished jobs are skipped).

    Each record holds the job folder (``job``), the scalar metrics and the job's config flattened
    into dotted keys (``config.<key>``), sorted by job folder.
    """
    records = []
    for path in sorted(Path(sweep_dir).glob(f"**/{METRICS_FILE}")):
        with open(path) as fh:
            metrics = json.load(fh)
        rec = {"job": str(path.parent.relative_to(sweep_dir))}
        rec.update({k: v for k, v in _flatten(metrics).items() if not isinstance(v, list)})
        records.append(rec)
    return records
