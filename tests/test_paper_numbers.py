"""The paper's numbers that the report prints (hard-coded next to the code that compares with them)
are the ones the project's paper notes record (docs/paper.md §8, "authors" column): a constant
that drifts from the notes fails here."""

import re
from pathlib import Path

from vvjax.data import PAPER_TEACHER_VV_NORM
from vvjax.reports import compress as compress_report
from vvjax.reports import neuron_sharing as ns_report
from vvjax.runs.lasso_bounds import PAPER_REFERENCE

NOTES = Path(__file__).resolve().parent.parent / "docs" / "paper.md"


def _authors_column() -> dict[str, str]:
    """quantity -> the "authors" cell of the §8 table."""
    text = NOTES.read_text()
    section = text[text.index("## 8. Reported numbers"):text.index("## 9.")]
    rows = [line.split("|")[1:-1] for line in section.splitlines() if line.startswith("| ")]
    return {cells[0].strip(): cells[1].strip() for cells in rows[1:]}


def _cell(table, start):
    (key,) = [k for k in table if k.startswith(start)]
    return table[key]


def _sci(x: float) -> str:
    """2.9286e-05 -> 2.9286·10⁻⁵ (the notes' notation)."""
    mant, exp = f"{x:e}".split("e")
    sup = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")
    return f"{float(mant):g}·10{str(int(exp)).translate(sup)}"


def test_neuron_sharing_numbers_match_the_notes():
    t, P = _authors_column(), ns_report.PAPER
    assert f"{PAPER_TEACHER_VV_NORM:.7f}" == _cell(t, "teacher VV norm")
    assert " / ".join(map(str, P["trajectory"].values())) == _cell(t, "neuron sharing with")
    wd, nowd = P["weight_decay"], P["no_weight_decay"]
    assert _cell(t, "… final MSE") == f"{_sci(wd['mse'])}, {wd['sum_output_norms']}"
    assert _cell(t, "… final: active") == f"{wd['n_active']}, all {wd['n_shared_all']}"
    assert _cell(t, "without weight decay") == (f"{nowd['n_active']}, {_sci(nowd['mse'])}, "
                                                f"{nowd['sum_output_norms']}")


def test_lasso_panels_match_the_notes():
    t = _authors_column()
    rnd, rank = PAPER_REFERENCE["random"], PAPER_REFERENCE["rank"]
    assert _cell(t, "Fig. 3 counts") == " / ".join(f"{a}–{b}" for a, b in
                                                   (p["range"] for p in rnd.values()))
    assert _cell(t, "Fig. 3 mean objective") == " / ".join(f"{p['mean_objective']:.2f}"
                                                           for p in rnd.values())
    ranges = re.findall(r"(\d+)–(\d+)", _cell(t, "Fig. 4 counts"))
    assert [list(map(int, r)) for r in ranges] == [p["range"] for p in rank.values()]
    assert f"+{len(rank['r=5']['outliers'])} outliers" in _cell(t, "Fig. 4 counts")


def test_compression_numbers_match_the_notes():
    t, P = _authors_column(), compress_report.PAPER
    assert _cell(t, "AlexNet base test accuracy") == f"{P['alexnet_test_accuracy']} %"
    assert _cell(t, "AlexNet active") == " / ".join(str(k) for k, _ in P["alexnet_active"].values())
    assert _cell(t, "compression time") == P["compression_time"]
