"""The documentation site builds with warnings as errors (a broken link or cross-reference, or a
docstring mkdocstrings cannot parse, fails the build)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_docs_build_strict(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f",
                           str(ROOT / "mkdocs.yml"), "-d", str(tmp_path / "site")],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    site = tmp_path / "site"
    for page in ("index.html", "api/train/index.html", "paper/index.html",
                 "notebooks/neuron_sharing/index.html", "experiments/neuron_sharing/index.html",
                 "api/compress/index.html", "api/plots/index.html",
                 *(f"experiments/{page.stem}/index.html"
                   for page in sorted((ROOT / "docs" / "experiments").glob("*.md"))
                   if page.stem != "index"),
                 *(f"notebooks/{nb.stem}/index.html"
                   for nb in sorted((ROOT / "notebooks").glob("*.py")))):
        assert (site / page).is_file(), page
    assert "fit_batch" in (site / "api/train/index.html").read_text()
