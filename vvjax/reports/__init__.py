"""Report sections of the experiments (:mod:`vvjax.report`): one module per experiment, each with
``section(jobs, *, full) -> Section`` comparing our numbers with the paper's (``docs/paper.md``
§8) and explaining every difference."""
