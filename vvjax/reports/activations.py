"""Report section of the activation study: weight decay against the VV norm per activation
(``docs/paper.md`` §3.2).

For a positively homogeneous activation (ReLU, leaky ReLU) rescaling a neuron leaves the network
unchanged, so weight decay at its optimum balances every neuron (‖(w_k, b_k)‖ = ‖v_k‖) and its
penalty equals the VV norm (§3.2). GELU, SiLU, softplus and tanh have no such symmetry. The
paper's statement gives the homogeneous rows' value (gap 0, balance 1); it has no numbers for the
others, which the section says.
"""

from collections.abc import Sequence

from vvjax import activations as act_mod
from vvjax.plots.activations import save_balance_figure
from vvjax.report import Figure, JobResult, Section, Table, fmt, member_rows, sweep_groups
from vvjax.reports._widths import lams_text, left_out, median, ok_note, seeds_text, split_ok

__all__ = ["COLUMNS", "section"]

COLUMNS = ["activation", "λ", "members ok", "(weight decay − VV) / VV",
           "balance median [10 %, 90 %]", "learned width", "shared fraction", "held-out MSE",
           "paper"]


def _rows(rows) -> list[list[str]]:
    out = []
    keys: dict[tuple, list] = {}
    for r in rows:
        keys.setdefault((r["lam"], r["activation"]), []).append(r)
    order = {a: i for i, a in enumerate(act_mod.ACTIVATIONS)}
    for (lam, act), js in sorted(keys.items(), key=lambda kv: (-kv[0][0], order[kv[0][1]])):
        ok, _ = split_ok(js)
        bal = (f"{fmt(median(ok, 'balance_median'), 4)} [{fmt(median(ok, 'balance_q10'), 4)}, "
               f"{fmt(median(ok, 'balance_q90'), 4)}]") if ok else "—"
        paper = ("gap 0, balance 1 at an optimum (§3.2)" if act_mod.is_homogeneous(act)
                 else "not in the paper")
        out.append([act, f"{lam:g}", ok_note(js), fmt(median(ok, "wd_vv_gap"), 2), bal,
                    fmt(median(ok, "n_active")), fmt(median(ok, "shared_fraction"), 2),
                    fmt(median(ok, "test_error"), 2), paper])
    return out


def section(jobs: Sequence[JobResult], *, full: bool = False, smoke: bool = False) -> Section:
    """Per (activation, λ): the gap between weight decay and the VV norm, the neurons' balance,
    width, sharing and held-out error (medians over converged members); the homogeneous and
    non-homogeneous gaps as named numbers; the balance figure (drawn here, into the sweep's
    ``figures/activation_balance.png``)."""
    tables, figures = [], []
    for js in sweep_groups(jobs).values():
        rows = member_rows(js)
        cfg = js[0].metrics["config"]
        m = js[0].metrics
        tables.append(Table(COLUMNS, _rows(rows),
                            f"Teacher data (N = {m['n']}, d = {m['d_in']}, D = {m['d_out']}, "
                            f"width {m['width']}, {cfg['data']['n_test']} held-out samples), "
                            f"weight decay by full-batch gradient descent (lr {cfg['lr']:g}, "
                            f"{cfg['steps']:,} steps), λ ∈ {{{lams_text(cfg['lams'])}}} × "
                            f"{seeds_text(cfg['seeds'])}: medians over converged members. "
                            "Widths of non-homogeneous networks use the activity rule as is "
                            "(not rescaling invariant; `width_rule` in metrics.json)."))
        ok, _ = split_ok(rows)
        hom = [r for r in ok if act_mod.is_homogeneous(r["activation"])
               and r["wd_vv_gap"] is not None]
        non = [r for r in ok if not act_mod.is_homogeneous(r["activation"])
               and r["wd_vv_gap"] is not None]
        gelu_silu = [r for r in non if r["activation"] in ("gelu", "silu")]
        hmax = max((r["wd_vv_gap"] for r in hom), default=None)
        note = ("smoke run (debug=smoke: 600 steps): the imbalance has not decayed, not comparable"
                if smoke else "rounding: the imbalance decays like exp(−2 λ lr t) under "
                "full-batch gradient descent")
        tables.append(Table(
            ["quantity", "paper", "vvjax", "difference explained"],
            [["largest gap (weight decay − VV) / VV, homogeneous activations (converged)",
              "0 (§3.2)", fmt(hmax, 2), note],
             ["smallest gap, GELU and SiLU (converged)", "not in the paper",
              fmt(min((r["wd_vv_gap"] for r in gelu_silu), default=None), 2),
              "no rescaling symmetry: weight decay is not the VV norm for them"],
             ["members left out (status not ok)", "—", left_out(rows),
              "vvjax's convergence criterion; counted, not used"]],
            "The activation study's central check as named numbers."))
        path = save_balance_figure(js[0].folder.parent / "figures" / "activation_balance.png",
                                   rows)
        figures.append(Figure(path, "Per activation against λ: the gap between the weight-decay "
                              "penalty and the VV norm, the balance of the active neurons, and "
                              "the held-out error (medians over converged members)."))
    return Section(
        key="activations", title="Activations: weight decay against the VV norm "
                                 "(docs/paper.md §3.2)",
        command="python experiments/width_sweep.py -m preset=activations"
                + ("" if full else " 'lams=[1.0e-2,3.0e-2]'"),
        text=["The same teacher problem and λ grid for ReLU, leaky ReLU, GELU, SiLU, softplus and "
              "tanh, trained with weight decay. For every active neuron the balance "
              "‖(w_k, b_k)‖ / ‖v_k‖, which weight decay drives to 1 only for homogeneous "
              "activations, and for the network the relative gap between the weight-decay "
              "penalty and the VV norm (0 exactly when every neuron is balanced)."],
        tables=tables, figures=figures)
