"""experiments/width_sweep.py end to end: a tiny multirun under the joblib launcher with its
aggregation (summary files and figures), resuming into the same sweep folder, a sweep killed
with SIGKILL half-way, and a bad sweep value refused before any training."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vvjax import results

ROOT = Path(__file__).resolve().parent.parent
ENTRY = ROOT / "experiments" / "width_sweep.py"
TINY = ["debug=smoke", "data.kind=teacher", "figures=false"]


def _cmd(sweep, *overrides):
    return [sys.executable, str(ENTRY), "-m", f"hydra.sweep.dir={sweep}", *TINY, *overrides]


def _run(sweep, *overrides, timeout=300):
    env = {**os.environ, "MPLBACKEND": "Agg"}
    return subprocess.run(_cmd(sweep, *overrides), cwd=sweep.parent, env=env,
                          capture_output=True, text=True, timeout=timeout)


def _finished(sweep):
    return {p.parent.name: p.stat().st_mtime_ns for p in sweep.glob("*/metrics.json")}


@pytest.mark.slow
def test_tiny_sweep_under_joblib_aggregates_and_resumes(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    sweep = tmp_path / "sweep"
    proc = _run(sweep, "data.n=3", "data.d_out=1,2", "hydra/launcher=parallel")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Joblib.Parallel(" in proc.stdout + proc.stderr  # the joblib launcher ran the jobs
    done = _finished(sweep)
    assert len(done) == 2
    for job in done:  # sweeps name job folders by config hash
        assert json.loads((sweep / job / "metrics.json").read_text())["config_hash"] == job
    rows = [json.loads(x) for x in (sweep / "summary.jsonl").read_text().splitlines()]
    assert len(rows) == 2 * 4  # 2 jobs x (2 lambdas x 2 seeds)
    assert {(r["d_out"], r["lam"], r["init_seed"]) for r in rows} == {
        (d, lam, s) for d in (1, 2) for lam in (1e-3, 1e-2) for s in (0, 1)}
    assert all(len(r["per_output"]) == r["d_out"] for r in rows)
    figs = sorted(p.name for p in (sweep / "figures").glob("*.png"))
    assert figs == ["sharing_vs_d.png", "width_vs_lambda.png", "width_vs_n.png"]
    # relaunching into the same sweep folder redoes nothing
    again = _run(sweep, "data.n=3", "data.d_out=1,2", "hydra/launcher=parallel")
    assert again.returncode == 0, again.stderr[-3000:]
    assert _finished(sweep) == done
    assert again.stdout.count("reusing it") + again.stderr.count("reusing it") == 2


@pytest.mark.slow
def test_killed_sweep_loses_no_finished_job_and_resumes(tmp_path):
    sweep = tmp_path / "sweep"
    sweep.parent.mkdir(exist_ok=True)
    overrides = ["data.n=3", "data.d_out=1,2,3", "steps=3000"]
    proc = subprocess.Popen(_cmd(sweep, *overrides), cwd=tmp_path, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "MPLBACKEND": "Agg"})
    try:
        deadline = time.monotonic() + 240
        while not _finished(sweep) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert proc.poll() is None, "the sweep ended before it could be killed half-way"
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    done = _finished(sweep)
    assert len(done) in (1, 2), done
    scan = results.scan_sweep(sweep)
    assert {r["job"] for r in scan.records} == set(done)  # every finished job is intact
    assert not scan.failed  # a SIGKILL leaves no failure record: the job is unfinished
    resumed = _run(sweep, *overrides)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    after = _finished(sweep)
    assert len(after) == 3
    assert {k: after[k] for k in done} == done  # the finished ones were not redone
    assert not results.scan_sweep(sweep).unfinished


@pytest.mark.slow
def test_bad_sweep_value_is_refused_before_any_training(tmp_path):
    sweep = tmp_path / "sweep"
    proc = _run(sweep, "data.n=3,0", "data.d_out=1")
    assert proc.returncode != 0
    assert "data.n must be >= 1, got 0" in proc.stderr
    assert not list(sweep.glob("*/metrics.json")) and not list(sweep.glob("*/arrays.npz"))
    proc = _run(sweep, "data.n=3", "data.d_out=1", "data.kind=teacher,mnist")
    assert proc.returncode != 0 and "data.kind" in proc.stderr
    assert not list(sweep.glob("*/metrics.json"))
