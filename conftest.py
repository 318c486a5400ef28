"""Settings for every test and doctest (tests/ and the docstring examples under vvjax/).

float64 everywhere (the library never flips it; experiment runners set it from their config and
the fixture restores it), NumPy-style rank promotion raises (a silent broadcast of a (N,) against
a (N, 1) is a bug), and a headless matplotlib backend, chosen before matplotlib is imported.
"""

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture(autouse=True)
def _strict_jax_settings():
    """Restore x64 and strict rank promotion around every test (runners change precision)."""
    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_numpy_rank_promotion", "raise")
    yield
    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_numpy_rank_promotion", "raise")
