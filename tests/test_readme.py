"""The README's "Library at a glance" example runs as printed: every ``# -> ...`` comment is what
the line before it prints."""

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_library_at_a_glance_prints_what_it_says():
    text = README.read_text()
    code = re.search(r"## Library at a glance\n\n```python\n(.*?)```", text, re.S).group(1)
    expected = [m.strip() for m in re.findall(r"# -> (.*)", code)]
    assert len(expected) >= 5
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(README), "exec"), {})
    assert out.getvalue().splitlines() == expected
