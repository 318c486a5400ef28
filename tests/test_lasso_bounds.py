"""End-to-end: the multi-task-lasso histogram runner (docs/paper.md §7.2-7.4) and its entry
point."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError

from vvjax import results
from vvjax.configs import register_configs
from vvjax.runs.lasso_bounds import (
    BruteForcePanelsConfig,
    LassoBoundsConfig,
    RandomPanelsConfig,
    RankPanelsConfig,
    random_problems,
    run_lasso_bounds,
)

ROOT = Path(__file__).resolve().parent.parent
ENTRY = ROOT / "experiments" / "lasso_bounds.py"
CONF = ROOT / "conf" / "lasso_bounds"


def _smoke(figure: str, **kw) -> LassoBoundsConfig:
    """The ``debug=smoke`` sizes (kept in sync by ``test_smoke_yaml_matches_helper``)."""
    return LassoBoundsConfig(figure=figure, trials=3,
                             random=RandomPanelsConfig(k=60, n_values=[4, 6]),
                             rank=RankPanelsConfig(n=8, k=40, ranks=[2, 4]),
                             bruteforce=BruteForcePanelsConfig(k_values=[5, 6]), **kw)


def _compose(overrides=()):
    register_configs()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("config", overrides=list(overrides))


def _check_panels(metrics: dict, out_dir: Path) -> None:
    with np.load(out_dir / "arrays.npz") as z:
        for name, p in metrics["panels"].items():
            lower = z[f"{name}/rank_phi"]
            upper = lower * z[f"{name}/rank_psi"]
            series = ["solver", "sparsified"] + (["sparsest"] if "sparsest" in p else [])
            for s in series:
                counts = z[f"{name}/{s}_counts"]
                assert counts.tolist() == p[s]["counts"]
                assert np.all(counts >= lower) and np.all(counts <= upper), (name, s, counts)
                assert p[s]["frac_within_bounds"] == 1.0
            assert np.all(z[f"{name}/sparsified_counts"] <= upper)
            assert np.all(z[f"{name}/sparsified_counts"] <= z[f"{name}/solver_counts"])
            np.testing.assert_allclose(z[f"{name}/sparsified_objective"], z[f"{name}/objective"],
                                       rtol=1e-5)
            assert p["max_rel_residual"] < 1e-4 and p["sparsify_max_rel_residual"] < 1e-4
            if "sparsest" in p:  # the sparsest optimum never needs more columns than sparsify found
                assert np.all(z[f"{name}/sparsest_counts"] <= z[f"{name}/sparsified_counts"])
    assert metrics["all_within_bounds"] and metrics["frac_within_bounds"] == 1.0


@pytest.mark.parametrize("figure", ["random", "rank", "bruteforce"])
def test_runner_counts_within_bounds(tmp_path, figure):
    m = run_lasso_bounds(_smoke(figure), tmp_path)
    for name in ("metrics.json", "arrays.npz", f"figures/lasso_{figure}.png",
                 f"figures/lasso_{figure}.pdf"):
        assert (tmp_path / name).is_file(), name
    stored = json.loads((tmp_path / "metrics.json").read_text())
    assert stored["figure"] == figure and stored["config"]["trials"] == 3
    assert len(stored["panels"]) == 2 and "paper" in next(iter(stored["panels"].values()))
    _check_panels(stored, tmp_path)
    assert m["config_hash"] == stored["config_hash"]


def test_rank_panels_have_the_requested_rank_and_d_rows(tmp_path):
    m = run_lasso_bounds(_smoke("rank", figures=False), tmp_path)
    for r in (2, 4):
        p = m["panels"][f"r={r}"]
        assert p["rank_phi"] == [r] and p["rank_psi"] == [r]  # D=10 >= r rows: rank(Psi) = r
        assert p["lower_bound"] == r and p["upper_bound"] == r * r
        assert p["title"].startswith("D=10,")
    assert "D=10 rows" in m["psi_rows_note"]


def test_resume_and_refuse_other_config(tmp_path):
    cfg = _smoke("random", figures=False)
    m = run_lasso_bounds(cfg, tmp_path)
    mtime = os.path.getmtime(tmp_path / "metrics.json")
    again = run_lasso_bounds(cfg, tmp_path)
    assert again["config_hash"] == m["config_hash"] and again["panels"] == m["panels"]
    assert os.path.getmtime(tmp_path / "metrics.json") == mtime
    with pytest.raises(results.JobExistsError):
        run_lasso_bounds(_smoke("random", figures=False, seed=1), tmp_path)


def test_problems_are_reproducible_and_prefix_stable():
    import jax

    a = random_problems(jax.random.key(3), 5, d_out=2, k=7, n=3)
    b = random_problems(jax.random.key(3), 8, d_out=2, k=7, n=3)
    for x, y in zip(a, b, strict=True):  # trial t is the same problem whatever the trial count
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y)[:5])


def test_bad_config_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="figure"):
        run_lasso_bounds(LassoBoundsConfig(figure="fig3"), tmp_path)
    with pytest.raises(TypeError):
        run_lasso_bounds({"figure": "random"}, tmp_path)


def test_presets_compose_and_misspelled_key_fails():
    presets = {p.stem for p in (CONF / "preset").glob("*.yaml")}
    assert {"random", "rank", "bruteforce", "bruteforce_paper"} <= presets
    default = OmegaConf.to_object(_compose())
    assert isinstance(default, LassoBoundsConfig) and default.figure == "random"
    assert default.trials == 100 and default.random.k == 500 and default.random.n_values == [
        10, 20, 30, 40]
    rank = OmegaConf.to_object(_compose(["preset=rank"]))
    assert rank.figure == "rank" and rank.rank.ranks == [2, 5, 10, 20] and rank.rank.d_out == 10
    paper = OmegaConf.to_object(_compose(["preset=bruteforce_paper"]))
    assert paper.figure == "bruteforce" and paper.trials == 1000
    assert paper.bruteforce.k_values == [7, 8, 9, 10, 11]
    with pytest.raises((ConfigCompositionException, ConfigKeyError), match="trails"):
        _compose(["trails=3"])
    with pytest.raises((ConfigCompositionException, ConfigKeyError), match="n_valuez"):
        _compose(["random.n_valuez=[3]"])


def test_smoke_yaml_matches_helper():
    for figure in ("random", "rank", "bruteforce"):
        cfg = OmegaConf.to_object(_compose([f"preset={figure}", "debug=smoke"]))
        assert cfg == _smoke(figure)


def _run(args, timeout=600):
    env = {**os.environ, "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, str(ENTRY), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.mark.slow
def test_entry_point_run_and_sweep(tmp_path):
    proc = _run(["debug=smoke", f"hydra.run.dir={tmp_path / 'run'}"])
    assert "[lasso_bounds:random]" in proc.stdout
    assert (tmp_path / "run" / "metrics.json").is_file()
    assert (tmp_path / "run" / ".hydra" / "config.yaml").is_file()

    sweep = tmp_path / "sweep"
    args = ["-m", "preset=random,rank,bruteforce", "debug=smoke", f"hydra.sweep.dir={sweep}"]
    _run(args)
    recs = results.load_sweep(sweep)
    assert [r["config.figure"] for r in recs] == ["random", "rank", "bruteforce"]
    assert all(r["all_within_bounds"] for r in recs)
    mtimes = [os.path.getmtime(sweep / r["job"] / "metrics.json") for r in recs]
    _run(args)  # resume: nothing is recomputed or overwritten
    assert [os.path.getmtime(sweep / r["job"] / "metrics.json") for r in recs] == mtimes
