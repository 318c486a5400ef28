"""Multi-task (group) lasso: certified solvers and the rank-bound support reduction.

Paper notation (arXiv 2305.16534, multi-task lasso; ``docs/paper.md`` §4): ``Phi`` K x N features,
``Psi`` D x N targets, ``V`` D x K with columns ``v_k``. Penalized:
``1/(2N) ||V Phi - Psi||_F^2 + lam * sum_k ||v_k||_2``; constrained:
``min sum_k ||v_k||_2  s.t.  V Phi = Psi``.
"""

from vvjax.lasso._common import *  # noqa: F403
from vvjax.lasso._common import __all__ as _common_all
from vvjax.lasso.constrained import *  # noqa: F403
from vvjax.lasso.constrained import __all__ as _constrained_all
from vvjax.lasso.penalized import *  # noqa: F403
from vvjax.lasso.penalized import __all__ as _penalized_all
from vvjax.lasso.reduction import *  # noqa: F403
from vvjax.lasso.reduction import __all__ as _reduction_all

__all__ = [*_common_all, *_penalized_all, *_constrained_all, *_reduction_all]
