"""``as_array``: what array-likes it converts, what it casts, and the errors naming the argument."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse as sp

from vvjax import _validate
from vvjax._validate import as_array

DATA = np.array([[1.5, 0.0, -2.0], [0.0, 3.0, 0.25]])


class ArrayLike:
    """A foreign container that only implements NumPy's ``__array__`` protocol."""

    def __init__(self, a):
        self._a = np.asarray(a)

    def __array__(self, dtype=None, copy=None):
        return self._a if dtype is None else self._a.astype(dtype)


@pytest.mark.parametrize("make", [
    lambda a: a.tolist(),
    lambda a: tuple(map(tuple, a.tolist())),
    ArrayLike,
    np.asmatrix,
    lambda a: np.ma.masked_array(a, mask=np.zeros(a.shape, bool)),
    sp.csr_matrix,
    sp.csc_matrix,
    sp.coo_matrix,
    sp.csr_array,
    jnp.asarray,
], ids=["list", "tuple", "__array__", "matrix", "masked-nothing-masked", "csr", "csc", "coo",
        "csr_array", "jax"])
@pytest.mark.parametrize("to_jax", [True, False])
@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
def test_converts_array_likes(make, to_jax):
    out = as_array("X", make(DATA), ndim=2, to_jax=to_jax)
    assert type(out) is np.ndarray or isinstance(out, jax.Array)
    if not to_jax and not isinstance(make(DATA), jax.Array):
        assert type(out) is np.ndarray  # a NumPy path gets plain NumPy (not matrix/masked/sparse)
    np.testing.assert_array_equal(np.asarray(out), DATA)


@pytest.mark.parametrize("dtype", [np.int8, np.int64, np.uint16, np.bool_])
def test_integers_and_bools_become_floats(dtype):
    a = (DATA != 0) if dtype is np.bool_ else DATA.astype(dtype)
    out_np = as_array("X", a, to_jax=False)
    assert out_np.dtype == np.float64
    np.testing.assert_array_equal(out_np, a.astype(np.float64))
    out_jax = as_array("X", a)
    assert out_jax.dtype == jnp.float64  # tests run with x64 on: the default float
    out_jax_in = as_array("X", jnp.asarray(a))
    assert out_jax_in.dtype == jnp.float64
    out_sparse = as_array("X", sp.csr_matrix(a.astype(np.int32)), to_jax=False)
    assert out_sparse.dtype == np.float64


def test_integer_jax_input_follows_x64():
    jax.config.update("jax_enable_x64", False)
    try:
        assert as_array("X", jnp.arange(3)).dtype == jnp.float32
    finally:
        jax.config.update("jax_enable_x64", True)


@pytest.mark.parametrize("bad, err, msg", [
    (None, ValueError, "X must be an array, got None"),
    ("abc", TypeError, "X must be a numeric array, got a str"),
    (b"abc", TypeError, "X must be a numeric array, got a bytes"),
    (["a", "b"], TypeError, "X must be a numeric array, got dtype <U1"),
    ([[1.0, 2.0], [3.0]], ValueError, "X could not be converted to a numeric array"),
    (np.array([{"a": 1}, 2], dtype=object), TypeError, "got dtype object"),
    ([{"a": 1}], TypeError, "got dtype object"),
    (np.array([1 + 2j]), TypeError, "X must be real, got complex dtype complex128"),
    (np.array(["2024-01-01"], dtype="datetime64[D]"), TypeError, "must be a numeric array"),
    (np.ma.masked_array([1.0, 2.0], mask=[False, True]), ValueError, "masked entries"),
    ([1.0, np.nan], ValueError, "X contains NaN or inf"),
    (sp.csr_matrix(np.array([[np.inf, 0.0]])), ValueError, "X contains NaN or inf"),
])
def test_bad_input_names_the_argument(bad, err, msg):
    with pytest.raises(err, match=msg.replace("(", r"\(").replace(")", r"\)")):
        as_array("X", bad)


def test_unconvertible_object_names_the_argument():
    class NoArray:
        def __array__(self, dtype=None, copy=None):
            raise RuntimeError("tensor lives on cuda:0")

    with pytest.raises(TypeError, match="X could not be converted to a NumPy array .*cuda:0"):
        as_array("X", NoArray())


def test_large_sparse_is_refused_with_the_reason(monkeypatch):
    monkeypatch.setattr(_validate, "MAX_DENSIFY_ENTRIES", 5)
    assert as_array("Phi", sp.csr_matrix(np.eye(2)), to_jax=False).shape == (2, 2)  # 4 entries
    big = sp.csr_matrix((3, 2))
    with pytest.raises(ValueError, match=r"Phi is a scipy.sparse matrix of shape \(3, 2\): "
                                         r"densifying it would need .* limit of 5 entries"):
        as_array("Phi", big)


def test_default_sparse_limit_is_one_gib_of_float64():
    assert _validate.MAX_DENSIFY_ENTRIES * 8 == 2**30
    with pytest.raises(ValueError, match="Phi is a scipy.sparse matrix"):
        as_array("Phi", sp.csr_matrix((2**16, 2**16)))  # 4.3e9 entries: refused, not allocated


def test_torch_cpu_tensor_if_installed():
    torch = pytest.importorskip("torch")
    t = torch.tensor(DATA)
    np.testing.assert_array_equal(np.asarray(as_array("X", t)), DATA)
    with pytest.raises(TypeError, match="X could not be converted"):
        as_array("X", torch.tensor(DATA, requires_grad=True))


def test_shape_and_rank_checks_still_apply():
    with pytest.raises(ValueError, match="X must be a 2-D array, got shape"):
        as_array("X", [1.0, 2.0], ndim=2)
    with pytest.raises(ValueError, match=r"b must have shape \(3\), got \(2,\)"):
        as_array("b", [1.0, 2.0], shape=(3,))
