"""vvjax: weight decay, vector-valued variation spaces and the multi-task lasso in JAX.

Reproduces and extends Shenouda, Parhi, Lee & Nowak, "Variation Spaces for Multi-Output Neural
Networks" (JMLR 2024, arXiv 2305.16534). Modules are published, not names::

    from vvjax import models, norms, analysis, train, lasso
"""

__version__ = "0.1.0"
