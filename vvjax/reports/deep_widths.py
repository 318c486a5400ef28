"""Report section of the deep networks' layer widths against the deep width bound
(``docs/paper.md`` §6).

Every hidden layer of a ReLU network trained with weight decay is a homogeneous layer: some
global minimizer has each such layer at most rank(Φ⁽ˡ⁾)·rank(Ψ⁽ˡ⁾) ≤ N² wide (§6). vvjax checks
the certified width (the layer's constrained re-fit, then ``lasso.sparsify``) against that bound on
every layer of every member, and reports the learned widths, which the paper does not.
"""

from collections.abc import Sequence

from vvjax.report import Figure, JobResult, Section, Table, fmt
from vvjax.reports._widths import (
    lams_text,
    layer_medians,
    left_out,
    median,
    ok_note,
    seeds_text,
    split_ok,
)

__all__ = ["COLUMNS", "section"]

COLUMNS = ["depth", "λ", "members ok", "learned", "certified", "rank(Φ⁽ˡ⁾)·rank(Ψ⁽ˡ⁾)", "N²",
           "last layer, penalized lasso", "paper"]


def _layers(rows, pred):
    return sum(1 for r in rows for a, b in zip(r["n_active"], r["rank_bound"], strict=True)
               if pred(a, b))


def _job_rows(members) -> list[list[str]]:
    out = []
    by: dict[tuple, list] = {}
    for r in members:
        by.setdefault((r["depth"], r["lam"]), []).append(r)
    for (depth, lam), js in sorted(by.items()):
        ok, _ = split_ok(js)
        pen = [r for r in ok if r.get("penalized_converged")]
        pen_text = (f"{fmt(median(pen, 'certified_width_penalized'))} ({len(pen)} certified)"
                    if any(r.get("certified_width_penalized") is not None for r in js) else "—")
        out.append([str(depth), f"{lam:g}", ok_note(js), layer_medians(ok, "n_active"),
                    layer_medians(ok, "certified_width"), layer_medians(ok, "rank_bound"),
                    "", pen_text, "not in the paper"])
    return out


def section(jobs: Sequence[JobResult], *, full: bool = False, smoke: bool = False) -> Section:
    """Per data kind, depth and λ: per-layer medians of the learned width, the certified width
    and the rank bound over converged members; the bound's checks as named counts; each job's
    figure (width per layer against the bounds, one panel per depth)."""
    tables, figures, checks = [], [], []
    n_layers = n_layers_ok = above_cert = above_learned = above_learned_ok = 0
    not_cert: list[str] = []
    for job in jobs:
        m, members = job.metrics, job.metrics["members"]
        cfg = m["config"]
        body = _job_rows(members)
        for row in body:
            row[6] = str(m["representer_bound"])
        tables.append(Table(COLUMNS, body,
                            f"{m['kind']} (N = {m['n']}, d = {m['d_in']}, D = {m['d_out']}, "
                            f"{m['loss']} loss; hidden width {m['hidden_width']}, weight decay "
                            f"on weights and biases, {cfg['optimizer']} lr {cfg['lr']:g}, "
                            f"{cfg['steps']:,} steps, λ ∈ {{{lams_text(cfg['lams'])}}} × "
                            f"{seeds_text(cfg['seeds'])}): per hidden layer l = 1, 2, …, medians "
                            "over converged members. The paper bounds some minimizer's layers "
                            "by rank(Φ⁽ˡ⁾)·rank(Ψ⁽ˡ⁾) ≤ N² (docs/paper.md §6) and reports no "
                            "trained widths."))
        ok, _ = split_ok(members)
        n_layers += sum(len(r["n_active"]) for r in members)
        n_layers_ok += sum(len(r["n_active"]) for r in ok)
        above_cert += sum(1 for r in members
                          for a, b in zip(r["certified_width"], r["rank_bound"], strict=True)
                          if a is not None and a > b)
        above_learned += _layers(members, lambda a, b: a > b)
        above_learned_ok += _layers(ok, lambda a, b: a > b)
        flags = [c for r in members for c in r.get("constrained_certified") or []
                 if c is not None]  # jobs recorded before it existed report none
        not_cert.append(f"{m['kind']} {sum(c is False for c in flags)} of {len(flags)}")
        checks.append([f"{m['kind']}: members left out (status not ok)", "—", left_out(members),
                       "vvjax's convergence criterion (Adam with weight decay is still "
                       "descending); counted, not used"
                       + ("; smoke run, not comparable" if smoke else "")])
        if not ok:
            inner = [b for r in members for b in r["rank_bound"][:-1]]
            last = [r["rank_bound"][-1] for r in members]
            checks.append([f"{m['kind']}: rank(Φ⁽ˡ⁾)·rank(Ψ⁽ˡ⁾) over all members, flagged "
                           "included (the bound's scale, not learned widths)",
                           "the bound can exceed the width and then constrains nothing "
                           "(VGG-19's last hidden layer, §6)",
                           (f"inner layers {min(inner)}–{max(inner)}, " if inner else "")
                           + f"last {min(last)}–{max(last)}; width {m['hidden_width']}",
                           "not a trained width: no member converged in the step budget"])
        if any(r.get("test_error") is not None for r in members):
            metric = "test error rate" if m["loss"] == "cross_entropy" else "held-out MSE"
            checks.append([f"{m['kind']}: {metric}, median over converged members", "—",
                           fmt(median(ok, "test_error"), 3) if ok else "— (none converged)",
                           "vvjax's measurement"])
        figures += [Figure(job.folder / f, f"{m['kind']}: learned and certified width per "
                           "hidden layer against rank(Φ⁽ˡ⁾)·rank(Ψ⁽ˡ⁾), N² and the trained "
                           "width, one panel per depth (converged members; the flagged ones "
                           "counted in the titles).") for f in m["figures"]]
    checks[:0] = [
        ["certified width ≤ rank(Φ⁽ˡ⁾)·rank(Ψ⁽ˡ⁾) (`n_certified_above_rank_bound`), every layer "
         "of every member", "holds for some global minimizer (§6)",
         f"{above_cert} of {n_layers} layers above",
         "agrees" if above_cert == 0 else "**does not hold: a bug in vvjax**"],
        ["learned width above rank(Φ⁽ˡ⁾)·rank(Ψ⁽ˡ⁾): all / converged members' layers "
         "(`n_learned_above_rank_bound`)", "not in the paper",
         f"{above_learned} of {n_layers} / {above_learned_ok} of {n_layers_ok}",
         "the bound is on some minimizer, not on the trained network: its last hidden layer, "
         "where rank(Ψ) ≤ D, is often wider than the bound while the certified re-fit is not"],
        ["constrained layer re-fits not proved optimal (`constrained_certified`: gap plus dual "
         "infeasibility ≤ 1e-6)", "—", ", ".join(not_cert),
         "the ADMM budget (`lasso_max_iter`) on degenerate problems (more active neurons than "
         "samples, nearly rank-deficient features); such a layer's width comes from the better "
         "of the solver's point and the trained layer, then sparsified: never from a point worse "
         "than training's, and within the rank bound all the same (first row)"],
    ]
    kinds = [j.metrics["kind"] for j in jobs]
    cmd = []
    if any(k in ("teacher", "random") for k in kinds):
        sweep = ",".join(k for k in kinds if k in ("teacher", "random"))
        cmd.append(f"python experiments/deep_widths.py -m data.kind={sweep}" if "," in sweep
                   else "python experiments/deep_widths.py"
                   + ("" if sweep == "teacher" else f" preset={sweep}"))
    if "digits" in kinds:
        cmd.append("python experiments/deep_widths.py preset=digits")
    tables.insert(0, Table(["check", "paper", "vvjax", "difference explained"], checks,
                           "The deep width bound's checks, counted over every hidden layer of "
                           "every member."))
    return Section(
        key="deep_widths", title="Deep networks: layer widths against the bounds "
                                 "(docs/paper.md §6)",
        command=" && ".join(cmd),
        text=["Networks with 2–4 hidden layers of equal width, trained with weight decay; for "
              "every hidden layer l the learned width, the bound rank(Φ⁽ˡ⁾)·rank(Ψ⁽ˡ⁾) of its "
              "input and output representations, N², and the **certified width**: the layer's "
              "active neurons re-fitted by the constrained multi-task lasso (same outputs on "
              "the data, no larger penalty), then sparsified. With the mse loss the last hidden "
              "layer is also re-solved as a penalized lasso over all its neurons."],
        tables=tables, figures=figures)
