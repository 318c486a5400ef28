"""Every direct import is a declared dependency, and CI's lowest-versions pins are the bounds."""

import ast
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
OPTIONAL_IMPORTS = {  # module -> the only files that may import it (from an extra)
    "torch": {"experiments/make_paper_data.py"},  # bench extra: regenerates the shipped arrays
}
LOCAL = {"vvjax", "jobs"}  # the package, and experiments/jobs.py next to the entry points


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[; ]", req, maxsplit=1)[0].lower().replace("_", "-")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    mods = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            mods.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            mods.add(node.module.split(".")[0])
    return mods


def test_every_direct_import_is_declared():
    declared = {_name(r) for r in PYPROJECT["project"]["dependencies"]}
    dists = metadata.packages_distributions()
    missing = []
    for path in sorted([*ROOT.glob("vvjax/**/*.py"), *ROOT.glob("experiments/*.py")]):
        rel = str(path.relative_to(ROOT))
        for mod in sorted(_imports(path) - LOCAL - set(sys.stdlib_module_names)):
            if rel in OPTIONAL_IMPORTS.get(mod, ()):
                continue
            names = {_name(d) for d in dists.get(mod, [])}
            if not names & declared:
                missing.append(f"{rel}: import {mod} (distribution {sorted(names) or '?'})")
    assert not missing, "undeclared direct imports:\n" + "\n".join(missing)


def test_lowest_pins_are_the_declared_lower_bounds():
    pins = {}
    for line in (ROOT / ".ci" / "lowest.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[_name(name)] = version
    for req in PYPROJECT["project"]["dependencies"]:
        bound = re.search(r">=\s*([\w.]+)", req)
        assert bound, f"{req}: every dependency needs a lower bound"
        pinned = pins.get(_name(req))
        assert pinned is not None, f"{_name(req)} is not pinned in .ci/lowest.txt"
        assert _release(pinned) == _release(bound.group(1)), (
            f"{_name(req)}: .ci/lowest.txt pins {pinned}, pyproject.toml says {req}")


def _release(version: str) -> tuple[list[int], str]:
    """``"2.0"`` and ``"2.0.0"`` -> ``([2], "")``: release numbers without trailing zeros, and
    any suffix (``"0.0.2.post1"`` -> ``([0, 0, 2], ".post1")``)."""
    numbers, suffix = re.fullmatch(r"(\d+(?:\.\d+)*)(.*)", version).groups()
    parts = [int(x) for x in numbers.split(".")]
    while parts and parts[-1] == 0:
        parts.pop()
    return parts, suffix


def test_notebooks_extra_can_execute_notebooks():
    extra = {_name(r) for r in PYPROJECT["project"]["optional-dependencies"]["notebooks"]}
    assert {"jupytext", "nbconvert", "ipykernel"} <= extra  # jupytext --execute needs all three
