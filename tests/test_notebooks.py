"""Every jupytext notebook under notebooks/ runs top to bottom (smoke sizes) under nbmake."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.py"))


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(notebook, tmp_path):
    jupytext = pytest.importorskip("jupytext")
    pytest.importorskip("nbmake")
    nb = jupytext.read(notebook)
    target = tmp_path / f"{notebook.stem}.ipynb"
    jupytext.write(nb, target)
    env = {**os.environ, "VVJAX_SMOKE": "1", "MPLBACKEND": "Agg"}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbmake",
         "--nbmake-timeout=600", str(target), "-W", "ignore::DeprecationWarning"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
