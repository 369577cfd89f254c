"""MoGP limit of networks with per-node random variances (seed 000; DESIGN.md section 2).

- :mod:`.prior`: draws of the random limit kernel on a finite input set (one layer, deep chain), truncated
  at the J largest jumps with the remainder folded into the drift; the finite-width kernel it is the law of.
- :mod:`.likelihood`: GP-plus-sparse-network marginal likelihood and prediction, one eigendecomposition
  then Woodbury (and the direct Cholesky reference).
- :mod:`.regression`: the NumPyro model, MAP start, NUTS, the mixture-of-GPs predictive, metrics.
"""

from . import likelihood, prior, regression
from .prior import finite_width_kernel, sample_outputs, sample_random_kernel

__all__ = ["likelihood", "prior", "regression", "finite_width_kernel", "sample_outputs", "sample_random_kernel"]
