"""Data sets: seeds name one problem in every precision; real data shipped offline."""

import subprocess
import sys

import numpy as np
import pytest

from vvjax import data


def test_teacher_data_is_the_same_problem_in_float32_and_float64():
    X64, Y64, t64 = data.teacher_data(43, n=30, d_in=3, d_out=2)
    code = ("import jax, numpy as np; jax.config.update('jax_enable_x64', False);"
            "from vvjax import data; X, Y, t = data.teacher_data(43, n=30, d_in=3, d_out=2);"
            "print(repr(np.asarray(X).tolist())); print(repr(np.asarray(Y).tolist()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    X32, Y32 = (np.array(eval(line)) for line in out.stdout.splitlines())
    np.testing.assert_array_equal(np.asarray(X64, np.float32), X32)  # drawn in float32
    np.testing.assert_allclose(Y64, Y32, rtol=1e-5, atol=1e-6)
    assert X64.dtype == np.float64 and t64.W.dtype == np.float64


def test_random_labels_are_seeded_and_independent():
    X, Y = data.random_labels(1, n=50, d_in=2, d_out=3)
    X2, Y2 = data.random_labels(1, n=50, d_in=2, d_out=3)
    np.testing.assert_array_equal(Y, Y2)
    assert abs(float(np.corrcoef(np.asarray(X)[:, 0], np.asarray(Y)[:, 0])[0, 1])) < 0.5
    with pytest.raises(ValueError, match="d_out"):
        data.random_labels(1, n=5, d_in=2, d_out=0)


def test_digits_split_is_stratified_seeded_and_scaled():
    d = data.digits()
    assert d.X_train.shape == (1347, 64) and d.X_test.shape == (450, 64)
    assert d.X_train.min() == 0.0 and d.X_train.max() == 1.0 and d.n_classes == 10
    assert d.Y_train.dtype == np.int64
    from sklearn.datasets import load_digits

    full = np.bincount(load_digits().target)
    np.testing.assert_allclose(np.bincount(d.Y_test), full * 0.25, atol=1.0)  # stratified
    again, other = data.digits(), data.digits(seed=1)
    np.testing.assert_array_equal(again.X_train, d.X_train)
    assert not np.array_equal(other.X_train, d.X_train)
    with pytest.raises(ValueError, match="test_size"):
        data.digits(test_size=1.5)


def test_linnerud_is_a_standardized_multi_output_regression():
    d = data.linnerud()
    assert d.X_train.shape == (20, 3) and d.Y_train.shape == (20, 3) and d.n_classes is None
    np.testing.assert_allclose(d.Y_train.mean(0), 0.0, atol=1e-12)
    np.testing.assert_allclose(d.Y_train.std(0), 1.0, rtol=1e-12)
    raw = data.linnerud(standardize=False)
    assert raw.Y_train[:, 0].mean() > 100  # body weight in pounds
    assert d.X_test.shape == (0, 3)


def test_no_download_is_attempted(monkeypatch):
    import socket

    def refuse(*a, **k):
        raise AssertionError("network access")

    monkeypatch.setattr(socket, "socket", refuse)
    assert data.digits().X_train.shape[1] == 64 and data.linnerud().X_train.shape[0] == 20
