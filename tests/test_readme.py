"""The README's "Library at a glance" example runs as printed (with fewer training steps)."""

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_library_at_a_glance_runs():
    text = README.read_text()
    code = re.search(r"## Library at a glance\n\n```python\n(.*?)```", text, re.S).group(1)
    assert "steps=100_000" in code
    namespace: dict = {}
    exec(compile(code.replace("steps=100_000", "steps=1_000"), str(README), "exec"), namespace)
    assert namespace["res"].rel_gap <= 1e-6
    assert namespace["P"].V.shape == (3, 2, 100) and namespace["H"].n_active.shape[0] == 3
    assert namespace["V"].shape == namespace["con"].V.shape
