"""Fixtures for tests/ (the global settings, float64 and strict rank promotion, are in the
repository's top-level conftest.py so that the doctests under vvjax/ get them too)."""

import jax
import pytest


@pytest.fixture
def key():
    return jax.random.key(0)
