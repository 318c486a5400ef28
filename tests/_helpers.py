"""Helpers shared by several test modules."""

import contextlib

import jax


@contextlib.contextmanager
def count_compiles():
    """Collect the names of the functions XLA compiles inside the block."""
    names = []

    def listener(event, duration, **kw):
        if event == "/jax/core/compile/backend_compile_duration":
            names.append(kw.get("fun_name", "?"))

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield names
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
