"""The compression experiments' data: MNIST-1D generated offline, CIFAR-10 from local batches."""

import pickle
import random

import numpy as np
import pytest

from vvjax import data


def _batch(n, seed, labels=None):
    rng = np.random.default_rng(seed)
    return {b"batch_label": b"training batch", b"data": rng.integers(0, 256, (n, 3072), np.uint8),
            b"labels": list(rng.integers(0, 10, n)) if labels is None else labels,
            b"filenames": [b"img.png"] * n}


def _write_cifar(folder, n=3):
    """Tiny files in the python-pickle batch format (protocol 2, bytes keys, like the originals)."""
    folder.mkdir(parents=True, exist_ok=True)
    batches = {}
    for i, name in enumerate([*data.CIFAR10_TRAIN, "test_batch"]):
        batches[name] = _batch(n + i, i)
        with open(folder / name, "wb") as fh:
            pickle.dump(batches[name], fh, protocol=2)
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({b"label_names": [b"airplane"] * 10}, fh, protocol=2)
    return batches


def test_cifar10_reads_the_pickle_batches(tmp_path):
    batches = _write_cifar(tmp_path / "cifar-10-batches-py")
    for root in (tmp_path, tmp_path / "cifar-10-batches-py"):  # the folder or its parent
        ds = data.cifar10(root)
        assert ds.X_train.shape == (3 + 4 + 5 + 6 + 7, 3072) and ds.X_test.shape == (8, 3072)
        assert ds.X_train.dtype == np.float32 and ds.n_classes == 10 and ds.name == "cifar10"
        first = batches["data_batch_1"]
        np.testing.assert_allclose(ds.X_train[:3], first[b"data"] / 255.0, rtol=1e-6)
        np.testing.assert_array_equal(ds.Y_train[:3], first[b"labels"])
        np.testing.assert_array_equal(ds.Y_test, batches["test_batch"][b"labels"])
        assert ds.Y_train.dtype == np.int64 and 0 <= ds.X_train.min() <= ds.X_train.max() <= 1


def test_cifar10_missing_or_malformed_folder_is_named(tmp_path):
    with pytest.raises(ValueError, match="data.root .* is not a folder.*never downloads"):
        data.cifar10(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="data.root must name"):
        data.cifar10(None)
    folder = tmp_path / "c"
    _write_cifar(folder)
    (folder / "data_batch_3").unlink()
    with pytest.raises(ValueError, match="data_batch_3.* is missing"):
        data.cifar10(folder)

    def bad(obj, match, raw=None):
        _write_cifar(folder)
        with open(folder / "test_batch", "wb") as fh:
            fh.write(raw if raw is not None else pickle.dumps(obj, protocol=2))
        with pytest.raises(ValueError, match=match):
            data.cifar10(folder)

    bad(None, "cannot be unpickled", raw=b"this is not a pickle")
    bad([1, 2, 3], "holds a list, expected a dict")
    bad({b"data": np.zeros((2, 3072), np.uint8)}, "lacks the b'data' or b'labels'")
    bad({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, r"shape \(n, 3072\)")
    bad({b"data": np.zeros((2, 3072), np.float64), b"labels": [0, 1]}, "uint8")
    bad({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1, 2]}, "2 integer labels")
    bad({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}, r"labels in \[0, 9\]")
    # a pickle that would run code is refused, not executed
    bad(None, "refusing to load posix.system|refusing to load os.system",
        raw=b"cos\nsystem\n(S'echo pwned'\ntR.")


def test_mnist1d_is_generated_offline_seeded_and_leaves_global_rng_alone(monkeypatch):
    import socket

    def refuse(*a, **k):
        raise AssertionError("network access")

    monkeypatch.setattr(socket, "socket", refuse)
    np.random.seed(123)
    random.seed(5)
    before = (np.random.random(), random.random())
    np.random.seed(123)
    random.seed(5)
    ds = data.mnist1d(n_samples=200)
    assert (np.random.random(), random.random()) == before  # the generator restored them
    assert ds.X_train.shape == (160, data.MNIST1D_LENGTH) and ds.X_test.shape == (40, 40)
    assert ds.Y_train.dtype == np.int64 and set(np.unique(ds.Y_train)) <= set(range(10))
    assert np.bincount(np.r_[ds.Y_train, ds.Y_test], minlength=10).tolist() == [20] * 10
    again, other = data.mnist1d(n_samples=200), data.mnist1d(n_samples=200, seed=1)
    np.testing.assert_array_equal(again.X_train, ds.X_train)
    assert not np.array_equal(other.X_train, ds.X_train)
    allx = np.r_[ds.X_train, ds.X_test]
    assert abs(allx.mean()) < 1e-8 and allx.std() == pytest.approx(1.0, rel=1e-8)
    with pytest.raises(ValueError, match="n_samples"):
        data.mnist1d(n_samples=10)
    with pytest.raises(ValueError, match="train_split"):
        data.mnist1d(train_split=1.0)
