"""Run records: atomic writes, config identity, one process per job folder, sweep scans."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

from vvjax import results
from vvjax.runs import LassoBoundsConfig, run_job
from vvjax.runs.neuron_sharing import NeuronSharingConfig

ROOT = Path(__file__).resolve().parent.parent


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


def _leaf_changes(cfg, prefix=""):
    """Every leaf field of a config dataclass, each with a changed value: (dotted name, cfg')."""
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if dataclasses.is_dataclass(v):
            for name, sub, compared in _leaf_changes(v, f"{prefix}{f.name}."):
                yield name, dataclasses.replace(cfg, **{f.name: sub}), compared and f.compare
            continue
        if isinstance(v, bool):
            new = not v
        elif isinstance(v, (int, float)):
            new = v + 1
        elif isinstance(v, str):
            new = v + "x"
        elif v is None:
            new = 7
        elif isinstance(v, list):
            new = v + v[:1]
        elif isinstance(v, dict):
            new = {**v, "extra": next(iter(v.values()))}
        else:  # pragma: no cover
            raise AssertionError(f"no change rule for {f.name}")
        yield f"{prefix}{f.name}", dataclasses.replace(cfg, **{f.name: new}), f.compare


@pytest.mark.parametrize("cfg", [NeuronSharingConfig(), LassoBoundsConfig()],
                         ids=["neuron_sharing", "lasso_bounds"])
def test_config_hash_covers_exactly_the_compared_fields(cfg):
    """The rule: every field counts except those declared field(compare=False)."""
    base = results.config_hash(cfg)
    ignored = []
    for name, changed, compared in _leaf_changes(cfg):
        if compared:
            assert results.config_hash(changed) != base, name
        else:
            assert results.config_hash(changed) == base, name
            ignored.append(name)
    assert sorted(ignored) == (["figures", "progress"] if isinstance(cfg, NeuronSharingConfig)
                               else ["figures"])


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
    for key in ("config", "config_hash", "seed", "wall_time_s", "provenance", "started_at"):
        assert key in m1
    assert m1["provenance"]["versions"]["jax"]
    with pytest.raises(results.JobExistsError, match="different config"):
        run_job(NeuronSharingConfig(steps=11), tmp_path, body, task="t")
    # issue 8, item 10: progress=true on a finished job resumes it (progress is not a number)
    m3 = run_job(NeuronSharingConfig(steps=10, progress=True, figures=False), tmp_path, body,
                 task="t")
    assert len(calls) == 1 and m3["config_hash"] == m1["config_hash"]


def test_failed_job_leaves_a_record_and_a_rerun_clears_it(tmp_path):
    def bad(cfg, out_dir):
        raise FloatingPointError("loss is nan at step 7")

    cfg = NeuronSharingConfig(steps=10)
    with pytest.raises(FloatingPointError):
        run_job(cfg, tmp_path, bad, task="t")
    rec = json.loads((tmp_path / results.FAILED_FILE).read_text())
    assert rec["status"] == "failed" and rec["error"] == "FloatingPointError: loss is nan at step 7"
    assert rec["config_hash"] == results.config_hash(cfg) and "Traceback" in rec["traceback"]
    assert not (tmp_path / results.METRICS_FILE).exists()
    run_job(cfg, tmp_path, lambda c, o: {"v": 1}, task="t")
    assert not (tmp_path / results.FAILED_FILE).exists()


# ----------------------------------------------------------------------------- one job per folder

_HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from vvjax.runs import run_job
    from vvjax.runs.neuron_sharing import NeuronSharingConfig

    out, seed, go = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])

    def body(cfg, out_dir):
        while not go.exists():  # hold the folder until the test says go
            time.sleep(0.02)
        return {"seed_used": cfg.seed}

    try:
        m = run_job(NeuronSharingConfig(seed=seed, steps=10), out, body, task="t")
        print("finished", m["seed_used"])
    except Exception as exc:
        print(type(exc).__name__, exc)
        sys.exit(3)
""")


def _start(tmp_path, out, seed, go):
    script = tmp_path / "holder.py"
    script.write_text(_HOLDER)
    return subprocess.Popen([sys.executable, str(script), str(out), str(seed), str(go)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for_claim(out, pid, timeout=120):
    lock = out / results.LOCK_FILE
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if json.loads(lock.read_text())["pid"] == pid:
                return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"process {pid} did not claim {out}")


def test_second_process_is_refused_and_a_killed_holder_leaves_no_stale_lock(tmp_path):
    """Issue 8, item 6, with real processes: while process A runs a job in a folder, process B
    is refused by name (any config); A's result is the one kept. Then a holder killed with
    SIGKILL leaves the folder free for the next job at once."""
    out, go = tmp_path / "job", tmp_path / "go"
    a = _start(tmp_path, out, 1, go)
    _wait_for_claim(out, a.pid)
    b = _start(tmp_path, out, 2, go)
    b_out, _ = b.communicate(timeout=120)
    assert b.returncode == 3, b_out
    assert f"JobBusyError {out} is in use by pid {a.pid} on host" in b_out, b_out
    go.touch()
    a_out, _ = a.communicate(timeout=300)
    assert a.returncode == 0 and "finished 1" in a_out, a_out
    assert json.loads((out / "metrics.json").read_text())["seed"] == 1
    assert scan_status(tmp_path)["job"] == "finished"

    out2, go2 = tmp_path / "job2", tmp_path / "go2"
    c = _start(tmp_path, out2, 5, go2)
    _wait_for_claim(out2, c.pid)
    assert scan_status(tmp_path)["job2"].startswith(f"running: pid {c.pid}")
    os.kill(c.pid, signal.SIGKILL)
    c.communicate(timeout=60)
    assert "started but left no result" in scan_status(tmp_path)["job2"]
    go2.touch()
    m = run_job(NeuronSharingConfig(seed=5, steps=10), out2, lambda c, o: {"seed_used": c.seed},
                task="t")
    assert m["seed_used"] == 5


def test_claim_is_exclusive_within_one_process(tmp_path):
    with results.claim_job(tmp_path, "abc"):
        with pytest.raises(results.JobBusyError, match=f"pid {os.getpid()}"):
            with results.claim_job(tmp_path, "def"):
                pass
    with results.claim_job(tmp_path, "def"):  # released at the end of the block
        pass


# ----------------------------------------------------------------------------- sweeps

def scan_status(sweep):
    scan = results.scan_sweep(sweep)
    status = {r["job"]: "finished" for r in scan.records}
    status.update({j: "duplicate" for j in scan.duplicates})
    status.update({j: f"failed: {w}" for j, w in scan.failed.items()})
    status.update(scan.unfinished)
    return status


def test_scan_sweep_reports_every_job_by_name(tmp_path):
    def ok(cfg, out_dir):
        return {"v": float(cfg.steps), "curve": [1.0, 0.5], "runs": {"a": {"status": "ok"}}}

    def bad(cfg, out_dir):
        raise ValueError("lam must be >= 0")

    for job, steps in (("0", 1), ("1", 2), ("2", 1)):  # "2" repeats the config of "0"
        run_job(NeuronSharingConfig(steps=steps), tmp_path / job, ok, task="t")
    with pytest.raises(ValueError):
        run_job(NeuronSharingConfig(steps=3), tmp_path / "3", bad, task="t")
    with pytest.raises(ValueError):
        run_job(NeuronSharingConfig(steps=2), tmp_path / "4", bad, task="t")
    (tmp_path / "5").mkdir()
    (tmp_path / "5" / "neuron_sharing.log").write_text("")  # stopped before its config passed
    (tmp_path / "figures_only").mkdir()  # not a job

    scan = results.scan_sweep(tmp_path)
    assert [r["job"] for r in scan.records] == ["0", "1"]
    assert scan.duplicates == {"2": "0"}
    assert scan.failed == {"3": "ValueError: lam must be >= 0",
                           "4": "ValueError: lam must be >= 0 (the same config finished later "
                                "in 1)"}
    assert list(scan.unfinished) == ["5"]
    rec = scan.records[0]
    assert rec["v"] == 1.0 and rec["curve"] == [1.0, 0.5]  # lists are kept
    assert rec["runs.a.status"] == "ok" and rec["config.steps"] == 1
    with pytest.warns(results.SweepWarning, match=r"duplicate: 2 has the config of 0.*failed: 3"):
        assert results.load_sweep(tmp_path) == scan.records


def test_load_sweep_orders_jobs_by_start(tmp_path):
    for job, steps in (("b", 1), ("a", 2)):
        run_job(NeuronSharingConfig(steps=steps), tmp_path / job, lambda c, o: {}, task="t")
        time.sleep(0.01)  # started_at has millisecond resolution
    assert [r["config.steps"] for r in results.load_sweep(tmp_path)] == [1, 2]
