"""Report sections of the experiments (:mod:`vvjax.report`): one module per experiment, each with
``section(jobs, *, full, smoke) -> Section`` comparing our numbers with the paper's
(``docs/paper.md`` §8) and explaining every difference. :mod:`vvjax.reports._widths` holds what
the width experiments' sections share (medians over converged members, counts of the others)."""
