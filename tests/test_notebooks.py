"""Every jupytext notebook under notebooks/ runs top to bottom (smoke sizes) with the README's
command, ``jupytext --to ipynb --execute`` (the ``notebooks`` extra; the ``test`` extra has it),
and the named numbers it prints have the properties the theory says they must have."""

import json
import operator
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.py"))

CHECK_LINE = re.compile(r"^CHECK (\w+) = (\S+)$", re.MULTILINE)
_OPS = {"==": operator.eq, "<": operator.lt, "<=": operator.le, ">": operator.gt,
        ">=": operator.ge}
EXPECTED: dict[str, dict[str, list[tuple[str, float]]]] = {
    "neuron_sharing": {  # weight decay = VV norm after balancing (float32 run: 1e-5)
        "balanced_wd_vv_rel_diff": [("<", 1e-5)],
    },
    "width_sweep": {  # the sparsity theorem: sparsify and the certified lasso stay within it
        "sparsified_above_rank_bound": [("==", 0)],
        "n_certified_members": [(">=", 1)],  # the checks above are not over empty sets
        "n_sparsified_members": [(">=", 1)],
        "certified_above_bound": [("==", 0)],
    },
    "network_compression": {  # the smaller network computes what the zero-column one does;
        # and its lasso is certified
        "smaller_vs_zero_columns_max_diff": [("<", 1e-8)],
        "lasso_rel_gap": [(">=", 0), ("<=", 1e-6)],
    },
    "lasso_histograms": {
        "counts_above_rank_bound": [("==", 0)],  # multi-task lasso sparsity theorem
        "counts_below_rank_psi": [("==", 0)],  # every feasible V has >= rank(Psi) columns
        "sparsify_rel_objective_change": [("<", 1e-5)],  # solves certified to 1e-6
        "constrained_rel_gap_numpy": [(">=", 0), ("<", 1e-5)],  # weak duality, in NumPy
        "penalized_sklearn_rel_objective_diff": [("<", 1e-6)],  # scikit-learn's MultiTaskLasso
    },
    "deep_widths": {
        "certified_above_rank_bound": [("==", 0)],
        "last_layer_rank_psi_above_d": [("==", 0)],  # rank(Psi) <= D in the last hidden layer
        "certified_norm_excess": [("<=", 1e-9)],  # never worse than the trained layer
        "penalized_above_bound": [("==", 0)],
    },
    "activations": {  # weight decay = VV norm exactly when the activation is homogeneous
        "homogeneous_wd_vv_gap": [(">=", 0), ("<", 1e-4)],
        "gelu_wd_vv_gap": [(">", 1e-3)],
        "recomputed_gap_max_diff": [("<", 1e-10)],
        "relu_rescaling_output_change": [("<", 1e-12)],
        "gelu_rescaling_output_change": [(">", 1e-4)],
    },
}
"""Per notebook, the numbers it prints as ``CHECK <name> = <value>`` and the conditions each must
meet, stated here from the theory and the solvers' tolerances (not copied from the notebooks'
output): a notebook that stops computing one of them, or loosens its own assert, fails here.
Every notebook must have an entry."""


def _checks(cells) -> dict[str, float]:
    text = "".join("".join(o["text"]) for c in cells for o in c.get("outputs", [])
                   if o["output_type"] == "stream" and o["name"] == "stdout")
    return {name: float(value) for name, value in CHECK_LINE.findall(text)}


def test_every_notebook_declares_its_checks():
    assert {p.stem for p in NOTEBOOKS} == set(EXPECTED)


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(notebook, tmp_path):
    target = tmp_path / f"{notebook.stem}.ipynb"
    env = {**os.environ, "VVJAX_SMOKE": "1", "MPLBACKEND": "Agg"}
    proc = subprocess.run(
        [sys.executable, "-m", "jupytext", "--to", "ipynb", "--execute", str(notebook),
         "-o", str(target)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    cells = json.loads(target.read_text())["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    assert code and all(c["execution_count"] for c in code)  # every cell ran
    errors = [o for c in code for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert not errors, errors
    found = _checks(code)
    for name, conditions in EXPECTED[notebook.stem].items():
        assert name in found, f"{notebook.name} printed no 'CHECK {name} = ...' line"
        for op, bound in conditions:
            assert _OPS[op](found[name], bound), (
                f"{notebook.stem}: {name} = {found[name]}, expected {op} {bound}")
