"""The convergence and collapse criteria against closed forms and hand-made curves."""

import numpy as np
import pytest

from vvjax import runs
from vvjax.convergence import Criterion, assess, relative_change, zero_predictor_fit


def test_zero_predictor_fit_is_the_mean_of_squares(key):
    Y = np.random.default_rng(0).normal(size=(7, 3))
    assert zero_predictor_fit(Y) == pytest.approx(np.sum(Y ** 2) / 21, rel=1e-15)
    assert zero_predictor_fit(Y.tolist()) == zero_predictor_fit(Y)
    with pytest.raises(ValueError, match="loss"):
        zero_predictor_fit(Y, loss="cross_entropy")
    with pytest.raises(ValueError, match="Y"):
        zero_predictor_fit([[1.0, np.nan]])


def test_relative_change_of_a_geometric_tail():
    """f_t = 1 + r^t: over the last w blocks the spread is r^(T-w) - r^T, the last value 1 + r^T."""
    r, T, w = 0.5, 20, 4
    f = 1 + r ** np.arange(T + 1)
    want = (r ** (T - w) - r ** T) / (1 + r ** T)
    assert relative_change(f, window=w) == pytest.approx(want, rel=1e-12)
    # the floor only acts when it exceeds |f_T|
    assert relative_change(f, window=w, scale_floor=4.0) == pytest.approx(
        (r ** (T - w) - r ** T) / 4.0, rel=1e-12)
    assert np.isnan(relative_change(f[:w], window=w))  # too short to tell
    assert relative_change(np.zeros(6), window=3) == 0.0
    assert relative_change([0.0, 1e-9, 0.0], window=2) == np.inf  # moving, no scale
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="window"):
            relative_change(f, window=bad)
    with pytest.raises(ValueError, match="objective"):
        relative_change(np.ones((3, 3)), window=1)


def _decay(T, rate, floor_value):
    t = np.arange(T + 1, dtype=float)
    return floor_value + np.exp(-rate * t)


@pytest.mark.parametrize(("loss", "fit", "want"), [
    (_decay(50, 1.0, 0.1), _decay(50, 1.0, 0.1), "ok"),  # flat at 0.1, fit ratio 0.1
    (_decay(50, 0.02, 0.1), _decay(50, 0.02, 0.1), "not_converged"),  # still falling 10%/block
    (np.full(51, 1.0), np.full(51, 0.99), "collapsed"),  # fit 0.99 of the zero predictor
    (np.r_[np.ones(50), np.inf], np.ones(51) * 0.1, "diverged"),
])
def test_assess_statuses(loss, fit, want):
    a = assess(loss, fit, baseline=1.0)
    assert a.status == want
    assert a.collapsed == (want == "collapsed")
    assert a.fit_ratio == pytest.approx(fit[-1])


def test_interpolating_run_converges_through_the_floor():
    """An objective falling like 1e-8 * 0.9^t never stops changing relatively; against the floor
    (1e-4 of the zero predictor's fit) its changes are negligible."""
    f = 1e-8 * 0.9 ** np.arange(40)
    assert assess(f, f, baseline=1.0, criterion=Criterion(floor=0.0)).status == "not_converged"
    a = assess(f, f, baseline=1.0)
    assert a.status == "ok" and a.rel_change == pytest.approx((f[-6] - f[-1]) / 1e-4)


def test_collapse_threshold_is_one_minus_eps():
    loss = np.ones(10)
    assert assess(loss, np.full(10, 0.951), 1.0).collapsed
    assert not assess(loss, np.full(10, 0.949), 1.0).collapsed
    assert assess(loss, np.full(10, 0.5), 1.0, Criterion(collapse_eps=0.6)).collapsed


def test_assess_rejects_bad_curves():
    with pytest.raises(ValueError, match="same|one non-zero length"):
        assess(np.ones(5), np.ones(4), 1.0)
    with pytest.raises(ValueError, match="baseline"):
        assess(np.ones(5), np.ones(5), 0.0)


def test_criterion_values_are_validated():
    with pytest.raises(runs.ConfigError, match="window must be >= 1"):
        runs.validate(Criterion(window=0))
    with pytest.raises(runs.ConfigError, match=r"collapse_eps must be in \[0, 1\)"):
        runs.validate(Criterion(collapse_eps=1.0))


def test_split_ok_is_the_one_rule():
    """Only "ok" records are results; a missing status is not ok and is counted."""
    from vvjax.convergence import split_ok

    rows = [{"status": "ok", "i": 0}, {"status": "collapsed"}, {}, {"status": "ok", "i": 3},
            {"status": None}, {"status": "collapsed"}]
    ok, other = split_ok(rows)
    assert [r["i"] for r in ok] == [0, 3]
    assert other == {"collapsed": 2, "None": 2}
