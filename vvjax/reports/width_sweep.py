"""Report section of the width sweep: learned widths against the bounds (``docs/paper.md`` §4.4,
§5).

The paper bounds the width of *some* optimal network: at most N² neurons (the representer
theorem), and, through the multi-task lasso sparsity theorem, at most rank(Φ)·rank(Ψ) ≤
min(N², N·D) (vvjax's derived tightenings, §4.4, §5). It reports no widths of trained networks, so
the section states the theorems' checks as counts over every member and gives vvjax's widths with
"not in the paper" where the paper has no number.
"""

from collections.abc import Mapping, Sequence
from typing import Any

from vvjax.report import Figure, JobResult, Section, Table, fmt, member_rows, sweep_groups
from vvjax.reports._widths import lams_text, left_out, median, ok_note, seeds_text, split_ok

__all__ = ["CHECK_COLUMNS", "checks", "section"]

CHECK_COLUMNS = ["check", "paper", "vvjax", "difference explained"]

_NOT_IN_PAPER = "not in the paper"


def _count(rows, pred) -> int:
    return sum(1 for r in rows if pred(r))


def _holds(n_above: int) -> str:
    return "agrees" if n_above == 0 else "**does not hold: a bug in vvjax, please report it**"


def checks(rows: Sequence[Mapping[str, Any]], *, fast_note: str = "") -> list[list[str]]:
    """The theorems' checks and the sweep's named counts, one table row each, over every member
    (``rows`` of :func:`vvjax.report.member_rows`)."""
    M = len(rows)
    ok, _ = split_ok(rows)
    cert = [r for r in rows if r.get("certified_width") is not None]
    spars = [r for r in rows if r.get("sparsified_width") is not None]
    above_own = _count(cert, lambda r: r["certified_width"] > r["certified_bound"])
    above_trained = _count(cert, lambda r: r["certified_width"] > r["rank_bound"])
    spars_above = _count(spars, lambda r: r["sparsified_width"] > r["rank_bound"])
    rank_above = _count(rows, lambda r: r["rank_bound"] > r["representer_bound_sharp"]
                        or r["representer_bound_sharp"] > r["representer_bound"])
    learned_rank = _count(rows, lambda r: r["n_active"] > r["rank_bound"])
    learned_rank_ok = _count(ok, lambda r: r["n_active"] > r["rank_bound"])
    learned_sharp = _count(rows, lambda r: r["n_active"] > r["representer_bound_sharp"])
    learned_sharp_ok = _count(ok, lambda r: r["n_active"] > r["representer_bound_sharp"])
    learned_n2_ok = _count(ok, lambda r: r["n_active"] > r["representer_bound"])
    not_cert = _count(rows, lambda r: r.get("lasso_converged") is False)
    multi = [r for r in ok if r["d_out"] >= 2 and r["n_active"] > 0]
    share = median(multi, "shared_fraction")
    all_shared = _count(multi, lambda r: r["n_shared"] == r["n_active"])
    low = min((r["shared_fraction"] for r in multi), default=None)
    return [
        ["certified width ≤ rank(Φ)·rank(Ψ) of its own fit (the multi-task lasso sparsity "
         "theorem, after `lasso.sparsify`)", "holds for some optimal layer (docs/paper.md §4.4)",
         f"{above_own} of {len(cert)} members above", _holds(above_own)],
        ["certified width ≤ rank(Φ)·rank(Ψ) of the trained network "
         "(`n_certified_above_rank_bound`)", _NOT_IN_PAPER,
         f"{above_trained} of {len(cert)} members above",
         "the re-solved layer fits the data differently from the trained one, so the trained "
         "outputs' bound need not apply to it; " + ("it held on every member" if not above_trained
                                                    else "counted, not a violation")],
        ["sparsified width ≤ rank(Φ)·rank(Ψ) (same outputs on the data, no solver)",
         "the sparsity theorem's construction (§4.4)",
         f"{spars_above} of {len(spars)} members above", _holds(spars_above)],
        ["rank(Φ)·rank(Ψ) ≤ min(N², N·D) ≤ N²", "width ≤ N² (representer theorem, §5); "
         "min(N², N·D) derived (§5)", f"{rank_above} of {M} members above", _holds(rank_above)],
        ["learned width above rank(Φ)·rank(Ψ) (`n_learned_above_rank_bound`): all members / "
         "converged members", _NOT_IN_PAPER,
         f"{learned_rank} of {M} / {learned_rank_ok} of {len(ok)}",
         "the bounds speak of some optimal network, not of the one training reaches: unconverged "
         "members have not finished pruning and converged ones can sit at a wider stationary "
         "point; the sparsified width shows a network with the same outputs within the bound "
         "on every member"],
        ["learned width above min(N², N·D): all members / converged members "
         "(`n_learned_above_sharp_bound`)", _NOT_IN_PAPER,
         f"{learned_sharp} of {M} / {learned_sharp_ok} of {len(ok)}", "as the row above"],
        ["converged members above the paper's N²", "none needed (§5)",
         f"{learned_n2_ok} of {len(ok)}", "the paper bounds some solution's width by N²; "
         "trained widths are counted, not assumed within it"],
        ["members left out (status not ok; `n_ok`, `flagged`)", "—", left_out(rows),
         "vvjax's convergence criterion (relative spread of the objective over the last 5 log "
         "blocks ≤ 1e-3, vvjax.convergence): small λ prune slowly and do not converge in the "
         "step budget; left out of every median and of the converged counts" + fast_note],
        ["lasso re-solves not certified (`n_lasso_not_converged`)", "—",
         f"{not_cert} of {len(cert)}",
         "the near-interpolating problems of small λ (N samples, K ≫ N features) do not reach "
         "the 1e-6 gap in `lasso_max_iter` epochs; left out of the certified-width medians"],
        ["shared fraction (neurons used by ≥ 2 outputs / active), median over converged "
         "members with D ≥ 2", _NOT_IN_PAPER + " (the VV norm rewards shared neurons, §3.3)",
         f"{fmt(share, 3)} over {len(multi)} members; {all_shared} share every active neuron"
         f" (minimum {fmt(low, 2)})", "—"],
    ]


def _widths_rows(rows) -> list[list[str]]:
    out = []
    jobs: dict[tuple, list] = {}
    for r in rows:
        jobs.setdefault((r["kind"], r["n"], r["d_out"]), []).append(r)
    for (kind, n, d), js in sorted(jobs.items()):
        ok, _ = split_ok(js)
        cert = [r for r in ok if r.get("lasso_converged")]
        out.append([kind, str(n), str(d), ok_note(js), fmt(median(ok, "n_active")),
                    fmt(median(ok, "sparsified_width")), fmt(median(cert, "certified_width")),
                    fmt(median(ok, "rank_bound")), str(js[0]["representer_bound_sharp"]),
                    str(js[0]["representer_bound"]), _NOT_IN_PAPER])
    return out


_WIDTH_COLUMNS = ["data", "N", "D", "members ok", "learned", "sparsified", "certified",
                  "rank(Φ)·rank(Ψ)", "min(N², N·D)", "N² (paper's bound)", "paper's widths"]


def _linnerud_rows(rows) -> list[list[str]]:
    out = []
    by_lam: dict[float, list] = {}
    for r in rows:
        by_lam.setdefault(r["lam"], []).append(r)
    for lam, js in sorted(by_lam.items()):
        ok, _ = split_ok(js)
        cert = [r for r in ok if r.get("lasso_converged")]
        out.append([f"{lam:g}", ok_note(js), fmt(median(ok, "n_active")),
                    fmt(median(ok, "sparsified_width")), fmt(median(cert, "certified_width")),
                    fmt(median(ok, "rank_bound")), fmt(median(ok, "shared_fraction")),
                    str(js[0]["representer_bound_sharp"]), _NOT_IN_PAPER])
    return out


def section(jobs: Sequence[JobResult], *, full: bool = False, smoke: bool = False) -> Section:
    """The width sweep's checks, its median widths by (data, N, D), Linnerud, and the aggregated
    figures (width against N per D with the bounds, width against λ, shared fraction).

    Args:
      jobs: the finished width-sweep jobs: a sweep's points labelled ``"<sweep>/<point>"`` and
        single jobs (Linnerud) under their own label.
      full: the default and full sweeps were run (else the fast preset).
      smoke: the tiny ``debug=smoke`` runs (nothing is comparable).

    Returns:
      The report :class:`~vvjax.report.Section`.
    """
    groups = sweep_groups(jobs)
    all_rows = member_rows(jobs)
    fast_note = ("" if full else "; the fast preset runs 4 λ × 2 seeds per job (the default "
                 "sweep: 8 × 4)")
    if smoke:
        fast_note = "; smoke run (debug=smoke: 600 steps): nothing converges, not comparable"
    tables = [Table(CHECK_COLUMNS, checks(all_rows, fast_note=fast_note),
                    f"The bounds' checks over all {len(all_rows)} members of the section (every "
                    "(N, D, data, λ, seed)); learned widths counted, never hidden.")]
    figures, commands = [], []
    for label, js in groups.items():
        rows = member_rows(js)
        cfg = js[0].metrics["config"]
        grid = (f"λ ∈ {{{lams_text(cfg['lams'])}}} × {seeds_text(cfg['seeds'])}, "
                f"{cfg['steps']:,} steps of the {cfg['regularizer']} method")
        if len(js) == 1 and js[0].label == label:  # a single job: Linnerud
            m = js[0].metrics
            tables.append(Table(
                ["λ", "members ok", "learned", "sparsified", "certified", "rank(Φ)·rank(Ψ)",
                 "shared fraction", "min(N², N·D)", "paper"], _linnerud_rows(rows),
                f"{m['kind']} (N = {m['n']}, d = {m['d_in']}, D = {m['d_out']}, width "
                f"{m['width']}; {grid}): medians over converged members."))
            figures += [Figure(js[0].folder / f, f"{m['kind']}: learned (solid) and certified "
                               "(dashed) width against λ; flagged members as open markers.")
                        for f in m["figures"]]
            commands.append("python experiments/width_sweep.py preset=linnerud"
                            + ("" if full else " 'lams=[1.0e-3,1.0e-2]' 'seeds=[0,1]'"))
            continue
        tables.append(Table(_WIDTH_COLUMNS, _widths_rows(rows),
                            f"Sweep `{label}` ({len(js)} jobs, {grid}): median widths over "
                            "the converged members of each job (certified: those whose lasso "
                            "re-solve was certified). The paper reports no trained widths; its "
                            "bound is N² (docs/paper.md §5), and min(N², N·D) and "
                            "rank(Φ)·rank(Ψ) are the tightenings vvjax derives (§4.4, §5)."))
        fig_dir = js[0].folder.parent / "figures"
        figures += [
            Figure(fig_dir / "width_vs_n.png", f"Sweep `{label}`: median learned, certified and "
                   "sparsified width against N, one panel per D, with min(N², N·D) and the "
                   "median rank bound (converged members; the flagged ones are counted in the "
                   "legend)."),
            Figure(fig_dir / "width_vs_lambda.png", f"Sweep `{label}`: width against λ, one "
                   "line per (data, N, D); flagged members as open grey markers."),
            Figure(fig_dir / "sharing_vs_d.png", f"Sweep `{label}`: median shared fraction "
                   "against D, one line per N (converged members)."),
        ]
        commands.append(f"python experiments/width_sweep.py -m preset={label}")
    return Section(
        key="width_sweep", title="Learned widths against the bounds (docs/paper.md §4.4, §5)",
        command=" && ".join(commands),
        text=["Each job trains a student network of width min(N², N·D) + N on one data set "
              "(a teacher network or random labels; N samples, D outputs) for a grid of λ and "
              "seeds in one vmapped `fit_batch`, and records per member the **learned width** "
              "(active neurons), the **sparsified width** (`lasso.sparsify` of the trained "
              "layer: same outputs, no larger VV norm), the **certified width** (the output "
              "layer re-solved as a multi-task lasso to a certified gap, then sparsified) and "
              "the bounds. The paper's theorems bound the width of *some* optimal network; "
              "the sparsity theorem is checked on every member, and the trained widths, which "
              "the paper does not report, are vvjax's measurements."],
        tables=tables, figures=figures)
