"""Run independent JAX work in threads, with the caller's JAX settings and prompt cancellation.

XLA releases the GIL while a compiled program runs, so independent programs (batch groups, separate
fits) run side by side on the CPU cores. Two details make that safe:

* JAX's context managers (``jax.enable_x64``, ``jax.default_matmul_precision``, ...) are
  thread-local and do not reach new threads, so every worker re-enters the caller's values of the
  settings in :data:`THREAD_LOCAL_SETTINGS`. Without that, a batch started inside
  ``with jax.enable_x64(True)`` would run in float32 (or fail).
* Work items are long loops over compiled chunks. When one item fails or the caller is interrupted
  (Ctrl-C), the others are asked to stop: loops call :func:`check_cancelled` between chunks, so
  the error reaches the caller after at most one more chunk instead of after every item finished.
"""

import contextlib
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Any

import jax

__all__ = ["THREAD_LOCAL_SETTINGS", "Cancelled", "check_cancelled", "Workers", "thread_map"]

THREAD_LOCAL_SETTINGS = (
    "enable_x64", "default_matmul_precision", "numpy_dtype_promotion", "numpy_rank_promotion",
    "default_device", "default_prng_impl", "threefry_partitionable", "debug_nans", "debug_infs",
    "disable_jit", "log_compiles", "explain_cache_misses", "enable_checks", "check_tracer_leaks",
    "debug_key_reuse", "transfer_guard",
)
"""JAX settings (``jax.<name>`` context managers) that workers inherit from the caller."""

_local = threading.local()


class Cancelled(Exception):
    """Raised by :func:`check_cancelled` in a worker whose pool was cancelled."""


def check_cancelled() -> None:
    """Raise :class:`Cancelled` if this thread is a worker of a cancelled :class:`Workers` pool
    (or of a pool nested in one); a no-op elsewhere. Long loops call it between chunks."""
    if any(e.is_set() for e in getattr(_local, "events", ())):
        raise Cancelled("cancelled: another work item failed or the caller was interrupted")


def _caller_settings() -> Callable[[], contextlib.ExitStack]:
    values = {name: getattr(jax.config, f"jax_{name}") for name in THREAD_LOCAL_SETTINGS
              if hasattr(jax, name) and hasattr(jax.config, f"jax_{name}")}

    def enter() -> contextlib.ExitStack:
        stack = contextlib.ExitStack()
        for name, value in values.items():
            stack.enter_context(getattr(jax, name)(getattr(value, "value", value)))
        return stack

    return enter


class Workers:
    """A pool of ``n`` threads for JAX work; use as a context manager, call :meth:`map`.

    Every worker runs under the JAX settings of the thread that created the pool, and sees the
    pool's cancellation flag (and that of any pool it is nested in) through :func:`check_cancelled`.
    """

    def __init__(self, n: int):
        self.n = max(1, int(n))
        self._cancel = threading.Event()
        self._events = (*getattr(_local, "events", ()), self._cancel)
        self._settings = _caller_settings()
        self._pool: ThreadPoolExecutor | None = None

    def __enter__(self) -> "Workers":
        if self.n > 1:
            self._pool = ThreadPoolExecutor(self.n)
        return self

    def __exit__(self, *exc) -> None:
        if self._pool is not None:
            if exc[0] is not None:
                self._cancel.set()
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _run(self, fn, x):
        _local.events = self._events
        try:
            with self._settings():
                return fn(x)
        finally:
            _local.events = ()

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
        """``[fn(x) for x in items]`` in the pool's threads; results keep the order of ``items``.

        The first item to fail (in time) cancels the rest: queued items never start, running ones
        stop at their next :func:`check_cancelled`, and its exception is raised here. An interrupt
        (Ctrl-C) in the caller cancels the same way. Without a pool (``n == 1``) or with a single
        item everything runs in the calling thread.
        """
        items = list(items)
        if self._pool is None or len(items) <= 1:
            return [fn(x) for x in items]
        futures = [self._pool.submit(self._run, fn, x) for x in items]
        try:
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            errors = [f.exception() for f in futures if f in done and f.exception() is not None]
            if errors:
                raise errors[0]
            return [f.result() for f in futures]
        except BaseException:
            self._cancel.set()
            for f in futures:
                f.cancel()
            wait(futures)
            raise


def thread_map(fn: Callable[[Any], Any], items: Iterable[Any], workers: int) -> list[Any]:
    """``[fn(x) for x in items]`` in up to ``workers`` threads (see :meth:`Workers.map`)."""
    items = list(items)
    with Workers(min(workers, len(items))) as pool:
        return pool.map(fn, items)
