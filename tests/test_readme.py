"""The README's examples ("Library at a glance", "Compression without retraining") run as
printed: every ``# -> ...`` comment is what the line before it prints."""

import contextlib
import io
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def _run_block(pattern: str) -> tuple[list[str], list[str]]:
    """(printed lines, expected ``# ->`` lines) of the README's python block matched by pattern."""
    code = re.search(pattern + r".*?```python\n(.*?)```", README.read_text(), re.S).group(1)
    expected = [m.strip() for m in re.findall(r"# -> (.*)", code)]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(README), "exec"), {})
    return out.getvalue().splitlines(), expected


@pytest.mark.slow
def test_library_at_a_glance_prints_what_it_says():
    printed, expected = _run_block(r"## Library at a glance\n")
    assert len(expected) >= 5
    assert printed == expected


@pytest.mark.slow
def test_compression_example_prints_what_it_says(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the example saves small.vvjax
    printed, expected = _run_block(r"## Compression without retraining\n")
    assert len(expected) == 3
    assert printed == expected
    assert (tmp_path / "small.vvjax").is_file()
