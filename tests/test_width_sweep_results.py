"""Sweeps whose jobs record members: one row per (job, lambda, seed) in load_sweep and in the
aggregated summary.csv / summary.jsonl (experiments/aggregate.py), read back as a user would."""

import csv
import importlib.util
import json
from pathlib import Path

import pytest

from vvjax import results

ROOT = Path(__file__).resolve().parent.parent


def _job(sweep, name, members, **extra):
    results.save_json(sweep / name / results.METRICS_FILE,
                      {"task": "toy", "config_hash": name, "started_at": name, "n": 4,
                       "members": members, **extra})


def test_expand_members_rows():
    recs = [{"job": "a", "n": 4, "members": [{"lam": 0.1, "w": [1, 2], "c": {"d": 1}},
                                             {"lam": 0.2, "w": [3], "c": {"d": 2}}]},
            {"job": "b", "n": 5}]
    rows = results.expand_members(recs)
    assert rows == [{"job": "a", "n": 4, "member_index": 0, "lam": 0.1, "w": [1, 2], "c.d": 1},
                    {"job": "a", "n": 4, "member_index": 1, "lam": 0.2, "w": [3], "c.d": 2},
                    {"job": "b", "n": 5}]
    with pytest.raises(ValueError, match=r"job a: member 0 has key\(s\) \['n'\]"):
        results.expand_members([{"job": "a", "n": 4, "members": [{"n": 3}]}])
    with pytest.raises(ValueError, match="job a: 'members' must be a list of mappings"):
        results.expand_members([{"job": "a", "members": [1, 2]}])


def _aggregate(argv):
    spec = importlib.util.spec_from_file_location("aggregate", ROOT / "experiments" /
                                                  "aggregate.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.main(argv)


def test_load_sweep_and_summary_have_one_row_per_member(tmp_path, capsys):
    _job(tmp_path, "j1", [{"lam": 0.1, "init_seed": 0, "status": "ok", "per_output": [2, 3],
                           "certified_width": 4, "flag": True},
                          {"lam": 0.1, "init_seed": 1, "status": "collapsed",
                           "per_output": [0, 0], "certified_width": None, "flag": False}])
    _job(tmp_path, "j2", [{"lam": 0.3, "init_seed": 0, "status": "ok", "per_output": [1, 1],
                           "certified_width": 2, "flag": True}], n_extra=7)
    rows = results.load_sweep(tmp_path)
    assert [(r["job"], r["lam"], r["init_seed"]) for r in rows] == [
        ("j1", 0.1, 0), ("j1", 0.1, 1), ("j2", 0.3, 0)]
    assert rows[0]["per_output"] == [2, 3]
    assert _aggregate([str(tmp_path), "--no-figures"]) == 0
    status = json.loads((tmp_path / "summary_status.json").read_text())
    assert status["flagged"] == {"j1": {"member 1": "collapsed"}}
    assert "flagged: j1: member 1 collapsed" in capsys.readouterr().err
    lines = [json.loads(x) for x in (tmp_path / "summary.jsonl").read_text().splitlines()]
    assert [x["per_output"] for x in lines] == [[2, 3], [0, 0], [1, 1]]
    # the CSV as a user reads it: scalars as scalars, lists as JSON text, missing as empty
    with open(tmp_path / "summary.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert [json.loads(r["per_output"]) for r in table] == [[2, 3], [0, 0], [1, 1]]
    assert [r["certified_width"] for r in table] == ["4", "", "2"]
    pd = pytest.importorskip("pandas")
    df = pd.read_csv(tmp_path / "summary.csv")
    assert len(df) == 3 and df["lam"].dtype.kind == "f" and df["init_seed"].dtype.kind == "i"
    assert df["certified_width"].isna().tolist() == [False, True, False]
    assert df["flag"].dtype == bool and df["n_extra"].isna().sum() == 2
    assert df.groupby("job")["lam"].count().to_dict() == {"j1": 2, "j2": 1}
