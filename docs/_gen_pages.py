"""Build-time pages (mkdocs-gen-files): one API page per public module, and the jupytext
notebooks copied in from ../notebooks so that mkdocs-jupyter renders them."""

from pathlib import Path

import mkdocs_gen_files

ROOT = Path(__file__).resolve().parent.parent
MODULES = ["models", "activations", "objectives", "train", "analysis", "norms", "lasso", "compress",
           "data", "checkpoint", "convergence", "results", "configs", "runs", "report", "reproduce"]

PACKAGES = {"plots": sorted(p.stem for p in (ROOT / "vvjax" / "plots").glob("*.py")
                           if not p.stem.startswith("_"))}
"""Packages whose page renders every public submodule (mkdocstrings shows a package's own
docstring only)."""
MODULES += list(PACKAGES)

for name in MODULES:
    with mkdocs_gen_files.open(Path("api", f"{name}.md"), "w") as fh:
        fh.write(f"# vvjax.{name}\n\n::: vvjax.{name}\n"
                 + "".join(f"\n::: vvjax.{name}.{sub}\n" for sub in PACKAGES.get(name, ())))
with mkdocs_gen_files.open("api/index.md", "w") as fh:
    fh.write("# API reference\n\nOne page per module of the library (generated from the "
             "docstrings):\n\n" + "".join(f"- [vvjax.{m}]({m}.md)\n" for m in MODULES))

for nb in sorted((ROOT / "notebooks").glob("*.py")):
    with mkdocs_gen_files.open(Path("notebooks", nb.name), "w") as fh:
        fh.write(nb.read_text())
