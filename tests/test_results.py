import json
import os

import jax.numpy as jnp
import numpy as np
import pytest

from vvjax import results
from vvjax.runs import run_job
from vvjax.runs.neuron_sharing import NeuronSharingConfig


def test_save_json_is_atomic_and_jsonable(tmp_path):
    path = results.save_json(tmp_path / "a" / "m.json",
                             {"x": jnp.float32(1.5), "arr": np.arange(3),
                              "cfg": NeuronSharingConfig()})
    data = json.loads(path.read_text())
    assert data["x"] == 1.5 and data["arr"] == [0, 1, 2] and data["cfg"]["data"]["n"] == 50
    assert [p.name for p in path.parent.iterdir()] == ["m.json"]  # no temp file left behind


def test_failed_write_leaves_previous_file(tmp_path):
    path = results.save_json(tmp_path / "m.json", {"ok": 1})
    with pytest.raises(TypeError):
        results.save_json(path, {"bad": object()})
    assert json.loads(path.read_text()) == {"ok": 1}
    assert len(list(tmp_path.iterdir())) == 1


def test_npz_roundtrip(tmp_path):
    results.save_npz(tmp_path / "a.npz", W=jnp.ones((2, 3)), skip=None)
    with np.load(tmp_path / "a.npz") as z:
        assert list(z.keys()) == ["W"] and z["W"].shape == (2, 3)


def test_config_hash_changes_with_config():
    a, b = NeuronSharingConfig(), NeuronSharingConfig(steps=10)
    assert results.config_hash(a) == results.config_hash(NeuronSharingConfig())
    assert results.config_hash(a) != results.config_hash(b)


def test_run_job_resumes_and_refuses_overwrite(tmp_path):
    calls = []

    def body(cfg, out_dir):
        calls.append(out_dir)
        return {"value": 3.0}

    cfg = NeuronSharingConfig(steps=10)
    m1 = run_job(cfg, tmp_path, body, task="t")
    mtime = os.path.getmtime(tmp_path / "metrics.json")
    m2 = run_job(cfg, tmp_path, body, task="t")
    assert len(calls) == 1 and m2["value"] == m1["value"] == 3.0
    assert os.path.getmtime(tmp_path / "metrics.json") == mtime
    for key in ("config", "config_hash", "seed", "wall_time_s", "provenance"):
        assert key in m1
    assert m1["provenance"]["versions"]["jax"]
    with pytest.raises(results.JobExistsError, match="different config"):
        run_job(NeuronSharingConfig(steps=11), tmp_path, body, task="t")


def test_load_sweep_skips_unfinished(tmp_path):
    for i, v in enumerate([1.0, 2.0]):
        run_job(NeuronSharingConfig(steps=i + 1), tmp_path / str(i), lambda c, o, v=v: {"v": v},
                task="t")
    (tmp_path / "2").mkdir()  # an interrupted job: no metrics.json
    recs = results.load_sweep(tmp_path)
    assert [r["job"] for r in recs] == ["0", "1"]
    assert [r["v"] for r in recs] == [1.0, 2.0]
    assert [r["config.steps"] for r in recs] == [1, 2]


def test_non_finite_numpy_values_are_saved(tmp_path):
    path = results.save_json(tmp_path / "m.json",
                             {"a": np.float32("nan"), "b": np.array([1.0, np.inf])})
    assert json.loads(path.read_text()) == {"a": "nan", "b": [1.0, "inf"]}
    assert (path.stat().st_mode & 0o777) == (0o666 & ~_umask())


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask
