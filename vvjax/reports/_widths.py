"""What the width experiments' report sections share: members split by convergence status, medians
over the converged ones, and the text that counts the others.

A member whose ``status`` (:mod:`vvjax.convergence`) is not ``"ok"`` never enters a median or a
check on learned widths; it is counted, by status, next to every number that leaves it out.
"""

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from vvjax import convergence
from vvjax.report import fmt

__all__ = ["split_ok", "ok_note", "left_out", "median", "layer_medians", "lams_text", "seeds_text"]


def split_ok(rows: Iterable[Mapping[str, Any]]) -> tuple[list[Mapping[str, Any]], Counter]:
    """``(members with status "ok", Counter of the other statuses)``
    (:func:`vvjax.convergence.split_ok`)."""
    ok, other = convergence.split_ok(rows)
    return ok, Counter(other)


def ok_note(rows: Sequence[Mapping[str, Any]]) -> str:
    """``"k of n"`` members ok, with the others by status: ``"3 of 8 (5 not_converged)"``."""
    ok, bad = split_ok(rows)
    text = f"{len(ok)} of {len(rows)}"
    if bad:
        text += " (" + ", ".join(f"{v} {k}" for k, v in sorted(bad.items())) + ")"
    return text


def left_out(rows: Sequence[Mapping[str, Any]]) -> str:
    """The members left out, ``"k of n"`` with their statuses: ``"5 of 8 (5 not_converged)"``."""
    ok, bad = split_ok(rows)
    text = f"{len(rows) - len(ok)} of {len(rows)}"
    if bad:
        text += " (" + ", ".join(f"{v} {k}" for k, v in sorted(bad.items())) + ")"
    return text


def median(rows: Iterable[Mapping[str, Any]], key: str) -> float | None:
    """Median of ``key`` over ``rows`` (``None`` values skipped); ``None`` when there is none."""
    v = [r[key] for r in rows if r.get(key) is not None]
    return float(np.median(v)) if v else None


def layer_medians(rows: Sequence[Mapping[str, Any]], key: str) -> str:
    """Per-layer medians of a list-valued ``key`` (one value per hidden layer) as ``[a, b, c]``;
    ``—`` when ``rows`` is empty."""
    if not rows:
        return "—"
    n = len(rows[0][key])
    meds = [median(({"v": r[key][i]} for r in rows), "v") for i in range(n)]
    return "[" + ", ".join(fmt(m, 3) for m in meds) + "]"


def lams_text(lams: Iterable[float]) -> str:
    """The lambda grid as text: ``0.001, 0.01``."""
    return ", ".join(f"{x:g}" for x in lams)


def seeds_text(seeds: Sequence[int]) -> str:
    """``"4 seeds"`` / ``"1 seed"``."""
    return f"{len(seeds)} seed" + ("" if len(seeds) == 1 else "s")
