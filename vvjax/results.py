"""Run records: atomic JSON/NPZ writes, provenance, job folders that one process owns, and sweeps.

Every job writes into its own output folder:

* ``metrics.json`` is written **last** and atomically (temporary file + ``os.replace``), so its
  presence means the job finished. It stores the config and its :func:`config_hash`. Re-running
  the same config in the same folder returns the stored result instead of redoing the work (how an
  interrupted sweep resumes), and a *different* config never overwrites a finished job
  (:class:`JobExistsError`).
* While a job runs, it holds an exclusive lock on ``.vvjax-job.lock`` in its folder
  (:func:`claim_job`), and the file names the holder (pid, host, config hash, start time). A
  second process that wants the same folder is refused with :class:`JobBusyError`, whatever its
  config. The lock is an ``flock`` held through an open file descriptor, so the operating system
  drops it when the process ends, however it ends (exception, ``kill -9``, a node's time limit):
  **a lock is never stale**, and the file that stays behind is only a record of the last holder.
  On file systems without ``flock`` (some Lustre mounts, Windows) the claim is skipped with a
  warning; then only the re-check before the final write protects a finished job.
* A job that raises writes ``failed.json`` (error, traceback, config hash) before re-raising; a
  later successful run of the same config removes it.

Config identity (:func:`config_hash`) covers only what changes the numbers: dataclass fields
declared with ``field(compare=False)`` (progress bars, whether to draw figures) are left out, so
re-running a finished job with ``progress=true`` resumes it.

:func:`scan_sweep` reads a sweep folder and reports, by job folder name, the finished jobs, the
duplicates (two finished folders with one config hash), the failed jobs and the unfinished ones.
"""

import contextlib
import dataclasses
import datetime
import errno
import hashlib
import io
import json
import logging
import os
import platform
import socket
import subprocess
import sys
import tempfile
import traceback
import warnings
from collections.abc import Iterator, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

try:  # POSIX; absent on Windows, where jobs run without the folder lock
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

__all__ = [
    "METRICS_FILE",
    "LOCK_FILE",
    "FAILED_FILE",
    "JobError",
    "JobExistsError",
    "JobBusyError",
    "SweepWarning",
    "to_jsonable",
    "config_hash",
    "provenance",
    "atomic_write_bytes",
    "save_json",
    "save_npz",
    "load_metrics",
    "finished_metrics",
    "claim_job",
    "save_failure",
    "flatten",
    "SweepScan",
    "scan_sweep",
    "load_sweep",
]

METRICS_FILE = "metrics.json"
LOCK_FILE = ".vvjax-job.lock"
FAILED_FILE = "failed.json"
_PACKAGES = ("vvjax", "jax", "jaxlib", "flax", "optax", "numpy", "scipy", "hydra-core",
             "omegaconf", "matplotlib")
_NO_LOCKS = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}

log = logging.getLogger(__name__)


class JobError(RuntimeError):
    """A job folder cannot be used for this job (the message says why and what to do)."""


class JobExistsError(JobError):
    """The output folder holds a finished job with a different config; refusing to overwrite it."""


class JobBusyError(JobError):
    """Another live process is running a job in the output folder; refusing to share it."""


class SweepWarning(UserWarning):
    """A sweep folder holds duplicate, failed or unfinished jobs (named in the message)."""


def to_jsonable(obj: Any, *, compare_only: bool = False) -> Any:
    """Convert dataclasses, NamedTuples, numpy/JAX scalars and arrays into JSON-ready objects.

    Non-finite floats become the strings ``"nan"``, ``"inf"``, ``"-inf"`` (JSON has no literal for
    them). With ``compare_only``, dataclass fields declared ``field(compare=False)`` are left out
    (see :func:`config_hash`).
    """
    def rec(x):
        return to_jsonable(x, compare_only=compare_only)

    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: rec(getattr(obj, f.name)) for f in dataclasses.fields(obj)
                if f.compare or not compare_only}
    if isinstance(obj, tuple) and hasattr(obj, "_asdict"):
        return {k: rec(v) for k, v in obj._asdict().items()}
    if isinstance(obj, Mapping):
        return {str(k): rec(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [rec(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "shape") and hasattr(obj, "dtype"):
        arr = np.asarray(obj)
        return rec(arr.item() if arr.ndim == 0 else arr.tolist())
    if isinstance(obj, float) and not np.isfinite(obj):
        return str(obj)
    return obj


def config_hash(config: Any) -> str:
    """Stable SHA-256 (first 16 hex digits) of what in a config changes the numbers.

    The rule: every field of a config dataclass counts, recursively (nested dataclasses, lists,
    dicts), except the fields declared ``dataclasses.field(compare=False)``, which by the same
    declaration also do not count in ``==``. The runners' configs declare ``figures`` and
    ``progress`` so. Mappings count entirely. Floats hash by their JSON text, so ``1e-05`` and
    ``0.00001`` are one config; an int and the equal float are not (validated configs hold ints in
    integer fields, see :func:`vvjax.runs.validate`).
    """
    blob = json.dumps(to_jsonable(config, compare_only=True), sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


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


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def load_metrics(out_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The finished job's ``metrics.json`` in ``out_dir``, or ``None`` if there is none."""
    path = Path(out_dir) / METRICS_FILE
    if not path.is_file():
        return None
    with open(path) as fh:
        return json.load(fh)


def finished_metrics(out_dir: str | os.PathLike, config: Any) -> dict[str, Any] | None:
    """Resume check: the stored metrics if ``out_dir`` already finished this ``config``.

    "This config" means the same :func:`config_hash`. Returns ``None`` when no job finished there.

    Raises:
      JobExistsError: a job with a different config finished there (never overwrite a finished
        job).
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


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")


def _holder_text(info: Mapping[str, Any] | None) -> str:
    if not info:
        return "another process"
    return (f"pid {info.get('pid')} on host {info.get('host')} (config hash "
            f"{info.get('config_hash')}, started {info.get('started_at')})")


def _lock_held(path: Path) -> bool | None:
    """Is the job lock at ``path`` held by a live process? ``None``: cannot tell (no flock)."""
    if fcntl is None or not path.is_file():
        return None if fcntl is None else False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    except OSError:
        return None
    finally:
        os.close(fd)


@contextlib.contextmanager
def claim_job(out_dir: str | os.PathLike, chash: str) -> Iterator[Path]:
    """Hold the job folder ``out_dir`` for this process while the ``with`` block runs.

    Takes an exclusive, non-blocking ``flock`` on ``out_dir/.vvjax-job.lock`` and writes the
    holder's pid, host, ``chash`` and start time into it. The lock lives as long as the file
    descriptor: it is released when the block ends and, if the process dies, by the operating
    system, so no lock is ever stale and nothing needs cleaning up. The file stays (a record of
    the last holder; its presence alone means nothing).

    Raises:
      JobBusyError: another open file description holds the lock (another process, or another
        job of this process): the message names its pid, host, config hash and start time.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise JobBusyError(
                    f"{out_dir} is in use by {_holder_text(_read_json(path))}; two jobs must not "
                    "share an output folder. Wait for it to finish (a finished job with the same "
                    "config is then reused) or choose another hydra.run.dir / output folder"
                ) from None
            except OSError as exc:
                if exc.errno not in _NO_LOCKS:
                    raise
                warnings.warn(f"{out_dir}: the file system does not support flock ({exc}); "
                              "running without the job-folder lock", RuntimeWarning, stacklevel=3)
        else:  # pragma: no cover
            warnings.warn(f"{out_dir}: no flock on this platform; running without the job-folder "
                          "lock", RuntimeWarning, stacklevel=3)
        info = {"pid": os.getpid(), "host": socket.gethostname(), "config_hash": chash,
                "started_at": _now()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        yield path
    finally:
        os.close(fd)  # releases the flock


def save_failure(out_dir: str | os.PathLike, exc: BaseException, *, chash: str,
                 started_at: str | None = None) -> Path:
    """Record why a job did not finish: ``failed.json`` with the error, traceback and config hash.

    ``status`` is ``"interrupted"`` for ``KeyboardInterrupt``/``SystemExit``, else ``"failed"``.
    """
    status = "failed" if isinstance(exc, Exception) else "interrupted"
    record = {"status": status, "error": f"{type(exc).__name__}: {exc}",
              "traceback": "".join(traceback.format_exception(exc)), "config_hash": chash,
              "started_at": started_at, "stopped_at": _now(), "host": socket.gethostname(),
              "pid": os.getpid()}
    return save_json(Path(out_dir) / FAILED_FILE, record)


def flatten(d: Mapping, prefix: str = "") -> dict[str, Any]:
    """Nested mappings to one level of dotted keys (``{"a": {"b": 1}}`` -> ``{"a.b": 1}``).

    Lists stay lists; empty mappings disappear.
    """
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


class SweepScan(NamedTuple):
    """What :func:`scan_sweep` found, by job folder (relative to the sweep folder, ``"."`` for
    the folder itself).

    ``records``: one flat record per distinct finished config (see :func:`load_sweep`), in the
    order the jobs started. ``duplicates``: job -> the job with the same config hash whose record
    is kept (the one whose folder is named by the hash, as sweeps name them, else the first to
    start). ``failed``: job -> ``"<error type>: <message>"`` from its
    ``failed.json`` (plus the job that later finished the same config, if any). ``unfinished``:
    job -> ``"running: pid ... on host ..."`` or why it holds no result.
    """

    records: list[dict[str, Any]]
    duplicates: dict[str, str]
    failed: dict[str, str]
    unfinished: dict[str, str]

    def problems(self) -> list[str]:
        """One line per duplicate, failed and unfinished job."""
        return ([f"duplicate: {j} has the config of {k} (left out)"
                 for j, k in self.duplicates.items()]
                + [f"failed: {j}: {why}" for j, why in self.failed.items()]
                + [f"unfinished: {j}: {why}" for j, why in self.unfinished.items()])


_JOB_MARKERS = (METRICS_FILE, FAILED_FILE, LOCK_FILE)


def _job_dirs(sweep_dir: Path) -> list[Path]:
    """Folders under ``sweep_dir`` (itself included) that hold a job: a result, a failure record,
    a job lock, a Hydra record (``.hydra/``) or a Hydra job log (``*.log``)."""
    found = []
    for root, dirs, files in os.walk(sweep_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        names = set(files)
        if (names.intersection(_JOB_MARKERS) or os.path.isdir(os.path.join(root, ".hydra"))
                or any(f.endswith(".log") for f in files)):
            found.append(Path(root))
    return found


def scan_sweep(sweep_dir: str | os.PathLike) -> SweepScan:
    """Read every job folder under ``sweep_dir``; see :class:`SweepScan` for what is reported.

    Each record holds the job folder (``job``), every metric flattened into dotted keys (lists
    kept as lists) and the job's config as ``config.<key>``. Jobs start-ordered by the
    ``started_at`` of their metrics (older records without it first, by folder name).
    """
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise ValueError(f"sweep_dir must be a directory, got {str(sweep_dir)!r}")
    finished, failed, unfinished, failed_hash = [], {}, {}, {}
    for job_dir in _job_dirs(sweep_dir):
        job = str(job_dir.relative_to(sweep_dir))
        metrics = _read_json(job_dir / METRICS_FILE)
        if metrics is not None:
            finished.append((str(metrics.get("started_at") or ""), job, metrics))
            continue
        held = _lock_held(job_dir / LOCK_FILE)
        if held:
            unfinished[job] = f"running: {_holder_text(_read_json(job_dir / LOCK_FILE))}"
            continue
        failure = _read_json(job_dir / FAILED_FILE)
        if failure is not None:
            failed[job] = failure.get("error", "failed (no message)")
            failed_hash[job] = failure.get("config_hash")
        elif (job_dir / METRICS_FILE).exists():
            unfinished[job] = f"{METRICS_FILE} is not valid JSON"
        else:
            unfinished[job] = ("started but left no result and no failure record (killed, or "
                               "stopped before its config was accepted: see its .log)")
    groups: dict[Any, list[tuple[str, str, dict]]] = {}
    for item in finished:
        groups.setdefault(item[2].get("config_hash"), []).append(item)
    kept_items, duplicates, kept = [], {}, {}
    for h, items in groups.items():  # keep the folder named by the hash, else the first started
        best = min(items, key=lambda t: (Path(t[1]).name != h, t[0], t[1]))
        kept[h] = best[1]
        kept_items.append(best)
        duplicates.update({t[1]: best[1] for t in items if t is not best})
    kept_items.sort(key=lambda t: (t[0], t[1]))
    records = [{"job": job, **flatten(metrics)} for _, job, metrics in kept_items]
    duplicates = dict(sorted(duplicates.items()))
    for job, h in failed_hash.items():
        if h in kept:
            failed[job] += f" (the same config finished later in {kept[h]})"
    return SweepScan(records, duplicates, failed, unfinished)


def load_sweep(sweep_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """One flat record per distinct *finished* config under ``sweep_dir`` (see
    :func:`scan_sweep`).

    Warns (:class:`SweepWarning`, naming each job folder) about duplicates, which are left out,
    and about failed and unfinished jobs, which have no record.
    """
    scan = scan_sweep(sweep_dir)
    problems = scan.problems()
    if problems:
        warnings.warn(f"{sweep_dir}: " + "; ".join(problems), SweepWarning, stacklevel=2)
    return scan.records
