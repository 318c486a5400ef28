"""Save and load trained models, also in a fresh process."""

import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from vvjax import checkpoint, models, train

X = np.random.default_rng(0).normal(size=(16, 3))

_CHILD = """
import sys, numpy as np, jax
jax.config.update("jax_enable_x64", True)
from vvjax import checkpoint
model = checkpoint.load(sys.argv[1])
X = np.load(sys.argv[2])
np.save(sys.argv[3], np.asarray(model(X)))
print(type(model).__name__, model.activation, str(jax.tree.leaves(
    __import__("flax").nnx.state(model, __import__("flax").nnx.Param))[0].dtype))
"""


@pytest.mark.parametrize("make", [
    lambda: models.ShallowVVNet(3, 7, 2, rngs=nnx.Rngs(1), activation="leaky_relu",
                                negative_slope=0.2, output_bias=True, dtype=jnp.float32),
    lambda: models.DeepVVNet([3, 9, 5, 4], rngs=nnx.Rngs(2), activation="gelu"),
])
def test_save_then_load_in_a_fresh_process_gives_identical_predictions(tmp_path, make):
    net = make()
    net, _ = train.fit(net, X, np.asarray(net(X)) + 0.1, steps=20, lr=0.05,
                       regularizer="weight_decay", lam=1e-3)  # trained weights, not the init
    path = checkpoint.save(net, tmp_path / "m.vvjax", metadata={"kept": np.arange(3)})
    np.save(tmp_path / "X.npy", X)
    out = subprocess.run([sys.executable, "-c", _CHILD, str(path), str(tmp_path / "X.npy"),
                          str(tmp_path / "pred.npy")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    name, act, dtype = out.stdout.split()
    assert (name, act) == (type(net).__name__, net.activation)
    assert dtype == str(net.layers[0].W[...].dtype if hasattr(net, "layers") else net.W[...].dtype)
    np.testing.assert_array_equal(np.load(tmp_path / "pred.npy"), np.asarray(net(X)))
    again = checkpoint.load(path)
    np.testing.assert_array_equal(again(X), net(X))
    assert checkpoint.read_metadata(path)["kept"] == [0, 1, 2]


def test_mismatched_and_damaged_files_raise_clear_errors(tmp_path):
    net = models.DeepVVNet([3, 5, 2], rngs=nnx.Rngs(0))
    path = checkpoint.save(net, tmp_path / "deep.vvjax")
    with pytest.raises(checkpoint.CheckpointError, match="does not match like.*widths"):
        checkpoint.load(path, like=models.DeepVVNet([3, 6, 2], rngs=nnx.Rngs(0)))
    with pytest.raises(checkpoint.CheckpointError, match="activation"):
        checkpoint.load(path, like=models.DeepVVNet([3, 5, 2], rngs=nnx.Rngs(0),
                                                    activation="tanh"))
    (tmp_path / "junk.vvjax").write_bytes(b"not a checkpoint at all")
    with pytest.raises(checkpoint.CheckpointError, match="not a vvjax checkpoint"):
        checkpoint.load(tmp_path / "junk.vvjax")
    with pytest.raises(checkpoint.CheckpointError, match="not a file"):
        checkpoint.load(tmp_path / "missing.vvjax")
    blob = path.read_bytes()
    (tmp_path / "cut.vvjax").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(checkpoint.CheckpointError):
        checkpoint.load(tmp_path / "cut.vvjax")
    with pytest.raises(TypeError, match="model must be"):
        checkpoint.save(object(), tmp_path / "x.vvjax")


def test_loading_into_a_template_of_the_same_architecture(tmp_path):
    net = models.ShallowVVNet(3, 4, 2, rngs=nnx.Rngs(3))
    path = checkpoint.save(net, tmp_path / "s.vvjax")
    other = models.ShallowVVNet(3, 4, 2, rngs=nnx.Rngs(9))
    loaded = checkpoint.load(path, like=other)
    np.testing.assert_array_equal(loaded(X), net(X))
    assert not np.array_equal(other(X), net(X))  # the template itself is untouched
