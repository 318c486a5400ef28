"""Run independent JAX work in threads with the caller's JAX settings.

XLA releases the GIL while a compiled program runs, so independent programs (batch groups, separate
fits) run side by side on the CPU cores. JAX's context managers (``jax.enable_x64``,
``jax.default_matmul_precision``, ...) are thread-local and do not reach new threads, so
:func:`thread_map` re-enters the caller's values in every worker: without that, a batch started
inside ``with jax.enable_x64(True)`` would silently run in float32.
"""

import contextlib
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import jax

__all__ = ["thread_map"]

_THREAD_LOCAL = ("enable_x64", "default_matmul_precision", "numpy_dtype_promotion",
                 "numpy_rank_promotion", "default_device", "debug_nans", "debug_infs",
                 "disable_jit")


def _caller_settings() -> Callable[[], contextlib.ExitStack]:
    values = {name: getattr(jax.config, f"jax_{name}") for name in _THREAD_LOCAL}

    def enter() -> contextlib.ExitStack:
        stack = contextlib.ExitStack()
        for name, value in values.items():
            stack.enter_context(getattr(jax, name)(getattr(value, "value", value)))
        return stack

    return enter


def thread_map(fn: Callable[[Any], Any], items: Iterable[Any], workers: int) -> list[Any]:
    """``[fn(x) for x in items]``, run in up to ``workers`` threads under the caller's JAX settings.

    Results keep the order of ``items``; the first exception raised by ``fn`` is re-raised. With
    ``workers <= 1`` or a single item everything runs in the calling thread.
    """
    items = list(items)
    if workers <= 1 or len(items) <= 1:
        return [fn(x) for x in items]
    settings = _caller_settings()

    def run(x):
        with settings():
            return fn(x)

    with ThreadPoolExecutor(min(workers, len(items))) as pool:
        return list(pool.map(run, items))
